//! What a Gantt chart draws of a trace's devices: per channel, the requests
//! in service and who submitted them; per device, how many requests wait
//! for a channel over time.
//!
//! The trace keeps one [`IoRecord`] per request. A request is in service
//! on its channel from `started` to `completed` (to the end of the chart if
//! it never completed) and queued from `submitted` to `started` (to the end
//! if it never started). Both come out as intervals in time order, ready for
//! the pixel merge, so a million requests cost a sort and a pass.
//!
//! Records are taken as they are, even from a hand-edited trace: requests
//! of unknown devices are skipped, a channel past the device's count adds a
//! lane, times running backwards give empty intervals (not drawn), and
//! requests overlapping on one channel are clipped to follow each other.

use std::collections::HashMap;

use super::palette::Shade;
use crate::ids::{ResourceId, ThreadId};
use crate::time::Time;
use crate::trace::{IoRecord, Trace};

/// Past this many devices, the rest are left out (and the notes say so).
pub(crate) const MAX_DEVICES: usize = 64;

/// An interval as the merge takes it: start, end, what to colour it by.
pub(crate) type Timed<K> = (Time, Time, K);

/// The intervals of one device.
pub(crate) struct DeviceSpans {
    /// Its name, as the trace's resources give it.
    pub(crate) name: String,
    /// Per channel, the requests in service and their submitters, in time
    /// order and not overlapping.
    pub(crate) channels: Vec<Vec<Timed<(ThreadId, Shade)>>>,
    /// How many requests wait for a channel, where at least one does: in
    /// time order, not overlapping, adjacent intervals of one length joined.
    pub(crate) queue: Vec<Timed<u32>>,
    /// Whether it is a thread or process pool's queue (no channels; its
    /// row is drawn even when no job waited).
    pub(crate) pool: bool,
    /// A pool's threads, drawn under its queue row: its workers in the
    /// order they started, then its manager and feeder threads.
    pub(crate) members: Vec<usize>,
}

impl DeviceSpans {
    /// The spans of the first [`MAX_DEVICES`] devices of `trace`, drawn up
    /// to `end`.
    pub(crate) fn of(trace: &Trace, end: Time) -> Vec<DeviceSpans> {
        let shown = &trace.devices[..trace.devices.len().min(MAX_DEVICES)];
        if shown.is_empty() {
            return pools(trace, end);
        }
        // Resource to device index; the first device of a resource wins,
        // should one repeat.
        let mut slot: HashMap<ResourceId, usize> = HashMap::with_capacity(shown.len());
        for (i, device) in shown.iter().enumerate() {
            slot.entry(device.resource).or_insert(i);
        }
        let mut devices: Vec<DeviceSpans> = shown
            .iter()
            .map(|d| DeviceSpans {
                name: trace.resource_name(d.resource).to_string(),
                channels: vec![Vec::new(); usize::from(d.options.channels.max(1))],
                queue: Vec::new(),
                pool: false,
                members: Vec::new(),
            })
            .collect();
        // Queue changes per device: +1 when a request starts to wait, -1
        // when it leaves for a channel.
        let mut changes: Vec<Vec<(Time, i32)>> = vec![Vec::new(); devices.len()];
        for record in &trace.io {
            let Some(&d) = slot.get(&record.device) else {
                continue;
            };
            let device = &mut devices[d];
            if let Some((start, channel)) = record.started {
                let stop = record.completed.unwrap_or(end).min(end);
                if start < stop {
                    let channel = usize::from(channel);
                    if channel >= device.channels.len() {
                        device.channels.resize(channel + 1, Vec::new());
                    }
                    device.channels[channel].push((
                        start,
                        stop,
                        (record.task.unwrap_or(record.thread), Shade::Service),
                    ));
                }
            }
            let (from, to) = waited(record, end);
            if from < to {
                changes[d].push((from, 1));
                changes[d].push((to, -1));
            }
        }
        for (device, changes) in devices.iter_mut().zip(changes) {
            for channel in &mut device.channels {
                in_order(channel);
            }
            device.queue = queue_lengths(changes);
        }
        devices.extend(pools(trace, end));
        devices
    }

    /// Whether the device has a queue lane: some request waited, or it is
    /// a pool.
    pub(crate) fn queued(&self) -> bool {
        self.pool || !self.queue.is_empty()
    }
}

/// The queue of each of the first [`MAX_DEVICES`] pools: how many jobs
/// wait for a worker over time.
fn pools(trace: &Trace, end: Time) -> Vec<DeviceSpans> {
    trace
        .pools
        .iter()
        .take(MAX_DEVICES)
        .map(|pool| {
            let mut changes = Vec::with_capacity(2 * pool.jobs.len());
            for job in &pool.jobs {
                let to = job.started.unwrap_or(end).min(end);
                if job.submitted < to {
                    changes.push((job.submitted, 1));
                    changes.push((to, -1));
                }
            }
            let members = pool
                .workers
                .iter()
                .chain(&pool.manager)
                .map(|t| t.index())
                .filter(|&t| t < trace.threads.len())
                .collect();
            DeviceSpans {
                name: pool.name.clone(),
                channels: Vec::new(),
                queue: queue_lengths(changes),
                pool: true,
                members,
            }
        })
        .collect()
}

/// When a request waited for a channel, up to `end`.
fn waited(record: &IoRecord, end: Time) -> (Time, Time) {
    let to = record.started.map_or(end, |(t, _)| t).min(end);
    (record.submitted, to)
}

/// Sorts one channel's requests by time and clips each to start no earlier
/// than the one before ends, dropping what that empties.
fn in_order<K>(list: &mut Vec<Timed<K>>) {
    list.sort_by_key(|&(start, end, _)| (start, end));
    let mut last = Time::ZERO;
    list.retain_mut(|(start, end, _)| {
        *start = (*start).max(last);
        last = last.max(*end);
        *start < *end
    });
}

/// Queue lengths over time from its changes (a time and +1 or -1): the
/// intervals where it is at least one.
fn queue_lengths(mut changes: Vec<(Time, i32)>) -> Vec<Timed<u32>> {
    changes.sort_unstable();
    let mut out: Vec<Timed<u32>> = Vec::new();
    let mut len: i64 = 0;
    let mut i = 0;
    while i < changes.len() {
        let t = changes[i].0;
        while i < changes.len() && changes[i].0 == t {
            len += i64::from(changes[i].1);
            i += 1;
        }
        let Some(&(next, _)) = changes.get(i) else {
            break;
        };
        if len <= 0 {
            continue;
        }
        let n = u32::try_from(len).unwrap_or(u32::MAX);
        match out.last_mut() {
            Some(last) if last.1 == t && last.2 == n => last.1 = next,
            _ => out.push((t, next, n)),
        }
    }
    out
}

/// The smallest and largest queue length over `[t0, t1)`, `None` when no
/// request waits then; `queue` as [`DeviceSpans::queue`] holds it.
pub(crate) fn queue_range(queue: &[Timed<u32>], t0: Time, t1: Time) -> Option<(u32, u32)> {
    let first = queue.partition_point(|&(_, end, _)| end <= t0);
    queue[first..]
        .iter()
        .take_while(|&&(start, _, _)| start < t1)
        .fold(None, |acc, &(_, _, n)| match acc {
            None => Some((n, n)),
            Some((lo, hi)) => Some((lo.min(n), hi.max(n))),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u64) -> Time {
        Time(n)
    }

    #[test]
    fn queue_lengths_follow_arrivals_and_departures() {
        // Waits 0..10, 2..6, 2..4 and 20..25.
        let changes = vec![
            (t(0), 1),
            (t(10), -1),
            (t(2), 1),
            (t(6), -1),
            (t(2), 1),
            (t(4), -1),
            (t(20), 1),
            (t(25), -1),
        ];
        assert_eq!(
            queue_lengths(changes),
            vec![
                (t(0), t(2), 1),
                (t(2), t(4), 3),
                (t(4), t(6), 2),
                (t(6), t(10), 1),
                (t(20), t(25), 1),
            ]
        );
        // One leaving as another arrives keeps one interval.
        let changes = vec![(t(0), 1), (t(5), -1), (t(5), 1), (t(9), -1)];
        assert_eq!(queue_lengths(changes), vec![(t(0), t(9), 1)]);
        assert_eq!(queue_lengths(Vec::new()), vec![]);
    }

    #[test]
    fn overlapping_requests_on_a_channel_are_clipped() {
        let mut list = vec![(t(5), t(8), 'b'), (t(0), t(6), 'a'), (t(6), t(7), 'c')];
        in_order(&mut list);
        assert_eq!(list, vec![(t(0), t(6), 'a'), (t(6), t(8), 'b')]);
    }

    #[test]
    fn queue_ranges_cover_the_intervals_they_touch() {
        let queue = vec![(t(0), t(2), 1), (t(2), t(4), 3), (t(6), t(10), 2)];
        assert_eq!(queue_range(&queue, t(0), t(2)), Some((1, 1)));
        assert_eq!(queue_range(&queue, t(1), t(7)), Some((1, 3)));
        assert_eq!(queue_range(&queue, t(4), t(6)), None);
        assert_eq!(queue_range(&queue, t(9), t(20)), Some((2, 2)));
    }
}
