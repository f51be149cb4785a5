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
//! The queue is a radix heap, which fits a simulation clock: no event is ever
//! scheduled before the instant being handled, so every pending time is at
//! least that instant, `current`. An event at `current` joins the batch, a
//! FIFO. Any later event goes to the bucket of the highest bit in which its
//! time differs from `current`: a push is an `xor` and a count of leading
//! zeros, with no comparison with other events. When the batch runs dry,
//! the lowest non-empty bucket holds the earliest events; its smallest time
//! becomes `current`, and its events move to the batch or to lower buckets
//! (never higher: they agree with the new instant on every bit above the
//! bucket's). An event moves at most 64 times, and in practice once or twice.
//!
//! FIFO among equal times holds because a bucket is only ever refilled from
//! a higher one while it is empty, and is then appended to in the order of
//! scheduling: events of one time sit in every bucket in `seq` order, and
//! moving a bucket keeps that order.

use std::collections::VecDeque;

use crate::time::Time;

/// Pending events, earliest instant first, each instant's in the order
/// scheduled.
pub(crate) struct EventQueue<E> {
    /// The instant of the batch; every pending event is at or after it.
    current: Time,
    /// The events at `current`, in the order scheduled.
    batch: VecDeque<E>,
    /// `buckets[b]`: events whose time first differs from `current` at bit
    /// `b`, in the order scheduled.
    buckets: [Vec<(Time, E)>; 64],
    /// Bit `b` is set when `buckets[b]` is not empty.
    occupied: u64,
    /// `mins[b]`: the earliest time in `buckets[b]` (meaningful while it is
    /// occupied): the lowest occupied bucket's is the earliest pending.
    mins: [u64; 64],
}

impl<E> EventQueue<E> {
    pub(crate) fn new() -> Self {
        EventQueue {
            current: Time::ZERO,
            batch: VecDeque::new(),
            buckets: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
            mins: [u64::MAX; 64],
        }
    }

    /// Schedules `event` at `time`, after every event already at `time`.
    /// `time` is never before the instant last gathered.
    #[inline]
    pub(crate) fn push(&mut self, time: Time, event: E) {
        debug_assert!(time >= self.current, "an event scheduled in the past");
        let time = time.max(self.current);
        if time == self.current {
            self.batch.push_back(event);
        } else {
            let bucket = Self::bucket(self.current, time);
            self.buckets[bucket].push((time, event));
            if self.occupied & 1 << bucket == 0 || time.0 < self.mins[bucket] {
                self.mins[bucket] = time.0;
            }
            self.occupied |= 1 << bucket;
        }
    }

    /// The bucket of a time after `current`: the highest differing bit.
    #[inline(always)]
    fn bucket(current: Time, time: Time) -> usize {
        63 - (current.0 ^ time.0).leading_zeros() as usize
    }

    /// Makes the earliest pending instant the batch. False when nothing is
    /// pending.
    fn refill(&mut self) -> bool {
        if self.occupied == 0 {
            return false;
        }
        let lowest = self.occupied.trailing_zeros() as usize;
        self.occupied &= !(1 << lowest);
        let mut moving = std::mem::take(&mut self.buckets[lowest]);
        self.current = Time(self.mins[lowest]);
        for (time, event) in moving.drain(..) {
            self.push(time, event);
        }
        // Keep the allocation for the bucket's next events.
        self.buckets[lowest] = moving;
        true
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
            while self.batch.front().is_some_and(|event| !live(event)) {
                self.batch.pop_front();
            }
            if !self.batch.is_empty() {
                return Some((self.current, self.batch.len().min(window)));
            }
            if !self.refill() {
                return None;
            }
        }
    }

    /// The event of the gathered batch at `index`, removed from the queue. It
    /// may be dead when `index > 0`: the caller checks and skips it.
    pub(crate) fn take(&mut self, index: usize) -> E {
        let event = if index == 0 {
            self.batch.pop_front()
        } else {
            self.batch.remove(index)
        };
        event.expect("index within the gathered batch")
    }

    /// The time of the earliest pending event, dead or alive (`None`:
    /// nothing pending): a time no event can be handled before.
    #[inline]
    pub(crate) fn lower_bound(&self) -> Option<Time> {
        if !self.batch.is_empty() {
            return Some(self.current);
        }
        if self.occupied == 0 {
            return None;
        }
        Some(Time(self.mins[self.occupied.trailing_zeros() as usize]))
    }

    /// Whether events wait at the instant being handled (some may be dead).
    #[inline(always)]
    pub(crate) fn has_batch(&self) -> bool {
        !self.batch.is_empty()
    }

    /// The events of the gathered batch, in key order (only the window
    /// checked by [`EventQueue::gather`] is known to be live).
    pub(crate) fn batch(&self) -> impl Iterator<Item = &E> {
        self.batch.iter()
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
    fn the_lower_bound_is_never_after_the_earliest_event() {
        let mut q = EventQueue::new();
        assert_eq!(q.lower_bound(), None);
        for t in [1000u64, 37, 4096, 5000, 38] {
            q.push(Time(t), t as u32);
        }
        while let Some((time, _)) = q.gather(8, |_| true) {
            // Before taking: every pending event is at or after the bound.
            let bound = q.lower_bound().unwrap();
            assert!(bound <= time, "{bound:?} after {time:?}");
            q.take(0);
            if let Some(bound) = q.lower_bound() {
                let next = q.gather(8, |_| true).unwrap().0;
                assert!(bound <= next, "{bound:?} after {next:?}");
            }
        }
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

    /// One step of the model test: schedule an event some time after the
    /// current instant, or handle one of the current instant's first events.
    #[derive(Clone, Debug)]
    enum Op {
        Push(u64),
        Take(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            // Delays from 0 (the same instant) to far ahead, clustered so
            // that instants repeat.
            (0u64..4).prop_map(Op::Push),
            (0u64..1 << 40).prop_map(Op::Push),
            (0usize..3).prop_map(Op::Take),
        ]
    }

    proptest::proptest! {
        /// The radix heap hands out events in exactly the `(time, seq)`
        /// order of a sorted map, batch by batch.
        #[test]
        fn matches_a_sorted_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut queue = EventQueue::new();
            let mut model = std::collections::BTreeMap::new();
            let mut now = 0u64;
            for (seq, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(delay) => {
                        queue.push(Time(now + delay), seq);
                        model.insert((now + delay, seq), seq);
                    }
                    Op::Take(index) => {
                        let Some((time, count)) = queue.gather(8, |_| true) else {
                            proptest::prop_assert!(model.is_empty());
                            continue;
                        };
                        now = time.0;
                        let batch: Vec<usize> = model
                            .range((now, 0)..(now + 1, 0))
                            .map(|(_, &e)| e)
                            .collect();
                        proptest::prop_assert_eq!(model.keys().next().unwrap().0, now);
                        proptest::prop_assert_eq!(count, batch.len().min(8));
                        proptest::prop_assert_eq!(
                            queue.batch().copied().collect::<Vec<_>>(),
                            batch.clone()
                        );
                        let index = index.min(count - 1);
                        let taken = queue.take(index);
                        proptest::prop_assert_eq!(taken, batch[index]);
                        model.remove(&(now, taken));
                    }
                }
                // The bound is the earliest pending time, exactly.
                proptest::prop_assert_eq!(
                    queue.lower_bound().map(|t| t.0),
                    model.keys().next().map(|k| k.0)
                );
            }
            let mut rest = Vec::new();
            while let Some((time, _)) = queue.gather(8, |_| true) {
                rest.push((time.0, queue.take(0)));
            }
            let expected: Vec<(u64, usize)> = model.into_iter().map(|((t, _), e)| (t, e)).collect();
            proptest::prop_assert_eq!(rest, expected);
        }
    }
}
