//! What a Gantt chart draws of the interpreter locks of a trace's Python
//! processes: per process, who held its GIL when, the drop requests, and
//! which drops were forced by one.
//!
//! The trace keeps one [`GilEvent`] per change of holder and per drop
//! request, in time order. A hold runs from a `Took` to the holder's
//! `Dropped` (to the end of the chart if it never dropped it); holds come
//! out as intervals in time order, ready for the pixel merge, and drop
//! requests and forced drops as instants in time order. A million hand-offs
//! cost one pass (and a sort, should the events be out of order).
//!
//! Events are taken as they are, even from a hand-edited trace: a `Took`
//! while another thread holds the lock ends that hold there, a `Dropped` by
//! a thread that does not hold it is ignored, and events past the end of
//! the chart are left out.

use std::collections::HashMap;

use super::devices::Timed;
use super::merge::{merge_sorted, Columns, Segment};
use super::palette::Shade;
use crate::ids::{ProcessId, ThreadId};
use crate::model::python::gil::{GilAction, GilEvent};
use crate::time::Time;
use crate::trace::Trace;

/// Past this many processes with a GIL, the rest are left out (and the
/// notes say so).
pub(crate) const MAX_GILS: usize = 64;

/// The intervals and instants of one process's GIL.
pub(crate) struct GilSpans {
    /// The process's name, as the trace's processes give it.
    pub(crate) name: String,
    /// Who held it, in time order and not overlapping, all of shade
    /// [`Shade::GilHeld`].
    pub(crate) held: Vec<Timed<(ThreadId, Shade)>>,
    /// When a waiter asked the holder to drop it, in time order.
    pub(crate) requests: Vec<Time>,
    /// The holds their holder dropped on request (ending at the drop), in
    /// time order.
    pub(crate) forced: Vec<Timed<ThreadId>>,
}

/// The GILs of a trace that a chart draws.
pub(crate) struct Gils {
    /// The first [`MAX_GILS`] processes with GIL events, by process id.
    pub(crate) shown: Vec<GilSpans>,
    /// How many processes have GIL events in all.
    pub(crate) total: usize,
}

impl Gils {
    /// The GILs of `trace` drawn up to `end`; none for a trace without GIL
    /// events.
    pub(crate) fn of(trace: &Trace, end: Time) -> Gils {
        if trace.gil.is_empty() {
            return Gils {
                shown: Vec::new(),
                total: 0,
            };
        }
        let sorted;
        let events: &[GilEvent] = if trace.gil.windows(2).all(|w| w[0].time <= w[1].time) {
            &trace.gil
        } else {
            let mut copy = trace.gil.clone();
            copy.sort_by_key(|e| e.time);
            sorted = copy;
            &sorted
        };
        let mut slot: HashMap<ProcessId, usize> = HashMap::new();
        let mut builders: Vec<(ProcessId, Builder)> = Vec::new();
        // The process of the event before, to skip most map lookups.
        let mut last: Option<(ProcessId, usize)> = None;
        for e in events.iter().take_while(|e| e.time <= end) {
            let i = match last {
                Some((p, i)) if p == e.process => i,
                _ => {
                    let i = *slot.entry(e.process).or_insert_with(|| {
                        builders.push((e.process, Builder::default()));
                        builders.len() - 1
                    });
                    last = Some((e.process, i));
                    i
                }
            };
            builders[i].1.add(e);
        }
        let total = builders.len();
        builders.sort_by_key(|&(p, _)| p);
        builders.truncate(MAX_GILS);
        let shown = builders
            .into_iter()
            .map(|(p, builder)| {
                let name = trace
                    .processes
                    .get(p.index())
                    .map_or_else(|| p.to_string(), |info| info.name.clone());
                builder.finish(name, end)
            })
            .collect();
        Gils { shown, total }
    }

    /// Whether some thread held a GIL within the chart.
    pub(crate) fn held(&self) -> bool {
        self.shown.iter().any(|g| !g.held.is_empty())
    }
}

/// A GIL row placed on pixel columns: what it draws.
pub(crate) struct GilBars {
    /// The holds, merged per pixel.
    pub(crate) merged: Vec<Segment<(ThreadId, Shade)>>,
    /// The columns where a bar ends in a forced drop: one past its last.
    pub(crate) edges: Vec<u32>,
    /// The columns of the drop requests drawn.
    pub(crate) requests: Vec<u32>,
}

impl GilSpans {
    /// Its holds merged onto `columns`, the ends of the bars that a forced
    /// drop ends, and the drop requests at least `spacing` columns apart.
    ///
    /// A forced drop ends a bar where the hold it ends and the bar are both
    /// at least four columns wide, so hand-offs too dense to see, merged
    /// into one bar, draw no edge that no hold has.
    pub(crate) fn bars(&self, columns: Columns, spacing: u32) -> GilBars {
        let merged = merge_sorted(self.held.iter().copied(), columns);
        let mut edges: Vec<u32> = Vec::new();
        for &(since, t, thread) in &self.forced {
            let e = columns.edge(t);
            if e < columns.edge(since) + 4 {
                continue;
            }
            // The bar it ends: the merge may put its end a column either way.
            let i = merged.partition_point(|s| s.x1 + 1 < e);
            let Some(seg) = merged.get(i) else { continue };
            let ends_it = seg.x1 <= e + 1 && seg.key.0 == thread && seg.x1 - seg.x0 >= 4;
            if ends_it && edges.last() != Some(&seg.x1) {
                edges.push(seg.x1);
            }
        }
        let requests = mark_columns(self.requests.iter().copied(), columns, spacing);
        GilBars {
            merged,
            edges,
            requests,
        }
    }
}

/// One process's GIL while its events are read.
#[derive(Default)]
struct Builder {
    /// The holder and since when.
    holder: Option<(ThreadId, Time)>,
    held: Vec<Timed<(ThreadId, Shade)>>,
    requests: Vec<Time>,
    forced: Vec<Timed<ThreadId>>,
}

impl Builder {
    fn add(&mut self, e: &GilEvent) {
        match e.action {
            GilAction::Took => {
                match self.holder {
                    Some((holder, _)) if holder == e.thread => return,
                    Some(_) => self.close(e.time),
                    None => {}
                }
                self.holder = Some((e.thread, e.time));
            }
            GilAction::Dropped { forced } => {
                if let Some((holder, since)) = self.holder {
                    if holder == e.thread {
                        self.close(e.time);
                        if forced {
                            self.forced.push((since, e.time, holder));
                        }
                    }
                }
            }
            GilAction::DropRequest => self.requests.push(e.time),
        }
    }

    /// Ends the current hold at `t`.
    fn close(&mut self, t: Time) {
        if let Some((thread, since)) = self.holder.take() {
            if since < t {
                self.held.push((since, t, (thread, Shade::GilHeld)));
            }
        }
    }

    fn finish(mut self, name: String, end: Time) -> GilSpans {
        self.close(end);
        GilSpans {
            name,
            held: self.held,
            requests: self.requests,
            forced: self.forced,
        }
    }
}

/// The pixel columns of the instants `times` (in time order): each column
/// once, in order, at least `spacing` columns apart (a mark closer to the
/// one before is left out), all below the width.
pub(crate) fn mark_columns(
    times: impl IntoIterator<Item = Time>,
    columns: Columns,
    spacing: u32,
) -> Vec<u32> {
    let last_col = columns.width().saturating_sub(1);
    let mut out: Vec<u32> = Vec::new();
    for t in times {
        let col = columns.edge(t).min(last_col);
        if out.last().is_none_or(|&prev| col >= prev + spacing.max(1)) {
            out.push(col);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::process::ProcessInfo;
    use crate::Machine;

    fn t(n: u64) -> Time {
        Time(n)
    }

    fn event(time: u64, process: u32, thread: u32, action: GilAction) -> GilEvent {
        GilEvent {
            time: t(time),
            process: ProcessId(process),
            thread: ThreadId(thread),
            action,
        }
    }

    fn trace(events: Vec<GilEvent>) -> Trace {
        let mut trace = Trace::new(Machine::default());
        for name in ["main", "python"] {
            trace.processes.push(ProcessInfo { name: name.into() });
        }
        trace.gil = events;
        trace
    }

    const DROPPED: GilAction = GilAction::Dropped { forced: false };
    const FORCED: GilAction = GilAction::Dropped { forced: true };

    #[test]
    fn holds_run_from_took_to_dropped_or_the_end() {
        let gils = Gils::of(
            &trace(vec![
                event(0, 1, 0, GilAction::Took),
                event(5, 1, 1, GilAction::DropRequest),
                event(5, 1, 0, FORCED),
                event(5, 1, 1, GilAction::Took),
                event(8, 1, 1, DROPPED),
                event(9, 1, 0, GilAction::Took),
            ]),
            t(20),
        );
        assert_eq!(gils.total, 1);
        let gil = &gils.shown[0];
        assert_eq!(gil.name, "python");
        let h = Shade::GilHeld;
        assert_eq!(
            gil.held,
            vec![
                (t(0), t(5), (ThreadId(0), h)),
                (t(5), t(8), (ThreadId(1), h)),
                (t(9), t(20), (ThreadId(0), h)),
            ]
        );
        assert_eq!(gil.requests, vec![t(5)]);
        assert_eq!(gil.forced, vec![(t(0), t(5), ThreadId(0))]);
        assert!(gils.held());
    }

    #[test]
    fn odd_events_are_taken_as_they_are() {
        let gils = Gils::of(
            &trace(vec![
                // Out of order, a drop by a non-holder, a second took.
                event(4, 1, 1, GilAction::Took),
                event(0, 1, 0, GilAction::Took),
                event(2, 1, 1, FORCED),
                event(6, 7, 3, GilAction::Took),
                event(30, 1, 1, DROPPED),
            ]),
            t(10),
        );
        assert_eq!(gils.total, 2);
        let h = Shade::GilHeld;
        assert_eq!(
            gils.shown[0].held,
            vec![
                (t(0), t(4), (ThreadId(0), h)),
                (t(4), t(10), (ThreadId(1), h))
            ]
        );
        assert!(gils.shown[0].forced.is_empty());
        // A process the trace does not list is named by its id.
        assert_eq!(gils.shown[1].name, "p7");
        assert!(Gils::of(&trace(Vec::new()), t(10)).shown.is_empty());
    }

    #[test]
    fn forced_drops_end_bars_wide_enough_to_show_it() {
        let h = Shade::GilHeld;
        let gil = GilSpans {
            name: "python".into(),
            held: vec![
                (t(0), t(50), (ThreadId(0), h)),
                (t(50), t(52), (ThreadId(1), h)),
                (t(52), t(100), (ThreadId(0), h)),
            ],
            requests: vec![t(50), t(51), t(52), t(100)],
            forced: vec![(t(0), t(50), ThreadId(0)), (t(50), t(52), ThreadId(1))],
        };
        let bars = gil.bars(Columns::new(t(100), 100), 2);
        assert_eq!(bars.merged.len(), 3);
        // The two-column hold draws no edge.
        assert_eq!(bars.edges, vec![50]);
        assert_eq!(bars.requests, vec![50, 52, 99]);
    }

    #[test]
    fn marks_take_one_column_each_and_keep_apart() {
        let cols = Columns::new(t(100), 10);
        let times = [0, 1, 12, 14, 30, 31, 100, 200].map(t);
        assert_eq!(mark_columns(times, cols, 1), vec![0, 1, 3, 9]);
        assert_eq!(mark_columns(times, cols, 3), vec![0, 3, 9]);
    }
}
