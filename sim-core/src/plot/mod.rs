//! Gantt charts of a run, as PNG or SVG.
//!
//! [`gantt`] draws one row per CPU (which thread ran, and the switches) and
//! one row per thread (its state over time, one colour per state), a legend
//! of the states that occur, a time axis in units that suit the run, and
//! [`Marker`]s: vertical lines at instants of interest, with the threads
//! involved outlined. Waits on a lock, semaphore, rwlock, condvar, barrier,
//! channel or spinlock carry the resource's name where the bar is wide
//! enough, joins the joined thread's ("join b"). A deadlock the trace
//! recorded is drawn without being asked: a marker that spells the cycle,
//! its threads outlined and their waits hatched and framed in red. The
//! trace's devices get rows of their own below the threads: one per channel
//! with each request in service labelled with the thread that submitted it,
//! and one showing how many requests queue for a channel. Each Python
//! process's GIL gets a row between the CPUs and the threads: who held it
//! (labelled with the holder's name), the drop requests, and the drops they
//! forced. When the memory in use varies over the run (processes start and
//! end, or thousands of threads come and go), a strip at the bottom draws it
//! as a step line, with its peak.
//!
//! [`compare`] draws figures of several runs side by side (grouped bars,
//! lines, a heatmap), and [`histogram`] the outcomes of explored runs.
//!
//! Charts are deterministic: the same trace and options give the same bytes.
//! Text uses a font compiled into the library, so a PNG looks the same on a
//! machine with no fonts installed (an SVG names the font family and leaves
//! drawing the text to its viewer). Intervals shorter than a pixel are merged
//! (each pixel column shows the state that covers most of it), so a trace of
//! a million intervals draws as fast as one of a thousand.
//!
//! ```no_run
//! use std::path::Path;
//! use sim_core::plot::{gantt, GanttOptions};
//! use sim_core::{ms, Machine, Simulation};
//!
//! let mut sim = Simulation::new(Machine::default()).unwrap();
//! sim.add_thread("worker", |ctx| ctx.compute(ms(5)));
//! let run = sim.run();
//! let options = GanttOptions { title: "worker".into(), ..GanttOptions::default() };
//! gantt(&run.trace, Path::new("worker.png"), &options).unwrap();
//! ```

mod axis;
mod canvas;
mod compare;
mod deadlock;
mod devices;
mod font;
mod gantt;
mod gil;
mod histogram;
mod memory;
mod merge;
mod palette;

use std::path::{Path, PathBuf};

use crate::ids::ThreadId;
use crate::time::Time;
use crate::trace::Trace;

/// The file format of a chart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChartFormat {
    /// A bitmap, 8-bit RGB.
    #[default]
    Png,
    /// A vector drawing; text is left to the viewer's sans-serif font.
    Svg,
}

impl ChartFormat {
    /// The usual file extension: "png" or "svg".
    pub fn extension(self) -> &'static str {
        match self {
            ChartFormat::Png => "png",
            ChartFormat::Svg => "svg",
        }
    }
}

/// How to draw a Gantt chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GanttOptions {
    /// Shown at the top, followed by the makespan. May be empty.
    pub title: String,
    /// PNG or SVG.
    pub format: ChartFormat,
    /// Width in pixels, from [`GanttOptions::MIN_WIDTH`] to
    /// [`GanttOptions::MAX_WIDTH`]; the height follows from the number of
    /// rows. Default 1600.
    pub width: u32,
    /// Instants to mark, such as a race or a failure. The trace's deadlock,
    /// if any, is marked without being listed here; a deadlock marker listed
    /// at the same time replaces that one (and outlines the cycle too).
    pub markers: Vec<Marker>,
}

impl GanttOptions {
    /// The narrowest chart that still holds labels, legend and axis.
    pub const MIN_WIDTH: u32 = 400;
    /// The widest chart.
    pub const MAX_WIDTH: u32 = 10_000;
}

impl Default for GanttOptions {
    fn default() -> Self {
        GanttOptions {
            title: String::new(),
            format: ChartFormat::Png,
            width: 1600,
            markers: Vec::new(),
        }
    }
}

/// A vertical mark at a time, optionally tied to threads whose rows get
/// outlined in the marker's colour: a deadlock cycle, the two accesses of a
/// data race, a failed expectation, or a plain note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Where the line goes; times past the end of the run are drawn at the end.
    pub time: Time,
    /// A short text shown at the top of the line; long ones are cut.
    pub label: String,
    /// Threads whose rows are outlined; unknown ids are ignored.
    pub threads: Vec<ThreadId>,
    /// What it marks, which sets its colour and legend entry.
    pub kind: MarkerKind,
}

/// What a [`Marker`] marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MarkerKind {
    /// A deadlock: the threads of the cycle. Red.
    Deadlock,
    /// A data race: the two threads. Magenta.
    Race,
    /// A failed expectation or an error that ended the run. Black.
    Failure,
    /// Anything else worth pointing at. Blue.
    Note,
}

/// Why a chart could not be drawn or written. In every case no chart was
/// written (or the file is incomplete, for [`PlotError::Io`]); the trace is
/// untouched and the chart can be drawn again with other options or another
/// path.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The requested width is outside the supported range.
    #[error(
        "chart width {width}px is out of range: use {} to {} pixels",
        GanttOptions::MIN_WIDTH,
        GanttOptions::MAX_WIDTH
    )]
    Width {
        /// The width asked for.
        width: u32,
    },
    /// The font compiled into the library could not be read (a corrupt build).
    #[error("cannot draw the chart {}: the bundled font could not be loaded", path.display())]
    Font {
        /// The chart's path.
        path: PathBuf,
    },
    /// plotters failed to draw, or the PNG encoder to encode.
    #[error("cannot draw the chart {}: {message}", path.display())]
    Draw {
        /// The chart's path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write the chart {}: {source}", path.display())]
    Io {
        /// The chart's path.
        path: PathBuf,
        /// The error from the file system.
        source: std::io::Error,
    },
}

pub use compare::{compare, CompareOptions, Comparison};
pub use histogram::histogram;

/// Draws the Gantt chart of `trace` into the file at `path`, in
/// `options.format` whatever the path's extension. The folder must exist.
pub fn gantt(trace: &Trace, path: &Path, options: &GanttOptions) -> Result<(), PlotError> {
    let bytes = render(trace, options, path)?;
    crate::output::write(path, &bytes).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The chart's bytes; `path` only names it in errors.
fn render(trace: &Trace, options: &GanttOptions, path: &Path) -> Result<Vec<u8>, PlotError> {
    let width = options.width;
    if !(GanttOptions::MIN_WIDTH..=GanttOptions::MAX_WIDTH).contains(&width) {
        return Err(PlotError::Width { width });
    }
    if !font::register() {
        return Err(PlotError::Font {
            path: path.to_path_buf(),
        });
    }
    let picture = gantt::layout(trace, options);
    let bytes = match options.format {
        ChartFormat::Png => picture.to_png(),
        ChartFormat::Svg => picture.to_svg(),
    };
    bytes.map_err(|message| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    })
}

#[cfg(test)]
mod tests;
