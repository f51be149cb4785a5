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
    // A thread first, then an asyncio task (task rows are rows of the
    // same table).
    let rows = &run.0.stats.threads;
    let stats = rows
        .iter()
        .find(|t| !t.task && t.name == name)
        .or_else(|| rows.iter().find(|t| t.task && t.name == name))
        .ok_or_else(|| {
            let names: Vec<&str> = rows.iter().map(|t| t.name.as_str()).collect();
            fault(
                format!("the run has no thread or task named \"{name}\""),
                Some(&format!("its threads and tasks are: {}", names.join(", "))),
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

/// One map per thread of the run (tasks left out): its name and process
/// and the figures of `r.stats(name)`, as `r.chart(...)` plots them.
fn thread_rows(
    call: &NativeCallContext,
    run: &RunHandle,
) -> Result<rhai::Array, Box<EvalAltResult>> {
    let mut rows = rhai::Array::new();
    for thread in run.0.stats.threads.iter().filter(|t| !t.task) {
        let mut row = thread_stats(call, run, &thread.name)?;
        row.insert("thread".into(), Dynamic::from(thread.name.clone()));
        row.insert("process".into(), Dynamic::from(thread.process.clone()));
        rows.push(Dynamic::from_map(row));
    }
    Ok(rows)
}

/// Where a chart the script names goes: scripts are untrusted, so into the
/// output folder, under a relative name without `..`. `call` is how the
/// script wrote the call, e.g. `r.gantt("name")`, for the error.
pub(crate) fn chart_path(
    call: &NativeCallContext,
    function: &str,
    name: &str,
) -> Result<(std::path::PathBuf, ChartFormat), Box<EvalAltResult>> {
    let relative = std::path::Path::new(name);
    let safe = !name.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !safe {
        return Err(fault(
            format!("{function}(\"{name}\"): the name must be a relative path without `..`"),
            Some(&format!("charts are written into the output folder (simcli run --out DIR); write {function}(\"name.png\")")),
            call.call_position(),
        ));
    }
    let (out_dir, charts) = super::session::with(|s| (s.options.out_dir.clone(), s.options.charts));
    let format = if name.ends_with(".svg") {
        ChartFormat::Svg
    } else {
        ChartFormat::Png
    };
    if !charts {
        // --no-chart: nothing is drawn, and nothing touches the disk.
        return Ok((out_dir.join(relative), format));
    }
    let path = crate::output::inside(&out_dir, relative).map_err(|e| {
        fault(
            format!("{function}(\"{name}\"): {e}"),
            Some("charts are written inside the output folder, never through a symlink"),
            call.call_position(),
        )
    })?;
    Ok((path, format))
}

/// Whether charts are drawn in this evaluation (not under `--no-chart`).
pub(crate) fn charts_on() -> bool {
    super::session::with(|s| s.options.charts)
}

/// Creates the folder of `path`, draws with `draw`, and records the chart
/// in the script's output; returns the path as text.
pub(crate) fn write_chart(
    call: &NativeCallContext,
    path: &std::path::Path,
    draw: impl FnOnce() -> Result<(), crate::plot::PlotError>,
) -> Result<String, Box<EvalAltResult>> {
    let text = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            fault(
                format!("cannot create {}: {e}", dir.display()),
                None,
                call.call_position(),
            )
        })?;
    }
    draw().map_err(|e| {
        fault(
            e.to_string(),
            Some("check that the output folder is writable"),
            call.call_position(),
        )
    })?;
    super::session::with(|s| s.output.push(super::Output::Chart(text.clone())));
    Ok(text)
}

/// `r.gantt(name)`.
fn draw(
    call: &NativeCallContext,
    run: &RunHandle,
    name: &str,
) -> Result<String, Box<EvalAltResult>> {
    let (path, format) = chart_path(call, "r.gantt", name)?;
    if !charts_on() {
        return Ok(path.display().to_string());
    }
    let script = super::session::with(|s| s.script.clone());
    let script = std::path::Path::new(&*script)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = GanttOptions {
        title: format!("{script}: {}", run.0.label),
        format,
        ..GanttOptions::default()
    };
    write_chart(call, &path, || gantt(&run.0.trace, &path, &options))
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
        "One thread's (or asyncio task's) #{ cpu, ready, blocked, sleep, join, switching, switches, dispatches, end }.",
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
        "peak_bytes",
        &["self: Run", "int"],
        "The most memory in use at once, in bytes (for arithmetic and charts).",
        |r: &mut RunHandle| r.0.trace.peak_memory.min(i64::MAX as u64) as INT,
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
        "Draws the run's Gantt chart into the output folder under `name` (PNG, or SVG for .svg) and returns its path; under --no-chart it draws nothing and returns the path.",
        |call: NativeCallContext, r: &mut RunHandle, path: &str| draw(&call, r, path),
    );
    def(
        engine,
        "chart",
        &["self: Run", "path: String", "options: Map", "String"],
        "`chart(path, rows, options)` over the run's threads: one row per thread, #{ thread, process, cpu, ready, blocked, sleep, join, switching, switches, dispatches, end }; e.g. r.chart(\"time.png\", #{ kind: \"bars\", x: \"thread\", y: [\"cpu\", \"ready\", \"blocked\"] }).",
        |call: NativeCallContext, r: &mut RunHandle, path: &str, options: Map| {
            let rows = thread_rows(&call, r)?;
            super::chart::draw(&call, path, rows, &options)
        },
    );
    def(
        engine,
        "to_string",
        &["self: Run", "String"],
        "A one-line description of the run.",
        |r: &mut RunHandle| format!("Run({}, makespan {})", r.0.label, r.0.stats.makespan),
    );
}
