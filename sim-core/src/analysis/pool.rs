//! Per thread or process pool: how many jobs it ran, how long they waited
//! in its queue, how busy its workers were, and what pickling cost a
//! process pool.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::python::pool::{PoolInfo, PoolKind};
use crate::time::Span;
use crate::trace::Trace;

/// One pool's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolReport {
    /// Its name.
    pub name: String,
    /// "thread pool" or "process pool".
    pub kind: String,
    /// Workers started, and the most it may start.
    pub workers: usize,
    /// Its maximum.
    pub max_workers: usize,
    /// Jobs submitted.
    pub jobs: usize,
    /// Jobs that ended.
    pub done: usize,
    /// Jobs whose body failed.
    pub failed: usize,
    /// Mean time a job waited in the queue (unstarted ones until the end).
    pub mean_wait: Span,
    /// The longest a job waited in the queue.
    pub max_wait: Span,
    /// The most jobs queued at once.
    pub max_queue: usize,
    /// Share of the workers' time (from the first submit to the end of the
    /// run, per started worker) spent running jobs, 0 to 1.
    pub utilisation: f64,
    /// CPU time spent pickling and unpickling jobs and results, both sides
    /// (process pools; 0 for a thread pool).
    pub ipc: Span,
}

/// Every pool of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolStats {
    /// In declaration order.
    pub pools: Vec<PoolReport>,
}

impl PoolStats {
    /// Derives each pool's figures from `trace`.
    pub fn from_trace(trace: &Trace) -> PoolStats {
        let pools = trace.pools.iter().map(|info| report(info, trace)).collect();
        PoolStats { pools }
    }
}

fn report(info: &PoolInfo, trace: &Trace) -> PoolReport {
    let end = trace.end;
    let jobs = &info.jobs;
    let waits: Vec<Span> = jobs.iter().map(|j| j.queue_wait(end)).collect();
    let total_wait: u64 = waits.iter().map(|w| w.as_nanos()).sum();
    let busy: u64 = jobs
        .iter()
        .filter_map(|j| Some(j.ended?.since(j.started?).as_nanos()))
        .sum();
    let first = jobs.first().map_or(end, |j| j.submitted);
    let capacity = end.since(first).as_nanos() as f64 * info.workers.len() as f64;
    let ipc = match info.kind {
        PoolKind::Threads => Span::ZERO,
        PoolKind::Processes { .. } => {
            let side = |bytes: u64| {
                let per_byte = trace.machine.ipc_byte_cost.as_nanos().saturating_mul(bytes);
                trace.machine.ipc_cost.as_nanos().saturating_add(per_byte)
            };
            let job_cost = |j: &crate::model::python::pool::JobRecord| {
                let mut cost = 2 * side(j.bytes);
                if j.ended.is_some() {
                    cost += 2 * side(j.result_bytes);
                }
                cost
            };
            Span(jobs.iter().map(job_cost).sum())
        }
    };
    PoolReport {
        name: info.name.clone(),
        kind: info.kind.label().to_string(),
        workers: info.workers.len(),
        max_workers: info.max_workers,
        jobs: jobs.len(),
        done: jobs.iter().filter(|j| j.ended.is_some()).count(),
        failed: jobs.iter().filter(|j| j.failed).count(),
        mean_wait: Span(total_wait.checked_div(jobs.len() as u64).unwrap_or(0)),
        max_wait: waits.iter().copied().max().unwrap_or(Span::ZERO),
        max_queue: info
            .queue_lengths(end)
            .iter()
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0),
        utilisation: if capacity > 0.0 {
            busy as f64 / capacity
        } else {
            0.0
        },
        ipc,
    }
}

impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pool in &self.pools {
            let failed = if pool.failed > 0 {
                format!(" ({} failed)", pool.failed)
            } else {
                String::new()
            };
            writeln!(
                f,
                "{} '{}': {} of {} workers, {} jobs{failed}, queue wait mean {} max {} (at most {} queued), workers busy {:.1}%{}",
                pool.kind,
                pool.name,
                pool.workers,
                pool.max_workers,
                pool.jobs,
                pool.mean_wait,
                pool.max_wait,
                pool.max_queue,
                100.0 * pool.utilisation,
                if pool.ipc.is_zero() {
                    String::new()
                } else {
                    format!(", pickling {}", pool.ipc)
                },
            )?;
        }
        Ok(())
    }
}
