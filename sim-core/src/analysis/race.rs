//! Data-race detection by happens-before with vector clocks (as in
//! ThreadSanitizer). The kernel tells the detector about thread starts and
//! joins, every release and acquire of a synchronization object (locks,
//! semaphores, channels, condvars, barriers, atomics), and every plain load
//! and store; the detector answers each access with the race it forms, if
//! any.
//!
//! # What it pays for, and why
//!
//! Each variable remembers its last store and the loads since (one per
//! thread), each as the thread's own clock entry at the time (an *epoch*, as
//! in FastTrack, Flanagan & Freund, PLDI 2009). A later access is ordered
//! after a remembered one by thread `u` at epoch `e` exactly when the
//! accessing thread's clock has `clock[u] >= e`. That is the only question
//! the clocks are ever asked, and it is asked only about threads with a
//! remembered access.
//!
//! So the clocks of threads, locks and finished threads carry entries only
//! for *remembered* threads: threads with at least one access still held by
//! some variable. Any other entry is dropped at the next join that touches
//! it. Dropping is exact: a thread publishes its entry (release, start) and
//! then ticks, so whatever anyone knows of it is below every epoch of its
//! later accesses, and only those can be remembered once its current ones
//! are forgotten. Every answer is the one full clocks give (the property
//! test `agrees_with_full_clocks` holds it to `reference::FullClocks`, the
//! detector as it was, kept as the oracle); reports, their order and their
//! positions are the same.
//!
//! The effect: a join costs the number of remembered threads (plus entries
//! dropped, each once), not the number of threads that ever synchronized.
//! In the `mutex_cycles` benchmark (N threads take turns at one mutex and
//! touch one variable under it) that is one or two entries, where full
//! clocks carried N on every acquire; a scenario that declares no variable
//! carries none at all.
//!
//! Two known ways were weighed and left:
//!
//! - Tree clocks (Mathur et al., ASPLOS 2022) make a join cost the entries
//!   that changed. When N threads take turns at one lock, N - 1 entries have
//!   changed between two acquisitions by one thread, so a join still costs N.
//! - FastTrack's collapse of the loads to one epoch when they are ordered
//!   would change which earlier load a store is reported against (we report
//!   the first unordered one), so the access state is kept as it was. Its
//!   cost grows with the threads that load a variable between two stores,
//!   and so do the remembered threads: read-mostly variables shared by many
//!   threads are the case this design pays for.

use std::collections::BTreeSet;

use smallvec::SmallVec;

use crate::ids::{OriginId, ResourceId, ThreadId, VarId};
use crate::time::Time;
use crate::trace::{AccessKind, Race, RaceAccess};

#[cfg(test)]
mod reference;

/// A vector clock: one counter per thread that ever happened before, kept
/// sparse (sorted by thread) so that a hundred thousand threads that never
/// touch shared memory cost nothing. Missing entries are zero. Up to four
/// entries live inline, so small scenarios allocate no clocks at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VectorClock(SmallVec<[(u32, u32); 4]>);

impl VectorClock {
    /// `thread`'s entry.
    pub fn get(&self, thread: ThreadId) -> u32 {
        self.0
            .binary_search_by_key(&thread.0, |e| e.0)
            .map_or(0, |i| self.0[i].1)
    }

    /// Advances `thread`'s entry by one.
    pub fn tick(&mut self, thread: ThreadId) {
        match self.0.binary_search_by_key(&thread.0, |e| e.0) {
            Ok(i) => self.0[i].1 += 1,
            Err(i) => self.0.insert(i, (thread.0, 1)),
        }
    }

    /// Entry-wise maximum with `other`, merged in place from the back, so it
    /// allocates only when `self` must grow past its capacity.
    pub fn join(&mut self, other: &VectorClock) {
        let missing = {
            let mut mine = self.0.iter().peekable();
            other
                .0
                .iter()
                .filter(|&&(thread, _)| {
                    while mine.next_if(|e| e.0 < thread).is_some() {}
                    mine.peek().is_none_or(|e| e.0 != thread)
                })
                .count()
        };
        let old = self.0.len();
        self.0.resize(old + missing, (0, 0));
        // Fill from the back: `write` never overtakes the unread part of self.
        let (mut a, mut b, mut write) = (old, other.0.len(), old + missing);
        while b > 0 {
            write -= 1;
            let theirs = other.0[b - 1];
            if a > 0 && self.0[a - 1].0 > theirs.0 {
                self.0[write] = self.0[a - 1];
                a -= 1;
            } else if a > 0 && self.0[a - 1].0 == theirs.0 {
                self.0[write] = (theirs.0, theirs.1.max(self.0[a - 1].1));
                a -= 1;
                b -= 1;
            } else {
                self.0[write] = theirs;
                b -= 1;
            }
        }
    }

    /// Raises `thread`'s entry to at least `value`.
    pub fn raise(&mut self, thread: ThreadId, value: u32) {
        match self.0.binary_search_by_key(&thread.0, |e| e.0) {
            Ok(i) => self.0[i].1 = self.0[i].1.max(value),
            Err(i) => self.0.insert(i, (thread.0, value)),
        }
    }

    /// Keeps only the entries of threads for which `keep` holds.
    fn prune(&mut self, keep: impl Fn(u32) -> bool) {
        self.0.retain(|e| keep(e.0));
    }
}

/// What carries a release to a later acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncObject {
    /// A lock, semaphore, channel, condvar or barrier.
    Resource(ResourceId),
    /// A variable used atomically.
    Atomic(VarId),
}

/// An access remembered for later comparison: the thread's own clock entry
/// at the time identifies it.
#[derive(Clone, Copy, Debug)]
struct Seen {
    epoch: u32,
    access: RaceAccess,
}

#[derive(Clone, Debug, Default)]
struct VarState {
    store: Option<Seen>,
    /// Loads since the last store, at most one (the latest) per thread.
    loads: Vec<Seen>,
}

/// Happens-before bookkeeping for one run.
#[derive(Clone, Debug, Default)]
pub struct RaceDetector {
    /// Each thread's own clock entry, its epoch (0: not seen yet).
    epochs: Vec<u32>,
    /// What each thread knows of the remembered threads.
    threads: Vec<VectorClock>,
    /// What a finished thread knew, for whoever joins it.
    finished: Vec<Option<VectorClock>>,
    resources: Vec<VectorClock>,
    atomics: Vec<VectorClock>,
    vars: Vec<VarState>,
    /// Per thread, how many of its accesses the variables remember: the
    /// threads whose clock entries are worth carrying have one or more.
    remembered: Vec<u32>,
    reported: BTreeSet<(Option<OriginId>, Option<OriginId>)>,
}

fn slot<T: Default + Clone>(list: &mut Vec<T>, index: usize) -> &mut T {
    if list.len() <= index {
        list.resize(index + 1, T::default());
    }
    &mut list[index]
}

/// Whether `thread` has an access remembered, by the counts in `remembered`.
fn is_remembered(remembered: &[u32], thread: u32) -> bool {
    remembered.get(thread as usize).is_some_and(|&n| n > 0)
}

/// `into` takes in `from`, both first rid of the entries of threads with
/// no access remembered.
fn join_remembered(into: &mut VectorClock, from: &mut VectorClock, remembered: &[u32]) {
    let keep = |t| is_remembered(remembered, t);
    from.prune(keep);
    into.prune(keep);
    into.join(from);
}

impl RaceDetector {
    /// A detector with no threads yet.
    pub fn new() -> Self {
        RaceDetector::default()
    }

    /// `thread`'s epoch, which starts at 1 the first time it is seen.
    fn epoch(&mut self, thread: ThreadId) -> u32 {
        let epoch = slot(&mut self.epochs, thread.index());
        if *epoch == 0 {
            *epoch = 1;
            slot(&mut self.threads, thread.index());
        }
        *epoch
    }

    /// What `thread` publishes: what it knows, and its own entry when one
    /// of its accesses is remembered.
    fn publish(&mut self, thread: ThreadId, into: &mut VectorClock) {
        let epoch = self.epoch(thread);
        join_remembered(into, &mut self.threads[thread.index()], &self.remembered);
        if is_remembered(&self.remembered, thread.0) {
            into.raise(thread, epoch);
        }
    }

    /// `thread` takes in `from`.
    fn take_in(&mut self, thread: ThreadId, from: &mut VectorClock) {
        self.epoch(thread);
        join_remembered(&mut self.threads[thread.index()], from, &self.remembered);
    }

    /// `child` starts: everything its parent did so far happens before it.
    pub fn thread_started(&mut self, parent: Option<ThreadId>, child: ThreadId) {
        self.epoch(child);
        if let Some(p) = parent {
            let mut inherited = VectorClock::default();
            self.publish(p, &mut inherited);
            self.take_in(child, &mut inherited);
            self.epochs[p.index()] += 1;
        }
    }

    /// `thread` ended: what it knew is kept for whoever joins it.
    pub fn thread_finished(&mut self, thread: ThreadId) {
        let mut last = VectorClock::default();
        self.publish(thread, &mut last);
        *slot(&mut self.finished, thread.index()) = Some(last);
    }

    /// `joiner` joined the finished `joined`.
    pub fn thread_joined(&mut self, joiner: ThreadId, joined: ThreadId) {
        self.epoch(joiner);
        if let Some(Some(clock)) = self.finished.get_mut(joined.index()) {
            let mut clock = std::mem::take(clock);
            self.take_in(joiner, &mut clock);
            self.finished[joined.index()] = Some(clock);
        }
    }

    fn object(&mut self, object: SyncObject) -> &mut VectorClock {
        match object {
            SyncObject::Resource(r) => slot(&mut self.resources, r.index()),
            SyncObject::Atomic(v) => slot(&mut self.atomics, v.index()),
        }
    }

    /// `thread` releases `object`: what it did so far happens before the
    /// next acquire of it.
    pub fn release(&mut self, thread: ThreadId, object: SyncObject) {
        let mut clock = std::mem::take(self.object(object));
        self.publish(thread, &mut clock);
        *self.object(object) = clock;
        self.epochs[thread.index()] += 1;
    }

    /// `thread` acquires `object`.
    pub fn acquire(&mut self, thread: ThreadId, object: SyncObject) {
        let mut clock = std::mem::take(self.object(object));
        self.take_in(thread, &mut clock);
        *self.object(object) = clock;
    }

    /// A plain load or store. Returns the race it forms with an earlier
    /// unordered conflicting access, unless that pair of source positions
    /// was reported before.
    pub fn access(
        &mut self,
        thread: ThreadId,
        variable: VarId,
        kind: AccessKind,
        time: Time,
        origin: Option<OriginId>,
    ) -> Option<Race> {
        let now = Seen {
            epoch: self.epoch(thread),
            access: RaceAccess {
                thread,
                kind,
                time,
                origin,
            },
        };
        let clock = &self.threads[thread.index()];
        let ordered = |seen: &Seen| {
            seen.access.thread == thread || seen.epoch <= clock.get(seen.access.thread)
        };
        let state = slot(&mut self.vars, variable.index());
        let mut conflict = state.store.filter(|s| !ordered(s));
        if kind == AccessKind::Store && conflict.is_none() {
            conflict = state.loads.iter().find(|s| !ordered(s)).copied();
        }
        let remembered = &mut self.remembered;
        let mut forget = |seen: &Seen| remembered[seen.access.thread.index()] -= 1;
        match kind {
            AccessKind::Load => {
                state.loads.retain(|s| {
                    let other = s.access.thread != thread;
                    if !other {
                        forget(s);
                    }
                    other
                });
                state.loads.push(now);
            }
            AccessKind::Store => {
                state.loads.iter().for_each(&mut forget);
                state.loads.clear();
                if let Some(old) = state.store.replace(now) {
                    forget(&old);
                }
            }
        }
        *slot(&mut self.remembered, thread.index()) += 1;
        let first = conflict?;
        let (a, b) = (first.access.origin, origin);
        let key = if a <= b { (a, b) } else { (b, a) };
        if !self.reported.insert(key) {
            return None;
        }
        Some(Race {
            variable,
            first: first.access,
            second: now.access,
        })
    }
}

/// One line for a race: "data race on 'counter': b loaded it at 20us
/// (race.rhai:28:29), a stored it at 10us (race.rhai:29:21), unordered".
pub fn explain(race: &Race, trace: &crate::trace::Trace) -> String {
    let side = |a: &RaceAccess| {
        let verb = match a.kind {
            AccessKind::Load => "loaded",
            AccessKind::Store => "stored",
        };
        let at = trace.at(a.origin);
        format!(
            "{} {verb} it at {}{at}",
            trace.threads[a.thread.index()].name,
            a.time
        )
    };
    let name = trace
        .variables
        .get(race.variable.index())
        .map_or("?", |v| v.name.as_str());
    format!(
        "data race on '{name}': {}, and {}, with nothing ordering them",
        side(&race.first),
        side(&race.second)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ThreadId = ThreadId(0);
    const B: ThreadId = ThreadId(1);
    const X: VarId = VarId(0);

    fn at(n: u32) -> Option<OriginId> {
        Some(OriginId(n))
    }

    fn start() -> RaceDetector {
        let mut d = RaceDetector::new();
        d.thread_started(None, A);
        d.thread_started(None, B);
        d
    }

    #[test]
    fn clocks_join_entry_wise() {
        let mut a = VectorClock::default();
        a.tick(ThreadId(3));
        a.tick(ThreadId(3));
        let mut b = VectorClock::default();
        b.tick(ThreadId(1));
        b.tick(ThreadId(3));
        a.join(&b);
        assert_eq!(
            (a.get(ThreadId(1)), a.get(ThreadId(3)), a.get(ThreadId(2))),
            (1, 2, 0)
        );
    }

    proptest::proptest! {
        /// The in-place merge agrees with an entry-wise maximum over maps.
        #[test]
        fn join_is_the_entry_wise_maximum(
            a in proptest::collection::btree_map(0u32..40, 1u32..5, 0..12),
            b in proptest::collection::btree_map(0u32..40, 1u32..5, 0..12),
        ) {
            let clock = |m: &std::collections::BTreeMap<u32, u32>| {
                VectorClock(m.iter().map(|(&t, &c)| (t, c)).collect())
            };
            let mut joined = clock(&a);
            joined.join(&clock(&b));
            let mut expected = a.clone();
            for (t, c) in &b {
                let e = expected.entry(*t).or_default();
                *e = (*e).max(*c);
            }
            proptest::prop_assert_eq!(joined, clock(&expected));
        }
    }

    #[test]
    fn two_unsynchronised_stores_race() {
        let mut d = start();
        assert!(d.access(A, X, AccessKind::Store, Time(1), at(1)).is_none());
        let race = d
            .access(B, X, AccessKind::Store, Time(2), at(2))
            .expect("a race");
        assert_eq!((race.first.thread, race.second.thread), (A, B));
    }

    #[test]
    fn loads_never_race_with_loads() {
        let mut d = start();
        d.access(A, X, AccessKind::Load, Time(1), at(1));
        assert!(d.access(B, X, AccessKind::Load, Time(2), at(2)).is_none());
        // But a later store races with the earlier unordered load.
        assert!(d.access(B, X, AccessKind::Store, Time(3), at(3)).is_some());
    }

    #[test]
    fn a_lock_orders_the_critical_sections() {
        let mut d = start();
        let m = SyncObject::Resource(ResourceId(0));
        d.acquire(A, m);
        d.access(A, X, AccessKind::Load, Time(1), at(1));
        d.access(A, X, AccessKind::Store, Time(1), at(2));
        d.release(A, m);
        d.acquire(B, m);
        assert!(d.access(B, X, AccessKind::Load, Time(2), at(1)).is_none());
        assert!(d.access(B, X, AccessKind::Store, Time(2), at(2)).is_none());
    }

    #[test]
    fn start_and_join_order_parent_and_child() {
        let mut d = RaceDetector::new();
        d.thread_started(None, A);
        d.access(A, X, AccessKind::Store, Time(0), at(1));
        d.thread_started(Some(A), B);
        assert!(d.access(B, X, AccessKind::Load, Time(1), at(2)).is_none());
        d.access(B, X, AccessKind::Store, Time(1), at(3));
        d.thread_finished(B);
        d.thread_joined(A, B);
        assert!(d.access(A, X, AccessKind::Load, Time(2), at(4)).is_none());
    }

    #[test]
    fn atomics_order_later_plain_accesses() {
        let mut d = start();
        let flag = SyncObject::Atomic(VarId(1));
        d.access(A, X, AccessKind::Store, Time(0), at(1));
        d.acquire(A, flag);
        d.release(A, flag);
        d.acquire(B, flag);
        d.release(B, flag);
        assert!(d.access(B, X, AccessKind::Load, Time(1), at(2)).is_none());
    }

    /// One step of a random scenario, as raw numbers that
    /// [`play`] maps onto the threads, objects and variables that exist.
    type Step = (u8, u8, u8, u8);

    /// Plays `steps` on both detectors, in an order the kernel could give:
    /// threads act only between their start and their end. Returns what
    /// each detector answered to each access.
    fn play(steps: &[Step], threads: u8) -> (Vec<Option<Race>>, Vec<Option<Race>>) {
        let mut new = RaceDetector::new();
        let mut old = reference::FullClocks::new();
        let (mut started, mut finished) = (vec![ThreadId(0)], Vec::new());
        new.thread_started(None, ThreadId(0));
        old.thread_started(None, ThreadId(0));
        let (mut new_races, mut old_races) = (Vec::new(), Vec::new());
        let object = |n: u8| match n % 4 {
            3 => SyncObject::Atomic(VarId(9)),
            r => SyncObject::Resource(ResourceId(u32::from(r))),
        };
        for (time, &(op, a, b, c)) in steps.iter().enumerate() {
            let live: Vec<ThreadId> = started
                .iter()
                .copied()
                .filter(|t| !finished.contains(t))
                .collect();
            let Some(&t) = live.get(usize::from(a) % live.len().max(1)) else {
                break;
            };
            match op % 8 {
                0 if started.len() < usize::from(threads) => {
                    let child = ThreadId(started.len() as u32);
                    let parent = (b % 3 != 0).then_some(t);
                    new.thread_started(parent, child);
                    old.thread_started(parent, child);
                    started.push(child);
                }
                1 if live.len() > 1 => {
                    new.thread_finished(t);
                    old.thread_finished(t);
                    finished.push(t);
                }
                2 if !finished.is_empty() => {
                    let joined = finished[usize::from(b) % finished.len()];
                    new.thread_joined(t, joined);
                    old.thread_joined(t, joined);
                }
                3 | 4 => {
                    new.release(t, object(b));
                    old.release(t, object(b));
                }
                5 => {
                    new.acquire(t, object(b));
                    old.acquire(t, object(b));
                }
                _ => {
                    let var = VarId(u32::from(b % 3));
                    let kind = if c % 2 == 0 {
                        AccessKind::Load
                    } else {
                        AccessKind::Store
                    };
                    let origin = (c % 7 != 0).then_some(OriginId(u32::from(c % 11)));
                    let now = Time(time as u64);
                    new_races.push(new.access(t, var, kind, now, origin));
                    old_races.push(old.access(t, var, kind, now, origin));
                }
            }
        }
        (new_races, old_races)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Clocks pruned to the remembered threads answer every access as
        /// full vector clocks do: the same races, in the same order, with
        /// the same accesses on both sides.
        #[test]
        fn agrees_with_full_clocks(
            threads in 2u8..9,
            steps in proptest::collection::vec(proptest::arbitrary::any::<Step>(), 0..160),
        ) {
            let (new, old) = play(&steps, threads);
            proptest::prop_assert_eq!(new, old);
        }
    }

    #[test]
    fn clocks_carry_only_remembered_threads() {
        // A thousand threads take turns at one lock and store one variable
        // under it: only the last storer is remembered, so every clock
        // holds at most one entry where full clocks would hold a thousand.
        let mut d = RaceDetector::new();
        let m = SyncObject::Resource(ResourceId(0));
        for round in 0..3 {
            for t in 0..1000 {
                let t = ThreadId(t);
                if round == 0 {
                    d.thread_started(None, t);
                }
                d.acquire(t, m);
                assert!(d.access(t, X, AccessKind::Load, Time(1), at(1)).is_none());
                assert!(d.access(t, X, AccessKind::Store, Time(1), at(2)).is_none());
                d.release(t, m);
            }
        }
        let widest = d.threads.iter().chain(&d.resources).map(|c| c.0.len());
        assert!(widest.max() <= Some(1));
    }

    #[test]
    fn a_pair_of_positions_is_reported_once() {
        let mut d = start();
        let mut races = 0;
        for i in 0..5 {
            d.access(A, X, AccessKind::Store, Time(i), at(1));
            races += usize::from(d.access(B, X, AccessKind::Store, Time(i), at(2)).is_some());
        }
        assert_eq!(races, 1);
    }
}
