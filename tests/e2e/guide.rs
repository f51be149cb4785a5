//! The guide (`docs/guide.md`): the numbers its two scripts of its own
//! promise (`preemptive_vs_cooperative.rhai`, `switch_cost.rhai`), and the
//! charts it shows, which must be the ones their scripts draw today.

use serde_json::Value;
use simcli_tests::{ms, prints, run_json, runs, scratch, thread, workspace};

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

/// The guide's text.
fn guide() -> String {
    std::fs::read_to_string(workspace().join("docs/guide.md")).expect("docs/guide.md reads")
}

/// Every `scripts/NAME.rhai` the guide names, in order, once each.
fn guide_scripts() -> Vec<String> {
    let text = guide();
    let mut scripts: Vec<String> = Vec::new();
    for (start, _) in text.match_indices("scripts/") {
        let rest = &text[start..];
        let Some(end) = rest.find(".rhai") else {
            continue;
        };
        let name = &rest[..end + ".rhai".len()];
        let plain = name["scripts/".len()..name.len() - ".rhai".len()]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if plain && !scripts.iter().any(|s| s == name) {
            scripts.push(name.to_string());
        }
    }
    scripts
}

/// The charts the guide shows, `../plots/NAME.png`, as `NAME.png`.
fn guide_charts() -> Vec<String> {
    let text = guide();
    text.match_indices("](../plots/")
        .filter_map(|(start, marker)| {
            let rest = &text[start + marker.len()..];
            rest.find(')').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// A Gantt chart of the script `stem`: `stem.png` or `stem-N.png`.
fn is_gantt_of(file: &str, stem: &str) -> bool {
    let Some(rest) = file.strip_prefix(stem).and_then(|r| r.strip_suffix(".png")) else {
        return false;
    };
    rest.is_empty()
        || rest
            .strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Scripts whose committed charts the staleness test does not redraw:
/// `which_model.rhai`'s heatmaps come from its full sweep, which takes
/// minutes in a debug build (its quick sweep, `--set quick=true`, draws
/// other heatmaps, and runs in `every_script_runs_and_draws_a_chart_that_decodes`).
const NOT_REDRAWN: [&str; 1] = ["scripts/which_model.rhai"];

/// The guide names real scripts and shows real charts, each drawn by a
/// script it names, and the README's gallery links to its sections.
#[test]
fn the_guide_names_scripts_and_charts_that_exist_and_the_gallery_links_to_it() {
    let scripts = guide_scripts();
    assert!(scripts.len() >= 15, "{scripts:?}");
    for script in &scripts {
        assert!(
            workspace().join(script).exists(),
            "guide: {script} does not exist"
        );
    }
    let charts = guide_charts();
    assert!(charts.len() >= 15, "{charts:?}");
    for chart in &charts {
        assert!(
            workspace().join("plots").join(chart).exists(),
            "guide: plots/{chart} does not exist"
        );
        let stem = chart.trim_end_matches(".png");
        assert!(
            scripts.iter().any(|s| {
                let name = &s["scripts/".len()..s.len() - ".rhai".len()];
                stem.starts_with(name)
            }),
            "guide: plots/{chart} is drawn by no script the guide names"
        );
    }
    // The headings' anchors, as GitHub makes them.
    let anchors: Vec<String> = guide()
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|title| {
            title
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let links: Vec<&str> = readme
        .match_indices("docs/guide.md#")
        .map(|(start, marker)| {
            let rest = &readme[start + marker.len()..];
            &rest[..rest.find(['"', ')']).expect("a closed link")]
        })
        .collect();
    assert!(links.len() >= 15, "the README's gallery: {links:?}");
    for link in links {
        assert!(
            anchors.iter().any(|a| a == link),
            "README.md links to docs/guide.md#{link}, which is no heading of the guide: {anchors:?}"
        );
    }
    for (start, _) in readme.match_indices("src=\"plots/") {
        let rest = &readme[start + "src=\"".len()..];
        let path = &rest[..rest.find('"').unwrap()];
        assert!(
            workspace().join(path).exists(),
            "README.md: {path} does not exist"
        );
    }
}

/// Every script the guide names, run again into a scratch folder, draws
/// byte for byte the charts committed in `plots/` (charts are identical
/// from run to run by design), and `plots/` holds no Gantt chart of it
/// that it no longer draws. All but [`NOT_REDRAWN`]. When this fails,
/// `docs/regenerate SCRIPT` redraws the script's charts; commit them.
#[test]
fn every_chart_of_the_guide_is_what_its_script_draws_today() {
    let plots = workspace().join("plots");
    let committed: Vec<String> = std::fs::read_dir(&plots)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut stale = Vec::new();
    for script in guide_scripts() {
        if NOT_REDRAWN.contains(&script.as_str()) {
            continue;
        }
        let stem = &script["scripts/".len()..script.len() - ".rhai".len()];
        let out = scratch(&format!("guide-charts-{stem}"));
        let (code, report) = run_json(&script, &out);
        assert!(report["error"].is_null(), "{script}: {report}");
        assert!(matches!(code, Some(0 | 1)), "{script}: {report}");
        let mut drawn: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".png"))
            .collect();
        drawn.sort();
        assert!(!drawn.is_empty(), "{script} drew no chart");
        for name in &drawn {
            let fresh = std::fs::read(out.join(name)).unwrap();
            match std::fs::read(plots.join(name)) {
                Ok(old) if old == fresh => {}
                Ok(_) => stale.push(format!("plots/{name} differs from what {script} draws")),
                Err(_) => stale.push(format!("plots/{name} is missing ({script} draws it)")),
            }
        }
        for name in committed.iter().filter(|n| is_gantt_of(n, stem)) {
            if !drawn.contains(name) {
                stale.push(format!("plots/{name} is no longer drawn by {script}"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "charts out of date with their scripts (run docs/regenerate SCRIPT and commit plots/):\n{}",
        stale.join("\n")
    );
}
