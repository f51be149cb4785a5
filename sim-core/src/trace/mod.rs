//! The trace: the one record of what happened in a run.
//!
//! Every change of a thread's state is recorded once, in time order, as a
//! [`StateChange`]. Everything else (per-thread and per-CPU intervals, stats,
//! charts) is derived from it. A trace serializes to RON and reads back equal.

mod intervals;
mod io;
mod log;
mod race;
mod sync;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{CpuId, OriginId, ProcessId, ThreadId};
use crate::model::machine::Machine;
use crate::model::memory::Variable;
use crate::model::process::ProcessInfo;
use crate::model::thread::ThreadState;
use crate::time::Time;

pub use intervals::{CpuInterval, Interval};
pub use io::{DeviceInfo, IoRecord};
pub use log::{Iter as StateIter, StateLog};
pub use race::{AccessKind, Race, RaceAccess};
pub use sync::{Deadlock, ResourceInfo, ResourceKind, SyncAction, SyncEvent, WaitStep, WaitTarget};

/// A place in the source that made an operation: a script position or a line
/// of Rust code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The script or Rust source file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A thread entered a state.
///
/// Packed in 24 bytes, and stored in a [`StateLog`] in a few; read it
/// through its accessors. It serializes as its five fields.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StateChangeFields", into = "StateChangeFields")]
pub struct StateChange {
    time: Time,
    thread: ThreadId,
    /// The origin's id plus one; 0 for none.
    origin: u32,
    /// The id the state carries (see [`ThreadState::pack`]).
    payload: u32,
    /// The CPU's index; `u16::MAX` for none (a machine has fewer CPUs).
    cpu: u16,
    /// The state's kind (see [`ThreadState::pack`]).
    kind: u8,
}

impl StateChange {
    /// `thread` entered `state` at `time`, on `cpu`, because of `origin`.
    #[inline]
    pub fn new(
        time: Time,
        thread: ThreadId,
        state: ThreadState,
        cpu: Option<CpuId>,
        origin: Option<OriginId>,
    ) -> Self {
        let (kind, payload) = state.pack();
        StateChange {
            time,
            thread,
            origin: origin.map_or(0, |o| o.0 + 1),
            payload,
            cpu: cpu.map_or(u16::MAX, |c| c.0),
            kind,
        }
    }

    /// When.
    #[inline]
    pub fn time(&self) -> Time {
        self.time
    }

    /// Which thread.
    #[inline]
    pub fn thread(&self) -> ThreadId {
        self.thread
    }

    /// The state it entered.
    #[inline]
    pub fn state(&self) -> ThreadState {
        ThreadState::unpack(self.kind, self.payload)
    }

    /// The CPU, for states on a CPU.
    #[inline]
    pub fn cpu(&self) -> Option<CpuId> {
        (self.cpu != u16::MAX).then_some(CpuId(self.cpu))
    }

    /// The operation that caused it, where one did (blocking operations).
    #[inline]
    pub fn origin(&self) -> Option<OriginId> {
        self.origin.checked_sub(1).map(OriginId)
    }
}

/// How a [`StateChange`] reads and prints: its fields, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StateChangeFields {
    time: Time,
    thread: ThreadId,
    state: ThreadState,
    cpu: Option<CpuId>,
    origin: Option<OriginId>,
}

impl From<StateChangeFields> for StateChange {
    fn from(f: StateChangeFields) -> Self {
        StateChange::new(f.time, f.thread, f.state, f.cpu, f.origin)
    }
}

impl From<StateChange> for StateChangeFields {
    fn from(c: StateChange) -> Self {
        StateChangeFields {
            time: c.time(),
            thread: c.thread(),
            state: c.state(),
            cpu: c.cpu(),
            origin: c.origin(),
        }
    }
}

impl fmt::Debug for StateChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = StateChangeFields::from(*self);
        f.debug_struct("StateChange")
            .field("time", &fields.time)
            .field("thread", &fields.thread)
            .field("state", &fields.state)
            .field("cpu", &fields.cpu)
            .field("origin", &fields.origin)
            .finish()
    }
}

/// What the trace keeps of a thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// Its name.
    pub name: String,
    /// Its process.
    pub process: ProcessId,
    /// The thread that started it, if any.
    pub parent: Option<ThreadId>,
    /// When it became ready for the first time.
    pub created: Time,
    /// Its scheduling priority.
    pub priority: i32,
    /// Its nice value.
    pub nice: i32,
    /// For an asyncio task's row: the thread of the loop that runs it.
    #[serde(default)]
    pub task_of: Option<ThreadId>,
}

/// Memory in use from a time on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySample {
    /// When it changed.
    pub time: Time,
    /// Bytes in use from then.
    pub used: u64,
}

/// A line a thread printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When.
    pub time: Time,
    /// Who.
    pub thread: ThreadId,
    /// What.
    pub text: String,
}

/// Everything a run recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The machine that ran.
    pub machine: Machine,
    /// Processes, indexed by [`ProcessId`].
    pub processes: Vec<ProcessInfo>,
    /// Threads, indexed by [`ThreadId`].
    pub threads: Vec<ThreadInfo>,
    /// Every state change, in time order.
    pub states: StateLog,
    /// Printed lines, in time order.
    pub logs: Vec<LogLine>,
    /// Source positions, indexed by [`OriginId`].
    pub origins: Vec<Origin>,
    /// Variables with their final values.
    pub variables: Vec<Variable>,
    /// Synchronization resources, indexed by [`crate::ResourceId`].
    pub resources: Vec<ResourceInfo>,
    /// Every acquisition, release, send, receive and notification, in time
    /// order.
    pub sync: Vec<SyncEvent>,
    /// Every change of holder of a process's interpreter lock, and every
    /// drop request, in time order.
    #[serde(default)]
    pub gil: Vec<crate::model::python::gil::GilEvent>,
    /// Memory in use after each change (a process or thread started or
    /// ended), in time order; see [`crate::model::footprint`].
    #[serde(default)]
    pub memory: Vec<MemorySample>,
    /// The most memory in use at once, and per process (by process id).
    #[serde(default)]
    pub peak_memory: u64,
    /// The most memory each process held at once, by process id.
    #[serde(default)]
    pub process_peaks: Vec<u64>,
    /// Devices, in declaration order.
    #[serde(default)]
    pub devices: Vec<DeviceInfo>,
    /// Every I/O request, in submission order (indexed by
    /// [`crate::model::io::IoId`]).
    #[serde(default)]
    pub io: Vec<IoRecord>,
    /// Event loops, in declaration order: their tasks and figures.
    #[serde(default)]
    pub loops: Vec<crate::kernel::LoopInfo>,
    /// Thread and process pools, in declaration order: their workers and
    /// jobs.
    #[serde(default)]
    pub pools: Vec<crate::model::python::pool::PoolInfo>,
    /// The deadlock that formed, if one did.
    pub deadlock: Option<Deadlock>,
    /// Data races found, in the order they were found; one per pair of
    /// source positions.
    pub races: Vec<Race>,
    /// When the run ended (the last event, or the limit it hit).
    pub end: Time,
}

impl Trace {
    /// An empty trace of `machine`.
    pub(crate) fn new(machine: Machine) -> Trace {
        Trace {
            machine,
            processes: Vec::new(),
            threads: Vec::new(),
            states: StateLog::new(),
            logs: Vec::new(),
            origins: Vec::new(),
            variables: Vec::new(),
            resources: Vec::new(),
            sync: Vec::new(),
            gil: Vec::new(),
            memory: Vec::new(),
            peak_memory: 0,
            process_peaks: Vec::new(),
            devices: Vec::new(),
            io: Vec::new(),
            loops: Vec::new(),
            pools: Vec::new(),
            deadlock: None,
            races: Vec::new(),
            end: Time::ZERO,
        }
    }

    /// The trace as RON text.
    pub fn to_ron(&self) -> Result<String, ron::Error> {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::new().compact_arrays(true))
    }

    /// Reads a trace written by [`Trace::to_ron`].
    pub fn from_ron(text: &str) -> Result<Trace, ron::error::SpannedError> {
        ron::from_str(text)
    }

    /// The thread with this name, if any.
    pub fn thread_named(&self, name: &str) -> Option<ThreadId> {
        self.threads
            .iter()
            .position(|t| t.name == name)
            .map(|i| ThreadId(i as u32))
    }

    /// The name of a resource, or "?" for an unknown id.
    pub fn resource_name(&self, id: crate::ids::ResourceId) -> &str {
        self.resources
            .get(id.index())
            .map_or("?", |r| r.name.as_str())
    }

    /// The source position with this id.
    pub fn origin(&self, id: OriginId) -> Option<&Origin> {
        self.origins.get(id.index())
    }

    /// " (file:line:col)" for a recorded origin, "" for none: how reports
    /// point at the source.
    pub fn at(&self, origin: Option<OriginId>) -> String {
        origin
            .and_then(|o| self.origin(o))
            .map(|o| format!(" ({o})"))
            .unwrap_or_default()
    }

    /// When the last thread finished, or the end of the run if some never did.
    /// A thread is done once, so the log's count of done changes tells
    /// whether every thread is, with no pass over the log.
    pub fn makespan(&self) -> Time {
        let (done, last) = self.states.done();
        let makespan = if done >= self.threads.len() {
            last
        } else {
            self.end
        };
        debug_assert_eq!(makespan, self.makespan_by_scan(), "a thread done twice?");
        makespan
    }

    /// [`Trace::makespan`] the long way, a pass over every change: what
    /// debug builds check the count against.
    fn makespan_by_scan(&self) -> Time {
        let mut done = vec![false; self.threads.len()];
        let mut last = Time::ZERO;
        for change in &self.states {
            if change.state() == ThreadState::Done {
                done[change.thread().index()] = true;
                last = last.max(change.time());
            }
        }
        if done.iter().all(|&d| d) {
            last
        } else {
            self.end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::thread::BlockReason;

    #[test]
    fn a_state_change_is_24_bytes_and_reads_back_what_it_was_given() {
        assert_eq!(std::mem::size_of::<StateChange>(), 24);
        let blocked = ThreadState::Blocked(BlockReason::Join(ThreadId(4)));
        let cases = [
            (ThreadState::Running, Some(CpuId(3)), None),
            (blocked, None, Some(OriginId(0))),
            (ThreadState::Ready, None, Some(OriginId(u32::MAX - 1))),
        ];
        for (state, cpu, origin) in cases {
            let change = StateChange::new(Time(99), ThreadId(7), state, cpu, origin);
            assert_eq!(
                (change.time(), change.thread(), change.state()),
                (Time(99), ThreadId(7), state)
            );
            assert_eq!((change.cpu(), change.origin()), (cpu, origin));
            // It serializes as its five fields, and reads back equal.
            let text = ron::to_string(&change).unwrap();
            assert!(text.contains("state:") && text.contains("cpu:"), "{text}");
            assert_eq!(ron::from_str::<StateChange>(&text).unwrap(), change);
        }
    }
}
