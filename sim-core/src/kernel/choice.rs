//! The one choice point of the kernel.
//!
//! Wherever more than one outcome is legal (two events at the same instant, a
//! tie between ready threads, which waiter wins a resource, whether a thread is
//! preempted at a zero-time operation) the kernel asks its [`Chooser`] and
//! records the answer as a [`Decision`]. A run's decisions, fed back through a
//! [`ReplayChooser`], reproduce the run exactly; exploration only swaps the
//! chooser and never needs a change to the kernel.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::snapshot::Snapshot;
use crate::ids::ThreadId;

/// What kind of decision the kernel is asking for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChoicePoint {
    /// Several events fall on the same instant: which is handled first.
    /// Options are in the order the events were scheduled.
    SameInstant,
    /// A free CPU takes a ready thread and the policy ties between the first
    /// few in its queue. Options are in queue order.
    Dispatch,
    /// A resource released to several waiters: which one gets it. Options are
    /// in the order the waiters arrived.
    Waiter,
    /// A thread made a zero-time operation while others are ready: option 0
    /// keeps it running, option 1 preempts it.
    Preempt,
    /// A compute or sleep duration is perturbed (`--jitter P`): option 0
    /// keeps it as written; option `2k - 1` lengthens it and option `2k`
    /// shortens it by `k` thousandths, for `k` up to `10 * P`. See
    /// [`jitter_options`] and [`jittered`].
    Jitter,
}

/// How many options a [`ChoicePoint::Jitter`] question has for `percent`:
/// as written, then every step of 0.1% up to `percent` either way.
pub fn jitter_options(percent: u32) -> usize {
    20 * percent as usize + 1
}

/// The duration `nanos` under option `chosen` of a [`ChoicePoint::Jitter`]
/// question (see there). Never below zero.
pub fn jittered(nanos: u64, chosen: usize) -> u64 {
    let k = chosen.div_ceil(2) as u128;
    let offset = (u128::from(nanos) * k / 1000) as u64;
    if chosen % 2 == 1 {
        nanos.saturating_add(offset)
    } else {
        nanos.saturating_sub(offset)
    }
}

/// One question to a [`Chooser`]: pick an index below `options`.
#[derive(Clone, Copy, Debug)]
pub struct Choice<'a> {
    /// The kind of decision.
    pub point: ChoicePoint,
    /// How many options there are (always at least 2).
    pub options: usize,
    /// The thread each option concerns, where there is one, in option order.
    /// Strategies that rank threads (PCT) use it; it is filled in only for
    /// choosers whose [`Chooser::wants_threads`] is true, and may be shorter
    /// than `options` when some options concern no thread.
    pub threads: &'a [ThreadId],
}

/// A decision taken during a run: which option of how many, at what kind of point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Decision {
    /// The kind of decision.
    pub point: ChoicePoint,
    /// How many options there were.
    pub options: u32,
    /// The option taken.
    pub chosen: u32,
}

/// A chooser refused to answer, e.g. a replay that no longer matches the run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChooserError(pub String);

/// Decides every nondeterministic choice of a run.
pub trait Chooser: fmt::Debug {
    /// Picks an option, an index below `choice.options`.
    fn choose(&mut self, choice: &Choice<'_>) -> Result<usize, ChooserError>;

    /// Whether [`Choice::threads`] should be filled in. Strategies that rank
    /// threads say yes; the others spare the kernel the work.
    fn wants_threads(&self) -> bool {
        false
    }

    /// `thread` gave up its CPU by itself (`yield_now`). Not a decision:
    /// strategies that rank threads (PCT) lower it, so that a thread
    /// spinning with yields lets the one it waits for run.
    fn yielded(&mut self, thread: ThreadId) {
        let _ = thread;
    }

    /// Whether this chooser looks at the run when it decides (through
    /// [`Chooser::choose_seeing`]). Asked once, when the chooser is set:
    /// only then does the engine keep each thread's script position.
    fn wants_snapshot(&self) -> bool {
        false
    }

    /// [`Chooser::choose`] for a chooser whose [`Chooser::wants_snapshot`]
    /// is true: the engine calls this instead, and `snapshot` builds a
    /// [`Snapshot`] of the run as it stands, only if called (`simcli step`
    /// calls it at the one decision it shows, not at those it replays).
    fn choose_seeing(
        &mut self,
        choice: &Choice<'_>,
        snapshot: &dyn Fn() -> Snapshot,
    ) -> Result<usize, ChooserError> {
        let _ = snapshot;
        self.choose(choice)
    }

    /// For a chooser whose [`Chooser::wants_snapshot`] is true: the run is
    /// over (finished, deadlocked, stalled or stopped), and `snapshot`
    /// shows it as it ended.
    fn run_ended(&mut self, snapshot: &dyn Fn() -> Snapshot) {
        let _ = snapshot;
    }
}

/// The deterministic default: always the first option, which the kernel orders
/// FIFO by the time things became ready, then by creation order.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirstChooser;

impl Chooser for FirstChooser {
    fn choose(&mut self, _choice: &Choice<'_>) -> Result<usize, ChooserError> {
        Ok(0)
    }
}

/// Picks uniformly at random from a seeded generator (ChaCha8, the same stream
/// on every machine).
#[derive(Clone, Debug)]
pub struct RandomChooser {
    rng: ChaCha8Rng,
}

impl RandomChooser {
    /// A chooser whose every draw follows from `seed`.
    pub fn new(seed: u64) -> Self {
        RandomChooser {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl Chooser for RandomChooser {
    fn choose(&mut self, choice: &Choice<'_>) -> Result<usize, ChooserError> {
        Ok(self.rng.random_range(0..choice.options))
    }
}

/// Feeds back a recorded list of decisions, checking that each question is the
/// one recorded. Past the end of the list it answers like [`FirstChooser`], so
/// a prefix of a schedule is a schedule too.
#[derive(Clone, Debug)]
pub struct ReplayChooser {
    decisions: Vec<Decision>,
    next: usize,
}

impl ReplayChooser {
    /// A chooser that replays `decisions` in order.
    pub fn new(decisions: Vec<Decision>) -> Self {
        ReplayChooser { decisions, next: 0 }
    }
}

impl Chooser for ReplayChooser {
    fn choose(&mut self, choice: &Choice<'_>) -> Result<usize, ChooserError> {
        let Some(recorded) = self.decisions.get(self.next) else {
            return Ok(0);
        };
        let index = self.next;
        self.next += 1;
        if recorded.point != choice.point || recorded.options as usize != choice.options {
            return Err(ChooserError(format!(
                "replay diverged at decision {index}: recorded {:?} with {} options, \
                 but the run asked {:?} with {} options (the scenario or its options changed)",
                recorded.point, recorded.options, choice.point, choice.options
            )));
        }
        if recorded.chosen >= recorded.options {
            return Err(ChooserError(format!(
                "replay decision {index} picks option {} of {}",
                recorded.chosen, recorded.options
            )));
        }
        Ok(recorded.chosen as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(
        chooser: &mut dyn Chooser,
        point: ChoicePoint,
        options: usize,
    ) -> Result<usize, ChooserError> {
        chooser.choose(&Choice {
            point,
            options,
            threads: &[],
        })
    }

    #[test]
    fn jitter_options_step_by_a_thousandth_either_way() {
        assert_eq!(jitter_options(5), 101);
        assert_eq!(jittered(10_000, 0), 10_000);
        assert_eq!(jittered(10_000, 1), 10_010);
        assert_eq!(jittered(10_000, 2), 9_990);
        // The last options are the full 5% either way.
        assert_eq!(jittered(10_000, 99), 10_500);
        assert_eq!(jittered(10_000, 100), 9_500);
    }

    #[test]
    fn random_is_seeded_and_in_range() {
        let draw = |seed| {
            let mut c = RandomChooser::new(seed);
            (0..100)
                .map(|_| ask(&mut c, ChoicePoint::Dispatch, 5).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(7).iter().all(|&i| i < 5));
    }

    #[test]
    fn replay_checks_the_question_and_falls_back_to_first() {
        let d = |point, options, chosen| Decision {
            point,
            options,
            chosen,
        };
        let mut c = ReplayChooser::new(vec![d(ChoicePoint::Waiter, 3, 2)]);
        assert_eq!(ask(&mut c, ChoicePoint::Waiter, 3), Ok(2));
        assert_eq!(ask(&mut c, ChoicePoint::Waiter, 3), Ok(0));
        let mut c = ReplayChooser::new(vec![d(ChoicePoint::Waiter, 3, 2)]);
        let err = ask(&mut c, ChoicePoint::Preempt, 2).unwrap_err();
        assert!(err.0.contains("diverged at decision 0"), "{err}");
    }
}
