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
    /// Waiting for an event to be set.
    Event(ResourceId),
    /// Waiting for a countdown to reach zero.
    Countdown(ResourceId),
    /// Waiting for a pool job's result (`future.result()`): drawn and
    /// counted as a join.
    Future(ResourceId),
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
    /// See [`BlockReason::Event`].
    Event,
    /// See [`BlockReason::Countdown`].
    Countdown,
}

impl BlockReason {
    /// The synchronization object the thread waits on (a lock, semaphore,
    /// rwlock, condvar, barrier, channel, event or countdown): another
    /// thread's release, send or notify lets it go on. `None` for a sleep,
    /// a join, I/O, epoll, the GIL and a pool job's future.
    pub fn sync_resource(self) -> Option<ResourceId> {
        match self {
            BlockReason::Lock(r)
            | BlockReason::Semaphore(r)
            | BlockReason::RwLock(r)
            | BlockReason::Condvar(r)
            | BlockReason::Barrier(r)
            | BlockReason::Channel(r)
            | BlockReason::Event(r)
            | BlockReason::Countdown(r) => Some(r),
            BlockReason::Sleep
            | BlockReason::Join(_)
            | BlockReason::Io(_)
            | BlockReason::Gil(_)
            | BlockReason::Epoll(_)
            | BlockReason::Future(_) => None,
        }
    }

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
            BlockReason::Event(_) => BlockKind::Event,
            BlockReason::Countdown(_) => BlockKind::Countdown,
            BlockReason::Future(_) => BlockKind::Join,
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
            BlockKind::Event => "event",
            BlockKind::Countdown => "countdown",
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
    /// On a CPU, starting a new process (fork or exec, the interpreter's
    /// start-up) before its first thread's body runs.
    Spawn,
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
            ThreadState::Switch | ThreadState::Running | ThreadState::Spin(_) | ThreadState::Spawn
        )
    }

    /// Lower-case name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            ThreadState::Ready => "ready",
            ThreadState::Switch => "switch",
            ThreadState::Running => "running",
            ThreadState::Spin(_) => "spin",
            ThreadState::Spawn => "spawn",
            ThreadState::Blocked(reason) => reason.kind().name(),
            ThreadState::Done => "done",
        }
    }
}

/// [`ThreadState::pack`] kinds of the states without a [`BlockReason`].
const READY: u8 = 0;
const SWITCH: u8 = 1;
const RUNNING: u8 = 2;
const SPIN: u8 = 3;
const DONE: u8 = 4;
const SPAWN: u8 = 5;
/// Blocked states are this plus the reason's place in [`BlockReason`].
const BLOCKED: u8 = 16;

/// Whether a [`ThreadState::pack`] kind is [`ThreadState::Done`].
#[inline(always)]
pub(crate) fn kind_is_done(kind: u8) -> bool {
    kind == DONE
}

/// Whether the states of a [`ThreadState::pack`] kind carry an id in their
/// payload (a spin's lock, a blocked thread's resource).
pub(crate) fn kind_carries_id(kind: u8) -> bool {
    kind == SPIN || kind > BLOCKED
}

impl ThreadState {
    /// The state as a kind and a payload (the id it carries, else 0), for
    /// compact storage in the trace; [`ThreadState::unpack`] reverses it.
    #[inline]
    pub(crate) fn pack(self) -> (u8, u32) {
        use BlockReason as B;
        match self {
            ThreadState::Ready => (READY, 0),
            ThreadState::Switch => (SWITCH, 0),
            ThreadState::Running => (RUNNING, 0),
            ThreadState::Spin(r) => (SPIN, r.0),
            ThreadState::Done => (DONE, 0),
            ThreadState::Spawn => (SPAWN, 0),
            ThreadState::Blocked(reason) => match reason {
                B::Sleep => (BLOCKED, 0),
                B::Join(t) => (BLOCKED + 1, t.0),
                B::Lock(r) => (BLOCKED + 2, r.0),
                B::Semaphore(r) => (BLOCKED + 3, r.0),
                B::RwLock(r) => (BLOCKED + 4, r.0),
                B::Condvar(r) => (BLOCKED + 5, r.0),
                B::Barrier(r) => (BLOCKED + 6, r.0),
                B::Channel(r) => (BLOCKED + 7, r.0),
                B::Io(r) => (BLOCKED + 8, r.0),
                B::Gil(p) => (BLOCKED + 9, p.0),
                B::Epoll(r) => (BLOCKED + 10, r.0),
                B::Event(r) => (BLOCKED + 11, r.0),
                B::Countdown(r) => (BLOCKED + 12, r.0),
                B::Future(r) => (BLOCKED + 13, r.0),
            },
        }
    }

    /// The state [`ThreadState::pack`] gave `(kind, payload)` for.
    pub(crate) fn unpack(kind: u8, payload: u32) -> ThreadState {
        use BlockReason as B;
        let r = ResourceId(payload);
        let reason = match kind {
            READY => return ThreadState::Ready,
            SWITCH => return ThreadState::Switch,
            RUNNING => return ThreadState::Running,
            SPIN => return ThreadState::Spin(r),
            DONE => return ThreadState::Done,
            SPAWN => return ThreadState::Spawn,
            BLOCKED => B::Sleep,
            k if k == BLOCKED + 1 => B::Join(ThreadId(payload)),
            k if k == BLOCKED + 2 => B::Lock(r),
            k if k == BLOCKED + 3 => B::Semaphore(r),
            k if k == BLOCKED + 4 => B::RwLock(r),
            k if k == BLOCKED + 5 => B::Condvar(r),
            k if k == BLOCKED + 6 => B::Barrier(r),
            k if k == BLOCKED + 7 => B::Channel(r),
            k if k == BLOCKED + 8 => B::Io(r),
            k if k == BLOCKED + 9 => B::Gil(ProcessId(payload)),
            k if k == BLOCKED + 10 => B::Epoll(r),
            k if k == BLOCKED + 11 => B::Event(r),
            k if k == BLOCKED + 12 => B::Countdown(r),
            k if k == BLOCKED + 13 => B::Future(r),
            _ => unreachable!("no thread state packs to kind {kind}"),
        };
        ThreadState::Blocked(reason)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_packs_and_unpacks_to_itself() {
        let r = ResourceId(7);
        let reasons = [
            BlockReason::Sleep,
            BlockReason::Join(ThreadId(9)),
            BlockReason::Lock(r),
            BlockReason::Semaphore(r),
            BlockReason::RwLock(r),
            BlockReason::Condvar(r),
            BlockReason::Barrier(r),
            BlockReason::Channel(r),
            BlockReason::Io(r),
            BlockReason::Gil(ProcessId(3)),
            BlockReason::Epoll(r),
            BlockReason::Event(r),
            BlockReason::Countdown(r),
            BlockReason::Future(r),
        ];
        let states = [
            ThreadState::Ready,
            ThreadState::Switch,
            ThreadState::Running,
            ThreadState::Spin(r),
            ThreadState::Done,
            ThreadState::Spawn,
        ]
        .into_iter()
        .chain(reasons.map(ThreadState::Blocked));
        let mut kinds = std::collections::BTreeSet::new();
        for state in states {
            let (kind, payload) = state.pack();
            assert!(kinds.insert(kind), "{state:?} shares kind {kind}");
            assert_eq!(ThreadState::unpack(kind, payload), state);
        }
    }
}
