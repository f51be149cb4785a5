//! Shrinking a failing schedule to the fewest preemptions that still fail
//! the same way.

use std::time::{Duration, Instant};

use super::{Failure, Scenario};
use crate::kernel::{Choice, ChoicePoint, Chooser, ChooserError, Decision};

/// Replays a decision list as far as it fits: where the run asks a question
/// the list does not match (another kind of point, or too few options), and
/// past its end, it takes option 0. Shrinking changes early decisions, which
/// changes later questions; a strict replay would refuse those candidates.
#[derive(Clone, Debug)]
pub struct LenientReplayChooser {
    decisions: Vec<Decision>,
    next: usize,
}

impl LenientReplayChooser {
    /// Follows `decisions` where they fit.
    pub fn new(decisions: Vec<Decision>) -> Self {
        LenientReplayChooser { decisions, next: 0 }
    }
}

impl Chooser for LenientReplayChooser {
    fn choose(&mut self, choice: &Choice<'_>) -> Result<usize, ChooserError> {
        let recorded = self.decisions.get(self.next);
        self.next += 1;
        Ok(match recorded {
            Some(d) if d.point == choice.point && (d.chosen as usize) < choice.options => {
                d.chosen as usize
            }
            _ => 0,
        })
    }
}

/// How much shrinking may cost: at most `runs` candidate runs and about
/// `time` of wall-clock time (checked before each run, so a long run may
/// overshoot by one run). Shrinking is greedy and stops early when either
/// runs out; the schedule it has then still fails, with fewer preemptions
/// perhaps than a longer search would leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShrinkBudget {
    /// Candidate runs.
    pub runs: u64,
    /// Wall-clock time.
    pub time: Duration,
}

impl Default for ShrinkBudget {
    /// 2,000 runs or a minute, whichever comes first.
    fn default() -> Self {
        ShrinkBudget {
            runs: 2000,
            time: Duration::from_secs(60),
        }
    }
}

/// A shrunk schedule and what shrinking it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shrunk {
    /// The schedule: it fails as the original did.
    pub decisions: Vec<Decision>,
    /// Candidate runs made.
    pub runs: u64,
    /// Wall-clock time spent.
    pub elapsed: Duration,
    /// True when the budget ran out before the greedy search was done.
    pub out_of_budget: bool,
}

/// Shrinks `decisions` within `budget`: `fails` runs a candidate (with a
/// [`LenientReplayChooser`]) and returns the decisions that run really took
/// when it still failed. Greedy, to a fixpoint: first every preemption is
/// tried at 0 (latest first), then every other non-default choice; trailing
/// default choices are dropped at the end (replay takes 0 past the end).
pub fn shrink(
    decisions: &[Decision],
    budget: ShrinkBudget,
    mut fails: impl FnMut(&[Decision]) -> Option<Vec<Decision>>,
) -> Shrunk {
    let started = Instant::now();
    let mut runs = 0;
    let mut out_of_budget = false;
    let mut best = decisions.to_vec();
    'phases: for preempt_only in [true, false] {
        loop {
            let mut improved = false;
            let mut i = best.len();
            while i > 0 {
                i -= 1;
                let Some(d) = best.get(i).copied() else {
                    continue;
                };
                if d.chosen == 0 || (preempt_only && d.point != ChoicePoint::Preempt) {
                    continue;
                }
                if runs >= budget.runs || started.elapsed() >= budget.time {
                    out_of_budget = true;
                    break 'phases;
                }
                runs += 1;
                let mut candidate = best.clone();
                candidate[i].chosen = 0;
                if let Some(taken) = fails(&candidate) {
                    if super::strategy::preemptions(&taken) <= super::strategy::preemptions(&best) {
                        best = taken;
                        improved = true;
                    }
                }
            }
            if !improved {
                break;
            }
        }
    }
    while best.last().is_some_and(|d| d.chosen == 0) {
        best.pop();
    }
    Shrunk {
        decisions: best,
        runs,
        elapsed: started.elapsed(),
        out_of_budget,
    }
}

/// Shrinks `failure`, a failing run of `scenario`, with [`shrink`]: a
/// candidate counts only when it fails the same way (the same
/// [`super::Failed::key`]: the same expectation, deadlock cycle or race
/// pair), so that the shrunk schedule replays the failure that was found,
/// not another one with fewer preemptions.
pub fn shrink_failure<S: Scenario + ?Sized>(
    scenario: &mut S,
    failure: &Failure,
    budget: ShrinkBudget,
) -> Shrunk {
    shrink(&failure.decisions, budget, |candidate| {
        let chooser = Box::new(LenientReplayChooser::new(candidate.to_vec()));
        let verdict = scenario.run(chooser, failure.seed);
        let same = verdict.failure.is_some_and(|f| f.key == failure.key);
        same.then_some(verdict.decisions)
    })
}
