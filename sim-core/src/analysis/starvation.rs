//! Starvation: how long each thread waited, at a stretch, for a CPU and for
//! each thing it blocked on; which threads waited longer than the machine's
//! threshold or never ran; and how evenly the CPU time was shared (Jain's
//! fairness index).
//!
//! A wait is one continuous stretch of one state, from the state change that
//! entered it to the next change to a different state. Two waits on the same
//! resource in different states (spinning on a spinlock, then blocked on it)
//! are two waits, not one: the longest of them is reported.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::thread::{BlockReason, ThreadState};
use crate::time::{Span, Time};
use crate::trace::{StateChange, SyncAction, Trace};

/// The longest continuous wait of one thread for one thing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongestWait {
    /// What it waited for: a resource's name, `"join <thread>"`, or the kind of
    /// wait where there is no resource to name ("io", "gil", "epoll").
    pub on: String,
    /// How long that wait lasted.
    pub span: Span,
    /// When it started.
    pub at: Time,
    /// Whether a long wait of this kind is starvation: a wait for a CPU-like
    /// resource others hold (a lock, semaphore, rwlock, spinlock, the GIL).
    /// Waits for another thread's progress (join, condvar, barrier, channel,
    /// io, epoll) are listed but never flag a thread.
    pub starves: bool,
}

/// How long one thread waited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadStarvation {
    /// Its name.
    pub name: String,
    /// Its longest continuous time ready, waiting for a CPU.
    pub longest_ready: Span,
    /// When that wait started; `None` if it was never ready.
    pub longest_ready_at: Option<Time>,
    /// Its longest continuous wait for each thing it blocked or spun on,
    /// sorted by what it waited for. Sleeping is not a wait.
    pub longest_blocked: Vec<LongestWait>,
    /// It never ran, though it existed before the run ended.
    pub never_ran: bool,
    /// It never ran, or one of its waits (ready or blocked) lasted longer
    /// than the threshold.
    pub starved: bool,
}

/// Starvation and fairness of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Starvation {
    /// A wait longer than this starves a thread (the machine's
    /// [`crate::Machine::starvation_threshold`]).
    pub threshold: Span,
    /// Per thread, by [`crate::ThreadId`].
    pub threads: Vec<ThreadStarvation>,
    /// Jain's index of the CPU time of the threads that were ever ready:
    /// (Σx)² / (n·Σx²), from 1/n (one thread had it all) to 1 (equal shares);
    /// 1 when there are no such threads or none ran.
    pub fairness: f64,
    /// How many threads the fairness index is over.
    pub fairness_over: usize,
}

/// What a thread in `state` waits for (sleep is no wait), and whether such a
/// wait can starve it.
fn wait_name(trace: &Trace, state: ThreadState) -> Option<(String, bool)> {
    let reason = match state {
        ThreadState::Spin(resource) => {
            return Some((trace.resource_name(resource).to_string(), true))
        }
        ThreadState::Blocked(reason) => reason,
        _ => return None,
    };
    let starves = matches!(
        reason,
        BlockReason::Lock(_)
            | BlockReason::Semaphore(_)
            | BlockReason::RwLock(_)
            | BlockReason::Gil(_)
    );
    let name = match reason {
        BlockReason::Sleep => return None,
        BlockReason::Join(thread) => {
            let name = trace.threads.get(thread.index()).map_or("?", |t| &t.name);
            format!("join {name}")
        }
        BlockReason::Future(r) => trace.resource_name(r).to_string(),
        _ => match reason.sync_resource() {
            Some(r) => trace.resource_name(r).to_string(),
            // I/O, epoll, the GIL: the kind of wait names it.
            None => reason.kind().name().to_string(),
        },
    };
    Some((name, starves))
}

/// Per thread while scanning: the longest waits so far and CPU time.
#[derive(Default)]
struct Scan {
    ready: Option<(Span, Time)>,
    blocked: BTreeMap<String, (Span, Time, bool)>,
    cpu: Span,
    ran: bool,
    was_ready: bool,
}

impl Scan {
    /// The thread was in `state` from `start` to `end`.
    fn close(&mut self, trace: &Trace, state: ThreadState, start: Time, end: Time) {
        let length = end - start;
        match state {
            ThreadState::Ready => {
                if self.ready.is_none_or(|(longest, _)| length > longest) {
                    self.ready = Some((length, start));
                }
            }
            ThreadState::Running => self.cpu += length,
            _ => {
                if let Some((name, starves)) = wait_name(trace, state) {
                    let longest = self.blocked.entry(name).or_insert((length, start, starves));
                    if length > longest.0 {
                        *longest = (length, start, starves);
                    }
                }
            }
        }
    }
}

impl Starvation {
    /// Derives starvation and fairness from `trace`, in one pass over its
    /// state changes.
    pub fn from_trace(trace: &Trace) -> Starvation {
        let threshold = trace.machine.starvation_threshold();
        let mut scans: Vec<Scan> = trace.threads.iter().map(|_| Scan::default()).collect();
        // The stretch each thread is in: the change that started it. A change
        // to the state it is already in continues the stretch.
        let mut open: Vec<Option<StateChange>> = vec![None; trace.threads.len()];
        for change in &trace.states {
            let i = change.thread().index();
            let scan = &mut scans[i];
            match change.state() {
                ThreadState::Running => scan.ran = true,
                ThreadState::Ready => scan.was_ready = true,
                _ => {}
            }
            if let Some(previous) = open[i] {
                if previous.state() == change.state() {
                    continue;
                }
                scan.close(trace, previous.state(), previous.time(), change.time());
            }
            open[i] = (change.state() != ThreadState::Done).then_some(change);
        }
        for (scan, previous) in scans.iter_mut().zip(&open) {
            if let Some(previous) = previous {
                scan.close(
                    trace,
                    previous.state(),
                    previous.time(),
                    trace.end.max(previous.time()),
                );
            }
        }

        // A lock wait can be cut into stretches (a barging mutex wakes its
        // waiters, who lose the race and block again); the acquisition
        // records the whole wait.
        for event in &trace.sync {
            if let SyncAction::Acquired { waited, .. } = event.action {
                let Some(info) = trace.resources.get(event.resource.index()) else {
                    continue;
                };
                let scan = &mut scans[event.thread.index()];
                let at = Time(event.time.as_nanos() - waited.as_nanos());
                let longest = scan
                    .blocked
                    .entry(info.name.clone())
                    .or_insert((waited, at, true));
                if waited > longest.0 {
                    *longest = (waited, at, true);
                }
            }
        }

        // A task's row waits for its loop, not for a CPU: tasks are the
        // loop's business (see `event_loop`), not the scheduler's.
        for (scan, info) in scans.iter_mut().zip(&trace.threads) {
            if info.task_of.is_some() {
                *scan = Scan::default();
            }
        }
        let shares: Vec<f64> = scans
            .iter()
            .filter(|s| s.was_ready)
            .map(|s| s.cpu.as_nanos() as f64)
            .collect();
        let fairness = jain(&shares);
        let threads = trace
            .threads
            .iter()
            .zip(scans)
            .map(|(info, scan)| {
                let never_ran = info.task_of.is_none() && !scan.ran && info.created < trace.end;
                let (longest_ready, longest_ready_at) =
                    scan.ready.map_or((Span::ZERO, None), |(s, t)| (s, Some(t)));
                let longest_blocked: Vec<LongestWait> = scan
                    .blocked
                    .into_iter()
                    .map(|(on, (span, at, starves))| LongestWait {
                        on,
                        span,
                        at,
                        starves,
                    })
                    .collect();
                let starved = never_ran
                    || longest_ready > threshold
                    || longest_blocked
                        .iter()
                        .any(|w| w.starves && w.span > threshold);
                ThreadStarvation {
                    name: info.name.clone(),
                    longest_ready,
                    longest_ready_at,
                    longest_blocked,
                    never_ran,
                    starved,
                }
            })
            .collect();
        Starvation {
            threshold,
            threads,
            fairness,
            fairness_over: shares.len(),
        }
    }

    /// The threads flagged as starved, in thread order.
    pub fn starved(&self) -> impl Iterator<Item = &ThreadStarvation> {
        self.threads.iter().filter(|t| t.starved)
    }

    /// The starvation record of the thread with this name.
    pub fn thread(&self, name: &str) -> Option<&ThreadStarvation> {
        self.threads.iter().find(|t| t.name == name)
    }
}

/// Jain's fairness index of `shares`: 1 when empty or all zero.
fn jain(shares: &[f64]) -> f64 {
    let sum: f64 = shares.iter().sum();
    let squares: f64 = shares.iter().map(|x| x * x).sum();
    if shares.is_empty() || squares == 0.0 {
        1.0
    } else {
        sum * sum / (shares.len() as f64 * squares)
    }
}

impl fmt::Display for Starvation {
    /// The fairness line, then one line per starved thread with what starved
    /// it, or a line saying none did.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.fairness_over;
        let plural = if n == 1 { "" } else { "s" };
        writeln!(
            f,
            "fairness (Jain) {:.2} over {n} thread{plural}",
            self.fairness
        )?;
        let starved: Vec<&ThreadStarvation> = self.starved().collect();
        if starved.is_empty() {
            return writeln!(f, "no thread starved (threshold {})", self.threshold);
        }
        let width = starved
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(0)
            .max(6);
        writeln!(f, "{:<width$}  starved (over {})", "thread", self.threshold)?;
        for t in starved {
            let mut why = Vec::new();
            if t.never_ran {
                why.push("never ran".to_string());
            }
            if let (true, Some(at)) = (t.longest_ready > self.threshold, t.longest_ready_at) {
                why.push(format!("ready {} at {at}", t.longest_ready));
            }
            for w in t
                .longest_blocked
                .iter()
                .filter(|w| w.starves && w.span > self.threshold)
            {
                why.push(format!("{} {} at {}", w.on, w.span, w.at));
            }
            writeln!(f, "{:<width$}  {}", t.name, why.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{at, TraceBuilder};
    use crate::model::machine::Machine;
    use crate::time::ms;
    use crate::trace::ResourceKind;
    use ThreadState::{Blocked, Done, Ready, Running};

    /// A machine whose threshold is `threshold` ms.
    fn machine(threshold: u64) -> Machine {
        Machine {
            starvation: Some(ms(threshold)),
            ..Machine::default()
        }
    }

    #[test]
    fn the_longest_of_three_ready_stretches_is_reported_with_its_start() {
        let mut b = TraceBuilder::new(machine(100));
        let a = b.thread("a");
        b.state(0, a, Ready)
            .state(2, a, Running)
            .state(4, a, Ready)
            .state(11, a, Running)
            .state(12, a, Ready)
            .state(15, a, Running)
            .state(20, a, Done);
        let s = Starvation::from_trace(&b.end(20));
        let t = s.thread("a").unwrap();
        assert_eq!(t.longest_ready, ms(7));
        assert_eq!(t.longest_ready_at, Some(at(4)));
        assert!(!t.starved && !t.never_ran);
        assert_eq!(
            s.to_string(),
            "fairness (Jain) 1.00 over 1 thread\nno thread starved (threshold 100ms)\n"
        );
    }

    #[test]
    fn repeated_changes_to_the_same_state_are_one_stretch() {
        let mut b = TraceBuilder::new(machine(5));
        let a = b.thread("a");
        b.state(0, a, Ready)
            .state(3, a, Ready)
            .state(6, a, Running)
            .state(7, a, Done);
        let s = Starvation::from_trace(&b.end(7));
        let t = s.thread("a").unwrap();
        assert_eq!((t.longest_ready, t.longest_ready_at), (ms(6), Some(at(0))));
        assert!(t.starved);
    }

    /// Spinning on a resource and then blocking on it are two waits (two
    /// states), not one: the longer is reported, under the resource's name.
    #[test]
    fn a_spin_then_a_block_on_one_resource_are_counted_separately() {
        let mut b = TraceBuilder::new(machine(10));
        let m = b.resource("m", ResourceKind::Mutex);
        let a = b.thread("a");
        b.state(0, a, Running)
            .state(1, a, ThreadState::Spin(m))
            .state(7, a, Blocked(BlockReason::Lock(m)))
            .state(15, a, Ready)
            .state(16, a, Running)
            .state(17, a, Done);
        let s = Starvation::from_trace(&b.end(17));
        let t = s.thread("a").unwrap();
        assert_eq!(
            t.longest_blocked,
            vec![LongestWait {
                on: "m".to_string(),
                span: ms(8),
                at: at(7),
                starves: true,
            }]
        );
        // 6ms + 8ms would be over 10ms; each alone is not.
        assert!(!t.starved);
    }

    #[test]
    fn waits_are_named_by_resource_or_kind_and_sleep_is_not_a_wait() {
        let mut b = TraceBuilder::new(machine(10));
        let ch = b.resource("jobs", ResourceKind::Channel);
        let w = b.thread("worker");
        let main = b.thread("main");
        b.state(0, w, Running)
            .state(1, w, Blocked(BlockReason::Sleep))
            .state(50, w, Running)
            .state(51, w, Blocked(BlockReason::Channel(ch)))
            .state(53, w, Running)
            .state(54, w, Blocked(BlockReason::Io(crate::ResourceId(7))))
            .state(55, w, Running)
            .state(56, w, Done)
            .state(0, main, Ready)
            .state(1, main, Running)
            .state(2, main, Blocked(BlockReason::Join(w)))
            .state(56, main, Ready)
            .state(57, main, Running)
            .state(58, main, Done);
        let s = Starvation::from_trace(&b.end(58));
        let waits = |name| {
            s.thread(name)
                .unwrap()
                .longest_blocked
                .iter()
                .map(|w| (w.on.clone(), w.span))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            waits("worker"),
            vec![("io".to_string(), ms(1)), ("jobs".to_string(), ms(2))]
        );
        assert_eq!(waits("main"), vec![("join worker".to_string(), ms(54))]);
        // Waiting 54ms for a join is waiting for the worker's progress, not
        // starvation.
        assert!(!s.thread("worker").unwrap().starved);
        assert!(!s.thread("main").unwrap().starved);
        assert_eq!(
            s.to_string(),
            "fairness (Jain) 1.00 over 1 thread\n\
             no thread starved (threshold 10ms)\n"
        );
    }

    #[test]
    fn a_thread_that_was_never_running_is_flagged() {
        let mut b = TraceBuilder::new(machine(100));
        let hog = b.thread("hog");
        let late = b.thread("late");
        b.state(0, hog, Running).state(0, late, Ready);
        let s = Starvation::from_trace(&b.end(30));
        let t = s.thread("late").unwrap();
        assert!(t.never_ran && t.starved);
        assert_eq!((t.longest_ready, t.longest_ready_at), (ms(30), Some(at(0))));
        assert!(!s.thread("hog").unwrap().starved);
        // Only "late" was ever ready, and it had no CPU time.
        assert_eq!((s.fairness, s.fairness_over), (1.0, 1));
        assert_eq!(
            s.to_string(),
            "fairness (Jain) 1.00 over 1 thread\n\
             thread  starved (over 100ms)\n\
             late    never ran\n"
        );
    }

    #[test]
    fn over_the_threshold_the_ready_wait_is_shown_with_its_start() {
        let mut b = TraceBuilder::new(machine(2));
        let a = b.thread("a");
        b.state(0, a, Running)
            .state(1, a, Ready)
            .state(4, a, Running)
            .state(5, a, Done);
        let s = Starvation::from_trace(&b.end(5));
        assert!(s.to_string().ends_with("a       ready 3ms at 1ms\n"), "{s}");
    }

    #[test]
    fn jain_index_is_one_for_equal_shares_and_one_over_n_for_one_hog() {
        assert_eq!(jain(&[3.0, 3.0, 3.0, 3.0]), 1.0);
        assert_eq!(jain(&[1.0, 0.0, 0.0, 0.0]), 0.25);
        assert_eq!(jain(&[]), 1.0);
        assert_eq!(jain(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn fairness_is_over_the_cpu_time_of_threads_that_were_ready() {
        let mut b = TraceBuilder::new(machine(100));
        let names = ["a", "b", "c", "d"];
        let ids: Vec<_> = names.iter().map(|n| b.thread(n)).collect();
        for &t in &ids {
            b.state(0, t, Ready);
        }
        b.state(0, ids[0], Running).state(8, ids[0], Done);
        let s = Starvation::from_trace(&b.end(8));
        assert_eq!((s.fairness, s.fairness_over), (0.25, 4));
    }

    #[test]
    fn it_round_trips_through_ron() {
        let mut b = TraceBuilder::new(machine(1));
        let a = b.thread("a");
        b.state(0, a, Ready);
        let s = Starvation::from_trace(&b.end(3));
        let text = ron::to_string(&s).unwrap();
        assert_eq!(ron::from_str::<Starvation>(&text).unwrap(), s);
    }
}
