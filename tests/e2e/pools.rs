//! Thread and process pools through the real `simcli`: the numbers the pool
//! scripts' headers promise, the pool figures of the report, and misuse.

use serde_json::Value;
use simcli_tests::{ms, prints, run_simcli, runs, scratch};

fn report(script: &str) -> Value {
    simcli_tests::script_report(script, "pools")
}

fn pool(run: &Value) -> &Value {
    &run["pools"][0]
}

#[test]
fn process_pool_beats_the_gil_on_big_jobs_and_loses_on_tiny_ones() {
    let report = report("process_pool.rhai");
    let runs = runs(&report);
    let makespans = simcli_tests::makespans(&report);
    assert_eq!(
        makespans,
        [ms(240.242), ms(122.199), ms(40.086), ms(48.116)]
    );
    // Big jobs: the process pool is about twice as fast, in three times
    // the memory (two more interpreters).
    assert!(makespans[0] > 19 * makespans[1] / 10);
    assert_eq!(runs[0]["memory"]["peak"], 13_917_388);
    assert_eq!(runs[1]["memory"]["peak"], 41_672_294);
    // Tiny jobs: slower on twice the CPUs.
    assert!(makespans[3] > makespans[2]);
    // Pickling: 4 ends of 5us per job, both ways.
    assert_eq!(pool(runs[3])["ipc"], ms(40.0));
    assert_eq!(pool(runs[2])["ipc"], 0);
    assert_eq!(pool(runs[3])["kind"], "process pool");
    assert_eq!(pool(runs[0])["jobs"], 8);
    assert_eq!(pool(runs[0])["max_queue"], 8);
    assert_eq!(
        prints(&report),
        [
            "thread pool, 8 jobs of 30ms: makespan 240.242ms, peak memory 13.3MiB",
            "process pool, 8 jobs of 30ms: makespan 122.199ms, peak memory 39.7MiB",
            "thread pool, 2000 jobs of 10us: makespan 40.086ms, peak memory 13.3MiB",
            "process pool, 2000 jobs of 10us: makespan 48.116ms, peak memory 39.7MiB",
        ]
    );
}

#[test]
fn thread_pool_trades_time_for_memory_against_a_thread_per_request() {
    let report = report("thread_pool.rhai");
    let runs = runs(&report);
    let makespans = simcli_tests::makespans(&report);
    assert_eq!(makespans, [ms(270.668), ms(5032.563), ms(650.221)]);
    let peaks: Vec<u64> = runs
        .iter()
        .map(|r| r["memory"]["peak"].as_u64().unwrap())
        .collect();
    assert_eq!(peaks, [27_239_704, 14_013_232, 14_907_776]);
    let pool8 = pool(runs[1]);
    assert_eq!(pool8["workers"], 8);
    assert_eq!(pool8["jobs"], 2000);
    assert_eq!(pool8["mean_wait"], 2_503_471_360u64);
    assert!(pool8["utilisation"].as_f64().unwrap() > 0.99);
    assert_eq!(pool(runs[2])["workers"], 64);
    // The thread-per-request run has no pool.
    assert_eq!(runs[0]["pools"].as_array().unwrap().len(), 0);
}

/// Runs a script given as text; its exit code and stderr.
fn run_text(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = scratch(&format!("pools-{name}"));
    let script = dir.join(format!("{name}.rhai"));
    std::fs::write(&script, text).unwrap();
    let out = dir.to_str().unwrap();
    let output = run_simcli(&["run", script.to_str().unwrap(), "--out", out, "--no-chart"]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn submit_after_shutdown_names_the_pool_and_the_line() {
    let (code, stderr) = run_text(
        "late",
        "let m = machine();\nlet pool = m.thread_pool(\"pool\", 2);\nm.add_thread(\"main\", || {\n    pool.shutdown();\n    pool.submit(\"late\", || 1);\n});\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("pool 'pool' was shut down"), "{stderr}");
    assert!(stderr.contains("late.rhai:5:"), "{stderr}");
}

#[test]
fn a_process_pool_job_cannot_touch_the_submitters_variables() {
    let (code, stderr) = run_text(
        "foreign",
        "let m = machine();\nlet counter = m.variable(\"counter\", 0);\nlet pool = m.process_pool(\"procs\", 1);\nm.add_thread(\"main\", || {\n    pool.submit(\"add\", || counter.fetch_add(1)).result();\n});\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("variable 'counter' belongs to process 'main'"),
        "{stderr}"
    );
    assert!(stderr.contains("foreign.rhai:5:"), "{stderr}");
}

#[test]
fn a_future_of_another_machine_is_refused() {
    let (code, stderr) = run_text(
        "other",
        "let a = machine(#{ name: \"a\" });\nlet pool = a.thread_pool(\"pool\", 1);\nlet b = machine(#{ name: \"b\" });\nb.add_thread(\"main\", || pool.submit(\"x\", || 1).result());\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("pool 'pool' belongs to a, which is not the machine running now"),
        "{stderr}"
    );
}

#[test]
fn a_failed_job_raises_in_result_and_try_catches_it() {
    let (code, stderr) = run_text(
        "raise",
        "let m = machine();\nlet pool = m.thread_pool(\"pool\", 1);\nm.add_thread(\"main\", || {\n    let f = pool.submit(\"bad\", || { compute(ms(1)); throw \"boom\"; });\n    try { f.result(); } catch (e) { print(`caught: ${e}`); }\n    f.result();\n});\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    // The first result() was caught; the second fails the run, pointing
    // at the job's throw.
    assert!(stderr.contains("the script threw boom"), "{stderr}");
    assert!(stderr.contains("raise.rhai:4:53"), "{stderr}");
}

#[test]
fn which_model_quick_sweep_finds_the_winners_computed_by_hand() {
    let out = scratch("pools-which-model");
    let (code, report) =
        simcli_tests::run_json_with("scripts/which_model.rhai", &out, &["--set", "quick=true"]);
    assert_eq!(code, Some(0), "{report}");
    // 5 cells x 2 connection counts x 5 models, each a sweep point.
    let runs = runs(&report);
    assert_eq!(runs.len(), 50);
    assert!(runs
        .iter()
        .all(|r| r["sweep"] == true && r["chart"].is_null()));
    let lines = prints(&report);
    let row = |cell: &str, n: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(cell) && l[34..].starts_with(n))
            .unwrap_or_else(|| panic!("no row {cell} {n}: {lines:?}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // By hand: one request alone takes 100us of I/O, 1ms of CPU, or 1s of
    // I/O; served sequentially nothing is faster, and it has one thread.
    assert!(
        row("io 100us, cpu 0s", "1 ").contains("1 sequential 10000 sequential 0.1 sequential 13.2")
    );
    assert!(row("no io, cpu 1ms", "1 ").contains("1 sequential 1000 sequential 1.0"));
    assert!(row("io 1s, cpu 0s", "1 ").contains("1 sequential 1.0 sequential 1000"));
    // 100 slow waits overlap on one loop: 100 per second, p99 1s.
    assert!(row("io 1s, cpu 0s", "100").contains("100 asyncio 100.0 asyncio 1000"));
    // 100 x 1ms of CPU and a 1s wait: the loop computes them one after the
    // other (100ms), then all wait: 1.1s, 90.9 per second.
    assert!(row("io 1s, cpu 1ms", "100").contains("100 asyncio 90.9"));
    // Pure CPU on 4 CPUs: only the process pool escapes the GIL.
    assert!(row("no io, cpu 1ms", "100").contains("100 process pool"));
    assert!(row("io 100us, cpu 1ms", "100").contains("100 process pool"));
    assert!(lines.contains(
        &"the rule of thumb picked a model within 10% of the best throughput in 6 of 10 cells"
            .to_string()
    ));
    // The three heatmaps decode and are the same bytes on a second run.
    let again = scratch("pools-which-model-again");
    let (code, _) =
        simcli_tests::run_json_with("scripts/which_model.rhai", &again, &["--set", "quick=true"]);
    assert_eq!(code, Some(0));
    for metric in ["throughput", "p99", "memory"] {
        let name = format!("which_model_{metric}.png");
        let (width, height) = simcli_tests::decode_png(&out.join(&name));
        assert!(width >= 600 && height >= 200, "{name}: {width}x{height}");
        assert_eq!(
            std::fs::read(out.join(&name)).unwrap(),
            std::fs::read(again.join(&name)).unwrap(),
            "{name} differs between runs"
        );
    }
}

/// The full sweep's figures that which_model.rhai's header gives. Minutes
/// in a debug build, so run on request, in release:
/// `cargo test --release -p simcli-tests --test e2e -- --ignored which_model_full`.
#[test]
#[ignore = "the full sweep: run with --release -- --ignored"]
fn which_model_full_sweep_gives_the_figures_of_its_header() {
    let out = scratch("pools-which-model-full");
    let (code, report) = simcli_tests::run_json_with("scripts/which_model.rhai", &out, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(runs(&report).len(), 325);
    let lines = prints(&report);
    let row = |cell: &str, n: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(cell) && l[34..].starts_with(n))
            .unwrap_or_else(|| panic!("no row {cell} {n}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(row("no io, cpu 1ms", "10000").contains("process pool 3834"));
    assert!(row("no io, cpu 1ms", "1 ").contains("sequential 1000"));
    assert!(row("io 100us, cpu 0s", "10000").contains("asyncio 333300"));
    assert!(row("io 1s, cpu 0s", "10000").contains("asyncio 9852"));
    for line in lines
        .iter()
        .filter(|l| l.len() > 34 && l[34..].starts_with("1 "))
    {
        assert!(line[41..].starts_with("sequential"), "{line}");
    }
    assert!(lines.contains(
        &"the rule of thumb picked a model within 10% of the best throughput in 48 of 65 cells"
            .to_string()
    ));
}
