//! What the trace keeps of synchronization: the resources a run declared,
//! every acquisition and release, and the deadlock, if one formed.

use serde::{Deserialize, Serialize};

use crate::ids::{OriginId, ResourceId, ThreadId};
use crate::time::{Span, Time};

/// The kind of a synchronization resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    /// A mutex: one owner; waiters sleep.
    Mutex,
    /// A reentrant lock: a mutex its owner may take again.
    RLock,
    /// A spinlock: one owner; waiters keep their CPU, spinning.
    Spinlock,
    /// A counting semaphore.
    Semaphore,
    /// A reader-writer lock.
    RwLock,
    /// A condition variable.
    Condvar,
    /// A barrier.
    Barrier,
    /// An event (`threading.Event`): a flag threads wait for.
    Event,
    /// A countdown (C#'s `CountdownEvent`): opens after so many signals.
    Countdown,
    /// A bounded channel.
    Channel,
    /// An I/O device (see [`crate::model::io`]).
    Device,
    /// An epoll instance.
    Epoll,
}

impl ResourceKind {
    /// Its name in reports: "mutex", "semaphore", ….
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Mutex => "mutex",
            ResourceKind::RLock => "rlock",
            ResourceKind::Spinlock => "spinlock",
            ResourceKind::Semaphore => "semaphore",
            ResourceKind::RwLock => "rwlock",
            ResourceKind::Condvar => "condvar",
            ResourceKind::Barrier => "barrier",
            ResourceKind::Event => "event",
            ResourceKind::Countdown => "countdown",
            ResourceKind::Channel => "channel",
            ResourceKind::Device => "device",
            ResourceKind::Epoll => "epoll",
        }
    }

    /// Whether it synchronizes threads (a lock, semaphore, condition
    /// variable, barrier or channel) rather than an I/O device or epoll.
    pub fn is_sync(self) -> bool {
        !matches!(self, ResourceKind::Device | ResourceKind::Epoll)
    }
}

/// What the trace keeps of a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceInfo {
    /// Its name, as declared.
    pub name: String,
    /// What it is.
    pub kind: ResourceKind,
    /// Plumbing of the simulator itself (an event loop's executor
    /// channels): not reported.
    #[serde(default)]
    pub internal: bool,
}

/// Something a thread did to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncAction {
    /// It took the resource (a lock, a read or write lock, a semaphore
    /// permit) after waiting `waited` (zero when it was free).
    Acquired {
        /// How long it waited for it.
        waited: Span,
        /// True for a shared (read) hold of a reader-writer lock.
        shared: bool,
    },
    /// It gave the resource back (unlock, read/write unlock, release).
    Released,
    /// It sent a value into a channel.
    Sent,
    /// It received a value from a channel.
    Received,
    /// It notified a condition variable; `woke` threads were waiting.
    Notified {
        /// How many waiters it woke (0: the notification was lost).
        woke: u32,
    },
}

/// One synchronization event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEvent {
    /// When.
    pub time: Time,
    /// Who.
    pub thread: ThreadId,
    /// On what.
    pub resource: ResourceId,
    /// What happened.
    pub action: SyncAction,
}

/// What a thread on a wait-for cycle waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitTarget {
    /// A resource held by the next thread on the cycle.
    Resource(ResourceId),
    /// The end of the next thread on the cycle (a join).
    Thread(ThreadId),
}

/// One step of a deadlock cycle: `thread` waits for `target`, which the next
/// step's thread holds (or is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitStep {
    /// The waiting thread.
    pub thread: ThreadId,
    /// What it waits for.
    pub target: WaitTarget,
    /// Where it blocked, if recorded.
    pub origin: Option<OriginId>,
}

/// A cycle of threads each waiting for the next: none of them can ever run
/// again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlock {
    /// When the cycle closed (the last thread blocked).
    pub time: Time,
    /// The cycle, starting with the thread that closed it.
    pub cycle: Vec<WaitStep>,
}
