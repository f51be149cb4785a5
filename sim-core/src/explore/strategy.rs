//! Choosers that explore: PCT (probabilistic concurrency testing) and the
//! step function of bounded depth-first search.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ids::ThreadId;
use crate::kernel::{Choice, ChoicePoint, Chooser, ChooserError, Decision};

/// SplitMix64: derives the seed of run `index` from the exploration seed,
/// so that every run has its own independent stream.
pub fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// PCT (Burckhardt et al., ASPLOS 2010): every thread gets a random priority
/// when first seen; at each choice the option whose thread has the highest
/// priority wins (a preemption happens when the ready head outranks the
/// running thread). At `depth - 1` random steps the winning thread drops
/// below every other. Jitter decisions are drawn uniformly and are not steps. Finds a bug of depth d with probability at least
/// 1/(n·k^(d-1)).
#[derive(Debug)]
pub struct PctChooser {
    rng: ChaCha8Rng,
    priorities: BTreeMap<ThreadId, u64>,
    change_points: Vec<u64>,
    step: u64,
    next_low: u64,
}

/// Priorities of threads not yet lowered live above this.
const HIGH: u64 = 1 << 63;

impl PctChooser {
    /// A PCT chooser with `depth - 1` change points among the first `steps`
    /// choices.
    pub fn new(seed: u64, depth: u32, steps: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut change_points: Vec<u64> = (1..depth.max(1))
            .map(|_| rng.random_range(0..steps.max(1)))
            .collect();
        change_points.sort_unstable();
        PctChooser {
            rng,
            priorities: BTreeMap::new(),
            change_points,
            step: 0,
            next_low: HIGH - 1,
        }
    }

    fn priority(&mut self, thread: ThreadId) -> u64 {
        let rng = &mut self.rng;
        *self
            .priorities
            .entry(thread)
            .or_insert_with(|| HIGH | rng.random_range(0..HIGH))
    }
}

impl Chooser for PctChooser {
    fn choose(&mut self, choice: &Choice<'_>) -> Result<usize, ChooserError> {
        // Durations are perturbed uniformly; only ordering follows priorities.
        if choice.point == ChoicePoint::Jitter {
            return Ok(self.rng.random_range(0..choice.options));
        }
        let step = self.step;
        self.step += 1;
        let ranks: Vec<u64> = (0..choice.options)
            .map(|i| choice.threads.get(i).map_or(0, |&t| self.priority(t)))
            .collect();
        let best = (0..choice.options)
            .max_by_key(|&i| (ranks[i], std::cmp::Reverse(i)))
            .unwrap_or(0);
        if self.change_points.first() == Some(&step) {
            self.change_points.remove(0);
            if let Some(&thread) = choice.threads.get(best) {
                self.priorities.insert(thread, self.next_low);
                self.next_low -= 1;
            }
        }
        Ok(best)
    }

    fn wants_threads(&self) -> bool {
        true
    }
}

/// How many preemptions a schedule makes: decisions at
/// [`ChoicePoint::Preempt`] that took a thread off its CPU. Other choices
/// (same-instant order, dispatch ties, which waiter wins) are free, as in
/// CHESS.
pub fn preemptions(decisions: &[Decision]) -> usize {
    decisions
        .iter()
        .filter(|d| d.point == ChoicePoint::Preempt && d.chosen != 0)
        .count()
}

/// Bounded depth-first search: given the decisions of the last run, the
/// prefix of the next schedule (the deepest decision with an untried option
/// that keeps within `bound` preemptions, advanced by one), or `None` when
/// every schedule within the bound was run. A prefix replays exactly and
/// takes option 0 past its end.
pub fn dfs_next(decisions: &[Decision], bound: u32) -> Option<Vec<Decision>> {
    for i in (0..decisions.len()).rev() {
        let d = decisions[i];
        if d.chosen + 1 >= d.options {
            continue;
        }
        let mut next = decisions[..=i].to_vec();
        next[i].chosen += 1;
        if preemptions(&next) <= bound as usize {
            return Some(next);
        }
    }
    None
}
