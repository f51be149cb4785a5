//! Sweeps: `--set key=value` drives a script from the shell, and
//! `chart(...)` draws the runs of a sweep side by side.

use std::path::Path;

use simcli_tests::{decode_png, prints, run_json, run_simcli, scratch};

/// The `chart` items of a JSON report's output, in order.
fn charts(report: &serde_json::Value) -> Vec<String> {
    report["output"]
        .as_array()
        .expect("an output list")
        .iter()
        .filter_map(|item| item["chart"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn compare_chart_gives_the_makespans_and_mean_finishes_its_header_promises() {
    let out = scratch("sweeps-compare");
    let (code, report) = run_json("scripts/compare_chart.rhai", &out);
    assert_eq!(code, Some(0), "{report}");
    let makespans = simcli_tests::makespans(&report);
    assert_eq!(
        makespans,
        [
            160_006_000,
            80_002_000,
            40_000_000,
            160_030_000,
            80_014_000,
            40_000_000
        ]
    );
    assert_eq!(
        prints(&report),
        [
            "fifo, 1 cpu(s): makespan 160.006ms, mean finish 100.003ms",
            "fifo, 2 cpu(s): makespan 80.002ms, mean finish 60.001ms",
            "fifo, 4 cpu(s): makespan 40ms, mean finish 40ms",
            "rr, 1 cpu(s): makespan 160.03ms, mean finish 145.027ms",
            "rr, 2 cpu(s): makespan 80.014ms, mean finish 75.013ms",
            "rr, 4 cpu(s): makespan 40ms, mean finish 40ms",
        ]
    );
    let expected: Vec<String> = ["makespan", "lines", "heatmap"]
        .iter()
        .map(|n| {
            out.join(format!("compare_chart-{n}.png"))
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(charts(&report), expected);
    for chart in &expected {
        let (width, height) = decode_png(Path::new(chart));
        assert!(width >= 800 && height >= 200, "{chart}: {width}x{height}");
    }
}

#[test]
fn set_changes_what_the_script_runs_and_no_chart_draws_none_of_its_charts() {
    let out = scratch("sweeps-set");
    let dir = out.to_str().unwrap();
    let output = run_simcli(&[
        "run",
        "scripts/compare_chart.rhai",
        "--set",
        "threads=8",
        "--quiet",
        "--no-chart",
        "--out",
        dir,
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("fifo, 1 cpu(s): makespan 320.014ms"),
        "{text}"
    );
    assert!(text.contains("rr, 4 cpu(s): makespan 80.014ms"), "{text}");
    assert!(!text.contains("chart:"), "{text}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);

    // Without --no-chart the text report lists the script's charts.
    let output = run_simcli(&["run", "scripts/compare_chart.rhai", "--out", dir]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let line = format!("chart: {}", out.join("compare_chart-heatmap.png").display());
    assert!(text.lines().any(|l| l == line), "{text}");
    assert!(
        text.contains("fifo, 1 cpu(s): makespan 160.006ms"),
        "{text}"
    );
}

#[test]
fn a_set_key_that_is_not_a_name_is_a_usage_error() {
    for (argument, expected) in [
        ("1x=3", "not a valid variable name"),
        ("max-cpus=3", "not a valid variable name"),
        ("cpus", "expected key=value"),
        ("let=1", "keyword"),
    ] {
        let output = run_simcli(&["run", "scripts/hello.rhai", "--no-chart", "--set", argument]);
        assert_eq!(output.status.code(), Some(2), "{argument}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(expected), "{argument}: {stderr}");
    }
}

#[test]
fn a_script_that_assigns_to_a_set_value_fails_at_that_line() {
    let out = scratch("sweeps-assign");
    let script = out.join("assign.rhai");
    std::fs::write(
        &script,
        "let m = machine();\nm.add_thread(\"a\", || compute(ms(1)));\ncpus = 2;\n",
    )
    .unwrap();
    let output = run_simcli(&[
        "run",
        script.to_str().unwrap(),
        "--no-chart",
        "--set",
        "cpus=4",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(":3:"), "{stderr}");
    assert!(stderr.contains("cpus"), "{stderr}");
}

#[test]
fn explore_passes_set_values_to_every_run_and_to_the_replay_command() {
    let out = scratch("sweeps-explore");
    let script = out.join("limit.rhai");
    std::fs::write(
        &script,
        "let m = machine(#{ cpus: 2 });\n\
         for i in 0..3 { m.add_thread(`t${i}`, || compute(ms(10))); }\n\
         m.expect(\"fast enough\", |r| r.makespan <= ms(param(\"limit\", 100)));\n",
    )
    .unwrap();
    let explore = |set: &[&str]| {
        let mut args = vec![
            "explore",
            script.to_str().unwrap(),
            "--runs",
            "5",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(set);
        run_simcli(&args)
    };
    let passing = explore(&[]);
    assert_eq!(passing.status.code(), Some(0));
    let failing = explore(&["--set", "limit=15"]);
    assert_eq!(failing.status.code(), Some(1));
    let text = String::from_utf8(failing.stdout).unwrap();
    let replay = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: simcli "))
        .unwrap_or_else(|| panic!("no replay line in {text}"));
    assert!(replay.ends_with(" --set limit=15"), "{replay}");
    // The replay fails the same way.
    let args: Vec<&str> = replay.split(' ').chain(["--no-chart"]).collect();
    let again = run_simcli(&args);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8(again.stdout)
        .unwrap()
        .contains("fast enough"));
}
