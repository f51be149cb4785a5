//! Per process with a GIL: how often it changed hands and how often on
//! request (forced switches), what share of the run it was held, and per
//! thread the total and longest wait for it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::ProcessId;
use crate::model::python::gil::GilAction;
use crate::model::thread::{BlockReason, ThreadState};
use crate::time::{Span, Time};
use crate::trace::Trace;

/// One thread's waits for its process's GIL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GilWait {
    /// The thread's name.
    pub thread: String,
    /// All its time waiting for the GIL.
    pub total: Span,
    /// Its longest single wait.
    pub longest: Span,
}

/// What happened to one process's GIL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessGil {
    /// The process's name.
    pub process: String,
    /// Times a thread took the GIL.
    pub handoffs: u64,
    /// Times the holder dropped it on another thread's request.
    pub forced: u64,
    /// Drop requests made.
    pub requests: u64,
    /// Share of the run (0 to 1) during which some thread held it.
    pub held: f64,
    /// Per thread of the process that ever waited, in thread order.
    pub waits: Vec<GilWait>,
}

/// The GIL statistics of every process that has one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GilStats {
    /// Per process with a GIL, in process order.
    pub processes: Vec<ProcessGil>,
}

impl GilStats {
    /// Derives them from `trace`'s GIL events and thread states.
    pub fn from_trace(trace: &Trace) -> GilStats {
        let mut processes: Vec<ProcessId> = trace.gil.iter().map(|e| e.process).collect();
        processes.sort();
        processes.dedup();
        // Shares of the makespan, as CPU utilisation: timers left over at
        // the end (a GIL waiter's) may carry the trace's end past it.
        let whole = trace.makespan().as_nanos().max(1) as f64;
        // Per thread: when its current GIL wait began, total, longest.
        let mut waiting: Vec<(Option<Time>, Span, Span)> =
            vec![(None, Span::ZERO, Span::ZERO); trace.threads.len()];
        for change in &trace.states {
            let slot = &mut waiting[change.thread().index()];
            let gil = matches!(change.state(), ThreadState::Blocked(BlockReason::Gil(_)));
            match (slot.0, gil) {
                (None, true) => slot.0 = Some(change.time()),
                (Some(since), false) => {
                    let length = change.time() - since;
                    slot.1 += length;
                    slot.2 = slot.2.max(length);
                    slot.0 = None;
                }
                _ => {}
            }
        }
        for slot in &mut waiting {
            if let Some(since) = slot.0.take() {
                let length = trace.end - since;
                slot.1 += length;
                slot.2 = slot.2.max(length);
            }
        }
        let processes = processes
            .into_iter()
            .map(|process| {
                let mut stats = ProcessGil {
                    process: trace.processes[process.index()].name.clone(),
                    handoffs: 0,
                    forced: 0,
                    requests: 0,
                    held: 0.0,
                    waits: Vec::new(),
                };
                let mut held = Span::ZERO;
                let mut since = None;
                for e in trace.gil.iter().filter(|e| e.process == process) {
                    match e.action {
                        GilAction::Took => {
                            stats.handoffs += 1;
                            since = Some(e.time);
                        }
                        GilAction::Dropped { forced } => {
                            stats.forced += u64::from(forced);
                            if let Some(start) = since.take() {
                                held += e.time - start;
                            }
                        }
                        GilAction::DropRequest => stats.requests += 1,
                    }
                }
                if let Some(start) = since {
                    held += trace.end - start;
                }
                stats.held = held.as_nanos() as f64 / whole;
                stats.waits = trace
                    .threads
                    .iter()
                    .zip(&waiting)
                    .filter(|(t, w)| t.process == process && !w.1.is_zero())
                    .map(|(t, w)| GilWait {
                        thread: t.name.clone(),
                        total: w.1,
                        longest: w.2,
                    })
                    .collect();
                stats
            })
            .collect();
        GilStats { processes }
    }

    /// The statistics of the process with this name.
    pub fn process(&self, name: &str) -> Option<&ProcessGil> {
        self.processes.iter().find(|p| p.process == name)
    }
}

impl fmt::Display for GilStats {
    /// Per process: a line of totals, then each waiting thread's waits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.processes {
            writeln!(
                f,
                "gil of {}: held {:.1}% of the run, {} hand-offs, {} forced (on {} drop requests)",
                p.process,
                p.held * 100.0,
                p.handoffs,
                p.forced,
                p.requests
            )?;
            for w in &p.waits {
                writeln!(
                    f,
                    "  {} waited {} for the gil (longest {})",
                    w.thread, w.total, w.longest
                )?;
            }
        }
        Ok(())
    }
}
