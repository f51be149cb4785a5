//! A read-only picture of a run at a decision, for choosers that show it to
//! a person (`simcli step`).
//!
//! A chooser that says yes to [`super::Chooser::wants_snapshot`] is asked
//! through [`super::Chooser::choose_seeing`], with a function that builds a
//! [`Snapshot`] when called. Nothing changes for the choosers that say no
//! (the default and all the exploring ones): the engine remembers each
//! thread's script position only for a chooser that said yes when it was
//! set, and never builds a snapshot unasked.

use crate::ids::ThreadId;
use crate::time::Time;

/// The state of a run at one decision: the clock, every thread, every
/// shared variable and every lock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The simulated time of the decision.
    pub time: Time,
    /// The threads, in creation order (event-loop tasks are not threads).
    pub threads: Vec<ThreadSnapshot>,
    /// The shared variables (`m.variable`), in declaration order.
    pub variables: Vec<VariableSnapshot>,
    /// Mutexes, reentrant locks, spinlocks, rwlocks and semaphores, in
    /// declaration order.
    pub locks: Vec<LockSnapshot>,
}

/// One thread at a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSnapshot {
    /// Its id (what [`super::Choice::threads`] holds).
    pub id: ThreadId,
    /// Its name.
    pub name: String,
    /// Its state as reports print it: "running", "ready", "lock 'm'"...
    pub state: String,
    /// The CPU it is on, if it is on one.
    pub cpu: Option<usize>,
    /// The script positions (line, column) of the last operations it
    /// called (up to 8), oldest first; `None` for one that is not in the
    /// script. The last is the one it is blocked in, or has just done.
    pub recent: Vec<Option<(u32, u32)>>,
    /// How many operations it has called so far. With `recent`, a chooser
    /// that sees a later decision of the run can tell which operation a
    /// thread called after this one (`simcli step` shows it as the next).
    pub operations: u64,
    /// It is in the middle of an operation that takes CPU time (a compute
    /// not yet done, even if preempted, or a spin): its next operation
    /// comes after that one ends.
    pub busy: bool,
}

/// One shared variable at a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariableSnapshot {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: i64,
}

/// One lock at a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockSnapshot {
    /// Its name.
    pub name: String,
    /// Its kind: "mutex", "rlock", "spinlock", "rwlock", "semaphore".
    pub kind: &'static str,
    /// The threads holding it (a rwlock's writer, then its readers).
    pub holders: Vec<ThreadId>,
    /// The threads waiting for it, in arrival order (in creation order at
    /// a [`super::ChoicePoint::Waiter`] question about it, while it is being
    /// handed over).
    pub waiters: Vec<ThreadId>,
    /// A semaphore's free permits.
    pub permits: Option<u64>,
}

impl ThreadSnapshot {
    /// The script position of the last operation it called, if any.
    pub fn at(&self) -> Option<(u32, u32)> {
        self.recent.last().copied().flatten()
    }

    /// The script position of its operation number `n` (from 0), if it is
    /// among the recent ones.
    pub fn operation(&self, n: u64) -> Option<(u32, u32)> {
        let back = self.operations.checked_sub(n + 1)?;
        let index = (self.recent.len() as u64).checked_sub(back + 1)?;
        self.recent[index as usize]
    }
}

impl Snapshot {
    /// The name of a thread of the snapshot ("?" for an unknown id).
    pub fn thread_name(&self, id: ThreadId) -> &str {
        self.threads
            .iter()
            .find(|t| t.id == id)
            .map_or("?", |t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::ids::ProcessId;
    use crate::kernel::{Choice, ChoicePoint, Chooser, ChooserError, Simulation};
    use crate::model::machine::Machine;
    use crate::model::sync::MutexOptions;
    use crate::time::ms;

    /// Answers like the default chooser and keeps the snapshot of every
    /// `Waiter` question, and the last one, at the end.
    #[derive(Debug, Default)]
    struct Watching(Rc<RefCell<Vec<Snapshot>>>);

    impl Chooser for Watching {
        fn choose(&mut self, _: &Choice<'_>) -> Result<usize, ChooserError> {
            unreachable!("a chooser that wants snapshots is asked with choose_seeing")
        }

        fn wants_snapshot(&self) -> bool {
            true
        }

        fn choose_seeing(
            &mut self,
            choice: &Choice<'_>,
            snapshot: &dyn Fn() -> Snapshot,
        ) -> Result<usize, ChooserError> {
            if choice.point == ChoicePoint::Waiter {
                self.0.borrow_mut().push(snapshot());
            }
            Ok(0)
        }

        fn run_ended(&mut self, snapshot: &dyn Fn() -> Snapshot) {
            self.0.borrow_mut().push(snapshot());
        }
    }

    #[test]
    fn a_chooser_that_asks_sees_the_clock_threads_variables_and_locks() {
        let mut sim = Simulation::new(Machine {
            cpus: 3,
            ..Machine::textbook()
        })
        .unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        sim.set_chooser(Box::new(Watching(seen.clone())));
        let lock = sim.mutex("m", MutexOptions::default());
        let count = sim.variable(ProcessId::MAIN, "count", 0);
        sim.add_thread("holder", move |ctx| {
            ctx.lock(lock);
            ctx.store(count, 7);
            ctx.compute(ms(5));
            ctx.unlock(lock);
        });
        for name in ["w1", "w2"] {
            sim.add_thread(name, move |ctx| {
                ctx.compute(ms(1));
                ctx.lock(lock);
                ctx.unlock(lock);
            });
        }
        let run = sim.run();
        assert!(run.outcome == crate::kernel::Outcome::Completed);
        let seen = seen.borrow();
        // The release at 5ms, to one of two waiters.
        let at_release = &seen[0];
        assert_eq!(at_release.time.elapsed(), ms(5));
        assert_eq!(at_release.variables[0].value, 7);
        let lock = &at_release.locks[0];
        assert_eq!((lock.name.as_str(), lock.kind), ("m", "mutex"));
        assert!(lock.holders.is_empty());
        assert_eq!(lock.waiters.len(), 2);
        assert_eq!(at_release.thread_name(lock.waiters[0]), "w1");
        let w1 = &at_release.threads[1];
        assert_eq!((w1.name.as_str(), w1.state.as_str()), ("w1", "mutex 'm'"));
        assert_eq!(w1.cpu, None);
        // The end: every thread done.
        let end = seen.last().unwrap();
        assert!(end.threads.iter().all(|t| t.state == "done"), "{end:?}");
        assert_eq!(end.threads[0].operations, 4);
        // Rust bodies have no script positions.
        assert_eq!(w1.at(), None);
        assert_eq!(w1.operations, 2);
    }
}
