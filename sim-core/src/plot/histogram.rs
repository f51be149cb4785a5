//! A bar chart of how often each outcome occurred over explored runs (for
//! example the final value of a racy counter).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::style::RGBColor;

use super::canvas::{Align, Picture};
use super::{font, PlotError};

const WIDTH: u32 = 900;
const HEIGHT: u32 = 420;
const BAR: RGBColor = RGBColor(0x2f, 0x6d, 0xb5);
const INK: RGBColor = RGBColor(0x30, 0x30, 0x30);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

/// Orders outcome keys numerically when they are numbers.
fn order(key: &str) -> (i128, String) {
    (key.parse::<i128>().unwrap_or(i128::MAX), key.to_string())
}

/// Draws a PNG bar chart of `counts` (outcome → number of runs) for the
/// variable `variable` to `path`. The folder must exist.
pub fn histogram(
    counts: &BTreeMap<String, u64>,
    variable: &str,
    path: &Path,
) -> Result<(), PlotError> {
    if !font::register() {
        return Err(PlotError::Font {
            path: path.to_path_buf(),
        });
    }
    let mut bars: Vec<(&String, u64)> = counts.iter().map(|(k, &v)| (k, v)).collect();
    bars.sort_by_key(|(k, _)| order(k));
    let total: u64 = bars.iter().map(|b| b.1).sum();
    let most = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1);
    let mut picture = Picture {
        width: WIDTH,
        height: HEIGHT,
        shapes: Vec::new(),
    };
    picture.text(
        format!("final value of '{variable}' over {total} runs"),
        (20, 22),
        18.0,
        Align::Left,
        INK,
    );
    let (left, right, top, bottom) = (60, WIDTH as i32 - 20, 60, HEIGHT as i32 - 50);
    picture.line((left, bottom), (right, bottom), INK);
    for step in 1..=4 {
        let y = bottom - (bottom - top) * step / 4;
        picture.line((left, y), (right, y), GRID);
        let count = most as f64 * f64::from(step) / 4.0;
        picture.text(
            format!("{count:.0}"),
            (left - 6, y),
            12.0,
            Align::Right,
            INK,
        );
    }
    let n = bars.len().max(1) as i32;
    let slot = (right - left) / n;
    for (i, (key, count)) in bars.iter().enumerate() {
        let x0 = left + slot * i as i32 + slot / 6;
        let x1 = left + slot * (i as i32 + 1) - slot / 6;
        let height = ((bottom - top) as f64 * *count as f64 / most as f64) as i32;
        picture.rect(x0, bottom - height, x1, bottom, BAR);
        let middle = (x0 + x1) / 2;
        picture.text(
            key.as_str(),
            (middle, bottom + 16),
            13.0,
            Align::Center,
            INK,
        );
        picture.text(
            count.to_string(),
            (middle, bottom - height - 10),
            12.0,
            Align::Center,
            INK,
        );
    }
    let bytes = picture.to_png().map_err(|message| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    })?;
    crate::output::write(path, &bytes).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}
