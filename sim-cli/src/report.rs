//! The report `simcli run` prints: per run, the machine, how it ended, the
//! statistics table and the log; or the same as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};
use sim_core::analysis::{deadlock, race};
use sim_core::kernel::{Outcome, Waiting};
use sim_core::model::footprint::format_size;
use sim_core::script::{ScriptError, ScriptRun};
use sim_core::{Machine, SchedulerKind};

/// One line describing the machine.
pub fn describe_machine(machine: &Machine) -> String {
    let cpus = if machine.cpus == 1 {
        "1 cpu".to_string()
    } else {
        format!("{} cpus", machine.cpus)
    };
    let policy = match machine.scheduler {
        SchedulerKind::RoundRobin | SchedulerKind::Priority => {
            format!("{} (quantum {})", machine.scheduler.name(), machine.quantum)
        }
        SchedulerKind::Fair => format!(
            "fair (latency {}, granularity {})",
            machine.fair_latency(),
            machine.fair_granularity()
        ),
        SchedulerKind::Fifo => "fifo".to_string(),
    };
    format!(
        "{cpus}, {policy}, context switch {}, process switch {}, thread spawn {}",
        machine.context_switch, machine.process_switch, machine.thread_spawn
    )
}

/// How a run ended, in words.
pub fn describe_outcome(run: &ScriptRun) -> String {
    match &run.outcome {
        Outcome::Completed => "completed: every thread finished".to_string(),
        Outcome::Stalled(waiting) => {
            let list: Vec<String> = waiting.iter().map(|w| wait_line(run, w)).collect();
            format!(
                "stalled: unfinished threads and nothing left to wake them: {}",
                list.join(", ")
            )
        }
        Outcome::Deadlocked(waiting) => {
            let mut text = String::from("DEADLOCK");
            if let Some(deadlock) = &run.trace.deadlock {
                let _ = write!(
                    text,
                    " at {}: a cycle of threads each waiting for the next",
                    deadlock.time
                );
                for line in deadlock::explain(deadlock, &run.trace) {
                    let _ = write!(text, "\n  {line}");
                }
            }
            let others: Vec<String> = waiting
                .iter()
                .filter(|w| {
                    run.trace
                        .deadlock
                        .as_ref()
                        .is_none_or(|d| d.cycle.iter().all(|s| s.thread != w.thread))
                })
                .map(|w| wait_line(run, w))
                .collect();
            if !others.is_empty() {
                let _ = write!(text, "\n  also stuck: {}", others.join(", "));
            }
            text
        }
        Outcome::Failed(error) => format!("failed: {error}"),
    }
}

/// "name (what it waits for)".
fn wait_line(run: &ScriptRun, waiting: &Waiting) -> String {
    use sim_core::{BlockReason, ThreadState};
    // Locks have owners; a semaphore's permits do not (any thread may
    // release one), so a stall on a semaphore names nobody.
    let mut held = match waiting.state {
        ThreadState::Blocked(BlockReason::Lock(r) | BlockReason::RwLock(r))
        | ThreadState::Spin(r) => deadlock::holders(&run.trace, r),
        _ => Vec::new(),
    };
    held.retain(|&h| h != waiting.thread);
    // Who holds what it waits for, and whether they are gone: a thread
    // that ended still holding a lock leaves its waiters stuck for good.
    let holders: Vec<String> = held
        .iter()
        .map(|&h| {
            let name = &run.trace.threads[h.index()].name;
            // By index: two threads may share a name.
            match run.stats.threads.get(h.index()).and_then(|t| t.end) {
                Some(end) => format!("{name}, which ended at {end} holding it"),
                None => name.clone(),
            }
        })
        .collect();
    let by = if holders.is_empty() {
        String::new()
    } else {
        format!(", held by {}", holders.join(" and "))
    };
    format!(
        "{} ({}{by})",
        run.trace.threads[waiting.thread.index()].name,
        deadlock::describe_state(&run.trace, waiting.state)
    )
}

/// The full text report of one run.
pub fn text(run: &ScriptRun, chart: Option<&Path>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {} ==", run.label);
    let _ = writeln!(out, "machine: {}", describe_machine(&run.trace.machine));
    let _ = writeln!(out, "outcome: {}", describe_outcome(run));
    for race in &run.trace.races {
        let _ = writeln!(out, "{}", race::explain(race, &run.trace));
    }
    let _ = write!(out, "{}", run.stats);
    let _ = write!(out, "{}", run.loops);
    let _ = write!(out, "{}", run.pools);
    if !run.locks.resources.is_empty() {
        let _ = write!(out, "{}", run.locks);
    }
    let _ = write!(out, "{}", run.io);
    let _ = write!(out, "{}", run.gil);
    let _ = writeln!(out, "{}", memory_line(&run.trace));
    let _ = write!(out, "{}", run.starvation);
    for expectation in run.expectations() {
        let verdict = match (&expectation.error, expectation.held) {
            (Some(error), _) => format!("FAILED: {}", error.lines().next().unwrap_or_default()),
            (None, true) => "held".to_string(),
            (None, false) => "FAILED".to_string(),
        };
        let _ = writeln!(out, "expectation '{}': {verdict}", expectation.name);
        // The rest of the error: where in the script, and what to do.
        for line in expectation.error.iter().flat_map(|e| e.lines().skip(1)) {
            let _ = writeln!(out, "{line}");
        }
    }
    match (run.outcome_failure(), run.expected_outcome) {
        (Some(failure), _) => {
            let _ = writeln!(out, "FAILED: {failure}");
        }
        (None, Some(expected)) => {
            let _ = writeln!(out, "expected outcome '{}': as declared", expected.name());
        }
        (None, None) => {}
    }
    if !run.trace.logs.is_empty() {
        let _ = writeln!(out, "log:");
        for line in &run.trace.logs {
            let _ = writeln!(
                out,
                "  [{} {}] {}",
                line.time,
                run.trace.threads[line.thread.index()].name,
                line.text
            );
        }
    }
    if let Some(chart) = chart {
        let _ = writeln!(out, "chart: {}", chart.display());
    }
    out
}

/// "memory: peak 27.1MiB of 16GiB (python 13.2MiB, worker0 13.2MiB)".
fn memory_line(trace: &sim_core::Trace) -> String {
    let peaks: Vec<String> = trace
        .processes
        .iter()
        .zip(&trace.process_peaks)
        .filter(|(_, &peak)| peak > 0)
        .map(|(p, &peak)| format!("{} {}", p.name, format_size(peak)))
        .collect();
    format!(
        "memory: peak {} of {} ({})",
        format_size(trace.peak_memory),
        format_size(trace.machine.memory),
        peaks.join(", ")
    )
}

/// One line for `--quiet`.
pub fn line(run: &ScriptRun) -> String {
    let outcome = match &run.outcome {
        Outcome::Completed => "completed",
        Outcome::Stalled(_) => "stalled",
        Outcome::Deadlocked(_) => "deadlocked",
        Outcome::Failed(_) => "failed",
    };
    let failed = run.expectations().iter().filter(|e| !e.held).count();
    let expectations = if failed > 0 {
        format!(", {failed} expectation(s) FAILED")
    } else {
        String::new()
    };
    let tasks = run.stats.threads.iter().filter(|t| t.task).count();
    let threads = run.stats.threads.len() - tasks;
    let tasks = if tasks > 0 {
        format!(", {tasks} tasks")
    } else {
        String::new()
    };
    format!(
        "{}: {outcome}, makespan {}, {threads} threads{tasks}{expectations}",
        run.label, run.stats.makespan,
    )
}

/// One run as JSON (durations in nanoseconds).
pub fn json_run(run: &ScriptRun, chart: Option<&Path>) -> Value {
    let (outcome, detail) = match &run.outcome {
        Outcome::Completed => ("completed", Value::Null),
        Outcome::Stalled(waiting) | Outcome::Deadlocked(waiting) => (
            if matches!(run.outcome, Outcome::Stalled(_)) {
                "stalled"
            } else {
                "deadlocked"
            },
            Value::Array(
                waiting
                    .iter()
                    .map(|w| {
                        json!({
                            "thread": run.trace.threads[w.thread.index()].name,
                            "state": w.state.name(),
                            "waits_for": deadlock::describe_state(&run.trace, w.state),
                        })
                    })
                    .collect(),
            ),
        ),
        Outcome::Failed(error) => ("failed", Value::String(error.to_string())),
    };
    let logs: Vec<Value> = run
        .trace
        .logs
        .iter()
        .map(|l| {
            json!({
                "time": l.time.as_nanos(),
                "thread": run.trace.threads[l.thread.index()].name,
                "text": l.text,
            })
        })
        .collect();
    json!({
        "label": run.label,
        "machine": run.trace.machine,
        "outcome": outcome,
        "detail": detail,
        "stats": run.stats,
        "locks": run.locks,
        "processes": run.stats.processes(),
        "memory": json!({
            "peak": run.trace.peak_memory,
            "limit": run.trace.machine.memory,
            "processes": run.trace.processes.iter().zip(&run.trace.process_peaks)
                .map(|(p, &peak)| json!({ "name": p.name, "peak": peak }))
                .collect::<Vec<_>>(),
        }),
        "devices": run.io.devices,
        "gil": run.gil.processes,
        "event_loops": run.loops.loops,
        "pools": run.pools.pools,
        "expectations": run.expectations(),
        "expected_outcome": run.expected_outcome,
        "outcome_failure": run.outcome_failure(),
        "races": run.trace.races.iter().map(|r| race::explain(r, &run.trace)).collect::<Vec<_>>(),
        "variables": run.trace.variables.iter().map(|v| json!({"name": v.name, "value": v.value})).collect::<Vec<_>>(),
        "starvation": run.starvation,
        "log": logs,
        "deadlock": run.trace.deadlock.as_ref().map(|d| json!({
            "time": d.time.as_nanos(),
            "cycle": deadlock::explain(d, &run.trace),
        })),
        "chart": chart.map(|c| c.display().to_string()),
        "sweep": run.sweep,
    })
}

/// A script error as JSON.
pub fn json_error(error: &ScriptError) -> Value {
    json!({
        "script": error.script,
        "stage": format!("{:?}", error.stage).to_lowercase(),
        "message": error.message,
        "line": error.position.map(|p| p.0),
        "column": error.position.map(|p| p.1),
        "hint": error.hint,
    })
}
