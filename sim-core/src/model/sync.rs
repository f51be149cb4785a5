//! Synchronization primitives as state: who holds what and who waits. The
//! kernel (`kernel::engine::sync`) drives them: it blocks and wakes threads,
//! asks the chooser which waiter wins, and records every acquisition.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ResourceId, ThreadId};
use crate::kernel::{WaitQueue, Waiter};
use crate::model::rwlock::{Readers, RwWaiters};
use crate::trace::ResourceKind;

/// Options of a mutex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutexOptions {
    /// true (default): unlock hands ownership to the oldest waiter (through
    /// the chooser). false: unlock frees the mutex and wakes every waiter,
    /// who race for it (barging).
    pub fair: bool,
    /// Priority inheritance: the owner runs at the highest priority of the
    /// threads waiting for it.
    pub inherit: bool,
}

impl Default for MutexOptions {
    fn default() -> Self {
        MutexOptions {
            fair: true,
            inherit: false,
        }
    }
}

/// Whom a reader-writer lock lets in first when both wait.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RwPrefer {
    /// Readers enter whenever no writer holds the lock, even with writers
    /// waiting (writers can starve).
    #[default]
    Readers,
    /// A waiting writer keeps new readers out.
    Writers,
    /// Strict arrival order; consecutive readers enter together.
    Fifo,
}

impl RwPrefer {
    /// Reads "readers", "writers" or "fifo".
    pub fn from_name(name: &str) -> Option<RwPrefer> {
        Some(match name {
            "readers" => RwPrefer::Readers,
            "writers" => RwPrefer::Writers,
            "fifo" => RwPrefer::Fifo,
            _ => return None,
        })
    }
}

/// A value in a channel, with where it came from and its size.
pub(crate) struct Message {
    pub(crate) value: Box<dyn Any>,
    /// The sender's process: a receiver in another one pays to unpickle it.
    pub(crate) from: crate::ids::ProcessId,
    /// Its size in bytes, for the IPC cost.
    pub(crate) bytes: u64,
}

/// One resource's state.
pub(crate) enum Resource {
    /// A mutex, or a reentrant lock (`threading.RLock`): its owner may
    /// take it again, and it is free once unlocked as many times.
    Mutex {
        owner: Option<ThreadId>,
        options: MutexOptions,
        waiters: WaitQueue,
        reentrant: bool,
        /// How many more times the owner of a reentrant lock took it.
        depth: u32,
    },
    Spinlock {
        owner: Option<ThreadId>,
        /// Threads spinning (on a CPU, or preempted while spinning), in
        /// arrival order, with when they started.
        spinners: WaitQueue,
    },
    Semaphore {
        permits: u64,
        waiters: WaitQueue,
        /// A bounded semaphore refuses a release past this many permits.
        bound: Option<u64>,
    },
    RwLock {
        readers: Readers,
        writer: Option<ThreadId>,
        prefer: RwPrefer,
        /// Waiters in arrival order, readers and writers apart.
        waiters: RwWaiters,
    },
    Condvar {
        /// Waiters with the mutex each must take back.
        waiters: VecDeque<(Waiter, ResourceId)>,
    },
    Barrier {
        parties: usize,
        waiting: WaitQueue,
    },
    /// C#'s `CountdownEvent`: waiters wait until `remaining` signals have
    /// come.
    Countdown {
        remaining: u64,
        waiters: WaitQueue,
    },
    /// `threading.Event`: a flag; waiters wait until it is set.
    Event {
        set: bool,
        waiters: WaitQueue,
    },
    Channel {
        capacity: usize,
        items: VecDeque<Message>,
        /// Blocked senders with the value each brings.
        senders: VecDeque<(Waiter, Message)>,
        receivers: WaitQueue,
        /// The first process whose thread used it, and whether a thread of
        /// another one has too: then it is a pipe, and messages pay IPC.
        first_user: Option<crate::ids::ProcessId>,
        crossed: bool,
    },
    /// An I/O device (see [`crate::model::io`]).
    Device(Box<crate::model::io::Device>),
    /// An epoll instance.
    Epoll(Box<crate::model::io::Epoll>),
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resource::{:?}", self.kind())
    }
}

impl Resource {
    /// What kind of resource this is.
    pub(crate) fn kind(&self) -> ResourceKind {
        match self {
            Resource::Mutex {
                reentrant: true, ..
            } => ResourceKind::RLock,
            Resource::Mutex { .. } => ResourceKind::Mutex,
            Resource::Spinlock { .. } => ResourceKind::Spinlock,
            Resource::Semaphore { .. } => ResourceKind::Semaphore,
            Resource::RwLock { .. } => ResourceKind::RwLock,
            Resource::Condvar { .. } => ResourceKind::Condvar,
            Resource::Barrier { .. } => ResourceKind::Barrier,
            Resource::Event { .. } => ResourceKind::Event,
            Resource::Countdown { .. } => ResourceKind::Countdown,
            Resource::Channel { .. } => ResourceKind::Channel,
            Resource::Device(_) => ResourceKind::Device,
            Resource::Epoll(_) => ResourceKind::Epoll,
        }
    }

    /// The threads that hold it, for the wait-for graph (resources without
    /// owners have none: a wait on them shows as a stall, not a cycle).
    pub(crate) fn holders(&self, out: &mut Vec<ThreadId>) {
        out.clear();
        match self {
            Resource::Mutex { owner, .. } | Resource::Spinlock { owner, .. } => {
                out.extend(owner.iter().copied())
            }
            Resource::RwLock {
                readers, writer, ..
            } => {
                out.extend(writer.iter().copied());
                out.extend(readers.iter());
            }
            _ => {}
        }
    }

    /// Whether a reader may enter now.
    pub(crate) fn read_admissible(&self) -> bool {
        match self {
            Resource::RwLock {
                writer,
                prefer,
                waiters,
                ..
            } => {
                writer.is_none()
                    && match prefer {
                        RwPrefer::Readers => true,
                        RwPrefer::Writers => !waiters.writer_waits(),
                        RwPrefer::Fifo => waiters.is_empty(),
                    }
            }
            _ => false,
        }
    }

    /// Grants a free reader-writer lock to waiters by its preference; returns
    /// the threads let in, with when they started waiting.
    pub(crate) fn rw_grant(&mut self) -> Vec<(Waiter, bool)> {
        let Resource::RwLock {
            readers,
            writer,
            prefer,
            waiters,
        } = self
        else {
            return Vec::new();
        };
        let mut granted = Vec::new();
        if writer.is_some() {
            return granted;
        }
        let all_readers = |waiters: &mut RwWaiters| -> Vec<(Waiter, bool)> {
            waiters.drain_readers().map(|w| (w, false)).collect()
        };
        match prefer {
            RwPrefer::Writers => {
                if waiters.writer_waits() {
                    if readers.is_empty() {
                        granted.extend(waiters.pop_writer().map(|w| (w, true)));
                    }
                } else {
                    granted = all_readers(waiters);
                }
            }
            RwPrefer::Readers => {
                if waiters.reader_waits() {
                    granted = all_readers(waiters);
                } else if readers.is_empty() {
                    granted.extend(waiters.pop_writer().map(|w| (w, true)));
                }
            }
            RwPrefer::Fifo => {
                while let Some(write) = waiters.front_writes() {
                    if write {
                        if readers.is_empty() && granted.is_empty() {
                            granted.extend(waiters.pop_front());
                        }
                        break;
                    }
                    granted.extend(waiters.pop_front());
                }
            }
        }
        for (waiter, write) in &granted {
            if *write {
                *writer = Some(waiter.thread);
            } else {
                readers.push(waiter.thread);
            }
        }
        granted
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub(crate) ResourceId);

        impl $name {
            /// The resource's id in the trace.
            pub fn id(self) -> ResourceId {
                self.0
            }
        }
    };
}

handle!(
    /// A mutex declared with [`crate::Simulation::mutex`].
    Mutex
);
handle!(
    /// A reentrant lock declared with [`crate::Simulation::rlock`].
    RLock
);
handle!(
    /// A spinlock declared with [`crate::Simulation::spinlock`].
    Spinlock
);
handle!(
    /// A semaphore declared with [`crate::Simulation::semaphore`].
    Semaphore
);
handle!(
    /// A reader-writer lock declared with [`crate::Simulation::rwlock`].
    RwLock
);
handle!(
    /// A condition variable declared with [`crate::Simulation::condvar`].
    Condvar
);
handle!(
    /// A barrier declared with [`crate::Simulation::barrier`].
    Barrier
);
handle!(
    /// An event declared with [`crate::Simulation::event`].
    Event
);
handle!(
    /// A countdown declared with [`crate::Simulation::countdown`].
    Countdown
);

/// A bounded channel of `T` declared with [`crate::Simulation::channel`].
pub struct Channel<T> {
    pub(crate) id: ResourceId,
    _values: std::marker::PhantomData<fn(T) -> T>,
}

impl<T> Channel<T> {
    pub(crate) fn new(id: ResourceId) -> Self {
        Channel {
            id,
            _values: std::marker::PhantomData,
        }
    }

    /// The resource's id in the trace.
    pub fn id(&self) -> ResourceId {
        self.id
    }

    /// What epoll waits on for a value to receive.
    pub fn readable(&self) -> crate::model::io::Pollable {
        crate::model::io::Pollable::Readable(self.id)
    }

    /// What epoll waits on for room to send.
    pub fn writable(&self) -> crate::model::io::Pollable {
        crate::model::io::Pollable::Writable(self.id)
    }
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Channel<T> {}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({})", self.id)
    }
}

/// A lock that [`crate::Ctx::lock`] takes: a mutex, a reentrant lock or a
/// spinlock.
pub trait Lock: Copy {
    /// The resource.
    fn resource(self) -> ResourceId;
}

impl Lock for Mutex {
    fn resource(self) -> ResourceId {
        self.0
    }
}

impl Lock for RLock {
    fn resource(self) -> ResourceId {
        self.0
    }
}

impl Lock for Spinlock {
    fn resource(self) -> ResourceId {
        self.0
    }
}
