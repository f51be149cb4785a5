//! The synchronization scripts: deadlocks explained, inversion timings,
//! starvation flagged, lock statistics, stalls.

use serde_json::Value;
use simcli_tests::{ms, prints, run_json, run_simcli, runs, scratch, thread};

fn report(script: &str) -> Value {
    let stem = script.trim_end_matches(".rhai");
    let (code, report) = run_json(
        &format!("scripts/{script}"),
        &scratch(&format!("sync-{stem}")),
    );
    assert_eq!(code, Some(0), "{script}: {report}");
    report
}

fn end(run: &Value, name: &str) -> u64 {
    thread(run, name)["end"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} did not end"))
}

fn lock<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["locks"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no resource {name}"))
}

fn starved(run: &Value) -> Vec<String> {
    run["starvation"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["starved"] == true)
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn deadlock_names_both_threads_their_locks_and_lines() {
    let out = scratch("deadlock-text");
    let output = run_simcli(&[
        "run",
        "scripts/deadlock.rhai",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("DEADLOCK at 1ms"), "{text}");
    assert!(
        text.contains(
            "transfer waits for mutex 'audit', held by report (scripts/deadlock.rhai:22:"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "report waits for mutex 'accounts', held by transfer (scripts/deadlock.rhai:31:"
        ),
        "{text}"
    );
    simcli_tests::decode_png(&out.join("deadlock.png"));
    let run = &runs(&report("deadlock.rhai"))[0].clone();
    assert_eq!(run["outcome"], "deadlocked");
    assert_eq!(run["deadlock"]["time"], ms(1.0));
}

#[test]
fn naive_philosophers_deadlock_around_the_table_and_ordered_ones_eat() {
    let report = report("philosophers.rhai");
    let runs = runs(&report);
    assert_eq!(runs[0]["outcome"], "deadlocked");
    assert_eq!(runs[0]["deadlock"]["cycle"].as_array().unwrap().len(), 5);
    assert_eq!(runs[1]["outcome"], "completed");
    assert_eq!(runs[1]["stats"]["makespan"], ms(25.0));
}

#[test]
fn inheritance_lets_high_finish_twenty_milliseconds_sooner() {
    let report = report("priority_inversion.rhai");
    let runs = runs(&report);
    assert_eq!(end(runs[0], "high"), ms(31.0));
    assert_eq!(end(runs[0], "medium"), ms(22.0));
    assert_eq!(end(runs[1], "high"), ms(11.0));
    assert_eq!(end(runs[1], "medium"), ms(31.0));
    assert_eq!(
        prints(&report),
        ["high ends at 31ms without inheritance, at 11ms with it"]
    );
}

#[test]
fn starvation_flags_the_meek_thread_and_the_loser_of_a_barging_mutex() {
    let report = report("starvation.rhai");
    let runs = runs(&report);
    assert_eq!(starved(runs[0]), ["meek"]);
    assert_eq!(thread(runs[0], "meek")["ready"], ms(2000.0));
    assert!(runs[0]["starvation"]["fairness"].as_f64().unwrap() < 0.6);
    assert_eq!(starved(runs[1]), ["polite"]);
    assert_eq!(end(runs[1], "polite"), ms(1501.0));
    assert!(starved(runs[2]).is_empty());
    assert_eq!(end(runs[2], "polite"), ms(31.0));
    assert_eq!(thread(runs[1], "polite")["blocked"]["Lock"], ms(1480.0));
}

#[test]
fn reader_preference_holds_the_writer_back() {
    let runs_report = report("readers_writers.rhai");
    let runs = runs(&runs_report);
    assert_eq!(end(runs[0], "writer"), ms(24.0));
    assert_eq!(lock(runs[0], "table")["max_wait"], ms(22.0));
    assert_eq!(end(runs[1], "writer"), ms(5.0));
    assert_eq!(runs[1]["stats"]["makespan"], ms(25.0));
}

#[test]
fn both_bounded_buffers_deliver_every_item_in_order() {
    let report = report("producer_consumer.rhai");
    let runs = runs(&report);
    for run in &runs {
        assert_eq!(run["stats"]["makespan"], ms(13.0), "{}", run["label"]);
    }
    let logs: Vec<&str> = runs
        .iter()
        .map(|r| r["log"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        logs,
        [
            "channel: consumer got [0, 1, 2, 3, 4, 5]",
            "condvar: consumer got [0, 1, 2, 3, 4, 5]"
        ]
    );
    assert!(runs
        .iter()
        .all(|r| r["races"].as_array().unwrap().is_empty()));
    assert_eq!(lock(runs[0], "buffer")["receives"], 6);
}

#[test]
fn a_lost_wakeup_stalls_the_waiter() {
    let report = report("lost_wakeup.rhai");
    let run = runs(&report)[0];
    assert_eq!(run["outcome"], "stalled");
    assert_eq!(run["detail"][0]["thread"], "waiter");
    assert_eq!(run["detail"][0]["waits_for"], "condvar 'ready'");
    assert_eq!(lock(run, "ready")["lost_notifies"], 1);
}

#[test]
fn the_nightclub_admits_three_at_a_time_in_arrival_order() {
    let report = report("nightclub.rhai");
    let run = runs(&report)[0];
    assert_eq!(run["stats"]["makespan"], ms(16.0));
    let club = lock(run, "club");
    assert_eq!(club["acquisitions"], 8);
    assert_eq!(club["contended"], 5);
    assert_eq!(club["max_wait"], ms(4.0));
    assert_eq!(end(run, "guest6"), ms(15.0));
}

#[test]
fn a_deadlock_fails_the_run_unless_the_script_declares_it() {
    let dir = scratch("sync-expect-outcome");
    let deadlock =
        std::fs::read_to_string(simcli_tests::workspace().join("scripts/deadlock.rhai")).unwrap();
    let cases = [
        (
            "undeclared",
            deadlock.replace("m.expect_outcome(\"deadlock\");", ""),
            1,
            "ended in a deadlock; if that is the point, declare it with m.expect_outcome(\"deadlock\")",
        ),
        ("declared", deadlock.clone(), 0, "expected outcome 'deadlock': as declared"),
        (
            "unmet",
            "let m = machine();\nm.expect_outcome(\"stall\");\nm.add_thread(\"t\", || compute(ms(1)));\n"
                .to_string(),
            1,
            "was declared to end in a stall (m.expect_outcome), but it completed",
        ),
        (
            "unknown",
            "let m = machine();\nm.expect_outcome(\"explosion\");\n".to_string(),
            1,
            "no outcome named \"explosion\" to expect",
        ),
    ];
    for (name, source, code, message) in cases {
        let path = dir.join(format!("{name}.rhai"));
        std::fs::write(&path, source).unwrap();
        let output = run_simcli(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(code), "{name}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains(message), "{name}: {text}");
    }
}
