//! What a chart draws of the deadlock a trace recorded, without the caller
//! asking: a marker at the instant the cycle closed whose label spells the
//! cycle ("deadlock: a → m1 → b → m2 → a"), the rows of its threads
//! outlined, and their waits from where they blocked to the end emphasised.
//!
//! A run often ends the moment its last thread blocks, which would leave the
//! last wait of the cycle zero pixels wide; the chart then runs on a little
//! past the end of the run ([`chart_end`]), with the unfinished threads still
//! in their last state, so every wait of the cycle shows.

use super::{Marker, MarkerKind};
use crate::ids::ThreadId;
use crate::model::thread::ThreadState;
use crate::time::Time;
use crate::trace::{Deadlock, StateChange, Trace, WaitTarget};

/// The time the chart spans: the end of the run, or a tenth more than the
/// deadlock's time when the run ended within that of the deadlock.
pub(crate) fn chart_end(trace: &Trace) -> Time {
    let end = trace.end.max(trace.makespan());
    let end = match &trace.deadlock {
        Some(dl) => {
            let tail = (dl.time.as_nanos() / 10).max(1);
            end.max(Time(dl.time.as_nanos().saturating_add(tail)))
        }
        None => end,
    };
    Time(end.as_nanos().max(1))
}

/// The markers to draw: the caller's, and the trace's deadlock unless the
/// caller already marks a deadlock at that time (then that marker outlines
/// the cycle's threads too). In the caller's order, the deadlock's last.
pub(crate) fn markers(trace: &Trace, given: &[Marker]) -> Vec<Marker> {
    let mut markers = given.to_vec();
    // Where a task held its event loop past the slow-callback threshold
    // (the first few of each loop).
    for lp in &trace.loops {
        for slow in lp.slow.iter().take(4) {
            markers.push(Marker {
                time: slow.start,
                label: format!(
                    "{} blocks the loop {}",
                    trace.threads[slow.task.index()].name,
                    slow.held
                ),
                threads: vec![lp.thread, slow.task],
                kind: MarkerKind::Note,
            });
        }
    }
    let Some(dl) = &trace.deadlock else {
        return markers;
    };
    let threads = cycle_threads(dl);
    let same = markers
        .iter_mut()
        .find(|m| m.kind == MarkerKind::Deadlock && m.time == dl.time);
    match same {
        Some(marker) => marker.threads.extend(threads),
        None => markers.push(Marker {
            time: dl.time,
            label: cycle_label(trace, dl),
            threads,
            kind: MarkerKind::Deadlock,
        }),
    }
    markers
}

/// The threads of the cycle, in cycle order, each once.
fn cycle_threads(dl: &Deadlock) -> Vec<ThreadId> {
    let mut threads: Vec<ThreadId> = Vec::with_capacity(dl.cycle.len());
    for step in &dl.cycle {
        if !threads.contains(&step.thread) {
            threads.push(step.thread);
        }
    }
    threads
}

/// "deadlock: a → m1 → b → m2 → a": each thread, then what it waits for,
/// back to the first; a join reads "a → join b".
pub(crate) fn cycle_label(trace: &Trace, dl: &Deadlock) -> String {
    let name = |t: ThreadId| {
        trace
            .threads
            .get(t.index())
            .map_or("?", |i| i.name.as_str())
    };
    let mut label = String::from("deadlock:");
    let Some(first) = dl.cycle.first() else {
        return label;
    };
    label.push(' ');
    label.push_str(name(first.thread));
    for (i, step) in dl.cycle.iter().enumerate() {
        let next = dl.cycle[(i + 1) % dl.cycle.len()].thread;
        match step.target {
            WaitTarget::Resource(r) => {
                label.push_str(" → ");
                label.push_str(trace.resource_name(r));
                label.push_str(" → ");
                label.push_str(name(next));
            }
            WaitTarget::Thread(t) => {
                label.push_str(" → join ");
                label.push_str(name(t));
            }
        }
    }
    label
}

/// Per thread, when its deadlocked wait began: the time of its last state
/// change, for the threads of the cycle whose last state is a wait.
/// Indexed by thread; `None` for every other thread.
pub(crate) fn blocked_since(trace: &Trace) -> Vec<Option<Time>> {
    let mut since = vec![None; trace.threads.len()];
    let Some(dl) = &trace.deadlock else {
        return since;
    };
    let last = last_changes(trace);
    for step in &dl.cycle {
        let i = step.thread.index();
        if let Some(Some(change)) = last.get(i) {
            if matches!(
                change.state(),
                ThreadState::Blocked(_) | ThreadState::Spin(_)
            ) {
                since[i] = Some(change.time());
            }
        }
    }
    since
}

/// Per thread, its last state change.
pub(crate) fn last_changes(trace: &Trace) -> Vec<Option<StateChange>> {
    let mut last = vec![None; trace.threads.len()];
    for change in &trace.states {
        if let Some(slot) = last.get_mut(change.thread().index()) {
            *slot = Some(change);
        }
    }
    last
}
