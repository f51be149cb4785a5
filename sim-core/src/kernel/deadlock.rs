//! Finding a deadlock the moment it closes: after a thread starts to wait,
//! is there a cycle of waits back to it?
//!
//! A thread waits for one thing at a time, and most things it can wait for
//! have one holder (a mutex or spinlock its owner, a join its target), so
//! the waits from a thread usually form a single chain. [`find_cycle`]
//! follows that chain, allocating nothing, and gives up at the first thread
//! that is not waiting: that is every blocking lock of a run that does not
//! deadlock. Only when the chain comes back to the thread (a deadlock, once
//! per run) or reaches a wait with several holders (the readers of an
//! rwlock) does it build the wait-for graph with petgraph and search it,
//! as [`cycle_by_graph`]; so the report is the graph search's, always.
//! A property test holds the two to the same answer.

use std::collections::BTreeSet;

use petgraph::graphmap::DiGraphMap;

use crate::ids::ThreadId;
use crate::trace::WaitTarget;

/// One step of a deadlock cycle: the thread and what it waits for (held by
/// the next thread of the cycle).
pub(crate) type Step = (ThreadId, WaitTarget);

/// The cycle of waits through `thread`, if its wait closed one, in the
/// order of the waits, starting with `thread`. `waits_for(t, holders)`
/// tells what `t` waits for, if anything, with the threads other than `t`
/// that hold it in `holders` (cleared first); `threads` bounds the chain.
pub(crate) fn find_cycle(
    thread: ThreadId,
    threads: usize,
    holders: &mut Vec<ThreadId>,
    mut waits_for: impl FnMut(ThreadId, &mut Vec<ThreadId>) -> Option<WaitTarget>,
) -> Option<Vec<Step>> {
    let mut at = thread;
    // A chain that has not come back after visiting every thread goes round
    // a cycle that does not pass through `thread`.
    for _ in 0..=threads {
        waits_for(at, holders)?;
        match holders.as_slice() {
            [] => return None,
            [next] if *next != thread => at = *next,
            // Back at `thread`, or a wait with several holders.
            _ => return cycle_by_graph(thread, holders, waits_for),
        }
    }
    None
}

/// [`find_cycle`] by building the wait-for graph reachable from `thread`
/// (with petgraph) and searching it: the first successor of `thread`, in
/// holder order, with a path back to it, and the shortest such path.
pub(crate) fn cycle_by_graph(
    thread: ThreadId,
    holders: &mut Vec<ThreadId>,
    mut waits_for: impl FnMut(ThreadId, &mut Vec<ThreadId>) -> Option<WaitTarget>,
) -> Option<Vec<Step>> {
    let mut graph: DiGraphMap<u32, WaitTarget> = DiGraphMap::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![thread];
    while let Some(t) = stack.pop() {
        if !seen.insert(t) {
            continue;
        }
        graph.add_node(t.0);
        if let Some(target) = waits_for(t, holders) {
            for &h in holders.iter() {
                graph.add_edge(t.0, h.0, target);
                stack.push(h);
            }
        }
    }
    let successors: Vec<u32> = graph.neighbors(thread.0).collect();
    let path = successors.into_iter().find_map(|next| {
        petgraph::algo::astar(&graph, next, |n| n == thread.0, |_| 1u32, |_| 0)
            .map(|(_, path)| path)
    })?;
    // path: next, ..., thread. The cycle starts with `thread`.
    let mut nodes = vec![thread.0];
    nodes.extend(path.iter().copied().take(path.len() - 1));
    let steps = nodes
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let next = nodes[(i + 1) % nodes.len()];
            let target = *graph.edge_weight(t, next).expect("an edge of the cycle");
            (ThreadId(t), target)
        })
        .collect();
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ResourceId;
    use proptest::prelude::*;

    /// A made-up moment of a run: per thread, what it waits for (a thread to
    /// join, or a resource) if anything; per resource, its holders.
    #[derive(Clone, Debug)]
    struct Moment {
        waits: Vec<Option<WaitTarget>>,
        holders: Vec<Vec<ThreadId>>,
    }

    impl Moment {
        fn waits_for(&self, t: ThreadId, out: &mut Vec<ThreadId>) -> Option<WaitTarget> {
            out.clear();
            let target = self.waits[t.index()]?;
            match target {
                WaitTarget::Thread(j) => out.push(j),
                WaitTarget::Resource(r) => out.extend(&self.holders[r.index()]),
            }
            out.retain(|&h| h != t);
            Some(target)
        }
    }

    /// Up to 8 threads and 6 resources; most resources have at most one
    /// holder (mutexes), some several (an rwlock's readers).
    fn moment() -> impl Strategy<Value = Moment> {
        (2usize..9, 1usize..7).prop_flat_map(|(threads, resources)| {
            let wait = prop_oneof![
                2 => Just(None),
                1 => (0..threads as u32).prop_map(|t| Some(WaitTarget::Thread(ThreadId(t)))),
                4 => (0..resources as u32)
                    .prop_map(|r| Some(WaitTarget::Resource(ResourceId(r)))),
            ];
            let holder = (0..threads as u32).prop_map(ThreadId);
            let holders = prop_oneof![
                4 => proptest::collection::vec(holder.clone(), 0..2),
                1 => proptest::collection::vec(holder, 0..4),
            ];
            (
                proptest::collection::vec(wait, threads),
                proptest::collection::vec(holders, resources),
            )
                .prop_map(|(waits, holders)| Moment { waits, holders })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Following the chain finds a cycle exactly when the graph search
        /// does, and reports the same one.
        #[test]
        fn agrees_with_the_graph_search(m in moment(), start in 0u32..8) {
            let start = ThreadId(start % m.waits.len() as u32);
            let mut holders = Vec::new();
            let fast = find_cycle(start, m.waits.len(), &mut holders, |t, h| m.waits_for(t, h));
            let slow = cycle_by_graph(start, &mut holders, |t, h| m.waits_for(t, h));
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn a_chain_that_ends_is_no_cycle_and_a_closed_one_is() {
        let m = |last: Option<WaitTarget>| Moment {
            // 0 waits for r0 (held by 1), 1 joins 2, 2 waits for `last`.
            waits: vec![
                Some(WaitTarget::Resource(ResourceId(0))),
                Some(WaitTarget::Thread(ThreadId(2))),
                last,
            ],
            holders: vec![vec![ThreadId(1)], vec![ThreadId(0)]],
        };
        let mut holders = Vec::new();
        let open = m(None);
        assert_eq!(
            find_cycle(ThreadId(0), 3, &mut holders, |t, h| open.waits_for(t, h)),
            None
        );
        let closed = m(Some(WaitTarget::Resource(ResourceId(1))));
        let cycle = find_cycle(ThreadId(0), 3, &mut holders, |t, h| closed.waits_for(t, h));
        let threads: Vec<u32> = cycle.unwrap().iter().map(|s| s.0 .0).collect();
        assert_eq!(threads, [0, 1, 2]);
    }

    #[test]
    fn a_loop_beyond_the_thread_is_not_its_deadlock() {
        // 0 waits for 1; 1 and 2 wait for each other: a cycle, not 0's.
        let m = Moment {
            waits: vec![
                Some(WaitTarget::Thread(ThreadId(1))),
                Some(WaitTarget::Thread(ThreadId(2))),
                Some(WaitTarget::Thread(ThreadId(1))),
            ],
            holders: vec![],
        };
        let mut holders = Vec::new();
        assert_eq!(
            find_cycle(ThreadId(0), 3, &mut holders, |t, h| m.waits_for(t, h)),
            None
        );
    }
}
