//! CPU scheduling policies: which ready thread runs next, for how long, and
//! when a running thread must make way. One file per policy.
//!
//! The kernel owns the CPUs and the clock; a policy only orders ready threads
//! and answers questions. Ties (threads the policy cannot tell apart) are
//! reported by `Policy::ties` so that the kernel's chooser decides them.

mod fair;
mod fifo;
mod priority;

use std::collections::VecDeque;

use crate::ids::ThreadId;
use crate::model::machine::{Machine, SchedulerKind};
use crate::model::thread::ThreadOptions;
use crate::time::{Span, Time};

pub(crate) use fair::Fair;
pub(crate) use fifo::Fifo;
pub(crate) use priority::Priority;

/// At most this many tied threads are offered to the chooser (see
/// `CHOICE_WINDOW` in the engine).
pub(crate) const TIE_WINDOW: usize = 8;

/// Why a thread enters the ready queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Enqueue {
    /// Just created.
    New,
    /// Woken from a block.
    Woken,
    /// Made way for a more important thread: keeps its place in line.
    Preempted,
    /// Used up its slice.
    Expired,
    /// Gave up the CPU by itself (or was preempted by the chooser).
    Yielded,
}

/// A CPU scheduling policy.
pub(crate) trait Policy {
    /// Registers a thread before it is first enqueued.
    fn add_thread(&mut self, thread: ThreadId, options: ThreadOptions);
    /// Puts a thread in the ready queue.
    fn enqueue(&mut self, thread: ThreadId, now: Time, why: Enqueue);
    /// How many threads are ready.
    fn len(&self) -> usize;
    /// How many threads at the head of the queue the policy cannot tell
    /// apart (1 when there is no tie, 0 when the queue is empty), at most
    /// [`TIE_WINDOW`].
    fn ties(&self) -> usize;
    /// Writes the tied threads counted by [`Policy::ties`] into `out`, in
    /// queue order.
    fn tied_threads(&self, out: &mut Vec<ThreadId>);
    /// The thread at the head of the queue, the next to run by default.
    fn head(&self) -> Option<ThreadId>;
    /// Removes and returns the `index`-th thread of [`Policy::ties`].
    fn take(&mut self, index: usize) -> ThreadId;
    /// How long `thread` may run once dispatched; `None` means until it blocks.
    fn slice(&self, thread: ThreadId) -> Option<Span>;
    /// Accounts `ran` of CPU time to `thread`.
    fn charge(&mut self, thread: ThreadId, ran: Span);
    /// `thread` left the runnable set (it blocked or finished).
    fn stopped(&mut self, thread: ThreadId);
    /// At the end of `running`'s slice: should it make way for a ready thread?
    fn rotate(&self, running: ThreadId) -> bool;
    /// Whether a newly ready thread can ever preempt a running one, so that
    /// the kernel must keep running threads' accounts current.
    fn preemptive(&self) -> bool {
        true
    }
    /// Should the newly ready `waking` preempt `running` at once? When several
    /// running threads qualify, the one with the highest
    /// [`Policy::victim_rank`] is preempted.
    fn preempts(&self, waking: ThreadId, running: ThreadId) -> bool;
    /// How deserving a running thread is of being preempted.
    fn victim_rank(&self, running: ThreadId) -> i64;
    /// The priority `thread` is scheduled at now (0 for policies without
    /// priorities).
    fn priority(&self, thread: ThreadId) -> i32 {
        let _ = thread;
        0
    }
    /// Changes the priority `thread` is scheduled at (priority inheritance);
    /// a ready thread moves to the back of its new level. Policies without
    /// priorities ignore it.
    fn set_priority(&mut self, thread: ThreadId, priority: i32) {
        let _ = (thread, priority);
    }
}

/// The policy a machine asks for.
pub(crate) fn policy_for(machine: &Machine) -> Box<dyn Policy> {
    match machine.scheduler {
        SchedulerKind::Fifo => Box::new(Fifo::new(None)),
        SchedulerKind::RoundRobin => Box::new(Fifo::new(Some(machine.quantum))),
        SchedulerKind::Priority => Box::new(Priority::new(machine.quantum)),
        SchedulerKind::Fair => Box::new(Fair::new(
            machine.fair_latency(),
            machine.fair_granularity(),
        )),
    }
}

/// How many leading keys equal the first, at most [`TIE_WINDOW`].
fn leading_ties<K: PartialEq>(mut keys: impl Iterator<Item = K>) -> usize {
    let Some(first) = keys.next() else {
        return 0;
    };
    let mut count = 1;
    for key in keys {
        if count == TIE_WINDOW || key != first {
            break;
        }
        count += 1;
    }
    count
}

/// An entry of a FIFO ready queue: the thread, since when it is ready, and
/// whether it gave up its CPU by itself (a yield, or the chooser preempting
/// it at a zero-time operation).
pub(crate) type Ready = (ThreadId, Time, bool);

/// [`leading_ties`] of a ready queue, by time. A thread that gave up its CPU
/// went behind every thread ready then, so it ties with none of those
/// ahead of it: it is a choice only once it is at the head. (Taking it back
/// at once would undo its yield, and a spin loop that yields would make the
/// tree of schedules endless: CHESS's fair scheduling does the same.)
/// Walks the deque's two slices: cheaper than its element-wise iterator on
/// this path, which runs at every dispatch.
fn ready_ties(queue: &VecDeque<Ready>) -> usize {
    let (front, back) = queue.as_slices();
    let mut entries = front.iter().chain(back);
    let Some(&(_, since, _)) = entries.next() else {
        return 0;
    };
    1 + entries
        .take(TIE_WINDOW - 1)
        .take_while(|&&(_, time, yielded)| time == since && !yielded)
        .count()
}

/// Grows a per-thread table so that `thread` indexes into it.
fn slot<T: Default>(table: &mut Vec<T>, thread: ThreadId) -> &mut T {
    if table.len() <= thread.index() {
        table.resize_with(thread.index() + 1, T::default);
    }
    &mut table[thread.index()]
}
