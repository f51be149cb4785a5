//! Hostile and careless scripts (issue 18): every limit stops the run with
//! a position, output stays inside `--out`, `explore`'s exit codes, and a
//! short seeded slice of the fuzz harness.

use std::path::Path;
use std::time::Duration;

use simcli_tests::fuzz::{corpus, fuzz, Caps, Plan};
use simcli_tests::{run_simcli, scratch, simcli, workspace};

/// Writes `source` into a scratch folder and runs `simcli` with `args`
/// (`SCRIPT` and `OUT` stand for the script and an output folder).
fn run(name: &str, source: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = scratch(&format!("hostile-{name}"));
    let script = dir.join(format!("{name}.rhai"));
    std::fs::write(&script, source).unwrap();
    let out = dir.join("out");
    let args: Vec<String> = args
        .iter()
        .map(|a| match *a {
            "SCRIPT" => script.display().to_string(),
            "OUT" => out.display().to_string(),
            other => other.to_string(),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_simcli(&args);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_zero_time_livelock_stops_with_the_line_it_repeats() {
    let source = "let m = machine(#{ max_steps_at_instant: 10000 });\n\
                  m.add_thread(\"y\", || { loop { yield_now(); } });\n";
    let (code, _, stderr) = run("livelock", source, &["run", "SCRIPT", "--out", "OUT"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("max_steps_at_instant"), "{stderr}");
    assert!(stderr.contains("thread 'y'"), "{stderr}");
    assert!(stderr.contains("livelock.rhai:2:31"), "{stderr}");
}

#[test]
fn a_spawn_loop_stops_at_max_threads_with_its_line() {
    let source = "let m = machine(#{ max_threads: 100 });\n\
                  m.add_thread(\"root\", || {\n    loop { start_thread(\"c\", || sleep(sec(10))); }\n});\n";
    let (code, _, stderr) = run("spawns", source, &["run", "SCRIPT", "--out", "OUT"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("max_threads"), "{stderr}");
    assert!(stderr.contains("spawns.rhai:3:12"), "{stderr}");
}

#[test]
fn the_event_limit_names_the_last_operation() {
    let source = "let m = machine(#{ max_events: 1000 });\n\
                  m.add_thread(\"a\", || {\n    loop { compute(ns(1)); }\n});\n";
    let (code, _, stderr) = run("events", source, &["run", "SCRIPT", "--out", "OUT"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("max_events"), "{stderr}");
    assert!(stderr.contains("events.rhai:3:12"), "{stderr}");
}

#[test]
fn a_timeout_is_a_failure_not_an_outcome() {
    let source = "let m = machine(#{});\n\
                  m.add_thread(\"a\", || {\n    loop { compute(ns(1)); }\n});\n";
    let (code, _, stderr) = run(
        "timeout",
        source,
        &["run", "SCRIPT", "--out", "OUT", "--timeout", "1"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not be deterministic"), "{stderr}");
    assert!(stderr.contains("timeout.rhai:3:"), "{stderr}");
}

#[test]
fn the_memory_guard_stops_a_run_with_a_line() {
    let source = "let m = machine(#{});\n\
                  for i in 0..50 {\n    m.add_thread(\"t\", || {\n        let z = []; z.pad(1000000, 1);\n        sleep(ms(1));\n        z.len()\n    });\n}\n";
    let (code, _, stderr) = run(
        "memory",
        source,
        &["run", "SCRIPT", "--out", "OUT", "--max-memory", "200MiB"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--max-memory"), "{stderr}");
    assert!(stderr.contains("memory.rhai:"), "{stderr}");
}

#[test]
fn a_stack_too_small_is_refused_at_its_declaration() {
    let source =
        "let m = machine(#{ stack_size: 16384 });\nm.add_thread(\"a\", || compute(ms(1)));\n";
    let (code, _, stderr) = run("stack", source, &["run", "SCRIPT", "--out", "OUT"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("stack.rhai:1:"), "{stderr}");
    assert!(stderr.contains("131072"), "the minimum: {stderr}");
}

#[test]
fn explore_exit_codes_say_what_happened() {
    // --out is a file: a usage error that names the path.
    let dir = scratch("hostile-explore-out");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let output = run_simcli(&[
        "explore",
        "scripts/race.rhai",
        "--quiet",
        "--out",
        file.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a-file"), "{stderr}");
    // A histogram of a variable the script does not have.
    let output = run_simcli(&[
        "explore",
        "scripts/race.rhai",
        "--quiet",
        "--runs",
        "5",
        "--histogram",
        "nothing",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("'nothing'"), "{stderr}");
    // A failure found: 1; none: 0.
    let output = run_simcli(&[
        "explore",
        "scripts/race.rhai",
        "--quiet",
        "--races",
        "--runs",
        "50",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let output = run_simcli(&[
        "explore",
        "scripts/hello.rhai",
        "--quiet",
        "--runs",
        "5",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn the_printed_race_replay_replays_the_same_failure() {
    for seed in 0..5 {
        let out = scratch(&format!("hostile-race-replay-{seed}"));
        let output = run_simcli(&[
            "explore",
            "scripts/race.rhai",
            "--races",
            "--quiet",
            "--seed",
            &seed.to_string(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        let failure = stdout
            .lines()
            .find(|l| l.starts_with("failure 1"))
            .expect("a failure");
        let replay = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("replay: simcli "))
            .expect("a replay command");
        let mut args: Vec<&str> = replay.split(' ').collect();
        args.extend(["--out", out.to_str().unwrap(), "--no-chart"]);
        let replayed = run_simcli(&args);
        let text = String::from_utf8_lossy(&replayed.stdout);
        assert_eq!(replayed.status.code(), Some(1), "{failure}\n{text}");
        if failure.contains("expectation") {
            assert!(text.contains("FAILED"), "{failure}\n{text}");
        }
    }
}

#[test]
fn charts_stay_inside_out_and_no_chart_means_none() {
    let source = "let m = machine(#{});\nm.add_thread(\"a\", || compute(ms(1)));\nlet r = m.run();\nprint(r.gantt(\"sub/x.png\"));\n";
    let (code, _, stderr) = run(
        "nochart",
        source,
        &["run", "SCRIPT", "--out", "OUT", "--no-chart"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let out = workspace().join("target/e2e/hostile-nochart/out");
    assert!(!out.join("sub/x.png").exists());
    // A symlink inside --out is not followed.
    let dir = scratch("hostile-symlink");
    let outside = dir.join("outside");
    let out = dir.join("out");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, out.join("sub")).unwrap();
    let script = dir.join("s.rhai");
    std::fs::write(&script, source).unwrap();
    let output = run_simcli(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("symlink"), "{stderr}");
    assert!(stderr.contains("s.rhai:4:"), "{stderr}");
    assert!(!outside.join("x.png").exists());
}

#[test]
fn a_short_fuzz_slice_finds_no_panic_hang_or_error_without_position() {
    let plan = Plan {
        scripts: 40,
        seed: 18,
        quick: true,
        jobs: 2,
        caps: Caps {
            time: Duration::from_secs(20),
            memory: 2 << 30,
        },
        dir: workspace().join("target").join("e2e").join("fuzz-slice"),
        corpus: corpus(&workspace().join("scripts")),
    };
    let _ = std::fs::remove_dir_all(&plan.dir);
    let tally = fuzz(simcli(), &plan, |_, _: &Path, _| {});
    eprintln!("{tally}");
    assert_eq!(tally.scripts, 40);
    assert_eq!(
        (
            tally.panics,
            tally.hangs,
            tally.over_memory,
            tally.no_position
        ),
        (0, 0, 0, 0),
        "{tally}"
    );
}
