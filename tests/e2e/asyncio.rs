//! The asyncio scripts: every number their headers promise, the race that
//! explore finds and its replay, and misuse of awaits.

use serde_json::Value;
use simcli_tests::{ms, prints, run_simcli, runs, scratch, thread};

fn report(script: &str) -> Value {
    simcli_tests::script_report(script, "asyncio")
}

fn us(n: f64) -> u64 {
    (n * 1e3).round() as u64
}

fn event_loop<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["event_loops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no event loop {name}"))
}

fn task<'a>(lp: &'a Value, name: &str) -> &'a Value {
    lp["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

#[test]
fn asyncio_basics_serves_three_orders_in_the_time_of_the_longest_on_one_thread() {
    let report = report("asyncio_basics.rhai");
    let run = runs(&report)[0];
    assert_eq!(run["stats"]["makespan"], us(3_002_003.0));
    let lp = event_loop(run, "waiter");
    assert_eq!(lp["stats"]["iterations"], 4);
    assert_eq!(lp["stats"]["switches"], 6);
    assert_eq!(lp["stats"]["switching"], us(9.0));
    assert_eq!(lp["stats"]["longest_ready_wait"], us(2003.0));
    let waiter = thread(run, "waiter");
    assert_eq!(waiter["cpu"], us(6009.0));
    assert_eq!(waiter["blocked"]["Epoll"], us(2_995_994.0));
    assert_eq!(task(lp, "shake")["ready"], us(2003.0));
    // One thread: the tasks are not threads.
    let threads = run["stats"]["threads"].as_array().unwrap();
    assert_eq!(threads.iter().filter(|t| t["task"] == false).count(), 1);
    assert_eq!(prints(&report), ["one thread, three tasks: 3.002003s"]);
}

#[test]
fn asyncio_blocking_call_freezes_the_heartbeat_and_run_in_executor_does_not() {
    let report = report("asyncio_blocking_call.rhai");
    let runs = runs(&report);
    let (frozen, fixed) = (runs[0], runs[1]);
    assert_eq!(frozen["stats"]["makespan"], us(395_004.5));
    let lp = event_loop(frozen, "loop");
    let blockers = lp["blockers"].as_array().unwrap();
    assert_eq!(blockers.len(), 1);
    assert_eq!(blockers[0]["task"], "handler");
    assert_eq!(blockers[0]["held"], ms(200.0));
    // The line of the plain sleep in the handler.
    let source = std::fs::read_to_string(
        simcli_tests::workspace().join("scripts/asyncio_blocking_call.rhai"),
    )
    .unwrap();
    let line = source
        .lines()
        .position(|l| l.contains("sleep(ms(200)); // blocking"))
        .unwrap()
        + 1;
    assert!(
        blockers[0]["origin"]
            .as_str()
            .unwrap()
            .ends_with(&format!("asyncio_blocking_call.rhai:{line}:5")),
        "{}",
        blockers[0]
    );
    assert_eq!(task(lp, "heartbeat")["ready"], us(195_001.5));
    assert_eq!(thread(frozen, "loop")["blocked"]["Sleep"], ms(200.0));

    assert_eq!(fixed["stats"]["makespan"], us(205_004.5));
    let lp = event_loop(fixed, "loop");
    assert!(lp["blockers"].as_array().unwrap().is_empty());
    assert_eq!(task(lp, "heartbeat")["end"], us(200_003.0));
    assert_eq!(task(lp, "handler")["end"], us(205_004.5));
    assert_eq!(
        thread(fixed, "loop-executor-0")["blocked"]["Sleep"],
        ms(200.0)
    );
    let late = runs[2];
    assert_eq!(late["stats"]["makespan"], us(265_001.5));
    assert_eq!(thread(late, "loop")["blocked"]["Gil"], ms(65.0));
    assert_eq!(
        task(event_loop(late, "loop"), "heartbeat")["ready"],
        ms(65.0)
    );
    assert_eq!(
        prints(&report),
        [
            "heartbeat done at 395.0045ms with a blocking call, 200.003ms with run_in_executor",
            "heartbeat done at 265.0015ms beside a cpu-bound thread",
        ]
    );
}

#[test]
fn asyncio_vs_threads_compares_time_switching_and_memory() {
    let report = report("asyncio_vs_threads.rhai");
    let runs = runs(&report);
    let makespans = simcli_tests::makespans(&report);
    assert_eq!(makespans, [us(615_001.5), us(844_930.0), us(10_010_350.0)]);
    assert_eq!(event_loop(runs[0], "loop")["stats"]["tasks"], 10_000);
    assert_eq!(
        prints(&report),
        [
            "asyncio: makespan 615.0015ms, switching 30ms, peak memory 26.7MiB",
            "10,000 threads: makespan 844.93ms, switching 40.148ms, peak memory 64.1MiB",
            "pool of 100: makespan 10.01035s, switching 20.202ms, peak memory 14.8MiB",
        ]
    );
}

#[test]
fn asyncio_race_holds_by_default_and_explore_finds_the_oversold_ticket() {
    let report = report("asyncio_race.rhai");
    let run = runs(&report)[0];
    assert_eq!(run["expectations"][0]["held"], true);

    let out = scratch("asyncio-race-explore");
    let output = run_simcli(&[
        "explore",
        "scripts/asyncio_race.rhai",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("expectation 'the last ticket is sold once' failed"),
        "{text}"
    );
    let schedule = out.join("asyncio_race-failure-1.ron");
    let replay = run_simcli(&[
        "run",
        "scripts/asyncio_race.rhai",
        "--schedule",
        schedule.to_str().unwrap(),
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(replay.status.code(), Some(1));
    let replayed: Value = serde_json::from_slice(&replay.stdout).unwrap();
    let run = runs(&replayed)[0];
    assert_eq!(run["expectations"][0]["held"], false);
    let sold = run["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "sold")
        .unwrap();
    assert_eq!(sold["value"], 2);
}

/// A script that must fail, and what its error says.
fn fails_with(name: &str, source: &str, message: &str, at: &str) {
    let out = scratch(&format!("asyncio-error-{name}"));
    let script = out.join(format!("{name}.rhai"));
    std::fs::write(&script, source).unwrap();
    let output = run_simcli(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + String::from_utf8_lossy(&output.stdout).as_ref();
    assert_eq!(output.status.code(), Some(1), "{name}: {text}");
    assert!(text.contains(message), "{name}: {text}");
    assert!(text.contains(at), "{name}: {text}");
}

#[test]
fn misused_awaits_and_failing_tasks_name_the_line() {
    fails_with(
        "await_in_thread",
        "let m = machine();\nm.add_thread(\"t\", || {\n    await_sleep(ms(1));\n});\nm.run();\n",
        "await_sleep() awaits, so it belongs in a task",
        ":3:",
    );
    fails_with(
        "unawaited_failure",
        "let m = machine();\nlet lp = m.add_event_loop(\"loop\");\nlp.add_task(\"t\", || {\n    await_sleep(ms(1));\n    throw \"boom\";\n});\nm.run();\n",
        "task 't' failed",
        "5",
    );
}

#[test]
fn a_failure_awaited_in_a_task_can_be_caught() {
    let out = scratch("asyncio-catch");
    let script = out.join("catch.rhai");
    std::fs::write(
        &script,
        "let m = machine();\nlet lp = m.add_event_loop(\"loop\");\nlp.add_task(\"main\", || {\n    let bad = start_task(\"bad\", || { await_sleep(ms(1)); throw \"boom\"; });\n    let good = start_task(\"good\", || 2);\n    try { gather([good, bad]); } catch (e) { print(`caught: ${e}`); }\n});\nm.run();\n",
    )
    .unwrap();
    let output = run_simcli(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("caught: "), "{text}");
    assert!(text.contains("task 'bad' failed"), "{text}");
}
