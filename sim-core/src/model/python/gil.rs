//! CPython's global interpreter lock, as a [`ProcessGate`], following
//! `Python/ceval_gil.c` (3.12):
//!
//! - A thread needs the GIL to run: to start, after every blocking call and
//!   to finish. A thread that finds it free takes it at once: there is no
//!   queue, so a newcomer can pass older waiters (`take_gil`).
//! - A thread that finds it held waits (state gil, off the CPU) in timed
//!   waits of `switch_interval`. When a wait times out with the GIL still
//!   held and no change of owner since that wait began (`switch_number`
//!   unchanged), the waiter sets the drop request; a change of owner
//!   restarts the full interval.
//! - The holder sees the request at its next check point (at once while it
//!   computes: the kernel interrupts it) and drops the GIL. Having dropped it
//!   on request, it does not compete again until another thread has taken it
//!   (`FORCE_SWITCHING`): the GIL goes to a waiter before the dropper asks
//!   again. Which waiter is the OS's choice in CPython; here it goes through
//!   the chooser, the longest waiter by default.
//! - A thread that blocks (I/O, sleep, a lock, join, epoll, a channel)
//!   drops the GIL at once, with no request; a waiter takes it.
//! - Being preempted by the OS scheduler does not drop it.
//!
//! Every change of holder and every drop request is recorded (see
//! [`GilEvent`]), for the chart's GIL row and the report.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::ids::{ProcessId, ThreadId};
use crate::model::process::{GateActions, ProcessGate};
use crate::model::thread::BlockReason;
use crate::time::{ms, Span, Time};

/// CPython's default switch interval (`sys.getswitchinterval()`).
pub const DEFAULT_SWITCH_INTERVAL: Span = ms(5);

/// Something that happened to a process's GIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GilAction {
    /// The thread took the GIL.
    Took,
    /// The thread dropped it; `forced` when on a drop request.
    Dropped {
        /// It dropped it because another thread asked (a forced switch).
        forced: bool,
    },
    /// The thread, waiting for a full interval with no change of owner,
    /// asked the holder to drop the GIL.
    DropRequest,
}

/// One [`GilAction`] of one process, in time order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GilEvent {
    /// When.
    pub time: Time,
    /// The process whose GIL it is.
    pub process: ProcessId,
    /// The thread that took, dropped or asked.
    pub thread: ThreadId,
    /// What happened.
    pub action: GilAction,
}

/// The timed wait of a thread waiting for the GIL.
#[derive(Clone, Copy, Debug)]
struct Wait {
    /// `switch_number` when its current timed wait began.
    saved: u64,
    /// Tells its live timer from stale ones.
    sequence: u32,
}

/// The GIL of one process.
#[derive(Debug)]
pub struct Gil {
    process: ProcessId,
    interval: Span,
    holder: Option<ThreadId>,
    /// Counts changes of holder (`gil->switch_number`).
    switch_number: u64,
    /// A drop request is pending (`gil_drop_request`).
    drop_request: bool,
    /// Waiters in the order they started to wait.
    order: VecDeque<ThreadId>,
    /// Each waiter's timed wait, by thread index: every waiter's timer
    /// fires once an interval, and finds its wait here in constant time
    /// however many threads wait.
    waits: Vec<Option<Wait>>,
    /// Timer sequence numbers.
    sequence: u32,
}

impl Gil {
    /// The GIL of `process`, with `interval` as its switch interval.
    pub fn new(process: ProcessId, interval: Span) -> Gil {
        Gil {
            process,
            interval,
            holder: None,
            switch_number: 0,
            drop_request: false,
            order: VecDeque::new(),
            waits: Vec::new(),
            sequence: 0,
        }
    }

    /// The thread holding the GIL, if any.
    pub fn holder(&self) -> Option<ThreadId> {
        self.holder
    }

    fn note(&self, thread: ThreadId, action: GilAction, now: Time, actions: &mut GateActions) {
        actions.record(GilEvent {
            time: now,
            process: self.process,
            thread,
            action,
        });
    }

    /// `thread` takes the free GIL.
    fn take(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) {
        self.holder = Some(thread);
        self.switch_number += 1;
        // take_gil resets a pending request once the GIL changed hands.
        self.drop_request = false;
        self.note(thread, GilAction::Took, now, actions);
    }

    /// Starts (or restarts) a waiter's timed wait of one interval.
    fn start_wait(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) {
        self.sequence = self.sequence.wrapping_add(1);
        let t = thread.index();
        if self.waits.len() <= t {
            self.waits.resize(t + 1, None);
        }
        self.waits[t] = Some(Wait {
            saved: self.switch_number,
            sequence: self.sequence,
        });
        let token = (u64::from(thread.0) << 32) | u64::from(self.sequence);
        actions.set_timer(now + self.interval, token);
    }

    /// The wait of `thread`, if it waits.
    fn wait_of(&self, thread: ThreadId) -> Option<Wait> {
        self.waits.get(thread.index()).copied().flatten()
    }
}

impl ProcessGate for Gil {
    fn admit(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) -> bool {
        match self.holder {
            None => {
                self.take(thread, now, actions);
                true
            }
            Some(holder) if holder == thread => true,
            Some(_) => {
                self.order.push_back(thread);
                self.start_wait(thread, now, actions);
                false
            }
        }
    }

    fn release(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) {
        if self.holder != Some(thread) {
            return;
        }
        let forced = std::mem::take(&mut self.drop_request);
        self.holder = None;
        self.note(thread, GilAction::Dropped { forced }, now, actions);
        if !self.order.is_empty() {
            // drop_gil signals the condition: one waiter wakes and takes it.
            actions.pick_waiter(self.order.len());
        }
    }

    fn picked(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) {
        if self.wait_of(thread).is_none() || self.holder.is_some() {
            return;
        }
        // The first waiter unless a chooser picked another.
        if self.order.front() == Some(&thread) {
            self.order.pop_front();
        } else if let Some(index) = self.order.iter().position(|&w| w == thread) {
            self.order.remove(index);
        }
        self.waits[thread.index()] = None;
        self.take(thread, now, actions);
        actions.admit(thread);
    }

    fn waiter(&self, index: usize) -> ThreadId {
        self.order[index]
    }

    fn waiters(&self, out: &mut Vec<ThreadId>) {
        out.extend(self.order.iter().copied());
    }

    fn timer(&mut self, token: u64, now: Time, actions: &mut GateActions) {
        let (thread, sequence) = (ThreadId((token >> 32) as u32), token as u32);
        let live = |gil: &Gil| gil.wait_of(thread).filter(|w| w.sequence == sequence);
        let Some(wait) = live(self) else {
            return; // it took the GIL meanwhile: a stale timer
        };
        if let Some(holder) = self.holder {
            if wait.saved == self.switch_number && !self.drop_request {
                self.drop_request = true;
                self.note(thread, GilAction::DropRequest, now, actions);
                actions.interrupt(holder);
            }
        }
        // The interrupt may have handed the GIL over already (to this
        // waiter or another); a waiter still waiting waits another interval.
        if live(self).is_some() {
            self.start_wait(thread, now, actions);
        }
    }

    fn hold_reason(&self) -> BlockReason {
        BlockReason::Gil(self.process)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::process::GateAction;

    const P: ProcessId = ProcessId(1);

    fn at(ms_: u64) -> Time {
        Time(ms_ * 1_000_000)
    }

    /// The actions of one call, with the events it recorded apart.
    fn split(actions: GateActions) -> (Vec<GateAction>, Vec<GilAction>, Option<usize>) {
        let mut rest = Vec::new();
        let mut events = Vec::new();
        for action in actions.list {
            match action {
                GateAction::Record(e) => events.push(e.action),
                other => rest.push(other),
            }
        }
        (rest, events, actions.pick_waiter)
    }

    #[test]
    fn a_free_gil_is_taken_at_once_and_a_held_one_makes_a_timed_wait() {
        let mut gil = Gil::new(P, ms(5));
        let (a, b) = (ThreadId(0), ThreadId(1));
        let mut actions = GateActions::default();
        assert!(gil.admit(a, at(0), &mut actions));
        assert_eq!(split(actions).1, [GilAction::Took]);
        let mut actions = GateActions::default();
        assert!(!gil.admit(b, at(1), &mut actions));
        let (rest, events, _) = split(actions);
        assert!(events.is_empty());
        // b's timed wait ends at 6ms.
        assert!(matches!(rest[..], [GateAction::Timer(t, _)] if t == at(6)));
        assert_eq!(gil.holder(), Some(a));
    }

    #[test]
    fn a_wait_with_no_change_of_owner_asks_and_the_holder_hands_over_on_request() {
        let mut gil = Gil::new(P, ms(5));
        let (a, b) = (ThreadId(0), ThreadId(1));
        gil.admit(a, at(0), &mut GateActions::default());
        let mut actions = GateActions::default();
        gil.admit(b, at(0), &mut actions);
        let GateAction::Timer(_, token) = split(actions).0[0] else {
            panic!("a timer")
        };
        let mut actions = GateActions::default();
        gil.timer(token, at(5), &mut actions);
        let (rest, events, _) = split(actions);
        assert_eq!(events, [GilAction::DropRequest]);
        assert!(rest.contains(&GateAction::Interrupt(a)));
        // The kernel interrupts a: it releases, on request.
        let mut actions = GateActions::default();
        gil.release(a, at(5), &mut actions);
        let (_, events, pick) = split(actions);
        assert_eq!(events, [GilAction::Dropped { forced: true }]);
        assert_eq!((pick, gil.waiter(0)), (Some(1), b));
        let mut actions = GateActions::default();
        gil.picked(b, at(5), &mut actions);
        let (rest, events, _) = split(actions);
        assert_eq!(events, [GilAction::Took]);
        assert_eq!(rest, [GateAction::Admit(b)]);
        assert_eq!(gil.holder(), Some(b));
        // a, back, waits: FORCE_SWITCHING kept it from retaking the GIL.
        assert!(!gil.admit(a, at(5), &mut GateActions::default()));
    }

    #[test]
    fn a_change_of_owner_during_the_wait_restarts_the_interval() {
        let mut gil = Gil::new(P, ms(5));
        let (a, b, c) = (ThreadId(0), ThreadId(1), ThreadId(2));
        gil.admit(a, at(0), &mut GateActions::default());
        let mut actions = GateActions::default();
        gil.admit(c, at(0), &mut actions);
        let GateAction::Timer(_, token) = split(actions).0[0] else {
            panic!("a timer")
        };
        // a blocks at 2ms (a voluntary drop); b, a newcomer, takes the free
        // GIL at once, before the waiter c is picked.
        let mut actions = GateActions::default();
        gil.release(a, at(2), &mut actions);
        let (_, events, pick) = split(actions);
        assert_eq!(events, [GilAction::Dropped { forced: false }]);
        assert_eq!((pick, gil.waiter(0)), (Some(1), c));
        assert!(gil.admit(b, at(2), &mut GateActions::default()));
        gil.picked(c, at(2), &mut GateActions::default());
        assert_eq!(gil.holder(), Some(b));
        // At 5ms c's wait ends: the owner changed meanwhile, so no request;
        // c waits a full interval again.
        let mut actions = GateActions::default();
        gil.timer(token, at(5), &mut actions);
        let (rest, events, _) = split(actions);
        assert!(events.is_empty());
        assert!(matches!(rest[..], [GateAction::Timer(t, _)] if t == at(10)));
    }
}
