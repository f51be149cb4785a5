//! asyncio in scripts: `m.add_event_loop(name)` (or `p.add_event_loop`)
//! declares a loop, `lp.add_task(name, || ...)` its tasks; inside a task
//! `await_sleep(d)`, `await_yield()`, `dev.await_io(b)`, `ch.await_recv()`,
//! `ch.await_send(x)`, `start_task(name, || ...)`, `await_task(t)`,
//! `gather([t1, t2])` and `lp.run_in_executor(|| ...)`. The semantics are
//! the kernel's (`kernel::event_loop`); this file only binds them.

use std::any::Any;
use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position, AST};

use super::api::{def, getter};
use super::duration::to_span;
use super::error::{fault, ScriptError};
use super::io::DeviceH;
use super::machine::{by_value, thread_body, MachineHandle, ProcessHandle};
use super::sync::ChannelH;
use super::{current, session};
use crate::error::BodyError;
use crate::kernel::{Ctx, LoopOptions, Task, TaskFailure, TaskResults};
use crate::model::python::event_loop::TaskId;
use crate::model::sync::Channel;

/// The keys `add_event_loop(name, #{ ... })` accepts.
const LOOP_KEYS: &str = "task_switch, slow_callback, executor_threads";

/// A script's handle to an event loop of a declared machine.
#[derive(Clone, Debug)]
pub(crate) struct LoopH {
    pub(crate) machine: MachineHandle,
    pub(crate) index: usize,
    pub(crate) name: String,
}

/// A script's handle to a task (or an executor job's future).
#[derive(Clone, Debug)]
pub(crate) struct TaskH {
    id: TaskId,
    name: String,
}

impl TaskH {
    /// A handle to the loop's task or future `id`.
    pub(crate) fn new(id: TaskId, name: &str) -> TaskH {
        TaskH {
            id,
            name: name.to_string(),
        }
    }
}

/// Reads `#{ task_switch, slow_callback, executor_threads }`.
fn loop_options(map: &Map, position: Position) -> Result<LoopOptions, Box<EvalAltResult>> {
    let mut options = LoopOptions::default();
    for (key, value) in map {
        match key.as_str() {
            "task_switch" => options.task_switch = to_span(value, "task_switch", position)?,
            "slow_callback" => options.slow_callback = to_span(value, "slow_callback", position)?,
            "executor_threads" => match value.as_int() {
                Ok(n) if (1..=1024).contains(&n) => options.executor_threads = Some(n as usize),
                _ => {
                    return Err(fault(
                        format!(
                            "executor_threads must be a whole number from 1 to 1024, not {value}"
                        ),
                        Some("e.g. m.add_event_loop(\"loop\", #{ executor_threads: 4 })"),
                        position,
                    ))
                }
            },
            other => {
                return Err(fault(
                    format!("an event loop has no option `{other}`"),
                    Some(&format!("its options are: {LOOP_KEYS}")),
                    position,
                ))
            }
        }
    }
    Ok(options)
}

/// The kernel body of a task whose body is the script closure `body`.
pub(crate) fn task_body(
    engine: Rc<Engine>,
    ast: Rc<AST>,
    body: FnPtr,
) -> impl FnOnce(&Task<'_>) -> Result<Rc<dyn Any>, BodyError> + 'static {
    move |task: &Task<'_>| {
        current::enter(task.ctx());
        let result = body.call::<Dynamic>(&engine, &ast, ());
        current::clear();
        match result {
            Ok(value) => Ok(Rc::new(value) as Rc<dyn Any>),
            Err(error) => {
                let failure = session::with(|s| {
                    let mut failure = ScriptError::from_eval(&error, &s.script, &s.source);
                    if failure.position.is_none() {
                        failure = failure.at(task.script_position(), &s.source);
                    }
                    failure
                });
                Err(BodyError {
                    message: failure.message,
                    position: failure.position,
                })
            }
        }
    }
}

/// The script error a failed awaited task raises in its awaiter.
fn raised(failure: &TaskFailure, position: Position) -> Box<EvalAltResult> {
    let at = match failure.error.position {
        Some((line, _)) => format!(" (line {line})"),
        None => String::new(),
    };
    fault(
        format!("{failure}{at}"),
        Some("catch it with try { ... } catch (e) { ... } around the await, or fix the task"),
        position,
    )
}

/// The values of awaited tasks, or the failure they raise.
fn values(results: TaskResults, position: Position) -> Result<Array, Box<EvalAltResult>> {
    match results {
        Ok(values) => Ok(values
            .iter()
            .map(|v| {
                v.downcast_ref::<Dynamic>()
                    .cloned()
                    .unwrap_or(Dynamic::UNIT)
            })
            .collect()),
        Err(failure) => Err(raised(&failure, position)),
    }
}

/// Runs an await of the current task (a misuse in a thread).
fn ask<R>(
    call: &NativeCallContext,
    f: impl FnOnce(&Ctx<'_>) -> R,
) -> Result<R, Box<EvalAltResult>> {
    current::operation(call, f)
}

fn gather_tasks(call: &NativeCallContext, tasks: &[TaskH]) -> Result<Array, Box<EvalAltResult>> {
    let ids: Vec<TaskId> = tasks.iter().map(|t| t.id).collect();
    let results = ask(call, |ctx| ctx.await_tasks(ids))?;
    values(results, call.call_position())
}

fn add_event_loop(
    call: &NativeCallContext,
    machine: &MachineHandle,
    process: usize,
    name: &str,
    options: &Map,
) -> Result<LoopH, Box<EvalAltResult>> {
    let options = loop_options(options, call.call_position())?;
    let index = machine.declare_loop(call, process, name, options)?;
    Ok(LoopH {
        machine: machine.clone(),
        index,
        name: name.to_string(),
    })
}

/// Registers loops, tasks and awaits.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<LoopH>("EventLoop");
    engine.register_type_with_name::<TaskH>("Task");
    def(
        engine,
        "add_event_loop",
        &["self: Machine", "name: String", "EventLoop"],
        "Adds an asyncio event loop to the default process: a thread that runs its tasks one at a time and waits in epoll when none is ready.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str| {
            add_event_loop(&call, m, 0, name, &Map::new())
        },
    );
    def(
        engine,
        "add_event_loop",
        &["self: Machine", "name: String", "options: Map", "EventLoop"],
        "Adds an event loop with #{ task_switch (1.5us), slow_callback (100ms), executor_threads (min(32, cpus + 4)) }.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, options: Map| {
            add_event_loop(&call, m, 0, name, &options)
        },
    );
    def(
        engine,
        "add_event_loop",
        &["self: Process", "name: String", "EventLoop"],
        "Adds an event loop to this process (it needs the process's GIL like any thread).",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str| {
            let (machine, index) = p.parts();
            add_event_loop(&call, &machine, index, name, &Map::new())
        },
    );
    def(
        engine,
        "add_event_loop",
        &["self: Process", "name: String", "options: Map", "EventLoop"],
        "Adds an event loop to this process with #{ task_switch, slow_callback, executor_threads }.",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str, options: Map| {
            let (machine, index) = p.parts();
            add_event_loop(&call, &machine, index, name, &options)
        },
    );
    def(
        engine,
        "add_task",
        &["self: EventLoop", "name: String", "body: Fn", "Task"],
        "Adds a task to the loop, ready when the loop starts (tasks start in the order added); `body` is a closure `|| { ... }`.",
        // The loop by value: a task's closure may capture the loop it is
        // added to (for lp.run_in_executor) without a borrow conflict.
        |call: NativeCallContext, lp: LoopH, name: &str, body: FnPtr| {
            let id = lp.machine.declare_task(&call, lp.index, name, by_value(body))?;
            Ok::<_, Box<EvalAltResult>>(TaskH {
                id,
                name: name.to_string(),
            })
        },
    );
    getter(
        engine,
        "name",
        &["self: EventLoop", "String"],
        "The loop's name (its thread's).",
        |lp: &mut LoopH| lp.name.clone(),
    );
    getter(
        engine,
        "name",
        &["self: Task", "String"],
        "The task's name.",
        |t: &mut TaskH| t.name.clone(),
    );
    def(
        engine,
        "await_sleep",
        &["d: Duration", "()"],
        "Inside a task: `await asyncio.sleep(d)`; the loop runs other tasks meanwhile.",
        |call: NativeCallContext, d: Dynamic| {
            let d = to_span(&d, "await_sleep", call.call_position())?;
            ask(&call, |ctx| ctx.await_sleep(d))
        },
    );
    def(
        engine,
        "await_yield",
        &["()"],
        "Inside a task: `await asyncio.sleep(0)`; every other ready task takes a step first.",
        |call: NativeCallContext| ask(&call, |ctx| ctx.await_yield()),
    );
    def(
        engine,
        "await_io",
        &["self: Device", "bytes: int", "()"],
        "Inside a task: submits `bytes` to the device and awaits the completion; the loop runs other tasks meanwhile.",
        |call: NativeCallContext, dev: &mut DeviceH, bytes: Dynamic| {
            let bytes = super::io::byte_count(&bytes, call.call_position())?;
            let device = dev.device(&call)?;
            ask(&call, |ctx| ctx.await_io(device, bytes))
        },
    );
    def(
        engine,
        "await_recv",
        &["self: Channel", "Dynamic"],
        "Inside a task: awaits a value from the channel (an asyncio.Queue.get); the loop runs other tasks meanwhile.",
        |call: NativeCallContext, ch: &mut ChannelH| {
            let id = ch.resource(&call)?;
            ask(&call, |ctx| {
                ctx.await_readable(id);
                ctx.recv(Channel::<Dynamic>::new(id))
            })
        },
    );
    def(
        engine,
        "await_send",
        &["self: Channel", "value: Dynamic", "()"],
        "Inside a task: awaits room in the channel, then sends the value.",
        |call: NativeCallContext, ch: &mut ChannelH, value: Dynamic| {
            let id = ch.resource(&call)?;
            let bytes = super::sync::pickled_size(&value);
            ask(&call, |ctx| {
                ctx.await_writable(id);
                ctx.send_sized(Channel::<Dynamic>::new(id), value, bytes)
            })
        },
    );
    def(
        engine,
        "start_task",
        &["name: String", "body: Fn", "Task"],
        "Inside a task: starts a task on the same loop (asyncio.create_task); it runs once this one awaits.",
        |call: NativeCallContext, name: &str, body: FnPtr| {
            let (engine, ast) = session::with(|s| (s.engine.clone(), s.ast.clone()));
            let body = Box::new(task_body(engine, ast, by_value(body)));
            let id = ask(&call, |ctx| ctx.start_task(name, body))?;
            Ok::<_, Box<EvalAltResult>>(TaskH {
                id,
                name: name.to_string(),
            })
        },
    );
    def(
        engine,
        "await_task",
        &["task: Task", "Dynamic"],
        "Inside a task: awaits the task and returns its value (a failure in it is raised here).",
        |call: NativeCallContext, t: TaskH| {
            let values = gather_tasks(&call, &[t])?;
            Ok::<_, Box<EvalAltResult>>(values.into_iter().next().unwrap_or(Dynamic::UNIT))
        },
    );
    def(
        engine,
        "gather",
        &["tasks: Array", "Array"],
        "Inside a task: awaits every task of the array (asyncio.gather); their values in the array's order, or the first failure, raised as soon as it happens.",
        |call: NativeCallContext, tasks: Array| {
            let tasks = tasks
                .into_iter()
                .map(|t| {
                    t.try_cast::<TaskH>().ok_or_else(|| {
                        fault(
                            "gather() takes an array of tasks",
                            Some("e.g. gather([start_task(\"a\", || 1), start_task(\"b\", || 2)])"),
                            call.call_position(),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            gather_tasks(&call, &tasks)
        },
    );
    def(
        engine,
        "run_in_executor",
        &["body: Fn", "Task"],
        "Inside a task: runs `body` on a thread of its loop's default executor (asyncio.to_thread); await the returned task for its value.",
        |call: NativeCallContext, body: FnPtr| {
            let (engine, ast) = session::with(|s| (s.engine.clone(), s.ast.clone()));
            let body = Box::new(thread_body(
                engine,
                ast,
                by_value(body),
                call.call_position(),
            ));
            let id = ask(&call, |ctx| ctx.run_in_executor(body))?;
            Ok::<_, Box<EvalAltResult>>(TaskH {
                id,
                name: "run_in_executor".to_string(),
            })
        },
    );
    def(
        engine,
        "run_in_executor",
        &["self: EventLoop", "body: Fn", "Task"],
        "Inside a task of this loop: runs `body` on a thread of the loop's default executor (a plain thread: blocking calls are fine there); await the returned task for its value.",
        |call: NativeCallContext, _lp: &mut LoopH, body: FnPtr| {
            let (engine, ast) = session::with(|s| (s.engine.clone(), s.ast.clone()));
            let body = Box::new(thread_body(
                engine,
                ast,
                by_value(body),
                call.call_position(),
            ));
            let id = ask(&call, |ctx| ctx.run_in_executor(body))?;
            Ok::<_, Box<EvalAltResult>>(TaskH {
                id,
                name: "run_in_executor".to_string(),
            })
        },
    );
}
