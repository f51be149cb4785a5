//! Layout of a Gantt chart: a trace and options in, a [`Picture`] out.
//!
//! From the top: the title, the legend (only the states that occur, then the
//! kinds of marker), the marker labels, one row per CPU, one row per thread,
//! the time axis and a line of notes. Rows are as high as fits a target
//! height, between [`ROW_MAX`] and [`ROW_MIN`] pixels; past [`MAX_THREAD_ROWS`]
//! threads (or [`MAX_CPU_ROWS`] CPUs) one row stands for several, drawn with
//! the state that covers most of their time. Row labels are left out where
//! rows are too thin to hold one each: every k-th row is labelled then, with
//! a tick mark.

use std::ops::Range;

use plotters::style::RGBColor;

use super::axis;
use super::canvas::{Align, Picture};
use super::font;
use super::merge::{merge_overlapping, merge_sorted, Columns, Segment};
use super::palette::{self, Shade};
use super::{GanttOptions, Marker, MarkerKind};
use crate::ids::ThreadId;
use crate::time::Time;
use crate::trace::Trace;

/// Space around the chart.
const MARGIN: i32 = 16;
/// Space right of the plot, for the last axis label.
const RIGHT: i32 = 40;
const TITLE_SIZE: f64 = 22.0;
const LEGEND_SIZE: f64 = 14.0;
const LABEL_SIZE: f64 = 13.0;
const SMALL_SIZE: f64 = 12.0;
/// The tallest a row gets.
pub(crate) const ROW_MAX: u32 = 22;
/// The thinnest a row gets.
pub(crate) const ROW_MIN: u32 = 2;
/// Thread rows share about this much height before they thin down.
const THREAD_AREA: u32 = 1600;
/// Past this many threads, one row stands for several.
pub(crate) const MAX_THREAD_ROWS: usize = 2000;
/// CPU rows, a little taller than thread rows while there are few.
const CPU_ROW: u32 = 24;
const CPU_AREA: u32 = 384;
/// Past this many CPUs, one row stands for several.
pub(crate) const MAX_CPU_ROWS: usize = 256;
/// Row labels longer than this are cut with an ellipsis.
const LABEL_MAX_WIDTH: u32 = 200;
/// Row labels closer than this would overlap: label every k-th row.
const LABEL_SPACING: u32 = 15;
/// Space between the CPU rows and the thread rows.
const SECTION_GAP: i32 = 12;
/// Height of one lane of marker labels.
const MARKER_LANE: i32 = 18;
/// Lanes of marker labels before labels may overlap.
const MAX_MARKER_LANES: usize = 3;

/// How `n` things share rows: `per` things a row, `rows` rows, `height`
/// pixels each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fit {
    pub(crate) per: usize,
    pub(crate) rows: usize,
    pub(crate) height: u32,
    /// Label every `every`-th row.
    pub(crate) every: usize,
}

/// Fits `n` things into rows of `area` pixels in all, each `min..=max` high,
/// at most `max_rows` rows.
pub(crate) fn fit(n: usize, area: u32, min: u32, max: u32, max_rows: usize) -> Fit {
    let per = n.div_ceil(max_rows).max(1);
    let rows = n.div_ceil(per);
    let height = (area / rows.max(1) as u32).clamp(min, max);
    let every = LABEL_SPACING.div_ceil(height) as usize;
    Fit {
        per,
        rows,
        height,
        every,
    }
}

/// What a row shows.
enum Content {
    /// CPUs (one, or several merged).
    Cpus(Range<usize>),
    /// Threads (one, or several merged).
    Threads(Range<usize>),
}

/// A row, placed.
struct Row {
    content: Content,
    label: String,
    show_label: bool,
    y: i32,
    height: u32,
}

/// An interval as the merge takes it.
type Span<K> = (Time, Time, K);

/// Lays out the Gantt chart of `trace`.
pub(crate) fn layout(trace: &Trace, options: &GanttOptions) -> Picture {
    let end = Time(trace.end.max(trace.makespan()).as_nanos().max(1));
    let cpus = usize::from(trace.machine.cpus);
    let threads = trace.threads.len();

    // Intervals per thread (state colours) and per CPU (who ran).
    let intervals = trace.thread_intervals();
    let mut present = [false; Shade::COUNT];
    let mut thread_spans: Vec<Vec<Span<Shade>>> = Vec::with_capacity(threads);
    let mut cpu_spans: Vec<Vec<Span<(ThreadId, Shade)>>> = vec![Vec::new(); cpus];
    for list in &intervals {
        let mut spans = Vec::with_capacity(list.len());
        for iv in list {
            let Some(shade) = Shade::of(iv.state) else {
                continue;
            };
            present[shade.index()] = true;
            spans.push((iv.start, iv.end, shade));
            if let (Some(cpu), true) = (iv.cpu, iv.state.on_cpu()) {
                if let Some(row) = cpu_spans.get_mut(cpu.index()) {
                    row.push((iv.start, iv.end, (iv.thread, shade)));
                }
            }
        }
        thread_spans.push(spans);
    }
    drop(intervals);
    for row in &mut cpu_spans {
        row.sort_by_key(|&(start, end, _)| (start, end));
    }

    // Rows and their labels.
    let cpu_fit = fit(cpus, CPU_AREA, ROW_MIN, CPU_ROW, MAX_CPU_ROWS);
    let thread_fit = fit(threads, THREAD_AREA, ROW_MIN, ROW_MAX, MAX_THREAD_ROWS);
    let mut rows = Vec::new();
    for i in 0..cpu_fit.rows {
        let range = i * cpu_fit.per..((i + 1) * cpu_fit.per).min(cpus);
        let label = if range.len() == 1 {
            format!("CPU {}", range.start)
        } else {
            format!("CPU {}–{}", range.start, range.end - 1)
        };
        rows.push(Row {
            content: Content::Cpus(range),
            label,
            show_label: i % cpu_fit.every == 0,
            y: 0,
            height: cpu_fit.height,
        });
    }
    for i in 0..thread_fit.rows {
        let range = i * thread_fit.per..((i + 1) * thread_fit.per).min(threads);
        let name = |t: usize| trace.threads[t].name.as_str();
        let label = if range.len() == 1 {
            name(range.start).to_string()
        } else {
            format!("{} … {}", name(range.start), name(range.end - 1))
        };
        rows.push(Row {
            content: Content::Threads(range),
            label,
            show_label: i % thread_fit.every == 0,
            y: 0,
            height: thread_fit.height,
        });
    }
    let label_size = |h: u32| if h >= 18 { LABEL_SIZE } else { SMALL_SIZE };
    let mut label_width = 0;
    for row in &mut rows {
        if row.show_label {
            let size = label_size(row.height.max(LABEL_SPACING));
            row.label = font::truncate(&row.label, size, LABEL_MAX_WIDTH);
            label_width = label_width.max(font::width(&row.label, size));
        }
    }

    // Horizontal geometry.
    let width = options.width as i32;
    let x0 = MARGIN + label_width as i32 + 12;
    let x1 = (width - RIGHT).max(x0 + 1);
    let columns = Columns::new(end, (x1 - x0) as u32);
    let x_at = |t: Time| x0 + columns.edge(t) as i32;

    // Markers, in time order, with their labels spread over lanes.
    let mut markers: Vec<&Marker> = options.markers.iter().collect();
    markers.sort_by_key(|m| m.time);
    let mut lanes_right: Vec<i32> = Vec::new();
    let mut placed = Vec::new();
    for marker in &markers {
        let x = x_at(marker.time.min(end)).min(x1 - 1);
        let text = font::truncate(&marker.label, SMALL_SIZE, 240);
        let w = font::width(&text, SMALL_SIZE) as i32;
        let (left, align) = if x + 4 + w <= width - MARGIN {
            (x + 4, Align::Left)
        } else {
            (x - 4 - w, Align::Right)
        };
        let lane = match lanes_right.iter().position(|&r| r + 8 <= left) {
            Some(lane) => lane,
            None if lanes_right.len() < MAX_MARKER_LANES => {
                lanes_right.push(i32::MIN);
                lanes_right.len() - 1
            }
            None => (0..lanes_right.len())
                .min_by_key(|&l| lanes_right[l])
                .unwrap_or(0),
        };
        lanes_right[lane] = lanes_right[lane].max(left + w);
        placed.push((marker, x, text, align, lane));
    }

    // Vertical geometry.
    let mut pic = Picture {
        width: options.width,
        ..Picture::default()
    };
    let mut y = MARGIN;
    let title = if options.title.is_empty() {
        format!("makespan {}", trace.makespan())
    } else {
        format!("{} — makespan {}", options.title, trace.makespan())
    };
    pic.text(
        font::truncate(&title, TITLE_SIZE, (width - 2 * MARGIN) as u32),
        (MARGIN, y + 12),
        TITLE_SIZE,
        Align::Left,
        palette::INK,
    );
    y += 34;
    y = legend(&mut pic, &present, &markers, y, width);
    let lanes_top = y;
    y += lanes_right.len() as i32 * MARKER_LANE;
    if !lanes_right.is_empty() {
        y += 4;
    }
    let y0 = y;
    for (i, row) in rows.iter_mut().enumerate() {
        if i == cpu_fit.rows && cpu_fit.rows > 0 {
            y += SECTION_GAP;
        }
        row.y = y;
        y += row.height as i32;
    }
    let y1 = y;
    let axis_y = y1 + 16;
    let note_y = y1 + 40;
    pic.height = (note_y + 10 + MARGIN / 2) as u32;

    // Row backgrounds: CPU rows on a grey track, every other thread row
    // striped when rows are tall enough to follow.
    for (i, row) in rows.iter().enumerate() {
        let h = row.height as i32;
        let shaded = match row.content {
            Content::Cpus(_) => true,
            Content::Threads(_) => h >= 6 && (i - cpu_fit.rows) % 2 == 1,
        };
        if shaded {
            pic.rect(x0, row.y, x1, row.y + h, palette::STRIPE);
        }
    }

    // Grid and axis.
    let max_steps = ((x1 - x0) / 90).clamp(2, 12) as u64;
    let ticks = axis::ticks(end, max_steps);
    for tick in &ticks {
        let x = x_at(tick.time).min(x1 - 1);
        pic.rect(x, y0, x + 1, y1, palette::GRID);
    }

    // Bars.
    for row in &rows {
        draw_row(&mut pic, row, trace, &cpu_spans, &thread_spans, columns, x0);
    }

    pic.rect(x0, y1, x1, y1 + 1, palette::INK);
    for tick in &ticks {
        let x = x_at(tick.time).min(x1 - 1);
        pic.rect(x, y1, x + 1, y1 + 5, palette::INK);
        pic.text(
            tick.label.clone(),
            (x, axis_y),
            SMALL_SIZE,
            Align::Center,
            palette::INK,
        );
    }

    // Row labels, with a tick mark when only some rows have one.
    for row in &rows {
        if !row.show_label {
            continue;
        }
        let every = match row.content {
            Content::Cpus(_) => cpu_fit.every,
            Content::Threads(_) => thread_fit.every,
        };
        let mid = row.y + row.height as i32 / 2;
        if every > 1 {
            pic.rect(x0 - 5, mid, x0 - 1, mid + 1, palette::MUTED);
        }
        pic.text(
            row.label.clone(),
            (x0 - 8, mid),
            label_size(row.height.max(LABEL_SPACING)),
            Align::Right,
            palette::INK,
        );
    }

    // Markers: highlighted rows, then lines and labels.
    let thread_row =
        |t: ThreadId| (t.index() < threads).then(|| cpu_fit.rows + t.index() / thread_fit.per);
    for (marker, ..) in &placed {
        let color = marker_color(marker.kind);
        for &t in &marker.threads {
            if let Some(row) = thread_row(t).map(|r| &rows[r]) {
                let (top, bottom) = (row.y - 1, row.y + row.height as i32 + 1);
                let left = MARGIN - 6;
                pic.rect(left, top - 1, x1 + 2, top + 1, color);
                pic.rect(left, bottom - 1, x1 + 2, bottom + 1, color);
                pic.rect(left, top - 1, left + 2, bottom + 1, color);
                pic.rect(x1, top - 1, x1 + 2, bottom + 1, color);
            }
        }
    }
    for (marker, x, text, align, lane) in &placed {
        let color = marker_color(marker.kind);
        let label_y = lanes_top + *lane as i32 * MARKER_LANE + MARKER_LANE / 2;
        pic.rect(x - 2, label_y - 6, x + 3, y1, palette::WHITE);
        pic.rect(x - 1, label_y - 6, x + 1, y1, color);
        let tx = if *align == Align::Left { x + 4 } else { x - 4 };
        pic.text(text.clone(), (tx, label_y), SMALL_SIZE, *align, color);
    }

    // Notes.
    let mut notes = vec![format!(
        "{} CPU{} · {} · {} thread{}",
        cpus,
        if cpus == 1 { "" } else { "s" },
        trace.machine.scheduler.name(),
        threads,
        if threads == 1 { "" } else { "s" },
    )];
    if thread_fit.per > 1 {
        notes.push(format!("each thread row merges {} threads", thread_fit.per));
    }
    if cpu_fit.per > 1 {
        notes.push(format!("each CPU row merges {} CPUs", cpu_fit.per));
    }
    if thread_fit.every > 1 {
        notes.push(format!(
            "every {} thread row labelled",
            ordinal(thread_fit.every)
        ));
    }
    pic.text(
        notes.join(" · "),
        (x0, note_y),
        SMALL_SIZE,
        Align::Left,
        palette::MUTED,
    );
    pic
}

/// Draws the bars of one row.
fn draw_row(
    pic: &mut Picture,
    row: &Row,
    trace: &Trace,
    cpu_spans: &[Vec<Span<(ThreadId, Shade)>>],
    thread_spans: &[Vec<Span<Shade>>],
    columns: Columns,
    x0: i32,
) {
    let h = row.height as i32;
    let pad = match h {
        20.. => 4,
        10..=19 => h / 5,
        5..=9 => 1,
        _ => 0,
    };
    let (top, bottom) = (row.y + pad, row.y + h - pad);
    let mut bar = |seg_x0: u32, seg_x1: u32, color: RGBColor| {
        pic.rect(x0 + seg_x0 as i32, top, x0 + seg_x1 as i32, bottom, color);
    };
    match &row.content {
        Content::Threads(range) if range.len() == 1 => {
            for seg in merge_sorted(thread_spans[range.start].iter().copied(), columns) {
                bar(seg.x0, seg.x1, seg.key.color());
            }
        }
        Content::Threads(range) => {
            let spans = thread_spans[range.clone()].iter().flatten();
            let merged = merge_overlapping(
                spans.map(|&(s, e, shade)| (s, e, shade.index())),
                columns,
                Shade::COUNT,
            );
            for seg in merged {
                bar(seg.x0, seg.x1, Shade::ALL[seg.key].color());
            }
        }
        Content::Cpus(range) if range.len() == 1 => {
            let merged = merge_sorted(cpu_spans[range.start].iter().copied(), columns);
            for seg in &merged {
                bar(seg.x0, seg.x1, seg.key.1.color());
            }
            cpu_details(pic, &merged, trace, (top, bottom), x0);
        }
        Content::Cpus(range) => {
            let spans = cpu_spans[range.clone()].iter().flatten();
            let merged = merge_overlapping(
                spans.map(|&(s, e, (_, shade))| (s, e, shade.index())),
                columns,
                Shade::COUNT,
            );
            for seg in merged {
                bar(seg.x0, seg.x1, Shade::ALL[seg.key].color());
            }
        }
    }
}

/// On a CPU row: a white line where the CPU passes from one thread to
/// another, and the thread's name on bars wide enough to hold it.
fn cpu_details(
    pic: &mut Picture,
    merged: &[Segment<(ThreadId, Shade)>],
    trace: &Trace,
    (top, bottom): (i32, i32),
    x0: i32,
) {
    let size = if bottom - top >= 14 { SMALL_SIZE } else { 10.0 };
    for (i, seg) in merged.iter().enumerate() {
        let w = seg.x1 - seg.x0;
        if i > 0 {
            let prev = &merged[i - 1];
            if prev.x1 == seg.x0 && prev.key.0 != seg.key.0 && w >= 4 && prev.x1 - prev.x0 >= 4 {
                pic.rect(
                    x0 + seg.x0 as i32,
                    top,
                    x0 + seg.x0 as i32 + 1,
                    bottom,
                    palette::WHITE,
                );
            }
        }
        if w >= 24 && bottom - top >= 10 && seg.key.1 != Shade::Switch {
            let Some(info) = trace.threads.get(seg.key.0.index()) else {
                continue;
            };
            let name = font::truncate(&info.name, size, w - 8);
            if name == info.name || name.chars().count() >= 4 {
                let mid = x0 + (seg.x0 + seg.x1) as i32 / 2;
                pic.text(
                    name,
                    (mid, (top + bottom) / 2),
                    size,
                    Align::Center,
                    palette::text_on(seg.key.1.color()),
                );
            }
        }
    }
}

/// Draws the legend from `y` on, wrapping at the page width; returns the
/// height below it.
fn legend(
    pic: &mut Picture,
    present: &[bool; Shade::COUNT],
    markers: &[&Marker],
    mut y: i32,
    width: i32,
) -> i32 {
    const LINE: i32 = 22;
    let mut kinds: Vec<MarkerKind> = markers.iter().map(|m| m.kind).collect();
    kinds.sort();
    kinds.dedup();
    let entries = Shade::ALL
        .iter()
        .filter(|s| present[s.index()])
        .map(|s| (s.name(), s.color(), false))
        .chain(
            kinds
                .iter()
                .map(|&k| (marker_name(k), marker_color(k), true)),
        );
    let mut x = MARGIN;
    let mut any = false;
    for (name, color, line) in entries {
        let w = 14 + 6 + font::width(name, LEGEND_SIZE) as i32 + 20;
        if x > MARGIN && x + w > width - MARGIN {
            x = MARGIN;
            y += LINE;
        }
        let mid = y + LINE / 2;
        if line {
            pic.rect(x + 5, mid - 8, x + 8, mid + 8, color);
        } else {
            pic.rect(x, mid - 7, x + 14, mid + 7, color);
        }
        pic.text(name, (x + 20, mid), LEGEND_SIZE, Align::Left, palette::INK);
        x += w;
        any = true;
    }
    if any {
        y += LINE + 8;
    }
    y
}

/// "2nd", "3rd", "10th".
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn marker_color(kind: MarkerKind) -> RGBColor {
    match kind {
        MarkerKind::Deadlock => RGBColor(0xe0, 0x10, 0x10),
        MarkerKind::Race => RGBColor(0xc0, 0x00, 0xb0),
        MarkerKind::Failure => RGBColor(0x10, 0x10, 0x10),
        MarkerKind::Note => RGBColor(0x34, 0x6a, 0xd0),
    }
}

fn marker_name(kind: MarkerKind) -> &'static str {
    match kind {
        MarkerKind::Deadlock => "deadlock",
        MarkerKind::Race => "race",
        MarkerKind::Failure => "failure",
        MarkerKind::Note => "note",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stay_readable_from_three_threads_to_a_hundred_thousand() {
        let f = |n| fit(n, THREAD_AREA, ROW_MIN, ROW_MAX, MAX_THREAD_ROWS);
        assert_eq!(
            f(3),
            Fit {
                per: 1,
                rows: 3,
                height: ROW_MAX,
                every: 1
            }
        );
        assert_eq!(
            f(30),
            Fit {
                per: 1,
                rows: 30,
                height: ROW_MAX,
                every: 1
            }
        );
        assert_eq!(
            f(100),
            Fit {
                per: 1,
                rows: 100,
                height: 16,
                every: 1
            }
        );
        assert_eq!(
            f(400),
            Fit {
                per: 1,
                rows: 400,
                height: 4,
                every: 4
            }
        );
        assert_eq!(
            f(2000),
            Fit {
                per: 1,
                rows: 2000,
                height: 2,
                every: 8
            }
        );
        assert_eq!(
            f(100_000),
            Fit {
                per: 50,
                rows: 2000,
                height: 2,
                every: 8
            }
        );
        assert_eq!(
            f(0),
            Fit {
                per: 1,
                rows: 0,
                height: ROW_MAX,
                every: 1
            }
        );
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal(2), "2nd");
        assert_eq!(ordinal(3), "3rd");
        assert_eq!(ordinal(8), "8th");
        assert_eq!(ordinal(11), "11th");
        assert_eq!(ordinal(21), "21st");
    }
}
