//! Intervals derived from the state changes of a trace.

use serde::{Deserialize, Serialize};

use super::Trace;
use crate::ids::{CpuId, OriginId, ThreadId};
use crate::model::thread::ThreadState;
use crate::time::Time;

/// A thread stayed in one state from `start` to `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Which thread.
    pub thread: ThreadId,
    /// The state it was in.
    pub state: ThreadState,
    /// The CPU, for states on a CPU.
    pub cpu: Option<CpuId>,
    /// The operation that caused the state, if recorded.
    pub origin: Option<OriginId>,
    /// When it entered the state.
    pub start: Time,
    /// When it left it (or the end of the run).
    pub end: Time,
}

/// A CPU was busy with a thread (running, switching to it, or spinning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuInterval {
    /// Which CPU.
    pub cpu: CpuId,
    /// The thread.
    pub thread: ThreadId,
    /// Running, switch or spin.
    pub state: ThreadState,
    /// Start.
    pub start: Time,
    /// End.
    pub end: Time,
}

impl Trace {
    /// Every thread's intervals, one list per thread, in time order. A thread
    /// that never finished is in its last state until the end of the run.
    /// Zero-length intervals are left out.
    pub fn thread_intervals(&self) -> Vec<Vec<Interval>> {
        let mut out: Vec<Vec<Interval>> = vec![Vec::new(); self.threads.len()];
        self.for_each_interval(self.end, |interval| {
            out[interval.thread.index()].push(interval);
        });
        out
    }

    /// Calls `f` with every thread's intervals, without collecting them: each
    /// thread's in time order, the threads' interleaved. A thread that never
    /// finished stays in its last state until `until` (or the end of the
    /// run, if later). Zero-length intervals are left out. Holds one open
    /// interval per thread, whatever the length of the trace.
    pub fn for_each_interval(&self, until: Time, mut f: impl FnMut(Interval)) {
        let mut open: Vec<Option<Interval>> = vec![None; self.threads.len()];
        for change in &self.states {
            let i = change.thread().index();
            if let Some(mut prev) = open[i].take() {
                prev.end = change.time();
                if prev.end > prev.start {
                    f(prev);
                }
            }
            if change.state() != ThreadState::Done {
                open[i] = Some(Interval {
                    thread: change.thread(),
                    state: change.state(),
                    cpu: change.cpu(),
                    origin: change.origin(),
                    start: change.time(),
                    end: change.time(),
                });
            }
        }
        let until = until.max(self.end);
        for mut prev in open.into_iter().flatten() {
            prev.end = until.max(prev.start);
            if prev.end > prev.start {
                f(prev);
            }
        }
    }

    /// Every CPU's busy intervals, one list per CPU, in time order.
    pub fn cpu_intervals(&self) -> Vec<Vec<CpuInterval>> {
        let mut out: Vec<Vec<CpuInterval>> = vec![Vec::new(); usize::from(self.machine.cpus)];
        self.for_each_interval(self.end, |interval| {
            if let (Some(cpu), true) = (interval.cpu, interval.state.on_cpu()) {
                out[cpu.index()].push(CpuInterval {
                    cpu,
                    thread: interval.thread,
                    state: interval.state,
                    start: interval.start,
                    end: interval.end,
                });
            }
        });
        for list in &mut out {
            list.sort_by_key(|i| (i.start, i.end));
        }
        out
    }
}
