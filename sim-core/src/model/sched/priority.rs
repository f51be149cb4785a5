//! "priority": strict, preemptive priorities with round robin within a level.

use std::collections::{BTreeMap, VecDeque};

use super::{ready_ties, slot, Enqueue, Policy, Ready};
use crate::ids::ThreadId;
use crate::model::thread::ThreadOptions;
use crate::time::{Span, Time};

/// Higher priority numbers run first; a thread that becomes ready preempts a
/// running thread of lower priority. A preempted thread keeps its place at the
/// head of its level.
pub(crate) struct Priority {
    quantum: Span,
    priority: Vec<i32>,
    levels: BTreeMap<i32, VecDeque<Ready>>,
    len: usize,
}

impl Priority {
    pub(crate) fn new(quantum: Span) -> Self {
        Priority {
            quantum,
            priority: Vec::new(),
            levels: BTreeMap::new(),
            len: 0,
        }
    }

    fn of(&self, thread: ThreadId) -> i32 {
        self.priority.get(thread.index()).copied().unwrap_or(0)
    }

    fn top(&self) -> Option<(&i32, &VecDeque<Ready>)> {
        self.levels.iter().next_back()
    }
}

impl Policy for Priority {
    fn add_thread(&mut self, thread: ThreadId, options: ThreadOptions) {
        *slot(&mut self.priority, thread) = options.priority;
    }

    fn enqueue(&mut self, thread: ThreadId, now: Time, why: Enqueue) {
        let level = self.levels.entry(self.of(thread)).or_default();
        match why {
            Enqueue::Preempted => level.push_front((thread, now, false)),
            _ => level.push_back((thread, now, why == Enqueue::Yielded)),
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn ties(&self) -> usize {
        self.top().map_or(0, |(_, queue)| ready_ties(queue))
    }

    fn tied_threads(&self, out: &mut Vec<ThreadId>) {
        out.clear();
        if let Some((_, queue)) = self.top() {
            out.extend(queue.iter().take(self.ties()).map(|e| e.0));
        }
    }

    fn head(&self) -> Option<ThreadId> {
        self.top().map(|(_, queue)| queue[0].0)
    }

    fn take(&mut self, index: usize) -> ThreadId {
        let mut entry = self.levels.last_entry().expect("a ready thread");
        let thread = entry
            .get_mut()
            .remove(index)
            .expect("index among the ties")
            .0;
        if entry.get().is_empty() {
            entry.remove();
        }
        self.len -= 1;
        thread
    }

    fn slice(&self, _thread: ThreadId) -> Option<Span> {
        Some(self.quantum)
    }

    fn charge(&mut self, _thread: ThreadId, _ran: Span) {}

    fn stopped(&mut self, _thread: ThreadId) {}

    fn rotate(&self, running: ThreadId) -> bool {
        self.top()
            .is_some_and(|(&level, _)| level >= self.of(running))
    }

    fn preempts(&self, waking: ThreadId, running: ThreadId) -> bool {
        self.of(waking) > self.of(running)
    }

    fn victim_rank(&self, running: ThreadId) -> i64 {
        -i64::from(self.of(running))
    }

    fn priority(&self, thread: ThreadId) -> i32 {
        self.of(thread)
    }

    fn set_priority(&mut self, thread: ThreadId, priority: i32) {
        let old = self.of(thread);
        if old == priority {
            return;
        }
        *slot(&mut self.priority, thread) = priority;
        let Some(level) = self.levels.get_mut(&old) else {
            return;
        };
        let Some(i) = level.iter().position(|e| e.0 == thread) else {
            return;
        };
        let entry = level.remove(i).expect("found above");
        if level.is_empty() {
            self.levels.remove(&old);
        }
        self.levels.entry(priority).or_default().push_back(entry);
    }
}
