//! What a run means, derived from its trace:
//!
//! - [`stats`]: makespan, where each thread's time went, CPU utilisation;
//! - [`starvation`]: each thread's longest wait for a CPU and for each
//!   resource, threads over the starvation threshold or that never ran, and
//!   the fairness of CPU shares (Jain's index);
//! - [`locks`]: per synchronization resource, acquisitions, contention, wait
//!   and hold times, channel traffic and lost notifications;
//! - [`gil`]: per process with a GIL, hand-offs, forced switches, the
//!   share of time it was held, each thread's waits for it;
//! - [`event_loop`]: per asyncio loop, iterations, task switches, the
//!   tasks that held it, and each task's time;
//! - [`pool`]: per thread or process pool, jobs, queue waits, worker
//!   utilisation and pickling time;
//! - [`io`]: per device, requests, bytes, channel utilisation, queue waits
//!   and service times;
//! - [`deadlock`]: words for the deadlock cycle the kernel found (with
//!   petgraph, when it closed) and for what stalled threads wait on.
//!
//! - [`race`]: happens-before with vector clocks, fed by the kernel, to
//!   find data races on shared variables.

pub mod deadlock;
pub mod event_loop;
pub mod gil;
pub mod io;
pub mod locks;
pub mod pool;
pub mod race;
pub mod starvation;
pub mod stats;

#[cfg(test)]
mod testing;
