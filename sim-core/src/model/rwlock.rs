//! A reader-writer lock's readers and waiters, kept so that what an
//! operation costs does not grow with how many threads hold or wait.
//!
//! A lock shared by 10,000 threads may have thousands of readers inside and
//! thousands of writers waiting (readers first starves writers): a read
//! unlock that searched the readers, and a grant that scanned the waiters
//! for a reader, made every operation cost the thread count. Here a reader
//! leaves in logarithmic time, and the waiting readers and writers are two
//! queues that remember their common arrival order (a sequence number), so
//! "is a writer waiting", "the first writer" and "every waiting reader" are
//! answered without looking at the other kind. Both keep arrival order for
//! what is listed (the wait-for graph, the waiters shown).

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::ids::ThreadId;
use crate::kernel::Waiter;

/// The readers inside, in the order they entered.
#[derive(Clone, Debug, Default)]
pub(crate) struct Readers {
    order: BTreeMap<u64, ThreadId>,
    /// Each reader's place in `order` (looked up, never iterated).
    place: HashMap<ThreadId, u64>,
    next: u64,
}

impl Readers {
    /// A reader enters.
    pub(crate) fn push(&mut self, thread: ThreadId) {
        self.order.insert(self.next, thread);
        self.place.insert(thread, self.next);
        self.next += 1;
    }

    /// A reader leaves; false if it was not inside.
    pub(crate) fn remove(&mut self, thread: ThreadId) -> bool {
        match self.place.remove(&thread) {
            Some(place) => {
                self.order.remove(&place);
                true
            }
            None => false,
        }
    }

    /// Whether `thread` is inside.
    pub(crate) fn contains(&self, thread: ThreadId) -> bool {
        self.place.contains_key(&thread)
    }

    /// Whether no reader is inside.
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The readers, in the order they entered.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ThreadId> + '_ {
        self.order.values().copied()
    }
}

/// Threads waiting for the lock: readers and writers apart, each queue in
/// arrival order, with a sequence number that orders them together.
#[derive(Clone, Debug, Default)]
pub(crate) struct RwWaiters {
    readers: VecDeque<(u64, Waiter)>,
    writers: VecDeque<(u64, Waiter)>,
    next: u64,
}

impl RwWaiters {
    /// A thread starts waiting, to write or to read.
    pub(crate) fn push(&mut self, waiter: Waiter, write: bool) {
        let queue = if write {
            &mut self.writers
        } else {
            &mut self.readers
        };
        queue.push_back((self.next, waiter));
        self.next += 1;
    }

    /// Whether no thread waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.readers.is_empty() && self.writers.is_empty()
    }

    /// Whether a writer waits.
    pub(crate) fn writer_waits(&self) -> bool {
        !self.writers.is_empty()
    }

    /// Whether a reader waits.
    pub(crate) fn reader_waits(&self) -> bool {
        !self.readers.is_empty()
    }

    /// The writer that has waited longest, removed.
    pub(crate) fn pop_writer(&mut self) -> Option<Waiter> {
        self.writers.pop_front().map(|(_, w)| w)
    }

    /// Every waiting reader, removed, in arrival order.
    pub(crate) fn drain_readers(&mut self) -> impl Iterator<Item = Waiter> + '_ {
        self.readers.drain(..).map(|(_, w)| w)
    }

    /// The longest waiter of either kind, removed, and whether it writes.
    pub(crate) fn pop_front(&mut self) -> Option<(Waiter, bool)> {
        let write = self.front_writes()?;
        let queue = if write {
            &mut self.writers
        } else {
            &mut self.readers
        };
        queue.pop_front().map(|(_, w)| (w, write))
    }

    /// Whether the longest waiter writes (`None`: nobody waits).
    pub(crate) fn front_writes(&self) -> Option<bool> {
        writer_first(self.readers.front(), self.writers.front())
    }

    /// Every waiter in arrival order, and whether it writes.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Waiter, bool)> + '_ {
        let mut readers = self.readers.iter().peekable();
        let mut writers = self.writers.iter().peekable();
        std::iter::from_fn(move || {
            let write = writer_first(readers.peek().copied(), writers.peek().copied())?;
            let next = if write {
                writers.next()
            } else {
                readers.next()
            };
            next.map(|(_, w)| (*w, write))
        })
    }
}

/// Of a reader and a writer at the heads of their queues, whether the
/// writer came first (`None`: both queues are empty).
fn writer_first(reader: Option<&(u64, Waiter)>, writer: Option<&(u64, Waiter)>) -> Option<bool> {
    match (reader, writer) {
        (Some((r, _)), Some((w, _))) => Some(w < r),
        (None, Some(_)) => Some(true),
        (Some(_), None) => Some(false),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Time;

    fn w(i: u32) -> Waiter {
        Waiter {
            thread: ThreadId(i),
            since: Time(u64::from(i)),
        }
    }

    #[test]
    fn readers_leave_in_any_order_and_list_in_entry_order() {
        let mut r = Readers::default();
        for i in 0..5 {
            r.push(ThreadId(i));
        }
        assert!(r.remove(ThreadId(2)));
        assert!(!r.remove(ThreadId(2)));
        assert!(r.contains(ThreadId(4)) && !r.contains(ThreadId(2)));
        r.push(ThreadId(2));
        let order: Vec<u32> = r.iter().map(|t| t.0).collect();
        assert_eq!(order, [0, 1, 3, 4, 2]);
    }

    #[test]
    fn waiters_keep_their_common_arrival_order() {
        let mut q = RwWaiters::default();
        for (i, write) in [(0, false), (1, true), (2, false), (3, true), (4, false)] {
            q.push(w(i), write);
        }
        let all: Vec<(u32, bool)> = q.iter().map(|(w, b)| (w.thread.0, b)).collect();
        assert_eq!(
            all,
            [(0, false), (1, true), (2, false), (3, true), (4, false)]
        );
        assert_eq!(q.front_writes(), Some(false));
        assert_eq!(
            q.pop_front().map(|(w, b)| (w.thread.0, b)),
            Some((0, false))
        );
        assert_eq!(q.front_writes(), Some(true));
        assert_eq!(q.pop_writer().map(|w| w.thread.0), Some(1));
        assert!(q.writer_waits() && q.reader_waits());
        let readers: Vec<u32> = q.drain_readers().map(|w| w.thread.0).collect();
        assert_eq!(readers, [2, 4]);
        assert_eq!(q.pop_front().map(|(w, b)| (w.thread.0, b)), Some((3, true)));
        assert!(q.is_empty() && q.pop_front().is_none());
    }
}
