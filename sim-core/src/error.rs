//! Errors that end a run. Each keeps the run's partial trace: the run returns
//! its [`crate::Run`] with the error as its outcome, never by panicking.

use std::fmt;

use crate::kernel::ChooserError;
use crate::time::Time;
use crate::trace::Origin;

/// Why a run stopped before every thread finished. No variant lets the run go
/// on: the trace ends where the error occurred.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A thread body panicked.
    #[error("thread '{thread}' panicked at {time}: {message}")]
    Panicked {
        /// The thread's name.
        thread: String,
        /// When.
        time: Time,
        /// The panic message.
        message: String,
    },
    /// A thread body returned an error (e.g. a script error).
    #[error("thread '{thread}' failed at {time}{}: {message}", at(origin))]
    Failed {
        /// The thread's name.
        thread: String,
        /// When.
        time: Time,
        /// What went wrong.
        message: String,
        /// Where, if known.
        origin: Option<Origin>,
    },
    /// A thread used an operation wrongly.
    #[error("thread '{thread}' at {time}{}: {misuse}", at(origin))]
    Misuse {
        /// The thread's name.
        thread: String,
        /// When.
        time: Time,
        /// The operation's source position, if known.
        origin: Option<Origin>,
        /// What was wrong.
        misuse: Misuse,
    },
    /// Simulated time would pass `max_time`.
    #[error("time limit: the run reached max_time = {limit} with threads still working{}; raise max_time or shorten the scenario", site_text(site))]
    TimeLimit {
        /// The limit.
        limit: Time,
        /// The last operation before the limit, if any.
        site: Option<Site>,
    },
    /// More than `max_events` simulated operations (compute, sleep,
    /// yield_now, …), or, with `events`, more than 64 × `max_events`
    /// internal events (a run whose events come without
    /// operations, such as an event loop's timers). The run stops; its
    /// trace up to `time` is kept.
    #[error("{}", event_limit(*limit, *time, *events, site))]
    EventLimit {
        /// The limit: the machine's `max_events`.
        limit: u64,
        /// When it was reached.
        time: Time,
        /// Whether the internal bound on events stopped the run, rather than
        /// the count of operations.
        events: bool,
        /// The operation that passed the limit, if a thread's.
        site: Option<Site>,
    },
    /// The clock stood still for `max_steps_at_instant` operations: threads
    /// that only yield, poll or touch memory never let time pass (a
    /// zero-time livelock). The trace up to `time` is kept.
    #[error("{}", livelock(*limit, *time, repeating))]
    Livelock {
        /// The machine's `max_steps_at_instant`.
        limit: u64,
        /// The instant the clock stood still at.
        time: Time,
        /// The threads seen repeating operations at that instant, each
        /// with the script position of its last operation.
        repeating: Vec<Site>,
    },
    /// The simulator's own memory passed its guard (`--max-memory`). The
    /// run stops; its trace so far is kept.
    #[error("the simulator's own memory reached {} (the guard is {}) at {time}{}: the scenario holds too much (threads, arrays, trace); shrink it or raise --max-memory", crate::model::footprint::format_size(*used), crate::model::footprint::format_size(*limit), site_text(site))]
    MemoryLimit {
        /// Bytes the simulator had allocated.
        used: u64,
        /// The guard, in bytes.
        limit: u64,
        /// Simulated time when it was reached.
        time: Time,
        /// The last operation before it, if a thread's.
        site: Option<Site>,
    },
    /// The run took longer than its wall-clock timeout (`--timeout`). The
    /// point where it stopped depends on the host's speed, so the result
    /// would not be deterministic: it is a failure, never an outcome.
    #[error("the run took longer than its wall-clock timeout of {seconds}s (stopped at simulated {time}{}); where it stopped depends on the machine's speed, so this result would not be deterministic: it is a failure, not an outcome; raise --timeout or shorten the scenario", site_text(site))]
    Timeout {
        /// The timeout, in seconds.
        seconds: u64,
        /// Simulated time when it was reached.
        time: Time,
        /// The last operation before it, if a thread's.
        site: Option<Site>,
    },
    /// The chooser refused (a replay that no longer matches).
    #[error("at {time}: {error}")]
    Chooser {
        /// When.
        time: Time,
        /// Its reason.
        error: ChooserError,
    },
    /// The host could not give a thread a stack.
    #[error("could not allocate a stack for thread '{thread}': {message}")]
    Resources {
        /// The thread's name.
        thread: String,
        /// The system's reason.
        message: String,
    },
}

/// The message of [`SimError::EventLimit`]: the key, and a value to set.
fn event_limit(limit: u64, time: Time, events: bool, site: &Option<Site>) -> String {
    // Rhai integers are i64: suggest at most i64::MAX.
    let raised = limit.saturating_mul(2).min(i64::MAX as u64);
    let what = if events {
        format!(
            "{} internal events ({}× max_events = {limit}) with few simulated operations",
            limit.saturating_mul(crate::kernel::EVENTS_PER_OPERATION),
            crate::kernel::EVENTS_PER_OPERATION
        )
    } else {
        format!("max_events ({limit} simulated operations)")
    };
    format!(
        "the run reached {what} at {time}{}; raise it with machine(#{{ max_events: {raised} }})",
        site_text(site)
    )
}

/// Where a limit struck: a thread and the position of its last operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The thread's name.
    pub thread: String,
    /// Its last operation's source position, if known.
    pub origin: Option<Origin>,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread '{}'", self.thread)?;
        if let Some(origin) = &self.origin {
            write!(f, " at {origin}")?;
        }
        Ok(())
    }
}

fn site_text(site: &Option<Site>) -> String {
    site.as_ref()
        .map(|s| format!(" (last operation: {s})"))
        .unwrap_or_default()
}

/// The message of [`SimError::Livelock`].
fn livelock(limit: u64, time: Time, repeating: &[Site]) -> String {
    let who: Vec<String> = repeating.iter().map(Site::to_string).collect();
    format!(
        "the clock stood still at {time} for {limit} operations (max_steps_at_instant): \
         a zero-time livelock; repeating: {}. A loop that only yields, polls or touches \
         memory never lets time pass: add compute() or sleep() to it, or raise \
         machine(#{{ max_steps_at_instant: {} }})",
        if who.is_empty() {
            "no thread".to_string()
        } else {
            who.join(", ")
        },
        limit.saturating_mul(2).min(i64::MAX as u64)
    )
}

fn at(origin: &Option<Origin>) -> String {
    origin
        .as_ref()
        .map(|o| format!(" ({o})"))
        .unwrap_or_default()
}

impl SimError {
    /// When the error occurred.
    pub fn time(&self) -> Option<Time> {
        match self {
            SimError::Panicked { time, .. }
            | SimError::Failed { time, .. }
            | SimError::Misuse { time, .. }
            | SimError::EventLimit { time, .. }
            | SimError::Livelock { time, .. }
            | SimError::MemoryLimit { time, .. }
            | SimError::Timeout { time, .. }
            | SimError::Chooser { time, .. } => Some(*time),
            SimError::TimeLimit { limit, .. } => Some(*limit),
            SimError::Resources { .. } => None,
        }
    }

    /// Where a limit struck or the error arose, when a thread's operation
    /// is known: the thread and its position.
    pub fn site(&self) -> Option<Site> {
        match self {
            SimError::TimeLimit { site, .. }
            | SimError::EventLimit { site, .. }
            | SimError::MemoryLimit { site, .. }
            | SimError::Timeout { site, .. } => site.clone(),
            SimError::Livelock { repeating, .. } => repeating.first().cloned(),
            SimError::Failed { thread, origin, .. } | SimError::Misuse { thread, origin, .. } => {
                Some(Site {
                    thread: thread.clone(),
                    origin: origin.clone(),
                })
            }
            _ => None,
        }
    }
}

/// A wrong use of an operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Misuse {
    /// A thread tried to join itself.
    #[error("a thread cannot join itself")]
    JoinSelf,
    /// A join of an asyncio task's row, which is no thread.
    #[error("'{0}' is an asyncio task, not a thread: await the task instead of joining it")]
    JoinTask(String),
    /// A handle to no thread.
    #[error("no thread has id {0}")]
    UnknownThread(u32),
    /// A variable that does not exist.
    #[error("no variable has id {0}")]
    UnknownVariable(u32),
    /// A thread touched another process's memory.
    #[error("variable '{variable}' belongs to process '{owner}', but a thread of process '{accessor}' touched it; processes share nothing, use a channel")]
    ForeignMemory {
        /// The variable.
        variable: String,
        /// Its owner process.
        owner: String,
        /// The process of the thread that touched it.
        accessor: String,
    },
    /// Unlock (or release) of a lock the thread does not hold.
    #[error("{kind} '{resource}' is not held by this thread; only the thread that locked it may unlock it")]
    NotOwner {
        /// The resource's name.
        resource: String,
        /// Its kind.
        kind: &'static str,
    },
    /// Lock of a lock the thread already holds.
    #[error("{kind} '{resource}' is already held by this thread: it is not recursive, so the thread would wait for itself forever (a self-deadlock)")]
    Relock {
        /// The resource's name.
        resource: String,
        /// Its kind.
        kind: &'static str,
    },
    /// A release of a bounded semaphore that already has all its permits.
    #[error("bounded semaphore '{resource}' already has all its {bound} permit(s): a release past them is a bug (Python's BoundedSemaphore raises ValueError); release only what was acquired")]
    OverRelease {
        /// The resource's name.
        resource: String,
        /// Its permits.
        bound: u64,
    },
    /// A signal to a countdown that already reached zero.
    #[error("countdown '{0}' already reached zero: a signal past its count is a bug (C#'s CountdownEvent throws InvalidOperationException); signal it as many times as its count")]
    CountdownDone(String),
    /// An operation the resource does not have (e.g. `acquire` on a mutex).
    #[error("'{resource}' is a {kind}, which has no {operation}")]
    WrongKind {
        /// The resource's name.
        resource: String,
        /// Its kind.
        kind: &'static str,
        /// The operation tried.
        operation: &'static str,
    },
    /// A resource id that does not exist.
    #[error("no resource has id {0}")]
    UnknownResource(u32),
    /// An I/O request id that does not exist.
    #[error("no I/O request has id {0}")]
    UnknownIo(u32),
    /// `wait` without a timeout on an epoll set with nothing in it.
    #[error("epoll wait on an empty set with no timeout would block forever; add a handle first (ep.add(h)) or give wait a timeout")]
    EmptyEpoll,
    /// A second thread waits on an epoll set that already has a waiter.
    #[error("another thread already waits on '{0}'; give each waiting thread its own epoll")]
    EpollBusy(String),
    /// A handle added twice to one epoll set.
    #[error("this handle is already in the epoll set; add each handle once (a handle that epoll returned has left the set and may be added again)")]
    AlreadyPolled,
    /// A thread used a handle of another process.
    #[error("{what} belongs to process '{owner}', but a thread of process '{accessor}' used it; handles stay in their process, use a channel between processes")]
    ForeignHandle {
        /// The handle, described.
        what: String,
        /// The process it belongs to.
        owner: String,
        /// The process of the thread that used it.
        accessor: String,
    },
    /// A thread or process start would pass the machine's memory.
    #[error("can't start new {what}: it needs {needed} bytes on top of the {used} in use, past the machine's memory of {limit} bytes; raise the machine's memory or start fewer")]
    OutOfMemory {
        /// "thread" or "process".
        what: &'static str,
        /// Bytes in use before the start.
        used: u64,
        /// Bytes the start needed.
        needed: u64,
        /// The machine's memory.
        limit: u64,
    },
    /// An await outside a task.
    #[error("{0}() awaits, so it belongs in a task on an event loop; in a thread use the blocking form, or run the code as a task: lp.add_task(\"name\", || {{ ... }})")]
    NotInTask(&'static str),
    /// A wrong use of a task or its loop.
    #[error("{0}")]
    Task(String),
    /// A task's coroutine could not be had.
    #[error("no stack for a task: {0}")]
    TaskStack(String),
    /// A start past the machine's `max_threads` live threads.
    #[error("can't start another thread: {limit} threads are alive, the machine's max_threads; join or end threads before starting more, or raise machine(#{{ max_threads: N }})")]
    TooManyThreads {
        /// The machine's `max_threads`.
        limit: u64,
    },
    /// A thread's coroutine stack ran low.
    #[error("the thread's stack is nearly exhausted ({size} bytes); raise the machine's stack_size or recurse less")]
    StackExhausted {
        /// The stack size in force.
        size: usize,
    },
}

/// An error a thread body returns: it ends the run as [`SimError::Failed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError {
    /// What went wrong.
    pub message: String,
    /// The script line and column, if known.
    pub position: Option<(u32, u32)>,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BodyError {}
