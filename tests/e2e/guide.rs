//! The guide (`docs/guide.md`): the numbers its two scripts of its own
//! promise (`preemptive_vs_cooperative.rhai`, `switch_cost.rhai`), and the
//! charts it shows, which must be the ones their scripts draw today.

use serde_json::Value;
use simcli_tests::{ms, prints, runs, thread};

fn report(script: &str) -> Value {
    simcli_tests::script_report(script, "guide")
}

fn us(n: f64) -> u64 {
    (n * 1e3).round() as u64
}

#[test]
fn preemption_answers_within_a_quantum_and_a_cooperative_hog_makes_jobs_wait() {
    let report = report("preemptive_vs_cooperative.rhai");
    let runs = runs(&report);
    let (preemptive, cooperative) = (runs[0], runs[1]);
    let arrivals = [5.0, 55.0, 105.0];
    // Round robin: a job waits at most for the hog's 10ms slice to end.
    for (job, (arrival, response)) in arrivals.iter().zip([6.008, 7.012, 8.016]).enumerate() {
        let t = thread(preemptive, &format!("job{}", job + 1));
        assert_eq!(t["end"], ms(arrival + response), "job{}", job + 1);
        assert!(response < 10.0 + 1.0);
    }
    assert_eq!(thread(preemptive, "hog")["end"], ms(203.018));
    // One event loop: a job waits for the hog's chunk and its next one.
    for (job, (arrival, response)) in arrivals.iter().zip([96.0075, 97.0105, 98.0135]).enumerate() {
        let t = thread(cooperative, &format!("job{}", job + 1));
        assert_eq!(t["task"], true);
        assert_eq!(t["end"], us((arrival + response) * 1e3), "job{}", job + 1);
    }
    assert_eq!(thread(cooperative, "hog")["end"], ms(203.015));
    assert_eq!(
        cooperative["event_loops"][0]["stats"]["longest_ready_wait"],
        ms(97.012)
    );
    assert_eq!(
        prints(&report),
        [
            "preemptive: threads, rr 10ms: responses 6.008ms, 7.012ms, 8.016ms; hog done at 203.018ms",
            "cooperative: asyncio tasks, one loop: responses 96.0075ms, 97.0105ms, 98.0135ms; hog done at 203.015ms",
        ]
    );
}

#[test]
fn ten_thousand_threads_switch_dearer_and_hold_six_times_the_memory_of_tasks() {
    let report = report("switch_cost.rhai");
    let runs = runs(&report);
    let (threads, tasks) = (runs[0], runs[1]);
    assert_eq!(threads["sweep"], true);
    assert_eq!(threads["stats"]["makespan"], us(319_998.0));
    assert_eq!(threads["stats"]["cpus"][0]["switching"], us(219_998.0));
    assert_eq!(tasks["stats"]["makespan"], ms(265.0));
    let lp = &tasks["event_loops"][0]["stats"];
    assert_eq!(lp["tasks"], 10_000);
    assert_eq!(lp["switches"], 110_000);
    assert_eq!(lp["switching"], ms(165.0));
    let peak = |run: &Value| run["memory"]["peak"].as_u64().unwrap();
    assert!(peak(threads) > 6 * peak(tasks));
    assert_eq!(
        prints(&report),
        [
            "10,000 threads: makespan 319.998ms, switching 219.998ms, peak memory 165.6MiB",
            "10,000 tasks: makespan 265ms, switching 165ms, peak memory 26.7MiB",
        ]
    );
    let charts: Vec<&str> = report["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["chart"].as_str())
        .collect();
    assert_eq!(charts.len(), 2);
    assert!(charts[0].ends_with("switch_cost-time.png"), "{charts:?}");
    assert!(charts[1].ends_with("switch_cost-memory.png"), "{charts:?}");
}
