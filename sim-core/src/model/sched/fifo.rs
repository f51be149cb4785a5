//! "fifo" and "rr": one queue in the order threads became ready.

use std::collections::VecDeque;

use super::{ready_ties, Enqueue, Policy, Ready};
use crate::ids::ThreadId;
use crate::model::thread::ThreadOptions;
use crate::time::{Span, Time};

/// First come first served; with a quantum, round robin.
pub(crate) struct Fifo {
    quantum: Option<Span>,
    /// Ready threads with the time they became ready.
    queue: VecDeque<Ready>,
}

impl Fifo {
    pub(crate) fn new(quantum: Option<Span>) -> Self {
        Fifo {
            quantum,
            queue: VecDeque::new(),
        }
    }
}

impl Policy for Fifo {
    fn add_thread(&mut self, _thread: ThreadId, _options: ThreadOptions) {}

    fn enqueue(&mut self, thread: ThreadId, now: Time, why: Enqueue) {
        match why {
            Enqueue::Preempted => self.queue.push_front((thread, now, false)),
            _ => self.queue.push_back((thread, now, why == Enqueue::Yielded)),
        }
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn ties(&self) -> usize {
        ready_ties(&self.queue)
    }

    fn tied_threads(&self, out: &mut Vec<ThreadId>) {
        out.clear();
        out.extend(self.queue.iter().take(self.ties()).map(|e| e.0));
    }

    fn head(&self) -> Option<ThreadId> {
        self.queue.front().map(|e| e.0)
    }

    fn take(&mut self, index: usize) -> ThreadId {
        let entry = if index == 0 {
            self.queue.pop_front()
        } else {
            self.queue.remove(index)
        };
        entry.expect("index among the ties").0
    }

    fn slice(&self, _thread: ThreadId) -> Option<Span> {
        self.quantum
    }

    fn charge(&mut self, _thread: ThreadId, _ran: Span) {}

    fn stopped(&mut self, _thread: ThreadId) {}

    fn rotate(&self, _running: ThreadId) -> bool {
        !self.queue.is_empty()
    }

    fn preemptive(&self) -> bool {
        false
    }

    fn preempts(&self, _waking: ThreadId, _running: ThreadId) -> bool {
        false
    }

    fn victim_rank(&self, _running: ThreadId) -> i64 {
        0
    }
}
