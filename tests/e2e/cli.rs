//! Command-line basics: version, help, usage errors.

use simcli_tests::run_simcli;

#[test]
fn version_prints_the_crate_version() {
    let out = run_simcli(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), format!("simcli {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_explains_what_the_tool_is() {
    let out = run_simcli(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("simulator of concurrency"));
}

#[test]
fn an_unknown_argument_is_a_usage_error() {
    let out = run_simcli(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("--bogus"));
}

#[test]
fn check_warns_of_an_assignment_to_a_captured_variable_and_runs_give_each_thread_its_copy() {
    let out = simcli_tests::scratch("cli-capture");
    let script = out.join("capture.rhai");
    std::fs::write(
        &script,
        "let m = machine();\nlet count = 0;\nfor i in 0..3 {\n    m.add_thread(`w${i}`, || {\n        compute(ms(i + 1));\n        count += 1;\n    });\n}\n",
    )
    .unwrap();
    let check = run_simcli(&["check", script.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0));
    let warning = String::from_utf8(check.stderr).unwrap();
    assert!(
        warning.contains("capture.rhai:6:9: the closure assigns to `count`, which it captured"),
        "{warning}"
    );
    let (code, report) = simcli_tests::run_json(script.to_str().unwrap(), &out);
    assert_eq!(code, Some(0));
    let run = simcli_tests::runs(&report)[0];
    for (name, cpu) in [("w0", 1.0), ("w1", 2.0), ("w2", 3.0)] {
        assert_eq!(
            simcli_tests::thread(run, name)["cpu"],
            simcli_tests::ms(cpu)
        );
    }
}

#[test]
fn timing_counts_the_operations_and_state_changes_and_times_the_parts_apart() {
    let out = simcli_tests::scratch("cli-timing");
    let script = out.join("two.rhai");
    std::fs::write(
        &script,
        "let m = machine(#{ cpus: 1 });\nm.add_thread(\"a\", || compute(ms(1)));\nm.add_thread(\"b\", || compute(ms(1)));\n",
    )
    .unwrap();
    let run = run_simcli(&[
        "run",
        "--quiet",
        "--no-chart",
        "--timing",
        script.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0));
    let stderr = String::from_utf8(run.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    // Two computes; a and b ready, a runs and ends, b switches in, runs
    // and ends: seven state changes.
    assert!(
        lines[0].starts_with("timing: ")
            && lines[0].contains("s wall clock in the simulation, 2 simulated operations, "),
        "{stderr}"
    );
    assert!(
        lines[0].ends_with(" simulated operations/s, 7 state changes"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("s in the analyses, no chart, ") && lines[1].ends_with("s in all"),
        "{stderr}"
    );
    assert_eq!(
        lines[2], "timing: 2 of 2 script threads ran without a stack",
        "{stderr}"
    );
    let stackful = run_simcli(&[
        "run",
        "--quiet",
        "--no-chart",
        "--timing",
        "--stackful",
        script.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8(stackful.stderr).unwrap();
    assert!(
        stderr.ends_with("timing: 0 of 2 script threads ran without a stack\n"),
        "{stderr}"
    );
}
