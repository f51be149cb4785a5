//! `simcli run --perfetto FILE.json`: Chrome trace JSON for ui.perfetto.dev.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use simcli_tests::{run_simcli, scratch, workspace};

/// Runs `simcli run SCRIPT --perfetto` into a scratch folder and returns the
/// file's text.
fn export(script: &str, name: &str) -> String {
    let dir = scratch(name);
    let file = dir.join("trace.json");
    let output = run_simcli(&[
        "run",
        script,
        "--no-chart",
        "--quiet",
        "--perfetto",
        file.to_str().unwrap(),
    ]);
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Nanoseconds of a timestamp in microseconds.
fn nanos(v: &Value) -> u64 {
    (v.as_f64().expect("a number") * 1000.0).round() as u64
}

/// Checks the structure every export must have: it parses, slices have a
/// duration and nest on their track, async slices and flows pair up.
fn check_structure(text: &str) -> Vec<Value> {
    let document: Value = serde_json::from_str(text).expect("the export is JSON");
    let events = document["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .clone();
    let mut tracks: BTreeMap<(u64, u64), Vec<(u64, u64)>> = BTreeMap::new();
    let mut open: BTreeMap<(String, u64), Vec<String>> = BTreeMap::new();
    let mut flows: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for event in &events {
        let ph = event["ph"].as_str().expect("every event has a phase");
        assert!(event["pid"].is_u64(), "{event}");
        match ph {
            "X" => {
                assert!(event["dur"].is_number(), "a slice without dur: {event}");
                let track = (
                    event["pid"].as_u64().unwrap(),
                    event["tid"].as_u64().unwrap(),
                );
                let start = nanos(&event["ts"]);
                tracks
                    .entry(track)
                    .or_default()
                    .push((start, start + nanos(&event["dur"])));
            }
            "b" | "e" => {
                let key = (
                    event["cat"].as_str().unwrap().to_string(),
                    event["id"].as_u64().unwrap(),
                );
                let name = event["name"].as_str().unwrap().to_string();
                let stack = open.entry(key).or_default();
                if ph == "b" {
                    stack.push(name);
                } else {
                    assert_eq!(stack.pop().as_ref(), Some(&name), "{event}");
                }
            }
            "s" => flows.entry(event["id"].as_u64().unwrap()).or_default().0 += 1,
            "f" => flows.entry(event["id"].as_u64().unwrap()).or_default().1 += 1,
            "M" | "C" | "i" => {}
            other => panic!("unexpected phase {other}"),
        }
    }
    for (track, mut slices) in tracks {
        slices.sort();
        // Nested or disjoint, never overlapping.
        let mut stack: Vec<(u64, u64)> = Vec::new();
        for (start, end) in slices {
            while stack.last().is_some_and(|&(_, e)| e <= start) {
                stack.pop();
            }
            if let Some(&(_, e)) = stack.last() {
                assert!(end <= e, "slices overlap on track {track:?}");
            }
            stack.push((start, end));
        }
    }
    assert!(open.values().all(Vec::is_empty), "unclosed async slices");
    assert!(
        flows.values().all(|&(s, f)| s == 1 && f == 1),
        "unpaired flows"
    );
    events
}

#[test]
fn the_export_of_a_small_scene_matches_its_golden_file() {
    let text = export("tests/fixtures/perfetto.rhai", "perfetto-golden");
    let events = check_structure(&text);
    let names = |ph: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["ph"] == ph)
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    for flow in ["hand-off", "wake-up", "join", "io done"] {
        assert!(names("s").iter().any(|n| n == flow), "no {flow} flow");
    }
    for instant in ["race on 'x'", "expectation 'x is 1' failed"] {
        assert!(names("i").iter().any(|n| n == instant), "no {instant}");
    }
    assert!(names("C").iter().any(|n| n == "ready threads"));
    assert!(
        names("b").iter().any(|n| n == "t1"),
        "the task's async slice"
    );
    assert!(
        names("X").iter().any(|n| n == "switch"),
        "switches on the CPUs"
    );
    assert!(
        names("X").iter().any(|n| n == "lock 'lock'"),
        "a blocked state"
    );
    assert!(names("X").iter().any(|n| n == "4096 B"), "a disk request");

    let golden = workspace().join("tests/golden/perfetto.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("tests/golden/perfetto.json: run with UPDATE_GOLDEN=1 to write it");
    assert!(
        text == expected,
        "the export differs from tests/golden/perfetto.json \
         (UPDATE_GOLDEN=1 rewrites it; check the diff)"
    );
    // The same run exports the same bytes.
    assert_eq!(
        text,
        export("tests/fixtures/perfetto.rhai", "perfetto-again")
    );
}

#[test]
fn a_deadlock_is_an_instant_and_every_run_gets_its_own_file() {
    let text = export("scripts/deadlock.rhai", "perfetto-deadlock");
    let events = check_structure(&text);
    assert!(events
        .iter()
        .any(|e| e["ph"] == "i" && e["name"] == "deadlock"));

    let dir = scratch("perfetto-runs");
    let file = dir.join("race.json");
    let output = run_simcli(&[
        "run",
        "scripts/race.rhai",
        "--no-chart",
        "--quiet",
        "--perfetto",
        file.to_str().unwrap(),
    ]);
    assert!(output.status.code().is_some());
    for n in 1..=3 {
        let path = dir.join(format!("race-{n}.json"));
        check_structure(&std::fs::read_to_string(&path).unwrap());
    }
    assert!(!Path::new(&file).exists());
}
