//! The exploration suite: small two- and three-thread programs with a
//! known failing interleaving (`tests/explore_suite/*.rhai`). Each strategy
//! at its default setting (random, PCT of depth 3, DFS within 2
//! preemptions) must find the failure within 10,000 runs, and the shrunk
//! schedule, replayed exactly as `simcli run --schedule` replays it, must
//! fail the same way (the same expectation, deadlock cycle or stall).
//!
//! The explorer runs through the library (one process); one end-to-end
//! test runs the real binary and its printed replay command. The table of
//! runs to the first failure and preemptions after shrinking prints with
//! `cargo test -p simcli-tests --test e2e explore_suite -- --nocapture`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use sim_core::explore::{
    explore, preemptions, shrink_failure, ExploreOptions, ShrinkBudget, Strategy,
};
use sim_core::script::{verdict, Judging, RunOptions, Script, ScriptScenario};
use simcli_tests::{run_simcli, scratch, workspace};

/// At most this many runs per strategy and program.
const RUNS: u64 = 10_000;

fn suite() -> Vec<PathBuf> {
    let dir = workspace().join("tests/explore_suite");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the suite folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    scripts.sort();
    scripts
}

fn strategies() -> [(&'static str, Strategy); 3] {
    [
        ("random", Strategy::Random),
        ("pct", Strategy::Pct { depth: 3 }),
        ("dfs", Strategy::Dfs { preemptions: 2 }),
    ]
}

fn compile(path: &Path) -> Script {
    Script::load(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

#[test]
fn every_strategy_finds_every_suite_failure_and_its_replay_fails_the_same_way() {
    let scripts = suite();
    assert!(scripts.len() >= 15, "{} programs", scripts.len());
    let out = scratch("explore-suite");
    let options = RunOptions {
        out_dir: out.clone(),
        ..RunOptions::default()
    };
    let mut table = vec![format!(
        "{:<24} {:>14} {:>14} {:>14}",
        "program (runs, preemptions)", "random", "pct", "dfs"
    )];
    for path in &scripts {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut row = format!("{name:<24}   ");
        for (label, strategy) in strategies() {
            let make =
                || ScriptScenario::new(Rc::new(compile(path)), options.clone(), Judging::default());
            let report = explore(
                &ExploreOptions {
                    runs: RUNS,
                    strategy,
                    jobs: 1,
                    seed: 0,
                    keep_going: false,
                },
                make,
                |_| {},
            );
            let failure = report.failures.first().unwrap_or_else(|| {
                panic!("{label} found nothing in {name} in {} runs", report.runs)
            });
            let shrunk = shrink_failure(&mut make(), failure, ShrinkBudget::default());
            assert!(!shrunk.out_of_budget, "{name}, {label}: {shrunk:?}");
            let replay = compile(path).run(&RunOptions {
                seed: Some(failure.seed),
                schedule: Some(shrunk.decisions.clone()),
                ..options.clone()
            });
            let replayed = verdict(&replay, &Judging::default()).failure;
            assert_eq!(
                replayed.as_ref().map(|f| &f.key),
                Some(&failure.key),
                "{name}, {label}: found {:?}, the replay of its shrunk schedule gives {replayed:?}",
                failure.message
            );
            row.push_str(&format!(
                "{:>9}, {:>2}  ",
                failure.run + 1,
                preemptions(&shrunk.decisions)
            ));
        }
        table.push(row);
    }
    println!("{}", table.join("\n"));
}

/// The real binary on one program of the suite: `explore` prints a replay
/// command, and running it fails as the exploration said.
#[test]
fn the_binary_explores_a_suite_program_and_its_replay_command_reproduces_it() {
    let out = scratch("explore-suite-cli");
    let output = run_simcli(&[
        "explore",
        "tests/explore_suite/condvar_if.rhai",
        "--strategy",
        "dfs",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("expectation 'no consumer takes from an empty queue' failed"),
        "{text}"
    );
    let command = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: simcli "))
        .expect("a replay command");
    let mut replay: Vec<&str> = command.split(' ').collect();
    replay.push("--no-chart");
    let output = run_simcli(&replay);
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8(output.stdout).unwrap();
    assert!(
        report.contains("expectation 'no consumer takes from an empty queue': FAILED"),
        "{report}"
    );
}
