//! The bundled font: DejaVu Sans, compiled into the library and registered
//! with plotters once, so a chart never depends on the fonts of the machine
//! that draws it. (plotters' `ttf` feature, which reads system fonts, is off;
//! without a registered font text cannot be drawn at all.)
//!
//! Text is measured with the same font, so layout (label widths, whether a
//! name fits on a bar) is the same for PNG and SVG and on every machine.

use std::sync::OnceLock;

use plotters::style::{FontFamily, FontStyle, IntoFont, TextStyle};

/// DejaVu Sans 2.37; see `assets/fonts/LICENSE`.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name the font is registered under. SVG files name it too, so
/// a viewer draws their text with its own sans-serif font.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the bundled font, once per process. Returns false if the font
/// could not be read, which only a corrupt build can cause.
pub(crate) fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    })
}

/// The text style of `size` pixels.
pub(crate) fn style(size: f64) -> TextStyle<'static> {
    (FontFamily::Name(FAMILY), size).into_font().into()
}

/// The width in pixels of `text` at `size`. Call [`register`] first.
pub(crate) fn width(text: &str, size: f64) -> u32 {
    style(size).font.box_size(text).map_or(0, |(w, _)| w)
}

/// `text`, shortened to fit in `max` pixels at `size` by replacing its
/// middle with an ellipsis, which keeps both the start and the end that tell
/// names apart ("worker-17" → "wor…17"). Empty when not even that fits.
pub(crate) fn truncate(text: &str, size: f64, max: u32) -> String {
    if width(text, size) <= max {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let keep = |n: usize| -> String {
        let tail = n / 2;
        let head = n - tail;
        let mut out: String = chars[..head].iter().collect();
        out.push('…');
        out.extend(&chars[chars.len() - tail..]);
        out
    };
    // The most characters kept that fit: widths grow with the count.
    let (mut lo, mut hi) = (0, chars.len() - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if width(&keep(mid), size) <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        String::new()
    } else {
        keep(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_font_registers_and_measures() {
        assert!(register());
        assert!(register());
        let short = width("a", 12.0);
        let long = width("a much longer thread name", 12.0);
        assert!(short > 0 && long > 10 * short, "{short} {long}");
        assert!(width("abc", 24.0) > width("abc", 12.0));
    }

    #[test]
    fn long_text_loses_its_middle_to_an_ellipsis() {
        assert!(register());
        assert_eq!(truncate("worker", 12.0, 500), "worker");
        let cut = truncate("a_very_long_thread_name_indeed", 12.0, 80);
        assert!(cut.starts_with("a_v") && cut.ends_with("eed"), "{cut}");
        assert!(cut.contains('…') && cut.chars().count() < 20, "{cut}");
        assert!(width(&cut, 12.0) <= 80);
        let cut = truncate("worker-17", 12.0, width("wor…17", 12.0));
        assert_eq!(cut, "wor…17");
        assert_eq!(truncate("worker", 12.0, 1), "");
    }
}
