//! Issue 16: script bodies run without a stack where they can
//! (`sim-core/src/script/stackless.rs`). Every script of the gallery and
//! the challenges gives the same bytes with and without `--stackful` (the
//! benchmarks' are the same models at sizes too slow for a debug build; the
//! unit tests beside the module compare random bodies), a benchmark's
//! bodies do run stackless (a third of the memory or less), and so do the
//! gallery's bodies that wait on devices and every kind of resource.

use std::path::Path;

use simcli_tests::{run_simcli, scratch, workspace};

#[test]
fn every_script_reports_the_same_bytes_with_and_without_a_stack() {
    let all = simcli_tests::rhai_files(&["scripts", "scripts/challenges"]);
    assert!(all.len() > 30, "{all:?}");
    let dir = scratch("stackless");
    for path in all {
        // A long sweep's header says how to test it quickly (which_model's
        // full sweep takes minutes in a debug build).
        let quick = simcli_tests::tested_with(&path);
        let quick: Vec<&str> = quick.iter().map(String::as_str).collect();
        let path = path.to_str().expect("a UTF-8 path");
        let run = |extra: &[&str]| {
            let mut args = vec!["run", path, "--no-chart", "--out", dir.to_str().unwrap()];
            args.extend(extra);
            let output = run_simcli(&args);
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        let stackless = run(&quick);
        let stackful = run(&[&quick[..], &["--stackful"]].concat());
        assert_eq!(stackless, stackful, "{path}");
    }
}

/// The peak resident memory of `simcli run --no-chart --quiet SCRIPT
/// EXTRA...`, in KiB, as `/usr/bin/time` reports it.
fn peak_kib(script: &str, extra: &[&str]) -> u64 {
    let mut args = vec!["run", script, "--no-chart", "--quiet"];
    args.extend(extra);
    let mut command = std::process::Command::new("/usr/bin/time");
    command
        .arg("-f")
        .arg("%M")
        .arg(simcli_tests::simcli())
        .args(&args)
        .current_dir(workspace());
    let output = command.output().expect("time runs");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("a peak from /usr/bin/time")
}

#[test]
fn a_hundred_thousand_script_threads_take_far_less_memory_without_a_stack() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("skipped: no /usr/bin/time");
        return;
    }
    let script = "scripts/bench/many_threads.rhai";
    let stackless = peak_kib(script, &[]);
    let stackful = peak_kib(script, &["--stackful"]);
    // A parked stackful body keeps two pages of stack and more (about
    // 9.7 KiB a thread in all); a stackless one its steps' state.
    assert!(
        stackless * 3 < stackful,
        "stackless {stackless} KiB, stackful {stackful} KiB"
    );
}

/// The gallery's bodies that wait on devices, reader-writer locks,
/// condition variables, channels and events, and print, run without a
/// stack (`--timing` counts them).
#[test]
fn bodies_that_wait_on_any_resource_run_without_a_stack() {
    for (script, count) in [
        ("scripts/disk_vs_network.rhai", "40 of 40"),
        ("scripts/gil_io_bound.rhai", "10 of 10"),
        ("scripts/gil_convoy.rhai", "30 of 30"),
        ("scripts/readers_writers.rhai", "8 of 8"),
        ("scripts/lost_wakeup.rhai", "2 of 2"),
        ("scripts/hello.rhai", "1 of 1"),
    ] {
        let output = run_simcli(&["run", script, "--no-chart", "--quiet", "--timing"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = format!("timing: {count} script threads ran without a stack");
        assert!(stderr.contains(&line), "{script}: {stderr}");
    }
}
