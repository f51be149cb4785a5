//! `simcli explore`: run a script under many schedules, report what failed,
//! shrink the first failure and print the command that replays it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sim_core::explore::{
    explore as search, preemptions, shrink_failure, ExploreOptions, Progress, ShrinkBudget, Shrunk,
    Strategy,
};
use sim_core::kernel::Decision;
use sim_core::script::{verdict, Judging, RunOptions, Script, ScriptScenario};

use crate::args::{ExploreArgs, StrategyArg};
use crate::run::write_chart;
use crate::{EXIT_FAILURE, EXIT_USAGE};

thread_local! {
    /// The script compiled once per worker thread (rayon may ask for a new
    /// scenario for every piece of work it splits off).
    static COMPILED: RefCell<Option<Rc<Script>>> = const { RefCell::new(None) };
}

fn run_options(args: &ExploreArgs, seed: u64, schedule: Option<Vec<Decision>>) -> RunOptions {
    RunOptions {
        seed: Some(seed),
        out_dir: args.out.clone(),
        jitter: args.jitter,
        schedule,
        timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        // Every run would draw the script's own charts again.
        charts: false,
        constants: args.set.clone(),
        stackful: false,
    }
}

/// ` --set key=value` for each value given, quoted for a shell when needed,
/// so that the replay command gives the script the same values.
fn set_flags(set: &[(String, String)]) -> String {
    set.iter()
        .map(|(key, value)| {
            let plain = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-+/:,@".contains(c));
            if plain {
                format!(" --set {key}={value}")
            } else {
                format!(" --set '{key}={}'", value.replace('\'', "'\\''"))
            }
        })
        .collect()
}

/// Runs `simcli explore`.
pub fn explore(args: &ExploreArgs) -> ExitCode {
    if args.jitter.is_some() && args.strategy == StrategyArg::Dfs {
        eprintln!(
            "error: --jitter works with --strategy random or pct: dfs enumerates orderings, \
             and a search over every perturbation of every duration would never end"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    if let Err(error) = std::fs::create_dir_all(&args.out) {
        eprintln!(
            "error: cannot use {} as the output folder (--out): {error}",
            args.out.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let script = match crate::load_script(&args.script) {
        Ok(script) => script,
        Err(status) => return status,
    };
    crate::warn(&script, &args.set);
    let name = script.name().to_string();
    let source = std::fs::read_to_string(&args.script).expect("read above");
    let strategy = match args.strategy {
        StrategyArg::Random => Strategy::Random,
        StrategyArg::Pct => Strategy::Pct { depth: args.depth },
        StrategyArg::Dfs => Strategy::Dfs {
            preemptions: args.preemptions,
        },
    };
    let options = ExploreOptions {
        runs: args.runs,
        strategy,
        jobs: args.jobs,
        seed: args.seed,
        // A histogram is of every run, so it does not stop at a failure.
        keep_going: args.keep_going || args.histogram.is_some(),
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.runs)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs, {msg}, {per_sec}")
            .expect("a valid template"),
    );
    let started = Instant::now();
    let judging = Judging {
        races: args.races,
        histogram: args.histogram.clone(),
    };
    let make = || {
        let script = COMPILED.with_borrow_mut(|slot| {
            slot.get_or_insert_with(|| {
                Rc::new(Script::compile(&name, &source).expect("compiled above"))
            })
            .clone()
        });
        ScriptScenario::new(script, run_options(args, args.seed, None), judging.clone())
    };
    let report = search(&options, make, |p: Progress| {
        bar.set_position(p.runs);
        bar.set_message(format!("{} failing", p.failures));
    });
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    if args.timing {
        eprintln!(
            "timing: explored {} runs in {seconds:.2}s wall clock, {:.0} runs/s",
            report.runs,
            report.runs as f64 / seconds.max(1e-9)
        );
    }
    println!(
        "explored {} runs ({:?}{}): {} distinct outcome(s), {} failure(s)",
        report.runs,
        strategy,
        if report.exhausted {
            ", every schedule within the bound"
        } else {
            ""
        },
        report.outcomes.len(),
        report.failures.len()
    );
    for bound in &report.bounds {
        println!(
            "  {} preemption(s): {} schedule(s){}, {}",
            bound.bound,
            bound.schedules,
            if bound.reruns > 0 {
                format!(" (and {} with fewer run again to reach them)", bound.reruns)
            } else {
                String::new()
            },
            if bound.covered >= 1.0 {
                "every one there is".to_string()
            } else {
                format!("about {:.1}% of the tree", 100.0 * bound.covered)
            }
        );
    }
    // An output that cannot be written is an I/O error (exit 2), whatever
    // the search found.
    let mut io_error = false;
    if let Some(variable) = &args.histogram {
        if report.outcomes.keys().all(|k| k == "-") {
            eprintln!(
                "error: --histogram {variable}: no run of {} has a variable named '{variable}'; \
                 name one the script declares with m.variable(\"{variable}\", 0)",
                args.script.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
        print_histogram(&report.outcomes, variable);
        let path = args
            .out
            .join(format!("{}-histogram.png", stem(&args.script)));
        match sim_core::plot::histogram(&report.outcomes, variable, &path) {
            Ok(()) => println!("histogram: {}", path.display()),
            Err(error) => {
                eprintln!("error: {error}");
                io_error = true;
            }
        }
    }
    let mut scenario = make();
    for (n, failure) in report.failures.iter().enumerate() {
        println!(
            "\nfailure {} (run {}, seed {}): {}",
            n + 1,
            failure.run,
            failure.seed,
            failure.message
        );
        if stopped_by_host(&failure.message) {
            // A wall-clock timeout or the memory guard stopped it: where
            // depends on the host, so no schedule replays it; shrinking and
            // replaying would only run out the clock again.
            println!(
                "  a host guard (--timeout or --max-memory) stopped this run: it is a failure, \
                 but not deterministic, so it is neither shrunk nor given a replay command"
            );
            continue;
        }
        let budget = ShrinkBudget {
            runs: args.shrink_runs,
            time: Duration::from_secs(args.shrink_seconds),
        };
        let Shrunk {
            decisions: shrunk,
            runs,
            elapsed,
            out_of_budget,
        } = shrink_failure(&mut scenario, failure, budget);
        println!(
            "  shrunk from {} to {} preemption(s), {} decision(s), in {runs} run(s)",
            preemptions(&failure.decisions),
            preemptions(&shrunk),
            shrunk.len(),
        );
        if args.timing {
            eprintln!(
                "timing: shrinking took {:.2}s wall clock",
                elapsed.as_secs_f64()
            );
        }
        if out_of_budget {
            println!(
                "  (shrinking stopped at its budget of {} runs or {}s: \
                 raise --shrink-runs or --shrink-seconds for a smaller schedule)",
                budget.runs,
                budget.time.as_secs()
            );
        }
        // The printed command must replay this failure: check it does,
        // exactly as `simcli run --schedule` will, before printing it.
        let replays = |decisions: &[Decision]| {
            let replay = script.run(&run_options(args, failure.seed, Some(decisions.to_vec())));
            let same = verdict(&replay, &judging)
                .failure
                .is_some_and(|f| f.key == failure.key);
            same.then_some(replay)
        };
        let (shrunk, replay) = match replays(&shrunk) {
            Some(replay) => (shrunk, replay),
            None => match replays(&failure.decisions) {
                Some(replay) => {
                    println!("  (the shrunk schedule did not replay this failure; the schedule found is kept)");
                    (failure.decisions.clone(), replay)
                }
                None => {
                    println!(
                        "  this failure does not replay: the script is not deterministic under a fixed schedule \
                         (a wall-clock timeout or the host's memory stopped it); it is reported, but no replay is printed"
                    );
                    continue;
                }
            },
        };
        let file = args
            .out
            .join(format!("{}-failure-{}.ron", stem(&args.script), n + 1));
        if let Err(error) = save(&file, &shrunk) {
            eprintln!("error: writing {}: {error}", file.display());
            io_error = true;
            continue;
        }
        let jitter = args
            .jitter
            .map(|p| format!(" --jitter {p}"))
            .unwrap_or_default();
        println!(
            "  replay: simcli run {} --schedule {}{jitter}{}",
            args.script.display(),
            file.display(),
            set_flags(&args.set)
        );
        // `step` takes no jitter: a jittered schedule would not fit it.
        if args.jitter.is_none() {
            println!(
                "  step through it: simcli step {} --schedule {}{} (u goes back a decision)",
                args.script.display(),
                file.display(),
                set_flags(&args.set)
            );
        }
        for (i, run) in replay.runs.iter().enumerate() {
            let chart = args.out.join(format!(
                "{}-failure-{}-{}.png",
                stem(&args.script),
                n + 1,
                i + 1
            ));
            match write_chart(run, &chart, &script, false) {
                Ok(()) => println!("  chart: {}", chart.display()),
                Err(error) => {
                    eprintln!("error: {error:#}");
                    io_error = true;
                }
            }
        }
    }
    if io_error {
        ExitCode::from(EXIT_USAGE)
    } else if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// Whether a failure's message is that of a host guard (the wall-clock
/// timeout or the memory guard), whose stopping point depends on the host.
fn stopped_by_host(message: &str) -> bool {
    message.contains("would not be deterministic") || message.contains("the simulator's own memory")
}

fn stem(script: &Path) -> String {
    script
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "script".to_string())
}

fn save(path: &Path, decisions: &[Decision]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    sim_core::output::write(
        path,
        ron::to_string(decisions)
            .expect("decisions serialize")
            .as_bytes(),
    )
}

fn print_histogram(outcomes: &BTreeMap<String, u64>, variable: &str) {
    println!("final value of '{variable}' over all runs:");
    let total: u64 = outcomes.values().sum();
    for (value, count) in outcomes {
        let bar = "#".repeat((count * 40 / total.max(1)) as usize);
        println!("  {value:>8}  {count:>6}  {bar}");
    }
}
