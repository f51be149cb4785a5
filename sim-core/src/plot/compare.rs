//! Comparison charts: figures measured over several runs (a sweep of
//! machines, models or parameters) side by side, as grouped bars, lines or a
//! heatmap. The script's `chart(path, rows, options)` builds a
//! [`Comparison`] from its rows; this module only lays it out, with the same
//! font, ink and canvas as the Gantt charts.
//!
//! ```text
//!  bars                 lines                 heatmap
//!  ▆▃ ▅▂ ▄▁             ●─●                   ┌──┬──┬──┐
//!  ██ ██ ██               ╲●──●               │  │▒▒│██│ rows × columns,
//!  1  2  4              1  2  4  8            └──┴──┴──┘ colour = value
//! ```

use std::path::Path;

use plotters::style::RGBColor;

use super::canvas::{Align, Picture};
use super::palette::{text_on, GRID, INK, MUTED, STRIPE};
use super::{font, ChartFormat, PlotError};

/// What a comparison chart shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Comparison {
    /// One group of bars per category along x, one bar per series in it.
    Bars {
        /// The x axis's categories, in order.
        categories: Vec<String>,
        /// Each series: its name and its value per category (`None` where
        /// it has none).
        series: Vec<(String, Vec<Option<f64>>)>,
    },
    /// One line per series over a numeric x axis.
    Lines {
        /// Each series: its name and its points `(x, y)`, in the order to
        /// join them.
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// A grid of rows × columns, each cell coloured by its value.
    Heatmap {
        /// The columns' names (along x), in order.
        columns: Vec<String>,
        /// The rows' names (top to bottom).
        rows: Vec<String>,
        /// Row-major, `rows.len() * columns.len()` cells: the value and an
        /// optional text (such as the winner) of each, `None` for no data.
        cells: Vec<Option<(f64, Option<String>)>>,
    },
}

/// How to draw a [`Comparison`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompareOptions {
    /// Shown at the top. May be empty.
    pub title: String,
    /// Under the x axis (bars, lines) or the columns (heatmap).
    pub x_label: String,
    /// Above the y axis (bars, lines) or the rows (heatmap).
    pub y_label: String,
    /// Heatmap: above the colour scale.
    pub value_label: String,
    /// Lines: a logarithmic x axis (every x must be positive).
    pub log_x: bool,
    /// Bars, lines: a logarithmic y axis (every y must be positive).
    pub log_y: bool,
    /// PNG or SVG.
    pub format: ChartFormat,
}

/// Draws `chart` into the file at `path`, in `options.format` whatever the
/// path's extension. The folder must exist. Values that a logarithmic axis
/// cannot show (zero, negative) and values that are not finite are left out.
pub fn compare(chart: &Comparison, path: &Path, options: &CompareOptions) -> Result<(), PlotError> {
    if !font::register() {
        return Err(PlotError::Font {
            path: path.to_path_buf(),
        });
    }
    let picture = layout(chart, options);
    let bytes = match options.format {
        ChartFormat::Png => picture.to_png(),
        ChartFormat::Svg => picture.to_svg(),
    }
    .map_err(|message| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    })?;
    std::fs::write(path, bytes).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 560;
const TITLE: f64 = 18.0;
const LABEL: f64 = 13.0;
const TICK: f64 = 12.0;
const SMALL: f64 = 11.0;
const MAX_TICK_STEPS: usize = 6;

/// Series colours, in order (Tableau 10): distinct for ten series, then
/// they repeat.
const SERIES: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The colour of series `i`.
fn series_color(i: usize) -> RGBColor {
    SERIES[i % SERIES.len()]
}

/// The heatmap's colour scale, low to high: pale yellow through green and
/// teal to dark blue (after viridis, reversed so that text reads on both
/// ends with [`text_on`]).
const HEAT: [RGBColor; 5] = [
    RGBColor(0xff, 0xf7, 0xbc),
    RGBColor(0xa1, 0xda, 0xb4),
    RGBColor(0x41, 0xb6, 0xc4),
    RGBColor(0x22, 0x5e, 0xa8),
    RGBColor(0x25, 0x34, 0x94),
];

/// The colour of `t` in `[0, 1]` on the heat scale.
fn heat(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let scaled = t * (HEAT.len() - 1) as f64;
    let i = (scaled.floor() as usize).min(HEAT.len() - 2);
    let f = scaled - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (HEAT[i], HEAT[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// `x` in at most three significant digits, with k, M, G for thousands,
/// millions and billions and no trailing zeros: 1234 → "1.23k", 0.5 → "0.5",
/// 100 → "100", 2500000 → "2.5M".
pub(crate) fn short(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.abs() >= 1e12 || x.abs() < 1e-3 {
        let text = format!("{x:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        return format!("{mantissa}e{exponent}");
    }
    let (scaled, suffix) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e4 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    let magnitude = scaled.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 6) as usize;
    let mut text = format!("{scaled:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if text == "-0" {
        text = "0".into();
    }
    format!("{text}{suffix}")
}

/// A value axis: linear or logarithmic, over `[lo, hi]`, with its ticks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scale {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) log: bool,
    pub(crate) ticks: Vec<f64>,
}

impl Scale {
    /// A linear scale from round ticks covering `[min, max]` and zero
    /// (`from_zero`), or a logarithmic one from the powers of ten around
    /// the positive values.
    pub(crate) fn new(values: &[f64], log: bool, from_zero: bool) -> Scale {
        let finite: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if log {
            let (min, max) = if finite.is_empty() {
                (1.0, 10.0)
            } else {
                (min, max)
            };
            let mut lo = min.log10().floor() as i32;
            let mut hi = max.log10().ceil() as i32;
            if hi <= lo {
                hi = lo + 1;
            }
            // Keep at most a dozen decades labelled.
            let stride = ((hi - lo) as usize).div_ceil(12).max(1);
            lo = lo.max(-300);
            hi = hi.min(300);
            let ticks = (lo..=hi).step_by(stride).map(|e| 10f64.powi(e)).collect();
            return Scale {
                lo: 10f64.powi(lo),
                hi: 10f64.powi(hi),
                log,
                ticks,
            };
        }
        let (mut min, mut max) = if finite.is_empty() {
            (0.0, 1.0)
        } else {
            (min, max)
        };
        if from_zero {
            min = min.min(0.0);
            max = max.max(0.0);
        }
        if max <= min {
            let pad = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
            (min, max) = (min - pad, max + pad);
            if from_zero && min < 0.0 && max > 0.0 && finite.iter().all(|v| *v >= 0.0) {
                min = 0.0;
            }
        }
        let step = nice_step((max - min) / MAX_TICK_STEPS as f64);
        let lo = (min / step).floor() * step;
        let hi = (max / step).ceil() * step;
        let count = ((hi - lo) / step).round();
        if !(count.is_finite() && hi.is_finite() && lo.is_finite() && count <= 100.0) {
            // A range near the largest floats: no round steps, only its ends.
            return Scale {
                lo: min,
                hi: max,
                log: false,
                ticks: vec![min, max],
            };
        }
        let ticks = (0..=count as usize).map(|i| lo + step * i as f64).collect();
        Scale {
            lo,
            hi,
            log: false,
            ticks,
        }
    }

    /// Where `v` falls between the pixels `p0` (at `lo`) and `p1` (at `hi`).
    pub(crate) fn map(&self, v: f64, p0: i32, p1: i32) -> i32 {
        let t = if self.log {
            (v.max(f64::MIN_POSITIVE).log10() - self.lo.log10())
                / (self.hi.log10() - self.lo.log10())
        } else {
            // Halved, so that a range near the largest floats does not
            // overflow.
            (v * 0.5 - self.lo * 0.5) / (self.hi * 0.5 - self.lo * 0.5)
        };
        let t = if t.is_finite() {
            t.clamp(-0.05, 1.05)
        } else {
            0.0
        };
        (f64::from(p0) + (f64::from(p1) - f64::from(p0)) * t).round() as i32
    }

    /// Whether the axis can show `v`.
    fn shows(&self, v: f64) -> bool {
        v.is_finite() && (!self.log || v > 0.0)
    }
}

/// The x axis of lines: ticks at the x values themselves when there are
/// few of them (the parameters of a sweep: 1, 2, 4, 8 CPUs), round ticks
/// otherwise.
pub(crate) fn x_scale(xs: &[f64], log: bool) -> Scale {
    let mut distinct: Vec<f64> = xs
        .iter()
        .copied()
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if (2..=10).contains(&distinct.len()) {
        return Scale {
            lo: distinct[0],
            hi: distinct[distinct.len() - 1],
            log,
            ticks: distinct,
        };
    }
    Scale::new(xs, log, false)
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `raw`.
pub(crate) fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// The chart, laid out.
pub(crate) fn layout(chart: &Comparison, options: &CompareOptions) -> Picture {
    match chart {
        Comparison::Bars { categories, series } => bars(categories, series, options),
        Comparison::Lines { series } => lines(series, options),
        Comparison::Heatmap {
            columns,
            rows,
            cells,
        } => heatmap(columns, rows, cells, options),
    }
}

/// The plotting area of bars and lines, after the title, axis labels and
/// legend took their room.
struct Frame {
    left: i32,
    right: i32,
    top: i32,
    bottom: i32,
}

/// Draws the title, the legend (when there are several series or a named
/// one), the y axis with its ticks and grid, and the axis labels; returns
/// the plotting area.
fn frame(
    picture: &mut Picture,
    names: &[&str],
    y: &Scale,
    options: &CompareOptions,
    swatch: Swatch,
) -> Frame {
    let height = picture.height as i32;
    let width = picture.width as i32;
    if !options.title.is_empty() {
        let title = font::truncate(&options.title, TITLE, picture.width - 40);
        picture.text(title, (20, 24), TITLE, Align::Left, INK);
    }
    let legend = names.len() > 1 || names.iter().any(|n| !n.is_empty());
    let legend_width = if legend {
        let widest = names
            .iter()
            .map(|n| font::width(n, LABEL))
            .max()
            .unwrap_or(0);
        widest.min(220) as i32 + 44
    } else {
        0
    };
    let labels: Vec<String> = y.ticks.iter().map(|&t| short(t)).collect();
    let tick_width = labels
        .iter()
        .map(|l| font::width(l, TICK))
        .max()
        .unwrap_or(0) as i32;
    let area = Frame {
        left: 24 + tick_width,
        right: width - 24 - legend_width,
        top: 70,
        bottom: height - 64,
    };
    if !options.y_label.is_empty() {
        let text = font::truncate(&options.y_label, LABEL, (area.right - 10) as u32);
        picture.text(text, (10, area.top - 20), LABEL, Align::Left, INK);
    }
    if !options.x_label.is_empty() {
        let middle = (area.left + area.right) / 2;
        let text = font::truncate(&options.x_label, LABEL, (area.right - area.left) as u32);
        picture.text(text, (middle, height - 18), LABEL, Align::Center, INK);
    }
    for (tick, label) in y.ticks.iter().zip(labels) {
        let py = y.map(*tick, area.bottom, area.top);
        picture.line((area.left, py), (area.right, py), GRID);
        picture.line((area.left - 4, py), (area.left, py), INK);
        picture.text(label, (area.left - 8, py), TICK, Align::Right, INK);
    }
    picture.line((area.left, area.top), (area.left, area.bottom), INK);
    picture.line((area.left, area.bottom), (area.right, area.bottom), INK);
    if legend {
        let x = area.right + 20;
        let max = (width - x - 28).max(20) as u32;
        for (i, name) in names.iter().enumerate() {
            let y = area.top + 10 + 22 * i as i32;
            if y > area.bottom {
                break;
            }
            let color = series_color(i);
            match swatch {
                Swatch::Bar => picture.rect(x, y - 6, x + 14, y + 7, color),
                Swatch::Line => {
                    picture.polyline(vec![(x - 4, y), (x + 12, y)], 2, color);
                    picture.dot((x + 4, y), 4, color);
                }
            }
            let name = font::truncate(name, LABEL, max);
            picture.text(name, (x + 20, y), LABEL, Align::Left, INK);
        }
    }
    area
}

/// How the legend shows a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Swatch {
    Bar,
    Line,
}

fn page(height: u32) -> Picture {
    Picture {
        width: WIDTH,
        height,
        shapes: Vec::new(),
    }
}

fn bars(
    categories: &[String],
    series: &[(String, Vec<Option<f64>>)],
    options: &CompareOptions,
) -> Picture {
    let mut picture = page(HEIGHT);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .collect();
    let y = Scale::new(&values, options.log_y, true);
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    let area = frame(&mut picture, &names, &y, options, Swatch::Bar);
    let slot = f64::from(area.right - area.left) / categories.len().max(1) as f64;
    let group = slot * 0.8;
    let bar = group / series.len().max(1) as f64;
    let base = if y.log {
        area.bottom
    } else {
        y.map(0.0, area.bottom, area.top)
    };
    for (c, category) in categories.iter().enumerate() {
        let start = f64::from(area.left) + slot * c as f64 + (slot - group) / 2.0;
        let middle = (f64::from(area.left) + slot * (c as f64 + 0.5)).round() as i32;
        let name = font::truncate(category, LABEL, (slot - 4.0).max(1.0) as u32);
        picture.line((middle, area.bottom), (middle, area.bottom + 4), INK);
        picture.text(name, (middle, area.bottom + 16), LABEL, Align::Center, INK);
        for (s, (_, values)) in series.iter().enumerate() {
            let Some(v) = values.get(c).copied().flatten().filter(|v| y.shows(*v)) else {
                continue;
            };
            let x0 = (start + bar * s as f64).round() as i32;
            let x1 = (start + bar * (s + 1) as f64).round() as i32 - i32::from(bar >= 4.0);
            let top = y.map(v, area.bottom, area.top);
            picture.rect(
                x0,
                top.min(base),
                x1.max(x0 + 1),
                top.max(base),
                series_color(s),
            );
            let label = short(v);
            if font::width(&label, SMALL) as f64 <= bar + 4.0 {
                let ly = if top <= base { top - 8 } else { top + 8 };
                picture.text(label, ((x0 + x1) / 2, ly), SMALL, Align::Center, MUTED);
            }
        }
    }
    picture
}

fn lines(series: &[(String, Vec<(f64, f64)>)], options: &CompareOptions) -> Picture {
    let mut picture = page(HEIGHT);
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .collect();
    let y = Scale::new(&ys, options.log_y, true);
    let x = x_scale(&xs, options.log_x);
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    let area = frame(&mut picture, &names, &y, options, Swatch::Line);
    // Inset the x axis so that the first and last points are not on the frame.
    let (x0, x1) = (area.left + 16, area.right - 16);
    for tick in &x.ticks {
        let px = x.map(*tick, x0, x1);
        picture.line((px, area.bottom), (px, area.bottom + 4), INK);
        picture.text(
            short(*tick),
            (px, area.bottom + 16),
            TICK,
            Align::Center,
            INK,
        );
    }
    // Earlier series are drawn wider, so that a later one on top of them
    // leaves them visible at its edges.
    let count = series.len();
    for (s, (_, points)) in series.iter().enumerate() {
        let color = series_color(s);
        let width = 2 + (count - 1 - s).min(2) as u32;
        let pixels: Vec<(i32, i32)> = points
            .iter()
            .filter(|(px, py)| x.shows(*px) && y.shows(*py))
            .map(|&(px, py)| (x.map(px, x0, x1), y.map(py, area.bottom, area.top)))
            .collect();
        picture.polyline(pixels.clone(), width, color);
        for p in pixels {
            picture.dot(p, width + 1, color);
        }
    }
    picture
}

fn heatmap(
    columns: &[String],
    rows: &[String],
    cells: &[Option<(f64, Option<String>)>],
    options: &CompareOptions,
) -> Picture {
    let winners = cells.iter().flatten().any(|(_, w)| w.is_some());
    let cell_height: i32 = if winners { 46 } else { 34 };
    let top = 70;
    let height = (top + cell_height * rows.len().max(1) as i32 + 70).max(240) as u32;
    let mut picture = page(height);
    if !options.title.is_empty() {
        let title = font::truncate(&options.title, TITLE, WIDTH - 40);
        picture.text(title, (20, 24), TITLE, Align::Left, INK);
    }
    let values: Vec<f64> = cells
        .iter()
        .flatten()
        .map(|c| c.0)
        .filter(|v| v.is_finite())
        .collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let fraction = |v: f64| {
        if max > min {
            (v - min) / (max - min)
        } else {
            0.5
        }
    };
    let row_width = rows
        .iter()
        .map(|r| font::width(r, LABEL))
        .max()
        .unwrap_or(0)
        .min(200) as i32;
    let (min_text, max_text) = if values.is_empty() {
        (String::new(), String::new())
    } else {
        (short(min), short(max))
    };
    let scale_text = font::width(&min_text, TICK).max(font::width(&max_text, TICK)) as i32;
    let value_text = font::width(&options.value_label, SMALL).min(240) as i32;
    let legend = (20 + scale_text).max(value_text);
    let left = 20 + row_width + 10;
    let right = WIDTH as i32 - 20 - legend - 20;
    let bottom = top + cell_height * rows.len() as i32;
    let cell_width = f64::from(right - left) / columns.len().max(1) as f64;
    let x_of = |c: usize| left + (cell_width * c as f64).round() as i32;
    if !options.y_label.is_empty() {
        let text = font::truncate(&options.y_label, LABEL, (row_width + 10).max(60) as u32);
        picture.text(text, (20, top - 14), LABEL, Align::Left, MUTED);
    }
    for (r, row) in rows.iter().enumerate() {
        let y0 = top + cell_height * r as i32;
        let name = font::truncate(row, LABEL, row_width as u32);
        picture.text(name, (20, y0 + cell_height / 2), LABEL, Align::Left, INK);
        for c in 0..columns.len() {
            let (x0, x1) = (x_of(c), x_of(c + 1));
            let inner = (x1 - x0 - 6).max(1) as u32;
            match cells.get(r * columns.len() + c).and_then(Option::as_ref) {
                Some((value, winner)) => {
                    let fill = heat(fraction(*value));
                    picture.rect(x0, y0, x1 - 1, y0 + cell_height - 1, fill);
                    let ink = text_on(fill);
                    let text = font::truncate(&short(*value), TICK, inner);
                    let middle = (x0 + x1) / 2;
                    match winner {
                        Some(winner) => {
                            picture.text(text, (middle, y0 + 14), TICK, Align::Center, ink);
                            let winner = font::truncate(winner, SMALL, inner);
                            picture.text(winner, (middle, y0 + 31), SMALL, Align::Center, ink);
                        }
                        None => picture.text(
                            text,
                            (middle, y0 + cell_height / 2),
                            TICK,
                            Align::Center,
                            ink,
                        ),
                    }
                }
                None => picture.rect(x0, y0, x1 - 1, y0 + cell_height - 1, STRIPE),
            }
        }
    }
    for (c, column) in columns.iter().enumerate() {
        let middle = (x_of(c) + x_of(c + 1)) / 2;
        let name = font::truncate(column, LABEL, (cell_width - 4.0).max(1.0) as u32);
        picture.text(name, (middle, bottom + 16), LABEL, Align::Center, INK);
    }
    if !options.x_label.is_empty() {
        let text = font::truncate(&options.x_label, LABEL, (right - left) as u32);
        picture.text(
            text,
            ((left + right) / 2, bottom + 42),
            LABEL,
            Align::Center,
            INK,
        );
    }
    // The colour scale: a vertical bar, high at the top.
    let (bar_x, bar_top, bar_bottom) = (right + 20, top + 10, bottom.max(top + 120) - 10);
    if !options.value_label.is_empty() {
        let text = font::truncate(&options.value_label, SMALL, legend as u32);
        picture.text(text, (bar_x, top - 14), SMALL, Align::Left, MUTED);
    }
    let steps = (bar_bottom - bar_top).max(1);
    for i in 0..steps {
        let t = 1.0 - f64::from(i) / f64::from(steps - 1).max(1.0);
        picture.rect(bar_x, bar_top + i, bar_x + 14, bar_top + i + 1, heat(t));
    }
    picture.text(max_text, (bar_x + 20, bar_top + 5), TICK, Align::Left, INK);
    picture.text(
        min_text,
        (bar_x + 20, bar_bottom - 5),
        TICK,
        Align::Left,
        INK,
    );
    picture
}

#[cfg(test)]
mod tests {
    use super::super::canvas::Shape;
    use super::*;

    #[test]
    fn numbers_print_short() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (0.5, "0.5"),
            (1.25, "1.25"),
            (100.0, "100"),
            (1234.0, "1234"),
            (12_345.0, "12.3k"),
            (2_500_000.0, "2.5M"),
            (3e9, "3G"),
            (0.001234, "0.00123"),
            (-40.0, "-40"),
            (99.96, "100"),
            (1e300, "1e300"),
            (-2.5e15, "-2.5e15"),
            (1.5e-9, "1.5e-9"),
            (f64::MAX, "1.8e308"),
        ];
        for (x, text) in cases {
            assert_eq!(short(x), text, "{x}");
        }
    }

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(1.1), 2.0);
        assert_eq!(nice_step(41.0), 50.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn a_linear_scale_covers_the_values_and_zero_with_round_ticks() {
        let scale = Scale::new(&[100.0, 400.078, 200.0], false, true);
        assert_eq!((scale.lo, scale.hi), (0.0, 500.0));
        assert_eq!(scale.ticks, [0.0, 100.0, 200.0, 300.0, 400.0, 500.0]);
        assert_eq!(scale.map(0.0, 500, 100), 500);
        assert_eq!(scale.map(250.0, 500, 100), 300);
        let negative = Scale::new(&[-3.0, 7.0], false, true);
        assert!(negative.lo <= -3.0 && negative.hi >= 7.0 && negative.ticks.contains(&0.0));
        let flat = Scale::new(&[5.0, 5.0], false, false);
        assert!(flat.lo < 5.0 && flat.hi > 5.0, "{flat:?}");
        let huge = Scale::new(&[f64::MAX, -f64::MAX], false, true);
        assert_eq!(huge.ticks, [-f64::MAX, f64::MAX]);
        assert_eq!(huge.map(0.0, 0, 100), 50);
        let empty = Scale::new(&[], false, true);
        assert_eq!((empty.lo, empty.hi), (0.0, 1.0));
        assert!(Scale::new(&[1.0, 7.0], false, true).ticks.len() <= MAX_TICK_STEPS + 1);
    }

    #[test]
    fn a_log_scale_spans_whole_decades_and_skips_what_it_cannot_show() {
        let scale = Scale::new(&[3.0, 250.0, 0.0, -1.0], true, true);
        assert_eq!(scale.ticks, [1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(scale.map(10.0, 0, 300), 100);
        assert!(!scale.shows(0.0) && scale.shows(0.5));
        let one = Scale::new(&[10.0], true, false);
        assert_eq!(one.ticks, [10.0, 100.0]);
    }

    #[test]
    fn a_sweep_of_few_x_values_is_ticked_at_the_values() {
        let x = x_scale(&[4.0, 1.0, 2.0, 1.0], false);
        assert_eq!(x.ticks, [1.0, 2.0, 4.0]);
        assert_eq!((x.lo, x.hi), (1.0, 4.0));
        assert_eq!(x.map(2.0, 0, 300), 100);
        let log = x_scale(&[1.0, 2.0, 4.0, 8.0], true);
        assert_eq!(log.map(2.0, 0, 300), 100);
        let many: Vec<f64> = (0..50).map(f64::from).collect();
        assert_eq!(
            x_scale(&many, false).ticks,
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
        );
        assert_eq!(x_scale(&[3.0], false), Scale::new(&[3.0], false, false));
    }

    #[test]
    fn the_heat_scale_runs_from_pale_to_dark() {
        assert_eq!(heat(0.0), HEAT[0]);
        assert_eq!(heat(1.0), HEAT[4]);
        assert_eq!(heat(2.0), HEAT[4]);
        assert_eq!(heat(f64::NAN), HEAT[0]);
        assert_eq!(heat(0.25), HEAT[1]);
    }

    #[test]
    fn grouped_bars_draw_one_bar_per_value_and_a_legend() {
        assert!(font::register());
        let chart = Comparison::Bars {
            categories: vec!["1".into(), "2".into(), "4".into()],
            series: vec![
                (
                    "threads".into(),
                    vec![Some(400.0), Some(200.0), Some(100.0)],
                ),
                ("asyncio".into(), vec![Some(300.0), None, Some(300.0)]),
            ],
        };
        let picture = layout(&chart, &CompareOptions::default());
        let colored = |c: RGBColor| {
            picture
                .shapes
                .iter()
                .filter(|s| matches!(s, Shape::Rect { color, .. } if *color == c))
                .count()
        };
        // Three bars and a legend swatch for the first, two and one for the
        // second.
        assert_eq!(colored(SERIES[0]), 4);
        assert_eq!(colored(SERIES[1]), 3);
        let texts = picture.texts();
        for t in ["threads", "asyncio", "1", "2", "4", "400", "0"] {
            assert!(texts.contains(&t), "{t} in {texts:?}");
        }
    }

    #[test]
    fn lines_join_their_points_and_a_heatmap_labels_every_cell() {
        assert!(font::register());
        let chart = Comparison::Lines {
            series: vec![("a".into(), vec![(1.0, 4.0), (2.0, 2.0), (4.0, 1.0)])],
        };
        let picture = layout(&chart, &CompareOptions::default());
        // The line, and the legend's swatch.
        let polylines: Vec<usize> = picture
            .shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Polyline { points, .. } => Some(points.len()),
                _ => None,
            })
            .collect();
        assert_eq!(polylines, [2, 3]);
        let heat = Comparison::Heatmap {
            columns: vec!["10".into(), "100".into()],
            rows: vec!["x".into(), "y".into()],
            cells: vec![
                Some((1.0, Some("threads".into()))),
                Some((2.5, Some("asyncio".into()))),
                None,
                Some((4.0, None)),
            ],
        };
        let picture = layout(&heat, &CompareOptions::default());
        let texts = picture.texts();
        for t in ["1", "2.5", "4", "threads", "asyncio", "x", "y", "10", "100"] {
            assert!(texts.contains(&t), "{t} in {texts:?}");
        }
    }
}
