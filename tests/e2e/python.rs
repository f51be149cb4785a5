//! The Python scripts: the GIL's hand-offs and convoys, every number their
//! headers promise.

use serde_json::Value;
use simcli_tests::{ms, runs, thread};

fn report(script: &str) -> Value {
    simcli_tests::script_report(script, "python")
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
    let makespans: Vec<u64> = runs
        .iter()
        .map(|r| r["stats"]["makespan"].as_u64().unwrap())
        .collect();
    assert_eq!(makespans, [ms(200.0), us(200_082.0), ms(100.0), ms(100.0)]);
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
    let out = simcli_tests::scratch("python-gil_convoy");
    let output = simcli_tests::run_simcli(&[
        "run",
        "scripts/gil_convoy.rhai",
        "--quiet",
        "--no-chart",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
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
