//! What `m.run()` returns to a script: the run's makespan, per-thread and
//! per-CPU statistics, a printable summary.

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext, FLOAT, INT};

use super::api::{def, getter};
use super::error::fault;
use super::ScriptRun;
use crate::kernel::Outcome;
use crate::model::thread::BlockKind;
use crate::plot::{gantt, ChartFormat, GanttOptions};

/// A finished run, as scripts see it.
#[derive(Clone, Debug)]
pub(crate) struct RunHandle(Rc<ScriptRun>);

impl RunHandle {
    pub(crate) fn new(run: Rc<ScriptRun>) -> Self {
        RunHandle(run)
    }
}

fn thread_stats(
    call: &NativeCallContext,
    run: &RunHandle,
    name: &str,
) -> Result<Map, Box<EvalAltResult>> {
    let stats = run.0.stats.thread(name).ok_or_else(|| {
        let names: Vec<&str> = run
            .0
            .stats
            .threads
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        fault(
            format!("the run has no thread named \"{name}\""),
            Some(&format!("its threads are: {}", names.join(", "))),
            call.call_position(),
        )
    })?;
    let mut map = Map::new();
    map.insert("cpu".into(), Dynamic::from(stats.cpu));
    map.insert("ready".into(), Dynamic::from(stats.ready));
    map.insert("blocked".into(), Dynamic::from(stats.blocked_total()));
    map.insert(
        "sleep".into(),
        Dynamic::from(stats.blocked_on(BlockKind::Sleep)),
    );
    map.insert(
        "join".into(),
        Dynamic::from(stats.blocked_on(BlockKind::Join)),
    );
    map.insert("switching".into(), Dynamic::from(stats.switching));
    map.insert("switches".into(), Dynamic::from(stats.switches as INT));
    map.insert("dispatches".into(), Dynamic::from(stats.dispatches as INT));
    map.insert(
        "end".into(),
        stats
            .end
            .map_or(Dynamic::UNIT, |t| Dynamic::from(t.elapsed())),
    );
    Ok(map)
}

/// `r.gantt(name)`: scripts are untrusted, so a chart goes into the output
/// folder, under a relative name without `..`.
fn draw(
    call: &NativeCallContext,
    run: &RunHandle,
    name: &str,
) -> Result<String, Box<EvalAltResult>> {
    let relative = std::path::Path::new(name);
    let safe = !name.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !safe {
        return Err(fault(
            format!("r.gantt(\"{name}\"): the name must be a relative path without `..`"),
            Some("charts are written into the output folder (simcli run --out DIR); write r.gantt(\"name.png\")"),
            call.call_position(),
        ));
    }
    let (out_dir, script, charts) = super::session::with(|s| {
        (
            s.options.out_dir.clone(),
            s.script.clone(),
            s.options.charts,
        )
    });
    if !charts {
        // --no-chart: no chart at all, and nothing written.
        return Ok(String::new());
    }
    let format = if name.ends_with(".svg") {
        ChartFormat::Svg
    } else {
        ChartFormat::Png
    };
    let path = crate::output::inside(&out_dir, relative).map_err(|e| {
        fault(
            format!("r.gantt(\"{name}\"): {e}"),
            Some("charts are written inside the output folder, never through a symlink"),
            call.call_position(),
        )
    })?;
    let script = std::path::Path::new(&*script)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = GanttOptions {
        title: format!("{script}: {}", run.0.label),
        format,
        ..GanttOptions::default()
    };
    gantt(&run.0.trace, &path, &options).map_err(|e| {
        fault(
            e.to_string(),
            Some("check that the output folder is writable"),
            call.call_position(),
        )
    })?;
    Ok(path.display().to_string())
}

/// Registers the `Run` type.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<RunHandle>("Run");
    getter(
        engine,
        "makespan",
        &["self: Run", "Duration"],
        "When the last thread finished (or the run stopped).",
        |r: &mut RunHandle| r.0.stats.makespan.elapsed(),
    );
    getter(
        engine,
        "completed",
        &["self: Run", "bool"],
        "Whether every thread finished.",
        |r: &mut RunHandle| r.0.outcome == Outcome::Completed,
    );
    getter(
        engine,
        "label",
        &["self: Run", "String"],
        "The machine's name (its `name` key, or \"machine N\").",
        |r: &mut RunHandle| r.0.label.clone(),
    );
    def(
        engine,
        "stats",
        &["self: Run", "thread: String", "Map"],
        "One thread's #{ cpu, ready, blocked, sleep, join, switching, switches, dispatches, end }.",
        |call: NativeCallContext, r: &mut RunHandle, name: &str| thread_stats(&call, r, name),
    );
    def(
        engine,
        "utilisation",
        &["self: Run", "cpu: int", "float"],
        "How busy a CPU was (running or switching), from 0.0 to 1.0.",
        |call: NativeCallContext, r: &mut RunHandle, cpu: INT| {
            let cpus = &r.0.stats.cpus;
            usize::try_from(cpu)
                .ok()
                .and_then(|i| cpus.get(i))
                .map(|c| c.utilisation as FLOAT)
                .ok_or_else(|| {
                    fault(
                        format!(
                            "no cpu {cpu}; the machine has {} (0 to {})",
                            cpus.len(),
                            cpus.len().saturating_sub(1)
                        ),
                        None,
                        call.call_position(),
                    )
                })
        },
    );
    def(
        engine,
        "value",
        &["self: Run", "variable: String", "int"],
        "The final value of a shared variable.",
        |call: NativeCallContext, r: &mut RunHandle, name: &str| {
            let variables = &r.0.trace.variables;
            variables
                .iter()
                .find(|v| v.name == name)
                .map(|v| v.value as INT)
                .ok_or_else(|| {
                    let names: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
                    fault(
                        format!("the run has no variable named \"{name}\""),
                        Some(&format!("its variables are: {}", names.join(", "))),
                        call.call_position(),
                    )
                })
        },
    );
    getter(
        engine,
        "peak_memory",
        &["self: Run", "String"],
        "The most memory in use at once, e.g. \"26.7MiB\" (processes, threads and tasks, as CPython holds them).",
        |r: &mut RunHandle| crate::model::footprint::format_size(r.0.trace.peak_memory),
    );
    getter(
        engine,
        "switching",
        &["self: Run", "Duration"],
        "CPU time spent switching: the CPUs' context switches plus every event loop's task switches.",
        |r: &mut RunHandle| {
            let cpus: crate::time::Span = r.0.stats.cpus.iter().map(|c| c.switching).sum();
            let tasks: crate::time::Span =
                r.0.loops.loops.iter().map(|l| l.stats.switching).sum();
            cpus + tasks
        },
    );
    getter(
        engine,
        "deadlocked",
        &["self: Run", "bool"],
        "Whether the run ended in a deadlock.",
        |r: &mut RunHandle| matches!(r.0.outcome, Outcome::Deadlocked(_)),
    );
    def(
        engine,
        "summary",
        &["self: Run", "String"],
        "The report as text: makespan, one line per thread, one per CPU.",
        |r: &mut RunHandle| r.0.stats.to_string(),
    );
    def(
        engine,
        "gantt",
        &["self: Run", "name: String", "String"],
        "Draws the run's Gantt chart into the output folder under `name` (PNG, or SVG for .svg) and returns its path; under --no-chart draws nothing and returns \"\".",
        |call: NativeCallContext, r: &mut RunHandle, path: &str| draw(&call, r, path),
    );
    def(
        engine,
        "to_string",
        &["self: Run", "String"],
        "A one-line description of the run.",
        |r: &mut RunHandle| format!("Run({}, makespan {})", r.0.label, r.0.stats.makespan),
    );
}
