//! Per event loop, what its tasks did: iterations, steps, switches and the
//! CPU they cost, the longest a ready task waited, and every task step that
//! held the loop past the slow-callback threshold (the task, the line, how
//! long), as asyncio's debug mode warns of slow callbacks; then, per task,
//! where its time went.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::stats::{Stats, ThreadStats};
use crate::kernel::LoopStatsInfo;
use crate::time::{Span, Time};
use crate::trace::Trace;

/// How many tasks a loop's table lists in the text report.
const LISTED_TASKS: usize = 12;

/// A task step that held its loop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// The task.
    pub task: String,
    /// When the step began.
    pub at: Time,
    /// How long it held the loop.
    pub held: Span,
    /// The call that held it longest, "script.rhai:12:5", if known.
    pub origin: Option<String>,
}

/// One loop's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopReport {
    /// The loop's thread.
    pub name: String,
    /// Its counts.
    pub stats: LoopStatsInfo,
    /// The slow-callback threshold.
    pub slow_callback: Span,
    /// Steps that held the loop at least the threshold, in time order.
    pub blockers: Vec<Blocker>,
    /// Time the loop was held by those steps, in all.
    pub blocked: Span,
    /// Its tasks, in creation order.
    pub tasks: Vec<ThreadStats>,
}

/// Every loop of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventLoops {
    /// In declaration order.
    pub loops: Vec<LoopReport>,
}

impl EventLoops {
    /// Derives the loops' figures from `trace` and its statistics.
    pub fn from_trace(trace: &Trace, stats: &Stats) -> EventLoops {
        let loops = trace
            .loops
            .iter()
            .map(|info| {
                let blockers: Vec<Blocker> = info
                    .slow
                    .iter()
                    .map(|slow| Blocker {
                        task: trace.threads[slow.task.index()].name.clone(),
                        at: slow.start,
                        held: slow.held,
                        origin: slow
                            .origin
                            .and_then(|o| trace.origin(o))
                            .map(|o| format!("{}:{}:{}", o.file, o.line, o.column)),
                    })
                    .collect();
                LoopReport {
                    name: trace.threads[info.thread.index()].name.clone(),
                    stats: info.stats,
                    slow_callback: info.slow_callback,
                    blocked: blockers.iter().map(|b| b.held).sum(),
                    blockers,
                    tasks: info
                        .tasks
                        .iter()
                        .map(|t| stats.threads[t.index()].clone())
                        .collect(),
                }
            })
            .collect();
        EventLoops { loops }
    }
}

impl fmt::Display for EventLoops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for lp in &self.loops {
            let s = &lp.stats;
            writeln!(
                f,
                "event loop '{}': {} tasks, {} iterations, {} task steps, {} task switches ({} of cpu), longest wait of a ready task {}",
                lp.name, s.tasks, s.iterations, s.steps, s.switches, s.switching, s.longest_ready_wait
            )?;
            if lp.blockers.is_empty() {
                writeln!(f, "  no task held the loop {} or more", lp.slow_callback)?;
            } else {
                writeln!(
                    f,
                    "  {} step(s) held the loop {} or more, {} in all: every other task waited",
                    lp.blockers.len(),
                    lp.slow_callback,
                    lp.blocked
                )?;
                for b in lp.blockers.iter().take(5) {
                    let at = b
                        .origin
                        .as_deref()
                        .map(|o| format!(" at {o}"))
                        .unwrap_or_default();
                    writeln!(
                        f,
                        "  task '{}' held the loop {} from {}{at}",
                        b.task, b.held, b.at
                    )?;
                }
                if lp.blockers.len() > 5 {
                    writeln!(f, "  ... and {} more", lp.blockers.len() - 5)?;
                }
            }
            let width = lp
                .tasks
                .iter()
                .take(LISTED_TASKS)
                .map(|t| t.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            writeln!(
                f,
                "  {:<width$}  {:>12}  {:>12}  {:>12}  {:>8}  {:>12}  awaiting by kind",
                "task", "running", "ready", "awaiting", "switches", "end"
            )?;
            for t in lp.tasks.iter().take(LISTED_TASKS) {
                super::stats::write_row(f, "  ", width, t, await_name)?;
            }
            if lp.tasks.len() > LISTED_TASKS {
                writeln!(
                    f,
                    "  ... and {} more tasks (every one is in --json)",
                    lp.tasks.len() - LISTED_TASKS
                )?;
            }
        }
        Ok(())
    }
}

/// What a task awaits, named as a task's wait (a join is awaiting a task).
fn await_name(kind: crate::model::thread::BlockKind) -> &'static str {
    match kind {
        crate::model::thread::BlockKind::Join => "task",
        other => other.name(),
    }
}
