//! Per synchronization resource: how often it was taken, how often a thread
//! had to wait for it, how long threads waited and held it; channel traffic
//! and condition-variable notifications, lost ones included; the sets of an
//! event and the signals of a countdown, and the waits they ended.
//!
//! A hold runs from an acquisition to the release that pairs with it: the
//! releasing thread's oldest outstanding acquisition of that resource, or,
//! when it holds none (a semaphore released by another thread), the oldest
//! outstanding acquisition of any thread. A hold never released lasts until
//! the end of the run. A release that pairs with nothing is ignored.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::ThreadId;
use crate::time::{Span, Time};
use crate::trace::{ResourceKind, SyncAction, Trace};

/// What happened to one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStats {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: ResourceKind,
    /// Times it was taken (locks, read and write locks, permits), or waited
    /// for (events and countdowns: the waits that ended, at once or not).
    pub acquisitions: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    /// Wait per acquisition, uncontended ones (zero) included.
    pub mean_wait: Span,
    /// The longest wait for it.
    pub max_wait: Span,
    /// Hold per acquisition.
    pub mean_hold: Span,
    /// The longest hold.
    pub max_hold: Span,
    /// Values sent into it (channels).
    pub sends: u64,
    /// Values received from it (channels).
    pub receives: u64,
    /// Notifications (condition variables), sets (events), signals
    /// (countdowns).
    pub notifies: u64,
    /// Notifications that found no waiter.
    pub lost_notifies: u64,
}

impl ResourceStats {
    /// Whether it is taken and held (mutex, spinlock, semaphore, rwlock,
    /// barrier) rather than a channel, a condition variable, an event or a
    /// countdown.
    pub fn is_held(&self) -> bool {
        !matches!(
            self.kind,
            ResourceKind::Channel
                | ResourceKind::Condvar
                | ResourceKind::Event
                | ResourceKind::Countdown
        )
    }
}

/// Statistics of every synchronization resource of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStats {
    /// Per synchronization resource, in declaration order (devices and
    /// epoll instances are not synchronization: see [`crate::analysis::io`]).
    pub resources: Vec<ResourceStats>,
}

/// Totals of one resource while scanning.
#[derive(Default)]
struct Scan {
    wait: Span,
    hold: Span,
    /// Acquisitions not yet released: (thread, when), oldest first.
    outstanding: Vec<(ThreadId, Time)>,
}

impl LockStats {
    /// Derives the statistics of `trace`'s resources from its sync events.
    /// Events on resources the trace does not list are ignored.
    pub fn from_trace(trace: &Trace) -> LockStats {
        // Where each resource id's statistics are, for sync resources.
        let mut place = Vec::with_capacity(trace.resources.len());
        let mut count = 0;
        for info in &trace.resources {
            place.push((info.kind.is_sync() && !info.internal).then(|| {
                count += 1;
                count - 1
            }));
        }
        let mut resources: Vec<ResourceStats> = trace
            .resources
            .iter()
            .filter(|info| info.kind.is_sync() && !info.internal)
            .map(|info| ResourceStats {
                name: info.name.clone(),
                kind: info.kind,
                acquisitions: 0,
                contended: 0,
                mean_wait: Span::ZERO,
                max_wait: Span::ZERO,
                mean_hold: Span::ZERO,
                max_hold: Span::ZERO,
                sends: 0,
                receives: 0,
                notifies: 0,
                lost_notifies: 0,
            })
            .collect();
        let mut scans: Vec<Scan> = resources.iter().map(|_| Scan::default()).collect();
        let hold = |stats: &mut ResourceStats, scan: &mut Scan, length: Span| {
            scan.hold += length;
            stats.max_hold = stats.max_hold.max(length);
        };
        for event in &trace.sync {
            let Some(&Some(i)) = place.get(event.resource.index()) else {
                continue;
            };
            let (Some(stats), Some(scan)) = (resources.get_mut(i), scans.get_mut(i)) else {
                continue;
            };
            match event.action {
                SyncAction::Acquired { waited, .. } => {
                    stats.acquisitions += 1;
                    if !waited.is_zero() {
                        stats.contended += 1;
                    }
                    scan.wait += waited;
                    stats.max_wait = stats.max_wait.max(waited);
                    if stats.is_held() {
                        scan.outstanding.push((event.thread, event.time));
                    }
                }
                SyncAction::Released => {
                    let own = scan
                        .outstanding
                        .iter()
                        .position(|&(t, _)| t == event.thread);
                    if let Some(k) = own.or((!scan.outstanding.is_empty()).then_some(0)) {
                        let (_, since) = scan.outstanding.remove(k);
                        hold(stats, scan, event.time - since);
                    }
                }
                SyncAction::Sent => stats.sends += 1,
                SyncAction::Received => stats.receives += 1,
                SyncAction::Notified { woke } => {
                    stats.notifies += 1;
                    if woke == 0 {
                        stats.lost_notifies += 1;
                    }
                }
            }
        }
        for (stats, mut scan) in resources.iter_mut().zip(scans) {
            for (_, since) in std::mem::take(&mut scan.outstanding) {
                hold(stats, &mut scan, trace.end - since);
            }
            let mean = |total: Span| {
                Span(
                    total
                        .as_nanos()
                        .checked_div(stats.acquisitions)
                        .unwrap_or(0),
                )
            };
            stats.mean_wait = mean(scan.wait);
            stats.mean_hold = mean(scan.hold);
        }
        LockStats { resources }
    }

    /// The statistics of the resource with this name.
    pub fn resource(&self, name: &str) -> Option<&ResourceStats> {
        self.resources.iter().find(|r| r.name == name)
    }
}

impl fmt::Display for LockStats {
    /// A table of the resources that are taken and held, then one line per
    /// channel (sent/received) and per condition variable (notifies, lost),
    /// under the table's header or, with no held resource, a header of their
    /// own. Nothing at all when the run had no resources.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .resources
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let held: Vec<&ResourceStats> = self.resources.iter().filter(|r| r.is_held()).collect();
        if !held.is_empty() {
            writeln!(
                f,
                "{:<width$}  {:<9}  {:>12}  {:>9}  {:>12}  {:>12}  {:>12}  {:>12}",
                "resource",
                "kind",
                "acquisitions",
                "contended",
                "mean wait",
                "max wait",
                "mean hold",
                "max hold"
            )?;
        }
        let others = self.resources.iter().any(|r| !r.is_held());
        if held.is_empty() && others {
            writeln!(f, "{:<width$}  {:<9}  activity", "resource", "kind")?;
        }
        for r in held {
            writeln!(
                f,
                "{:<width$}  {:<9}  {:>12}  {:>9}  {:>12}  {:>12}  {:>12}  {:>12}",
                r.name,
                r.kind.name(),
                r.acquisitions,
                r.contended,
                r.mean_wait.to_string(),
                r.max_wait.to_string(),
                r.mean_hold.to_string(),
                r.max_hold.to_string()
            )?;
        }
        for r in self.resources.iter().filter(|r| !r.is_held()) {
            let waits = || {
                format!(
                    "waits {} ({} blocked, max {})",
                    r.acquisitions, r.contended, r.max_wait
                )
            };
            let what = match r.kind {
                ResourceKind::Channel => format!("sent {}, received {}", r.sends, r.receives),
                ResourceKind::Event => format!("sets {}, {}", r.notifies, waits()),
                ResourceKind::Countdown => format!("signals {}, {}", r.notifies, waits()),
                _ => format!("notifies {} (lost {})", r.notifies, r.lost_notifies),
            };
            writeln!(f, "{:<width$}  {:<9}  {what}", r.name, r.kind.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::TraceBuilder;
    use crate::model::machine::Machine;
    use crate::time::ms;

    fn acquired(waited_ms: u64) -> SyncAction {
        SyncAction::Acquired {
            waited: ms(waited_ms),
            shared: false,
        }
    }

    #[test]
    fn waits_and_holds_of_three_acquisitions_one_contended() {
        let mut b = TraceBuilder::new(Machine::default());
        let m = b.resource("m", ResourceKind::Mutex);
        let (x, y) = (b.thread("x"), b.thread("y"));
        b.sync(0, x, m, acquired(0))
            .sync(4, x, m, SyncAction::Released)
            .sync(4, y, m, acquired(3))
            .sync(5, y, m, SyncAction::Released)
            .sync(10, x, m, acquired(0))
            .sync(16, x, m, SyncAction::Released);
        let stats = LockStats::from_trace(&b.end(20));
        let r = stats.resource("m").unwrap();
        assert_eq!((r.acquisitions, r.contended), (3, 1));
        assert_eq!((r.mean_wait, r.max_wait), (ms(1), ms(3)));
        assert_eq!(
            (r.mean_hold, r.max_hold),
            (Span(ms(11).as_nanos() / 3), ms(6))
        );
    }

    #[test]
    fn mean_wait_is_over_all_acquisitions() {
        let mut b = TraceBuilder::new(Machine::default());
        let m = b.resource("m", ResourceKind::Spinlock);
        let x = b.thread("x");
        b.sync(0, x, m, acquired(0))
            .sync(1, x, m, SyncAction::Released)
            .sync(6, x, m, acquired(5))
            .sync(7, x, m, SyncAction::Released)
            .sync(7, x, m, acquired(0))
            .sync(8, x, m, SyncAction::Released);
        let r = &LockStats::from_trace(&b.end(8)).resources[0];
        assert_eq!((r.acquisitions, r.contended), (3, 1));
        assert_eq!(r.mean_wait, Span(1_666_666));
        assert_eq!(r.max_wait, ms(5));
        assert_eq!((r.mean_hold, r.max_hold), (ms(1), ms(1)));
    }

    #[test]
    fn a_hold_never_released_lasts_until_the_end() {
        let mut b = TraceBuilder::new(Machine::default());
        let m = b.resource("m", ResourceKind::Mutex);
        let x = b.thread("x");
        b.sync(2, x, m, acquired(0));
        let r = &LockStats::from_trace(&b.end(12)).resources[0];
        assert_eq!((r.mean_hold, r.max_hold), (ms(10), ms(10)));
    }

    #[test]
    fn a_release_pairs_with_the_releasers_oldest_hold_first() {
        let mut b = TraceBuilder::new(Machine::default());
        let rw = b.resource("rw", ResourceKind::RwLock);
        let (x, y) = (b.thread("x"), b.thread("y"));
        let read = SyncAction::Acquired {
            waited: Span::ZERO,
            shared: true,
        };
        b.sync(0, x, rw, read)
            .sync(1, y, rw, read)
            .sync(2, y, rw, SyncAction::Released)
            .sync(9, x, rw, SyncAction::Released);
        let r = &LockStats::from_trace(&b.end(10)).resources[0];
        // y held 1ms, x 9ms; pairing y's release with x's hold would give 2ms and 8ms.
        assert_eq!((r.mean_hold, r.max_hold), (ms(5), ms(9)));
    }

    #[test]
    fn a_semaphore_released_by_another_thread_ends_the_oldest_hold() {
        let mut b = TraceBuilder::new(Machine::default());
        let s = b.resource("slots", ResourceKind::Semaphore);
        let (x, y, z) = (b.thread("x"), b.thread("y"), b.thread("z"));
        b.sync(0, x, s, acquired(0))
            .sync(1, y, s, acquired(0))
            .sync(4, z, s, SyncAction::Released)
            .sync(4, z, s, SyncAction::Released)
            // Nothing left to release: ignored.
            .sync(5, z, s, SyncAction::Released);
        let r = &LockStats::from_trace(&b.end(10)).resources[0];
        assert_eq!(r.acquisitions, 2);
        assert_eq!((r.mean_hold, r.max_hold), (Span(3_500_000), ms(4)));
    }

    #[test]
    fn channels_count_traffic_and_condvars_lost_notifies() {
        let mut b = TraceBuilder::new(Machine::default());
        let ch = b.resource("jobs", ResourceKind::Channel);
        let cv = b.resource("ready", ResourceKind::Condvar);
        let x = b.thread("x");
        b.sync(0, x, ch, SyncAction::Sent)
            .sync(1, x, ch, SyncAction::Sent)
            .sync(2, x, ch, SyncAction::Received)
            .sync(3, x, cv, SyncAction::Notified { woke: 0 })
            .sync(4, x, cv, SyncAction::Notified { woke: 2 })
            .sync(5, x, cv, SyncAction::Notified { woke: 0 })
            // A resource the trace does not list: ignored.
            .sync(6, x, crate::ResourceId(9), SyncAction::Sent);
        let stats = LockStats::from_trace(&b.end(6));
        let jobs = stats.resource("jobs").unwrap();
        assert_eq!((jobs.sends, jobs.receives), (2, 1));
        let ready = stats.resource("ready").unwrap();
        assert_eq!((ready.notifies, ready.lost_notifies), (3, 2));
        assert_eq!(stats.resources.len(), 2);
        assert_eq!(
            stats.to_string(),
            "resource  kind       activity\n\
             jobs      channel    sent 2, received 1\n\
             ready     condvar    notifies 3 (lost 2)\n"
        );
    }

    #[test]
    fn the_table_lists_held_resources_in_id_order() {
        let mut b = TraceBuilder::new(Machine::default());
        let m = b.resource("m", ResourceKind::Mutex);
        b.resource("queue", ResourceKind::Channel);
        let s = b.resource("slots", ResourceKind::Semaphore);
        let x = b.thread("x");
        b.sync(0, x, s, acquired(2))
            .sync(1, x, m, acquired(0))
            .sync(3, x, m, SyncAction::Released);
        let stats = LockStats::from_trace(&b.end(4));
        assert_eq!(
            stats.to_string(),
            "resource  kind       acquisitions  contended     mean wait      max wait     mean hold      max hold\n\
             m         mutex                 1          0            0s            0s           2ms           2ms\n\
             slots     semaphore             1          1           2ms           2ms           4ms           4ms\n\
             queue     channel    sent 0, received 0\n"
        );
        assert_eq!(
            LockStats::from_trace(&TraceBuilder::new(Machine::default()).end(0)).to_string(),
            ""
        );
    }
}
