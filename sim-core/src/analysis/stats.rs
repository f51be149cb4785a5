//! Statistics derived from a trace: makespan, per-thread time by state, per-CPU
//! utilisation.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::thread::{BlockKind, ThreadState};
use crate::time::{Span, Time};
use crate::trace::{StateChange, Trace};

/// Where one thread's time went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadStats {
    /// Its name.
    pub name: String,
    /// Its process's name.
    pub process: String,
    /// Time running on a CPU.
    pub cpu: Span,
    /// Time ready, waiting for a CPU.
    pub ready: Span,
    /// Time on a CPU that was switching to it.
    pub switching: Span,
    /// Time spinning on a CPU.
    pub spin: Span,
    /// Time blocked, by kind of wait.
    pub blocked: BTreeMap<BlockKind, Span>,
    /// Context switches to it: times it was put on a CPU that last ran
    /// another thread, whether the machine charges for a switch or not
    /// (`context_switch: 0`, as the textbook preset has). For an asyncio
    /// task's row, the task switches its loop paid for.
    pub switches: u32,
    /// Times it was put on a CPU.
    pub dispatches: u32,
    /// When it finished, if it did.
    pub end: Option<Time>,
    /// Whether it is an asyncio task's row (its running time is its loop
    /// thread's CPU time, not its own).
    #[serde(default)]
    pub task: bool,
}

impl ThreadStats {
    /// Total time blocked, all kinds together.
    pub fn blocked_total(&self) -> Span {
        self.blocked.values().copied().sum()
    }

    /// Time blocked for one kind of wait.
    pub fn blocked_on(&self, kind: BlockKind) -> Span {
        self.blocked.get(&kind).copied().unwrap_or_default()
    }
}

/// How busy one CPU was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Time running (or spinning) threads.
    pub busy: Span,
    /// Time paying switch costs.
    pub switching: Span,
    /// (busy + switching) / makespan, from 0 to 1.
    pub utilisation: f64,
}

/// All statistics of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// When the last thread finished (or the run ended, if some never did).
    pub makespan: Time,
    /// Per thread, by [`crate::ThreadId`].
    pub threads: Vec<ThreadStats>,
    /// Per CPU, by [`crate::CpuId`].
    pub cpus: Vec<CpuStats>,
}

/// CPU time of one process: the sum of its threads'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCpu {
    /// The process's name.
    pub name: String,
    /// Its threads' time running (process start-up included).
    pub cpu: Span,
    /// How many threads it had.
    pub threads: u32,
}

impl Stats {
    /// Derives the statistics of `trace`.
    pub fn from_trace(trace: &Trace) -> Stats {
        let makespan = trace.makespan();
        let mut threads: Vec<ThreadStats> = trace
            .threads
            .iter()
            .map(|info| ThreadStats {
                name: info.name.clone(),
                process: trace.processes[info.process.index()].name.clone(),
                cpu: Span::ZERO,
                ready: Span::ZERO,
                switching: Span::ZERO,
                spin: Span::ZERO,
                blocked: BTreeMap::new(),
                switches: 0,
                dispatches: 0,
                end: None,
                task: info.task_of.is_some(),
            })
            .collect();
        let mut cpus = vec![(Span::ZERO, Span::ZERO); usize::from(trace.machine.cpus)];
        // One pass over the state changes: each closes the interval its
        // thread was in (the same intervals as `Trace::thread_intervals`,
        // without building them).
        let mut open: Vec<Option<StateChange>> = vec![None; threads.len()];
        let mut account = |from: StateChange, end: Time, threads: &mut [ThreadStats]| {
            if end <= from.time() {
                return;
            }
            let stats = &mut threads[from.thread().index()];
            let length = end - from.time();
            match from.state() {
                ThreadState::Running | ThreadState::Spawn => stats.cpu += length,
                ThreadState::Ready => stats.ready += length,
                ThreadState::Switch => stats.switching += length,
                ThreadState::Spin(_) => stats.spin += length,
                ThreadState::Blocked(reason) => {
                    *stats.blocked.entry(reason.kind()).or_default() += length
                }
                ThreadState::Done => {}
            }
            if let Some(cpu) = from.cpu() {
                let (busy, switching) = &mut cpus[cpu.index()];
                match from.state() {
                    ThreadState::Switch => *switching += length,
                    _ => *busy += length,
                }
            }
        };
        // The thread each CPU ran last, as the kernel keeps it to charge a
        // switch: a thread put on a CPU whose last thread was another one
        // was switched to, paid or not.
        let mut last_on: Vec<Option<usize>> = vec![None; usize::from(trace.machine.cpus)];
        for change in &trace.states {
            let i = change.thread().index();
            if let Some(previous) = open[i].take() {
                account(previous, change.time(), &mut threads);
            }
            let stats = &mut threads[i];
            let state = change.state();
            if stats.task {
                // An asyncio task's row: each task switch its loop pays
                // (`task_switch`) is a Switch state, on no CPU.
                if state == ThreadState::Switch {
                    stats.switches += 1;
                }
            } else if matches!(
                state,
                ThreadState::Switch | ThreadState::Running | ThreadState::Spawn
            ) {
                if let Some(last) = change.cpu().and_then(|c| last_on.get_mut(c.index())) {
                    if last.is_some_and(|l| l != i) {
                        stats.switches += 1;
                    }
                    *last = Some(i);
                }
            }
            match state {
                ThreadState::Done => stats.end = Some(change.time()),
                // Each dispatch records Running once, after its switch if any.
                ThreadState::Running => stats.dispatches += 1,
                _ => {}
            }
            if change.state() != ThreadState::Done {
                open[i] = Some(change);
            }
        }
        for previous in open.into_iter().flatten() {
            account(previous, trace.end.max(previous.time()), &mut threads);
        }
        let whole = makespan.elapsed().as_nanos();
        let cpus = cpus
            .into_iter()
            .map(|(busy, switching)| CpuStats {
                busy,
                switching,
                utilisation: if whole == 0 {
                    0.0
                } else {
                    (busy + switching).as_nanos() as f64 / whole as f64
                },
            })
            .collect();
        Stats {
            makespan,
            threads,
            cpus,
        }
    }

    /// The statistics of the thread with this name.
    pub fn thread(&self, name: &str) -> Option<&ThreadStats> {
        self.threads.iter().find(|t| t.name == name)
    }

    /// CPU time per process that has threads, in the order of their first
    /// thread.
    pub fn processes(&self) -> Vec<ProcessCpu> {
        let mut out: Vec<ProcessCpu> = Vec::new();
        for t in self.threads.iter().filter(|t| !t.task) {
            match out.iter_mut().find(|p| p.name == t.process) {
                Some(p) => {
                    p.cpu += t.cpu;
                    p.threads += 1;
                }
                None => out.push(ProcessCpu {
                    name: t.process.clone(),
                    cpu: t.cpu,
                    threads: 1,
                }),
            }
        }
        out
    }
}

/// One thread's line of a report table: cpu, ready, blocked, switches, end
/// and the waits by kind (named by `kind_name`), after `indent`.
pub(crate) fn write_row(
    f: &mut fmt::Formatter<'_>,
    indent: &str,
    width: usize,
    t: &ThreadStats,
    kind_name: fn(BlockKind) -> &'static str,
) -> fmt::Result {
    let kinds: Vec<String> = t
        .blocked
        .iter()
        .map(|(kind, span)| format!("{} {span}", kind_name(*kind)))
        .collect();
    let end = t.end.map_or_else(|| "-".to_string(), |e| e.to_string());
    writeln!(
        f,
        "{indent}{:<width$}  {:>12}  {:>12}  {:>12}  {:>8}  {:>12}  {}",
        t.name,
        t.cpu.to_string(),
        t.ready.to_string(),
        t.blocked_total().to_string(),
        t.switches,
        end,
        kinds.join(", ")
    )
}

impl fmt::Display for Stats {
    /// A plain-text report: makespan, one line per thread, one per CPU.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "makespan: {}", self.makespan)?;
        let width = self
            .threads
            .iter()
            .filter(|t| !t.task)
            .map(|t| t.name.len())
            .max()
            .unwrap_or(6)
            .max(6);
        writeln!(
            f,
            "{:<width$}  {:>12}  {:>12}  {:>12}  {:>8}  {:>12}  blocked by kind",
            "thread", "cpu", "ready", "blocked", "switches", "end"
        )?;
        for t in self.threads.iter().filter(|t| !t.task) {
            write_row(f, "", width, t, BlockKind::name)?;
        }
        let processes = self.processes();
        if processes.len() > 1 {
            let list: Vec<String> = processes
                .iter()
                .map(|p| format!("{} {}", p.name, p.cpu))
                .collect();
            writeln!(f, "cpu by process: {}", list.join(", "))?;
        }
        writeln!(
            f,
            "{:<6}  {:>12}  {:>12}  {:>11}",
            "cpu", "busy", "switching", "utilisation"
        )?;
        for (i, c) in self.cpus.iter().enumerate() {
            writeln!(
                f,
                "{:<6}  {:>12}  {:>12}  {:>10.1}%",
                format!("cpu{i}"),
                c.busy.to_string(),
                c.switching.to_string(),
                c.utilisation * 100.0
            )?;
        }
        Ok(())
    }
}
