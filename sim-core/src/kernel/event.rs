//! The event queue and its total order.
//!
//! Events are ordered by `(time, seq)`, where `seq` grows by one with every
//! event scheduled. The key is unique, so the order is total: earlier times
//! first, and among events at the same time, the one scheduled first comes
//! first (FIFO). That FIFO order is only the *default*: the kernel looks at
//! every event of the earliest instant as a batch (in key order) and lets its
//! chooser pick which one to handle, so exploration can reorder same-instant
//! events without touching the queue.
//!
//! The queue is a calendar: one FIFO bucket per distinct pending instant, the
//! buckets in a map ordered by time. Events scheduled for the same instant
//! arrive in `seq` order, so appending to the instant's bucket keeps the key
//! order without storing `seq` at all; the earliest bucket *is* the batch.
//! Simulations have far fewer distinct pending instants than events (threads
//! wake on the same microsecond ticks), so this costs a small map lookup per
//! event where a binary heap over every event paid a full sift.

use std::collections::{BTreeMap, VecDeque};

use crate::time::Time;

/// Pending events by instant, each instant's events in the order scheduled.
pub(crate) struct EventQueue<E> {
    /// Non-empty buckets by time, except that the earliest may have been
    /// emptied by [`EventQueue::take`] (it is dropped at the next gather).
    buckets: BTreeMap<Time, VecDeque<E>>,
    /// Emptied buckets, kept for their allocation.
    spare: Vec<VecDeque<E>>,
}

impl<E> EventQueue<E> {
    pub(crate) fn new() -> Self {
        EventQueue {
            buckets: BTreeMap::new(),
            spare: Vec::new(),
        }
    }

    /// Schedules `event` at `time`, after every event already at `time`.
    pub(crate) fn push(&mut self, time: Time, event: E) {
        let spare = &mut self.spare;
        self.buckets
            .entry(time)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push_back(event);
    }

    /// Finds the earliest instant with a live event, dropping dead events
    /// (cancelled timers) at the head of its batch. Returns that instant and
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
        loop {
            let mut first = self.buckets.first_entry()?;
            let bucket = first.get_mut();
            while bucket.front().is_some_and(|event| !live(event)) {
                bucket.pop_front();
            }
            if !bucket.is_empty() {
                let options = bucket.len().min(window);
                return Some((*first.key(), options));
            }
            self.spare.push(first.remove());
        }
    }

    /// The event of the gathered batch at `index`, removed from the queue. It
    /// may be dead when `index > 0`: the caller checks and skips it.
    pub(crate) fn take(&mut self, index: usize) -> E {
        let mut first = self.buckets.first_entry().expect("a gathered batch");
        let bucket = first.get_mut();
        let event = if index == 0 {
            bucket.pop_front()
        } else {
            bucket.remove(index)
        };
        event.expect("index within the gathered batch")
    }

    /// The events of the gathered batch, in key order (only the window
    /// checked by [`EventQueue::gather`] is known to be live).
    pub(crate) fn batch(&self) -> impl Iterator<Item = &E> {
        self.buckets
            .first_key_value()
            .into_iter()
            .flat_map(|(_, bucket)| bucket.iter())
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
