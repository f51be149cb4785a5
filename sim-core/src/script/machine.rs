//! `machine(...)`, processes and threads as a script declares them, and
//! `m.run()`, which turns a declaration into a [`Simulation`] and runs it.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position, AST};

use super::api::def;
use super::duration::to_span;
use super::error::{fault, position_of, ScriptError};
use super::limits::SCRIPT_STACK;
use super::memory::VariableH;
use super::run::RunHandle;
use super::sync::ResourceSpec;
use super::{current, session, Expectation, Output, ScriptRun};
use crate::error::{BodyError, SimError};
use crate::ids::{ProcessId, ResourceId, VarId};
use crate::kernel::{Ctx, Simulation};
use crate::model::machine::{Machine, SchedulerKind};
use crate::model::process::ProcessOptions;
use crate::model::thread::ThreadOptions;
use crate::time::Time;

/// The keys `machine(#{ ... })` accepts.
const MACHINE_KEYS: &str = "name, preset, sweep, cpus, scheduler, quantum, context_switch, \
     process_switch, thread_spawn, slice, granularity, seed, max_time, max_events, max_steps_at_instant, max_threads, starvation, stack_size, \
     memory, process_memory, thread_memory, task_memory, ipc_cost, ipc_byte_cost, job_cost";

/// A machine as declared by a script (shared by every handle to it).
#[derive(Clone, Debug)]
pub(crate) struct MachineHandle(Rc<RefCell<MachineDecl>>);

/// What a script declared of one machine.
#[derive(Debug)]
pub(crate) struct MachineDecl {
    /// Shown in reports and used for chart names when a script runs several.
    pub(crate) label: String,
    machine: Machine,
    /// Processes with their switch interval when they have a GIL; index 0
    /// is the default process.
    processes: Vec<(String, Option<crate::time::Span>, f64)>,
    threads: Vec<ThreadDecl>,
    /// Synchronization resources, in declaration order (their ids).
    resources: Vec<(String, ResourceSpec)>,
    /// Shared variables (name, process index, initial value), in declaration
    /// order (their ids).
    variables: Vec<(String, usize, i64)>,
    /// Invariants checked after each run: name and closure `|run| bool`.
    expectations: Vec<(String, FnPtr)>,
    /// The ending declared with `m.expect_outcome(...)`.
    expected_outcome: Option<super::ExpectedOutcome>,
    /// Thread and process pools, in declaration order.
    pools: Vec<super::pool::PoolDecl>,
    /// One point of a sweep: reported in one line, with no Gantt chart.
    sweep: bool,
    /// Whether it ran at least once.
    pub(crate) ran: bool,
    /// Its variables' values at the end of its last run.
    finals: Vec<i64>,
}

#[derive(Debug)]
struct ThreadDecl {
    process: usize,
    name: String,
    options: ThreadOptions,
    body: DeclBody,
}

/// What a declared thread runs.
#[derive(Debug)]
enum DeclBody {
    /// A script closure, and the call that declared it.
    Closure(FnPtr, Position),
    /// An event loop, with its options and tasks (name, closure).
    Loop(crate::kernel::LoopOptions, Vec<(String, FnPtr)>),
}

/// A process of a declared machine.
#[derive(Clone, Debug)]
pub(crate) struct ProcessHandle {
    machine: MachineHandle,
    index: usize,
}

/// A handle to a thread started from a body.
#[derive(Clone, Debug)]
pub(crate) struct ThreadHandle {
    thread: crate::ids::ThreadId,
    name: String,
    result: Joined,
}

/// The value a started thread's body returned, once it has: every join
/// returns it (CPython lets any number of threads join a thread, any
/// number of times; the kernel gives its value to the first join only).
type Joined = Rc<std::cell::RefCell<Option<Dynamic>>>;

/// `body`, with what it returns moved into `result`, where every join
/// reads it (the kernel keeps `()` instead: no join asks it for the value).
fn keeping_result(
    body: impl FnOnce(&Ctx<'_>) -> Result<Box<dyn Any>, BodyError> + 'static,
    result: &Joined,
) -> impl FnOnce(&Ctx<'_>) -> Result<Box<dyn Any>, BodyError> + 'static {
    let result = result.clone();
    move |ctx: &Ctx<'_>| {
        body(ctx).map(|value| match value.downcast::<Dynamic>() {
            Ok(value) => {
                *result.borrow_mut() = Some(*value);
                Box::new(()) as Box<dyn Any>
            }
            Err(other) => other,
        })
    }
}

/// Reads a process's `gil` (true or false) or `switch_interval` (longer
/// than 0) option into `gil` or `interval`.
pub(crate) fn gil_option(
    key: &str,
    value: &Dynamic,
    position: Position,
    gil: &mut bool,
    interval: &mut crate::time::Span,
) -> Result<(), Box<EvalAltResult>> {
    if key == "gil" {
        *gil = value
            .as_bool()
            .map_err(|_| bad_value("gil", "true or false", value, position))?;
        return Ok(());
    }
    *interval = to_span(value, "`switch_interval`", position)?;
    if interval.is_zero() {
        return Err(fault(
            "`switch_interval` must be longer than 0",
            Some("CPython's default is 5ms (sys.setswitchinterval(0.005))"),
            position,
        ));
    }
    Ok(())
}

/// A handle to a process started from a body: `join` waits for its first
/// thread and returns the body's value.
#[derive(Clone, Debug)]
pub(crate) struct ChildProcess {
    main: crate::ids::ThreadId,
    pid: ProcessId,
    name: String,
    result: Joined,
}

/// Reads `start_process`'s options: gil (default true), switch_interval,
/// start_method ("fork", "forkserver", "spawn") and spawn_cost.
fn process_start(
    map: &Map,
    position: Position,
) -> Result<crate::kernel::ProcessStart, Box<EvalAltResult>> {
    use crate::kernel::StartMethod;
    let mut gil = true;
    let mut interval = crate::model::python::gil::DEFAULT_SWITCH_INTERVAL;
    let mut method = StartMethod::Fork;
    let mut cost = None;
    for (key, value) in map {
        match key.as_str() {
            "gil" | "switch_interval" => gil_option(key, value, position, &mut gil, &mut interval)?,
            "start_method" => {
                let name = string("start_method", value, position)?;
                method = StartMethod::from_name(&name).ok_or_else(|| {
                    fault(
                        format!("no start method named \"{name}\""),
                        Some("the start methods are \"fork\" (2ms), \"forkserver\" (35ms) and \"spawn\" (75ms)"),
                        position,
                    )
                })?;
            }
            "spawn_cost" => cost = Some(to_span(value, "`spawn_cost`", position)?),
            other => {
                return Err(fault(
                    format!("start_process has no option `{other}`"),
                    Some("its options are: gil, switch_interval, start_method, spawn_cost"),
                    position,
                ))
            }
        }
    }
    Ok(crate::kernel::ProcessStart {
        gil: gil.then_some(interval),
        spawn_cost: cost.unwrap_or(method.cost()),
    })
}

/// Joins `thread` from the running body and returns its body's value (to
/// every join, not only the first).
fn join_value(
    call: &NativeCallContext,
    thread: crate::ids::ThreadId,
    result: &Joined,
) -> Result<Dynamic, Box<EvalAltResult>> {
    current::operation(call, |ctx| ctx.join_any(thread))?;
    Ok(result.borrow().clone().unwrap_or(Dynamic::UNIT))
}

fn start_process(
    call: &NativeCallContext,
    name: &str,
    options: &Map,
    body: FnPtr,
) -> Result<ChildProcess, Box<EvalAltResult>> {
    let start = process_start(options, call.call_position())?;
    let (engine, ast) = session::with(|s| (s.engine.clone(), s.ast.clone()));
    // A process copies what it captures, as fork does.
    let body = thread_body(engine, ast, by_value(body), call.call_position());
    let result = Joined::default();
    let body = keeping_result(body, &result);
    let handle = current::operation(call, |ctx| ctx.start_process(name, start, body))?;
    Ok(ChildProcess {
        main: handle.main,
        pid: handle.process,
        name: name.to_string(),
        result,
    })
}

impl ProcessHandle {
    /// The machine this process belongs to.
    pub(crate) fn machine(&self) -> &MachineHandle {
        &self.machine
    }
}

impl MachineHandle {
    /// The name a resource (lock, channel, device) was declared with.
    pub(crate) fn resource_name(&self, id: ResourceId) -> String {
        let decl = self.0.borrow();
        match decl.resources.get(id.index()) {
            Some((name, _)) => name.clone(),
            None => format!("epoll{}", id.index() + 1 - decl.resources.len()),
        }
    }

    /// The shared declaration, for identity checks.
    pub(crate) fn shared(&self) -> &Rc<RefCell<MachineDecl>> {
        &self.0
    }

    /// Checks, inside a body, that this machine is the one running: a
    /// thread may only use `what` (locks, variables, …) of its own machine.
    pub(crate) fn check_running(
        &self,
        call: &NativeCallContext,
        what: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        let running = session::with(|s| {
            s.running
                .as_ref()
                .is_some_and(|m| Rc::ptr_eq(m.shared(), self.shared()))
        });
        if !running && current::in_body() {
            return Err(fault(
                format!("{}() on a {what} of another machine", call.fn_name()),
                Some(&format!(
                    "a thread can only use the {what}s of its own machine"
                )),
                call.call_position(),
            ));
        }
        Ok(())
    }

    /// Declares a resource; its id is its place in declaration order.
    pub(crate) fn declare_resource(
        &self,
        call: &NativeCallContext,
        name: &str,
        spec: ResourceSpec,
    ) -> Result<ResourceId, Box<EvalAltResult>> {
        let mut decl = self.0.borrow_mut();
        if decl.ran {
            return Err(fault(
                format!(
                    "machine '{}' already ran; it cannot take new resources",
                    decl.label
                ),
                Some("declare locks, semaphores and channels before m.run()"),
                call.call_position(),
            ));
        }
        decl.resources.push((name.to_string(), spec));
        Ok(ResourceId(decl.resources.len() as u32 - 1))
    }

    /// Declares a shared variable of process `process`.
    fn declare_variable(
        &self,
        call: &NativeCallContext,
        process: usize,
        name: &str,
        init: i64,
    ) -> Result<VariableH, Box<EvalAltResult>> {
        let mut decl = self.0.borrow_mut();
        if decl.ran {
            return Err(fault(
                format!(
                    "machine '{}' already ran; it cannot take new variables",
                    decl.label
                ),
                Some("declare variables before m.run()"),
                call.call_position(),
            ));
        }
        if decl.variables.iter().any(|(n, _, _)| n == name) {
            return Err(fault(
                format!("the machine already has a variable named \"{name}\""),
                Some("give each variable its own name: r.value(name) reads it by name"),
                call.call_position(),
            ));
        }
        decl.variables.push((name.to_string(), process, init));
        let id = VarId(decl.variables.len() as u32 - 1);
        Ok(VariableH::new(self.clone(), id))
    }

    /// A variable's value at the end of the machine's last run; `None`
    /// before it ran.
    pub(crate) fn final_value(&self, var: VarId) -> Option<i64> {
        self.0.borrow().finals.get(var.index()).copied()
    }

    /// Whether this machine still has to run.
    pub(crate) fn pending(&self) -> bool {
        !self.0.borrow().ran
    }

    /// Drops the declared bodies and expectations at the end of an
    /// evaluation. Their closures may capture handles that point back at
    /// this machine, a reference cycle that would otherwise leak the whole
    /// declaration on every evaluation (an exploration makes thousands).
    pub(crate) fn release_closures(&self) {
        let mut decl = self.0.borrow_mut();
        decl.threads.clear();
        decl.expectations.clear();
    }
}

fn bad_value(key: &str, expected: &str, value: &Dynamic, position: Position) -> Box<EvalAltResult> {
    fault(
        format!(
            "`{key}` must be {expected}, not {value} ({})",
            value.type_name()
        ),
        None,
        position,
    )
}

fn int_in(
    key: &str,
    value: &Dynamic,
    range: std::ops::RangeInclusive<i64>,
    position: Position,
) -> Result<i64, Box<EvalAltResult>> {
    let n = value
        .as_int()
        .map_err(|_| bad_value(key, "an integer", value, position))?;
    if !range.contains(&n) {
        return Err(fault(
            format!(
                "`{key}` must be between {} and {}, not {n}",
                range.start(),
                range.end()
            ),
            None,
            position,
        ));
    }
    Ok(n)
}

pub(crate) fn string(
    key: &str,
    value: &Dynamic,
    position: Position,
) -> Result<String, Box<EvalAltResult>> {
    value
        .clone()
        .into_string()
        .map_err(|_| bad_value(key, "a string", value, position))
}

/// A size in bytes: an integer, or a string with a unit ("512KiB", "16GiB").
pub(crate) fn size(
    key: &str,
    value: &Dynamic,
    position: Position,
) -> Result<u64, Box<EvalAltResult>> {
    let hint = Some(
        "write sizes as bytes (4096) or with a unit: \"512KiB\", \"1MiB\", \"16GiB\", \"100MB\"",
    );
    if let Ok(n) = value.as_int() {
        return u64::try_from(n).map_err(|_| {
            fault(
                format!("`{key}` cannot be negative, not {n}"),
                hint,
                position,
            )
        });
    }
    match value.clone().into_immutable_string() {
        Ok(text) => crate::model::footprint::parse_size(&text)
            .map_err(|e| fault(format!("`{key}`: {e}"), hint, position)),
        Err(_) => Err(bad_value(key, "a size", value, position)),
    }
}

/// A machine for scripts: interpreted bodies need deeper stacks.
fn script_machine(machine: Machine) -> Machine {
    Machine {
        stack_size: SCRIPT_STACK,
        ..machine
    }
}

fn preset(name: &str, position: Position) -> Result<Machine, Box<EvalAltResult>> {
    Machine::preset(name).map(script_machine).ok_or_else(|| {
        fault(
            format!("no machine preset named \"{name}\""),
            Some("the presets are \"linux\", \"textbook\" and \"default\""),
            position,
        )
    })
}

/// Reads `machine(#{ ... })`: returns the machine and its label, if named.
fn machine_from_map(
    map: &Map,
    position: Position,
) -> Result<(Machine, Option<String>), Box<EvalAltResult>> {
    let mut machine = match map.get("preset") {
        Some(name) => preset(&string("preset", name, position)?, position)?,
        None => script_machine(Machine::default()),
    };
    let mut label = None;
    for (key, value) in map {
        let key = key.as_str();
        let span = || to_span(value, key, position);
        match key {
            "preset" | "sweep" => {}
            "name" => label = Some(string(key, value, position)?),
            "cpus" => machine.cpus = int_in(key, value, 1..=1024, position)? as u16,
            "scheduler" => {
                let name = string(key, value, position)?;
                machine.scheduler = SchedulerKind::from_name(&name).ok_or_else(|| {
                    fault(
                        format!("no scheduler named \"{name}\""),
                        Some("the schedulers are \"fifo\", \"rr\", \"priority\" and \"fair\""),
                        position,
                    )
                })?;
            }
            "quantum" => machine.quantum = span()?,
            "context_switch" => machine.context_switch = span()?,
            "process_switch" => machine.process_switch = span()?,
            "thread_spawn" => machine.thread_spawn = span()?,
            "slice" => machine.slice = Some(span()?),
            "granularity" => machine.granularity = Some(span()?),
            "starvation" => machine.starvation = Some(span()?),
            "seed" => machine.seed = int_in(key, value, 0..=i64::MAX, position)? as u64,
            "max_time" => machine.max_time = Time(span()?.as_nanos()),
            "max_events" => machine.max_events = int_in(key, value, 1..=i64::MAX, position)? as u64,
            "max_steps_at_instant" => {
                machine.max_steps_at_instant = int_in(key, value, 1..=i64::MAX, position)? as u64
            }
            "max_threads" => {
                machine.max_threads = int_in(key, value, 1..=i64::MAX, position)? as u64
            }
            "ipc_cost" => machine.ipc_cost = span()?,
            "ipc_byte_cost" => machine.ipc_byte_cost = span()?,
            "job_cost" => machine.job_cost = span()?,
            "memory" => machine.memory = size(key, value, position)?,
            "process_memory" => machine.process_memory = size(key, value, position)?,
            "thread_memory" => machine.thread_memory = size(key, value, position)?,
            "task_memory" => machine.task_memory = size(key, value, position)?,
            "stack_size" => {
                let least = super::limits::MIN_SCRIPT_STACK as i64;
                let size = int_in(key, value, least..=1 << 30, position).map_err(|_| {
                    fault(
                        format!(
                            "`stack_size` must be between {least} and {} bytes, not {value}: a script body needs at least {least} ({} KiB) to run one operation",
                            1 << 30,
                            least / 1024
                        ),
                        Some(&format!("machine(#{{ stack_size: {least} }}) is the least; the default is {}", super::limits::SCRIPT_STACK)),
                        position,
                    )
                })?;
                machine.stack_size = size as usize;
            }
            other => {
                return Err(fault(
                    format!("machine has no key `{other}`"),
                    Some(&format!("the keys are: {MACHINE_KEYS}")),
                    position,
                ))
            }
        }
    }
    machine
        .validate()
        .map_err(|e| fault(e.to_string(), None, position))?;
    Ok((machine, label))
}

fn thread_options(map: &Map, position: Position) -> Result<ThreadOptions, Box<EvalAltResult>> {
    let mut options = ThreadOptions::default();
    for (key, value) in map {
        match key.as_str() {
            "priority" => {
                options.priority = int_in("priority", value, -1000..=1000, position)? as i32
            }
            "nice" => options.nice = int_in("nice", value, -20..=19, position)? as i32,
            other => {
                return Err(fault(
                    format!("a thread has no option `{other}`"),
                    Some("the options are priority (higher runs first) and nice (-20 to 19)"),
                    position,
                ))
            }
        }
    }
    Ok(options)
}

fn declare(machine: Machine, label: Option<String>) -> MachineHandle {
    #[cfg(test)]
    tests::LIVE.with(|live| live.set(live.get() + 1));
    let handle = MachineHandle(Rc::new(RefCell::new(MachineDecl {
        label: String::new(),
        machine,
        processes: vec![("main".to_string(), None, 0.0)],
        threads: Vec::new(),
        resources: Vec::new(),
        variables: Vec::new(),
        expectations: Vec::new(),
        expected_outcome: None,
        pools: Vec::new(),
        sweep: false,
        ran: false,
        finals: Vec::new(),
    })));
    session::with(|s| {
        let number = s.machines.len() + 1;
        handle.0.borrow_mut().label = label.unwrap_or_else(|| format!("machine {number}"));
        s.machines.push(handle.clone());
    });
    handle
}

fn add_thread(
    call: &NativeCallContext,
    machine: &MachineHandle,
    process: usize,
    name: &str,
    options: ThreadOptions,
    body: FnPtr,
) -> Result<(), Box<EvalAltResult>> {
    let mut decl = machine.0.borrow_mut();
    if decl.ran {
        return Err(fault(
            format!(
                "machine '{}' already ran; it cannot take new threads",
                decl.label
            ),
            Some("declare threads before m.run(), or declare a new machine"),
            call.call_position(),
        ));
    }
    decl.threads.push(ThreadDecl {
        process,
        name: name.to_string(),
        options,
        body: DeclBody::Closure(by_value(body), call.call_position()),
    });
    Ok(())
}

impl MachineHandle {
    /// Declares an event loop's thread; returns its index among the
    /// machine's threads.
    pub(crate) fn declare_loop(
        &self,
        call: &NativeCallContext,
        process: usize,
        name: &str,
        options: crate::kernel::LoopOptions,
    ) -> Result<usize, Box<EvalAltResult>> {
        let mut decl = self.0.borrow_mut();
        if decl.ran {
            return Err(fault(
                format!(
                    "machine '{}' already ran; it cannot take new event loops",
                    decl.label
                ),
                Some("declare loops before m.run(), or declare a new machine"),
                call.call_position(),
            ));
        }
        decl.threads.push(ThreadDecl {
            process,
            name: name.to_string(),
            options: ThreadOptions::default(),
            body: DeclBody::Loop(options, Vec::new()),
        });
        Ok(decl.threads.len() - 1)
    }

    /// Declares a task of the loop declared at `index`; returns its id.
    pub(crate) fn declare_task(
        &self,
        call: &NativeCallContext,
        index: usize,
        name: &str,
        body: FnPtr,
    ) -> Result<crate::model::python::event_loop::TaskId, Box<EvalAltResult>> {
        let mut decl = self.0.borrow_mut();
        if decl.ran {
            return Err(fault(
                format!(
                    "machine '{}' already ran; its loops cannot take new tasks",
                    decl.label
                ),
                Some("add tasks before m.run(); inside a task, use start_task"),
                call.call_position(),
            ));
        }
        let DeclBody::Loop(_, tasks) = &mut decl.threads[index].body else {
            unreachable!("a loop's index")
        };
        tasks.push((name.to_string(), body));
        Ok(crate::model::python::event_loop::TaskId(
            tasks.len() as u32 - 1,
        ))
    }
}

impl MachineHandle {
    /// Declares a pool; returns its index among the machine's pools.
    pub(crate) fn declare_pool(
        &self,
        call: &NativeCallContext,
        pool: super::pool::PoolDecl,
    ) -> Result<usize, Box<EvalAltResult>> {
        let mut decl = self.0.borrow_mut();
        if decl.ran {
            return Err(fault(
                format!(
                    "machine '{}' already ran; it cannot take new pools",
                    decl.label
                ),
                Some("declare pools before m.run(), or declare a new machine"),
                call.call_position(),
            ));
        }
        decl.pools.push(pool);
        Ok(decl.pools.len() - 1)
    }

    /// Whether two handles are one machine.
    pub(crate) fn same(&self, other: &MachineHandle) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Its label, as reports show it.
    pub(crate) fn label(&self) -> String {
        self.0.borrow().label.clone()
    }
}

impl ProcessHandle {
    /// Its machine and its index there.
    pub(crate) fn parts(&self) -> (MachineHandle, usize) {
        (self.machine.clone(), self.index)
    }
}

/// `body` with its captured variables copied: a closure handed to a thread
/// or a task captures the values its variables have at that moment, so
/// each gets its own copy (one `i` per loop iteration, as in Rust, Go since
/// 1.22 and JavaScript) and an assignment in it changes only that copy.
/// Handles (variables, locks, channels, devices) copy as handles: shared
/// state goes through them.
pub(crate) fn by_value(mut body: FnPtr) -> FnPtr {
    for captured in body.iter_curry_mut() {
        *captured = captured.flatten_clone();
    }
    body
}

/// The kernel body of a thread whose body is the script closure `body`,
/// started (or declared) by the call at `started`.
pub(crate) fn thread_body(
    engine: Rc<Engine>,
    ast: Rc<AST>,
    body: FnPtr,
    started: Position,
) -> impl FnOnce(&Ctx<'_>) -> Result<Box<dyn Any>, BodyError> + 'static {
    move |ctx: &Ctx<'_>| {
        current::enter(ctx);
        let result = body.call::<Dynamic>(&engine, &ast, ());
        current::clear();
        match result {
            Ok(value) => Ok(Box::new(value) as Box<dyn Any>),
            Err(error) => Err(super::stackless::failure(
                &error,
                ctx.script_position(),
                started,
            )),
        }
    }
}

/// Runs a declared machine and records the run in the session. `position`
/// is the `m.run()` call, if the script made it.
pub(crate) fn execute(
    handle: &MachineHandle,
    position: Position,
) -> Result<RunHandle, Box<EvalAltResult>> {
    if current::in_body() {
        return Err(fault(
            "m.run() cannot be called inside a thread body",
            Some("run machines from the top level of the script"),
            position,
        ));
    }
    let (engine, ast, bodies, script, jitter, chooser) = session::with(|s| {
        s.failure = None;
        (
            s.engine.clone(),
            s.ast.clone(),
            (!s.options.stackful).then(|| s.bodies.clone()),
            s.script.clone(),
            s.options.jitter,
            s.chooser.clone(),
        )
    });
    let mut script_threads = (0, 0);
    let (sim, label, pools) = {
        let mut decl = handle.0.borrow_mut();
        decl.ran = true;
        let mut sim = Simulation::new(decl.machine.clone())
            .map_err(|e| fault(e.to_string(), None, position))?;
        sim.set_script_name(&script);
        if let Some(chooser) = chooser {
            sim.set_chooser(Box::new(chooser));
        }
        for (name, spec) in &decl.resources {
            super::sync::create(&mut sim, name, spec);
        }
        let mut processes = vec![ProcessId::MAIN];
        for (name, gil, overhead) in &decl.processes[1..] {
            let options = ProcessOptions {
                gil: *gil,
                compute_overhead: *overhead,
                ..ProcessOptions::default()
            };
            processes.push(sim.add_process(name, options));
        }
        for (name, process, init) in &decl.variables {
            sim.variable(processes[*process], name, *init);
        }
        if let Some(jitter) = jitter {
            sim.set_jitter(jitter);
        }
        for thread in &decl.threads {
            match &thread.body {
                DeclBody::Closure(body, declared) => {
                    script_threads.0 += 1;
                    let stackless = bodies
                        .as_ref()
                        .and_then(|b| b.body(&engine, handle, body, *declared));
                    if let Some(body) = stackless {
                        script_threads.1 += 1;
                        sim.add_fallible_stackless_thread(
                            processes[thread.process],
                            &thread.name,
                            thread.options,
                            body,
                        );
                        continue;
                    }
                    let body = thread_body(engine.clone(), ast.clone(), body.clone(), *declared);
                    sim.add_fallible_thread(
                        processes[thread.process],
                        &thread.name,
                        thread.options,
                        body,
                    );
                }
                DeclBody::Loop(options, tasks) => {
                    let lp = sim.add_event_loop(processes[thread.process], &thread.name, *options);
                    for (name, body) in tasks {
                        let body =
                            super::event_loop::task_body(engine.clone(), ast.clone(), body.clone());
                        sim.add_fallible_task(&lp, name, body);
                    }
                }
            }
        }
        let pools = decl
            .pools
            .iter()
            .map(|pool| pool.create(&mut sim, &processes))
            .collect();
        (sim, decl.label.clone(), pools)
    };
    session::with(|s| {
        s.running = Some(handle.clone());
        s.pools = pools;
    });
    let started = std::time::Instant::now();
    let mut run = sim.run();
    let simulation = started.elapsed();
    handle.0.borrow_mut().finals = run.trace.variables.iter().map(|v| v.value).collect();
    current::clear();
    session::with(|s| {
        s.running = None;
        s.pools.clear();
        // A limit names the last operation in the script, not simcli's own.
        if let crate::kernel::Outcome::Failed(error) = &mut run.outcome {
            *error = super::error::script_sites(error, &s.script);
        }
    });
    let mut record = ScriptRun::new(label, run, simulation);
    record.script_threads = script_threads;
    record.expected_outcome = handle.0.borrow().expected_outcome;
    record.sweep = handle.0.borrow().sweep;
    let record = Rc::new(record);
    let expectations = handle.0.borrow().expectations.clone();
    let results = expectations
        .into_iter()
        .map(|(name, check)| {
            let result = check.call::<bool>(&engine, &ast, (RunHandle::new(record.clone()),));
            current::clear();
            match result {
                Ok(held) => Expectation {
                    name,
                    held,
                    error: None,
                },
                Err(error) => Expectation {
                    name,
                    held: false,
                    error: Some(session::with(|s| {
                        ScriptError::from_eval(&error, &s.script, &s.source).to_string()
                    })),
                },
            }
        })
        .collect();
    record.set_expectations(results);
    // A machine run at the end of the script (no `m.run()`) has no call to
    // point at: an error without a position of its own points at the
    // declaration of its thread (or of the first thread).
    let fallback = if position.is_none() {
        let named = record.outcome_error().and_then(SimError::site);
        let decl = handle.0.borrow();
        let declared = |t: &ThreadDecl| match &t.body {
            DeclBody::Closure(_, at) => Some(*at),
            DeclBody::Loop(..) => None,
        };
        decl.threads
            .iter()
            .filter(|t| named.as_ref().is_none_or(|n| n.thread == t.name))
            .find_map(declared)
            .or_else(|| decl.threads.iter().find_map(declared))
            .unwrap_or(position)
    } else {
        position
    };
    let failed = session::with(|s| {
        let failure = record.outcome_error().map(|error| {
            let from_body = s
                .failure
                .take()
                .filter(|_| matches!(error, SimError::Failed { .. }));
            match (from_body, error) {
                (Some(mut failure), SimError::Failed { thread, time, .. }) => {
                    failure.message =
                        format!("in thread '{thread}' at {time}: {}", failure.message);
                    failure
                }
                _ => ScriptError::from_sim(error, &s.script, &s.source, position_of(fallback)),
            }
        });
        s.output.push(Output::Run(s.runs.len()));
        s.runs.push(record.clone());
        s.failure = failure;
        s.failure.is_some()
    });
    if failed {
        return Err(fault("the run failed", None, position));
    }
    Ok(RunHandle::new(record))
}

/// Registers `machine`, processes, threads and `run`.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<MachineHandle>("Machine");
    engine.register_type_with_name::<ProcessHandle>("Process");
    engine.register_type_with_name::<ThreadHandle>("Thread");
    def(
        engine,
        "machine",
        &["Machine"],
        "A machine with the default settings (1 cpu, rr, 10ms quantum, 2us switches).",
        || declare(script_machine(Machine::default()), None),
    );
    def(
        engine,
        "machine",
        &["settings: Map", "Machine"],
        "A machine; keys: name, preset, sweep (true: one point of a sweep, reported in one line and drawn only by chart()), cpus, scheduler (\"fifo\", \"rr\" or \"round_robin\", \"priority\", \"fair\" or \"cfs\"), quantum, context_switch, process_switch, thread_spawn, slice, granularity, seed, max_time, max_events, max_steps_at_instant, max_threads, starvation, stack_size, memory, process_memory, thread_memory, task_memory, ipc_cost, ipc_byte_cost, job_cost. A duration is ms(5), a string with a unit (\"1.5ms\") or a bare 0.",
        |call: NativeCallContext, map: Map| {
            let (machine, label) = machine_from_map(&map, call.call_position())?;
            let handle = declare(machine, label);
            if let Some(sweep) = map.get("sweep") {
                let sweep = sweep.as_bool().map_err(|_| {
                    bad_value("sweep", "true or false", sweep, call.call_position())
                })?;
                handle.0.borrow_mut().sweep = sweep;
            }
            Ok::<_, Box<EvalAltResult>>(handle)
        },
    );
    def(
        engine,
        "machine",
        &["preset: String", "Machine"],
        "A machine from a preset: \"linux\" (fair scheduler), \"textbook\" (no switch or spawn costs) or \"default\".",
        |call: NativeCallContext, name: &str| {
            let machine = preset(name, call.call_position())?;
            Ok::<_, Box<EvalAltResult>>(declare(machine, None))
        },
    );
    def(
        engine,
        "add_thread",
        &["self: Machine", "name: String", "body: Fn", "()"],
        "Adds a thread to the default process, ready at time 0; `body` is a closure `|| { ... }`.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, body: FnPtr| {
            add_thread(&call, m, 0, name, ThreadOptions::default(), body)
        },
    );
    def(
        engine,
        "add_thread",
        &[
            "self: Machine",
            "name: String",
            "options: Map",
            "body: Fn",
            "()",
        ],
        "Adds a thread with options #{ priority, nice } to the default process.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, options: Map, body: FnPtr| {
            let options = thread_options(&options, call.call_position())?;
            add_thread(&call, m, 0, name, options, body)
        },
    );
    def(
        engine,
        "add_process",
        &["self: Machine", "name: String", "Process"],
        "Adds a process: its threads share its memory; switching between processes costs process_switch.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str| {
            add_process(&call, m, name, &Map::new())
        },
    );
    def(
        engine,
        "add_process",
        &["self: Machine", "name: String", "options: Map", "Process"],
        "Adds a process with options #{ gil: true (a CPython interpreter lock), switch_interval (default 5ms), nogil_overhead (with gil: false, the free-threaded build: 0.1 = computes 10% longer) }.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, options: Map| {
            add_process(&call, m, name, &options)
        },
    );
    def(
        engine,
        "add_thread",
        &["self: Process", "name: String", "body: Fn", "()"],
        "Adds a thread to this process, ready at time 0.",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str, body: FnPtr| {
            add_thread(
                &call,
                &p.machine,
                p.index,
                name,
                ThreadOptions::default(),
                body,
            )
        },
    );
    def(
        engine,
        "add_thread",
        &[
            "self: Process",
            "name: String",
            "options: Map",
            "body: Fn",
            "()",
        ],
        "Adds a thread with options #{ priority, nice } to this process.",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str, options: Map, body: FnPtr| {
            let options = thread_options(&options, call.call_position())?;
            add_thread(&call, &p.machine, p.index, name, options, body)
        },
    );
    def(
        engine,
        "variable",
        &["self: Machine", "name: String", "init: int", "Variable"],
        "Declares a variable of the default process that its threads share (load, store, fetch_add, compare_exchange).",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, init: rhai::INT| {
            m.declare_variable(&call, 0, name, init)
        },
    );
    def(
        engine,
        "variable",
        &["self: Process", "name: String", "init: int", "Variable"],
        "Declares a variable of this process; threads of other processes may not touch it.",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str, init: rhai::INT| {
            p.machine.declare_variable(&call, p.index, name, init)
        },
    );
    def(
        engine,
        "expect",
        &["self: Machine", "name: String", "check: Fn", "()"],
        "Declares an invariant `|run| bool` checked after each run; `simcli run` exits 1 and `explore` reports a failure when it is false.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, check: FnPtr| {
            let mut decl = m.0.borrow_mut();
            if decl.ran {
                return Err(fault(
                    format!("machine '{}' already ran; declare expectations before m.run()", decl.label),
                    None,
                    call.call_position(),
                ));
            }
            decl.expectations.push((name.to_string(), check));
            Ok(())
        },
    );
    def(
        engine,
        "expect_outcome",
        &["self: Machine", "outcome: String", "()"],
        "Declares that the machine's run is meant to end in a \"deadlock\" or a \"stall\": simcli run then exits 0 when it does (and 1 when it does not), and explore does not count it as a failure.",
        |call: NativeCallContext, m: &mut MachineHandle, outcome: &str| {
            let expected = super::ExpectedOutcome::from_name(outcome).ok_or_else(|| {
                fault(
                    format!("no outcome named \"{outcome}\" to expect"),
                    Some("m.expect_outcome(\"deadlock\") or m.expect_outcome(\"stall\")"),
                    call.call_position(),
                )
            })?;
            m.0.borrow_mut().expected_outcome = Some(expected);
            Ok::<_, Box<EvalAltResult>>(())
        },
    );
    def(
        engine,
        "run",
        &["self: Machine", "Run"],
        "Runs the machine to its end and returns the run (makespan, stats, summary, gantt).",
        |call: NativeCallContext, m: &mut MachineHandle| execute(m, call.call_position()),
    );
    def(
        engine,
        "start_thread",
        &["name: String", "body: Fn", "Thread"],
        "Inside a body: starts a thread in this thread's process (the caller pays thread_spawn of CPU).",
        |call: NativeCallContext, name: &str, body: FnPtr| {
            start_thread(&call, name, ThreadOptions::default(), body)
        },
    );
    def(
        engine,
        "start_thread",
        &["name: String", "options: Map", "body: Fn", "Thread"],
        "Inside a body: starts a thread with options #{ priority, nice }.",
        |call: NativeCallContext, name: &str, options: Map, body: FnPtr| {
            let options = thread_options(&options, call.call_position())?;
            start_thread(&call, name, options, body)
        },
    );
    def(
        engine,
        "join",
        &["self: Thread", "Dynamic"],
        "Inside a body: blocks until the thread finishes and returns its body's value; any number of threads may join it, any number of times, as in CPython.",
        |call: NativeCallContext, h: &mut ThreadHandle| join_value(&call, h.thread, &h.result),
    );
    super::api::getter(
        engine,
        "name",
        &["self: Thread", "String"],
        "The thread's name.",
        |h: &mut ThreadHandle| h.name.clone(),
    );
    engine.register_type_with_name::<ChildProcess>("ChildProcess");
    def(
        engine,
        "start_process",
        &["name: String", "body: Fn", "ChildProcess"],
        "Inside a body: starts a CPython process (its own GIL; start method fork, 2ms of start-up in state spawn) whose first thread runs `body`.",
        |call: NativeCallContext, name: &str, body: FnPtr| {
            start_process(&call, name, &Map::new(), body)
        },
    );
    def(
        engine,
        "start_process",
        &["name: String", "options: Map", "body: Fn", "ChildProcess"],
        "Inside a body: starts a process with #{ gil (default true), switch_interval, start_method: \"fork\" | \"forkserver\" | \"spawn\", spawn_cost }.",
        |call: NativeCallContext, name: &str, options: Map, body: FnPtr| {
            start_process(&call, name, &options, body)
        },
    );
    def(
        engine,
        "join",
        &["self: ChildProcess", "Dynamic"],
        "Inside a body: waits until the process's first thread ends and returns its body's value (a copy: processes share nothing).",
        |call: NativeCallContext, h: &mut ChildProcess| join_value(&call, h.main, &h.result),
    );
    super::api::getter(
        engine,
        "pid",
        &["self: ChildProcess", "int"],
        "The process's id (the default process is 0).",
        |h: &mut ChildProcess| h.pid.0 as rhai::INT,
    );
    super::api::getter(
        engine,
        "name",
        &["self: ChildProcess", "String"],
        "The process's name.",
        |h: &mut ChildProcess| h.name.clone(),
    );
}

fn add_process(
    call: &NativeCallContext,
    machine: &MachineHandle,
    name: &str,
    options: &Map,
) -> Result<ProcessHandle, Box<EvalAltResult>> {
    let position = call.call_position();
    let mut gil = false;
    let mut interval = crate::model::python::gil::DEFAULT_SWITCH_INTERVAL;
    let mut overhead = 0.0;
    for (key, value) in options {
        match key.as_str() {
            "nogil_overhead" => {
                overhead = value
                    .as_float()
                    .or_else(|_| value.as_int().map(|n| n as f64))
                    .map_err(|_| bad_value("nogil_overhead", "a fraction like 0.1", value, position))?;
                if !(0.0..=10.0).contains(&overhead) {
                    return Err(fault(
                        format!("`nogil_overhead` must be between 0 and 10, not {overhead}"),
                        Some("0.1 makes every compute 10% longer (the free-threaded build's single-thread cost)"),
                        position,
                    ));
                }
            }
            "gil" | "switch_interval" => gil_option(key, value, position, &mut gil, &mut interval)?,
            other => {
                return Err(fault(
                    format!("a process has no option `{other}`"),
                    Some("its options are: gil (true: a CPython interpreter lock), switch_interval (default 5ms), nogil_overhead (gil: false only)"),
                    position,
                ))
            }
        }
    }
    if options.contains_key("switch_interval") && !gil {
        return Err(fault(
            "`switch_interval` is the GIL's: give the process `gil: true` too",
            None,
            position,
        ));
    }
    if overhead > 0.0 && gil {
        return Err(fault(
            "`nogil_overhead` is the free-threaded build's: give the process `gil: false`",
            None,
            position,
        ));
    }
    let mut decl = machine.0.borrow_mut();
    decl.processes
        .push((name.to_string(), gil.then_some(interval), overhead));
    Ok(ProcessHandle {
        machine: machine.clone(),
        index: decl.processes.len() - 1,
    })
}

fn start_thread(
    call: &NativeCallContext,
    name: &str,
    options: ThreadOptions,
    body: FnPtr,
) -> Result<ThreadHandle, Box<EvalAltResult>> {
    let (engine, ast) = session::with(|s| (s.engine.clone(), s.ast.clone()));
    let body = thread_body(engine, ast, by_value(body), call.call_position());
    let result = Joined::default();
    let body = keeping_result(body, &result);
    let thread = current::operation(call, |ctx| ctx.start_fallible(name, options, body))?;
    Ok(ThreadHandle {
        thread,
        name: name.to_string(),
        result,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::MachineDecl;
    use crate::script::{RunOptions, Script};

    thread_local! {
        /// Declarations alive on this thread.
        pub(super) static LIVE: Cell<usize> = const { Cell::new(0) };
    }

    impl Drop for MachineDecl {
        fn drop(&mut self) {
            LIVE.with(|live| live.set(live.get() - 1));
        }
    }

    #[test]
    fn an_evaluation_frees_its_machines_even_when_bodies_capture_handles() {
        let source = r#"
            let m = machine();
            let counter = m.variable("counter", 0);
            let lock = m.mutex("lock");
            let p = m.add_process("p");
            m.add_thread("a", || { lock.lock(); counter.store(counter.load() + 1); lock.unlock(); });
            m.add_thread("b", || { let q = p; counter.fetch_add(1); });
            m.expect("two", |run| run.value("counter") == 2);
        "#;
        let script = Script::compile("capture.rhai", source).expect("compiles");
        for _ in 0..3 {
            let outcome = script.run(&RunOptions::default());
            assert!(outcome.error.is_none(), "{:?}", outcome.error);
        }
        assert_eq!(LIVE.with(Cell::get), 0);
    }
}
