//! What a run means, derived from its trace:
//!
//! - [`stats`]: makespan, where each thread's time went, CPU utilisation;
//! - [`starvation`]: each thread's longest wait for a CPU and for each
//!   resource, threads over the starvation threshold or that never ran, and
//!   the fairness of CPU shares (Jain's index);
//! - [`locks`]: per synchronization resource, acquisitions, contention, wait
//!   and hold times, channel traffic and lost notifications;
//! - [`deadlock`]: words for the deadlock cycle the kernel found (with
//!   petgraph, when it closed) and for what stalled threads wait on.
//!
//! Race analysis will sit beside them.

pub mod deadlock;
pub mod locks;
pub mod starvation;
pub mod stats;

#[cfg(test)]
mod testing;
