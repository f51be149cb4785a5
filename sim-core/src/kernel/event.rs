//! The event queue and its total order.
//!
//! Events are kept in a binary heap keyed by `(time, seq)`, where `seq` grows
//! by one with every event scheduled. The key is unique, so the order is total:
//! earlier times first, and among events at the same time, the one scheduled
//! first comes first (FIFO). That FIFO order is only the *default*: the kernel
//! gathers every event of the earliest instant into a batch (in key order) and
//! lets its chooser pick which one to handle, so exploration can reorder
//! same-instant events without touching the queue.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::time::Time;

struct Entry<E> {
    /// `time << 64 | seq`: one integer comparison orders entries.
    key: u128,
    event: E,
}

impl<E> Entry<E> {
    fn time(&self) -> Time {
        Time((self.key >> 64) as u64)
    }
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the smallest key.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// Pending events in `(time, seq)` order, with a batch of the current instant.
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    /// Events of the earliest instant, in key order, drawn out of the heap.
    batch: VecDeque<Entry<E>>,
    next_seq: u64,
}

impl<E> EventQueue<E> {
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            batch: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// Schedules `event` at `time`.
    pub(crate) fn push(&mut self, time: Time, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            key: (u128::from(time.0) << 64) | u128::from(seq),
            event,
        });
    }

    /// Gathers every event of the earliest instant into the batch, dropping
    /// dead events (cancelled timers) at its head. Returns that instant and
    /// how many events lead the batch, at most `window`: the options of a
    /// same-instant choice. Only the head is checked for liveness, so a later
    /// option may turn out dead when taken (see [`EventQueue::take`]); bounding
    /// the window keeps an instant with 100,000 events linear, not quadratic.
    /// `None` when no live event is left.
    pub(crate) fn gather(
        &mut self,
        window: usize,
        mut live: impl FnMut(&E) -> bool,
    ) -> Option<(Time, usize)> {
        while self.batch.front().is_some_and(|entry| !live(&entry.event)) {
            self.batch.pop_front();
        }
        if self.batch.is_empty() {
            loop {
                let first = self.heap.pop()?;
                if live(&first.event) {
                    self.batch.push_back(first);
                    break;
                }
            }
        }
        let time = self.batch[0].time();
        while self.heap.peek().is_some_and(|e| e.time() == time) {
            let entry = self.heap.pop().expect("peeked");
            self.batch.push_back(entry);
        }
        Some((time, self.batch.len().min(window)))
    }

    /// The event of the gathered batch at `index`, removed from the queue. It
    /// may be dead when `index > 0`: the caller checks and skips it.
    pub(crate) fn take(&mut self, index: usize) -> E {
        self.batch
            .remove(index)
            .expect("index within the gathered batch")
            .event
    }

    /// The events of the gathered batch, in key order (only the window
    /// checked by [`EventQueue::gather`] is known to be live).
    pub(crate) fn batch(&self) -> impl Iterator<Item = &E> {
        self.batch.iter().map(|entry| &entry.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut EventQueue<u32>) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        while let Some((t, _)) = q.gather(8, |_| true) {
            out.push((t.0, q.take(0)));
        }
        out
    }

    #[test]
    fn earlier_first_then_fifo_among_equal_times() {
        let mut q = EventQueue::new();
        for (t, e) in [(5, 1), (3, 2), (5, 3), (3, 4), (0, 5)] {
            q.push(Time(t), e);
        }
        assert_eq!(drain(&mut q), vec![(0, 5), (3, 2), (3, 4), (5, 1), (5, 3)]);
    }

    #[test]
    fn batch_holds_the_whole_instant_and_late_arrivals_join_it() {
        let mut q = EventQueue::new();
        q.push(Time(1), 10);
        q.push(Time(1), 11);
        q.push(Time(2), 20);
        assert_eq!(q.gather(8, |_| true), Some((Time(1), 2)));
        assert_eq!(q.take(1), 11);
        q.push(Time(1), 12);
        assert_eq!(q.gather(8, |_| true), Some((Time(1), 2)));
        assert_eq!(q.batch().copied().collect::<Vec<_>>(), vec![10, 12]);
    }

    #[test]
    fn the_window_bounds_the_options_of_a_crowded_instant() {
        let mut q = EventQueue::new();
        for e in 0..100 {
            q.push(Time(1), e);
        }
        assert_eq!(q.gather(8, |_| true), Some((Time(1), 8)));
        assert_eq!(q.take(7), 7);
        assert_eq!(q.gather(8, |_| true), Some((Time(1), 8)));
    }

    #[test]
    fn dead_events_are_dropped() {
        let mut q = EventQueue::new();
        for e in 0..6 {
            q.push(Time(e as u64 / 2), e);
        }
        let mut out = Vec::new();
        while q.gather(8, |e| e % 2 == 0).is_some() {
            out.push(q.take(0));
        }
        // Only the head is checked: the caller skips dead events it takes.
        assert_eq!(out, vec![0, 2, 4]);
    }
}
