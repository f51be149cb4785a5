//! A script as something to explore: one evaluation per run, judged by what
//! failed in it (a script error, a deadlock or stall the script did not
//! declare, a failed expectation, and, when asked, a data race), with a key
//! that says which failure it is, so that shrinking keeps it.

use std::rc::Rc;

use super::{RunOptions, Script, ScriptOutcome, ScriptRun};
use crate::analysis::{deadlock, race};
use crate::explore::{Failed, Scenario, Verdict};
use crate::kernel::{Chooser, Outcome};
use crate::trace::{AccessKind, Race, Trace};

/// How the runs of a script are judged and counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judging {
    /// Count a data race as a failure.
    pub races: bool,
    /// Count outcomes by this variable's final value (for a histogram)
    /// instead of by every variable's.
    pub histogram: Option<String>,
}

/// A compiled script explored run by run: each run evaluates it afresh
/// with the run's chooser and seed.
#[derive(Debug)]
pub struct ScriptScenario {
    script: Rc<Script>,
    options: RunOptions,
    judging: Judging,
}

impl ScriptScenario {
    /// Explores `script` evaluated with `options` (their seed and schedule
    /// are the run's own), judged by `judging`.
    pub fn new(script: Rc<Script>, options: RunOptions, judging: Judging) -> Self {
        ScriptScenario {
            script,
            options,
            judging,
        }
    }
}

impl Scenario for ScriptScenario {
    fn run(&mut self, chooser: Box<dyn Chooser>, seed: u64) -> Verdict {
        let options = RunOptions {
            seed: Some(seed),
            schedule: None,
            ..self.options.clone()
        };
        let outcome = self.script.run_with_chooser(&options, chooser);
        verdict(&outcome, &self.judging)
    }
}

/// What failed in an evaluation, if anything, and its outcome key.
pub fn verdict(outcome: &ScriptOutcome, judging: &Judging) -> Verdict {
    let mut failure = outcome.error.as_ref().map(|e| Failed {
        message: format!("script error: {}", e.message),
        key: match e.position {
            Some((line, column)) => format!("script error at {line}:{column}"),
            // A limit's message names the time it struck: keep its kind.
            None => format!(
                "script error: {}",
                e.message.split(':').next().unwrap_or_default()
            ),
        },
    });
    for run in &outcome.runs {
        if failure.is_some() {
            break;
        }
        failure = run_failure(run, judging);
    }
    let key = match &judging.histogram {
        Some(name) => outcome
            .runs
            .iter()
            .flat_map(|r| r.trace.variables.iter())
            .find(|v| &v.name == name)
            .map_or_else(|| "-".to_string(), |v| v.value.to_string()),
        None => outcome
            .runs
            .iter()
            .map(|r| {
                let values: Vec<String> = r
                    .trace
                    .variables
                    .iter()
                    .map(|v| format!("{}={}", v.name, v.value))
                    .collect();
                format!("{}: {}", r.label, values.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; "),
    };
    Verdict {
        failure,
        decisions: outcome.schedule(),
        outcome: key,
    }
}

/// What failed in one machine run: its ending, then its expectations, then
/// (when judged so) its first race.
fn run_failure(run: &ScriptRun, judging: &Judging) -> Option<Failed> {
    let label = &run.label;
    let intended = run.outcome_failure().is_none();
    let ending = match &run.outcome {
        Outcome::Deadlocked(_) | Outcome::Stalled(_) if intended => None,
        Outcome::Deadlocked(_) => {
            let mut steps = run
                .trace
                .deadlock
                .as_ref()
                .map(|d| deadlock::explain(d, &run.trace))
                .unwrap_or_default();
            let message = format!("deadlock in '{label}': {}", steps.join("; "));
            // The same cycle, whichever thread closed it.
            steps.sort();
            let key = format!("deadlock in '{label}': {}", steps.join("; "));
            Some(Failed { message, key })
        }
        Outcome::Stalled(waiting) => Some(Failed::from(format!(
            "stall in '{label}': {}",
            waiting
                .iter()
                .map(|w| format!(
                    "{} waits for {}",
                    run.trace.threads[w.thread.index()].name,
                    deadlock::describe_state(&run.trace, w.state)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => None,
    };
    ending
        .or_else(|| {
            run.expectations()
                .iter()
                .find(|e| !e.held)
                .map(|e| Failed::from(format!("expectation '{}' failed in '{label}'", e.name)))
        })
        .or_else(|| {
            let first = run.trace.races.first().filter(|_| judging.races)?;
            Some(Failed {
                message: race::explain(first, &run.trace),
                key: format!("{} in '{label}'", race_location(first, &run.trace)),
            })
        })
}

/// A race by where it is: the variable and both accesses' kinds and script
/// positions, in a fixed order (not which thread came first, nor when).
fn race_location(race: &Race, trace: &Trace) -> String {
    let name = trace
        .variables
        .get(race.variable.index())
        .map_or("?", |v| v.name.as_str());
    let mut sides = [race.first, race.second].map(|a| {
        let verb = match a.kind {
            AccessKind::Load => "load",
            AccessKind::Store => "store",
        };
        format!("{verb}{}", trace.at(a.origin))
    });
    sides.sort();
    format!("data race on '{name}': {} and {}", sides[0], sides[1])
}
