//! The I/O scripts: every number their headers promise, their charts, and
//! bad input to devices and epoll reported with line and column.

use serde_json::Value;
use simcli_tests::{device, ms, prints, run_simcli, runs, scratch, thread};

fn report(script: &str) -> Value {
    simcli_tests::script_report(script, "io")
}

fn us(n: f64) -> u64 {
    (n * 1e3).round() as u64
}

#[test]
fn blocking_io_takes_the_sum_one_after_another_and_the_max_with_threads() {
    let report = report("blocking_io.rhai");
    let runs = runs(&report);
    assert_eq!(runs[0]["stats"]["makespan"], ms(6000.0));
    assert_eq!(runs[1]["stats"]["makespan"], ms(3000.0));
    // Waiting for I/O costs no CPU.
    assert_eq!(thread(runs[0], "waiter")["cpu"], 0);
    assert_eq!(thread(runs[0], "waiter")["blocked"]["Io"], ms(6000.0));
    let kitchen = |run: &Value| device(run, "kitchen")["utilisation"].clone();
    let mean = |u: Value| {
        let u: Vec<f64> = u
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        u.iter().sum::<f64>() / u.len() as f64
    };
    assert!((mean(kitchen(runs[0])) - 1.0 / 3.0).abs() < 1e-9);
    assert!((mean(kitchen(runs[1])) - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        prints(&report),
        ["one waiter: 6s (the sum); three waiters: 3s (the max)"]
    );
}

#[test]
fn readiness_polling_burns_the_cpu_and_epoll_wakes_straight_to_t3() {
    let report = report("readiness.rhai");
    let runs = runs(&report);
    let handled = |run: &Value| -> Vec<String> {
        run["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["text"].as_str().unwrap().to_string())
            .collect()
    };
    // The same order everywhere: T3, T2, T1, each at 10/20/30ms plus handling.
    for run in &runs {
        let log = handled(run);
        assert_eq!(log.len(), 3, "{log:?}");
        for (line, (name, at)) in log.iter().zip([("T3", 10), ("T2", 20), ("T1", 30)]) {
            assert!(
                line.starts_with(&format!("{name} handled at {at}.05")),
                "{line}"
            );
        }
    }
    // Blocking threads: 150us of handling, 4 switches of 2us.
    let blocking = runs[0];
    assert_eq!(blocking["stats"]["cpus"][0]["busy"], us(150.0));
    assert_eq!(blocking["stats"]["cpus"][0]["switching"], us(8.0));
    // Polling: the CPU is busy all along with 29,900 checks.
    let polling = runs[1];
    assert_eq!(
        thread(polling, "poller")["cpu"],
        polling["stats"]["makespan"]
    );
    assert_eq!(thread(polling, "poller")["cpu"], us(30_050.0));
    // epoll: the handling alone, no switch.
    let epoll = runs[2];
    assert_eq!(thread(epoll, "event loop")["cpu"], us(150.0));
    assert_eq!(epoll["stats"]["cpus"][0]["switching"], 0);
    assert_eq!(
        thread(epoll, "event loop")["blocked"]["Epoll"],
        us(29_900.0)
    );
    assert_eq!(
        prints(&report),
        ["polling: 29900 checks, 30.05ms of CPU; epoll: 150us of CPU"]
    );
}

#[test]
fn disk_vs_network_queues_at_the_fast_disk_and_not_at_the_slow_network() {
    let report = report("disk_vs_network.rhai");
    let runs = runs(&report);
    let disk = device(runs[0], "disk");
    assert_eq!(disk["requests"], 200);
    assert_eq!(disk["mean_service"], us(2100.0));
    assert_eq!(disk["max_queue"], 18);
    let wait = disk["mean_queue_wait"].as_u64().unwrap();
    assert!((17_000_000..=19_000_000).contains(&wait), "{wait}");
    assert_eq!(runs[0]["stats"]["makespan"], us(210_002.0));
    let network = device(runs[1], "network");
    assert_eq!(network["mean_queue_wait"], 0);
    assert_eq!(network["max_queue"], 0);
    assert_eq!(network["mean_service"], ms(60.0));
    assert_eq!(thread(runs[1], "client0")["blocked"]["Io"], ms(600.0));
}

/// Runs an inline script and returns (exit code, stderr).
fn failing(name: &str, source: &str) -> (Option<i32>, String) {
    let dir = scratch(&format!("io-bad-{name}"));
    let path = dir.join(format!("{name}.rhai"));
    std::fs::write(&path, source).unwrap();
    let out = dir.to_str().unwrap();
    let output = run_simcli(&["run", path.to_str().unwrap(), "--out", out]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn bad_io_input_names_the_line_and_column_and_keeps_the_partial_chart() {
    let cases = [
        (
            "negative",
            "let m = machine();\nlet d = m.device(\"disk\", #{ latency: ms(1) });\nm.add_thread(\"t\", || { compute(ms(1)); d.io(-5); });\n",
            "byte count cannot be negative",
            "3:",
        ),
        (
            "fraction",
            "let m = machine();\nlet d = m.device(\"disk\", #{ latency: ms(1) });\nm.add_thread(\"t\", || { d.submit(1.5); });\n",
            "whole number of bytes",
            "3:",
        ),
        (
            "channels",
            "let m = machine();\nlet d = m.device(\"disk\", #{ channels: 0 });\n",
            "`channels` must be between 1 and 65535",
            "2:",
        ),
        (
            "unit",
            "let m = machine();\nlet d = m.device(\"disk\", #{ bandwidth: \"5 parsecs/s\" });\n",
            "unknown unit",
            "2:",
        ),
        (
            "empty_epoll",
            "let m = machine();\nm.add_thread(\"t\", || {\n  compute(ms(1));\n  let ep = epoll();\n  ep.wait();\n});\n",
            "empty set",
            "5:",
        ),
        (
            "other_machine",
            "let a = machine(#{ name: \"a\" });\nlet d = a.device(\"disk\", #{ latency: ms(1) });\nlet b = machine(#{ name: \"b\" });\nb.add_thread(\"t\", || { d.io(1); });\n",
            "another machine",
            "4:",
        ),
    ];
    for (name, source, message, line) in cases {
        let (code, stderr) = failing(name, source);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}.rhai:{line}")),
            "{name}: {stderr}"
        );
    }
    // A run that failed midway keeps its chart.
    let dir = scratch("io-bad-empty_epoll");
    let (_, _) = failing("empty_epoll", cases[4].1);
    simcli_tests::decode_png(&dir.join("empty_epoll.png"));
}
