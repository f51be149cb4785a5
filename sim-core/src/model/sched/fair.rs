//! "fair": a CFS-like scheduler with virtual runtime and nice weights.
//!
//! Each thread has a weight from its nice value (Linux's `sched_prio_to_weight`
//! table: nice 0 is 1024, each step about 1.25×). Running for `d` advances a
//! thread's virtual runtime by `d × 1024 / weight`; the ready thread with the
//! smallest virtual runtime runs next. A dispatched thread's slice is its
//! weight's share of the period, `max(latency, runnable × granularity)`, and
//! never shorter than `granularity`. A woken thread starts no earlier than
//! `min_vruntime - latency / 2` (the sleeper credit) and preempts a running
//! thread whose virtual runtime is more than `granularity` ahead of its own.
//! `yield_now` moves a thread behind every ready thread.

use std::collections::BTreeSet;

use super::{leading_ties, slot, Enqueue, Policy};
use crate::ids::ThreadId;
use crate::model::thread::ThreadOptions;
use crate::time::{Span, Time};

/// Linux's weights for nice -20 ..= 19.
const NICE_TO_WEIGHT: [u64; 40] = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904,
    3906, 3121, 2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87,
    70, 56, 45, 36, 29, 23, 18, 15,
];

/// The weight of a nice value (clamped to -20 ..= 19).
pub(crate) fn weight_of_nice(nice: i32) -> u64 {
    NICE_TO_WEIGHT[(nice.clamp(-20, 19) + 20) as usize]
}

#[derive(Clone, Copy, Default)]
struct Entity {
    weight: u64,
    vruntime: u64,
    runnable: bool,
    /// Position in the tree, to break equal virtual runtimes FIFO.
    seq: u64,
}

/// CFS-like fair scheduling.
pub(crate) struct Fair {
    latency: Span,
    granularity: Span,
    entities: Vec<Entity>,
    /// Ready threads by (vruntime, seq).
    tree: BTreeSet<(u64, u64, ThreadId)>,
    min_vruntime: u64,
    runnable: u64,
    runnable_weight: u64,
    next_seq: u64,
}

impl Fair {
    pub(crate) fn new(latency: Span, granularity: Span) -> Self {
        Fair {
            latency,
            granularity,
            entities: Vec::new(),
            tree: BTreeSet::new(),
            min_vruntime: 0,
            runnable: 0,
            runnable_weight: 0,
            next_seq: 0,
        }
    }

    fn entity(&self, thread: ThreadId) -> Entity {
        self.entities
            .get(thread.index())
            .copied()
            .unwrap_or_default()
    }
}

impl Policy for Fair {
    fn add_thread(&mut self, thread: ThreadId, options: ThreadOptions) {
        *slot(&mut self.entities, thread) = Entity {
            weight: weight_of_nice(options.nice),
            ..Entity::default()
        };
    }

    fn enqueue(&mut self, thread: ThreadId, _now: Time, why: Enqueue) {
        let min_vruntime = self.min_vruntime;
        let half_latency = self.latency.as_nanos() / 2;
        let last = self.tree.last().map(|e| e.0);
        let seq = self.next_seq;
        self.next_seq += 1;
        let e = slot(&mut self.entities, thread);
        match why {
            Enqueue::New => e.vruntime = e.vruntime.max(min_vruntime),
            Enqueue::Woken => {
                e.vruntime = e.vruntime.max(min_vruntime.saturating_sub(half_latency))
            }
            Enqueue::Yielded => e.vruntime = e.vruntime.max(last.unwrap_or(0)),
            Enqueue::Preempted | Enqueue::Expired => {}
        }
        e.seq = seq;
        if !e.runnable {
            e.runnable = true;
            let weight = e.weight;
            self.runnable += 1;
            self.runnable_weight += weight;
        }
        let e = self.entities[thread.index()];
        self.tree.insert((e.vruntime, e.seq, thread));
    }

    fn len(&self) -> usize {
        self.tree.len()
    }

    fn ties(&self) -> usize {
        leading_ties(self.tree.iter().map(|e| e.0))
    }

    fn tied_threads(&self, out: &mut Vec<ThreadId>) {
        out.clear();
        out.extend(self.tree.iter().take(self.ties()).map(|e| e.2));
    }

    fn head(&self) -> Option<ThreadId> {
        self.tree.first().map(|e| e.2)
    }

    fn take(&mut self, index: usize) -> ThreadId {
        let key = *self.tree.iter().nth(index).expect("index among the ties");
        self.tree.remove(&key);
        self.min_vruntime = self.min_vruntime.max(key.0);
        key.2
    }

    fn slice(&self, thread: ThreadId) -> Option<Span> {
        let gran = self.granularity.as_nanos();
        let period = self.latency.as_nanos().max(self.runnable * gran);
        let weight = self.entity(thread).weight.max(1);
        let total = self.runnable_weight.max(weight);
        let share = (u128::from(period) * u128::from(weight) / u128::from(total)) as u64;
        Some(Span(share.max(gran)))
    }

    fn charge(&mut self, thread: ThreadId, ran: Span) {
        let e = slot(&mut self.entities, thread);
        let weight = e.weight.max(1);
        e.vruntime += (u128::from(ran.as_nanos()) * 1024 / u128::from(weight)) as u64;
        let running = e.vruntime;
        let leftmost = self.tree.first().map_or(running, |first| first.0);
        self.min_vruntime = self.min_vruntime.max(running.min(leftmost));
    }

    fn stopped(&mut self, thread: ThreadId) {
        let e = slot(&mut self.entities, thread);
        if e.runnable {
            e.runnable = false;
            let weight = e.weight;
            self.runnable -= 1;
            self.runnable_weight -= weight;
        }
    }

    fn rotate(&self, running: ThreadId) -> bool {
        self.tree
            .first()
            .is_some_and(|&(v, _, _)| v <= self.entity(running).vruntime)
    }

    fn preempts(&self, waking: ThreadId, running: ThreadId) -> bool {
        let waking = self.entity(waking).vruntime;
        self.entity(running).vruntime > waking.saturating_add(self.granularity.as_nanos())
    }

    fn victim_rank(&self, running: ThreadId) -> i64 {
        self.entity(running).vruntime.min(i64::MAX as u64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_linux() {
        assert_eq!(weight_of_nice(0), 1024);
        assert_eq!(weight_of_nice(-20), 88761);
        assert_eq!(weight_of_nice(19), 15);
        assert_eq!(weight_of_nice(99), 15);
    }

    #[test]
    fn slices_split_the_period_by_weight() {
        let mut fair = Fair::new(Span(6_000_000), Span(750_000));
        fair.add_thread(ThreadId(0), ThreadOptions::default());
        fair.add_thread(
            ThreadId(1),
            ThreadOptions {
                nice: 5,
                priority: 0,
            },
        );
        fair.enqueue(ThreadId(0), Time::ZERO, Enqueue::New);
        fair.enqueue(ThreadId(1), Time::ZERO, Enqueue::New);
        // 6ms × 1024 / 1359 and 6ms × 335 / 1359
        assert_eq!(fair.slice(ThreadId(0)), Some(Span(4_520_971)));
        assert_eq!(fair.slice(ThreadId(1)), Some(Span(1_479_028)));
        fair.charge(ThreadId(1), Span(335));
        assert_eq!(fair.entity(ThreadId(1)).vruntime, 1024);
    }
}
