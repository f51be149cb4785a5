//! Thread states, blocking reasons and per-thread options.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ProcessId, ResourceId, ThreadId};

/// Why a thread is blocked. Every primitive that can make a thread wait adds
/// its reason here, so the trace, the chart and the analyses see one vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlockReason {
    /// `sleep(d)`.
    Sleep,
    /// Waiting for another thread to finish.
    Join(ThreadId),
    /// Waiting for a mutex.
    Lock(ResourceId),
    /// Waiting for a semaphore.
    Semaphore(ResourceId),
    /// Waiting for a reader-writer lock.
    RwLock(ResourceId),
    /// Waiting on a condition variable.
    Condvar(ResourceId),
    /// Waiting at a barrier.
    Barrier(ResourceId),
    /// Waiting to send to or receive from a channel.
    Channel(ResourceId),
    /// Blocking I/O on a device.
    Io(ResourceId),
    /// Waiting for the interpreter lock of a process (or whatever that
    /// process's gate holds threads for).
    Gil(ProcessId),
    /// Waiting in epoll.
    Epoll(ResourceId),
}

/// The kind of a [`BlockReason`], without its target: what stats group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BlockKind {
    /// See [`BlockReason::Sleep`].
    Sleep,
    /// See [`BlockReason::Join`].
    Join,
    /// See [`BlockReason::Lock`].
    Lock,
    /// See [`BlockReason::Semaphore`].
    Semaphore,
    /// See [`BlockReason::RwLock`].
    RwLock,
    /// See [`BlockReason::Condvar`].
    Condvar,
    /// See [`BlockReason::Barrier`].
    Barrier,
    /// See [`BlockReason::Channel`].
    Channel,
    /// See [`BlockReason::Io`].
    Io,
    /// See [`BlockReason::Gil`].
    Gil,
    /// See [`BlockReason::Epoll`].
    Epoll,
}

impl BlockReason {
    /// The kind of this reason.
    pub fn kind(self) -> BlockKind {
        match self {
            BlockReason::Sleep => BlockKind::Sleep,
            BlockReason::Join(_) => BlockKind::Join,
            BlockReason::Lock(_) => BlockKind::Lock,
            BlockReason::Semaphore(_) => BlockKind::Semaphore,
            BlockReason::RwLock(_) => BlockKind::RwLock,
            BlockReason::Condvar(_) => BlockKind::Condvar,
            BlockReason::Barrier(_) => BlockKind::Barrier,
            BlockReason::Channel(_) => BlockKind::Channel,
            BlockReason::Io(_) => BlockKind::Io,
            BlockReason::Gil(_) => BlockKind::Gil,
            BlockReason::Epoll(_) => BlockKind::Epoll,
        }
    }
}

impl BlockKind {
    /// Lower-case name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Sleep => "sleep",
            BlockKind::Join => "join",
            BlockKind::Lock => "lock",
            BlockKind::Semaphore => "semaphore",
            BlockKind::RwLock => "rwlock",
            BlockKind::Condvar => "condvar",
            BlockKind::Barrier => "barrier",
            BlockKind::Channel => "channel",
            BlockKind::Io => "io",
            BlockKind::Gil => "gil",
            BlockKind::Epoll => "epoll",
        }
    }
}

impl fmt::Display for BlockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The state of a thread; each is drawn in its own colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ThreadState {
    /// Waiting for a CPU.
    Ready,
    /// On a CPU that is paying the context-switch cost to run it.
    Switch,
    /// Running on a CPU.
    Running,
    /// On a CPU, busy-waiting for a resource.
    Spin(ResourceId),
    /// Off the CPUs, waiting.
    Blocked(BlockReason),
    /// Finished.
    Done,
}

impl ThreadState {
    /// Whether a thread in this state occupies a CPU.
    pub fn on_cpu(self) -> bool {
        matches!(
            self,
            ThreadState::Switch | ThreadState::Running | ThreadState::Spin(_)
        )
    }

    /// Lower-case name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            ThreadState::Ready => "ready",
            ThreadState::Switch => "switch",
            ThreadState::Running => "running",
            ThreadState::Spin(_) => "spin",
            ThreadState::Blocked(reason) => reason.kind().name(),
            ThreadState::Done => "done",
        }
    }
}

/// Options of a new thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadOptions {
    /// Scheduling priority for "priority": higher runs first. Default 0.
    pub priority: i32,
    /// Nice value for "fair", -20 (most CPU) to 19 (least). Default 0.
    pub nice: i32,
}
