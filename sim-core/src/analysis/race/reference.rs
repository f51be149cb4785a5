//! The detector as it was before issue 16, kept as the oracle the
//! property tests hold [`super::RaceDetector`] to: full vector clocks, every
//! thread's entry carried through every synchronization, so that a join
//! costs the number of threads that ever released the object.

use std::collections::BTreeSet;

use super::{SyncObject, VectorClock};
use crate::ids::{OriginId, ThreadId, VarId};
use crate::time::Time;
use crate::trace::{AccessKind, Race, RaceAccess};

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

/// Happens-before bookkeeping for one run, with full clocks.
#[derive(Clone, Debug, Default)]
pub struct FullClocks {
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

impl FullClocks {
    /// A detector with no threads yet.
    pub fn new() -> Self {
        FullClocks::default()
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
