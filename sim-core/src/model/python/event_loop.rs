//! An asyncio event loop as a plain state machine: which task runs next, and
//! what wakes a waiting one. It follows CPython's `BaseEventLoop._run_once`
//! (`Lib/asyncio/base_events.py`):
//!
//! 1. the select timeout is 0 when a task is ready, else the time until the
//!    earliest timer ([`EventLoop::timeout`]);
//! 2. the loop waits in epoll for that long; I/O that completed wakes its
//!    tasks ([`EventLoop::wake`]);
//! 3. timers that are due move to the ready queue, in deadline order, equal
//!    deadlines in the order they were set (CPython leaves that tie to its
//!    heap; we document ours);
//! 4. exactly the tasks that were ready at that point run, first in, first
//!    out ([`EventLoop::begin_iteration`], then [`EventLoop::next`] that many
//!    times). A task made ready meanwhile (a future it awaited completed,
//!    or it yielded) runs in a later iteration, as `call_soon` does.
//!
//! The loop thread's coroutines, costs and trace are the kernel's business
//! (`kernel::event_loop`); this module holds only the rules, unit-tested
//! without coroutines.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::ids::ResourceId;
use crate::time::{Span, Time};

/// A task of one loop: its index in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u32);

impl TaskId {
    /// The index of this task in its loop's table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a task is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaiting {
    /// `await asyncio.sleep(d)`: a timer.
    Sleep,
    /// A request to a device.
    Io(ResourceId),
    /// Other tasks to finish (`await task`, `gather`).
    Tasks,
    /// A channel to become readable or writable.
    Channel(ResourceId),
    /// Work handed to the loop's executor (`run_in_executor`).
    Executor,
}

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// In the ready queue.
    Ready,
    /// The one task the loop is running.
    Running,
    /// Suspended at an `await`.
    Awaiting(Awaiting),
    /// Returned or failed.
    Done {
        /// Whether it failed.
        failed: bool,
    },
}

#[derive(Debug)]
struct Slot {
    phase: Phase,
    ready_since: Time,
    /// Tasks that await this one.
    waiters: Vec<TaskId>,
    /// The tasks this one awaits, while it awaits tasks.
    awaits: Vec<TaskId>,
    /// How many of `awaits` are still running.
    pending: u32,
    /// When it failed, in the loop's order of failures: `gather` raises the
    /// first.
    failure: Option<u64>,
}

/// Counts a loop keeps about itself, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Tasks created.
    pub tasks: u64,
    /// Iterations of `_run_once`.
    pub iterations: u64,
    /// Task steps run (a task resumed until its next `await`).
    pub steps: u64,
    /// Steps that ran a different task than the step before.
    pub switches: u64,
    /// The longest a task waited in the ready queue.
    pub longest_ready_wait: Span,
}

/// The state of one event loop.
#[derive(Debug, Default)]
pub struct EventLoop {
    slots: Vec<Slot>,
    ready: VecDeque<TaskId>,
    /// (deadline, order set, task): the earliest first, ties in set order.
    timers: BinaryHeap<Reverse<(Time, u64, TaskId)>>,
    timers_set: u64,
    failures: u64,
    unfinished: usize,
    last: Option<TaskId>,
    /// What the loop has done so far.
    pub stats: LoopStats,
}

impl EventLoop {
    /// An empty loop.
    pub fn new() -> EventLoop {
        EventLoop::default()
    }

    /// A new task, ready to run its first step (`create_task` schedules it
    /// with `call_soon`).
    pub fn spawn(&mut self, now: Time) -> TaskId {
        let id = TaskId(self.slots.len() as u32);
        self.slots.push(Slot {
            phase: Phase::Ready,
            ready_since: now,
            waiters: Vec::new(),
            awaits: Vec::new(),
            pending: 0,
            failure: None,
        });
        self.ready.push_back(id);
        self.unfinished += 1;
        self.stats.tasks += 1;
        id
    }

    /// A future completed from outside the loop (an executor job): it
    /// never runs, [`EventLoop::finish`] completes it.
    pub fn spawn_future(&mut self) -> TaskId {
        let id = TaskId(self.slots.len() as u32);
        self.slots.push(Slot {
            phase: Phase::Awaiting(Awaiting::Executor),
            ready_since: Time::ZERO,
            waiters: Vec::new(),
            awaits: Vec::new(),
            pending: 0,
            failure: None,
        });
        self.unfinished += 1;
        id
    }

    /// How many tasks have not finished.
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// Where `task` is.
    pub fn phase(&self, task: TaskId) -> Phase {
        self.slots[task.index()].phase
    }

    /// Whether a task is ready to run.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The select timeout of the next iteration: zero when a task is ready,
    /// the time until the earliest timer otherwise, `None` when there is no
    /// timer (wait for I/O alone).
    pub fn timeout(&self, now: Time) -> Option<Span> {
        if !self.ready.is_empty() {
            return Some(Span::ZERO);
        }
        self.timers
            .peek()
            .map(|Reverse((deadline, _, _))| deadline.since(now.min(*deadline)))
    }

    /// Starts an iteration after the select: due timers join the ready
    /// queue (each task with its deadline goes into `woken`). Returns how
    /// many tasks this iteration runs (those ready now).
    pub fn begin_iteration(&mut self, now: Time, woken: &mut Vec<(TaskId, Time)>) -> usize {
        self.stats.iterations += 1;
        while let Some(&Reverse((deadline, _, task))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            self.make_ready(task, deadline);
            woken.push((task, deadline));
        }
        self.ready.len()
    }

    /// The next ready task, now running. Steps count; a step of a different
    /// task than the last one is a task switch (returned true).
    pub fn next(&mut self, now: Time) -> Option<(TaskId, bool)> {
        let task = self.ready.pop_front()?;
        let slot = &mut self.slots[task.index()];
        debug_assert_eq!(slot.phase, Phase::Ready);
        slot.phase = Phase::Running;
        let waited = now.since(slot.ready_since.min(now));
        if waited > self.stats.longest_ready_wait {
            self.stats.longest_ready_wait = waited;
        }
        self.stats.steps += 1;
        let switch = self.last != Some(task);
        if switch {
            self.stats.switches += 1;
        }
        self.last = Some(task);
        Some((task, switch))
    }

    /// The running task sleeps until `deadline` (`await asyncio.sleep`).
    /// A deadline not after now is `sleep(0)`: back of the ready queue.
    pub fn sleep(&mut self, task: TaskId, now: Time, deadline: Time) {
        if deadline <= now {
            self.make_ready(task, now);
            return;
        }
        self.set_phase(task, Phase::Awaiting(Awaiting::Sleep));
        self.timers_set += 1;
        self.timers.push(Reverse((deadline, self.timers_set, task)));
    }

    /// The running task waits for something outside the loop (I/O, a
    /// channel, the executor); [`EventLoop::wake`] ends the wait.
    pub fn wait(&mut self, task: TaskId, what: Awaiting) {
        self.set_phase(task, Phase::Awaiting(what));
    }

    /// What `task` waited for outside the loop happened: it is ready.
    pub fn wake(&mut self, task: TaskId, now: Time) {
        if matches!(self.slots[task.index()].phase, Phase::Awaiting(_)) {
            self.make_ready(task, now);
        }
    }

    /// The running task awaits every task of `targets`. False when there is
    /// nothing to wait for (each has finished, or one failed): the task goes
    /// on at once, as awaiting a done future does.
    pub fn await_tasks(&mut self, task: TaskId, targets: &[TaskId]) -> bool {
        let mut pending = 0;
        for &target in targets {
            match self.slots[target.index()].phase {
                Phase::Done { failed: true } => return false,
                Phase::Done { failed: false } => {}
                _ => pending += 1,
            }
        }
        if pending == 0 {
            return false;
        }
        for &target in targets {
            if !matches!(self.slots[target.index()].phase, Phase::Done { .. }) {
                self.slots[target.index()].waiters.push(task);
            }
        }
        let slot = &mut self.slots[task.index()];
        slot.awaits.clear();
        slot.awaits.extend_from_slice(targets);
        slot.pending = pending;
        self.set_phase(task, Phase::Awaiting(Awaiting::Tasks));
        true
    }

    /// The tasks `task` awaits, on a path back to `task` itself: an await
    /// cycle (A awaits B, B awaits A), which can never end. The path starts
    /// at `task` and ends at the task that awaits it.
    pub fn await_cycle(&self, task: TaskId) -> Option<Vec<TaskId>> {
        let mut path = vec![task];
        let mut seen = vec![false; self.slots.len()];
        self.cycle_from(task, task, &mut path, &mut seen)
            .then_some(path)
    }

    fn cycle_from(
        &self,
        from: TaskId,
        goal: TaskId,
        path: &mut Vec<TaskId>,
        seen: &mut [bool],
    ) -> bool {
        let slot = &self.slots[from.index()];
        if slot.phase != Phase::Awaiting(Awaiting::Tasks) {
            return false;
        }
        for &next in &slot.awaits {
            if matches!(self.slots[next.index()].phase, Phase::Done { .. }) {
                continue;
            }
            if next == goal {
                return true;
            }
            if std::mem::replace(&mut seen[next.index()], true) {
                continue;
            }
            path.push(next);
            if self.cycle_from(next, goal, path, seen) {
                return true;
            }
            path.pop();
        }
        false
    }

    /// The running task returned (or failed). Tasks awaiting it are woken
    /// with `call_soon`, so they run in a later iteration; a failure wakes a
    /// `gather` at once, with the others still running.
    pub fn finish(&mut self, task: TaskId, failed: bool, now: Time) {
        self.set_phase(task, Phase::Done { failed });
        if failed {
            self.failures += 1;
            self.slots[task.index()].failure = Some(self.failures);
        }
        self.unfinished -= 1;
        let waiters = std::mem::take(&mut self.slots[task.index()].waiters);
        for waiter in waiters {
            let slot = &mut self.slots[waiter.index()];
            // A gather woken by an earlier failure awaits something else now.
            if slot.phase != Phase::Awaiting(Awaiting::Tasks) || !slot.awaits.contains(&task) {
                continue;
            }
            slot.pending = slot.pending.saturating_sub(1);
            if slot.pending == 0 || failed {
                self.make_ready(waiter, now);
            }
        }
    }

    /// Of `targets`, the one that failed first, if any did: what `gather`
    /// raises.
    pub fn first_failure(&self, targets: &[TaskId]) -> Option<TaskId> {
        targets
            .iter()
            .copied()
            .filter_map(|t| self.slots[t.index()].failure.map(|order| (order, t)))
            .min()
            .map(|(_, t)| t)
    }

    fn set_phase(&mut self, task: TaskId, phase: Phase) {
        self.slots[task.index()].phase = phase;
    }

    fn make_ready(&mut self, task: TaskId, since: Time) {
        let slot = &mut self.slots[task.index()];
        slot.phase = Phase::Ready;
        slot.ready_since = since;
        slot.awaits.clear();
        self.ready.push_back(task);
    }

    /// The running task goes to the back of the ready queue
    /// (`await asyncio.sleep(0)`).
    pub fn yield_now(&mut self, task: TaskId, now: Time) {
        self.make_ready(task, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ms;

    fn t(n: u64) -> Time {
        Time(ms(n).as_nanos())
    }

    /// Runs one iteration at `now`; returns the tasks it ran, each of
    /// which `step` then parks.
    fn iteration(
        lp: &mut EventLoop,
        now: Time,
        mut step: impl FnMut(&mut EventLoop, TaskId),
    ) -> Vec<u32> {
        let n = lp.begin_iteration(now, &mut Vec::new());
        let mut ran = Vec::new();
        for _ in 0..n {
            let (task, _) = lp.next(now).expect("a ready task");
            ran.push(task.0);
            step(lp, task);
        }
        ran
    }

    #[test]
    fn tasks_run_in_creation_order_and_a_yield_runs_in_the_next_iteration() {
        let mut lp = EventLoop::new();
        let a = lp.spawn(t(0));
        let b = lp.spawn(t(0));
        assert_eq!(lp.timeout(t(0)), Some(Span::ZERO));
        let ran = iteration(&mut lp, t(0), |lp, task| lp.yield_now(task, t(0)));
        assert_eq!(ran, vec![a.0, b.0]);
        let ran = iteration(&mut lp, t(0), |lp, task| lp.finish(task, false, t(0)));
        assert_eq!(ran, vec![a.0, b.0]);
        assert_eq!(lp.unfinished(), 0);
        assert_eq!(lp.stats.iterations, 2);
        assert_eq!(lp.stats.steps, 4);
        assert_eq!(lp.stats.switches, 4);
    }

    #[test]
    fn equal_deadlines_wake_in_the_order_the_timers_were_set() {
        let mut lp = EventLoop::new();
        let a = lp.spawn(t(0));
        let b = lp.spawn(t(0));
        let c = lp.spawn(t(0));
        // c sleeps 1ms, then b and a until 5ms (b first).
        let _ = iteration(&mut lp, t(0), |lp, task| {
            let deadline = if task == c { t(1) } else { t(5) };
            if task != a {
                lp.sleep(task, t(0), deadline);
            }
        });
        lp.sleep(a, t(0), t(5));
        assert_eq!(lp.timeout(t(0)), Some(ms(1)));
        assert_eq!(
            iteration(&mut lp, t(1), |lp, task| lp.finish(task, false, t(1))),
            vec![c.0]
        );
        assert_eq!(lp.timeout(t(1)), Some(ms(4)));
        assert_eq!(
            iteration(&mut lp, t(5), |lp, task| lp.finish(task, false, t(5))),
            vec![b.0, a.0]
        );
    }

    #[test]
    fn a_task_woken_by_a_finished_task_runs_one_iteration_later() {
        let mut lp = EventLoop::new();
        let a = lp.spawn(t(0));
        let b = lp.spawn(t(0));
        let ran = iteration(&mut lp, t(0), |lp, task| {
            if task == a {
                assert!(lp.await_tasks(a, &[b]));
            } else {
                lp.finish(b, false, t(0));
            }
        });
        assert_eq!(ran, vec![a.0, b.0]);
        // a was woken while the iteration ran: it runs in the next one.
        assert_eq!(lp.phase(a), Phase::Ready);
        assert_eq!(
            iteration(&mut lp, t(0), |lp, task| lp.finish(task, false, t(0))),
            vec![a.0]
        );
    }

    #[test]
    fn gather_waits_for_all_and_wakes_at_the_first_failure() {
        let mut lp = EventLoop::new();
        let main = lp.spawn(t(0));
        let x = lp.spawn(t(0));
        let y = lp.spawn(t(0));
        let _ = lp.begin_iteration(t(0), &mut Vec::new());
        let _ = lp.next(t(0));
        assert!(lp.await_tasks(main, &[x, y]));
        let _ = lp.next(t(0));
        lp.finish(x, false, t(0));
        assert_eq!(lp.phase(main), Phase::Awaiting(Awaiting::Tasks));
        let _ = lp.next(t(0));
        lp.finish(y, true, t(0));
        assert_eq!(lp.phase(main), Phase::Ready);
        assert_eq!(lp.first_failure(&[x, y]), Some(y));
        // Awaiting finished tasks does not suspend.
        assert!(!lp.await_tasks(main, &[x]));
    }

    #[test]
    fn an_await_cycle_is_found_with_its_path() {
        let mut lp = EventLoop::new();
        let a = lp.spawn(t(0));
        let b = lp.spawn(t(0));
        let c = lp.spawn(t(0));
        let _ = lp.begin_iteration(t(0), &mut Vec::new());
        let _ = lp.next(t(0));
        assert!(lp.await_tasks(a, &[b]));
        assert_eq!(lp.await_cycle(a), None);
        let _ = lp.next(t(0));
        assert!(lp.await_tasks(b, &[c]));
        let _ = lp.next(t(0));
        assert!(lp.await_tasks(c, &[a]));
        assert_eq!(lp.await_cycle(c), Some(vec![c, a, b]));
    }

    #[test]
    fn the_longest_ready_wait_is_kept() {
        let mut lp = EventLoop::new();
        let a = lp.spawn(t(0));
        let _ = lp.begin_iteration(t(3), &mut Vec::new());
        assert_eq!(lp.next(t(3)), Some((a, true)));
        assert_eq!(lp.stats.longest_ready_wait, ms(3));
    }
}
