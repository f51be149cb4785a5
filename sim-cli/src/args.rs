//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sim_core::script::parse_set;

/// simcli: a deterministic simulator of concurrency.
///
/// Write a scenario in a Rhai script (CPUs, processes, threads and what they
/// do), run it, read the report and open the Gantt chart. The same script,
/// options and seed always give the same report and chart, byte for byte.
///
/// Start with `simcli run scripts/hello.rhai`, and `simcli api` for every
/// function a script can call.
#[derive(Debug, Parser)]
#[command(name = "simcli", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// A guard on simcli's own memory (its heap, or its resident set when
    /// larger), e.g. 2GiB: past it a run stops with an error that names
    /// the line, and keeps its partial trace. Default: half of the machine's RAM (or of the address-space
    /// limit, when one is set).
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

/// A size in bytes: an integer or a number with a unit ("512MiB", "2GB").
fn parse_size(text: &str) -> Result<u64, String> {
    sim_core::model::footprint::parse_size(text).map_err(|e| e.to_string())
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario script: print its report and draw its Gantt chart.
    ///
    /// Exit status: 0 on success, 1 when the script fails (a script error, a
    /// failed run or a limit), 2 on a usage error.
    Run(RunArgs),
    /// Search many schedules for one that breaks the script: a failed
    /// expectation, a deadlock, a stall, a script error (and, with --races,
    /// a data race). Prints the command that replays the first failure
    /// exactly and writes its chart.
    ///
    /// Exit status: 0 when no failure was found, 1 when one was, 2 on a
    /// usage or I/O error (a bad argument, an unreadable script, an output
    /// file that cannot be written; the message names the path).
    Explore(ExploreArgs),
    /// Be the scheduler: run a script and take its decisions yourself.
    ///
    /// At every decision with more than one legal option (which ready
    /// thread a CPU takes, which waiter gets a lock, whether to preempt at
    /// a zero-time operation, which same-instant event goes first) the run
    /// pauses and shows the time, the threads, the shared variables, the
    /// locks and the options. Keys: a number or arrows + Enter pick, a lets
    /// the default chooser go on until the next decision where another
    /// option would change the outcome, u undoes the last move, q quits.
    /// The decisions made replay with `simcli run SCRIPT --schedule FILE`.
    /// The scripts in scripts/challenges/ have a goal each.
    ///
    /// Exit status: for a challenge, 0 when its goal was reached, else 1;
    /// for another script, 1 when the run ended in a failure (as `simcli
    /// run` exits), else 0; 2 on a usage or I/O error (the message names
    /// the path).
    Step(StepArgs),
    /// Compile a script without running it: report syntax errors.
    Check {
        /// The script.
        script: PathBuf,
    },
    /// List every function a script can call, with its signature and doc.
    Api {
        /// Instead, write Rhai definition files (*.d.rhai) into DIR, for
        /// editors with the Rhai language server: completion and checking
        /// of simcli's functions.
        #[arg(long, value_name = "DIR")]
        definitions: Option<PathBuf>,
    },
    /// Print a shell completion script: e.g. `simcli completions bash >
    /// ~/.local/share/bash-completion/completions/simcli`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// How `explore` picks schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyArg {
    /// Every decision uniformly at random.
    Random,
    /// Probabilistic concurrency testing (random thread priorities with
    /// --depth - 1 change points).
    Pct,
    /// Every schedule with at most --preemptions preemptions, depth first.
    Dfs,
}

/// Options of `simcli explore`.
#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// The scenario script (.rhai).
    pub script: PathBuf,
    /// At most this many runs.
    #[arg(long, default_value_t = 1000)]
    pub runs: u64,
    /// How schedules are chosen.
    #[arg(long, value_enum, default_value = "random")]
    pub strategy: StrategyArg,
    /// PCT: the bug depth to target.
    #[arg(long, default_value_t = 3)]
    pub depth: u32,
    /// DFS: the preemption bound.
    #[arg(long, default_value_t = 2)]
    pub preemptions: u32,
    /// Let each run perturb every compute and sleep by up to P percent
    /// (1 to 100), in steps of 0.1%, chosen like every other decision: the
    /// schedule file of a failure replays them. Random and PCT only.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub jitter: Option<u32>,
    /// Parallel runs (the results are the same for any number).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// The seed every run's seed derives from.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Collect distinct failures instead of stopping at the first.
    #[arg(long)]
    pub keep_going: bool,
    /// Shrinking a failure makes at most this many runs.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub shrink_runs: u64,
    /// Shrinking a failure stops after about this many seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub shrink_seconds: u64,
    /// Count a data race as a failure.
    #[arg(long)]
    pub races: bool,
    /// Draw the distribution of this variable's final value over all runs.
    #[arg(long, value_name = "VAR")]
    pub histogram: Option<String>,
    /// Folder for schedules and charts.
    #[arg(long, value_name = "DIR", default_value = "plots")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Print to stderr how long the exploration and each shrinking took in
    /// wall-clock time (the report itself never shows it, so that the same
    /// options give the same bytes).
    #[arg(long)]
    pub timing: bool,
    /// A value for the script, KEY=VALUE: a constant named KEY at its top
    /// level, and what `param("KEY", default)` returns. VALUE is read as an
    /// int, else a float, else true / false, else a string. Repeat for
    /// several.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Wall-clock seconds one schedule may take (0: no limit). A schedule
    /// stopped by it is a failure (its result would not be deterministic).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
}

/// Options of `simcli run`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("chooser").args(["seed", "schedule"]).multiple(true)))]
pub struct RunArgs {
    /// The scenario script (.rhai).
    pub script: PathBuf,
    /// Folder for the charts.
    #[arg(long, value_name = "DIR", default_value = "plots")]
    pub out: PathBuf,
    /// Take decisions with the seeded random chooser instead of the
    /// deterministic default (same seed, same run).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Replay a schedule (the decisions of a run, as `simcli explore`
    /// writes them) instead of choosing.
    #[arg(long, value_name = "FILE.ron")]
    pub schedule: Option<PathBuf>,
    /// Write the decisions this evaluation took (its schedule) to a file that
    /// `--schedule` replays.
    #[arg(long, value_name = "FILE.ron")]
    pub save_schedule: Option<PathBuf>,
    /// Let the chooser perturb every compute and sleep by up to P percent
    /// (1 to 100), as `explore --jitter` does: drawn from `--seed`, or
    /// replayed from `--schedule`.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..=100),
          requires = "chooser")]
    pub jitter: Option<u32>,
    /// Draw SVG charts instead of PNG.
    #[arg(long)]
    pub svg: bool,
    /// Do not draw charts (neither the runs' Gantt charts nor those the
    /// script draws with r.gantt or chart).
    #[arg(long, conflicts_with = "svg")]
    pub no_chart: bool,
    /// Print the report as JSON (durations in nanoseconds).
    #[arg(long)]
    pub json: bool,
    /// Write the trace of the (last) run as RON to this file.
    #[arg(long, value_name = "FILE.ron")]
    pub trace: Option<PathBuf>,
    /// Write each run as Chrome trace JSON, which ui.perfetto.dev and
    /// chrome://tracing open (FILE-1.json, FILE-2.json... when the script
    /// runs several machines).
    #[arg(long, value_name = "FILE.json")]
    pub perfetto: Option<PathBuf>,
    /// Print one line per run instead of the full report.
    #[arg(long)]
    pub quiet: bool,
    /// Print to stderr how long the simulation took in wall-clock time and
    /// the simulated operations per second.
    #[arg(long)]
    pub timing: bool,
    /// Run every thread body on a coroutine stack of its own, as Rhai
    /// evaluates it. By default a body that calls no script function or
    /// closure and only the operations of resources, variables, devices,
    /// compute, sleep and print runs without a stack (faster, and about a
    /// sixth of the memory per waiting thread); the results are the same
    /// either way.
    #[arg(long)]
    pub stackful: bool,
    /// A value for the script, KEY=VALUE: a constant named KEY at its top
    /// level, and what `param("KEY", default)` returns. VALUE is read as an
    /// int, else a float, else true / false, else a string. Repeat for
    /// several.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Stop the script after this many wall-clock seconds, as a failure
    /// (where it stops depends on the host, so it is never an outcome).
    /// Default: no limit.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

/// Options of `simcli step`.
#[derive(Debug, Args)]
pub struct StepArgs {
    /// The scenario script (.rhai).
    pub script: PathBuf,
    /// Start with the decisions of this schedule already made (one saved
    /// by `step`, `run --save-schedule` or `explore`).
    #[arg(long, value_name = "FILE.ron")]
    pub schedule: Option<PathBuf>,
    /// Play these moves without a terminal, printing every screen as text:
    /// choice numbers (from 1), a (auto), u (undo), q (quit), separated by
    /// commas, e.g. 2,1,a.
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub moves: Option<String>,
    /// Write the decisions made to this file when the session ends (the
    /// schedule `simcli run SCRIPT --schedule FILE` replays).
    #[arg(long, value_name = "FILE.ron")]
    pub save: Option<PathBuf>,
    /// Folder where the terminal interface saves the decisions when no
    /// --save is given, in a file named after the script: NAME-step.ron.
    #[arg(long, value_name = "DIR", default_value = "plots")]
    pub out: PathBuf,
    /// A value for the script, KEY=VALUE, as `simcli run --set`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
}
