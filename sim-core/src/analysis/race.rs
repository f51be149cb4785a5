//! Data-race detection by happens-before with vector clocks (as in
//! ThreadSanitizer, with full clocks). The kernel tells the detector about
//! thread starts and joins, every release and acquire of a synchronization
//! object (locks, semaphores, channels, condvars, barriers, atomics), and
//! every plain load and store; the detector answers each access with the
//! race it forms, if any.

use std::collections::BTreeSet;

use smallvec::SmallVec;

use crate::ids::{OriginId, ResourceId, ThreadId, VarId};
use crate::time::Time;
use crate::trace::{AccessKind, Race, RaceAccess};

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
    threads: Vec<VectorClock>,
    finished: Vec<Option<VectorClock>>,
    resources: Vec<VectorClock>,
    atomics: Vec<VectorClock>,
    vars: Vec<VarState>,
    reported: BTreeSet<(Option<OriginId>, Option<OriginId>)>,
}

fn slot<T: Default + Clone>(list: &mut Vec<T>, index: usize) -> &mut T {
    if list.len() <= index {
        list.resize(index + 1, T::default());
    }
    &mut list[index]
}

impl RaceDetector {
    /// A detector with no threads yet.
    pub fn new() -> Self {
        RaceDetector::default()
    }

    fn clock(&mut self, thread: ThreadId) -> &mut VectorClock {
        let clock = slot(&mut self.threads, thread.index());
        if clock.get(thread) == 0 {
            clock.tick(thread);
        }
        clock
    }

    /// `child` starts: everything its parent did so far happens before it.
    pub fn thread_started(&mut self, parent: Option<ThreadId>, child: ThreadId) {
        let inherited = parent.map(|p| self.clock(p).clone());
        let clock = self.clock(child);
        if let Some(inherited) = inherited {
            clock.join(&inherited);
        }
        if let Some(p) = parent {
            self.clock(p).tick(p);
        }
    }

    /// `thread` ended: its clock is kept for whoever joins it.
    pub fn thread_finished(&mut self, thread: ThreadId) {
        let clock = self.clock(thread).clone();
        *slot(&mut self.finished, thread.index()) = Some(clock);
    }

    /// `joiner` joined the finished `joined`.
    pub fn thread_joined(&mut self, joiner: ThreadId, joined: ThreadId) {
        self.clock(joiner);
        if let Some(Some(clock)) = self.finished.get(joined.index()) {
            self.threads[joiner.index()].join(clock);
        }
    }

    fn object<'a>(
        resources: &'a mut Vec<VectorClock>,
        atomics: &'a mut Vec<VectorClock>,
        object: SyncObject,
    ) -> &'a mut VectorClock {
        match object {
            SyncObject::Resource(r) => slot(resources, r.index()),
            SyncObject::Atomic(v) => slot(atomics, v.index()),
        }
    }

    /// `thread` releases `object`: what it did so far happens before the
    /// next acquire of it.
    pub fn release(&mut self, thread: ThreadId, object: SyncObject) {
        self.clock(thread);
        let clock = &self.threads[thread.index()];
        Self::object(&mut self.resources, &mut self.atomics, object).join(clock);
        self.clock(thread).tick(thread);
    }

    /// `thread` acquires `object`.
    pub fn acquire(&mut self, thread: ThreadId, object: SyncObject) {
        self.clock(thread);
        let object = Self::object(&mut self.resources, &mut self.atomics, object);
        self.threads[thread.index()].join(object);
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
        self.clock(thread);
        let clock = &self.threads[thread.index()];
        let now = Seen {
            epoch: clock.get(thread),
            access: RaceAccess {
                thread,
                kind,
                time,
                origin,
            },
        };
        let ordered = |seen: &Seen| {
            seen.access.thread == thread || seen.epoch <= clock.get(seen.access.thread)
        };
        let state = slot(&mut self.vars, variable.index());
        let mut conflict = state.store.filter(|s| !ordered(s));
        if kind == AccessKind::Store && conflict.is_none() {
            conflict = state.loads.iter().find(|s| !ordered(s)).copied();
        }
        match kind {
            AccessKind::Load => {
                state.loads.retain(|s| s.access.thread != thread);
                state.loads.push(now);
            }
            AccessKind::Store => {
                state.loads.clear();
                state.store = Some(now);
            }
        }
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
