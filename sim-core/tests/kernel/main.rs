//! Kernel tests: hand-computed scenarios, errors, gates, traces, properties.
//! One test binary, one file per topic.

mod errors;
mod event_loop;
mod gate;
mod gil;
mod io;
mod jitter;
mod pool;
mod properties;
mod races;
mod scheduling;
mod stackless;
mod sync;
mod threading;
mod threads;
mod trace;

use sim_core::{Machine, SchedulerKind, Stats};

/// A textbook machine (no switch or spawn costs) with `cpus` cores.
pub fn textbook(cpus: u16, scheduler: SchedulerKind) -> Machine {
    Machine {
        cpus,
        scheduler,
        ..Machine::textbook()
    }
}

/// The end time of a thread in nanoseconds.
pub fn end_ns(stats: &Stats, name: &str) -> u64 {
    stats
        .thread(name)
        .unwrap_or_else(|| panic!("no thread {name}"))
        .end
        .expect("finished")
        .as_nanos()
}
