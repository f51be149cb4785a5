//! Wait queues: the one way threads wait on anything.
//!
//! Every primitive that blocks threads (join now; mutexes, semaphores,
//! channels, devices and epoll later) keeps its waiters in a [`WaitQueue`], in
//! arrival order. Which waiter a release goes to is the kernel's decision,
//! taken through the chooser with [`super::ChoicePoint::Waiter`], so that
//! exploration can try every winner.

use std::collections::VecDeque;

use crate::ids::ThreadId;
use crate::time::Time;

/// A thread waiting, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    /// The waiting thread.
    pub thread: ThreadId,
    /// When it started waiting.
    pub since: Time,
}

/// Waiting threads in arrival order.
#[derive(Clone, Debug, Default)]
pub struct WaitQueue {
    waiters: VecDeque<Waiter>,
}

impl WaitQueue {
    /// An empty queue.
    pub fn new() -> Self {
        WaitQueue::default()
    }

    /// Adds a waiter at the back.
    pub fn push(&mut self, thread: ThreadId, since: Time) {
        self.waiters.push_back(Waiter { thread, since });
    }

    /// How many threads wait.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Whether no thread waits.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// The waiters, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Waiter> {
        self.waiters.iter()
    }

    /// Removes `thread` (a timeout or a cancelled wait); false if absent.
    pub fn remove(&mut self, thread: ThreadId) -> bool {
        match self.waiters.iter().position(|w| w.thread == thread) {
            Some(i) => {
                self.waiters.remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the waiter at `index` (0 is the oldest).
    pub fn take(&mut self, index: usize) -> Option<Waiter> {
        self.waiters.remove(index)
    }

    /// Removes every waiter, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = Waiter> + '_ {
        self.waiters.drain(..)
    }

    /// Writes the waiting threads, oldest first, into `out`.
    pub(crate) fn threads_into(&self, out: &mut Vec<ThreadId>) {
        out.clear();
        out.extend(self.waiters.iter().map(|w| w.thread));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_arrival_order_and_removes_by_thread() {
        let mut q = WaitQueue::new();
        for i in 0..4 {
            q.push(ThreadId(i), Time(u64::from(i)));
        }
        assert!(q.remove(ThreadId(1)));
        assert!(!q.remove(ThreadId(1)));
        assert_eq!(q.take(1).map(|w| w.thread), Some(ThreadId(2)));
        assert_eq!(
            q.drain().map(|w| w.thread).collect::<Vec<_>>(),
            vec![ThreadId(0), ThreadId(3)]
        );
        assert!(q.is_empty());
    }
}
