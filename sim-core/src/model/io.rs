//! I/O devices and epoll readiness, as plain state machines.
//!
//! A `Device` serves requests first come, first served, on `channels`
//! parallel servers: a request that arrives while a channel is free is served
//! at once by the lowest-numbered free channel; otherwise it waits in one
//! FIFO queue and the next channel to finish takes it. A request of `b` bytes
//! is in service for [`DeviceOptions::service_time`]: `latency + b /
//! bandwidth`, the transfer rounded *up* to a whole nanosecond, so a transfer
//! of at least one byte never takes zero time.
//!
//! An `Epoll` is an interest set of [`PollKey`]s and a ready list. A key
//! that becomes ready moves from the set to the back of the ready list; a
//! wait takes the whole list (one-shot, like `EPOLLONESHOT`). Nothing here
//! scans the set: readiness finds its epoll through the key, so the cost of a
//! wait does not grow with the number of keys that are not ready.
//!
//! The kernel (`kernel::engine::io`) routes requests here and carries out
//! what these return (schedule a completion, wake a waiter).

use std::cmp::Reverse;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::ids::{ProcessId, ResourceId, ThreadId};
use crate::time::Span;

/// How a device serves requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceOptions {
    /// Time every request takes in service, whatever its size.
    pub latency: Span,
    /// Bytes per second one channel transfers; `None`: latency alone.
    pub bandwidth: Option<u64>,
    /// Requests served at once (at least 1).
    pub channels: u16,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            latency: Span::ZERO,
            bandwidth: None,
            channels: 1,
        }
    }
}

impl DeviceOptions {
    /// How long a request of `bytes` is in service: `latency` plus
    /// `bytes / bandwidth` seconds, rounded up to a whole nanosecond.
    ///
    /// ```
    /// use sim_core::{model::io::DeviceOptions, us, Span};
    /// let disk = DeviceOptions { latency: us(100), bandwidth: Some(1_000_000_000), channels: 1 };
    /// assert_eq!(disk.service_time(4096), us(100) + Span(4096));
    /// // 3 bytes at 1 GB/s is 3 ns; 1 byte at 3 B/s is a third of a second, rounded up.
    /// let slow = DeviceOptions { bandwidth: Some(3), ..disk };
    /// assert_eq!(slow.service_time(1), us(100) + Span(333_333_334));
    /// ```
    pub fn service_time(&self, bytes: u64) -> Span {
        let transfer = match self.bandwidth {
            Some(rate) if bytes > 0 => {
                let rate = rate.max(1);
                // 64-bit arithmetic when the product fits (below 18 GB).
                let nanos = match bytes.checked_mul(1_000_000_000) {
                    Some(scaled) => scaled.div_ceil(rate),
                    None => u64::try_from(
                        (u128::from(bytes) * 1_000_000_000).div_ceil(u128::from(rate)),
                    )
                    .unwrap_or(u64::MAX),
                };
                Span(nanos)
            }
            _ => Span::ZERO,
        };
        Span(self.latency.as_nanos().saturating_add(transfer.as_nanos()))
    }
}

/// Reads a bandwidth: bytes per second as "100MB/s", "1GiB/s", "10Gbit/s",
/// "500KB/s" or "1000B/s" (decimal k, M, G, T; binary Ki, Mi, Gi, Ti; "bit"
/// or "b" counts bits). The error says what was wrong.
///
/// ```
/// use sim_core::model::io::parse_bandwidth;
/// assert_eq!(parse_bandwidth("100MB/s"), Ok(100_000_000));
/// assert_eq!(parse_bandwidth("1GiB/s"), Ok(1 << 30));
/// assert_eq!(parse_bandwidth("10Gbit/s"), Ok(1_250_000_000));
/// assert!(parse_bandwidth("10 parsecs").is_err());
/// ```
pub fn parse_bandwidth(text: &str) -> Result<u64, String> {
    let unit_help = "write bytes per second as \"100MB/s\", \"1GiB/s\" or \"10Gbit/s\"";
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(amount) = compact.strip_suffix("/s") else {
        return Err(format!("bandwidth \"{text}\" has no \"/s\": {unit_help}"));
    };
    let digits = amount
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(amount.len());
    let (number, unit) = amount.split_at(digits);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("bandwidth \"{text}\" does not start with a number: {unit_help}"))?;
    let (scale, unit) = match unit.as_bytes().first() {
        Some(b'k' | b'K') => (1e3, &unit[1..]),
        Some(b'M') => (1e6, &unit[1..]),
        Some(b'G') => (1e9, &unit[1..]),
        Some(b'T') => (1e12, &unit[1..]),
        _ => (1.0, unit),
    };
    let (scale, unit) = match unit.strip_prefix('i') {
        Some(rest) if scale > 1.0 => {
            let binary = match scale as u64 {
                1_000 => 1u64 << 10,
                1_000_000 => 1 << 20,
                1_000_000_000 => 1 << 30,
                _ => 1 << 40,
            };
            (binary as f64, rest)
        }
        _ => (scale, unit),
    };
    let per_unit = match unit {
        "B" => 1.0,
        "bit" | "b" => 0.125,
        _ => {
            return Err(format!(
                "bandwidth \"{text}\" has an unknown unit \"{unit}/s\": {unit_help}"
            ))
        }
    };
    let bytes = number * scale * per_unit;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!(
            "bandwidth \"{text}\" must be at least 1 byte per second"
        ));
    }
    Ok(bytes.round() as u64)
}

/// A request submitted to a device, numbered in submission order across
/// the run; its record is `trace.io[id]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IoId(pub u32);

impl IoId {
    /// Its index in the trace's request list.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A submitted request as a thread holds it: `wait`, `ready` and epoll take
/// it; two handles are equal when they name the same request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoHandle {
    /// The request.
    pub id: IoId,
    /// The device it went to.
    pub device: ResourceId,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What epoll can wait on, compactly: a request's completion, or a channel
/// becoming readable (a value to receive) or writable (room to send).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PollKey {
    /// The request completed.
    Io(IoId),
    /// The channel has a value to receive.
    Readable(ResourceId),
    /// The channel has room for a value.
    Writable(ResourceId),
}

/// What epoll can wait on, as threads hold it and epoll returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pollable {
    /// A submitted request: ready once it completed.
    Io(IoHandle),
    /// A channel: ready while it holds a value to receive.
    Readable(ResourceId),
    /// A channel: ready while it has room to send.
    Writable(ResourceId),
}

impl Pollable {
    /// The key the kernel tracks it by.
    pub fn key(self) -> PollKey {
        match self {
            Pollable::Io(h) => PollKey::Io(h.id),
            Pollable::Readable(r) => PollKey::Readable(r),
            Pollable::Writable(r) => PollKey::Writable(r),
        }
    }
}

impl From<IoHandle> for Pollable {
    fn from(handle: IoHandle) -> Self {
        Pollable::Io(handle)
    }
}

/// A device declared in a simulation (see [`crate::Simulation::device`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceRef(pub(crate) ResourceId);

impl DeviceRef {
    /// The device's resource id.
    pub fn id(self) -> ResourceId {
        self.0
    }
}

/// An epoll instance created by a thread (see [`crate::Ctx::epoll`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EpollRef(pub(crate) ResourceId);

impl EpollRef {
    /// The epoll's resource id.
    pub fn id(self) -> ResourceId {
        self.0
    }
}

/// A device's queue and channels.
#[derive(Debug)]
pub(crate) struct Device {
    pub(crate) options: DeviceOptions,
    /// Free channels, lowest first.
    free: BinaryHeap<Reverse<u16>>,
    /// Requests waiting for a channel, oldest first.
    queue: VecDeque<IoId>,
}

impl Device {
    pub(crate) fn new(options: DeviceOptions) -> Device {
        let channels = options.channels.max(1);
        Device {
            options: DeviceOptions {
                channels,
                ..options
            },
            free: (0..channels).map(Reverse).collect(),
            queue: VecDeque::new(),
        }
    }

    /// A request arrives: the channel that serves it at once, or `None`
    /// when every channel is busy and it queues.
    pub(crate) fn arrive(&mut self, io: IoId) -> Option<u16> {
        match self.free.pop() {
            Some(Reverse(channel)) => Some(channel),
            None => {
                self.queue.push_back(io);
                None
            }
        }
    }

    /// `channel` finished its request: the queued request it serves next,
    /// or `None` when the queue is empty and the channel goes free.
    pub(crate) fn finish(&mut self, channel: u16) -> Option<IoId> {
        let next = self.queue.pop_front();
        if next.is_none() {
            self.free.push(Reverse(channel));
        }
        next
    }

    /// Requests waiting for a channel.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// An epoll instance: the keys it watches, those ready, and its waiter.
///
/// Requests are numbered in submission order, and a set watches a window of
/// recent ones: their states are kept in a ring indexed by id from the
/// oldest still in the set, one byte each, so adding, firing and taking a
/// request costs the same whatever the set's size. Channel keys are few and
/// kept in a map.
#[derive(Debug)]
pub(crate) struct Epoll {
    /// The process of the thread that created it: it may watch only that
    /// process's requests.
    pub(crate) process: ProcessId,
    /// The id of `requests[0]`.
    base: u32,
    /// The state of each request from `base` on: [`ABSENT`], [`WATCHED`] or
    /// [`READY`]; never starts with an absent one.
    requests: VecDeque<u8>,
    /// Requests in the set.
    request_count: usize,
    /// Channel keys in the set, with whether each is ready.
    channels: BTreeMap<PollKey, bool>,
    /// The ready keys, in the order they became ready.
    ready: VecDeque<PollKey>,
    /// The thread blocked in `wait`, if any.
    pub(crate) waiter: Option<ThreadId>,
    /// A wake-up of the waiter is scheduled at this instant.
    pub(crate) wake_pending: bool,
}

/// A request not in the set.
const ABSENT: u8 = 0;
/// A request in the set, not complete yet.
const WATCHED: u8 = 1;
/// A request in the set and in the ready list.
const READY: u8 = 2;

impl Epoll {
    pub(crate) fn new(process: ProcessId) -> Epoll {
        Epoll {
            process,
            base: 0,
            requests: VecDeque::new(),
            request_count: 0,
            channels: BTreeMap::new(),
            ready: VecDeque::new(),
            waiter: None,
            wake_pending: false,
        }
    }

    /// The state of request `id`.
    fn state(&self, id: IoId) -> u8 {
        id.0.checked_sub(self.base)
            .and_then(|i| self.requests.get(i as usize).copied())
            .unwrap_or(ABSENT)
    }

    /// Sets the state of request `id`, growing the window to hold it, and
    /// drops absent requests from its front.
    fn set_state(&mut self, id: IoId, state: u8) {
        if self.requests.is_empty() {
            self.base = id.0;
        }
        if id.0 < self.base {
            for _ in id.0..self.base {
                self.requests.push_front(ABSENT);
            }
            self.base = id.0;
        }
        let i = (id.0 - self.base) as usize;
        if i >= self.requests.len() {
            self.requests.resize(i + 1, ABSENT);
        }
        self.requests[i] = state;
        while self.requests.front() == Some(&ABSENT) {
            self.requests.pop_front();
            self.base += 1;
        }
    }

    /// Adds `key`, ready at once or not. False when it is already in.
    pub(crate) fn add(&mut self, key: PollKey, ready: bool) -> bool {
        match key {
            PollKey::Io(id) => {
                if self.state(id) != ABSENT {
                    return false;
                }
                self.set_state(id, if ready { READY } else { WATCHED });
                self.request_count += 1;
            }
            _ => match self.channels.entry(key) {
                Entry::Occupied(_) => return false,
                Entry::Vacant(slot) => {
                    slot.insert(ready);
                }
            },
        }
        if ready {
            self.ready.push_back(key);
        }
        true
    }

    /// `key` became ready: it moves to the ready list. False when this
    /// epoll was not watching it (removed meanwhile) or it was ready already.
    pub(crate) fn fire(&mut self, key: PollKey) -> bool {
        let fired = match key {
            PollKey::Io(id) => {
                let fired = self.state(id) == WATCHED;
                if fired {
                    self.set_state(id, READY);
                }
                fired
            }
            _ => match self.channels.get_mut(&key) {
                Some(ready @ false) => {
                    *ready = true;
                    true
                }
                _ => false,
            },
        };
        if fired {
            self.ready.push_back(key);
        }
        fired
    }

    /// Takes `key` out of the set; `Some(was ready)`, or `None` when it was
    /// not in.
    fn leave(&mut self, key: PollKey) -> Option<bool> {
        match key {
            PollKey::Io(id) => {
                let state = self.state(id);
                if state == ABSENT {
                    return None;
                }
                self.set_state(id, ABSENT);
                self.request_count -= 1;
                Some(state == READY)
            }
            _ => self.channels.remove(&key),
        }
    }

    /// Removes `key`, ready or not. False when it was not in.
    pub(crate) fn remove(&mut self, key: PollKey) -> bool {
        match self.leave(key) {
            None => false,
            Some(false) => true,
            Some(true) => {
                // Removing a ready key is rare: a scan of the ready list.
                self.ready.retain(|&k| k != key);
                true
            }
        }
    }

    /// Keys in the set, ready or not.
    pub(crate) fn len(&self) -> usize {
        self.request_count + self.channels.len()
    }

    /// Whether a key is ready.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Takes every ready key, in the order they became ready: they leave
    /// the set (one-shot).
    pub(crate) fn take_ready(&mut self) -> Vec<PollKey> {
        let keys: Vec<PollKey> = self.ready.drain(..).collect();
        for &key in &keys {
            self.leave(key);
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ms;

    #[test]
    fn a_transfer_rounds_up_and_latency_alone_needs_no_bandwidth() {
        let d = DeviceOptions {
            latency: ms(1),
            bandwidth: None,
            channels: 1,
        };
        assert_eq!(d.service_time(1_000_000), ms(1));
        let d = DeviceOptions {
            bandwidth: Some(1_000_000_000),
            ..d
        };
        assert_eq!(d.service_time(0), ms(1));
        assert_eq!(d.service_time(1), ms(1) + Span(1));
        let third = DeviceOptions {
            latency: Span::ZERO,
            bandwidth: Some(3_000_000_000),
            channels: 1,
        };
        // 1 byte at 3 GB/s is a third of a nanosecond: it still takes one.
        assert_eq!(third.service_time(1), Span(1));
        assert_eq!(third.service_time(3), Span(1));
        assert_eq!(third.service_time(4), Span(2));
        // Past 64-bit products (over 18 GB) the result is still exact.
        let huge = DeviceOptions {
            latency: Span::ZERO,
            bandwidth: Some(7),
            channels: 1,
        };
        assert_eq!(
            huge.service_time(70_000_000_000),
            Span(10_000_000_000_000_000_000)
        );
    }

    #[test]
    fn bandwidths_read_decimal_binary_and_bit_units() {
        assert_eq!(parse_bandwidth("1000B/s"), Ok(1000));
        assert_eq!(parse_bandwidth("500KB/s"), Ok(500_000));
        assert_eq!(parse_bandwidth("500kB/s"), Ok(500_000));
        assert_eq!(parse_bandwidth("2 MiB/s"), Ok(2 << 20));
        assert_eq!(parse_bandwidth("1.5GB/s"), Ok(1_500_000_000));
        assert_eq!(parse_bandwidth("100Mbit/s"), Ok(12_500_000));
        assert_eq!(parse_bandwidth("8b/s"), Ok(1));
        for bad in ["100MB", "fast/s", "100XB/s", "0B/s", "1bit/s", "-5MB/s"] {
            let error = parse_bandwidth(bad).unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn lowest_free_channel_serves_first_then_one_fifo_queue() {
        let mut d = Device::new(DeviceOptions {
            channels: 2,
            ..DeviceOptions::default()
        });
        assert_eq!(d.arrive(IoId(0)), Some(0));
        assert_eq!(d.arrive(IoId(1)), Some(1));
        assert_eq!(d.arrive(IoId(2)), None);
        assert_eq!(d.arrive(IoId(3)), None);
        assert_eq!(d.queued(), 2);
        // Channel 1 finishes first: it takes the oldest queued request.
        assert_eq!(d.finish(1), Some(IoId(2)));
        assert_eq!(d.finish(0), Some(IoId(3)));
        assert_eq!(d.finish(0), None);
        assert_eq!(d.arrive(IoId(4)), Some(0));
        assert_eq!(d.finish(1), None);
        assert_eq!(d.arrive(IoId(5)), Some(1));
    }

    #[test]
    fn epoll_moves_fired_keys_to_the_ready_list_in_order() {
        let mut ep = Epoll::new(ProcessId::MAIN);
        let (a, b, c) = (
            PollKey::Io(IoId(0)),
            PollKey::Io(IoId(1)),
            PollKey::Readable(ResourceId(3)),
        );
        assert!(ep.add(a, false));
        assert!(ep.add(b, false));
        assert!(!ep.add(b, false));
        assert!(ep.add(c, true));
        assert_eq!(ep.len(), 3);
        assert!(ep.fire(b));
        assert!(!ep.fire(b));
        assert_eq!(ep.take_ready(), vec![c, b]);
        assert!(!ep.has_ready());
        assert!(ep.remove(a));
        assert!(!ep.fire(a));
        assert_eq!(ep.len(), 0);
        // A ready key can be removed before it is taken.
        assert!(ep.add(a, true));
        assert!(ep.remove(a));
        assert!(!ep.has_ready());
        // Requests added out of order, far apart, and taken in any order.
        for id in [500, 3, 70_000, 4] {
            assert!(ep.add(PollKey::Io(IoId(id)), false));
        }
        assert!(!ep.add(PollKey::Io(IoId(70_000)), false));
        assert_eq!(ep.len(), 4);
        assert!(ep.fire(PollKey::Io(IoId(70_000))));
        assert!(ep.fire(PollKey::Io(IoId(3))));
        assert_eq!(
            ep.take_ready(),
            vec![PollKey::Io(IoId(70_000)), PollKey::Io(IoId(3))]
        );
        assert!(ep.remove(PollKey::Io(IoId(4))));
        assert!(!ep.remove(PollKey::Io(IoId(4))));
        assert_eq!(ep.len(), 1);
        assert!(ep.remove(PollKey::Io(IoId(500))));
        assert_eq!((ep.len(), ep.requests.len()), (0, 0));
    }

    /// The plain model the ring must agree with: a map and a list.
    #[derive(Default)]
    struct Reference {
        members: std::collections::BTreeMap<PollKey, bool>,
        ready: Vec<PollKey>,
    }

    proptest::proptest! {
        #[test]
        fn the_ring_of_request_states_agrees_with_a_plain_map(
            ops in proptest::collection::vec((0u8..4, 0u32..300, proptest::bool::ANY), 0..400)
        ) {
            let mut ep = Epoll::new(ProcessId::MAIN);
            let mut reference = Reference::default();
            for (op, id, flag) in ops {
                let key = if id % 50 == 49 { PollKey::Readable(ResourceId(id)) } else { PollKey::Io(IoId(id)) };
                match op {
                    0 => {
                        let fresh = !reference.members.contains_key(&key);
                        if fresh {
                            reference.members.insert(key, flag);
                            if flag { reference.ready.push(key); }
                        }
                        proptest::prop_assert_eq!(ep.add(key, flag), fresh);
                    }
                    1 => {
                        let fires = reference.members.get(&key) == Some(&false);
                        if fires {
                            reference.members.insert(key, true);
                            reference.ready.push(key);
                        }
                        proptest::prop_assert_eq!(ep.fire(key), fires);
                    }
                    2 => {
                        let was = reference.members.remove(&key);
                        if was == Some(true) { reference.ready.retain(|&k| k != key); }
                        proptest::prop_assert_eq!(ep.remove(key), was.is_some());
                    }
                    _ => {
                        let taken: Vec<PollKey> = std::mem::take(&mut reference.ready);
                        for k in &taken { reference.members.remove(k); }
                        proptest::prop_assert_eq!(ep.take_ready(), taken);
                    }
                }
                proptest::prop_assert_eq!(ep.len(), reference.members.len());
                proptest::prop_assert_eq!(ep.has_ready(), !reference.ready.is_empty());
            }
        }
    }
}
