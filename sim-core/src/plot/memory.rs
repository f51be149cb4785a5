//! What a Gantt chart draws of the memory a run held: a strip below the
//! other rows with a step line of the bytes in use over time.
//!
//! The trace keeps one [`MemorySample`] per change (the bytes in use from
//! its time on), in time order. The line is drawn from the first sample to
//! the end of the chart, scaled from 0 at the bottom of the strip to the
//! run's peak at the top (to the machine's memory when the peak passes half
//! of it, where a dashed line marks the limit). Each pixel column keeps the
//! lowest and the highest use within it, joined to the column before, so a
//! million samples cost one pass and draw at most a few rectangles per
//! column.
//!
//! The strip is only drawn when memory changes visibly over the chart: by at
//! least [`MIN_SWING`] of its highest value. Every thread start and end moves
//! the use by a thread's memory (15.6KiB by default, a thousandth of an idle
//! interpreter's), and the last thread's end frees the whole process at the
//! very end of the run; a one-process run of a few threads is flat at the
//! strip's scale, so its chart draws exactly as it did before memory was
//! drawn. Processes starting and ending, or thousands of threads, show.

use std::borrow::Cow;

use super::canvas::{Align, Picture};
use super::merge::Columns;
use super::palette;
use crate::model::footprint::format_size;
use crate::time::Time;
use crate::trace::{MemorySample, Trace};

/// The height of the memory strip, about two and a half thread rows.
pub(crate) const MEMORY_ROW: u32 = 56;
/// The strip is drawn when the use over the chart varies by at least this
/// fraction of its highest value (numerator, denominator): a tenth. With
/// `(0, 1)` any two distinct values draw it.
pub(crate) const MIN_SWING: (u64, u64) = (1, 10);
/// Text size of the peak and limit in the strip.
const TEXT_SIZE: f64 = 12.0;
/// Room at the top of the strip for the peak and the limit, above the line.
const TEXT_BAND: i32 = 14;
/// Dashes of the limit line: drawn, then left out, in pixels.
const DASH: (i32, i32) = (6, 4);

/// The memory line of a trace, when it is drawn.
pub(crate) struct MemoryLine<'a> {
    /// The samples, in time order.
    samples: Cow<'a, [MemorySample]>,
    /// The end of the chart: the last sample holds until then.
    end: Time,
    /// The most memory in use at once.
    pub(crate) peak: u64,
    /// The machine's memory, when the peak passes half of it (the dashed
    /// line is drawn).
    pub(crate) limit: Option<u64>,
}

/// The memory line placed on pixel columns: per column, the lowest and the
/// highest use drawn in it (joined to the column before), or `None` where
/// nothing is drawn (before the first sample).
pub(crate) struct MemoryColumns {
    /// Per column, `(lowest, highest)`.
    pub(crate) ranges: Vec<Option<(u64, u64)>>,
}

impl<'a> MemoryLine<'a> {
    /// The memory line of `trace` drawn up to `end`; `None` when the trace
    /// has no samples or the use does not vary by [`MIN_SWING`] of its
    /// highest before `end`.
    pub(crate) fn of(trace: &'a Trace, end: Time) -> Option<MemoryLine<'a>> {
        if trace.memory.len() < 2 {
            return None;
        }
        let samples: Cow<'a, [MemorySample]> =
            if trace.memory.windows(2).all(|w| w[0].time <= w[1].time) {
                Cow::Borrowed(&trace.memory)
            } else {
                let mut copy = trace.memory.clone();
                copy.sort_by_key(|s| s.time);
                Cow::Owned(copy)
            };
        let (lo, hi) = drawn(&samples, end)
            .map(|(_, _, used)| (used, used))
            .reduce(|(lo, hi), (a, b)| (lo.min(a), hi.max(b)))?;
        let (num, den) = MIN_SWING;
        if lo == hi || u128::from(hi - lo) * u128::from(den) < u128::from(hi) * u128::from(num) {
            return None;
        }
        let peak = samples
            .iter()
            .map(|s| s.used)
            .max()
            .unwrap_or(0)
            .max(trace.peak_memory);
        let memory = trace.machine.memory;
        let limit = (memory > 0 && u128::from(peak) * 2 > u128::from(memory)).then_some(memory);
        Some(MemoryLine {
            samples,
            end,
            peak,
            limit,
        })
    }

    /// The value at the top of the strip: the peak, or the limit when it is
    /// drawn.
    fn scale(&self) -> u64 {
        self.limit.unwrap_or(0).max(self.peak).max(1)
    }

    /// Per pixel column of `columns`, the lowest and highest use, each
    /// column joined to the last value of the column before so the steps
    /// connect. One pass over the samples and one over the columns.
    pub(crate) fn columns(&self, columns: Columns) -> MemoryColumns {
        let width = columns.width() as usize;
        // Per column: lowest, highest, last value drawn in it.
        let mut cols: Vec<Option<(u64, u64, u64)>> = vec![None; width];
        for (start, end, used) in drawn(&self.samples, self.end) {
            let Some((first, last)) = columns.touched(start, end) else {
                continue;
            };
            for slot in [first, last] {
                let slot = &mut cols[slot as usize];
                *slot = Some(match *slot {
                    Some((lo, hi, _)) => (lo.min(used), hi.max(used), used),
                    None => (used, used, used),
                });
            }
            if last > first + 1 {
                for slot in &mut cols[first as usize + 1..last as usize] {
                    *slot = Some((used, used, used));
                }
            }
        }
        let mut before: Option<u64> = None;
        let ranges = cols
            .into_iter()
            .map(|col| {
                let (lo, hi, last) = col?;
                let joined = match before {
                    Some(b) => (lo.min(b), hi.max(b)),
                    None => (lo, hi),
                };
                before = Some(last);
                Some(joined)
            })
            .collect();
        MemoryColumns { ranges }
    }

    /// Draws the strip between `top` and `bottom`, its columns from page
    /// column `x0`: the peak at the top left, the limit's dashed line and
    /// value at the top right when drawn, and the line with a light fill
    /// under it.
    pub(crate) fn draw(
        &self,
        pic: &mut Picture,
        placed: &MemoryColumns,
        x0: i32,
        (top, bottom): (i32, i32),
    ) {
        let x1 = x0 + placed.ranges.len() as i32;
        let zero = bottom - 1;
        let line_top = (top + TEXT_BAND).min(zero);
        let scale = self.scale();
        let y = |v: u64| {
            let span = u128::from((zero - line_top) as u32);
            let up = (u128::from(v.min(scale)) * span + u128::from(scale) / 2) / u128::from(scale);
            zero - up as i32
        };
        if let Some(limit) = self.limit {
            let ly = y(limit);
            let mut x = x0;
            while x < x1 {
                pic.rect(x, ly, (x + DASH.0).min(x1), ly + 1, palette::INK);
                x += DASH.0 + DASH.1;
            }
            pic.text(
                format!("limit {}", format_size(limit)),
                (x1 - 4, top + TEXT_BAND / 2),
                TEXT_SIZE,
                Align::Right,
                palette::INK,
            );
        }
        // Runs of columns with the same extent draw as one rectangle each
        // for the fill and the line.
        let mut run: Option<(i32, i32, i32)> = None;
        let flush = |pic: &mut Picture, run: Option<(i32, i32, i32)>, end: i32| {
            if let Some((from, hi, lo)) = run {
                pic.rect(x0 + from, lo + 1, x0 + end, bottom, palette::MEMORY_FILL);
                pic.rect(x0 + from, hi, x0 + end, lo + 1, palette::MEMORY);
            }
        };
        for (c, range) in placed.ranges.iter().enumerate() {
            let c = c as i32;
            let extent = range.map(|(lo, hi)| (y(hi), y(lo)));
            match (run, extent) {
                (Some((_, hi, lo)), Some(e)) if (hi, lo) == e => continue,
                _ => {
                    flush(pic, run, c);
                    run = extent.map(|(hi, lo)| (c, hi, lo));
                }
            }
        }
        flush(pic, run, placed.ranges.len() as i32);
        pic.text(
            format!("peak {}", format_size(self.peak)),
            (x0 + 4, top + TEXT_BAND / 2),
            TEXT_SIZE,
            Align::Left,
            palette::INK,
        );
    }
}

/// The intervals the samples hold within `[0, end)`: each from its time to
/// the next sample's (the last to `end`), empty ones left out.
fn drawn(samples: &[MemorySample], end: Time) -> impl Iterator<Item = (Time, Time, u64)> + '_ {
    let nexts = samples.iter().skip(1).map(|s| s.time).chain([end]);
    samples
        .iter()
        .zip(nexts)
        .map(move |(s, next)| (s.time, next.min(end), s.used))
        .filter(|&(start, stop, _)| start < stop)
}

/// The legend's swatch of the memory line: a step up with its fill, in the
/// 14-pixel square of the other entries whose middle is at `mid`.
pub(crate) fn swatch(pic: &mut Picture, x: i32, mid: i32) {
    pic.rect(x, mid + 3, x + 7, mid + 7, palette::MEMORY_FILL);
    pic.rect(x + 7, mid - 5, x + 14, mid + 7, palette::MEMORY_FILL);
    pic.rect(x, mid + 1, x + 7, mid + 3, palette::MEMORY);
    pic.rect(x + 6, mid - 7, x + 8, mid + 3, palette::MEMORY);
    pic.rect(x + 7, mid - 7, x + 14, mid - 5, palette::MEMORY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Machine;

    fn t(n: u64) -> Time {
        Time(n)
    }

    fn trace(samples: &[(u64, u64)]) -> Trace {
        let mut trace = Trace::new(Machine {
            memory: 1000,
            ..Machine::default()
        });
        trace.memory = samples
            .iter()
            .map(|&(time, used)| MemorySample {
                time: t(time),
                used,
            })
            .collect();
        trace.peak_memory = samples.iter().map(|s| s.1).max().unwrap_or(0);
        trace
    }

    #[test]
    fn flat_or_nearly_flat_memory_draws_nothing() {
        let end = t(100);
        assert!(MemoryLine::of(&trace(&[]), end).is_none());
        assert!(MemoryLine::of(&trace(&[(0, 300)]), end).is_none());
        assert!(MemoryLine::of(&trace(&[(0, 300), (50, 300)]), end).is_none());
        // A few threads on an interpreter: under a tenth.
        assert!(MemoryLine::of(&trace(&[(0, 300), (10, 310), (20, 300)]), end).is_none());
        // The process freed at the very end is not drawn.
        assert!(MemoryLine::of(&trace(&[(0, 300), (100, 0)]), end).is_none());
        let line_trace = trace(&[(0, 300), (50, 600), (90, 300)]);
        let line = MemoryLine::of(&line_trace, end).unwrap();
        assert_eq!(line.peak, 600);
        assert_eq!(line.limit, Some(1000));
        let low_trace = trace(&[(0, 100), (50, 400), (90, 100)]);
        let low = MemoryLine::of(&low_trace, end).unwrap();
        assert_eq!(low.limit, None);
    }

    #[test]
    fn columns_keep_the_lowest_and_highest_and_join_the_steps() {
        // Ten columns of ten: 100 until 25, 400 until 27, 200 on; the third
        // column holds all three, the second joins the first.
        let line_trace = trace(&[(10, 100), (25, 400), (27, 200)]);
        let line = MemoryLine::of(&line_trace, t(100)).unwrap();
        let cols = line.columns(Columns::new(t(100), 10));
        assert_eq!(
            cols.ranges,
            vec![
                None,
                Some((100, 100)),
                Some((100, 400)),
                Some((200, 200)),
                Some((200, 200)),
                Some((200, 200)),
                Some((200, 200)),
                Some((200, 200)),
                Some((200, 200)),
                Some((200, 200)),
            ]
        );
        // Out of order samples are sorted first.
        let shuffled_trace = trace(&[(27, 200), (10, 100), (25, 400)]);
        let shuffled = MemoryLine::of(&shuffled_trace, t(100)).unwrap();
        assert_eq!(
            shuffled.columns(Columns::new(t(100), 10)).ranges,
            cols.ranges
        );
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(format_size(512), "512B");
        assert_eq!(format_size(15_974), "15.6KiB");
        assert_eq!(format_size(40 << 20), "40MiB");
        assert_eq!(format_size(13_560 * 1024), "13.2MiB");
        assert_eq!(format_size(16 << 30), "16GiB");
    }
}
