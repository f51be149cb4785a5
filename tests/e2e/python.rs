//! The Python scripts: the GIL's hand-offs and convoys, every number their
//! headers promise.

use serde_json::Value;
use simcli_tests::{ms, runs, thread};

fn report(script: &str) -> Value {
    simcli_tests::script_report(script, "python")
}

/// What `simcli run scripts/NAME.rhai --quiet --no-chart` prints (it must
/// exit 0).
fn quiet(name: &str) -> String {
    let out = simcli_tests::scratch(&format!("python-{name}"));
    let script = format!("scripts/{name}.rhai");
    let output = simcli_tests::run_simcli(&[
        "run",
        &script,
        "--quiet",
        "--no-chart",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8(output.stdout).unwrap()
}

fn us(n: f64) -> u64 {
    (n * 1e3).round() as u64
}

fn gil<'a>(run: &'a Value, process: &str) -> &'a Value {
    run["gil"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["process"] == process)
        .unwrap_or_else(|| panic!("no gil of {process}"))
}

#[test]
fn gil_cpu_bound_threads_take_as_long_as_one_and_processes_halve_it() {
    let report = report("gil_cpu_bound.rhai");
    let runs = runs(&report);
    let makespans = simcli_tests::makespans(&report);
    assert_eq!(
        makespans,
        [ms(200.0), us(200_082.0), ms(100.0), ms(100.0), ms(110.0)]
    );
    let threads = gil(runs[1], "python");
    assert_eq!(threads["handoffs"], 42);
    assert_eq!(threads["forced"], 40);
    assert_eq!(threads["requests"], 40);
    for wait in threads["waits"].as_array().unwrap() {
        assert_eq!(wait["longest"], ms(5.0));
    }
    assert_eq!(thread(runs[1], "worker0")["blocked"]["Gil"], ms(100.0));
}

#[test]
fn gil_io_bound_threads_overlap_io_and_a_cpu_hog_makes_a_convoy() {
    let report = report("gil_io_bound.rhai");
    let runs = runs(&report);
    assert_eq!(runs[0]["stats"]["makespan"], ms(408.0));
    assert_eq!(runs[1]["stats"]["makespan"], us(102_626.0));
    let held = gil(runs[1], "python")["held"].as_f64().unwrap();
    assert!((0.078..0.080).contains(&held), "{held}");
    assert_eq!(thread(runs[2], "client0")["end"], us(152_020.0));
    assert_eq!(thread(runs[2], "client0")["blocked"]["Gil"], ms(50.0));
    assert_eq!(gil(runs[2], "python")["forced"], 10);
}

#[test]
fn gil_convoy_costs_the_echo_server_two_switch_intervals_per_request() {
    let text = quiet("gil_convoy");
    let table: Vec<&str> = text.lines().filter(|l| l.contains("requests/s")).collect();
    assert_eq!(
        table,
        [
            "K=0  switch interval 5ms: 28572 requests/s",
            "K=1  switch interval 5ms: 100 requests/s",
            "K=2  switch interval 5ms: 50 requests/s",
            "K=4  switch interval 5ms: 25 requests/s",
            "K=0  switch interval 1ms: 28572 requests/s",
            "K=1  switch interval 1ms: 494 requests/s",
            "K=2  switch interval 1ms: 249 requests/s",
            "K=4  switch interval 1ms: 125 requests/s",
        ]
    );
}

#[test]
fn multiprocessing_pays_off_past_twice_the_start_up_cost() {
    let text = quiet("multiprocessing");
    let table: Vec<&str> = text.lines().filter(|l| l.starts_with("W=")).collect();
    assert_eq!(
        table,
        [
            "W=2ms: threads 2.002ms, fork 3.003ms, forkserver 36.003ms, spawn 76.003ms: threads win",
            "W=10ms: threads 10.006ms, fork 7.003ms, forkserver 40.003ms, spawn 80.003ms: processes win with [\"fork\"]",
            "W=50ms: threads 50.022ms, fork 27.003ms, forkserver 60.003ms, spawn 100.003ms: processes win with [\"fork\"]",
            "W=100ms: threads 100.042ms, fork 52.003ms, forkserver 85.003ms, spawn 125.003ms: processes win with [\"fork\", \"forkserver\"]",
            "W=200ms: threads 200.082ms, fork 102.003ms, forkserver 135.003ms, spawn 175.003ms: processes win with [\"fork\", \"forkserver\", \"spawn\"]",
            "W=500ms: threads 500.202ms, fork 252.003ms, forkserver 285.003ms, spawn 325.003ms: processes win with [\"fork\", \"forkserver\", \"spawn\"]",
        ]
    );
}

#[test]
fn process_isolation_sums_through_a_channel_and_refuses_shared_memory() {
    let report = report("process_isolation.rhai");
    let run = runs(&report)[0];
    assert_eq!(run["stats"]["makespan"], ms(32.0));
    assert_eq!(run["variables"][0]["value"], 600);
    assert_eq!(thread(run, "worker2")["cpu"], ms(32.0));
    assert_eq!(thread(run, "parent")["blocked"]["Channel"], ms(32.0));
    let cpu: Vec<(String, u64)> = run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["cpu"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cpu,
        [
            ("python".to_string(), 0),
            ("worker0".to_string(), ms(12.0)),
            ("worker1".to_string(), ms(22.0)),
            ("worker2".to_string(), ms(32.0)),
        ]
    );
    // The same with a worker writing the parent's variable: a clear error.
    let dir = simcli_tests::scratch("python-isolation-error");
    let source =
        std::fs::read_to_string(simcli_tests::workspace().join("scripts/process_isolation.rhai"))
            .unwrap()
            .replace(
                "results.send(part);           // the only way back to the parent",
                "total.fetch_add(part);",
            );
    let path = dir.join("shared.rhai");
    std::fs::write(&path, source).unwrap();
    let output = simcli_tests::run_simcli(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("variable 'total' belongs to process 'python', but a thread of process 'worker0' touched it; processes share nothing, use a channel"),
        "{stderr}"
    );
    assert!(stderr.contains("shared.rhai:28:19"), "{stderr}");
}

#[test]
fn bad_process_options_are_refused_with_their_line() {
    let dir = simcli_tests::scratch("python-bad-options");
    let cases = [
        ("method", "let m = machine();\nm.add_thread(\"t\", || {\n  start_process(\"w\", #{ start_method: \"teleport\" }, || 1);\n});\n", "no start method named \"teleport\"", ":3:"),
        ("interval", "let m = machine();\nlet p = m.add_process(\"py\", #{ gil: true, switch_interval: 0 });\n", "switch_interval", ":2:"),
        ("threads", "let m = machine(#{ memory: \"14MiB\" });\nm.add_thread(\"t\", || {\n  for i in 0..1000 {\n    start_thread(`c${i}`, || sleep(sec(1)));\n  }\n});\n", "can't start new thread", ":4:"),
        ("processes", "let m = machine(#{ memory: \"40MiB\" });\nm.add_thread(\"t\", || {\n  for i in 0..10 {\n    start_process(`p${i}`, || sleep(sec(1)));\n  }\n});\n", "can't start new process", ":4:"),
        ("negative", "let m = machine();\nlet p = m.add_process(\"py\", #{ gil: true, switch_interval: ms(-5) });\n", "not a valid duration", ":2:"),
        ("size", "let m = machine(#{ memory: \"16 parsecs\" });\n", "unknown unit", ":1:"),
    ];
    for (name, source, message, at) in cases {
        let path = dir.join(format!("{name}.rhai"));
        std::fs::write(&path, source).unwrap();
        let output = simcli_tests::run_simcli(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}.rhai{at}")),
            "{name}: {stderr}"
        );
    }
}
