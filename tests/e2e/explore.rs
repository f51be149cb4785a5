//! `simcli explore`: finds what the default schedule hides, shrinks it,
//! prints a replay command that reproduces it, and does not depend on jobs.

use simcli_tests::{decode_png, run_simcli, scratch};

fn explore(args: &[&str], name: &str) -> (Option<i32>, String, std::path::PathBuf) {
    let out = scratch(name);
    let mut all = vec!["explore"];
    all.extend_from_slice(args);
    all.extend(["--quiet", "--out", out.to_str().unwrap()]);
    let output = run_simcli(&all);
    let text = String::from_utf8(output.stdout).unwrap();
    (output.status.code(), text, out)
}

#[test]
fn explore_finds_the_lost_update_and_its_replay_reproduces_it() {
    let (code, text, out) = explore(&["scripts/race.rhai", "--runs", "500"], "explore-race");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("expectation 'every increment counted' failed in 'unprotected'"),
        "{text}"
    );
    assert!(text.contains("to 1 preemption(s)"), "{text}");
    let schedule = out.join("race-failure-1.ron");
    assert!(text.contains(&format!(
        "replay: simcli run scripts/race.rhai --schedule {}",
        schedule.display()
    )));
    decode_png(&out.join("race-failure-1-1.png"));
    let replay = run_simcli(&[
        "run",
        "scripts/race.rhai",
        "--schedule",
        schedule.to_str().unwrap(),
        "--quiet",
        "--no-chart",
    ]);
    assert_eq!(replay.status.code(), Some(1));
    let replayed = String::from_utf8(replay.stdout).unwrap();
    assert!(
        replayed
            .contains("unprotected: completed, makespan 60us, 2 threads, 1 expectation(s) FAILED"),
        "{replayed}"
    );
}

#[test]
fn explore_finds_the_deadlock_of_opposite_lock_order() {
    let (code, text, _) = explore(
        // PCT may find the audit's race first: collect both.
        &[
            "scripts/bank_transfer.rhai",
            "--strategy",
            "pct",
            "--keep-going",
            "--runs",
            "200",
        ],
        "explore-bank",
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("deadlock in 'opposite order'"), "{text}");
}

#[test]
fn the_report_does_not_depend_on_the_number_of_jobs() {
    let args = [
        "scripts/race.rhai",
        "--runs",
        "300",
        "--keep-going",
        "--seed",
        "3",
    ];
    let (_, one, _) = explore(&[&args[..], &["--jobs", "1"]].concat(), "explore-jobs-1");
    let (_, two, _) = explore(&[&args[..], &["--jobs", "2"]].concat(), "explore-jobs-2");
    // The same bytes but the output folder: no wall clock in the report
    // (`--timing` prints it to stderr).
    let strip = |t: &str, n: &str| t.replace(&format!("explore-jobs-{n}"), "OUT");
    assert_eq!(strip(&one, "1"), strip(&two, "2"));
}

#[test]
fn a_script_without_bugs_explores_clean_and_dfs_exhausts_it() {
    let (code, text, _) = explore(
        &[
            "scripts/hello.rhai",
            "--strategy",
            "dfs",
            "--preemptions",
            "2",
        ],
        "explore-hello",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("every schedule within the bound"), "{text}");
    assert!(text.contains("0 failure(s)"), "{text}");
}

#[test]
fn the_histogram_shows_the_lost_updates() {
    let (_, text, out) = explore(
        &[
            "scripts/race.rhai",
            "--runs",
            "200",
            "--histogram",
            "counter",
        ],
        "explore-histogram",
    );
    assert!(
        text.contains("final value of 'counter' over all runs:"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("6 ")),
        "{text}"
    );
    decode_png(&out.join("race-histogram.png"));
}

#[test]
fn jitter_finds_what_only_timing_reveals_and_the_replay_keeps_the_jitter() {
    let script = "tests/fixtures/jitter_order.rhai";
    let (code, text, _) = explore(&[script, "--runs", "300"], "explore-no-jitter");
    assert_eq!(code, Some(0), "without jitter `a` always wins: {text}");
    let (code, text, _) = explore(
        &[script, "--runs", "300", "--jitter", "5"],
        "explore-jitter",
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("expectation 'a claims first' failed"),
        "{text}"
    );
    let command = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: simcli "))
        .expect("a replay command");
    assert!(command.ends_with(" --jitter 5"), "{command}");
    let mut replay: Vec<&str> = command.split(' ').collect();
    replay.extend(["--quiet", "--no-chart"]);
    let first = run_simcli(&replay);
    assert_eq!(first.status.code(), Some(1));
    let report = String::from_utf8(first.stdout).unwrap();
    assert!(report.contains("1 expectation(s) FAILED"), "{report}");
    assert_eq!(run_simcli(&replay).stdout, report.as_bytes());
}

#[test]
fn each_shrunk_failure_replays_the_failure_it_was_shrunk_from() {
    let (code, text, _) = explore(
        &[
            "tests/fixtures/two_failures.rhai",
            "--keep-going",
            "--runs",
            "300",
        ],
        "explore-same-failure",
    );
    assert_eq!(code, Some(1), "{text}");
    let expectations: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("expectation '").nth(1)?.split('\'').next())
        .collect();
    let commands: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("replay: simcli "))
        .collect();
    assert_eq!(expectations.len(), 2, "{text}");
    assert_eq!(commands.len(), 2, "{text}");
    for (name, command) in expectations.iter().zip(commands) {
        let mut replay: Vec<&str> = command.split(' ').collect();
        replay.push("--no-chart");
        let output = run_simcli(&replay);
        let report = String::from_utf8(output.stdout).unwrap();
        assert!(
            report.contains(&format!("expectation '{name}': FAILED")),
            "failure '{name}' replays as:\n{report}"
        );
    }
}

#[test]
fn the_same_exploration_prints_the_same_bytes_and_timing_goes_to_stderr() {
    let dir = scratch("explore-twice");
    let args = [
        "explore",
        "scripts/race.rhai",
        "--runs",
        "100",
        "--seed",
        "3",
        "--quiet",
        "--timing",
        "--out",
        dir.to_str().unwrap(),
    ];
    let first = run_simcli(&args);
    let second = run_simcli(&args);
    assert_eq!(first.status.code(), Some(1));
    assert_eq!(first.stdout, second.stdout);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("  shrunk from "), "{stdout}");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("timing: explored "), "{stderr}");
    assert!(stderr.contains("timing: shrinking took "), "{stderr}");
}
