//! Exploration on a tiny program: two threads increment a shared counter
//! with a plain load and store on one CPU. The default schedule never
//! preempts at a zero-time operation, so it counts 2; a preemption between
//! one thread's load and store loses an update.

use std::collections::BTreeSet;

use super::*;
use crate::kernel::{ChoicePoint, Run, Simulation};
use crate::model::machine::Machine;
use crate::trace::Trace;
use crate::ProcessId;

struct Counter;

fn run_counter(chooser: Box<dyn Chooser>) -> Run {
    let mut s = Simulation::new(Machine::textbook()).unwrap();
    s.set_chooser(chooser);
    let x = s.variable(ProcessId::MAIN, "x", 0);
    for name in ["a", "b"] {
        s.add_thread(name, move |ctx| {
            let v = ctx.load(x);
            ctx.store(x, v + 1);
        });
    }
    s.run()
}

impl Scenario for Counter {
    fn run(&mut self, chooser: Box<dyn Chooser>, _seed: u64) -> Verdict {
        let run = run_counter(chooser);
        let value = run.trace.variables[0].value;
        Verdict {
            failure: (value != 2).then(|| Failed::from(format!("lost update: x = {value}"))),
            decisions: run.decisions,
            outcome: format!("x={value}"),
        }
    }
}

fn options(strategy: Strategy, jobs: usize) -> ExploreOptions {
    ExploreOptions {
        runs: 500,
        strategy,
        jobs,
        seed: 7,
        keep_going: false,
    }
}

/// Every complete decision sequence of the program, by brute force: extend
/// each known prefix by every option of its next question.
fn all_schedules() -> BTreeSet<Vec<Decision>> {
    let mut done = BTreeSet::new();
    let mut todo = vec![Vec::new()];
    while let Some(prefix) = todo.pop() {
        let taken = run_counter(Box::new(ReplayChooser::new(prefix.clone()))).decisions;
        if !done.insert(taken.clone()) {
            continue;
        }
        for i in prefix.len()..taken.len() {
            for option in 1..taken[i].options {
                let mut next = taken[..=i].to_vec();
                next[i].chosen = option;
                todo.push(next);
            }
        }
    }
    done
}

#[test]
fn the_default_schedule_hides_the_bug_and_random_search_finds_it() {
    let default = run_counter(Box::new(crate::kernel::FirstChooser));
    assert_eq!(default.trace.variables[0].value, 2);
    let report = explore(&options(Strategy::Random, 1), || Counter, |_| {});
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].message, "lost update: x = 1");
    let pct = explore(&options(Strategy::Pct { depth: 2 }, 1), || Counter, |_| {});
    assert_eq!(pct.failures.len(), 1);
}

#[test]
fn dfs_runs_exactly_the_schedules_within_the_bound() {
    let all = all_schedules();
    for bound in 0..3 {
        let within: Vec<&Vec<Decision>> = all
            .iter()
            .filter(|s| preemptions(s) <= bound as usize)
            .collect();
        // DFS by hand: run a prefix, step to the next, until done.
        let mut seen = BTreeSet::new();
        let mut runs = 0;
        let mut prefix = Vec::new();
        loop {
            let decisions = run_counter(Box::new(ReplayChooser::new(prefix))).decisions;
            runs += 1;
            seen.insert(decisions.clone());
            match dfs_next(&decisions, bound) {
                Some(next) => prefix = next,
                None => break,
            }
        }
        assert_eq!(runs, within.len(), "bound {bound}");
        assert_eq!(
            seen.len(),
            within.len(),
            "bound {bound}: distinct schedules"
        );
    }
    // With no preemption the count is always right; with one it is not.
    let zero = explore(
        &options(Strategy::Dfs { preemptions: 0 }, 1),
        || Counter,
        |_| {},
    );
    assert!(zero.failures.is_empty() && zero.exhausted);
    let one = explore(
        &options(Strategy::Dfs { preemptions: 1 }, 1),
        || Counter,
        |_| {},
    );
    assert_eq!(one.failures.len(), 1);
}

#[test]
fn shrinking_leaves_one_preemption_and_replays_identically() {
    let report = explore(&options(Strategy::Random, 1), || Counter, |_| {});
    let failing = report.failures[0].decisions.clone();
    let fails = |candidate: &[Decision]| {
        let run = run_counter(Box::new(LenientReplayChooser::new(candidate.to_vec())));
        (run.trace.variables[0].value != 2).then_some(run.decisions)
    };
    let shrunk = shrink(&failing, ShrinkBudget::default(), fails);
    assert!(!shrunk.out_of_budget && shrunk.runs > 0);
    let shrunk = shrunk.decisions;
    assert_eq!(preemptions(&shrunk), 1, "{shrunk:?}");
    let replay =
        |d: &[Decision]| -> Trace { run_counter(Box::new(ReplayChooser::new(d.to_vec()))).trace };
    let (first, second) = (replay(&shrunk), replay(&shrunk));
    assert_eq!(first.variables[0].value, 1);
    assert_eq!(first, second);
}

/// Two threads increment `x` twice each: one preemption between a load and
/// its store loses one update or two, and each final value is a failure of
/// its own.
struct TwoIncrements;

fn run_two_increments(chooser: Box<dyn Chooser>) -> Run {
    let mut s = Simulation::new(Machine::textbook()).unwrap();
    s.set_chooser(chooser);
    let x = s.variable(ProcessId::MAIN, "x", 0);
    for name in ["a", "b"] {
        s.add_thread(name, move |ctx| {
            for _ in 0..2 {
                ctx.compute(crate::us(10));
                let v = ctx.load(x);
                ctx.store(x, v + 1);
            }
        });
    }
    s.run()
}

impl Scenario for TwoIncrements {
    fn run(&mut self, chooser: Box<dyn Chooser>, _seed: u64) -> Verdict {
        let run = run_two_increments(chooser);
        let value = run.trace.variables[0].value;
        Verdict {
            failure: (value != 4).then(|| Failed {
                message: format!("lost updates at {}: x = {value}", run.trace.end),
                key: format!("x = {value}"),
            }),
            decisions: run.decisions,
            outcome: format!("x={value}"),
        }
    }
}

#[test]
fn shrinking_keeps_the_failure_it_was_given() {
    let report = explore(
        &ExploreOptions {
            keep_going: true,
            ..options(Strategy::Random, 1)
        },
        || TwoIncrements,
        |_| {},
    );
    let keys: BTreeSet<&str> = report.failures.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, BTreeSet::from(["x = 2", "x = 3"]), "{report:?}");
    for failure in &report.failures {
        let shrunk = shrink_failure(&mut TwoIncrements, failure, ShrinkBudget::default()).decisions;
        let replayed = run_two_increments(Box::new(ReplayChooser::new(shrunk.clone())));
        let value = replayed.trace.variables[0].value;
        assert_eq!(format!("x = {value}"), failure.key, "{shrunk:?}");
        assert!(preemptions(&shrunk) <= preemptions(&failure.decisions));
    }
}

#[test]
fn the_report_is_the_same_for_any_number_of_jobs() {
    let keep = |jobs| ExploreOptions {
        keep_going: true,
        ..options(Strategy::Random, jobs)
    };
    let one = explore(&keep(1), || Counter, |_| {});
    let two = explore(&keep(2), || Counter, |_| {});
    assert_eq!(one, two);
    assert_eq!(one.runs, 500);
    assert_eq!(one.outcomes.len(), 2);
}

/// Two threads that each make one plain store and end, on one CPU with no
/// switch cost.
struct TwoStores;

impl Scenario for TwoStores {
    fn run(&mut self, chooser: Box<dyn Chooser>, _seed: u64) -> Verdict {
        let mut s = Simulation::new(Machine::textbook()).unwrap();
        s.set_chooser(chooser);
        let x = s.variable(ProcessId::MAIN, "x", 0);
        for (name, value) in [("a", 1), ("b", 2)] {
            s.add_thread(name, move |ctx| ctx.store(x, value));
        }
        let run = s.run();
        Verdict {
            failure: None,
            outcome: format!("{:?}", run.decisions),
            decisions: run.decisions,
        }
    }
}

/// The schedules of [`TwoStores`], counted by hand. Both threads are ready at
/// 0 and tie, so the first question is which runs first (D, 2 options); call
/// it X and the other Y. After X's store, Y is ready, so: preempt X (P1) or
/// not (P0). A preempted thread goes behind the threads ready then and ties
/// with none of them (taking it back at once would undo the preemption).
///
/// ```text
/// D=X, P0                 X ends; Y runs alone, nobody else ready   0 preemptions
/// D=X, P1, P0             Y stores and ends; X ends                  1
/// D=X, P1, P1             Y preempted too; X ends, then Y            2
/// ```
///
/// That is 3 schedules for each of the 2 first choices: within 0
/// preemptions 2·1 = 2, within 1 2·2 = 4, within 2 all 2·3 = 6. DFS runs
/// bound 0, then 1, … and runs the schedules of the smaller bounds again
/// to reach the new ones: 2, then 2 + 4, then 2 + 4 + 6 runs. No schedule
/// with 2 preemptions has a preemption point left, so bound 3 stops there.
#[test]
fn dfs_counts_the_schedules_computed_by_hand() {
    for (bound, schedules, runs) in [(0u32, 2u64, 2u64), (1, 4, 6), (2, 6, 12), (3, 6, 12)] {
        let report = explore(
            &ExploreOptions {
                runs: 1000,
                keep_going: true,
                ..options(Strategy::Dfs { preemptions: bound }, 1)
            },
            || TwoStores,
            |_| {},
        );
        assert!(report.exhausted, "bound {bound}");
        assert_eq!(report.runs, runs, "bound {bound}: runs");
        let new: u64 = report.bounds.iter().map(|b| b.schedules).sum();
        assert_eq!(new, schedules, "bound {bound}: schedules");
        // Every schedule is one of its own.
        assert_eq!(
            report.outcomes.len() as u64,
            schedules,
            "bound {bound}: distinct"
        );
    }
}

/// Two threads of two steps each (an atomic increment of a shared ticket,
/// then a few increments of their own counter): the failure is the strict
/// alternation a1 b1 a2 b2 of the ticket steps, a bug of depth 3 (two
/// preemptions) in a run of about twenty choices.
struct Alternation;

impl Scenario for Alternation {
    fn run(&mut self, chooser: Box<dyn Chooser>, _seed: u64) -> Verdict {
        let mut s = Simulation::new(Machine::textbook()).unwrap();
        s.set_chooser(chooser);
        let ticket = s.variable(ProcessId::MAIN, "ticket", 0);
        let order = s.variable(ProcessId::MAIN, "order", 0);
        for (name, id) in [("a", 1), ("b", 2)] {
            let own = s.variable(ProcessId::MAIN, name, 0);
            s.add_thread(name, move |ctx| {
                for _ in 0..2 {
                    let t = ctx.fetch_add(ticket, 1);
                    ctx.fetch_add(order, id << (2 * t));
                }
                for _ in 0..3 {
                    ctx.fetch_add(own, 1);
                }
            });
        }
        let run = s.run();
        // a1 b1 a2 b2: tickets 0 and 2 to a (1), 1 and 3 to b (2).
        let alternated = run.trace.variables[1].value == 1 | 2 << 2 | 1 << 4 | 2 << 6;
        Verdict {
            failure: alternated.then(|| Failed::from("a1 b1 a2 b2".to_string())),
            decisions: run.decisions,
            outcome: String::new(),
        }
    }
}

/// PCT draws its change points over the length of the runs it has seen
/// (not over a fixed 200 first choices), so a depth-3 bug of a short
/// program is found at depth 3, within the 1/(n·k²) the paper promises.
#[test]
fn pct_places_change_points_within_the_runs_length() {
    let report = explore(
        &ExploreOptions {
            runs: 2000,
            ..options(Strategy::Pct { depth: 3 }, 1)
        },
        || Alternation,
        |_| {},
    );
    assert_eq!(
        report.failures.len(),
        1,
        "not found in {} runs",
        report.runs
    );
}

/// A thread spins with `yield_now` until another sets a flag, on one CPU.
/// Both are ready at the same instant throughout, so only the chooser
/// decides who runs.
struct Spinner;

impl Scenario for Spinner {
    fn run(&mut self, chooser: Box<dyn Chooser>, _seed: u64) -> Verdict {
        let machine = Machine {
            max_events: 100_000,
            ..Machine::textbook()
        };
        let mut s = Simulation::new(machine).unwrap();
        s.set_chooser(chooser);
        let flag = s.variable(ProcessId::MAIN, "flag", 0);
        s.add_thread("spinner", move |ctx| {
            while ctx.load(flag) == 0 {
                ctx.yield_now();
            }
        });
        s.add_thread("setter", move |ctx| ctx.store(flag, 1));
        let run = s.run();
        Verdict {
            failure: (!run.completed()).then(|| Failed::from(format!("{:?}", run.outcome))),
            decisions: run.decisions,
            outcome: String::new(),
        }
    }
}

/// Under PCT a yield lowers the yielding thread below every other, as in
/// shuttle: a spinner with the higher priority would otherwise take the CPU
/// back at every yield and starve the thread it waits for.
#[test]
fn pct_lowers_a_thread_that_yields() {
    let report = explore(
        &ExploreOptions {
            runs: 40,
            ..options(Strategy::Pct { depth: 1 }, 1)
        },
        || Spinner,
        |_| {},
    );
    assert_eq!(report.runs, 40);
    assert!(
        report.failures.is_empty(),
        "{:?}",
        report.failures[0].message
    );
    // The same through a script, whose chooser its machines share.
    let scenario = || {
        let source = r#"
            let m = machine(#{ preset: "textbook", cpus: 1, max_events: 20000 });
            let flag = m.variable("flag", 0);
            m.add_thread("spinner", || { while flag.load() == 0 { yield_now(); } });
            m.add_thread("setter", || { compute(us(5)); flag.store(1); });
        "#;
        crate::script::ScriptScenario::new(
            std::rc::Rc::new(crate::script::Script::compile("spin.rhai", source).unwrap()),
            crate::script::RunOptions::default(),
            crate::script::Judging::default(),
        )
    };
    let report = explore(
        &ExploreOptions {
            runs: 40,
            ..options(Strategy::Pct { depth: 1 }, 1)
        },
        scenario,
        |_| {},
    );
    assert_eq!(report.runs, 40);
    assert!(
        report.failures.is_empty(),
        "{:?}",
        report.failures[0].message
    );
}

#[test]
fn shrinking_stops_at_its_budget_and_says_so() {
    let preempt = |chosen| Decision {
        point: ChoicePoint::Preempt,
        options: 2,
        chosen,
    };
    // Every candidate fails, but no candidate takes fewer preemptions.
    let failing = vec![preempt(1); 100];
    let budget = ShrinkBudget {
        runs: 5,
        time: std::time::Duration::from_secs(60),
    };
    let mut calls = 0;
    let shrunk = shrink(&failing, budget, |_| {
        calls += 1;
        Some(failing.clone())
    });
    assert_eq!((shrunk.runs, calls), (5, 5));
    assert!(shrunk.out_of_budget);
    assert_eq!(shrunk.decisions, failing);
    let timed = ShrinkBudget {
        runs: 1000,
        time: std::time::Duration::ZERO,
    };
    let shrunk = shrink(&failing, timed, |_| Some(failing.clone()));
    assert_eq!(shrunk.runs, 0);
    assert!(shrunk.out_of_budget);
}

/// Three threads spin (with yields) until a fourth starts them, then take
/// two of three locks each in a cyclic order: a deadlock needs preemptions
/// right after the first locks, and the spin loops make the tree deep.
fn three_locks() -> crate::script::ScriptScenario {
    let source = r#"
        let m = machine(#{ preset: "textbook", cpus: 1 });
        let a = m.mutex("a");
        let b = m.mutex("b");
        let c = m.mutex("c");
        let start = m.variable("start", 0);
        let take = |first, second| {
            while start.load() == 0 { yield_now(); }
            first.lock(); second.lock(); second.unlock(); first.unlock();
        };
        m.add_thread("t1", || take.call(a, b));
        m.add_thread("t2", || take.call(b, c));
        m.add_thread("t3", || take.call(c, a));
        m.add_thread("starter", || { compute(us(5)); start.store(1); });
    "#;
    crate::script::ScriptScenario::new(
        std::rc::Rc::new(crate::script::Script::compile("three_locks.rhai", source).unwrap()),
        crate::script::RunOptions::default(),
        crate::script::Judging::default(),
    )
}

/// DFS iterates its bound, 0, 1, 2, … up to the one asked for, as CHESS
/// does: a larger bound runs the smaller bounds' schedules first, so it
/// never finds less, nor later.
#[test]
fn a_larger_preemption_bound_never_finds_less() {
    let dfs = |preemptions| {
        explore(
            &ExploreOptions {
                runs: 2000,
                ..options(Strategy::Dfs { preemptions }, 1)
            },
            three_locks,
            |_| {},
        )
    };
    let two = dfs(2);
    assert_eq!(
        two.failures.len(),
        1,
        "bound 2: {} runs {:?}",
        two.runs,
        two.bounds
    );
    for bound in [3, 5] {
        let larger = dfs(bound);
        assert_eq!(
            larger.failures.len(),
            1,
            "bound {bound}: {} runs",
            larger.runs
        );
        assert_eq!(larger.failures[0].run, two.failures[0].run, "bound {bound}");
    }
}
