//! The replay-to-decision engine of `simcli step`, with no terminal in it.
//!
//! The kernel asks its chooser synchronously from inside a run, and thread
//! bodies are coroutines, so a run cannot be left waiting for a key. A
//! [`Session`] therefore keeps the list of decisions made so far and, at
//! every step, evaluates the script again from the start with a
//! [`StepChooser`] that replays that list and stops the run at the first
//! decision past it, keeping a [`Snapshot`] of the run there: that is a
//! [`Pause`]. Picking an option appends it and evaluates again; undoing
//! goes back to the list before the last move. Runs are deterministic, so
//! each evaluation reaches exactly the same state as the last one did.

use std::cell::RefCell;
use std::rc::Rc;

use sim_core::ids::ThreadId;
use sim_core::kernel::{Choice, ChoicePoint, Chooser, ChooserError, Decision, Snapshot};
use sim_core::script::{RunOptions, Script, ScriptOutcome};

/// What the [`StepChooser`] says when it stops a run at a new decision.
const PAUSED: &str = "simcli step: paused at a decision";

/// Runs that `a` may make looking for the next decision that matters.
pub const AUTO_RUNS: usize = 2000;

/// Decisions the look-ahead for the threads' next operations watches.
const LOOK_AHEAD: usize = 200;

/// A decision the run stopped at, waiting for a move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pause {
    /// Its number in the run's list of decisions (from 0).
    pub index: usize,
    /// The kind of decision.
    pub point: ChoicePoint,
    /// How many options it has.
    pub options: usize,
    /// The thread each option concerns, where there is one (see
    /// [`Choice::threads`]).
    pub threads: Vec<ThreadId>,
    /// The run as it stood.
    pub snapshot: Snapshot,
    /// The machine running, named when the script has run another before
    /// or named it (`machine(#{ name: ... })`).
    pub machine: Option<String>,
    /// For each thread of the snapshot, the script position of the
    /// operation it calls next, where known (see [`Session`]'s look-ahead).
    pub next: Vec<Option<(u32, u32)>>,
}

/// Where the last evaluation stopped.
#[derive(Debug)]
pub enum Stop {
    /// At a decision with several options.
    Paused(Pause),
    /// At the end of the script: the evaluation as `simcli run` would have
    /// made it with the same decisions.
    Ended(ScriptOutcome),
}

/// A move the player cannot make; the session is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// An option number out of range.
    #[error("there is no choice {given}: pick 1 to {options}")]
    OutOfRange {
        /// The number given (1-based, as shown).
        given: usize,
        /// How many options there are.
        options: usize,
    },
    /// A pick or `a` after the run ended.
    #[error("the run has ended: undo (u) or quit (q)")]
    Ended,
    /// `u` with no move to undo.
    #[error("nothing to undo: this is the first decision")]
    NothingToUndo,
    /// A list of decisions that does not fit the script.
    #[error("{0}")]
    Schedule(String),
}

/// What the shared state of a [`StepChooser`] holds between runs.
#[derive(Debug, Default)]
struct Shared {
    replay: Vec<Decision>,
    next: usize,
    /// Stop at the first decision past `replay` (else answer option 0 on).
    stop: bool,
    pause: Option<Pause>,
    diverged: Option<String>,
    /// Past `replay`, answer option 0 and keep a snapshot at each decision
    /// (the look-ahead), up to [`LOOK_AHEAD`] of them.
    watch: bool,
    seen: Vec<Snapshot>,
    /// The look-ahead has seen the end of the paused machine's run.
    looked: bool,
}

/// Replays a list of decisions, then either stops the run at the next one
/// (keeping a [`Pause`]) or answers like the default chooser.
#[derive(Clone, Debug)]
pub struct StepChooser(Rc<RefCell<Shared>>);

impl Chooser for StepChooser {
    fn choose(&mut self, choice: &Choice<'_>) -> Result<usize, ChooserError> {
        self.choose_seeing(choice, &Snapshot::default)
    }

    fn wants_threads(&self) -> bool {
        true
    }

    fn wants_snapshot(&self) -> bool {
        true
    }

    fn run_ended(&mut self, snapshot: &dyn Fn() -> Snapshot) {
        let mut shared = self.0.borrow_mut();
        // The look-ahead's last look: threads that blocked for good (a
        // deadlock) called their next operation after the last decision.
        if shared.watch && !shared.looked && shared.next >= shared.replay.len() {
            shared.seen.push(snapshot());
            // Later machines of the script have threads of their own.
            shared.looked = true;
        }
    }

    fn choose_seeing(
        &mut self,
        choice: &Choice<'_>,
        snapshot: &dyn Fn() -> Snapshot,
    ) -> Result<usize, ChooserError> {
        let mut shared = self.0.borrow_mut();
        let index = shared.next;
        shared.next += 1;
        if let Some(recorded) = shared.replay.get(index).copied() {
            if recorded.point != choice.point
                || recorded.options as usize != choice.options
                || recorded.chosen >= recorded.options
            {
                let message = format!(
                    "decision {} of the list is {:?} with {} options (option {}), but the run asks \
                     {:?} with {} options there: the list was made for another script or other options",
                    index + 1,
                    recorded.point,
                    recorded.options,
                    recorded.chosen + 1,
                    choice.point,
                    choice.options
                );
                shared.diverged = Some(message.clone());
                return Err(ChooserError(message));
            }
            return Ok(recorded.chosen as usize);
        }
        if shared.watch {
            if shared.looked || shared.seen.len() >= LOOK_AHEAD {
                return Err(ChooserError("simcli step: looked far enough ahead".into()));
            }
            shared.seen.push(snapshot());
            return Ok(0);
        }
        if !shared.stop {
            return Ok(0);
        }
        shared.pause = Some(Pause {
            index,
            point: choice.point,
            options: choice.options,
            threads: choice.threads.to_vec(),
            snapshot: snapshot(),
            machine: None,
            next: Vec::new(),
        });
        Err(ChooserError(PAUSED.to_string()))
    }
}

/// One evaluation under a [`StepChooser`].
struct Evaluation {
    outcome: ScriptOutcome,
    pause: Option<Pause>,
    diverged: Option<String>,
}

/// A game of `simcli step`: the script, the decisions made so far and
/// where the last evaluation stopped.
#[derive(Debug)]
pub struct Session {
    script: Script,
    options: RunOptions,
    decisions: Vec<Decision>,
    /// How many decisions had been made before each move, for undo (a
    /// move only ever adds decisions, so each earlier list is a prefix of
    /// `decisions`).
    history: Vec<usize>,
    stop: Stop,
}

impl Session {
    /// Starts a game of `script` (evaluated with `options`: their seed,
    /// schedule, jitter and charts are ignored) and runs to its first
    /// decision.
    pub fn new(script: Script, options: RunOptions) -> Session {
        let options = RunOptions {
            seed: None,
            schedule: None,
            jitter: None,
            charts: false,
            ..options
        };
        let mut session = Session {
            script,
            options,
            decisions: Vec::new(),
            history: Vec::new(),
            stop: Stop::Ended(ScriptOutcome {
                output: Vec::new(),
                runs: Vec::new(),
                error: None,
            }),
        };
        session
            .go_to(Vec::new())
            .expect("an empty list fits every script");
        session.history.clear();
        session
    }

    /// Makes the decisions of `schedule` (e.g. a file saved earlier, or a
    /// failure `explore` found) and stops at the first decision past them.
    /// Each of its decisions counts as a move, so that undo walks back
    /// through it one decision at a time. A list that does not fit the
    /// script is refused, and the session is unchanged.
    pub fn replay(&mut self, schedule: Vec<Decision>) -> Result<(), MoveError> {
        let start = self.decisions.len();
        self.go_to(schedule)?;
        self.history.pop();
        // One move per decision made: undo goes back to each of them.
        self.history.extend(start..self.decisions.len());
        Ok(())
    }

    /// Where the last evaluation stopped.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// The decisions made so far (the schedule, once the run has ended).
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The script.
    #[cfg(test)]
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Takes option `choice` (from 0) at the current decision.
    pub fn pick(&mut self, choice: usize) -> Result<(), MoveError> {
        let Stop::Paused(pause) = &self.stop else {
            return Err(MoveError::Ended);
        };
        if choice >= pause.options {
            return Err(MoveError::OutOfRange {
                given: choice + 1,
                options: pause.options,
            });
        }
        let mut next = self.decisions.clone();
        next.push(Decision {
            point: pause.point,
            options: pause.options as u32,
            chosen: choice as u32,
        });
        self.go_to(next)
    }

    /// Goes back to where the last move started.
    pub fn undo(&mut self) -> Result<(), MoveError> {
        let made = self.history.pop().ok_or(MoveError::NothingToUndo)?;
        let previous = self.decisions[..made].to_vec();
        let evaluation = self.evaluate(&previous, true);
        self.settle(previous, evaluation)
            .expect("a list that was played once plays again");
        Ok(())
    }

    /// `a`: lets the default chooser decide (option 0) here and on, until
    /// the next decision where another option would change the outcome
    /// (see [`outcome_key`]), or the end of the run. Each
    /// decision past this one is tried with every other option, each run
    /// to the end under the default chooser; at most [`AUTO_RUNS`]
    /// evaluations, after which it stops at the decision it reached.
    pub fn auto(&mut self) -> Result<(), MoveError> {
        let Stop::Paused(pause) = &self.stop else {
            return Err(MoveError::Ended);
        };
        let mut prefix = self.decisions.clone();
        prefix.push(Decision {
            point: pause.point,
            options: pause.options as u32,
            chosen: 0,
        });
        // The run under the default chooser from here: its outcome, and the
        // decisions it takes.
        let baseline = self.evaluate(&prefix, false);
        let key = outcome_key(&baseline.outcome);
        let full = baseline.outcome.schedule();
        let mut budget = AUTO_RUNS;
        for at in prefix.len()..full.len() {
            let decision = full[at];
            for other in 1..decision.options {
                if budget == 0 {
                    return self.go_to(full[..at].to_vec());
                }
                budget -= 1;
                let mut trial = full[..at].to_vec();
                trial.push(Decision {
                    chosen: other,
                    ..decision
                });
                if outcome_key(&self.evaluate(&trial, false).outcome) != key {
                    return self.go_to(full[..at].to_vec());
                }
            }
        }
        self.go_to(full)
    }

    /// Replays `decisions` and stops at the next decision; the session
    /// is unchanged when they do not fit the script.
    fn go_to(&mut self, decisions: Vec<Decision>) -> Result<(), MoveError> {
        let evaluation = self.evaluate(&decisions, true);
        let before = std::mem::take(&mut self.decisions);
        match self.settle(decisions, evaluation) {
            Ok(()) => {
                debug_assert!(self.decisions.starts_with(&before));
                self.history.push(before.len());
                Ok(())
            }
            Err(error) => {
                self.decisions = before;
                Err(error)
            }
        }
    }

    fn settle(
        &mut self,
        decisions: Vec<Decision>,
        evaluation: Evaluation,
    ) -> Result<(), MoveError> {
        if let Some(message) = evaluation.diverged {
            return Err(MoveError::Schedule(message));
        }
        match evaluation.pause {
            Some(mut pause) => {
                let runs = &evaluation.outcome.runs;
                pause.machine = runs
                    .last()
                    .map(|run| run.label.clone())
                    .filter(|label| runs.len() > 1 || !label.starts_with("machine "));
                pause.next = self.next_operations(&decisions, &pause);
                self.decisions = decisions;
                self.stop = Stop::Paused(pause);
            }
            None => {
                // Every decision of the run, also those past the list that
                // a run ends with (none: it stops at each).
                self.decisions = evaluation.outcome.schedule();
                self.stop = Stop::Ended(evaluation.outcome);
            }
        }
        Ok(())
    }

    /// The look-ahead: where each thread goes next. A thread's operations
    /// between two of its blocking points do not depend on the schedule
    /// (the code between operations sees only what they returned), so a
    /// run on from the pause tells, for each thread that calls another
    /// operation in it, which one: the first later decision at which the
    /// thread has called more operations than at the pause still has it
    /// among its recent ones. The run takes option 0 at the pause and the
    /// default chooser's answers after it; a thread it does not show going
    /// on gets one more run, taking the option at the pause that lets it
    /// run, if there is one.
    fn next_operations(&self, decisions: &[Decision], pause: &Pause) -> Vec<Option<(u32, u32)>> {
        let threads = &pause.snapshot.threads;
        let mut next = vec![None; threads.len()];
        for option in 0..pause.options {
            // The thread option `option` lets run (a preemption lets the
            // head of the ready queue run).
            let concerned = match pause.point {
                ChoicePoint::Preempt => pause.threads.get(1).filter(|_| option == 1),
                _ => pause.threads.get(option),
            };
            let wanted = |i: usize| next[i].is_none();
            if option > 0
                && !concerned
                    .is_some_and(|id| threads.iter().position(|t| t.id == *id).is_some_and(wanted))
            {
                continue;
            }
            let mut replay = decisions.to_vec();
            replay.push(Decision {
                point: pause.point,
                options: pause.options as u32,
                chosen: option as u32,
            });
            let seen = self.watch(replay);
            for (i, thread) in threads.iter().enumerate() {
                if next[i].is_some() {
                    continue;
                }
                next[i] = seen
                    .iter()
                    .filter_map(|later| later.threads.iter().find(|t| t.id == thread.id))
                    .find(|later| later.operations > thread.operations)
                    .and_then(|later| later.operation(thread.operations));
            }
        }
        next
    }

    /// The snapshots of the decisions past `replay` of one run under the
    /// default chooser (at most [`LOOK_AHEAD`]).
    fn watch(&self, replay: Vec<Decision>) -> Vec<Snapshot> {
        let shared = Rc::new(RefCell::new(Shared {
            replay,
            watch: true,
            ..Shared::default()
        }));
        self.script
            .run_with_chooser(&self.options, Box::new(StepChooser(shared.clone())));
        let seen = std::mem::take(&mut shared.borrow_mut().seen);
        seen
    }

    fn evaluate(&self, decisions: &[Decision], stop: bool) -> Evaluation {
        let shared = Rc::new(RefCell::new(Shared {
            replay: decisions.to_vec(),
            stop,
            ..Shared::default()
        }));
        let outcome = self
            .script
            .run_with_chooser(&self.options, Box::new(StepChooser(shared.clone())));
        let mut shared = shared.borrow_mut();
        Evaluation {
            outcome,
            pause: shared.pause.take(),
            diverged: shared.diverged.take(),
        }
    }
}

/// What `a` compares runs by: how each machine run ended (and the cycle of
/// a deadlock), which expectations failed, the final values of the shared
/// variables, the data races (by variable and script positions), and the
/// script's error.
pub fn outcome_key(outcome: &ScriptOutcome) -> String {
    let mut key = String::new();
    for run in &outcome.runs {
        key.push_str(&crate::report::describe_outcome(run));
        for expectation in run.expectations() {
            key.push_str(&format!("|{}={}", expectation.name, expectation.held));
        }
        for variable in &run.trace.variables {
            key.push_str(&format!("|{}={}", variable.name, variable.value));
        }
        for race in &run.trace.races {
            key.push_str(&format!(
                "|race {} {}{}",
                race.variable.index(),
                run.trace.at(race.first.origin),
                run.trace.at(race.second.origin)
            ));
        }
        key.push('\n');
    }
    if let Some(error) = &outcome.error {
        key.push_str(&error.message);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two threads each load a counter and store it plus one.
    const RACE: &str = r#"
let m = machine(#{ cpus: 1 });
let c = m.variable("c", 0);
m.add_thread("a", || { let v = c.load(); c.store(v + 1); });
m.add_thread("b", || { let v = c.load(); c.store(v + 1); });
m.expect("no lost update", |r| r.value("c") == 2);
"#;

    fn session() -> Session {
        let script = Script::compile("race.rhai", RACE).expect("compiles");
        Session::new(script, RunOptions::default())
    }

    fn paused(session: &Session) -> &Pause {
        match session.stop() {
            Stop::Paused(pause) => pause,
            Stop::Ended(_) => panic!("expected a pause"),
        }
    }

    #[test]
    fn it_pauses_at_the_first_decision_with_the_run_as_it_stands() {
        let mut s = session();
        let first = paused(&s);
        assert_eq!(first.index, 0);
        // At time 0 both threads are ready: which runs first?
        assert_eq!(first.point, ChoicePoint::Dispatch);
        assert_eq!(first.snapshot.threads[0].at(), None);
        // Neither has started; a runs first (line 4), b after (line 5).
        assert_eq!(first.next, [Some((4, 34)), Some((5, 34))]);
        s.pick(0).unwrap();
        let pause = paused(&s);
        assert_eq!(pause.index, 1);
        assert_eq!(pause.point, ChoicePoint::Preempt);
        assert_eq!(pause.options, 2);
        let a = &pause.snapshot.threads[0];
        assert_eq!((a.name.as_str(), a.state.as_str()), ("a", "running"));
        assert_eq!(a.at(), Some((4, 34)));
        // a stores next.
        assert_eq!(pause.next[0], Some((4, 44)));
        assert_eq!(pause.snapshot.variables[0].value, 0);
    }

    #[test]
    fn preempting_after_the_loads_loses_the_update() {
        let mut s = session();
        // a runs first and loads; preempt it. b loads, goes on. Then
        // defaults.
        s.pick(0).unwrap();
        s.pick(1).unwrap();
        while let Stop::Paused(_) = s.stop() {
            s.pick(0).unwrap();
        }
        let Stop::Ended(outcome) = s.stop() else {
            unreachable!()
        };
        assert!(outcome.runs[0].expectation_failed());
        // The list replays to the same end under `simcli run --schedule`.
        let replay = s.script().run(&RunOptions {
            schedule: Some(s.decisions().to_vec()),
            charts: false,
            ..RunOptions::default()
        });
        assert_eq!(outcome_key(&replay), outcome_key(outcome));
    }

    #[test]
    fn undo_returns_to_the_same_pause() {
        let mut s = session();
        let before = paused(&s).clone();
        s.pick(1).unwrap();
        assert_ne!(paused(&s), &before);
        s.undo().unwrap();
        assert_eq!(paused(&s), &before);
        assert!(s.decisions().is_empty());
        assert_eq!(s.undo(), Err(MoveError::NothingToUndo));
    }

    #[test]
    fn undo_walks_back_through_a_replayed_schedule_one_decision_at_a_time() {
        let mut s = session();
        let first = paused(&s).clone();
        s.pick(0).unwrap();
        let second = paused(&s).clone();
        s.pick(1).unwrap();
        while let Stop::Paused(_) = s.stop() {
            s.pick(0).unwrap();
        }
        let schedule = s.decisions().to_vec();
        let mut again = session();
        again.replay(schedule.clone()).unwrap();
        assert!(matches!(again.stop(), Stop::Ended(_)));
        assert_eq!(again.decisions(), schedule);
        for _ in 1..schedule.len() {
            again.undo().unwrap();
        }
        assert_eq!(paused(&again), &second);
        again.undo().unwrap();
        assert_eq!(paused(&again), &first);
        assert_eq!(again.undo(), Err(MoveError::NothingToUndo));
    }

    #[test]
    fn an_out_of_range_pick_is_refused_and_the_session_goes_on() {
        let mut s = session();
        let before = paused(&s).clone();
        assert_eq!(
            s.pick(8),
            Err(MoveError::OutOfRange {
                given: 9,
                options: 2
            })
        );
        assert_eq!(paused(&s), &before);
        s.pick(0).unwrap();
    }

    #[test]
    fn a_list_for_another_script_is_refused() {
        let script = Script::compile("race.rhai", RACE).unwrap();
        let wrong = vec![Decision {
            point: ChoicePoint::Waiter,
            options: 3,
            chosen: 1,
        }];
        let mut s = Session::new(script, RunOptions::default());
        let before = paused(&s).clone();
        let error = s.replay(wrong).unwrap_err();
        assert!(error.to_string().contains("another script"), "{error}");
        assert_eq!(paused(&s), &before);
    }

    #[test]
    fn auto_stops_where_the_outcome_could_differ() {
        let mut s = session();
        // Option 0 at the first decision, then: the next decision where
        // another option changes the end is b's preemption... or the end.
        s.auto().unwrap();
        match s.stop() {
            Stop::Paused(pause) => assert!(pause.index >= 1),
            Stop::Ended(outcome) => assert!(!outcome.runs[0].expectation_failed()),
        }
    }
}
