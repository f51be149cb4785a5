//! The shared-memory scripts: races reported with both lines, expectations
//! checked, the exit status of a broken expectation, replay of a schedule.

use serde_json::Value;
use simcli_tests::{run_json, run_simcli, runs, scratch};

fn races(run: &Value) -> Vec<String> {
    run["races"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

fn held(run: &Value) -> Vec<bool> {
    run["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["held"].as_bool().unwrap())
        .collect()
}

#[test]
fn the_unprotected_counter_races_even_when_the_count_is_right() {
    let (code, report) = run_json("scripts/race.rhai", &scratch("race"));
    assert_eq!(code, Some(0), "{report}");
    let runs = runs(&report);
    let unprotected = races(runs[0]);
    assert_eq!(unprotected.len(), 2, "{unprotected:?}");
    assert!(unprotected
        .iter()
        .all(|r| r.starts_with("data race on 'counter'")));
    assert!(
        unprotected[0].contains("scripts/race.rhai:29:"),
        "{unprotected:?}"
    );
    assert!(
        unprotected[0].contains("scripts/race.rhai:28:"),
        "{unprotected:?}"
    );
    for run in &runs {
        assert_eq!(held(run), [true], "{}", run["label"]);
    }
    assert!(races(runs[1]).is_empty());
    assert!(races(runs[2]).is_empty());
}

#[test]
fn check_then_act_books_one_seat_twice_and_exits_1() {
    let (code, report) = run_json("scripts/check_then_act.rhai", &scratch("check-then-act"));
    assert_eq!(code, Some(1), "{report}");
    let runs = runs(&report);
    assert_eq!(held(runs[0]), [false]);
    assert!(!races(runs[0]).is_empty());
    assert_eq!(held(runs[1]), [true]);
    assert_eq!(held(runs[2]), [true]);
    assert!(races(runs[1]).is_empty() && races(runs[2]).is_empty());
    let booked = runs[0]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "booked")
        .unwrap()["value"]
        .clone();
    assert_eq!(booked, 2);
}

#[test]
fn the_audit_races_with_the_transfers() {
    let (code, report) = run_json("scripts/bank_transfer.rhai", &scratch("bank"));
    assert_eq!(code, Some(0), "{report}");
    let runs = runs(&report);
    assert!(races(runs[0]).is_empty());
    let audited = races(runs[1]);
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited[0].contains("'checking'") && audited[1].contains("'savings'"));
    assert!(audited.iter().all(|r| r.contains("auditor loaded")));
}

#[test]
fn a_saved_schedule_replays_to_the_identical_report_and_chart() {
    // Seed 11 loses an update on the unprotected counter.
    let first = scratch("replay-first");
    let second = scratch("replay-second");
    let schedule = first.join("schedule.ron");
    let seeded = run_simcli(&[
        "run",
        "scripts/race.rhai",
        "--seed",
        "11",
        "--json",
        "--out",
        first.to_str().unwrap(),
        "--save-schedule",
        schedule.to_str().unwrap(),
    ]);
    assert_eq!(
        seeded.status.code(),
        Some(1),
        "the seed breaks the expectation"
    );
    let replayed = run_simcli(&[
        "run",
        "scripts/race.rhai",
        "--schedule",
        schedule.to_str().unwrap(),
        "--json",
        "--out",
        second.to_str().unwrap(),
    ]);
    assert_eq!(replayed.status.code(), Some(1));
    // The charts have names of their own (a seeded run's, a replay's), so
    // that neither overwrites the gallery's race-<n>.png.
    let text = |out: &std::process::Output, dir: &std::path::Path, stem: &str| {
        String::from_utf8_lossy(&out.stdout)
            .replace(dir.to_str().unwrap(), "OUT")
            .replace(stem, "CHART")
    };
    assert_eq!(
        text(&seeded, &first, "race-seed11"),
        text(&replayed, &second, "schedule-replay")
    );
    for n in 1..=3 {
        let (a, b) = (
            first.join(format!("race-seed11-{n}.png")),
            second.join(format!("schedule-replay-{n}.png")),
        );
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{} and {} differ",
            a.display(),
            b.display()
        );
    }
}
