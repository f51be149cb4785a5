//! Schedule exploration: run a scenario many times, each time with another
//! chooser (random, PCT, or bounded depth-first search), find the runs that
//! fail, and shrink a failing schedule to the fewest preemptions.
//!
//! The driver is generic over a [`Scenario`], so the Rust API and scripts
//! explore the same way. Runs are spread over `jobs` threads with rayon in
//! index-ordered batches, so the report is identical for any number of jobs.

mod shrink;
mod strategy;

use std::collections::BTreeMap;

use rayon::prelude::*;

pub use shrink::{shrink, shrink_failure, LenientReplayChooser, ShrinkBudget, Shrunk};
pub use strategy::{dfs_covered, dfs_next, mix, preemptions, steps, PctChooser};

use strategy::can_preempt_more;

use crate::kernel::{Chooser, Decision, RandomChooser, ReplayChooser};

/// How schedules are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Every decision uniformly at random (run `i` seeded with `mix(seed, i)`).
    Random,
    /// PCT with bug depth `depth`.
    Pct {
        /// The bug depth the search targets (change points + 1).
        depth: u32,
    },
    /// Every schedule with at most `preemptions` preemptions, depth first,
    /// those with none first, then those with one, and so on (iterative
    /// preemption bounding). Sequential (one job).
    Dfs {
        /// The preemption bound.
        preemptions: u32,
    },
}

/// Options of an exploration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExploreOptions {
    /// At most this many runs.
    pub runs: u64,
    /// How schedules are chosen.
    pub strategy: Strategy,
    /// Worker threads (random and PCT).
    pub jobs: usize,
    /// The seed everything derives from.
    pub seed: u64,
    /// Collect distinct failures instead of stopping at the first.
    pub keep_going: bool,
}

/// What failed in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    /// What failed, where and when, for people.
    pub message: String,
    /// Which failure it is: its kind and location (the expectation, the
    /// deadlock cycle, the pair of racing accesses), without the times or
    /// values that differ between runs failing the same way. Shrinking
    /// keeps it, and `keep_going` collects one failure per key.
    pub key: String,
}

impl From<String> for Failed {
    /// A failure whose message is its key.
    fn from(message: String) -> Self {
        Failed {
            key: message.clone(),
            message,
        }
    }
}

/// What one run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What failed, or `None` when the run passed.
    pub failure: Option<Failed>,
    /// The decisions the run took.
    pub decisions: Vec<Decision>,
    /// A key for counting distinct outcomes (e.g. final values).
    pub outcome: String,
}

/// Something to explore: one run per call, with the given chooser, which
/// takes every decision (jitter included). `seed` is the run's own seed, for
/// a scenario that draws randomness of its own. Built once per worker
/// thread, so it need not be `Send`.
pub trait Scenario {
    /// Runs once.
    fn run(&mut self, chooser: Box<dyn Chooser>, seed: u64) -> Verdict;
}

/// A failing run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Its index among the runs.
    pub run: u64,
    /// Its seed.
    pub seed: u64,
    /// What failed.
    pub message: String,
    /// Which failure it is (see [`Failed::key`]).
    pub key: String,
    /// The decisions it took.
    pub decisions: Vec<Decision>,
}

/// Where an exploration stands, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Runs done.
    pub runs: u64,
    /// Failing runs so far.
    pub failures: u64,
}

/// What an exploration found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExploreReport {
    /// Runs made.
    pub runs: u64,
    /// How many runs ended in each outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Failing runs in run order; with `keep_going`, one per distinct
    /// [`Failed::key`].
    pub failures: Vec<Failure>,
    /// True when DFS ran every schedule within its bound (it stops early
    /// when no schedule can take one more preemption).
    pub exhausted: bool,
    /// DFS: what each bound it reached covered, from bound 0 up.
    pub bounds: Vec<BoundCoverage>,
}

/// How much of the tree of schedules with at most `bound` preemptions DFS
/// covered (it runs bound 0, then 1, … up to the bound asked for, as CHESS
/// does, so that a larger bound never finds less than a smaller one).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoundCoverage {
    /// The preemption bound.
    pub bound: u32,
    /// Schedules with exactly `bound` preemptions run.
    pub schedules: u64,
    /// Schedules with fewer (run under a smaller bound) run again to reach
    /// the new ones.
    pub reruns: u64,
    /// The share of the tree covered, from 0 to 1: 1 when every schedule
    /// within the bound ran; otherwise an estimate that counts every subtree
    /// as alike (see [`dfs_covered`]).
    pub covered: f64,
}

/// Runs in the first batch (a batch is the unit of parallel work and of
/// stopping). The first batch is this small, so that a failure found early stops the
/// search early; each next batch doubles, up to [`BATCH`], so that long
/// searches pay little for the hand-offs between batches. The sizes do not
/// depend on the number of jobs, so neither does the report.
///
/// PCT runs one run alone first: it has no run length to place change
/// points in yet, so that run has none, and every later batch places them
/// over the longest run of the batches before it.
const FIRST_BATCH: u64 = 16;
/// The largest batch.
const BATCH: u64 = 1024;

impl ExploreReport {
    fn record(&mut self, run: u64, seed: u64, verdict: Verdict, keep_going: bool) {
        self.runs += 1;
        *self.outcomes.entry(verdict.outcome).or_default() += 1;
        if let Some(failed) = verdict.failure {
            let known = self.failures.iter().any(|f| f.key == failed.key);
            if self.failures.is_empty() || (keep_going && !known) {
                self.failures.push(Failure {
                    run,
                    seed,
                    message: failed.message,
                    key: failed.key,
                    decisions: verdict.decisions,
                });
            }
        }
    }

    fn done(&self, keep_going: bool) -> bool {
        !keep_going && !self.failures.is_empty()
    }
}

/// Explores: see the module documentation.
pub fn explore<S, M, P>(options: &ExploreOptions, make: M, progress: P) -> ExploreReport
where
    S: Scenario,
    M: Fn() -> S + Sync,
    P: Fn(Progress) + Sync,
{
    let mut report = ExploreReport::default();
    let mut failing = 0;
    match options.strategy {
        Strategy::Dfs { preemptions: max } => {
            let mut scenario = make();
            for bound in 0..=max {
                let mut coverage = BoundCoverage {
                    bound,
                    schedules: 0,
                    reruns: 0,
                    covered: 0.0,
                };
                // Whether a schedule of this bound could take one more
                // preemption: if none can, no larger bound has anything new.
                let mut extensible = false;
                let mut prefix = Vec::new();
                while report.runs < options.runs && !report.done(options.keep_going) {
                    let verdict = scenario.run(Box::new(ReplayChooser::new(prefix)), options.seed);
                    let next = dfs_next(&verdict.decisions, bound);
                    coverage.covered = dfs_covered(&verdict.decisions, bound);
                    // A schedule keeps the preemptions of its prefix (past
                    // it every answer is 0: no preemption), so one with
                    // fewer than `bound` ran under a smaller bound: it runs
                    // again only to reach the new ones beside it.
                    if preemptions(&verdict.decisions) < bound as usize {
                        coverage.reruns += 1;
                        report.runs += 1;
                    } else {
                        coverage.schedules += 1;
                        extensible |= can_preempt_more(&verdict.decisions);
                        failing += u64::from(verdict.failure.is_some());
                        report.record(report.runs, options.seed, verdict, options.keep_going);
                    }
                    progress(Progress {
                        runs: report.runs,
                        failures: failing,
                    });
                    match next {
                        Some(next) => prefix = next,
                        None => {
                            coverage.covered = 1.0;
                            break;
                        }
                    }
                }
                let complete = coverage.covered >= 1.0;
                report.bounds.push(coverage);
                if !complete {
                    break;
                }
                if bound == max || !extensible {
                    report.exhausted = true;
                    break;
                }
            }
        }
        strategy => {
            // PCT's estimate of a run's length: the longest run so far.
            let mut longest = 0;
            let run_one = |scenario: &mut S, run: u64, longest: u64| {
                let seed = mix(options.seed, run);
                let chooser: Box<dyn Chooser> = match strategy {
                    Strategy::Pct { depth } => Box::new(PctChooser::new(seed, depth, longest)),
                    _ => Box::new(RandomChooser::new(seed)),
                };
                (run, seed, scenario.run(chooser, seed))
            };
            // One job runs on the calling thread: no pool, no hand-offs.
            let pool = (options.jobs > 1).then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(options.jobs)
                    .build()
                    .expect("a thread pool")
            });
            let mut local = None;
            let mut start = 0;
            let mut batch = match strategy {
                Strategy::Pct { .. } => 1,
                _ => FIRST_BATCH,
            };
            while start < options.runs && !report.done(options.keep_going) {
                let end = (start + batch).min(options.runs);
                batch = (2 * batch).clamp(FIRST_BATCH, BATCH);
                let verdicts: Vec<(u64, u64, Verdict)> = match &pool {
                    Some(pool) => pool.install(|| {
                        (start..end)
                            .into_par_iter()
                            .map_init(&make, |scenario, run| run_one(scenario, run, longest))
                            .collect()
                    }),
                    None => {
                        let scenario = local.get_or_insert_with(&make);
                        (start..end)
                            .map(|run| run_one(scenario, run, longest))
                            .collect()
                    }
                };
                for (run, seed, verdict) in verdicts {
                    longest = longest.max(steps(&verdict.decisions));
                    failing += u64::from(verdict.failure.is_some());
                    report.record(run, seed, verdict, options.keep_going);
                }
                progress(Progress {
                    runs: report.runs,
                    failures: failing,
                });
                start = end;
            }
        }
    }
    report
}

#[cfg(test)]
mod tests;
