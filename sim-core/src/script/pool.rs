//! `concurrent.futures` in scripts: `p.thread_pool(name, n)` (or
//! `m.thread_pool`) and `m.process_pool(name, n, #{ start_method, gil })`
//! declare pools; in a body `pool.submit(name, || ...)` returns a future
//! with `f.result()`, `f.done()` and, in a task, `f.await_result()`;
//! `pool.map(name, items, |x| ...)` and `pool.shutdown()`; in a task
//! `run_in_executor(pool, || ...)`. The semantics are the kernel's
//! (`kernel::pool`); this file only binds them.

use std::any::Any;
use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

use super::api::{def, getter};
use super::error::fault;
use super::machine::{
    by_value, gil_option, size, string, thread_body, MachineHandle, ProcessHandle,
};
use super::{current, session};
use crate::ids::ProcessId;
use crate::kernel::{Ctx, JobSize, Pool, PoolFuture, ProcessPoolOptions, StartMethod, TaskFailure};
use crate::Simulation;

/// A pool as a machine declares it.
#[derive(Clone, Debug)]
pub(crate) struct PoolDecl {
    name: String,
    /// The process whose threads submit to it.
    process: usize,
    max_workers: usize,
    /// `None`: a thread pool.
    processes: Option<ProcessPoolOptions>,
}

impl PoolDecl {
    /// Creates the pool in `sim`, whose processes by declaration index are
    /// `processes`.
    pub(crate) fn create(&self, sim: &mut Simulation, processes: &[ProcessId]) -> Pool {
        let process = processes[self.process];
        match self.processes {
            None => sim.thread_pool(process, &self.name, self.max_workers),
            Some(options) => sim.process_pool(process, &self.name, self.max_workers, options),
        }
    }
}

/// A script's handle to a pool of a declared machine.
#[derive(Clone, Debug)]
pub(crate) struct PoolH {
    machine: MachineHandle,
    index: usize,
    name: String,
}

/// A script's handle to a job's future.
#[derive(Clone, Debug)]
pub(crate) struct FutureH {
    machine: MachineHandle,
    future: PoolFuture,
}

/// The keys `process_pool(name, n, #{ ... })` accepts.
const PROCESS_POOL_KEYS: &str = "start_method, gil, switch_interval";
/// The keys `submit(name, #{ ... }, body)` accepts.
const SUBMIT_KEYS: &str = "bytes, result_bytes";

fn worker_count(n: i64, position: Position) -> Result<usize, Box<EvalAltResult>> {
    if (1..=65_536).contains(&n) {
        return Ok(n as usize);
    }
    Err(fault(
        format!("a pool has 1 to 65,536 workers, not {n}"),
        Some("CPython's default is min(32, cpus + 4) threads, or cpus processes"),
        position,
    ))
}

fn process_options(
    map: &Map,
    position: Position,
) -> Result<ProcessPoolOptions, Box<EvalAltResult>> {
    let mut gil = true;
    let mut interval = crate::model::python::gil::DEFAULT_SWITCH_INTERVAL;
    let mut start_method = StartMethod::Fork;
    for (key, value) in map {
        match key.as_str() {
            "gil" | "switch_interval" => gil_option(key, value, position, &mut gil, &mut interval)?,
            "start_method" => {
                let name = string("start_method", value, position)?;
                start_method = StartMethod::from_name(&name).ok_or_else(|| {
                    fault(
                        format!("no start method named \"{name}\""),
                        Some("the start methods are \"fork\" (2ms), \"forkserver\" (35ms) and \"spawn\" (75ms)"),
                        position,
                    )
                })?;
            }
            other => {
                return Err(fault(
                    format!("a process pool has no option `{other}`"),
                    Some(&format!("its options are: {PROCESS_POOL_KEYS}")),
                    position,
                ))
            }
        }
    }
    Ok(ProcessPoolOptions {
        start_method,
        gil: gil.then_some(interval),
    })
}

fn job_size(map: &Map, position: Position) -> Result<JobSize, Box<EvalAltResult>> {
    let mut job = JobSize::default();
    for (key, value) in map {
        match key.as_str() {
            "bytes" => job.bytes = size("bytes", value, position)?,
            "result_bytes" => job.result_bytes = size("result_bytes", value, position)?,
            other => {
                return Err(fault(
                    format!("submit has no option `{other}`"),
                    Some(&format!(
                        "its options are: {SUBMIT_KEYS} (what a process pool pickles each way)"
                    )),
                    position,
                ))
            }
        }
    }
    Ok(job)
}

fn declare(
    call: &NativeCallContext,
    machine: &MachineHandle,
    process: usize,
    name: &str,
    n: i64,
    processes: Option<ProcessPoolOptions>,
) -> Result<PoolH, Box<EvalAltResult>> {
    let max_workers = worker_count(n, call.call_position())?;
    let decl = PoolDecl {
        name: name.to_string(),
        process,
        max_workers,
        processes,
    };
    let index = machine.declare_pool(call, decl)?;
    Ok(PoolH {
        machine: machine.clone(),
        index,
        name: name.to_string(),
    })
}

impl PoolH {
    /// The kernel's pool, if its machine is the one running.
    fn pool(&self, call: &NativeCallContext) -> Result<Pool, Box<EvalAltResult>> {
        let pool = session::with(|s| match &s.running {
            Some(running) if running.same(&self.machine) => s.pools.get(self.index).cloned(),
            _ => None,
        });
        pool.ok_or_else(|| {
            fault(
                format!(
                    "pool '{}' belongs to {}, which is not the machine running now",
                    self.name,
                    self.machine.label()
                ),
                Some("submit to a pool from a thread of its own machine"),
                call.call_position(),
            )
        })
    }
}

impl FutureH {
    fn check(&self, call: &NativeCallContext) -> Result<(), Box<EvalAltResult>> {
        let same = session::with(|s| s.running.as_ref().is_some_and(|r| r.same(&self.machine)));
        if same {
            return Ok(());
        }
        Err(fault(
            format!(
                "this future is of a job of {}, which is not the machine running now",
                self.machine.label()
            ),
            Some("a future lives in its machine's run: ask for its result there"),
            call.call_position(),
        ))
    }
}

/// The error a failed job raises in whoever asks for its result.
fn raised(failure: &TaskFailure, position: Position) -> Box<EvalAltResult> {
    let at = match failure.error.position {
        Some((line, _)) => format!(" (line {line})"),
        None => String::new(),
    };
    fault(
        format!(
            "job '{}' failed: {}{at}",
            failure.task, failure.error.message
        ),
        Some("catch it with try { f.result() } catch (e) { ... }, or fix the job"),
        position,
    )
}

fn value(
    result: Result<Rc<dyn Any>, TaskFailure>,
    position: Position,
) -> Result<Dynamic, Box<EvalAltResult>> {
    match result {
        Ok(value) => Ok(value
            .downcast_ref::<Dynamic>()
            .cloned()
            .unwrap_or(Dynamic::UNIT)),
        Err(failure) => Err(raised(&failure, position)),
    }
}

fn submit(
    call: &NativeCallContext,
    pool: &PoolH,
    name: &str,
    size: JobSize,
    body: FnPtr,
) -> Result<FutureH, Box<EvalAltResult>> {
    let kernel_pool = pool.pool(call)?;
    let (engine, ast) = session::with(|s| (s.engine.clone(), s.ast.clone()));
    let body = Box::new(thread_body(
        engine,
        ast,
        by_value(body),
        call.call_position(),
    ));
    let future = current::operation(call, |ctx| {
        kernel_pool.submit_fallible(ctx, name, size, body)
    })?;
    Ok(FutureH {
        machine: pool.machine.clone(),
        future,
    })
}

fn map(
    call: &NativeCallContext,
    pool: &PoolH,
    name: &str,
    items: Array,
    body: FnPtr,
) -> Result<Array, Box<EvalAltResult>> {
    let body = by_value(body);
    let futures = items
        .into_iter()
        .map(|item| {
            let mut job = body.clone();
            job.add_curry(item);
            submit(call, pool, name, JobSize::default(), job)
        })
        .collect::<Result<Vec<_>, _>>()?;
    futures
        .iter()
        .map(|f| {
            let result = current::operation(call, |ctx| f.future.result(ctx))?;
            value(result, call.call_position())
        })
        .collect()
}

/// Awaits a job's future in a task (a misuse in a thread).
fn await_result(call: &NativeCallContext, f: &FutureH) -> Result<Dynamic, Box<EvalAltResult>> {
    f.check(call)?;
    let results = current::operation(call, |ctx: &Ctx<'_>| {
        let future = ctx.wrap_future(&f.future);
        ctx.await_tasks(vec![future])
    })?;
    let result = results.map(|mut values| values.remove(0));
    value(result, call.call_position())
}

fn run_in_pool(
    call: &NativeCallContext,
    pool: &PoolH,
    body: FnPtr,
) -> Result<super::event_loop::TaskH, Box<EvalAltResult>> {
    let kernel_pool = pool.pool(call)?;
    let (engine, ast) = session::with(|s| (s.engine.clone(), s.ast.clone()));
    let body = Box::new(thread_body(
        engine,
        ast,
        by_value(body),
        call.call_position(),
    ));
    let id = current::operation(call, |ctx| ctx.run_in_pool(&kernel_pool, body))?;
    Ok(super::event_loop::TaskH::new(id, "run_in_executor"))
}

/// Registers pools and futures.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<PoolH>("Pool");
    engine.register_type_with_name::<FutureH>("Future");
    def(
        engine,
        "thread_pool",
        &["self: Machine", "name: String", "workers: int", "Pool"],
        "A thread pool (ThreadPoolExecutor) of the default process: up to `workers` threads, started one per submit while none is idle (each costs thread_spawn), taking jobs from one FIFO queue.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, n: i64| {
            declare(&call, m, 0, name, n, None)
        },
    );
    def(
        engine,
        "thread_pool",
        &["self: Process", "name: String", "workers: int", "Pool"],
        "A thread pool of this process: its workers share the process's memory and GIL.",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str, n: i64| {
            let (machine, index) = p.parts();
            declare(&call, &machine, index, name, n, None)
        },
    );
    def(
        engine,
        "process_pool",
        &["self: Machine", "name: String", "workers: int", "Pool"],
        "A process pool (ProcessPoolExecutor) for the default process: `workers` processes with a GIL each, started with fork (all at the first submit); every job and result is pickled both ways (ipc_cost).",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, n: i64| {
            declare(&call, m, 0, name, n, Some(ProcessPoolOptions::default()))
        },
    );
    def(
        engine,
        "process_pool",
        &["self: Machine", "name: String", "workers: int", "options: Map", "Pool"],
        "A process pool with #{ start_method: \"fork\" | \"forkserver\" | \"spawn\", gil: true, switch_interval }; fork starts every worker at the first submit, the others one per submit while none is idle.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, n: i64, options: Map| {
            let options = process_options(&options, call.call_position())?;
            declare(&call, m, 0, name, n, Some(options))
        },
    );
    def(
        engine,
        "process_pool",
        &["self: Process", "name: String", "workers: int", "Pool"],
        "A process pool whose jobs this process's threads submit: `workers` processes with a GIL each, started with fork.",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str, n: i64| {
            let (machine, index) = p.parts();
            declare(&call, &machine, index, name, n, Some(ProcessPoolOptions::default()))
        },
    );
    def(
        engine,
        "process_pool",
        &[
            "self: Process",
            "name: String",
            "workers: int",
            "options: Map",
            "Pool",
        ],
        "A process pool whose jobs this process's threads submit.",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str, n: i64, options: Map| {
            let options = process_options(&options, call.call_position())?;
            let (machine, index) = p.parts();
            declare(&call, &machine, index, name, n, Some(options))
        },
    );
    def(
        engine,
        "submit",
        &["self: Pool", "name: String", "body: Fn", "Future"],
        "In a body: queues the job `body` (a closure `|| ...`) and returns its future; the body runs on a worker (a process pool's worker can touch only its own process's variables).",
        |call: NativeCallContext, pool: &mut PoolH, name: &str, body: FnPtr| {
            submit(&call, pool, name, JobSize::default(), body)
        },
    );
    def(
        engine,
        "submit",
        &["self: Pool", "name: String", "options: Map", "body: Fn", "Future"],
        "In a body: submit with #{ bytes, result_bytes }: the sizes a process pool pickles each way (ipc_byte_cost per byte on both sides).",
        |call: NativeCallContext, pool: &mut PoolH, name: &str, options: Map, body: FnPtr| {
            let size = job_size(&options, call.call_position())?;
            submit(&call, pool, name, size, body)
        },
    );
    def(
        engine,
        "map",
        &["self: Pool", "name: String", "items: Array", "body: Fn", "Array"],
        "In a body: Executor.map: submits `body(item)` for every item, then returns their values in the items' order (a failure is raised at its place).",
        |call: NativeCallContext, pool: &mut PoolH, name: &str, items: Array, body: FnPtr| {
            map(&call, pool, name, items, body)
        },
    );
    def(
        engine,
        "shutdown",
        &["self: Pool", "()"],
        "In a body: shutdown(wait=True): no new jobs; waits for the queue to drain and joins every worker. Pools left running are shut down at the end, as at interpreter exit.",
        |call: NativeCallContext, pool: &mut PoolH| {
            let kernel_pool = pool.pool(&call)?;
            current::operation(&call, |ctx| kernel_pool.shutdown(ctx))
        },
    );
    def(
        engine,
        "result",
        &["self: Future", "Dynamic"],
        "In a body: waits (state join) until the job ends and returns its value; a failure in the job is raised here. In a task it blocks the whole loop: use await_result.",
        |call: NativeCallContext, f: &mut FutureH| {
            f.check(&call)?;
            let result = current::operation(&call, |ctx| f.future.result(ctx))?;
            value(result, call.call_position())
        },
    );
    def(
        engine,
        "done",
        &["self: Future", "bool"],
        "In a body: whether the job has ended (no time).",
        |call: NativeCallContext, f: &mut FutureH| {
            f.check(&call)?;
            current::operation(&call, |ctx| f.future.done(ctx))
        },
    );
    def(
        engine,
        "await_result",
        &["self: Future", "Dynamic"],
        "Inside a task: awaits the job (asyncio.wrap_future) and returns its value; the loop runs other tasks meanwhile.",
        |call: NativeCallContext, f: FutureH| await_result(&call, &f),
    );
    def(
        engine,
        "run_in_executor",
        &["pool: Pool", "body: Fn", "Task"],
        "Inside a task: loop.run_in_executor(pool, f): runs `body` as a job of the pool (thread or process); await the returned task for its value.",
        |call: NativeCallContext, pool: PoolH, body: FnPtr| run_in_pool(&call, &pool, body),
    );
    def(
        engine,
        "run_in_executor",
        &["self: EventLoop", "pool: Pool", "body: Fn", "Task"],
        "Inside a task of this loop: runs `body` as a job of the pool; await the returned task for its value.",
        |call: NativeCallContext, _lp: super::event_loop::LoopH, pool: PoolH, body: FnPtr| {
            run_in_pool(&call, &pool, body)
        },
    );
    getter(
        engine,
        "name",
        &["self: Pool", "String"],
        "The pool's name.",
        |p: &mut PoolH| p.name.clone(),
    );
    getter(
        engine,
        "name",
        &["self: Future", "String"],
        "The name of the job.",
        |f: &mut FutureH| f.future.name(),
    );
}
