//! The kernel side of event loops: rows for tasks, their states, and the
//! loop's bookkeeping requests. The loop itself runs in its thread's body
//! (`kernel::event_loop`); these requests are not operations of the script,
//! so none is a scheduling point.

use std::cell::RefCell;
use std::rc::Rc;

use super::{Engine, Lifecycle, Thread};
use crate::error::Misuse;
use crate::ids::{ResourceId, ThreadId};
use crate::kernel::context::{Response, SourceRef};
use crate::kernel::wait::WaitQueue;
use crate::model::thread::{BlockReason, ThreadState};
use crate::time::Time;
use crate::trace::{Deadlock, StateChange, ThreadInfo, WaitStep, WaitTarget};

/// A task row's state change, recorded by its loop without a request.
#[derive(Clone, Copy)]
pub(crate) struct PendingState {
    pub(crate) time: Time,
    pub(crate) row: ThreadId,
    pub(crate) state: ThreadState,
    pub(crate) origin: Option<SourceRef>,
}

/// Where event loops put their tasks' state changes, and the engine takes
/// them at its next request: a task step then costs the loop no round trip
/// to the engine per state. The loops run on the engine's OS thread, one at
/// a time, so a shared cell serves.
pub(crate) type TaskLog = Rc<RefCell<Vec<PendingState>>>;

impl Engine {
    /// The log event loops record task states in (made on first use).
    pub(crate) fn task_log(&mut self) -> TaskLog {
        self.task_log.get_or_insert_with(TaskLog::default).clone()
    }

    /// Records the task states the loops logged, in the order logged. Each
    /// row's changes come in time order; the log as a whole may step back.
    #[inline(never)]
    pub(super) fn drain_task_log(&mut self) {
        let Some(log) = self.task_log.as_ref() else {
            return;
        };
        if log.borrow().is_empty() {
            return;
        }
        let log = log.clone();
        let mut log = log.borrow_mut();
        for pending in log.drain(..) {
            let origin = pending.origin.map(|o| self.intern(pending.row, o));
            self.threads[pending.row.index()].state = pending.state;
            self.trace.states.push(StateChange::new(
                pending.time,
                pending.row,
                pending.state,
                None,
                origin,
            ));
        }
    }

    /// A row for a task of the loop running on `thread`, in its process:
    /// drawn, analysed and reported like a thread's, never scheduled. The
    /// task holds the machine's `task_memory` until it ends.
    pub(super) fn task_row(
        &mut self,
        thread: ThreadId,
        name: String,
        origin: Option<SourceRef>,
    ) -> Option<ThreadId> {
        let process = self.threads[thread.index()].process;
        if let Err(out) = self.footprint.take(process, self.machine.task_memory) {
            let at = origin.unwrap_or(SourceRef::Rust(std::panic::Location::caller()));
            self.misuse(thread, at, super::out_of_memory("task", out));
            return None;
        }
        self.memory_changed();
        let id = ThreadId(self.threads.len() as u32);
        self.threads.push(Thread::new(process, 0));
        self.lives.push(Lifecycle {
            body: None,
            value: None,
            joiners: WaitQueue::new(),
        });
        self.trace.threads.push(ThreadInfo {
            name,
            process,
            parent: Some(thread),
            created: self.now,
            priority: 0,
            nice: 0,
            task_of: Some(thread),
        });
        let origin = origin.map(|o| self.intern(id, o));
        self.record(id, ThreadState::Ready, None, origin);
        Some(id)
    }

    /// Draws a task's row in `state` from now on.
    pub(super) fn task_state(
        &mut self,
        loop_thread: ThreadId,
        row: ThreadId,
        state: ThreadState,
        origin: Option<SourceRef>,
    ) -> bool {
        if self.trace.threads.get(row.index()).and_then(|t| t.task_of) != Some(loop_thread) {
            let at = origin.unwrap_or(SourceRef::Rust(std::panic::Location::caller()));
            self.misuse(
                loop_thread,
                at,
                Misuse::Task(format!("{row} is not a task of this loop")),
            );
            return false;
        }
        let origin = origin.map(|o| self.intern(row, o));
        // No CPU: the loop thread's row accounts for the CPU time.
        self.record(row, state, None, origin);
        if state == ThreadState::Done {
            let process = self.threads[row.index()].process;
            self.footprint.free(process, self.machine.task_memory);
            self.memory_changed();
        }
        self.threads[loop_thread.index()].pending = Some(Response::Time(self.now));
        true
    }

    /// The loop on `thread` has tasks nothing can wake: it waits in its
    /// epoll with no timeout, and the run stalls (or ends deadlocked, when
    /// the tasks await each other in a cycle).
    pub(super) fn park(&mut self, cpu: usize, thread: ThreadId, epoll: ResourceId) {
        self.block(cpu, thread, BlockReason::Epoll(epoll), None);
    }

    /// Tasks (by row) await each other in a cycle: a deadlock, each step at
    /// the line where the task awaited the next.
    pub(super) fn await_cycle(&mut self, rows: &[ThreadId]) {
        if self.trace.deadlock.is_some() || rows.is_empty() {
            return;
        }
        let cycle = rows
            .iter()
            .enumerate()
            .map(|(i, &row)| WaitStep {
                thread: row,
                target: WaitTarget::Thread(rows[(i + 1) % rows.len()]),
                origin: self.trace.states.last_of(row).and_then(|c| c.origin()),
            })
            .collect();
        self.trace.deadlock = Some(Deadlock {
            time: self.now,
            cycle,
        });
    }
}
