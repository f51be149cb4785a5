//! Layout of a Gantt chart: a trace and options in, a [`Picture`] out.
//!
//! From the top: the title, the legend (only the states that occur, the GIL
//! marks drawn, then the kinds of marker), the marker labels, one row per
//! CPU, one row per GIL, one row per thread, the rows of each device, the
//! time axis and a line of notes. Rows are as high as fits a target height,
//! between [`ROW_MAX`] and [`ROW_MIN`] pixels;
//! past [`MAX_THREAD_ROWS`] threads (or [`MAX_CPU_ROWS`] CPUs) one row stands
//! for several, drawn with the state that covers most of their time. Row
//! labels are left out where rows are too thin to hold one each: every k-th
//! row is labelled then, with a tick mark.
//!
//! Bars of waits on a resource or a thread carry its name where they are
//! wide enough, as CPU bars carry the thread's; both are placed on the
//! merged bars, so only bars that survive pixel merging are labelled. The
//! waits of a deadlocked cycle are hatched and framed from where each
//! thread blocked to the end (see [`super::deadlock`]).
//!
//! A device gets one row per channel, on a grey track as CPUs do: each
//! request in service is a bar labelled with its submitter's name, as a CPU
//! bar is with the thread's. When some request ever waited for a channel, a
//! queue row follows: a bar wherever requests wait, darker the more of them
//! (labelled with how many where wide enough). Past [`MAX_CHANNEL_ROWS`]
//! channels one row stands for several, drawn where most of their time is
//! in service; past [`MAX_DEVICES`](super::devices::MAX_DEVICES) devices
//! the rest are left out (the notes say so, and which rows merge channels).
//! A trace without devices draws exactly as it did before devices existed.
//!
//! Each process with a GIL (one that has GIL events) gets a row, "gil
//! python", between the CPU rows and the thread rows: the GIL is the
//! process's second CPU, so its row sits with the CPUs, on the same grey
//! track, right above the threads whose gil waits it explains. Each hold is
//! a bar labelled with its holder's name, as a CPU bar is; a small triangle
//! hangs over the row where a waiter asked for a drop, and a hold its
//! holder dropped on request ends in a dark edge (where the hold and its
//! bar are at least four pixels wide). Past [`MAX_GILS`](super::gil::MAX_GILS) processes the
//! rest are left out (the notes say so). A trace without GIL events draws
//! exactly as it did before GIL rows existed.
//!
//! A thread's row keeps, in each pixel column, the colour of the state that
//! covers most of the column, so the bars never overstate a state's share.
//! A wait too brief to win a column of its own would vanish then: a thread
//! that runs 990µs and waits 10µs for a lock every millisecond would draw
//! solid green at a million intervals, hiding the contention. Where such a
//! wait (blocking, or a spin: see [`marks`]) is in a column and neither that
//! column nor a neighbour is drawn with it, the bar is underlined in its
//! colour, the largest such minority of the column, 1–2 pixels high at the
//! bottom of the bar (see [`super::merge`]), and the notes say
//! "underlined". An underline says "this happens here", not how much: it
//! is as high for 1% as for 49%. That is the choice over splitting a
//! column in proportion to its states, which would leave 1% of a 14-pixel
//! bar a fifth of a pixel, gone again, and would need a threshold below
//! which minorities still vanish. Bars of waits at least two columns long
//! always cover a whole column next to each end, so they never cause an
//! underline: a chart whose intervals all span a few pixels draws as it did
//! before. Rows merging several threads (past
//! [`MAX_THREAD_ROWS`] threads) are two pixels high, too thin for an
//! underline, and are not underlined.
//!
//! When the memory in use varies over the chart (see [`super::memory`] for
//! how much), a strip [`MEMORY_ROW`](super::memory::MEMORY_ROW) pixels high
//! follows the last row, labelled "memory": a step line of the bytes in
//! use over the same time axis, from 0 at its bottom to the run's peak
//! (written at its top left), or to the machine's memory, dashed, when the
//! peak passes half of it. Each pixel column draws the lowest to the highest
//! use within it. The legend gets a "memory" entry then. A trace whose
//! memory is flat draws exactly as it did before the strip existed.
//!
//! The threads' and CPUs' bars are merged to pixel columns while the
//! trace's intervals stream past, once the columns are known: no list of
//! intervals is kept. A row of one thread or CPU holds its segments and
//! one open column, its waits' labels a cover per column and target; rows
//! that stand for several threads or CPUs hold a table of columns × the
//! shades the trace has each, at most 32 MiB of tables at once (past that,
//! more passes of the trace).
//! A 4M-change trace's chart takes 16 MB beyond the run (4 bytes a change).

use std::ops::Range;

use plotters::style::RGBColor;

use super::axis;
use super::canvas::{Align, Picture};
use super::deadlock;
use super::devices::{queue_range, DeviceSpans, Timed};
use super::font;
use super::gil::{GilBars, GilSpans, Gils};
use super::memory::{self, MemoryColumns, MemoryLine, MEMORY_ROW};
use super::merge::{
    merge_overlapping, merge_sorted, ColumnCover, Columns, Marked, OverlapMerge, Segment,
    SortedMerge,
};
use super::palette::{self, level_color, queue_level, Shade};
use super::{GanttOptions, Marker, MarkerKind};
use crate::ids::ThreadId;
use crate::model::thread::{BlockReason, ThreadState};
use crate::time::Time;
use crate::trace::{Trace, WaitTarget};

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
/// Marker labels longer than this are cut; deadlock labels spell a cycle
/// and get [`DEADLOCK_LABEL_MAX`].
const MARKER_LABEL_MAX: u32 = 240;
const DEADLOCK_LABEL_MAX: u32 = 560;
/// Distance between the hatch lines of a deadlocked wait.
const HATCH_STEP: i32 = 8;
/// Device rows share about this much height before they thin down.
const DEVICE_AREA: u32 = 384;
/// Past this many channels, one row of a device stands for several.
pub(crate) const MAX_CHANNEL_ROWS: usize = 16;
/// Space between the rows of two devices.
const DEVICE_GAP: i32 = 6;
/// GIL rows share about this much height before they thin down; they are
/// as tall as CPU rows while there are few.
const GIL_AREA: u32 = 384;

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
    /// The GIL of the `n`-th process drawn with one.
    Gil(usize),
    /// Threads (one, or several merged).
    Threads(Range<usize>),
    /// Channels of the `device`-th device (one, or several merged).
    Channels { device: usize, range: Range<usize> },
    /// The queue of the `device`-th device.
    Queue { device: usize },
    /// The queue of the `device`-th device, a pool's, among the thread
    /// rows: its threads' rows follow it.
    PoolQueue { device: usize },
    /// The memory in use.
    Memory,
}

impl Content {
    /// The device whose row it is, if any.
    fn device(&self) -> Option<usize> {
        match *self {
            Content::Channels { device, .. }
            | Content::Queue { device }
            | Content::PoolQueue { device } => Some(device),
            Content::Cpus(_) | Content::Gil(_) | Content::Threads(_) | Content::Memory => None,
        }
    }

    /// Its section of the chart, in order from the top: CPUs, GILs,
    /// threads, devices, memory. Sections are set apart by a gap.
    fn section(&self) -> u8 {
        match self {
            Content::Cpus(_) => 0,
            Content::Gil(_) => 1,
            Content::Threads(_) | Content::PoolQueue { .. } => 2,
            Content::Channels { .. } | Content::Queue { .. } => 3,
            Content::Memory => 4,
        }
    }
}

/// A row, placed.
struct Row {
    content: Content,
    label: String,
    show_label: bool,
    /// Whether only some rows of its kind are labelled.
    sparse: bool,
    y: i32,
    height: u32,
}

/// What a chart draws besides the threads' and CPUs' bars (those are
/// [`Bars`], merged once the columns are known).
struct Spans {
    /// Per thread of a deadlocked cycle, when it blocked for good and the
    /// shade of that wait.
    deadlocked: Vec<Option<(Time, Shade)>>,
    /// Per device drawn, its channels and its queue.
    devices: Vec<DeviceSpans>,
    /// The GILs drawn: holds, drop requests, forced drops.
    gils: Gils,
    /// Which shades of devices and GILs occur, for the legend.
    present: [bool; Shade::COUNT],
}

impl Spans {
    /// The spans of `trace` drawn up to `end`.
    fn of(trace: &Trace, end: Time) -> Spans {
        let mut present = [false; Shade::COUNT];
        let last = deadlock::last_changes(trace);
        let deadlocked = deadlock::blocked_since(trace)
            .into_iter()
            .zip(&last)
            .map(|(since, last)| Some((since?, Shade::of((*last)?.state())?)))
            .collect();
        let devices = DeviceSpans::of(trace, end);
        for device in &devices {
            if device.channels.iter().any(|c| !c.is_empty()) {
                present[Shade::Service.index()] = true;
            }
            if device.queued() {
                present[Shade::Queued.index()] = true;
            }
        }
        let gils = Gils::of(trace, end);
        if gils.held() {
            present[Shade::GilHeld.index()] = true;
        }
        Spans {
            deadlocked,
            devices,
            gils,
            present,
        }
    }
}

/// The memory the tables of rows that stand for several threads may take
/// at once: past it, they are merged over several passes of the trace.
const GROUP_TABLES: usize = 32 << 20;

/// The bars of a thread row of its own: its colours and minorities, and
/// what its waits' labels need.
struct ThreadBars {
    marked: Marked<Shade>,
    /// Per column, how much each wait target covers (only in rows tall
    /// enough for labels).
    waits: Option<ColumnCover<(Shade, WaitTarget)>>,
}

/// A row's bars, merged to pixel columns.
enum RowBars {
    /// A row without thread or CPU bars.
    None,
    /// One thread.
    Thread(ThreadBars),
    /// One CPU: who ran on it, in which state.
    Cpu(Vec<Segment<(ThreadId, Shade)>>),
    /// Several threads or CPUs: the shade (its index) of most of their time.
    Group(Vec<Segment<usize>>),
}

/// A CPU row's merge: who ran, in which state; no minorities.
type CpuMerge = SortedMerge<(ThreadId, Shade), fn((ThreadId, Shade)) -> bool>;

/// A row's merge while the intervals stream past.
enum Merging {
    None,
    Thread(
        SortedMerge<Shade, fn(Shade) -> bool>,
        Option<ColumnCover<(Shade, WaitTarget)>>,
    ),
    Cpu(CpuMerge),
    /// A group whose table waits for a later pass.
    Later,
    Group(OverlapMerge),
}

/// The threads' and CPUs' bars of every row, and which of their shades
/// occur. Merged as the trace's intervals stream past, with no list of
/// them: a row of one thread or CPU keeps its segments and one column, a
/// row standing for several a table of columns × shades, and those tables
/// take at most [`GROUP_TABLES`] at once (more passes when they would take
/// more).
struct Bars {
    rows: Vec<RowBars>,
    present: [bool; Shade::COUNT],
    /// Per thread, the index of its row (`NO_ROW` for none).
    thread_row: Vec<u32>,
}

/// A thread or CPU without a row.
const NO_ROW: u32 = u32::MAX;

impl Bars {
    /// The bars of `rows`, with `group_tables` bytes for the groups'
    /// tables at once.
    fn of(trace: &Trace, end: Time, columns: Columns, rows: &[Row], group_tables: usize) -> Bars {
        let mut thread_row = vec![NO_ROW; trace.threads.len()];
        let mut cpu_row = vec![NO_ROW; usize::from(trace.machine.cpus)];
        for (i, row) in rows.iter().enumerate() {
            match &row.content {
                Content::Threads(range) => range.clone().for_each(|t| thread_row[t] = i as u32),
                Content::Cpus(range) => range.clone().for_each(|c| cpu_row[c] = i as u32),
                _ => {}
            }
        }
        let grouped = |row: &Row| match &row.content {
            Content::Threads(range) | Content::Cpus(range) => range.len() > 1,
            _ => false,
        };
        let groups: Vec<usize> = (0..rows.len()).filter(|&i| grouped(&rows[i])).collect();
        let keys = GroupKeys::of(trace, !groups.is_empty());
        let per_pass = (group_tables / OverlapMerge::table_bytes(columns, keys.len())).max(1);
        let (now, later) = groups.split_at(groups.len().min(per_pass));
        let mut merging: Vec<Merging> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| match &row.content {
                _ if now.binary_search(&i).is_ok() => {
                    Merging::Group(OverlapMerge::new(columns, keys.len()))
                }
                _ if grouped(row) => Merging::Later,
                Content::Threads(_) => {
                    // Bars at least 10 pixels high carry wait labels (see
                    // `draw_row`'s padding): only theirs need the cover.
                    let h = row.height as i32;
                    let labelled = h - 2 * pad(h) >= 10;
                    let marks: fn(Shade) -> bool = marks;
                    Merging::Thread(
                        SortedMerge::new(columns, marks),
                        labelled.then(|| ColumnCover::new(columns)),
                    )
                }
                Content::Cpus(_) => {
                    let never: fn((ThreadId, Shade)) -> bool = |_| false;
                    Merging::Cpu(SortedMerge::new(columns, never))
                }
                _ => Merging::None,
            })
            .collect();
        let mut present = [false; Shade::COUNT];
        // The rows an interval is drawn in: its thread's, and its CPU's
        // while it is on one.
        let rows_of = |iv: &crate::trace::Interval| {
            let cpu = iv
                .cpu
                .filter(|_| iv.state.on_cpu())
                .and_then(|cpu| cpu_row.get(cpu.index()).copied());
            [Some(thread_row[iv.thread.index()]), cpu].map(|r| r.filter(|&r| r != NO_ROW))
        };
        trace.for_each_interval(end, |iv| {
            let Some(shade) = Shade::of(iv.state) else {
                return;
            };
            present[shade.index()] = true;
            let [thread, cpu] = rows_of(&iv);
            if let Some(row) = thread {
                match &mut merging[row as usize] {
                    Merging::Thread(merge, waits) => {
                        merge.add(iv.start, iv.end, shade);
                        if let (Some(waits), Some(target)) = (waits, wait_target(iv.state)) {
                            waits.add(iv.start, iv.end, (shade, target));
                        }
                    }
                    Merging::Group(merge) => merge.add(iv.start, iv.end, keys.key(shade)),
                    _ => {}
                }
            }
            if let Some(row) = cpu {
                match &mut merging[row as usize] {
                    Merging::Cpu(merge) => merge.add(iv.start, iv.end, (iv.thread, shade)),
                    Merging::Group(merge) => merge.add(iv.start, iv.end, keys.key(shade)),
                    _ => {}
                }
            }
        });
        let mut bars: Vec<RowBars> = merging
            .into_iter()
            .map(|m| match m {
                Merging::None | Merging::Later => RowBars::None,
                Merging::Thread(merge, waits) => RowBars::Thread(ThreadBars {
                    marked: merge.finish(),
                    waits,
                }),
                Merging::Cpu(merge) => RowBars::Cpu(merge.finish().colors),
                Merging::Group(merge) => RowBars::Group(keys.shades(merge.finish())),
            })
            .collect();
        // The groups left for later, a batch of tables per pass.
        for batch in later.chunks(per_pass) {
            let mut tables: Vec<OverlapMerge> = batch
                .iter()
                .map(|_| OverlapMerge::new(columns, keys.len()))
                .collect();
            trace.for_each_interval(end, |iv| {
                let Some(shade) = Shade::of(iv.state) else {
                    return;
                };
                for row in rows_of(&iv).into_iter().flatten() {
                    if let Ok(k) = batch.binary_search(&(row as usize)) {
                        tables[k].add(iv.start, iv.end, keys.key(shade));
                    }
                }
            });
            for (&row, table) in batch.iter().zip(tables) {
                bars[row] = RowBars::Group(keys.shades(table.finish()));
            }
        }
        Bars {
            rows: bars,
            present,
            thread_row,
        }
    }

    /// The row of thread `t`, if it has one.
    fn thread_row(&self, t: ThreadId) -> Option<usize> {
        let row = *self.thread_row.get(t.index())?;
        (row != NO_ROW).then_some(row as usize)
    }
}

/// The shades a trace's states can take, numbered in shade order: the keys
/// of the groups' tables, which would be mostly empty with a column for
/// every shade there is.
struct GroupKeys {
    /// Per shade, its key.
    key: [u8; Shade::COUNT],
    /// Per key, its shade's index.
    shade: Vec<usize>,
}

impl GroupKeys {
    /// The shades of `trace`'s states (a pass over them when `needed`).
    fn of(trace: &Trace, needed: bool) -> GroupKeys {
        let mut seen = [false; Shade::COUNT];
        if needed {
            for change in &trace.states {
                if let Some(shade) = Shade::of(change.state()) {
                    seen[shade.index()] = true;
                }
            }
        }
        let mut key = [0u8; Shade::COUNT];
        let mut shade = Vec::new();
        for (i, _) in seen.iter().enumerate().filter(|(_, &s)| s) {
            key[i] = shade.len() as u8;
            shade.push(i);
        }
        GroupKeys { key, shade }
    }

    /// How many keys (at least one, for a table's shape).
    fn len(&self) -> usize {
        self.shade.len().max(1)
    }

    /// The key of `shade`, which must occur in the trace's states.
    fn key(&self, shade: Shade) -> usize {
        usize::from(self.key[shade.index()])
    }

    /// Merged segments with their shade's index for a key. Keys follow
    /// shade order, so ties still go to the lower shade.
    fn shades(&self, merged: Vec<Segment<usize>>) -> Vec<Segment<usize>> {
        merged
            .into_iter()
            .map(|seg| Segment {
                key: self.shade[seg.key],
                ..seg
            })
            .collect()
    }
}

/// What a state waits for, when its bar is labelled with it: the resource
/// of a spin or of a wait on synchronization, the thread of a join. Waits on
/// the outside world (io, epoll, sleep, the GIL) are left unlabelled.
fn wait_target(state: ThreadState) -> Option<WaitTarget> {
    match state {
        ThreadState::Spin(r) => Some(WaitTarget::Resource(r)),
        ThreadState::Blocked(BlockReason::Join(t)) => Some(WaitTarget::Thread(t)),
        ThreadState::Blocked(BlockReason::Future(r)) => Some(WaitTarget::Resource(r)),
        ThreadState::Blocked(reason) => reason.sync_resource().map(WaitTarget::Resource),
        _ => None,
    }
}

/// A marker with its line's column and its label's place.
struct Placed<'a> {
    marker: &'a Marker,
    x: i32,
    text: String,
    align: Align,
    lane: usize,
}

/// Lays out the Gantt chart of `trace`.
pub(crate) fn layout(trace: &Trace, options: &GanttOptions) -> Picture {
    layout_within(trace, options, GROUP_TABLES)
}

/// [`layout`], with `group_tables` bytes for the tables of rows that stand
/// for several threads (tests give it little, to force several passes).
pub(crate) fn layout_within(trace: &Trace, options: &GanttOptions, group_tables: usize) -> Picture {
    let end = deadlock::chart_end(trace);
    let spans = Spans::of(trace, end);
    let markers = deadlock::markers(trace, &options.markers);
    let cpu_fit = fit(
        usize::from(trace.machine.cpus),
        CPU_AREA,
        ROW_MIN,
        CPU_ROW,
        MAX_CPU_ROWS,
    );
    let thread_fit = fit(
        trace.threads.len(),
        THREAD_AREA,
        ROW_MIN,
        ROW_MAX,
        MAX_THREAD_ROWS,
    );
    let gil_fit = fit(
        spans.gils.shown.len(),
        GIL_AREA,
        ROW_MIN,
        CPU_ROW,
        super::gil::MAX_GILS,
    );
    let device_fit = device_fit(&spans.devices);
    let mut rows = plan_rows(trace, cpu_fit, thread_fit);
    let gil_rows = plan_gil_rows(&spans.gils.shown, gil_fit);
    rows.splice(cpu_fit.rows..cpu_fit.rows, gil_rows);
    // The first thread row.
    let threads_from = cpu_fit.rows + gil_fit.rows;
    plan_device_rows(&mut rows, &spans.devices, &device_fit);
    group_pools(&mut rows, &spans.devices, thread_fit);
    let memory = MemoryLine::of(trace, end);
    if memory.is_some() {
        rows.push(Row {
            content: Content::Memory,
            label: "memory".into(),
            show_label: true,
            sparse: false,
            y: 0,
            height: MEMORY_ROW,
        });
    }

    // Horizontal geometry: labels, then the plot.
    let label_max = LABEL_MAX_WIDTH.min(options.width / 5);
    let mut label_width = 0;
    for row in rows.iter_mut().filter(|r| r.show_label) {
        let size = label_size(row.height);
        row.label = font::truncate(&row.label, size, label_max);
        label_width = label_width.max(font::width(&row.label, size));
    }
    let width = options.width as i32;
    let x0 = MARGIN + label_width as i32 + 12;
    let x1 = (width - RIGHT).max(x0 + 1);
    let columns = Columns::new(end, (x1 - x0) as u32);
    let bars = Bars::of(trace, end, columns, &rows, group_tables);
    let mut present = spans.present;
    for (p, b) in present.iter_mut().zip(bars.present) {
        *p |= b;
    }
    let x_at = |t: Time| (x0 + columns.edge(t.min(end)) as i32).min(x1 - 1);
    let (placed, lanes) = place_markers(&markers, x_at, width);
    let memory = memory.map(|line| {
        let placed = line.columns(columns);
        (line, placed)
    });

    // Vertical geometry, top down.
    let mut pic = Picture {
        width: options.width,
        ..Picture::default()
    };
    let title = if options.title.is_empty() {
        format!("makespan {}", trace.makespan())
    } else {
        format!("{} — makespan {}", options.title, trace.makespan())
    };
    pic.text(
        font::truncate(&title, TITLE_SIZE, (width - 2 * MARGIN) as u32),
        (MARGIN, MARGIN + 12),
        TITLE_SIZE,
        Align::Left,
        palette::INK,
    );
    let mut kinds: Vec<MarkerKind> = markers.iter().map(|m| m.kind).collect();
    kinds.sort();
    kinds.dedup();
    let gil_bars: Vec<GilBars> = spans
        .gils
        .shown
        .iter()
        .map(|gil| gil.bars(columns, mark_rows(gil_fit.height as i32) as u32))
        .collect();
    let marks = [
        (
            gil_bars.iter().any(|b| !b.requests.is_empty()),
            GilMark::DropRequest,
        ),
        (
            gil_bars.iter().any(|b| !b.edges.is_empty()),
            GilMark::ForcedDrop,
        ),
    ]
    .into_iter()
    .filter_map(|(present, mark)| present.then_some(mark))
    .collect::<Vec<_>>();
    let lanes_top = legend(
        &mut pic,
        (&present, &marks, memory.is_some()),
        &kinds,
        MARGIN + 34,
        width,
    );
    let y0 = lanes_top + lanes as i32 * MARKER_LANE + if lanes > 0 { 4 } else { 0 };
    let mut y = y0;
    let mut last_section = None;
    let mut last_device = None;
    for row in rows.iter_mut() {
        let section = row.content.section();
        let device = row.content.device();
        if last_section.is_some_and(|s| s != section) {
            y += SECTION_GAP;
        } else if let (Some(d), Some(last)) = (device, last_device) {
            if d != last {
                y += DEVICE_GAP;
            }
        }
        last_section = Some(section);
        last_device = device.or(last_device);
        row.y = y;
        y += row.height as i32;
    }
    let y1 = y;
    pic.height = (y1 + 40 + 10 + MARGIN / 2) as u32;

    // Back to front: row backgrounds, grid, bars, axis, labels, markers.
    for (i, row) in rows.iter().enumerate() {
        // CPU and device rows sit on a grey track; thread rows are striped
        // when tall enough to follow.
        let h = row.height as i32;
        let shaded = match row.content {
            Content::Cpus(_)
            | Content::Gil(_)
            | Content::Channels { .. }
            | Content::Queue { .. }
            | Content::PoolQueue { .. }
            | Content::Memory => true,
            Content::Threads(_) => h >= 6 && (i - threads_from) % 2 == 1,
        };
        if shaded {
            pic.rect(x0, row.y, x1, row.y + h, palette::STRIPE);
        }
    }
    let max_steps = ((x1 - x0) / 90).clamp(2, 12) as u64;
    let ticks = axis::ticks(end, max_steps);
    for tick in &ticks {
        let x = x_at(tick.time);
        pic.rect(x, y0, x + 1, y1, palette::GRID);
    }
    // Bar labels keep clear of the marker lines.
    let mut avoid: Vec<i32> = placed.iter().map(|p| p.x).collect();
    avoid.sort_unstable();
    avoid.dedup();
    let mut underlined = false;
    for (row, row_bars) in rows.iter().zip(&bars.rows) {
        underlined |= draw_row(
            &mut pic,
            (row, row_bars),
            trace,
            (&spans, &gil_bars, memory.as_ref()),
            (columns, x0),
            &avoid,
        );
    }
    pic.rect(x0, y1, x1, y1 + 1, palette::INK);
    for tick in &ticks {
        let x = x_at(tick.time);
        pic.rect(x, y1, x + 1, y1 + 5, palette::INK);
        pic.text(
            tick.label.clone(),
            (x, y1 + 16),
            SMALL_SIZE,
            Align::Center,
            palette::INK,
        );
    }
    for row in rows.iter().filter(|r| r.show_label) {
        let mid = row.y + row.height as i32 / 2;
        if row.sparse {
            pic.rect(x0 - 5, mid, x0 - 1, mid + 1, palette::MUTED);
        }
        pic.text(
            row.label.clone(),
            (x0 - 8, mid),
            label_size(row.height),
            Align::Right,
            palette::INK,
        );
    }
    // Each thread's row, wherever grouping put it.
    let thread_row = |t: ThreadId| bars.thread_row(t);
    for p in &placed {
        outline_rows(&mut pic, &rows, p.marker, thread_row, x1);
    }
    for p in &placed {
        let color = marker_color(p.marker.kind);
        let label_y = lanes_top + p.lane as i32 * MARKER_LANE + MARKER_LANE / 2;
        pic.rect(p.x - 2, label_y - 6, p.x + 3, y1, palette::WHITE);
        pic.rect(p.x - 1, label_y - 6, p.x + 1, y1, color);
        let tx = if p.align == Align::Left {
            p.x + 4
        } else {
            p.x - 4
        };
        pic.text(p.text.clone(), (tx, label_y), SMALL_SIZE, p.align, color);
    }
    pic.text(
        notes(
            trace,
            end,
            (cpu_fit, thread_fit),
            (&spans.devices, &device_fit),
            &spans.gils,
            underlined,
        ),
        (x0, y1 + 40),
        SMALL_SIZE,
        Align::Left,
        palette::MUTED,
    );
    pic
}

/// The font size of a row label.
fn label_size(row_height: u32) -> f64 {
    if row_height >= 18 {
        LABEL_SIZE
    } else {
        SMALL_SIZE
    }
}

/// One row per GIL drawn, labelled "gil" and the process's name.
fn plan_gil_rows(gils: &[GilSpans], fit: Fit) -> Vec<Row> {
    gils.iter()
        .enumerate()
        .map(|(i, gil)| Row {
            content: Content::Gil(i),
            label: format!("gil {}", gil.name),
            show_label: i % fit.every == 0,
            sparse: fit.every > 1,
            y: 0,
            height: fit.height,
        })
        .collect()
}

/// One row per CPU, then one per thread (or per band of them), labelled.
fn plan_rows(trace: &Trace, cpu_fit: Fit, thread_fit: Fit) -> Vec<Row> {
    let cpus = usize::from(trace.machine.cpus);
    let threads = trace.threads.len();
    // An asyncio task's row reads as its loop's: "↳ name".
    let name = |t: usize| {
        let info = &trace.threads[t];
        match info.task_of {
            Some(_) => format!("↳ {}", info.name),
            None => info.name.clone(),
        }
    };
    let mut rows = Vec::with_capacity(cpu_fit.rows + thread_fit.rows);
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
            sparse: cpu_fit.every > 1,
            y: 0,
            height: cpu_fit.height,
        });
    }
    for i in 0..thread_fit.rows {
        let range = i * thread_fit.per..((i + 1) * thread_fit.per).min(threads);
        let label = if range.len() == 1 {
            name(range.start)
        } else {
            format!("{} … {}", name(range.start), name(range.end - 1))
        };
        rows.push(Row {
            content: Content::Threads(range),
            label,
            show_label: i % thread_fit.every == 0,
            sparse: thread_fit.every > 1,
            y: 0,
            height: thread_fit.height,
        });
    }
    rows
}

/// Puts each marker's line at its time and its label in the first lane
/// where it does not overlap an earlier label (after [`MAX_MARKER_LANES`]
/// lanes, the emptiest). Returns the markers in time order and the number
/// of lanes.
fn place_markers(
    markers: &[Marker],
    x_at: impl Fn(Time) -> i32,
    width: i32,
) -> (Vec<Placed<'_>>, usize) {
    let mut sorted: Vec<&Marker> = markers.iter().collect();
    sorted.sort_by_key(|m| m.time);
    let mut lanes_right: Vec<i32> = Vec::new();
    let mut placed = Vec::with_capacity(sorted.len());
    for marker in sorted {
        let x = x_at(marker.time);
        let max = match marker.kind {
            MarkerKind::Deadlock => DEADLOCK_LABEL_MAX,
            _ => MARKER_LABEL_MAX,
        };
        let max = max.min((width - 2 * MARGIN) as u32);
        let text = font::truncate(&marker.label, SMALL_SIZE, max);
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
        placed.push(Placed {
            marker,
            x,
            text,
            align,
            lane,
        });
    }
    (placed, lanes_right.len())
}

/// Outlines the rows of a marker's threads, one box around each run of
/// adjacent rows.
fn outline_rows(
    pic: &mut Picture,
    rows: &[Row],
    marker: &Marker,
    thread_row: impl Fn(ThreadId) -> Option<usize>,
    x1: i32,
) {
    let color = marker_color(marker.kind);
    let mut outlined: Vec<usize> = marker
        .threads
        .iter()
        .filter_map(|&t| thread_row(t))
        .collect();
    outlined.sort_unstable();
    outlined.dedup();
    let left = MARGIN - 6;
    let mut i = 0;
    while i < outlined.len() {
        let mut j = i;
        while j + 1 < outlined.len() && outlined[j + 1] == outlined[j] + 1 {
            j += 1;
        }
        let (first, last) = (&rows[outlined[i]], &rows[outlined[j]]);
        let (top, bottom) = (first.y - 2, last.y + last.height as i32 + 2);
        pic.rect(left, top, x1 + 2, top + 2, color);
        pic.rect(left, bottom - 2, x1 + 2, bottom, color);
        pic.rect(left, top, left + 2, bottom, color);
        pic.rect(x1, top, x1 + 2, bottom, color);
        i = j + 1;
    }
}

/// The line under the axis: the machine, how rows were thinned, and
/// whether some bar is `underlined` with a minority.
fn notes(
    trace: &Trace,
    end: Time,
    (cpu_fit, thread_fit): (Fit, Fit),
    (devices, device_fit): (&[DeviceSpans], &DeviceFit),
    gils: &Gils,
    underlined: bool,
) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let cpus = usize::from(trace.machine.cpus);
    let tasks = trace.threads.iter().filter(|t| t.task_of.is_some()).count();
    let threads = trace.threads.len() - tasks;
    let mut notes = vec![format!(
        "{cpus} CPU{} · {} · {threads} thread{}",
        plural(cpus),
        trace.machine.scheduler.name(),
        plural(threads),
    )];
    if tasks > 0 {
        notes[0].push_str(&format!(" · {tasks} asyncio task{}", plural(tasks)));
    }
    if !trace.devices.is_empty() {
        let n = trace.devices.len();
        notes[0].push_str(&format!(" · {n} device{}", plural(n)));
        if n > devices.len() {
            notes.push(format!("first {} devices shown", devices.len()));
        }
    }
    if gils.total > gils.shown.len() {
        notes.push(format!(
            "first {} of {} GILs shown",
            gils.shown.len(),
            gils.total
        ));
    }
    let merged: Vec<String> = devices
        .iter()
        .zip(&device_fit.channels)
        .filter(|(_, f)| f.per > 1)
        .map(|(d, f)| format!("each {} row merges {} channels", d.name, f.per))
        .collect();
    if merged.len() > 3 {
        notes.extend(merged[..2].iter().cloned());
        notes.push(format!("{} more devices merge channels", merged.len() - 2));
    } else {
        notes.extend(merged);
    }
    if cpu_fit.per > 1 {
        notes.push(format!("each CPU row merges {} CPUs", cpu_fit.per));
    }
    if thread_fit.per > 1 {
        notes.push(format!("each thread row merges {} threads", thread_fit.per));
    }
    if thread_fit.every > 1 {
        notes.push(format!(
            "every {} thread row labelled",
            ordinal(thread_fit.every)
        ));
    }
    if underlined {
        notes.push("underlined: states too brief to fill a pixel".into());
    }
    if let Some(dl) = &trace.deadlock {
        let mut note = format!("deadlock at {}", dl.time);
        if end > trace.end {
            note.push_str(&format!(", run ended at {}", trace.end));
        }
        notes.push(note);
    }
    notes.join(" · ")
}

/// Draws the bars of one row, `x0` being the page column of the columns'
/// first; labels on them keep clear of the page columns `avoid`.
fn draw_row(
    pic: &mut Picture,
    (row, bars): (&Row, &RowBars),
    trace: &Trace,
    (spans, gil_bars, memory): (&Spans, &[GilBars], Option<&(MemoryLine, MemoryColumns)>),
    (columns, x0): (Columns, i32),
    avoid: &[i32],
) -> bool {
    let mut underlined = false;
    let h = row.height as i32;
    let pad = pad(h);
    let (top, bottom) = (row.y + pad, row.y + h - pad);
    let bar = |pic: &mut Picture, seg_x0: u32, seg_x1: u32, color: RGBColor| {
        pic.rect(x0 + seg_x0 as i32, top, x0 + seg_x1 as i32, bottom, color);
    };
    match &row.content {
        Content::Threads(range) if range.len() == 1 => {
            let t = range.start;
            let RowBars::Thread(ThreadBars {
                marked:
                    Marked {
                        colors: merged,
                        minorities,
                    },
                waits,
            }) = bars
            else {
                return false;
            };
            for seg in merged {
                bar(pic, seg.x0, seg.x1, seg.key.color());
            }
            let line = underline(bottom - top);
            if line > 0 && !minorities.is_empty() {
                for seg in minorities {
                    let (xs, xe) = (x0 + seg.x0 as i32, x0 + seg.x1 as i32);
                    pic.rect(xs, bottom - line, xe, bottom, seg.key.color());
                }
                underlined = true;
            }
            let hatched = spans.deadlocked[t].map(|(since, shade)| {
                let from = columns.edge(since).min(columns.width().saturating_sub(1));
                let (xs, xe) = (x0 + from as i32, x0 + columns.width() as i32);
                deadlocked_wait(pic, (xs, xe), (top, bottom), pad, shade);
                from
            });
            wait_labels(
                pic,
                merged,
                waits.as_ref(),
                trace,
                (top, bottom),
                x0,
                hatched,
                avoid,
            );
        }
        Content::Threads(_) | Content::Cpus(_) => match bars {
            RowBars::Group(merged) => {
                for seg in merged {
                    bar(pic, seg.x0, seg.x1, Shade::ALL[seg.key].color());
                }
            }
            RowBars::Cpu(merged) => {
                for seg in merged {
                    bar(pic, seg.x0, seg.x1, seg.key.1.color());
                }
                cpu_details(pic, merged, trace, (top, bottom), x0, avoid);
            }
            RowBars::Thread(_) | RowBars::None => {}
        },
        Content::Gil(g) => {
            let bars = &gil_bars[*g];
            for seg in &bars.merged {
                bar(pic, seg.x0, seg.x1, seg.key.1.color());
            }
            cpu_details(pic, &bars.merged, trace, (top, bottom), x0, avoid);
            // A dark edge ends the bars of forced drops; a triangle hangs
            // from the top of the row at each drop request, its tip on the
            // bar.
            for &edge in &bars.edges {
                let right = x0 + edge as i32;
                pic.rect(right - 2, top, right, bottom, palette::FORCED_DROP);
            }
            for &col in &bars.requests {
                triangle(
                    pic,
                    x0 + col as i32,
                    row.y,
                    mark_rows(h),
                    palette::DROP_REQUEST,
                );
            }
        }
        Content::Channels { device, range } if range.len() == 1 => {
            let list = &spans.devices[*device].channels[range.start];
            let merged = merge_sorted(list.iter().copied(), columns);
            for seg in &merged {
                bar(pic, seg.x0, seg.x1, seg.key.1.color());
            }
            cpu_details(pic, &merged, trace, (top, bottom), x0, avoid);
        }
        Content::Channels { device, range } => {
            // Key 0 in service, key 1 idle: a column is drawn where its
            // channels spend most of their time in service.
            let lists = &spans.devices[*device].channels[range.clone()];
            let end = columns.time(columns.width());
            let busy = lists.iter().flatten().map(|&(s, e, _)| (s, e, 0));
            let idle = lists
                .iter()
                .flat_map(|list| idle_gaps(list, end))
                .map(|(s, e)| (s, e, 1));
            for seg in merge_overlapping(busy.chain(idle), columns, 2) {
                if seg.key == 0 {
                    bar(pic, seg.x0, seg.x1, Shade::Service.color());
                }
            }
        }
        Content::Queue { device } | Content::PoolQueue { device } => {
            let queue = &spans.devices[*device].queue;
            let merged = merge_sorted(
                queue.iter().map(|&(s, e, n)| (s, e, queue_level(n))),
                columns,
            );
            for seg in &merged {
                bar(pic, seg.x0, seg.x1, level_color(seg.key));
            }
            queue_labels(pic, &merged, queue, columns, (top, bottom), x0, avoid);
        }
        Content::Memory => {
            if let Some((line, placed)) = memory {
                line.draw(pic, placed, x0, (top, bottom));
            }
        }
    }
    underlined
}

/// Whether a brief `shade` is underlined where it is a column's minority:
/// the waits, blocking ones and spins, the time a thread loses to
/// contention. Running is the work itself and spawn happens once. Switches
/// are left to the colours: one sits between any two slices, in nearly
/// every chart, and is always too brief for a pixel, so underlining them
/// would mark every chart at every hand-off and drown the waits. Ready is
/// left to the colours too: every wake-up passes through it, and waiting
/// for a CPU mostly lasts as long as a quantum, which draws as a bar.
fn marks(shade: Shade) -> bool {
    !matches!(
        shade,
        Shade::Running | Shade::Ready | Shade::Switch | Shade::Spawn
    )
}

/// How many pixels high the underline of minorities is on bars `bar`
/// pixels high: a fifth of the bar, one or two pixels; none under bars
/// thinner than four, where it would outweigh the bar's own colour.
fn underline(bar: i32) -> i32 {
    if bar < 4 {
        0
    } else {
        (bar / 5).clamp(1, 2)
    }
}

/// How the rows of the devices drawn are laid out.
struct DeviceFit {
    /// Per device, how its channels share rows.
    channels: Vec<Fit>,
    /// The height of every device row.
    height: u32,
    /// Label every `every`-th device row.
    every: usize,
}

/// Fits the channels of each device into at most [`MAX_CHANNEL_ROWS`] rows,
/// and all device rows, queues included, into [`DEVICE_AREA`] pixels.
fn device_fit(devices: &[DeviceSpans]) -> DeviceFit {
    let channels: Vec<Fit> = devices
        .iter()
        .map(|d| {
            fit(
                d.channels.len(),
                DEVICE_AREA,
                ROW_MIN,
                ROW_MAX,
                MAX_CHANNEL_ROWS,
            )
        })
        .collect();
    let rows: usize = channels
        .iter()
        .zip(devices)
        .map(|(f, d)| f.rows + usize::from(d.queued()))
        .sum();
    let height = (DEVICE_AREA / rows.max(1) as u32).clamp(ROW_MIN, ROW_MAX);
    DeviceFit {
        channels,
        height,
        every: LABEL_SPACING.div_ceil(height) as usize,
    }
}

/// Moves each pool's queue row up among the thread rows, right above its
/// threads' rows (its workers, then its manager), which follow it labelled
/// "↳ name", as an asyncio task follows its loop. Only while every thread
/// has a row of its own: thinned rows stand for runs of threads in
/// creation order, which a regrouping would break.
fn group_pools(rows: &mut Vec<Row>, devices: &[DeviceSpans], thread_fit: Fit) {
    if thread_fit.per != 1 {
        return;
    }
    for (device, spans) in devices.iter().enumerate() {
        if !spans.pool || spans.members.is_empty() {
            continue;
        }
        let is_member = |row: &Row| matches!(&row.content, Content::Threads(range) if spans.members.contains(&range.start));
        let (Some(queue), Some(first)) = (
            rows.iter()
                .position(|r| matches!(r.content, Content::Queue { device: d } if d == device)),
            rows.iter().position(is_member),
        ) else {
            continue;
        };
        let mut queue = rows.remove(queue);
        queue.content = Content::PoolQueue { device };
        queue.height = thread_fit.height;
        queue.show_label = true;
        queue.sparse = false;
        let mut members: Vec<Row> = Vec::with_capacity(spans.members.len());
        let mut i = first;
        while i < rows.len() {
            if is_member(&rows[i]) {
                members.push(rows.remove(i));
            } else {
                i += 1;
            }
        }
        members.sort_by_key(|row| match &row.content {
            Content::Threads(range) => spans.members.iter().position(|&m| m == range.start),
            _ => None,
        });
        for row in &mut members {
            if !row.label.starts_with('↳') {
                row.label = format!("↳ {}", row.label);
            }
        }
        rows.splice(first..first, std::iter::once(queue).chain(members));
    }
}

/// Appends the rows of each device: its channels ("disk ch0", or "disk"
/// alone for one channel, "disk ch0–3" for merged ones), then its queue
/// when some request waited.
fn plan_device_rows(rows: &mut Vec<Row>, devices: &[DeviceSpans], fit: &DeviceFit) {
    let mut i = 0;
    let mut push = |rows: &mut Vec<Row>, content: Content, label: String| {
        rows.push(Row {
            content,
            label,
            show_label: i % fit.every == 0,
            sparse: fit.every > 1,
            y: 0,
            height: fit.height,
        });
        i += 1;
    };
    for (device, (spans, channel_fit)) in devices.iter().zip(&fit.channels).enumerate() {
        let channels = spans.channels.len();
        for r in 0..channel_fit.rows {
            let range = r * channel_fit.per..((r + 1) * channel_fit.per).min(channels);
            let label = if channels == 1 {
                spans.name.clone()
            } else if range.len() == 1 {
                format!("{} ch{}", spans.name, range.start)
            } else {
                format!("{} ch{}–{}", spans.name, range.start, range.end - 1)
            };
            push(rows, Content::Channels { device, range }, label);
        }
        if spans.queued() {
            let label = format!("{} queue", spans.name);
            push(rows, Content::Queue { device }, label);
        }
    }
}

/// The times a channel is idle in `[0, end)`, `list` being its requests in
/// service, in time order and not overlapping.
fn idle_gaps<K>(list: &[Timed<K>], end: Time) -> impl Iterator<Item = (Time, Time)> + '_ {
    let starts = list.iter().map(|&(s, _, _)| s).chain([end]);
    let ends = [Time::ZERO]
        .into_iter()
        .chain(list.iter().map(|&(_, e, _)| e));
    ends.zip(starts).filter(|(from, to)| from < to)
}

/// On a queue row: how many requests wait, on bars wide enough to hold it
/// ("3", or "2–5" when it changes within the bar).
fn queue_labels(
    pic: &mut Picture,
    merged: &[Segment<u8>],
    queue: &[Timed<u32>],
    columns: Columns,
    (top, bottom): (i32, i32),
    x0: i32,
    avoid: &[i32],
) {
    if bottom - top < 10 {
        return;
    }
    let size = if bottom - top >= 14 { SMALL_SIZE } else { 10.0 };
    for seg in merged.iter().filter(|s| s.x1 - s.x0 >= 16) {
        let (t0, t1) = (columns.time(seg.x0), columns.time(seg.x1));
        let Some((lo, hi)) = queue_range(queue, t0, t1) else {
            continue;
        };
        let text = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        };
        let bar = (x0 + seg.x0 as i32, x0 + seg.x1 as i32);
        if let Some((shown, mid)) = fit_label(&text, size, bar, 8, avoid) {
            pic.text(
                shown,
                (mid, (top + bottom) / 2),
                size,
                Align::Center,
                palette::text_on(level_color(seg.key)),
            );
        }
    }
}

/// Marks the wait of a deadlocked thread over `[xs, xe)`: diagonal hatch
/// lines across the bar, in the colour that reads on it, and a red frame in
/// the row's padding when there is room for one.
fn deadlocked_wait(
    pic: &mut Picture,
    (xs, xe): (i32, i32),
    (top, bottom): (i32, i32),
    pad: i32,
    shade: Shade,
) {
    let red = marker_color(MarkerKind::Deadlock);
    if pad >= 2 {
        pic.rect(xs - 2, top - 2, xe + 2, top, red);
        pic.rect(xs - 2, bottom, xe + 2, bottom + 2, red);
        pic.rect(xs - 2, top, xs, bottom, red);
        pic.rect(xe, top, xe + 2, bottom, red);
    }
    let h = bottom - top;
    if h < 6 {
        return;
    }
    let ink = palette::text_on(shade.color());
    // Lines rise to the right at 45 degrees, two pixels wide, clipped to
    // the bar: line `x` runs through (x + k, bottom - 1 - k).
    let mut x = xs - h;
    while x < xe {
        for dx in 0..2 {
            let start = x + dx;
            let lo = (xs - start).max(0);
            let hi = (xe - 1 - start).min(h - 1);
            if lo <= hi {
                pic.line(
                    (start + lo, bottom - 1 - lo),
                    (start + hi, bottom - 1 - hi),
                    ink,
                );
            }
        }
        x += HATCH_STEP;
    }
}

/// On a thread row: the name of what a wait waits for, on bars wide enough
/// to hold it. A merged bar takes the target that covers most of its time,
/// followed by "+n" when it also holds waits on `n` other targets. Labels
/// over the hatch of a deadlocked wait (from column `hatched` on) sit on a
/// box of the bar's colour.
#[allow(clippy::too_many_arguments)]
fn wait_labels(
    pic: &mut Picture,
    merged: &[Segment<Shade>],
    waits: Option<&ColumnCover<(Shade, WaitTarget)>>,
    trace: &Trace,
    (top, bottom): (i32, i32),
    x0: i32,
    hatched: Option<u32>,
    avoid: &[i32],
) {
    // Bars too thin for a label have no cover (see `Bars::of`).
    let Some(waits) = waits else {
        return;
    };
    let size = if bottom - top >= 14 { SMALL_SIZE } else { 10.0 };
    let name = |t: ThreadId| {
        trace
            .threads
            .get(t.index())
            .map_or("?", |i| i.name.as_str())
    };
    for seg in merged {
        let w = seg.x1 - seg.x0;
        if w < 16 {
            continue;
        }
        // Cover of each target of this shade inside the bar, in order of
        // first appearance.
        let mut cover: Vec<(WaitTarget, u64)> = Vec::new();
        for &(_, (shade, target), amount) in waits.within(seg.x0, seg.x1) {
            if shade != seg.key {
                continue;
            }
            match cover.iter_mut().find(|(t, _)| *t == target) {
                Some(entry) => entry.1 += amount,
                None => cover.push((target, amount)),
            }
        }
        let Some(&(target, _)) = cover
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| a.1.cmp(&b.1).then(j.cmp(i)))
            .map(|(_, c)| c)
        else {
            continue;
        };
        let mut text = match target {
            WaitTarget::Resource(r) => trace.resource_name(r).to_string(),
            WaitTarget::Thread(t) => format!("join {}", name(t)),
        };
        if cover.len() > 1 {
            text.push_str(&format!(" +{}", cover.len() - 1));
        }
        let (left, right) = (x0 + seg.x0 as i32, x0 + seg.x1 as i32);
        let Some((shown, mid)) = fit_label(&text, size, (left, right), 8, avoid) else {
            continue;
        };
        let color = seg.key.color();
        if hatched.is_some_and(|from| seg.x1 > from) {
            let half = font::width(&shown, size) as i32 / 2 + 3;
            pic.rect(
                (mid - half).max(left),
                top,
                (mid + half).min(right),
                bottom,
                color,
            );
        }
        pic.text(
            shown,
            (mid, (top + bottom) / 2),
            size,
            Align::Center,
            palette::text_on(color),
        );
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
    avoid: &[i32],
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
            let bar = (x0 + seg.x0 as i32, x0 + seg.x1 as i32);
            if let Some((name, mid)) = fit_label(&info.name, size, bar, 12, avoid) {
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

/// Where a label fits on a bar over the page columns `[left, right)`, clear
/// of the marker lines at the sorted columns `avoid`: the text, cut to fit
/// `margin` pixels short of the gap it goes in, and the middle of that gap.
/// The gap that shows the most of the text wins, then the one nearest the
/// middle of the bar, then the leftmost; with no line across the bar that is
/// the whole bar. `None` when no gap holds the whole text or at least four
/// characters of it.
fn fit_label(
    text: &str,
    size: f64,
    (left, right): (i32, i32),
    margin: i32,
    avoid: &[i32],
) -> Option<(String, i32)> {
    // A marker line covers x - 2 ..= x + 2, on a white band; keep one more
    // pixel clear on each side.
    let mut gaps = Vec::new();
    let mut start = left;
    for &x in avoid {
        if x + 4 > start && x - 3 < right {
            if x - 3 > start {
                gaps.push((start, x - 3));
            }
            start = start.max(x + 4);
        }
    }
    if start < right {
        gaps.push((start, right));
    }
    let mid = (left + right) / 2;
    let mut best: Option<(String, i32, (usize, i32))> = None;
    for (l, r) in gaps {
        let room = r - l - margin;
        if room <= 0 {
            continue;
        }
        let shown = font::truncate(text, size, room as u32);
        let count = shown.chars().count();
        if shown.is_empty() || (shown != text && count < 4) {
            continue;
        }
        let center = (l + r) / 2;
        let rank = (count, -(center - mid).abs());
        if best.as_ref().is_none_or(|b| rank > b.2) {
            best = Some((shown, center, rank));
        }
    }
    best.map(|(shown, center, _)| (shown, center))
}

/// A mark a GIL row draws, with an entry of its own in the legend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GilMark {
    /// A waiter asked the holder to drop the GIL: a triangle over the row.
    DropRequest,
    /// The holder dropped it on request: a dark edge ends its bar.
    ForcedDrop,
}

impl GilMark {
    fn name(self) -> &'static str {
        match self {
            GilMark::DropRequest => "drop request",
            GilMark::ForcedDrop => "forced drop",
        }
    }
}

/// How a legend entry shows its colour.
#[derive(Clone, Copy)]
enum Swatch {
    /// A square: a state or what a row shows.
    Square(RGBColor),
    /// A vertical line: a kind of marker.
    Line(RGBColor),
    /// A GIL row's mark.
    Gil(GilMark),
    /// The memory strip's line.
    Memory,
}

/// Draws the legend from `y` down, wrapping at the page width: the states
/// that occur, in palette order, then the GIL marks drawn, then the memory
/// line when drawn, then the kinds of marker. Returns the `y` below it.
fn legend(
    pic: &mut Picture,
    (present, marks, memory): (&[bool; Shade::COUNT], &[GilMark], bool),
    kinds: &[MarkerKind],
    mut y: i32,
    width: i32,
) -> i32 {
    const LINE: i32 = 22;
    let entries = Shade::ALL
        .iter()
        .filter(|s| present[s.index()])
        .map(|s| (s.name(), Swatch::Square(s.color())))
        .chain(marks.iter().map(|&m| (m.name(), Swatch::Gil(m))))
        .chain(memory.then_some(("memory", Swatch::Memory)))
        .chain(
            kinds
                .iter()
                .map(|&k| (marker_name(k), Swatch::Line(marker_color(k)))),
        );
    let mut x = MARGIN;
    let mut any = false;
    for (name, swatch) in entries {
        let w = 14 + 6 + font::width(name, LEGEND_SIZE) as i32 + 20;
        if x > MARGIN && x + w > width - MARGIN {
            x = MARGIN;
            y += LINE;
        }
        let mid = y + LINE / 2;
        match swatch {
            Swatch::Line(color) => pic.rect(x + 5, mid - 8, x + 8, mid + 8, color),
            Swatch::Square(color) => pic.rect(x, mid - 7, x + 14, mid + 7, color),
            Swatch::Gil(GilMark::DropRequest) => {
                // A stretch of held GIL with the triangle over it.
                pic.rect(x, mid - 3, x + 14, mid + 7, Shade::GilHeld.color());
                triangle(pic, x + 7, mid - 8, 6, palette::DROP_REQUEST);
            }
            Swatch::Gil(GilMark::ForcedDrop) => {
                pic.rect(x, mid - 7, x + 14, mid + 7, Shade::GilHeld.color());
                pic.rect(x + 11, mid - 7, x + 14, mid + 7, palette::FORCED_DROP);
            }
            Swatch::Memory => memory::swatch(pic, x, mid),
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

/// A triangle pointing down, `rows` pixels high, its tip at column `x`:
/// row `j` from `top` spans `x - (rows - 1 - j) ..= x + (rows - 1 - j)`.
fn triangle(pic: &mut Picture, x: i32, top: i32, rows: i32, color: RGBColor) {
    for j in 0..rows {
        let half = rows - 1 - j;
        pic.rect(x - half, top + j, x + half + 1, top + j + 1, color);
    }
}

/// The space between a row's edge and its bars, for a row `h` pixels high.
fn pad(h: i32) -> i32 {
    match h {
        20.. => 4,
        10..=19 => h / 5,
        5..=9 => 1,
        _ => 0,
    }
}

/// How many pixels high a drop request's triangle is on a GIL row `h`
/// pixels high: from the top of the row to the top of its bars, at least
/// two; drop requests closer than this are left out.
fn mark_rows(h: i32) -> i32 {
    (pad(h) + 1).clamp(2, 6).min(h)
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
