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
/// running thread). At `depth - 1` distinct steps, drawn uniformly over the
/// run's length k, the winning thread drops below every other before the
/// choice is made. A thread that yields drops below every other too.
/// Jitter decisions are drawn uniformly and are not steps. Finds a bug of
/// depth d with probability at least 1/(n·k^(d-1)).
///
/// k is not known before a run: the explorer passes the longest run seen
/// so far, in steps (see [`steps`]), as shuttle and Coyote do.
#[derive(Debug)]
pub struct PctChooser {
    rng: ChaCha8Rng,
    priorities: BTreeMap<ThreadId, u64>,
    /// Steps at which the winner is lowered, latest first.
    change_points: Vec<u64>,
    step: u64,
    next_low: u64,
}

/// Priorities of threads not yet lowered live above this.
const HIGH: u64 = 1 << 63;

impl PctChooser {
    /// A PCT chooser for runs of about `steps` steps: its `depth - 1`
    /// change points are distinct steps among 1 to `steps - 1` (fewer when
    /// the run is too short to hold them; step 0 is left out, the random
    /// priorities already decide who goes first).
    pub fn new(seed: u64, depth: u32, steps: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let wanted = u64::from(depth.saturating_sub(1)).min(steps.saturating_sub(1));
        let mut change_points = Vec::with_capacity(wanted as usize);
        while (change_points.len() as u64) < wanted {
            let step = rng.random_range(1..steps);
            if !change_points.contains(&step) {
                change_points.push(step);
            }
        }
        change_points.sort_unstable_by(|a, b| b.cmp(a));
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

    /// The option whose thread ranks highest (options without a thread rank
    /// lowest; ties go to the first).
    fn best(&mut self, choice: &Choice<'_>) -> usize {
        let ranks: Vec<u64> = (0..choice.options)
            .map(|i| choice.threads.get(i).map_or(0, |&t| self.priority(t)))
            .collect();
        (0..choice.options)
            .max_by_key(|&i| (ranks[i], std::cmp::Reverse(i)))
            .unwrap_or(0)
    }

    /// Puts `thread` below every thread not lowered yet, and below those
    /// lowered before it.
    fn lower(&mut self, thread: ThreadId) {
        self.priorities.insert(thread, self.next_low);
        self.next_low -= 1;
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
        let mut best = self.best(choice);
        if self.change_points.last() == Some(&step) {
            self.change_points.pop();
            if let Some(&thread) = choice.threads.get(best) {
                self.lower(thread);
                best = self.best(choice);
            }
        }
        Ok(best)
    }

    fn wants_threads(&self) -> bool {
        true
    }

    /// A yield deprioritises the yielding thread, as in shuttle's PCT.
    fn yielded(&mut self, thread: ThreadId) {
        self.lower(thread);
    }
}

/// How many PCT steps a schedule took: its decisions but jitter.
pub fn steps(decisions: &[Decision]) -> u64 {
    decisions
        .iter()
        .filter(|d| d.point != ChoicePoint::Jitter)
        .count() as u64
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

/// Whether a schedule has a preemption point after its last preemption:
/// then a schedule with one more preemption exists.
pub(crate) fn can_preempt_more(decisions: &[Decision]) -> bool {
    decisions
        .iter()
        .rev()
        .take_while(|d| d.point != ChoicePoint::Preempt || d.chosen == 0)
        .any(|d| d.point == ChoicePoint::Preempt)
}

/// The share of the DFS tree within `bound` preemptions that lies at or
/// before the schedule `decisions` in DFS order, counting every subtree as
/// alike (Knuth's estimate: at each decision the options before the one
/// taken are done). A decision past which the bound allows no preemption
/// has one option.
pub fn dfs_covered(decisions: &[Decision], bound: u32) -> f64 {
    let mut covered = 0.0;
    let mut weight = 1.0;
    let mut used = 0;
    for d in decisions {
        let options = if d.point == ChoicePoint::Preempt && used >= bound && d.chosen == 0 {
            1
        } else {
            d.options
        };
        let options = f64::from(options.max(1));
        covered += weight * f64::from(d.chosen) / options;
        weight /= options;
        if d.point == ChoicePoint::Preempt && d.chosen != 0 {
            used += 1;
        }
    }
    covered + weight
}
