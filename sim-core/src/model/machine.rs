//! The simulated machine: cores, scheduler, costs and limits.

use serde::{Deserialize, Serialize};

use crate::time::{ms, secs, us, Span, Time};

/// Which CPU scheduler the machine runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchedulerKind {
    /// First come, first served: a thread runs until it blocks or yields.
    Fifo,
    /// Round robin: a thread runs for at most one quantum while others wait.
    #[default]
    RoundRobin,
    /// Strict priority, preemptive, round robin within a level. Higher numbers
    /// are more important.
    Priority,
    /// CFS-like: CPU shares in proportion to weights derived from nice values.
    Fair,
}

impl SchedulerKind {
    /// The name scripts use: "fifo", "rr", "priority", "fair".
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Fifo => "fifo",
            SchedulerKind::RoundRobin => "rr",
            SchedulerKind::Priority => "priority",
            SchedulerKind::Fair => "fair",
        }
    }

    /// Reads a scheduler name as scripts write it.
    pub fn from_name(name: &str) -> Option<SchedulerKind> {
        Some(match name {
            "fifo" => SchedulerKind::Fifo,
            "rr" | "round_robin" => SchedulerKind::RoundRobin,
            "priority" => SchedulerKind::Priority,
            "fair" | "cfs" => SchedulerKind::Fair,
            _ => return None,
        })
    }
}

/// Everything that describes the simulated machine. `Machine::default()` holds
/// the measured Linux x86 defaults of the specification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Number of cores.
    pub cpus: u16,
    /// The CPU scheduler.
    pub scheduler: SchedulerKind,
    /// Time slice of "rr" and "priority".
    pub quantum: Span,
    /// CPU time to switch to another thread of the same process.
    pub context_switch: Span,
    /// CPU time to switch to a thread of another process.
    pub process_switch: Span,
    /// CPU time the parent pays to start a thread.
    pub thread_spawn: Span,
    /// "fair" only: target latency; `None` is 6ms × (1 + log2(min(cpus, 8))).
    pub slice: Option<Span>,
    /// "fair" only: minimum slice and wake-up granularity; `None` is
    /// 0.75ms × (1 + log2(min(cpus, 8))).
    pub granularity: Option<Span>,
    /// Seed of the chooser when it is random.
    pub seed: u64,
    /// The run stops with an error when simulated time would pass this.
    pub max_time: Time,
    /// The run stops with an error after this many simulated operations
    /// (compute, sleep, yield_now, …: what the threads call), or after 64
    /// times as many internal events.
    pub max_events: u64,
    /// The run stops with an error when the clock has not advanced for this
    /// many operations (a zero-time livelock: threads that only yield, poll
    /// or touch memory).
    #[serde(default = "default_max_steps_at_instant")]
    pub max_steps_at_instant: u64,
    /// Most threads alive at once: a start past it fails at its line.
    #[serde(default = "default_max_threads")]
    pub max_threads: u64,
    /// A thread that waits longer than this for a CPU or a resource is
    /// flagged as starved; `None` is 100 quanta.
    pub starvation: Option<Span>,
    /// Usable bytes of each thread's coroutine stack (only touched pages cost
    /// memory).
    pub stack_size: usize,
    /// Bytes of memory: a process or thread start past it fails.
    #[serde(default = "default_memory")]
    pub memory: u64,
    /// Bytes a process holds (with its first thread): an idle CPython's RSS.
    #[serde(default = "default_process_memory")]
    pub process_memory: u64,
    /// Bytes each further thread of a process holds.
    #[serde(default = "default_thread_memory")]
    pub thread_memory: u64,
    /// Bytes each asyncio task holds (its coroutine frame, the Task and
    /// its future, and what it awaits): 1,413 for CPython 3.11.
    #[serde(default = "default_task_memory")]
    pub task_memory: u64,
    /// CPU time a message between processes costs its sender (pickling and
    /// a pipe write) and its receiver (the read and unpickling), plus
    /// `ipc_byte_cost` per byte of the message.
    #[serde(default = "default_ipc_cost")]
    pub ipc_cost: Span,
    /// CPU time per byte of a message between processes, on each side.
    #[serde(default = "default_ipc_byte_cost")]
    pub ipc_byte_cost: Span,
    /// CPU time a pool's Python bookkeeping costs per job, on each side:
    /// the submitter's `submit()` (the future, the work item, the queue)
    /// and the worker's (or a process pool manager's) taking the job and
    /// setting its result.
    #[serde(default = "default_job_cost")]
    pub job_cost: Span,
}

fn default_job_cost() -> Span {
    us(5)
}

fn default_max_steps_at_instant() -> u64 {
    1_000_000
}

fn default_max_threads() -> u64 {
    1_000_000
}

fn default_ipc_cost() -> Span {
    us(5)
}

fn default_ipc_byte_cost() -> Span {
    Span(1)
}

fn default_task_memory() -> u64 {
    crate::model::footprint::TASK_MEMORY
}

fn default_memory() -> u64 {
    crate::model::footprint::MACHINE_MEMORY
}

fn default_process_memory() -> u64 {
    crate::model::footprint::PROCESS_MEMORY
}

fn default_thread_memory() -> u64 {
    crate::model::footprint::THREAD_MEMORY
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            cpus: 1,
            scheduler: SchedulerKind::RoundRobin,
            quantum: ms(10),
            context_switch: us(2),
            process_switch: us(3),
            thread_spawn: us(30),
            slice: None,
            granularity: None,
            seed: 0,
            max_time: Time(secs(3600).as_nanos()),
            max_events: 100_000_000,
            max_steps_at_instant: default_max_steps_at_instant(),
            max_threads: default_max_threads(),
            starvation: None,
            stack_size: 256 * 1024,
            memory: default_memory(),
            process_memory: default_process_memory(),
            thread_memory: default_thread_memory(),
            task_memory: default_task_memory(),
            ipc_cost: default_ipc_cost(),
            ipc_byte_cost: default_ipc_byte_cost(),
            job_cost: default_job_cost(),
        }
    }
}

/// A machine description that cannot be simulated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid machine: {0}")]
pub struct MachineError(pub String);

impl Machine {
    /// Linux-like: the default costs with the CFS-like "fair" scheduler.
    pub fn linux() -> Machine {
        Machine {
            scheduler: SchedulerKind::Fair,
            ..Machine::default()
        }
    }

    /// Textbook round robin: 10ms quantum and no switch or spawn costs, so
    /// timings can be computed by hand.
    pub fn textbook() -> Machine {
        Machine {
            context_switch: Span::ZERO,
            process_switch: Span::ZERO,
            thread_spawn: Span::ZERO,
            ipc_cost: Span::ZERO,
            ipc_byte_cost: Span::ZERO,
            job_cost: Span::ZERO,
            ..Machine::default()
        }
    }

    /// A preset by name: "linux", "textbook" or "default".
    pub fn preset(name: &str) -> Option<Machine> {
        match name {
            "linux" => Some(Machine::linux()),
            "textbook" => Some(Machine::textbook()),
            "default" => Some(Machine::default()),
            _ => None,
        }
    }

    /// The CFS scale factor 1 + log2(min(cpus, 8)).
    fn cfs_factor(&self) -> u64 {
        1 + u64::from(self.cpus.clamp(1, 8)).ilog2() as u64
    }

    /// "fair": the target latency in force.
    pub fn fair_latency(&self) -> Span {
        self.slice
            .unwrap_or(Span(ms(6).as_nanos() * self.cfs_factor()))
    }

    /// "fair": the minimum slice in force.
    pub fn fair_granularity(&self) -> Span {
        self.granularity
            .unwrap_or(Span(us(750).as_nanos() * self.cfs_factor()))
    }

    /// The starvation threshold in force: `starvation`, or 100 quanta.
    pub fn starvation_threshold(&self) -> Span {
        self.starvation
            .unwrap_or(Span(self.quantum.as_nanos().saturating_mul(100)))
    }

    /// Checks that the machine can be simulated.
    pub fn validate(&self) -> Result<(), MachineError> {
        let fail = |msg: &str| Err(MachineError(msg.to_string()));
        if self.cpus == 0 {
            return fail("cpus must be at least 1");
        }
        if self.cpus > 1024 {
            return fail("cpus must be at most 1024");
        }
        if self.quantum.is_zero()
            && matches!(
                self.scheduler,
                SchedulerKind::RoundRobin | SchedulerKind::Priority
            )
        {
            return fail("quantum must be longer than zero");
        }
        if self.scheduler == SchedulerKind::Fair
            && (self.fair_latency().is_zero() || self.fair_granularity().is_zero())
        {
            return fail("slice and granularity must be longer than zero");
        }
        if self.stack_size < crate::kernel::MIN_STACK {
            return fail(&format!(
                "stack_size must be at least {} bytes",
                crate::kernel::MIN_STACK
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfs_defaults_scale_with_cpus() {
        let m = |cpus| Machine {
            cpus,
            ..Machine::linux()
        };
        assert_eq!(m(1).fair_latency(), ms(6));
        assert_eq!(m(2).fair_latency(), ms(12));
        assert_eq!(m(4).fair_latency(), ms(18));
        assert_eq!(m(64).fair_latency(), ms(24));
        assert_eq!(m(4).fair_granularity(), us(2250));
    }

    #[test]
    fn validation_names_the_problem() {
        let err = Machine {
            cpus: 0,
            ..Machine::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("cpus"));
        assert!(Machine::textbook().validate().is_ok());
    }
}
