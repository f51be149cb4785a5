//! Every script in `scripts/` runs as a user runs it: exit 0, the numbers
//! its header comment promises, a chart that decodes, identical bytes on a
//! second run.

use std::path::{Path, PathBuf};

use simcli_tests::{
    decode_png, ms, run_json, run_json_with, run_simcli, runs, scratch, thread, workspace,
};

/// The example scripts (the benchmarks in `scripts/bench` are measured, not
/// tested, but must compile).
fn example_scripts() -> Vec<PathBuf> {
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(workspace().join("scripts"))
        .expect("scripts/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rhai"))
        .collect();
    scripts.sort();
    scripts
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace())
        .expect("inside the workspace")
        .display()
        .to_string()
}

#[test]
fn every_script_runs_and_draws_a_chart_that_decodes() {
    let scripts = example_scripts();
    assert!(scripts.len() >= 4, "expected the example scripts");
    for script in scripts {
        let name = relative(&script);
        let stem = script.file_stem().unwrap().to_string_lossy().into_owned();
        let out = scratch(&format!("every-{stem}"));
        // A long sweep says in its header how to test it quickly.
        let extra = simcli_tests::tested_with(&script);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (code, report) = run_json_with(&name, &out, &extra);
        let runs = runs(&report);
        // A script may show a bug by breaking its own expectation: exit 1.
        let expectation_failed = runs.iter().any(|r| {
            r["expectations"]
                .as_array()
                .is_some_and(|list| list.iter().any(|e| e["held"] == false))
        });
        let expected = if expectation_failed { 1 } else { 0 };
        assert_eq!(code, Some(expected), "{name}: {report}");
        assert!(report["error"].is_null(), "{name}: {report}");
        assert!(!runs.is_empty(), "{name} ran no machine");
        for run in runs {
            let outcome = run["outcome"].as_str().unwrap_or_default();
            assert!(
                ["completed", "deadlocked", "stalled"].contains(&outcome),
                "{name}: {outcome}"
            );
            // A sweep's points are drawn only by the script's own charts.
            if run["sweep"] == true {
                assert!(run["chart"].is_null(), "{name}");
                continue;
            }
            let chart = run["chart"].as_str().expect("a chart path");
            let (width, height) = decode_png(&workspace().join(chart));
            assert!(width >= 800 && height >= 150, "{name}: {width}x{height}");
        }
        // The charts the script drew itself (r.gantt, chart).
        for item in report["output"].as_array().expect("an output list") {
            if let Some(chart) = item["chart"].as_str().filter(|c| c.ends_with(".png")) {
                let (width, height) = decode_png(&workspace().join(chart));
                assert!(width >= 800 && height >= 150, "{name}: {width}x{height}");
            }
        }
    }
}

#[test]
fn hello_takes_ten_milliseconds_and_idles_during_its_sleep() {
    let (code, report) = run_json("scripts/hello.rhai", &scratch("hello"));
    assert_eq!(code, Some(0));
    let run = runs(&report)[0];
    assert_eq!(run["stats"]["makespan"], ms(10.0));
    let hello = thread(run, "hello");
    assert_eq!(hello["cpu"], ms(8.0));
    assert_eq!(hello["blocked"]["Sleep"], ms(2.0));
    assert_eq!(hello["switches"], 0);
    assert_eq!(run["stats"]["cpus"][0]["utilisation"], 0.8);
    assert_eq!(
        run["log"][0]["text"],
        "hello from a simulated thread at 10ms"
    );
}

#[test]
fn round_robin_pays_eight_one_millisecond_switches() {
    let (code, report) = run_json("scripts/round_robin.rhai", &scratch("rr"));
    assert_eq!(code, Some(0));
    let run = runs(&report)[0];
    assert_eq!(run["stats"]["makespan"], ms(98.0));
    for (name, end, switches) in [("a", 76.0, 2), ("b", 87.0, 3), ("c", 98.0, 3)] {
        let t = thread(run, name);
        assert_eq!(t["end"], ms(end), "{name}");
        assert_eq!(t["cpu"], ms(30.0), "{name}");
        assert_eq!(t["switches"], switches, "{name}");
    }
    assert_eq!(run["stats"]["cpus"][0]["switching"], ms(8.0));
}

#[test]
fn priority_lets_the_interactive_thread_preempt_the_batch_job() {
    let (code, report) = run_json("scripts/priority.rhai", &scratch("priority"));
    assert_eq!(code, Some(0));
    let run = runs(&report)[0];
    assert_eq!(run["stats"]["makespan"], ms(65.0));
    let interactive = thread(run, "interactive");
    assert_eq!(interactive["ready"], 0);
    assert_eq!(interactive["end"], ms(45.0));
    let batch = thread(run, "batch");
    assert_eq!(batch["ready"], ms(15.0));
    assert_eq!(batch["end"], ms(65.0));
}

#[test]
fn cpu_bound_work_speeds_up_with_cores() {
    let out = scratch("cpu_bound");
    let (code, report) = run_json("scripts/cpu_bound.rhai", &out);
    assert_eq!(code, Some(0));
    let runs = runs(&report);
    let makespans = simcli_tests::makespans(&report);
    assert_eq!(makespans, [400_078_000, 200_038_000, 100_000_000]);
    let labels: Vec<&str> = runs.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["1 core(s)", "2 core(s)", "4 core(s)"]);
    for i in 1..=3 {
        assert!(out.join(format!("cpu_bound-{i}.png")).exists());
    }
    let prints: Vec<&str> = report["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["print"].as_str())
        .collect();
    assert_eq!(prints[2], "4 core(s): makespan 100ms, speedup 4.0x");
}

#[test]
fn the_text_report_shows_makespan_threads_cpus_and_the_chart_path() {
    let out = scratch("text-report");
    let output = run_simcli(&["run", "scripts/hello.rhai", "--out", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("makespan: 10ms"), "{text}");
    assert!(text.contains("cpu0"), "{text}");
    assert!(text.contains("80.0%"), "{text}");
    assert!(
        text.contains("[10ms hello] hello from a simulated thread at 10ms"),
        "{text}"
    );
    assert!(
        text.contains(&format!("chart: {}", out.join("hello.png").display())),
        "{text}"
    );
}

#[test]
fn the_same_run_gives_identical_reports_and_charts() {
    let mut outputs = Vec::new();
    for attempt in 0..2 {
        let out = scratch(&format!("identical-{attempt}"));
        let dir = out.to_str().unwrap();
        let png = run_simcli(&["run", "scripts/round_robin.rhai", "--out", dir]);
        let svg = run_simcli(&["run", "scripts/round_robin.rhai", "--svg", "--out", dir]);
        assert_eq!(png.status.code(), Some(0));
        assert_eq!(svg.status.code(), Some(0));
        let png_bytes = std::fs::read(out.join("round_robin.png")).unwrap();
        let svg_bytes = std::fs::read(out.join("round_robin.svg")).unwrap();
        let report = String::from_utf8(png.stdout).unwrap().replace(dir, "OUT");
        outputs.push((report, png_bytes, svg_bytes));
    }
    assert_eq!(outputs[0].0, outputs[1].0);
    assert!(outputs[0].1 == outputs[1].1, "PNG bytes differ");
    assert!(outputs[0].2 == outputs[1].2, "SVG bytes differ");
    assert!(String::from_utf8_lossy(&outputs[0].2).contains("<svg"));
}

#[test]
fn a_seeded_run_is_reproducible() {
    let report = |seed: &str| {
        let out = scratch(&format!("seed-{seed}"));
        let output = run_simcli(&[
            "run",
            "scripts/cpu_bound.rhai",
            "--seed",
            seed,
            "--json",
            "--no-chart",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(0));
        output.stdout
    };
    assert_eq!(report("7"), report("7"));
}

#[test]
fn the_trace_file_reads_back_as_the_same_trace() {
    let out = scratch("trace");
    let path = out.join("hello.ron");
    let output = run_simcli(&[
        "run",
        "scripts/hello.rhai",
        "--no-chart",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = std::fs::read_to_string(&path).unwrap();
    let trace = sim_core::Trace::from_ron(&text).expect("the trace parses");
    assert_eq!(trace.makespan().as_nanos(), ms(10.0));
    assert_eq!(trace.to_ron().unwrap(), text);
}

#[test]
fn the_benchmark_scripts_compile() {
    for entry in std::fs::read_dir(workspace().join("scripts/bench")).unwrap() {
        let path = entry.unwrap().path();
        let output = run_simcli(&["check", &relative(&path)]);
        assert_eq!(output.status.code(), Some(0), "{}", path.display());
    }
}
