//! Bad scripts: every error names the script, line and column, says what to
//! do, exits 1, and a run that fails keeps its partial trace and chart.

use simcli_tests::{run_json, run_simcli, runs, scratch, workspace};

/// Runs a fixture and returns its exit code and stderr.
fn fail(fixture: &str) -> (Option<i32>, String) {
    let out = scratch(&format!("error-{fixture}"));
    let script = format!("tests/fixtures/{fixture}.rhai");
    let output = run_simcli(&["run", &script, "--out", out.to_str().unwrap()]);
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_syntax_error_names_line_and_column() {
    let (code, stderr) = fail("syntax_error");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--> tests/fixtures/syntax_error.rhai:4:18"),
        "{stderr}"
    );
    assert!(stderr.contains(" 4 |     compute(ms(5);"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
}

#[test]
fn check_reports_the_same_syntax_error_without_running() {
    let output = run_simcli(&["check", "tests/fixtures/syntax_error.rhai"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("syntax_error.rhai:4:18"), "{stderr}");
    let output = run_simcli(&["check", "scripts/hello.rhai"]);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn an_error_in_a_body_names_its_line_thread_and_time() {
    let (code, stderr) = fail("body_error");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("body_error.rhai:5:5"), "{stderr}");
    assert!(stderr.contains("in thread 'a' at 5ms"), "{stderr}");
    assert!(stderr.contains("compute"), "{stderr}");
    assert!(
        stderr.contains("ms(5)"),
        "the hint shows how to write a duration: {stderr}"
    );
}

#[test]
fn a_failed_run_keeps_its_partial_trace_and_chart() {
    let out = scratch("partial");
    let (code, report) = run_json("tests/fixtures/body_error.rhai", &out);
    assert_eq!(code, Some(1));
    let run = runs(&report)[0];
    assert_eq!(run["outcome"], "failed");
    assert_eq!(run["stats"]["makespan"], 5_000_000);
    assert_eq!(report["error"]["line"], 5);
    assert_eq!(report["error"]["column"], 5);
    assert!(out.join("body_error.png").exists());
}

#[test]
fn an_endless_loop_is_stopped_with_a_clear_error() {
    let (code, stderr) = fail("endless_loop");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("endless loop"), "{stderr}");
    assert!(stderr.contains("in thread 'spinner' at 1ms"), "{stderr}");
    assert!(stderr.contains("endless_loop.rhai:4:"), "{stderr}");
}

#[test]
fn a_body_capturing_its_own_machine_is_pointed_at() {
    let (code, stderr) = fail("captures_machine");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("captures_machine.rhai:4:3"), "{stderr}");
    assert!(
        stderr.contains("capture the variables and locks"),
        "{stderr}"
    );
}

#[test]
fn deep_recursion_is_stopped_before_the_stack_overflows() {
    // Whichever limit comes first stops it: the stack margin (debug builds,
    // large frames) or the call depth (release builds).
    let (code, stderr) = fail("deep_recursion");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("calls nested too deeply"), "{stderr}");
    assert!(stderr.contains("deep_recursion.rhai:4:"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
}

#[test]
fn a_machine_limit_stops_the_run_and_keeps_what_happened() {
    let out = scratch("limit");
    let (code, report) = run_json("tests/fixtures/time_limit.rhai", &out);
    assert_eq!(code, Some(1));
    let error = &report["error"];
    assert_eq!(error["stage"], "limit");
    assert!(
        error["message"].as_str().unwrap().contains("max_time"),
        "{error}"
    );
    let run = runs(&report)[0];
    assert_eq!(run["outcome"], "failed");
    assert!(out.join("time_limit.png").exists());
}

#[test]
fn a_missing_script_is_a_usage_error() {
    let output = run_simcli(&["run", "no/such/script.rhai"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr)
        .unwrap()
        .contains("cannot read the script"));
}

#[test]
fn api_lists_every_function_with_a_doc_line() {
    let output = run_simcli(&["api"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "compute(d: Duration)",
        "sleep(d: Duration)",
        "yield_now()",
        "now() -> Duration",
        "machine(settings: Map) -> Machine",
        "Machine.add_thread(name: String, body: Fn)",
        "Machine.run() -> Run",
        "Run.makespan -> Duration",
        "Thread.join() -> Dynamic",
        "ms(n: int) -> Duration",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(expected))
            .unwrap_or_else(|| panic!("`{expected}` missing from:\n{text}"));
        assert!(line.len() > expected.len() + 10, "no doc on `{line}`");
    }
    let _ = workspace();
}
