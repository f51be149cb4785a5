//! `concurrent.futures`' executors: a pool of worker threads
//! (`ThreadPoolExecutor`) or worker processes (`ProcessPoolExecutor`) that
//! take jobs from one FIFO queue.
//!
//! This module holds the rules and the record, with no coroutines: when a
//! submit starts a new worker (CPython's `_adjust_thread_count` and
//! `_adjust_process_count`), and what a run keeps of a pool for the report
//! and the chart. `kernel::pool` runs the workers.

use serde::{Deserialize, Serialize};

use crate::ids::{ProcessId, ThreadId};
use crate::kernel::StartMethod;
use crate::time::{Span, Time};

/// What a pool's workers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    /// Threads of the pool's process (`ThreadPoolExecutor`): they share its
    /// memory and its GIL.
    Threads,
    /// Processes of their own (`ProcessPoolExecutor`): each has its own
    /// memory and GIL; every job and every result crosses a pipe, pickled.
    Processes {
        /// How a worker process starts (its spawn cost).
        start_method: StartMethod,
        /// Whether a worker process has a GIL.
        gil: bool,
    },
}

impl PoolKind {
    /// "thread pool" or "process pool", as reports say it.
    pub fn label(self) -> &'static str {
        match self {
            PoolKind::Threads => "thread pool",
            PoolKind::Processes { .. } => "process pool",
        }
    }
}

/// Whether a submit starts a worker, as CPython decides it: not when a
/// worker is idle (`_idle_semaphore.acquire(timeout=0)` succeeds), else
/// when the pool has fewer than its maximum. A process pool started with
/// "fork" starts all its workers at the first submit instead
/// (`_launch_processes`: forking later, from a process with threads, is
/// unsafe).
pub fn starts_worker(idle: usize, workers: usize, max: usize) -> bool {
    idle == 0 && workers < max
}

/// One job of a pool, from its submit to its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The name the script gave it.
    pub name: String,
    /// When it was submitted.
    pub submitted: Time,
    /// When a worker began it (after unpickling it, for a process pool).
    pub started: Option<Time>,
    /// When its body ended.
    pub ended: Option<Time>,
    /// The worker that ran it.
    pub worker: Option<ThreadId>,
    /// Bytes of its pickled arguments (process pools).
    pub bytes: u64,
    /// Bytes of its pickled result (process pools).
    pub result_bytes: u64,
    /// Whether its body failed.
    pub failed: bool,
}

impl JobRecord {
    /// How long it waited in the queue (until now, if it never started).
    pub fn queue_wait(&self, end: Time) -> Span {
        self.started.unwrap_or(end).since(self.submitted)
    }
}

/// What a run keeps of a pool: for the report and the chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolInfo {
    /// Its name.
    pub name: String,
    /// Threads or processes.
    pub kind: PoolKind,
    /// The process whose threads submit to it.
    pub process: ProcessId,
    /// Its maximum number of workers.
    pub max_workers: usize,
    /// Its worker threads (for a process pool: each worker process's
    /// thread), in the order they started.
    pub workers: Vec<ThreadId>,
    /// A process pool's result-collecting thread in the submitting process
    /// (CPython's `_ExecutorManagerThread`).
    pub manager: Option<ThreadId>,
    /// Its jobs, in submit order.
    pub jobs: Vec<JobRecord>,
}

impl PoolInfo {
    /// A pool with no workers or jobs yet.
    pub fn new(name: &str, kind: PoolKind, process: ProcessId, max_workers: usize) -> PoolInfo {
        PoolInfo {
            name: name.to_string(),
            kind,
            process,
            max_workers: max_workers.max(1),
            workers: Vec::new(),
            manager: None,
            jobs: Vec::new(),
        }
    }

    /// The number of jobs queued (submitted, not yet begun) after each
    /// change, in time order: the pool row of the chart.
    pub fn queue_lengths(&self, end: Time) -> Vec<(Time, usize)> {
        let mut changes: Vec<(Time, i64)> = Vec::with_capacity(2 * self.jobs.len());
        for job in &self.jobs {
            changes.push((job.submitted, 1));
            changes.push((job.started.unwrap_or(end.max(job.submitted)), -1));
        }
        // Stable: at one instant a submit counts before the start it feeds.
        changes.sort_by_key(|&(time, _)| time);
        let mut series: Vec<(Time, usize)> = Vec::new();
        let mut length = 0i64;
        for (time, delta) in changes {
            length += delta;
            let value = length.max(0) as usize;
            match series.last_mut() {
                Some(last) if last.0 == time => last.1 = value,
                _ => series.push((time, value)),
            }
        }
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{ms, us};

    fn job(submitted: Time, started: Option<Time>) -> JobRecord {
        JobRecord {
            name: String::from("j"),
            submitted,
            started,
            ended: started,
            worker: None,
            bytes: 0,
            result_bytes: 0,
            failed: false,
        }
    }

    #[test]
    fn a_worker_starts_only_when_none_is_idle_and_there_is_room() {
        assert!(starts_worker(0, 0, 4));
        assert!(starts_worker(0, 3, 4));
        assert!(!starts_worker(1, 3, 4));
        assert!(!starts_worker(0, 4, 4));
    }

    #[test]
    fn queue_length_steps_up_at_submits_and_down_at_starts() {
        let t = |n| Time::ZERO + ms(n);
        let info = PoolInfo {
            name: String::from("p"),
            kind: PoolKind::Threads,
            process: ProcessId::MAIN,
            max_workers: 1,
            workers: Vec::new(),
            manager: None,
            jobs: vec![
                job(t(0), Some(t(0))),
                job(t(0), Some(t(10))),
                job(t(0), Some(t(20))),
                job(t(5), None),
            ],
        };
        assert_eq!(
            info.queue_lengths(t(30)),
            vec![(t(0), 2), (t(5), 3), (t(10), 2), (t(20), 1), (t(30), 0)]
        );
        assert_eq!(info.jobs[1].queue_wait(t(30)), ms(10));
        assert_eq!(info.jobs[3].queue_wait(t(30)), ms(25));
        let _ = us(1);
    }
}
