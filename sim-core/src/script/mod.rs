//! Rhai scenario scripts: the script API of the specification mapped onto
//! the Rust API, with no semantics of its own.
//!
//! A [`Script`] is compiled once and can be run many times; each run
//! evaluates it afresh, so nothing leaks from one run into the next. Thread
//! bodies are Rhai closures called inside the kernel's coroutines, so a body
//! is ordinary Rhai code that blocks where it calls an operation.
//!
//! ```
//! use sim_core::script::{Script, RunOptions};
//! let script = Script::compile("hello.rhai", r#"
//!     let m = machine(#{ cpus: 1 });
//!     m.add_thread("hello", || { compute(ms(5)); print("done"); });
//! "#).unwrap();
//! let outcome = script.run(&RunOptions::default());
//! assert!(outcome.error.is_none());
//! assert_eq!(outcome.runs[0].stats.makespan.as_nanos(), 5_000_000);
//! ```
//!
//! - `api`: how functions are registered with their docs, and the listing.
//! - `chart`: `chart(path, rows, options)`, comparison charts of several runs.
//! - `current`: the simulated thread whose body runs script code now.
//! - `duration`, `machine`, `ops`, `run`, `sync`: the bindings, by concern.
//! - `error`: [`ScriptError`], with position and hint.
//! - `limits`: operations, depth and size limits for untrusted scripts.
//! - `params`: values set from outside (`--set`), and `param`.
//! - `scenario`: a script as something `explore` runs and judges.
//! - `session`: the state of one evaluation.

mod api;
mod chart;
mod current;
mod duration;
mod error;
mod event_loop;
mod io;
mod limits;
mod machine;
mod memory;
mod ops;
mod params;
mod pool;
mod run;
mod scenario;
mod session;
mod stackless;
mod sync;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::{Engine, AST};

pub use api::{api, write_definitions, ApiEntry};
pub use error::{ErrorStage, ScriptError};
pub use limits::{BODY_OPERATIONS, MAX_ARRAY, MAX_CALL_LEVELS, MAX_STRING};
pub use params::parse_set;
pub use scenario::{verdict, Judging, ScriptScenario};

use crate::analysis::gil::GilStats;
use crate::analysis::io::IoStats;
use crate::analysis::locks::LockStats;
use crate::analysis::starvation::Starvation;
use crate::analysis::stats::Stats;
use crate::error::SimError;
use crate::kernel::{Chooser, Decision, Outcome, RandomChooser, ReplayChooser, Run};
use crate::trace::Trace;

/// Options of one evaluation of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Use the seeded random chooser with this seed instead of the
    /// deterministic default.
    pub seed: Option<u64>,
    /// Where `r.gantt(name)` writes charts.
    pub out_dir: PathBuf,
    /// Let the chooser perturb compute and sleep durations by up to this
    /// percent (see [`crate::kernel::ChoicePoint::Jitter`]). The default
    /// chooser keeps them as written: pair it with `seed` or `schedule`.
    pub jitter: Option<u32>,
    /// Replay these decisions (a schedule recorded by `explore`: one list for
    /// the whole script, each machine run continuing where the previous
    /// stopped) instead of choosing; takes precedence over `seed`.
    pub schedule: Option<Vec<Decision>>,
    /// Stop the evaluation past this much wall-clock time, as a failure
    /// (see [`crate::kernel::guard`]); `None`: no timeout.
    pub timeout: Option<std::time::Duration>,
    /// Whether `r.gantt(...)` and `chart(...)` draw their charts (`simcli
    /// run --no-chart` turns them off, and `explore`, which evaluates a
    /// script many times, does too). Off, they write nothing and still
    /// return the path they would have written.
    pub charts: bool,
    /// Values for the script, as `(name, text)` (`simcli run --set
    /// name=text`, checked with [`parse_set`]): each is a constant of the
    /// script's top level and what `param(name, default)` returns. The text
    /// is read as an int, else a float, else a bool, else a string.
    pub constants: Vec<(String, String)>,
    /// Run every thread body on a coroutine stack of its own, as Rhai
    /// evaluates it, even one simple enough to run without a stack
    /// (`simcli run --stackful`; see `script::stackless`). The results are
    /// the same; this is for comparing speed and memory.
    pub stackful: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: None,
            out_dir: PathBuf::from("plots"),
            jitter: None,
            schedule: None,
            timeout: None,
            charts: true,
            constants: Vec::new(),
            stackful: false,
        }
    }
}

/// One machine run made by a script.
#[derive(Debug)]
pub struct ScriptRun {
    /// The machine's name, or "machine N" in declaration order.
    pub label: String,
    /// Everything that happened.
    pub trace: Trace,
    /// How it ended.
    pub outcome: Outcome,
    /// The decisions taken, for replay.
    pub decisions: Vec<Decision>,
    /// Statistics derived from the trace.
    pub stats: Stats,
    /// Longest waits, starved threads, fairness.
    pub starvation: Starvation,
    /// Per synchronization resource: acquisitions, contention, waits, holds.
    pub locks: LockStats,
    /// Per I/O device: requests, bytes, utilisation, queue waits, service.
    pub io: IoStats,
    /// Per process with a GIL: hand-offs, forced switches, waits.
    pub gil: GilStats,
    /// Per asyncio loop: iterations, switches, the tasks that held it.
    pub loops: crate::analysis::event_loop::EventLoops,
    /// Per thread or process pool: jobs, queue waits, utilisation, pickling.
    pub pools: crate::analysis::pool::PoolStats,
    /// How many operations the threads called.
    pub operations: u64,
    /// Wall-clock time the run took, for `--timing`.
    pub timing: RunTiming,
    /// Threads declared with a script closure, and how many of them ran
    /// without a stack (see [`RunOptions::stackful`]), for `--timing`.
    pub script_threads: (usize, usize),
    expectations: std::cell::OnceCell<Vec<Expectation>>,
    /// The outcome the script declared as intended with
    /// `m.expect_outcome(...)`, if any.
    pub expected_outcome: Option<ExpectedOutcome>,
    /// One point of a sweep (`machine(#{ sweep: true })`): reported in one
    /// line, with no Gantt chart.
    pub sweep: bool,
}

/// An ending a script declares as intended: a gallery script that shows a
/// deadlock on purpose is not a failed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedOutcome {
    /// The run ends in a deadlock.
    Deadlock,
    /// The run ends stalled.
    Stall,
}

impl ExpectedOutcome {
    /// Reads "deadlock" or "stall".
    pub fn from_name(name: &str) -> Option<ExpectedOutcome> {
        match name {
            "deadlock" => Some(ExpectedOutcome::Deadlock),
            "stall" => Some(ExpectedOutcome::Stall),
            _ => None,
        }
    }

    /// Its name: "deadlock" or "stall".
    pub fn name(self) -> &'static str {
        match self {
            ExpectedOutcome::Deadlock => "deadlock",
            ExpectedOutcome::Stall => "stall",
        }
    }
}

/// The result of one `m.expect(name, |run| bool)` after a run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Expectation {
    /// Its name.
    pub name: String,
    /// Whether it held.
    pub held: bool,
    /// The error its closure raised, if it did (it then did not hold).
    pub error: Option<String>,
}

/// Wall-clock time one run of a script took, in parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunTiming {
    /// The simulation alone: the kernel's run, thread bodies included.
    pub simulation: Duration,
    /// The analyses of its trace: statistics, starvation, locks, I/O, GIL,
    /// event loops.
    pub analyses: Duration,
}

impl ScriptRun {
    /// The record of `run`, with its analyses; `simulation` is how long
    /// the run took.
    fn new(label: String, run: Run, simulation: Duration) -> Self {
        let started = Instant::now();
        let stats = run.stats();
        let starvation = Starvation::from_trace(&run.trace);
        let locks = LockStats::from_trace(&run.trace);
        let io = IoStats::from_trace(&run.trace);
        let gil = GilStats::from_trace(&run.trace);
        let loops = crate::analysis::event_loop::EventLoops::from_trace(&run.trace, &stats);
        let pools = crate::analysis::pool::PoolStats::from_trace(&run.trace);
        let timing = RunTiming {
            simulation,
            analyses: started.elapsed(),
        };
        ScriptRun {
            timing,
            label,
            loops,
            pools,
            starvation,
            locks,
            io,
            gil,
            trace: run.trace,
            outcome: run.outcome,
            decisions: run.decisions,
            stats,
            operations: run.operations,
            script_threads: (0, 0),
            expectations: std::cell::OnceCell::new(),
            expected_outcome: None,
            sweep: false,
        }
    }

    /// The expectations of its machine, checked after the run.
    pub fn expectations(&self) -> &[Expectation] {
        self.expectations.get().map_or(&[], Vec::as_slice)
    }

    /// Whether any expectation did not hold.
    pub fn expectation_failed(&self) -> bool {
        self.expectations().iter().any(|e| !e.held)
    }

    /// Why the way the run ended makes it a failure, if it does: a
    /// deadlock or a stall the script did not declare as intended, or a
    /// declared one that did not happen. (An error that stopped the run is
    /// reported on its own.)
    pub fn outcome_failure(&self) -> Option<String> {
        let (happened, what) = match &self.outcome {
            Outcome::Deadlocked(_) => (Some(ExpectedOutcome::Deadlock), "ended in a deadlock"),
            Outcome::Stalled(_) => (Some(ExpectedOutcome::Stall), "stalled"),
            Outcome::Completed => (None, "completed"),
            Outcome::Failed(_) => return None,
        };
        match (happened, self.expected_outcome) {
            (a, b) if a == b => None,
            (Some(_), None) => Some(format!(
                "'{}' {what}; if that is the point, declare it with m.expect_outcome(\"{}\")",
                self.label,
                happened.map_or("", ExpectedOutcome::name)
            )),
            (_, Some(expected)) => Some(format!(
                "'{}' was declared to end in a {} (m.expect_outcome), but it {what}",
                self.label,
                expected.name()
            )),
            (None, None) => None,
        }
    }

    pub(crate) fn set_expectations(&self, results: Vec<Expectation>) {
        let _ = self.expectations.set(results);
    }

    /// The error that stopped the run, if one did.
    pub fn outcome_error(&self) -> Option<&SimError> {
        match &self.outcome {
            Outcome::Failed(error) => Some(error),
            _ => None,
        }
    }
}

/// What a script produced, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A line the top level printed.
    Print(String),
    /// A machine ran: the index into [`ScriptOutcome::runs`].
    Run(usize),
    /// The script drew a chart (`r.gantt(...)` or `chart(...)`): its path.
    Chart(String),
}

/// The result of evaluating a script.
#[derive(Debug)]
pub struct ScriptOutcome {
    /// What it printed and ran, in order.
    pub output: Vec<Output>,
    /// Every machine run, in order (also those the script did not run
    /// itself: a declared machine that was never run is run at the end).
    pub runs: Vec<Rc<ScriptRun>>,
    /// The error that stopped it, if any. A failed run keeps its partial
    /// trace in `runs`.
    pub error: Option<ScriptError>,
}

impl ScriptOutcome {
    /// Every decision of every run, in order: the script's schedule, which
    /// [`RunOptions::schedule`] replays.
    pub fn schedule(&self) -> Vec<Decision> {
        self.runs
            .iter()
            .flat_map(|r| r.decisions.iter().copied())
            .collect()
    }
}

/// A compiled scenario script.
pub struct Script {
    name: Rc<str>,
    source: Rc<str>,
    engine: Rc<Engine>,
    ast: Rc<AST>,
    /// Its closures, to be run without a stack where they can.
    bodies: Rc<stackless::Bodies>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The engine with every binding and limit installed.
pub(crate) fn build_engine() -> Engine {
    let mut engine = Engine::new();
    engine.disable_symbol("eval");
    // Evaluates pure functions of constants at compile time; every binding
    // with an effect is registered volatile, so only durations fold.
    engine.set_optimization_level(rhai::OptimizationLevel::Full);
    limits::install(&mut engine);
    ops::install_print(&mut engine);
    duration::register(&mut engine);
    machine::register(&mut engine);
    ops::register(&mut engine);
    sync::register(&mut engine);
    io::register(&mut engine);
    event_loop::register(&mut engine);
    pool::register(&mut engine);
    // A fault caught with try/catch prints as its message.
    engine.register_type_with_name::<error::Fault>("Error");
    engine.register_fn("to_string", |f: &mut error::Fault| f.message.clone());
    engine.register_fn("to_debug", |f: &mut error::Fault| f.message.clone());
    memory::register(&mut engine);
    sync::install_handle_reads(&mut engine);
    run::register(&mut engine);
    params::register(&mut engine);
    chart::register(&mut engine);
    engine
}

impl Script {
    /// Compiles `source`; `name` (usually the path) names it in errors.
    pub fn compile(name: &str, source: &str) -> Result<Script, ScriptError> {
        let engine = build_engine();
        let ast = engine
            .compile(source)
            .map_err(|e| ScriptError::from_parse(&e, name, source))?;
        Ok(Script {
            name: name.into(),
            source: source.into(),
            bodies: Rc::new(stackless::Bodies::new(&engine, &ast)),
            engine: Rc::new(engine),
            ast: Rc::new(ast),
        })
    }

    /// Reads and compiles the script at `path`.
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            ScriptError::new(
                &name,
                ErrorStage::Load,
                format!("cannot read the script: {e}"),
            )
            .with_hint("check the path")
        })?;
        let source = String::from_utf8(bytes).map_err(|e| {
            // Where the text stops being UTF-8: its byte, line and column.
            let offset = e.utf8_error().valid_up_to();
            let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]);
            let line = valid.matches('\n').count() as u32 + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            ScriptError::new(
                &name,
                ErrorStage::Compile,
                format!("the script is not UTF-8 text: byte {offset} is not valid UTF-8"),
            )
            .at(Some((line, column)), &lossy)
            .with_hint("save the script as UTF-8")
        })?;
        Script::compile(&name, &source)
    }

    /// The script's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Changes to a captured variable inside a closure, as (variable, line,
    /// column, the method when a call such as `push` changes it rather
    /// than an assignment): a thread's or task's closure has its own copy
    /// of what it captures, so such a change is seen nowhere outside it.
    /// `simcli check`, `run` and `explore` warn about each.
    pub fn captured_assignments(&self) -> Vec<(String, u32, u32, Option<String>)> {
        // Rhai's methods that change an array, a map, a string or a blob in
        // place (a handle's methods, lock() or send(), change shared state).
        const CHANGES: [&str; 16] = [
            "push", "append", "insert", "pop", "shift", "remove", "clear", "truncate", "drain",
            "retain", "splice", "sort", "reverse", "dedup", "pad", "chop",
        ];
        let at = |p: rhai::Position| (p.line().unwrap_or(0), p.position().unwrap_or(0));
        // Each closure's span and the variables it captured (its leading
        // parameters: a closure handed to a thread has no others).
        type Span = ((usize, usize), (usize, usize), Vec<String>);
        let closures: Vec<Span> = self
            .ast
            .iter_fn_def()
            .filter(|f| f.name.starts_with("anon$"))
            .map(|f| {
                (
                    at(f.body.start_position()),
                    at(f.body.end_position()),
                    f.params.iter().map(|p| p.to_string()).collect(),
                )
            })
            .collect();
        let mut found = Vec::new();
        self.ast.walk(&mut |path: &[rhai::ASTNode]| {
            let changed = match path.last() {
                Some(rhai::ASTNode::Stmt(rhai::Stmt::Assignment(assign))) => {
                    Some((&assign.1.lhs, None))
                }
                Some(rhai::ASTNode::Expr(rhai::Expr::Dot(dot, ..))) => match &dot.rhs {
                    rhai::Expr::MethodCall(call, _) if CHANGES.contains(&call.name.as_str()) => {
                        Some((&dot.lhs, Some(call.name.to_string())))
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some((rhai::Expr::Variable(var, _, position), method)) = changed {
                let here = at(*position);
                let innermost = closures
                    .iter()
                    .filter(|(start, end, _)| *start <= here && here <= *end)
                    .max_by_key(|(start, ..)| *start);
                if innermost.is_some_and(|(.., params)| params.iter().any(|p| *p == var.1)) {
                    found.push((var.1.to_string(), here.0 as u32, here.1 as u32, method));
                }
            }
            true
        });
        found.sort_by_key(|(_, line, column, _)| (*line, *column));
        found.dedup();
        found
    }

    /// Calls of a function that neither the script, simcli nor Rhai
    /// defines, as (name, line, column, the closest name that exists if one
    /// is close): such a call fails only when it runs, maybe deep into a
    /// simulation. `simcli check` and `simcli run` warn about each.
    pub fn unknown_calls(&self) -> Vec<(String, u32, u32, Option<String>)> {
        // Rhai's own functions that are keywords, not registered functions.
        const KEYWORDS: [&str; 10] = [
            "print",
            "debug",
            "type_of",
            "Fn",
            "call",
            "curry",
            "is_def_fn",
            "is_def_var",
            "is_shared",
            "eval",
        ];
        let mut known: std::collections::BTreeSet<String> = self
            .engine
            .gen_fn_signatures(true)
            .iter()
            .filter_map(|signature| signature.split('(').next())
            .map(str::to_string)
            .collect();
        known.extend(self.ast.iter_fn_def().map(|f| f.name.to_string()));
        known.extend(KEYWORDS.iter().map(|k| k.to_string()));
        // `m.f(x)` also calls a closure kept in an object map's property
        // `f`: the names of the script's map keys and properties are
        // methods too.
        let mut properties = std::collections::BTreeSet::new();
        self.ast.walk(&mut |path: &[rhai::ASTNode]| {
            match path.last() {
                Some(rhai::ASTNode::Expr(rhai::Expr::Map(map, _))) => {
                    properties.extend(map.0.iter().map(|(key, _)| key.name.to_string()));
                    properties.extend(map.1.keys().map(|key| key.to_string()));
                }
                // A map of constants (closures that capture nothing are).
                Some(rhai::ASTNode::Expr(rhai::Expr::DynamicConstant(value, _))) => {
                    if let Some(map) = value.read_lock::<rhai::Map>() {
                        properties.extend(map.keys().map(|key| key.to_string()));
                    }
                }
                Some(rhai::ASTNode::Expr(rhai::Expr::Property(property, _))) => {
                    properties.insert(property.2.to_string());
                }
                // m["key"] = ... and m.insert("key", ...).
                Some(rhai::ASTNode::Expr(rhai::Expr::Index(index, ..))) => {
                    if let rhai::Expr::StringConstant(key, _) = &index.rhs {
                        properties.insert(key.to_string());
                    }
                }
                Some(rhai::ASTNode::Expr(rhai::Expr::MethodCall(call, _)))
                    if call.name.as_str() == "insert" =>
                {
                    if let Some(rhai::Expr::StringConstant(key, _)) = call.args.first() {
                        properties.insert(key.to_string());
                    }
                }
                _ => {}
            }
            true
        });
        let mut found = Vec::new();
        self.ast.walk(&mut |path: &[rhai::ASTNode]| {
            let call = match path.last() {
                Some(rhai::ASTNode::Expr(rhai::Expr::FnCall(call, at)))
                | Some(rhai::ASTNode::Stmt(rhai::Stmt::FnCall(call, at))) => Some((call, *at)),
                Some(rhai::ASTNode::Expr(rhai::Expr::MethodCall(call, at)))
                    if !properties.contains(call.name.as_str()) =>
                {
                    Some((call, *at))
                }
                _ => None,
            };
            if let Some((call, at)) = call {
                let name = call.name.as_str();
                if call.op_token.is_none() && is_identifier(name) && !known.contains(name) {
                    let closest = known
                        .iter()
                        // Names a script can write: no operators, no
                        // closures' or getters' inner names.
                        .filter(|k| is_identifier(k))
                        .map(|k| (edit_distance(name, k), k))
                        // One slip in a short name, two in a longer one,
                        // never the whole name.
                        .filter(|&(d, _)| d < name.len() && d <= if name.len() > 4 { 2 } else { 1 })
                        .min()
                        .map(|(_, k)| k.clone());
                    found.push((
                        name.to_string(),
                        at.line().unwrap_or(0) as u32,
                        at.position().unwrap_or(0) as u32,
                        closest,
                    ));
                }
            }
            true
        });
        found.sort_by_key(|(_, line, column, _)| (*line, *column));
        found.dedup();
        found
    }

    /// The `--set` keys the script never reads: no `param("key", ...)` and
    /// no variable of that name. A misspelled key would otherwise be
    /// ignored without a word. Empty when a `param` call's name is not a
    /// literal (the script may read any key).
    pub fn unread_settings<'a>(&self, keys: &'a [(String, String)]) -> Vec<&'a str> {
        let mut read = std::collections::BTreeSet::new();
        let mut any = false;
        self.ast.walk(&mut |path: &[rhai::ASTNode]| {
            match path.last() {
                Some(rhai::ASTNode::Expr(rhai::Expr::Variable(var, ..))) => {
                    read.insert(var.1.to_string());
                }
                // A call in a statement's or a block's last place is a
                // Stmt::FnCall; is_def_var("key") asks for the constant.
                Some(rhai::ASTNode::Expr(rhai::Expr::FnCall(call, _)))
                | Some(rhai::ASTNode::Stmt(rhai::Stmt::FnCall(call, _)))
                    if matches!(call.name.as_str(), "param" | "is_def_var") =>
                {
                    match call.args.first() {
                        Some(rhai::Expr::StringConstant(name, _)) => {
                            read.insert(name.to_string());
                        }
                        _ => any = true,
                    }
                }
                _ => {}
            }
            true
        });
        if any {
            return Vec::new();
        }
        keys.iter()
            .map(|(key, _)| key.as_str())
            .filter(|key| !read.contains(*key))
            .collect()
    }

    /// Evaluates the script: runs what it runs, then every machine it
    /// declared but did not run.
    pub fn run(&self, options: &RunOptions) -> ScriptOutcome {
        let chooser: Option<Box<dyn Chooser>> = match (&options.schedule, options.seed) {
            (Some(decisions), _) => Some(Box::new(ReplayChooser::new(decisions.clone()))),
            (None, Some(seed)) => Some(Box::new(RandomChooser::new(seed))),
            (None, None) => None,
        };
        self.evaluate(options, chooser)
    }

    /// [`Script::run`] with `chooser` taking every decision of every machine
    /// run (exploration strategies use this); `options.seed` and
    /// `options.schedule` are then ignored.
    pub fn run_with_chooser(
        &self,
        options: &RunOptions,
        chooser: Box<dyn Chooser>,
    ) -> ScriptOutcome {
        self.evaluate(options, Some(chooser))
    }

    fn evaluate(&self, options: &RunOptions, chooser: Option<Box<dyn Chooser>>) -> ScriptOutcome {
        session::begin(session::Session {
            chooser: chooser.map(|c| session::SharedChooser(Rc::new(std::cell::RefCell::new(c)))),
            engine: self.engine.clone(),
            ast: self.ast.clone(),
            bodies: self.bodies.clone(),
            script: self.name.clone(),
            source: self.source.clone(),
            options: options.clone(),
            machines: Vec::new(),
            runs: Vec::new(),
            output: Vec::new(),
            running: None,
            pools: Vec::new(),
            failure: None,
        });
        limits::operation_called();
        crate::kernel::guard::start_timeout(options.timeout);
        let mut scope = params::scope(&options.constants);
        let result = self.engine.run_ast_with_scope(&mut scope, &self.ast);
        current::clear();
        let mut error = match result {
            Ok(()) => session::with(|s| s.failure.take()),
            Err(e) => Some(
                session::with(|s| s.failure.take())
                    .unwrap_or_else(|| ScriptError::from_eval(&e, &self.name, &self.source)),
            ),
        };
        if error.is_none() {
            let pending: Vec<_> =
                session::with(|s| s.machines.iter().filter(|m| m.pending()).cloned().collect());
            for machine in pending {
                if machine::execute(&machine, rhai::Position::NONE).is_err() {
                    error = session::with(|s| s.failure.take());
                    break;
                }
            }
        }
        crate::kernel::guard::start_timeout(None);
        let session = session::end();
        for machine in &session.machines {
            machine.release_closures();
        }
        ScriptOutcome {
            output: session.output,
            runs: session.runs,
            error,
        }
    }
}

/// Whether `name` is a name a script can write and call: a letter or `_`,
/// then letters, digits and `_` (not an operator, not `anon$…` or `get$…`).
fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Levenshtein distance between `a` and `b` (in characters), for "did you
/// mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("sleep", "sleep"), 0);
        assert_eq!(edit_distance("slep", "sleep"), 1);
        assert_eq!(edit_distance("lok", "lock"), 1);
        assert_eq!(edit_distance("comptue", "compute"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_calls_skip_the_scripts_own_functions_and_rhais() {
        let script = Script::compile(
            "t.rhai",
            "fn helper(x) { x + 1 }\nlet a = [1];\na.push(helper(2));\nprint(type_of(a));\nnope(1);\nlet o = #{ twice: |x| x * 2 };\nprint(o.twice(2));\n",
        )
        .unwrap();
        let unknown = script.unknown_calls();
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert_eq!(unknown[0].0, "nope");
        assert_eq!(
            (unknown[0].1, unknown[0].2, unknown[0].3.as_deref()),
            (5, 1, None)
        );
    }
}
