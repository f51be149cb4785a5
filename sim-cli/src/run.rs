//! `simcli run`: evaluate a script, print the report of every run in order,
//! write charts and the trace.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};
use sim_core::export::{self, Mark, PerfettoOptions};
use sim_core::plot::{gantt, ChartFormat, GanttOptions, Marker, MarkerKind};
use sim_core::script::{Output, RunOptions, Script, ScriptRun};
use sim_core::SimError;

use crate::args::RunArgs;
use crate::report;
use crate::{EXIT_FAILURE, EXIT_USAGE};

/// Runs `simcli run`.
pub fn run(args: &RunArgs) -> ExitCode {
    let script = match crate::load_script(&args.script) {
        Ok(script) => script,
        Err(status) => return status,
    };
    crate::warn(&script, &args.set);
    let schedule = match args.schedule.as_deref().map(read_schedule).transpose() {
        Ok(schedule) => schedule,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let started = Instant::now();
    let outcome = script.run(&RunOptions {
        seed: args.seed,
        out_dir: args.out.clone(),
        jitter: args.jitter,
        schedule,
        timeout: args.timeout.map(std::time::Duration::from_secs),
        charts: !args.no_chart,
        constants: args.set.clone(),
        stackful: args.stackful,
    });
    let mut failed = outcome.error.is_some()
        || outcome
            .runs
            .iter()
            .any(|r| r.expectation_failed() || r.outcome_failure().is_some());

    let drawing = Instant::now();
    let charts: Vec<Option<PathBuf>> = outcome
        .runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            if args.no_chart || run.sweep {
                return None;
            }
            let path = chart_path(args, outcome.runs.len(), i);
            match write_chart(run, &path, &script, args.svg) {
                Ok(()) => Some(path),
                Err(error) => {
                    eprintln!("error: {error:#}");
                    failed = true;
                    None
                }
            }
        })
        .collect();
    let drawn = (!args.no_chart).then(|| drawing.elapsed());

    let mut json_output = Vec::new();
    for item in &outcome.output {
        match item {
            Output::Print(text) if args.json => json_output.push(json!({ "print": text })),
            Output::Print(text) => println!("{text}"),
            Output::Chart(path) if args.json => json_output.push(json!({ "chart": path })),
            Output::Chart(_) if args.quiet => {}
            Output::Chart(path) => println!("chart: {path}"),
            Output::Run(i) => {
                let run = &outcome.runs[*i];
                let chart = charts[*i].as_deref();
                if args.json {
                    json_output.push(json!({ "run": report::json_run(run, chart) }));
                } else if args.quiet || run.sweep {
                    println!("{}", report::line(run));
                } else {
                    print!("{}", report::text(run, chart));
                }
            }
        }
    }
    if args.json {
        let document = json!({
            "script": script.name(),
            "output": Value::Array(json_output),
            "error": outcome.error.as_ref().map(report::json_error),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&document).expect("a report serializes")
        );
    }
    if let Some(path) = &args.save_schedule {
        let text = ron::to_string(&outcome.schedule()).expect("decisions serialize");
        if let Err(error) = sim_core::output::write(path, text.as_bytes()) {
            eprintln!("error: writing {}: {error}", path.display());
            failed = true;
        }
    }
    if let Some(path) = &args.trace {
        if let Err(error) = write_trace(outcome.runs.last().map(|r| &**r), path) {
            eprintln!("error: {error:#}");
            failed = true;
        }
    }
    if let Some(path) = &args.perfetto {
        if let Err(error) = write_perfetto(&outcome.runs, path) {
            eprintln!("error: {error:#}");
            failed = true;
        }
    }
    // Stdout and stderr may share a terminal: what was printed comes first.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if let Some(error) = &outcome.error {
        eprint!("{error}");
    }
    if args.timing {
        eprint!("{}", timing(&outcome.runs, drawn, started.elapsed()));
    }
    if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The `--timing` lines: the simulation alone (the kernel's runs, thread
/// bodies included), then the analyses of the traces, the charts and the
/// whole command.
fn timing(runs: &[std::rc::Rc<ScriptRun>], chart: Option<Duration>, all: Duration) -> String {
    let operations: u64 = runs.iter().map(|r| r.operations).sum();
    let changes: usize = runs.iter().map(|r| r.trace.states.len()).sum();
    let simulation: Duration = runs.iter().map(|r| r.timing.simulation).sum();
    let analyses: Duration = runs.iter().map(|r| r.timing.analyses).sum();
    let (threads, stackless) = runs.iter().fold((0, 0), |(t, s), r| {
        (t + r.script_threads.0, s + r.script_threads.1)
    });
    let seconds = simulation.as_secs_f64();
    let chart = chart.map_or("no chart".to_string(), |d| {
        format!("{:.3}s drawing the chart", d.as_secs_f64())
    });
    format!(
        "timing: {seconds:.3}s wall clock in the simulation, {operations} simulated operations, \
         {:.0} simulated operations/s, {changes} state changes\n\
         timing: {:.3}s in the analyses, {chart}, {:.3}s in all\n\
         timing: {stackless} of {threads} script threads ran without a stack\n",
        operations as f64 / seconds.max(1e-9),
        analyses.as_secs_f64(),
        all.as_secs_f64(),
    )
}

/// `DIR/<stem>.png`, or `DIR/<stem>-<n>.png` when the script ran several
/// machines. The stem is the script's for a plain run (the gallery's
/// names); a replay or a seeded run, which draws another schedule, gets a
/// name of its own so that it never overwrites a gallery chart:
/// `<schedule>-replay` (after the schedule file's name) or `<script>-seed<N>`.
fn chart_path(args: &RunArgs, runs: usize, index: usize) -> PathBuf {
    let stem_of = |path: &Path| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "chart".to_string())
    };
    let stem = match (&args.schedule, args.seed) {
        (Some(schedule), _) => format!("{}-replay", stem_of(schedule)),
        (None, Some(seed)) => format!("{}-seed{seed}", stem_of(&args.script)),
        (None, None) => stem_of(&args.script),
    };
    let extension = if args.svg { "svg" } else { "png" };
    args.out.join(numbered(&stem, runs, index, extension))
}

/// `<stem>.<extension>` for a script's only run, `<stem>-<n>.<extension>`
/// (from 1) for each of several.
fn numbered(stem: &str, runs: usize, index: usize, extension: &str) -> String {
    if runs == 1 {
        format!("{stem}.{extension}")
    } else {
        format!("{stem}-{}.{extension}", index + 1)
    }
}

/// Draws a run's chart, with its failure and race markers.
pub fn write_chart(run: &ScriptRun, path: &Path, script: &Script, svg: bool) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let name = Path::new(script.name())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = GanttOptions {
        title: format!("{name}: {}", run.label),
        format: if svg {
            ChartFormat::Svg
        } else {
            ChartFormat::Png
        },
        markers: failure_marker(run)
            .into_iter()
            .chain(race_markers(run))
            .collect(),
        ..GanttOptions::default()
    };
    gantt(&run.trace, path, &options).with_context(|| format!("drawing {}", path.display()))
}

/// The most races a chart marks.
const RACE_MARKERS: usize = 20;

/// Marks each data race at its second access, on both threads.
fn race_markers(run: &ScriptRun) -> impl Iterator<Item = Marker> + '_ {
    run.trace.races.iter().take(RACE_MARKERS).map(|race| {
        let name = run
            .trace
            .variables
            .get(race.variable.index())
            .map_or("?", |v| v.name.as_str());
        Marker {
            time: race.second.time,
            label: format!("race on '{name}'"),
            threads: vec![race.first.thread, race.second.thread],
            kind: MarkerKind::Race,
        }
    })
}

/// Marks where a failed run stopped, on the thread that failed.
fn failure_marker(run: &ScriptRun) -> Option<Marker> {
    let error = run.outcome_error()?;
    let time = error.time().unwrap_or(run.trace.end);
    let thread = match error {
        SimError::Panicked { thread, .. }
        | SimError::Failed { thread, .. }
        | SimError::Misuse { thread, .. }
        | SimError::Resources { thread, .. } => run.trace.thread_named(thread),
        _ => error.site().and_then(|s| run.trace.thread_named(&s.thread)),
    };
    let label = match error {
        SimError::TimeLimit { .. } => "max_time reached".to_string(),
        SimError::EventLimit { .. } => "max_events reached".to_string(),
        SimError::Livelock { .. } => "livelock: max_steps_at_instant reached".to_string(),
        SimError::MemoryLimit { .. } => "--max-memory reached".to_string(),
        SimError::Timeout { .. } => "--timeout reached".to_string(),
        _ => "failed".to_string(),
    };
    Some(Marker {
        time,
        label,
        threads: thread.into_iter().collect(),
        kind: MarkerKind::Failure,
    })
}

/// Reads a schedule file: the RON list of decisions `explore` writes.
pub fn read_schedule(path: &Path) -> anyhow::Result<Vec<sim_core::kernel::Decision>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the schedule {}", path.display()))?;
    ron::from_str(&text).with_context(|| format!("{} is not a schedule", path.display()))
}

fn write_trace(run: Option<&ScriptRun>, path: &Path) -> anyhow::Result<()> {
    let run = run.context("the script made no run, so there is no trace to write")?;
    let text = run.trace.to_ron().context("serializing the trace")?;
    sim_core::output::write(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes each run as Chrome trace JSON: `FILE.json` for a script's only
/// run, `FILE-<n>.json` for each of several.
fn write_perfetto(runs: &[std::rc::Rc<ScriptRun>], path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !runs.is_empty(),
        "the script made no run, so there is no trace to write"
    );
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".to_string());
    let extension = path
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "json".to_string());
    for (i, run) in runs.iter().enumerate() {
        let file = path.with_file_name(numbered(&stem, runs.len(), i, &extension));
        let options = PerfettoOptions { marks: marks(run) };
        let written = std::fs::File::create(&file).and_then(|f| {
            let mut out = std::io::BufWriter::new(f);
            export::write_perfetto(&run.trace, &options, &mut out)?;
            std::io::Write::flush(&mut out)
        });
        written.with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// What a run's Perfetto export marks beyond its trace: the error that
/// stopped it, an ending it did not declare, each failed expectation.
fn marks(run: &ScriptRun) -> Vec<Mark> {
    let end = run.trace.end;
    let mut marks: Vec<Mark> = failure_marker(run)
        .map(|marker| Mark {
            time: marker.time,
            name: run
                .outcome_error()
                .map_or(marker.label, |error| error.to_string()),
            thread: marker.threads.first().copied(),
        })
        .into_iter()
        .collect();
    marks.extend(run.outcome_failure().map(|name| Mark {
        time: end,
        name,
        thread: None,
    }));
    marks.extend(run.expectations().iter().filter(|e| !e.held).map(|e| Mark {
        time: end,
        name: format!("expectation '{}' failed", e.name),
        thread: None,
    }));
    marks
}
