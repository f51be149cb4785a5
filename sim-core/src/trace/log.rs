//! The state changes of a run, stored in a few bytes each.
//!
//! A long run records millions of state changes, and their memory was most
//! of its cost: the throughput benchmark's 4 million changes took 96 MB as
//! 24-byte records, and mapping fresh memory costs about half a millisecond
//! per megabyte here. A [`StateLog`] stores each change as a byte stream
//! that is usually 4 to 6 bytes long:
//!
//! - a header byte: the state's kind (5 bits) and three flags: same time as
//!   the change before, has a CPU, has an origin;
//! - unless the time is the same, the difference from the previous change's
//!   time (zigzag, so that hand-built logs may go back in time);
//! - the thread; the id the state carries, for states that carry one; the
//!   CPU and the origin when flagged.
//!
//! Numbers are LEB128 varints. Changes are read back in order with
//! [`StateLog::iter`] as [`StateChange`] values; a log serializes as the
//! list of its changes, so RON traces read and print as before.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::StateChange;
use crate::ids::ThreadId;
use crate::model::thread::{kind_carries_id, kind_is_done};
use crate::time::Time;

/// The most bytes one change takes: header, time, thread, id, CPU, origin.
const MAX_RECORD: usize = 1 + 10 + 5 + 5 + 3 + 5;

const KIND: u8 = 0x1f;
const SAME_TIME: u8 = 0x80;
const HAS_CPU: u8 = 0x40;
const HAS_ORIGIN: u8 = 0x20;

/// Every state change of a run, in the order recorded, compactly encoded.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StateLog {
    bytes: Vec<u8>,
    len: usize,
    /// The time of the last change pushed, which the next one is relative to.
    last_time: Time,
    /// How many changes go to done, and the latest of their times: the
    /// makespan without a pass over the log.
    done: usize,
    last_done: Time,
}

impl StateLog {
    /// An empty log.
    pub fn new() -> StateLog {
        StateLog::default()
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes its changes take.
    pub fn encoded_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The changes, in the order recorded.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            bytes: &self.bytes,
            time: Time::ZERO,
            left: self.len,
        }
    }

    /// How many changes are to [`ThreadState::Done`](crate::ThreadState::Done),
    /// and the latest time of one (zero when none is).
    pub fn done(&self) -> (usize, Time) {
        (self.done, self.last_done)
    }

    /// The last change recorded for `thread`, if any.
    pub fn last_of(&self, thread: ThreadId) -> Option<StateChange> {
        self.iter().filter(|c| c.thread() == thread).last()
    }

    /// Appends a change.
    ///
    /// The bytes go straight into the log's spare room, after one check
    /// that a record fits: building the record aside and copying it in cost
    /// a call to memmove per change (11% of the throughput benchmark), and
    /// pushing byte by byte checked the capacity at every byte (a push took
    /// 87 instructions; now about 68).
    #[inline]
    pub fn push(&mut self, change: StateChange) {
        let start = self.bytes.len();
        self.bytes.reserve(MAX_RECORD);
        let spare = &mut self.bytes.spare_capacity_mut()[..MAX_RECORD];
        let mut record = Record { spare, at: 1 };
        let mut header = change.kind & KIND;
        if change.time == self.last_time {
            header |= SAME_TIME;
        } else {
            let delta = change.time.0.wrapping_sub(self.last_time.0) as i64;
            record.put(zigzag(delta));
        }
        record.put(u64::from(change.thread.0));
        if kind_carries_id(change.kind) {
            record.put(u64::from(change.payload));
        }
        if change.cpu != u16::MAX {
            header |= HAS_CPU;
            record.put(u64::from(change.cpu));
        }
        if change.origin != 0 {
            header |= HAS_ORIGIN;
            record.put(u64::from(change.origin - 1));
        }
        record.spare[0].write(header);
        let written = record.at;
        // SAFETY: `Record` wrote bytes `0..written` of the spare room, each
        // once, and `written <= MAX_RECORD`, the room reserved.
        unsafe { self.bytes.set_len(start + written) };
        self.len += 1;
        self.last_time = change.time;
        if kind_is_done(change.kind) {
            self.done += 1;
            self.last_done = self.last_done.max(change.time);
        }
    }

    /// Reserves room for about `changes` more changes.
    pub fn reserve(&mut self, changes: usize) {
        self.bytes.reserve(changes * 6);
    }
}

/// A record being written into a log's spare room: the bytes written so
/// far are `spare[..at]`.
struct Record<'a> {
    spare: &'a mut [std::mem::MaybeUninit<u8>],
    at: usize,
}

impl Record<'_> {
    /// Appends `value` as a varint.
    #[inline(always)]
    fn put(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.spare[self.at].write(value as u8 | 0x80);
            self.at += 1;
            value >>= 7;
        }
        self.spare[self.at].write(value as u8);
        self.at += 1;
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

/// The changes of a [`StateLog`], in order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    bytes: &'a [u8],
    time: Time,
    left: usize,
}

impl Iter<'_> {
    /// Reads a varint; the log wrote it, so it is well formed.
    #[inline(always)]
    fn take(&mut self) -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.bytes[0];
            self.bytes = &self.bytes[1..];
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
            shift += 7;
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = StateChange;

    #[inline]
    fn next(&mut self) -> Option<StateChange> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let header = self.bytes[0];
        self.bytes = &self.bytes[1..];
        if header & SAME_TIME == 0 {
            let delta = unzigzag(self.take());
            self.time = Time(self.time.0.wrapping_add(delta as u64));
        }
        let kind = header & KIND;
        let thread = ThreadId(self.take() as u32);
        let payload = if kind_carries_id(kind) {
            self.take() as u32
        } else {
            0
        };
        let cpu = if header & HAS_CPU != 0 {
            self.take() as u16
        } else {
            u16::MAX
        };
        let origin = if header & HAS_ORIGIN != 0 {
            self.take() as u32 + 1
        } else {
            0
        };
        Some(StateChange {
            time: self.time,
            thread,
            origin,
            payload,
            cpu,
            kind,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a StateLog {
    type Item = StateChange;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<StateChange> for StateLog {
    fn from_iter<I: IntoIterator<Item = StateChange>>(changes: I) -> StateLog {
        let mut log = StateLog::new();
        log.extend(changes);
        log
    }
}

impl Extend<StateChange> for StateLog {
    fn extend<I: IntoIterator<Item = StateChange>>(&mut self, changes: I) {
        for change in changes {
            self.push(change);
        }
    }
}

impl From<Vec<StateChange>> for StateLog {
    fn from(changes: Vec<StateChange>) -> StateLog {
        changes.into_iter().collect()
    }
}

impl fmt::Debug for StateLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for StateLog {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for StateLog {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StateLog, D::Error> {
        Ok(Vec::<StateChange>::deserialize(deserializer)?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CpuId, OriginId, ResourceId};
    use crate::model::thread::{BlockReason, ThreadState};
    use proptest::prelude::*;

    fn state() -> impl Strategy<Value = ThreadState> {
        prop_oneof![
            Just(ThreadState::Ready),
            Just(ThreadState::Switch),
            Just(ThreadState::Running),
            Just(ThreadState::Done),
            Just(ThreadState::Spawn),
            any::<u32>().prop_map(|r| ThreadState::Spin(ResourceId(r))),
            Just(ThreadState::Blocked(BlockReason::Sleep)),
            any::<u32>().prop_map(|t| ThreadState::Blocked(BlockReason::Join(ThreadId(t)))),
            any::<u32>().prop_map(|r| ThreadState::Blocked(BlockReason::Lock(ResourceId(r)))),
            any::<u32>().prop_map(|r| ThreadState::Blocked(BlockReason::Epoll(ResourceId(r)))),
        ]
    }

    fn change() -> impl Strategy<Value = StateChange> {
        (
            prop_oneof![0u64..5, any::<u64>()],
            any::<u32>(),
            state(),
            proptest::option::of(0u16..u16::MAX),
            proptest::option::of(0u32..u32::MAX),
        )
            .prop_map(|(time, thread, state, cpu, origin)| {
                StateChange::new(
                    Time(time),
                    ThreadId(thread),
                    state,
                    cpu.map(CpuId),
                    origin.map(OriginId),
                )
            })
    }

    proptest! {
        /// Whatever goes in comes out, in order: times going back and forth,
        /// the largest ids, every kind of state.
        #[test]
        fn reads_back_what_was_pushed(changes in proptest::collection::vec(change(), 0..100)) {
            let log: StateLog = changes.iter().copied().collect();
            prop_assert_eq!(log.len(), changes.len());
            prop_assert_eq!(log.iter().collect::<Vec<_>>(), changes.clone());
            // It serializes as the list of its changes.
            let text = ron::to_string(&log).unwrap();
            prop_assert_eq!(&text, &ron::to_string(&changes).unwrap());
            prop_assert_eq!(ron::from_str::<StateLog>(&text).unwrap(), log);
        }
    }

    #[test]
    fn a_typical_change_takes_a_few_bytes() {
        let mut log = StateLog::new();
        for i in 0..1000u64 {
            let thread = ThreadId((i % 1000) as u32);
            let time = Time(i / 2 * 1000);
            log.push(StateChange::new(
                time,
                thread,
                ThreadState::Running,
                Some(CpuId(2)),
                None,
            ));
        }
        assert!(log.encoded_bytes() <= 6 * 1000, "{}", log.encoded_bytes());
        assert_eq!(log.last_of(ThreadId(999)).unwrap().time(), Time(499_000));
    }
}
