//! The event loop's thread: CPython's asyncio run loop as the body of an
//! ordinary kernel thread, each task a coroutine of its own nested in it.
//!
//! The loop is a library on top of the kernel, as asyncio is on top of the
//! OS: its thread waits in epoll, computes, and competes for CPUs and the
//! GIL like any thread. It resumes one task at a time; what a task asks is
//! either an `await` (the loop suspends the task and runs the next ready
//! one) or any other operation, which the loop performs itself on the
//! task's behalf, so a plain `sleep`, `io` or `lock` in a task blocks the
//! loop thread and every task with it, as it does in Python. The rules
//! (ready queue, timers, who wakes whom) are the state machine of
//! [`crate::model::python::event_loop`]; this module moves coroutines and
//! tells the kernel what to draw.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;

use corosensei::{Coroutine, CoroutineResult};

use super::context::{boxed_body, Body, Call, Ctx, Request, Response, SourceRef};
use super::stack::{red_zone_floor, PooledStack};
use super::stackless::{self, Step};
use crate::error::{BodyError, Misuse};
use crate::ids::{ResourceId, ThreadId};
use crate::model::io::{DeviceRef, EpollRef, PollKey, Pollable};
use crate::model::python::event_loop::{Awaiting, EventLoop, LoopStats, Phase, TaskId};
use crate::model::sync::Channel;
use crate::model::thread::{BlockReason, ThreadOptions, ThreadState};
use crate::time::{ns, us, Span, Time};

/// A task body as the loop stores it: its value is shared by every task
/// that awaits it.
pub(crate) type TaskBody = Box<dyn FnOnce(&Task<'_>) -> Result<Rc<dyn Any>, BodyError>>;

/// A stackless task's future (see [`super::AsyncTask`]).
pub(crate) type StacklessTaskFuture = Pin<Box<dyn std::future::Future<Output = TaskExit>>>;

/// What makes a stackless task's future once it has its id.
pub(crate) type StacklessTaskBody = Box<dyn FnOnce(super::AsyncTask) -> StacklessTaskFuture>;

/// A task's body before its first step.
pub(crate) enum TaskStart {
    /// A closure given a [`Task`], run on a coroutine of its own.
    Stackful(TaskBody),
    /// An `async` block given an [`super::AsyncTask`], polled by the loop.
    Stackless(StacklessTaskBody),
}

impl From<TaskBody> for TaskStart {
    fn from(body: TaskBody) -> TaskStart {
        TaskStart::Stackful(body)
    }
}

/// The value of a finished task, or why it failed.
pub type TaskResult = Result<Rc<dyn Any>, TaskFailure>;

/// How a task failed, for whoever awaits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFailure {
    /// The task that failed.
    pub task: String,
    /// Its error.
    pub error: BodyError,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task '{}' failed: {}", self.task, self.error.message)
    }
}

/// How an event loop behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopOptions {
    /// CPU time the loop thread spends switching from one task to another
    /// (resuming a coroutine through the loop's machinery): 1.5us for
    /// CPython 3.11.
    pub task_switch: Span,
    /// A task step that holds the loop this long or longer is reported, as
    /// asyncio's debug mode warns of slow callbacks (100ms).
    pub slow_callback: Span,
    /// Threads of the loop's default executor (`run_in_executor`); `None`:
    /// `min(32, cpus + 4)`, as CPython's `ThreadPoolExecutor`.
    pub executor_threads: Option<usize>,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            task_switch: us(1) + ns(500),
            slow_callback: crate::time::ms(100),
            executor_threads: None,
        }
    }
}

/// A task step that held its loop at least `slow_callback`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlowStep {
    /// The task's row.
    pub task: ThreadId,
    /// When the step began.
    pub start: Time,
    /// How long it held the loop.
    pub held: Span,
    /// The operation that held it longest (a blocking call or a compute),
    /// or the `await` the step ended at.
    pub origin: Option<crate::ids::OriginId>,
}

/// What a run keeps of an event loop: for the report and the chart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoopInfo {
    /// The loop's thread.
    pub thread: ThreadId,
    /// Its tasks' rows, in creation order.
    pub tasks: Vec<ThreadId>,
    /// Its counts.
    pub stats: LoopStatsInfo,
    /// Steps that held the loop at least the slow-callback threshold.
    pub slow: Vec<SlowStep>,
    /// The threshold.
    pub slow_callback: Span,
}

/// [`LoopStats`] as the trace stores it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoopStatsInfo {
    /// Tasks created.
    pub tasks: u64,
    /// Iterations of the loop.
    pub iterations: u64,
    /// Task steps run.
    pub steps: u64,
    /// Switches from one task to another.
    pub switches: u64,
    /// The longest a ready task waited to run.
    pub longest_ready_wait: Span,
    /// CPU time spent switching between tasks.
    pub switching: Span,
}

impl LoopStatsInfo {
    fn from(stats: LoopStats, task_switch: Span) -> Self {
        LoopStatsInfo {
            tasks: stats.tasks,
            iterations: stats.iterations,
            steps: stats.steps,
            switches: stats.switches,
            longest_ready_wait: stats.longest_ready_wait,
            switching: Span(task_switch.as_nanos().saturating_mul(stats.switches)),
        }
    }
}

/// What a task asks of its loop.
pub(crate) enum Await {
    Sleep(Span),
    Yield,
    Io(DeviceRef, u64),
    Tasks(Vec<TaskId>),
    Readable(ResourceId),
    Writable(ResourceId),
    Start(String, TaskStart),
    Executor(Body),
    /// Await a pool job's future (`asyncio.wrap_future`).
    Future(super::pool::PoolFuture),
    /// `loop.run_in_executor(pool, f)`: submit to the pool, then wrap.
    Pool(super::pool::Pool, Body),
}

impl Await {
    /// The script function that asks this.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Await::Sleep(_) => "await_sleep",
            Await::Yield => "await_yield",
            Await::Io(..) => "await_io",
            Await::Tasks(_) => "await_task",
            Await::Readable(_) => "await_recv",
            Await::Writable(_) => "await_send",
            Await::Start(..) => "start_task",
            Await::Executor(_) | Await::Pool(..) => "run_in_executor",
            Await::Future(_) => "await_result",
        }
    }
}

/// A loop declared in a simulation, as the simulation keeps it until the
/// run and the loop's thread after.
pub(crate) struct LoopSeed {
    pub(crate) tasks: Vec<(String, TaskStart)>,
    /// Filled by the loop as it runs: read back into the trace.
    pub(crate) info: Option<LoopInfo>,
}

/// An event loop declared in a simulation: add tasks with
/// [`crate::Simulation::add_task`].
#[derive(Clone)]
pub struct EventLoopRef {
    pub(crate) thread: ThreadId,
    pub(crate) seed: Rc<RefCell<LoopSeed>>,
}

impl fmt::Debug for EventLoopRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventLoopRef({})", self.thread)
    }
}

impl EventLoopRef {
    /// The loop's thread.
    pub fn thread(&self) -> ThreadId {
        self.thread
    }
}

/// A task of a loop; [`Task::await_task`] waits for it and returns its value.
pub struct TaskHandle<T> {
    task: TaskId,
    _value: PhantomData<fn() -> T>,
}

impl<T> TaskHandle<T> {
    /// The handle of a task by its id (tasks are numbered in creation
    /// order, from 0, per loop). The value type is the caller's word.
    pub fn from_id(task: TaskId) -> Self {
        Self::new(task)
    }

    pub(crate) fn new(task: TaskId) -> Self {
        TaskHandle {
            task,
            _value: PhantomData,
        }
    }

    /// The task, by its index in its loop.
    pub fn id(&self) -> TaskId {
        self.task
    }
}

impl<T> Clone for TaskHandle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TaskHandle<T> {}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskHandle({})", self.task.0)
    }
}

/// What a task body receives: every operation of a thread (through
/// `Deref` to [`Ctx`]; they run on the loop thread and block it, as plain
/// calls do in a coroutine), and the awaits, which suspend only this task.
pub struct Task<'a> {
    ctx: Ctx<'a>,
    id: TaskId,
}

impl<'a> Deref for Task<'a> {
    type Target = Ctx<'a>;
    fn deref(&self) -> &Ctx<'a> {
        &self.ctx
    }
}

impl fmt::Debug for Task<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Task({})", self.id.0)
    }
}

impl Task<'_> {
    /// This task.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The context its operations go through (for script bindings).
    pub fn ctx(&self) -> &Ctx<'_> {
        &self.ctx
    }

    /// `await asyncio.sleep(d)`: the loop runs other tasks meanwhile.
    #[track_caller]
    pub fn await_sleep(&self, d: Span) {
        self.ctx.await_sleep(d);
    }

    /// `await asyncio.sleep(0)`: lets every other ready task take a step.
    #[track_caller]
    pub fn await_yield(&self) {
        self.ctx.await_yield();
    }

    /// Submits `bytes` to `device` and awaits the completion (a socket or
    /// file read through the loop's selector).
    #[track_caller]
    pub fn await_io(&self, device: DeviceRef, bytes: u64) {
        self.ctx.await_io(device, bytes);
    }

    /// Starts a task on this loop (`asyncio.create_task`): it runs once this
    /// one awaits.
    #[track_caller]
    pub fn start_task<T: Clone + 'static>(
        &self,
        name: &str,
        body: impl FnOnce(&Task<'_>) -> T + 'static,
    ) -> TaskHandle<T> {
        TaskHandle::new(self.start_fallible(name, boxed_task(body)))
    }

    /// Starts a task whose body may fail; for script bindings.
    #[track_caller]
    pub fn start_fallible(&self, name: &str, body: TaskBody) -> TaskId {
        self.ctx.start_task(name, body)
    }

    /// Awaits a task and returns its value.
    ///
    /// # Panics
    /// If the task failed (only script bodies can).
    #[track_caller]
    pub fn await_task<T: Clone + 'static>(&self, task: TaskHandle<T>) -> T {
        task_value(self.gather_any(&[task.task]))
    }

    /// Awaits every task of `tasks` (`asyncio.gather`): their values in the
    /// order given, or the first failure, as soon as it happens.
    #[track_caller]
    pub fn gather_any(&self, tasks: &[TaskId]) -> TaskResults {
        self.ctx.await_tasks(tasks.to_vec())
    }

    /// Awaits a value from `channel` (an `asyncio.Queue.get`): the task waits
    /// until the channel holds one, then takes it.
    #[track_caller]
    pub fn await_recv<T: 'static>(&self, channel: Channel<T>) -> T {
        self.ctx.await_readable(channel.id());
        self.ctx.recv(channel)
    }

    /// Awaits room in `channel`, then sends `value`.
    #[track_caller]
    pub fn await_send<T: 'static>(&self, channel: Channel<T>, value: T) {
        self.ctx.await_writable(channel.id());
        self.ctx.send(channel, value);
    }

    /// `loop.run_in_executor(None, f)`: runs `body` on a thread of the loop's
    /// default executor; the returned handle is awaited like a task.
    #[track_caller]
    pub fn run_in_executor<T: Clone + 'static>(
        &self,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> TaskHandle<T> {
        let body = boxed_body(body);
        TaskHandle::new(self.executor_fallible(body))
    }

    /// [`Task::run_in_executor`] with a body that may fail.
    #[track_caller]
    pub fn executor_fallible(&self, body: Body) -> TaskId {
        self.ctx.run_in_executor(body)
    }

    /// `loop.run_in_executor(pool, f)`: runs `body` as a job of `pool` (a
    /// thread or process pool); the returned handle is awaited like a task.
    #[track_caller]
    pub fn run_in_pool<T: Clone + 'static>(
        &self,
        pool: &super::pool::Pool,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> TaskHandle<T> {
        let body = boxed_body(body);
        TaskHandle::new(self.ctx.run_in_pool(pool, body))
    }

    /// A pool job's future as a loop future (`asyncio.wrap_future`), to
    /// await like a task: the task waits, the loop runs others meanwhile.
    #[track_caller]
    pub fn wrap_future(&self, future: &super::pool::PoolFuture) -> TaskId {
        self.ctx.wrap_future(future)
    }
}

/// The awaits as plain context calls: [`Task`]'s methods and the script
/// bindings use them. From a thread they stop the run with a misuse.
impl Ctx<'_> {
    #[track_caller]
    fn ask_loop(&self, what: Await) -> Response {
        self.call_boxed(Request::Await(Box::new(what)), Location::caller())
    }

    /// See [`Task::await_sleep`].
    #[track_caller]
    pub(crate) fn await_sleep(&self, d: Span) {
        self.call_boxed(Request::AwaitSleep(d), Location::caller());
    }

    /// See [`Task::await_yield`].
    #[track_caller]
    pub(crate) fn await_yield(&self) {
        self.ask_loop(Await::Yield);
    }

    /// See [`Task::await_io`].
    #[track_caller]
    pub(crate) fn await_io(&self, device: DeviceRef, bytes: u64) {
        self.call_boxed(Request::AwaitIo(device.0, bytes), Location::caller());
    }

    /// Awaits until `channel` holds a value.
    #[track_caller]
    pub(crate) fn await_readable(&self, channel: ResourceId) {
        self.ask_loop(Await::Readable(channel));
    }

    /// Awaits until `channel` has room.
    #[track_caller]
    pub(crate) fn await_writable(&self, channel: ResourceId) {
        self.ask_loop(Await::Writable(channel));
    }

    /// See [`Task::gather_any`].
    #[track_caller]
    pub(crate) fn await_tasks(&self, tasks: Vec<TaskId>) -> TaskResults {
        task_results(self.ask_loop(Await::Tasks(tasks)))
    }

    /// See [`Task::start_fallible`].
    #[track_caller]
    pub(crate) fn start_task(&self, name: &str, body: TaskBody) -> TaskId {
        match self.ask_loop(Await::Start(name.to_string(), body.into())) {
            Response::Int(task) => TaskId(task as u32),
            _ => unreachable!("the loop answers a start with the task"),
        }
    }

    /// See [`Task::run_in_pool`].
    #[track_caller]
    pub(crate) fn run_in_pool(&self, pool: &super::pool::Pool, body: Body) -> TaskId {
        match self.ask_loop(Await::Pool(pool.clone(), body)) {
            Response::Int(task) => TaskId(task as u32),
            _ => unreachable!("the loop answers a submit with the future"),
        }
    }

    /// See [`Task::wrap_future`].
    #[track_caller]
    pub(crate) fn wrap_future(&self, future: &super::pool::PoolFuture) -> TaskId {
        match self.ask_loop(Await::Future(future.clone())) {
            Response::Int(task) => TaskId(task as u32),
            _ => unreachable!("the loop answers a wrap with the future"),
        }
    }

    /// See [`Task::executor_fallible`].
    #[track_caller]
    pub(crate) fn run_in_executor(&self, body: Body) -> TaskId {
        match self.ask_loop(Await::Executor(body)) {
            Response::Int(task) => TaskId(task as u32),
            _ => unreachable!("the loop answers a submit with the future"),
        }
    }
}

/// The values of awaited tasks in order, or the first failure.
pub type TaskResults = Result<Vec<Rc<dyn Any>>, TaskFailure>;

/// The loop's answer to an await of tasks.
pub(crate) fn task_results(response: Response) -> TaskResults {
    match response {
        Response::Value(results) => *results
            .downcast::<TaskResults>()
            .expect("the loop answers an await with results"),
        _ => unreachable!("the loop answers an await with results"),
    }
}

/// The value of the one task awaited.
///
/// # Panics
/// If the task failed.
pub(crate) fn task_value<T: Clone + 'static>(results: TaskResults) -> T {
    match results {
        Ok(values) => values[0]
            .downcast_ref::<T>()
            .expect("a task handle has its body's type")
            .clone(),
        Err(failure) => panic!("{failure}"),
    }
}

/// Wraps a typed task body into the loop's form.
pub(crate) fn boxed_task<T: Clone + 'static>(
    body: impl FnOnce(&Task<'_>) -> T + 'static,
) -> TaskBody {
    Box::new(move |task: &Task<'_>| Ok(Rc::new(body(task)) as Rc<dyn Any>))
}

/// How a task's body ended.
pub(crate) type TaskExit = Result<Rc<dyn Any>, BodyError>;
type TaskCoro = Coroutine<Response, Call, TaskExit, PooledStack>;

/// One task or executor future, as the loop thread holds it.
struct Slot {
    name: String,
    /// The task's row on the chart; futures have none.
    row: Option<ThreadId>,
    coroutine: Option<TaskCoro>,
    /// A stackless task's future, once started.
    future: Option<StacklessTaskFuture>,
    body: Option<TaskStart>,
    /// The answer to give at the next resume.
    pending: Option<Response>,
    /// The tasks it awaits: their results are the answer at the next resume.
    awaits: Option<Vec<TaskId>>,
    result: Option<TaskResult>,
    /// Whether anything awaited it (a failure nobody retrieves fails the run).
    retrieved: bool,
}

/// An executor job: the future it completes and the work.
type Job = Option<(TaskId, Body)>;
pub(crate) type Done = (TaskId, Result<Rc<dyn Any>, BodyError>);

/// The loop's default executor: worker threads started on demand.
struct Executor {
    jobs: Channel<Job>,
    done: Channel<Done>,
    max: usize,
    workers: Vec<ThreadId>,
    busy: usize,
    watching: bool,
}

/// The channels a loop's executor uses, declared with the loop.
pub(crate) struct ExecutorChannels {
    pub(crate) jobs: Channel<Job>,
    pub(crate) done: Channel<Done>,
}

/// Creates the channels of a loop's executor.
pub(crate) fn executor_channels(sim: &mut super::Simulation, name: &str) -> ExecutorChannels {
    let jobs = sim.channel(&format!("{name}.executor"), 1 << 30);
    let done = sim.channel(&format!("{name}.done"), 1 << 30);
    sim.mark_internal(jobs.id());
    sim.mark_internal(done.id());
    ExecutorChannels { jobs, done }
}

/// The loop thread's state while it runs.
struct Driver<'c, 'a> {
    ctx: &'c Ctx<'a>,
    seed: Rc<RefCell<LoopSeed>>,
    lp: EventLoop,
    slots: Vec<Slot>,
    epoll: Option<EpollRef>,
    /// Keys in the epoll set.
    watching: usize,
    /// The task awaiting each request, by request id.
    io: Vec<Option<TaskId>>,
    channels: BTreeMap<PollKey, VecDeque<TaskId>>,
    executor: Executor,
    options: LoopOptions,
    name: String,
    now: Time,
    /// Scratch: the tasks whose timers an iteration found due.
    woken: Vec<(TaskId, Time)>,
    /// Where task rows' states go, for the kernel to record.
    log: super::engine::TaskLog,
}

/// The body of a loop's thread.
pub(crate) fn loop_body(
    seed: Rc<RefCell<LoopSeed>>,
    name: String,
    options: LoopOptions,
    cpus: usize,
    channels: ExecutorChannels,
    log: super::engine::TaskLog,
) -> Body {
    Box::new(move |ctx: &Ctx<'_>| {
        let max = options
            .executor_threads
            .unwrap_or_else(|| (cpus + 4).min(32))
            .max(1);
        let driver = Driver {
            ctx,
            seed: seed.clone(),
            lp: EventLoop::new(),
            slots: Vec::new(),
            epoll: None,
            watching: 0,
            io: Vec::new(),
            channels: BTreeMap::new(),
            executor: Executor {
                jobs: channels.jobs,
                done: channels.done,
                max,
                workers: Vec::new(),
                busy: 0,
                watching: false,
            },
            options,
            name,
            now: Time::ZERO,
            woken: Vec::new(),
            log,
        };
        seed.borrow_mut().info = Some(LoopInfo {
            thread: ctx.thread(),
            tasks: Vec::new(),
            stats: LoopStatsInfo::default(),
            slow: Vec::new(),
            slow_callback: options.slow_callback,
        });
        driver.run().map(|()| Box::new(()) as Box<dyn Any>)
    })
}

/// Whether a request can take simulated time: the loop reads the clock
/// after it, to find what held the loop.
fn takes_time(request: &Request) -> bool {
    !matches!(
        request,
        Request::Now
            | Request::Load(_)
            | Request::Store(..)
            | Request::FetchAdd(..)
            | Request::CompareExchange(_)
            | Request::Print(_)
            | Request::PrintAs(..)
            | Request::IoReady(_)
            | Request::EpollLen(_)
    )
}

impl Driver<'_, '_> {
    fn run(mut self) -> Result<(), BodyError> {
        let seeds = std::mem::take(&mut self.seed.borrow_mut().tasks);
        for (name, body) in seeds {
            self.spawn(name, body, None);
        }
        let result = self.run_loop();
        self.publish();
        result?;
        self.shutdown_executor();
        self.publish();
        Ok(())
    }

    /// What the simulation reads back into the trace.
    fn info(&self) -> std::cell::RefMut<'_, LoopInfo> {
        std::cell::RefMut::map(self.seed.borrow_mut(), |seed| {
            seed.info.as_mut().expect("the loop's info")
        })
    }

    /// Keeps the loop's figures where the simulation reads them back, before
    /// the loop waits (a run may end while it does).
    fn publish(&mut self) {
        let stats = LoopStatsInfo::from(self.lp.stats, self.options.task_switch);
        self.info().stats = stats;
    }

    fn run_loop(&mut self) -> Result<(), BodyError> {
        while self.lp.unfinished() > 0 {
            self.select()?;
            let mut woken = std::mem::take(&mut self.woken);
            let n = self.lp.begin_iteration(self.now, &mut woken);
            // A timer's task is ready from its deadline, even when the loop
            // only gets to it later (a task held the loop meanwhile).
            for &(task, deadline) in &woken {
                if let Some(row) = self.slots[task.index()].row {
                    self.log_state(row, deadline, ThreadState::Ready, None);
                }
            }
            woken.clear();
            self.woken = woken;
            for _ in 0..n {
                let (task, switch) = self.lp.next(self.now).expect("a ready task");
                self.step(task, switch)?;
            }
        }
        if let Some(failure) = self
            .slots
            .iter()
            .find(|s| !s.retrieved && matches!(s.result, Some(Err(_))))
        {
            let Some(Err(failure)) = &failure.result else {
                unreachable!()
            };
            return Err(BodyError {
                message: format!("{failure} (an exception nobody awaited)"),
                position: failure.error.position,
            });
        }
        Ok(())
    }

    /// Waits in epoll as `_run_once` does: not at all when a task is ready,
    /// until the earliest timer otherwise.
    fn select(&mut self) -> Result<(), BodyError> {
        let timeout = self.lp.timeout(self.now);
        if timeout == Some(Span::ZERO) && self.watching == 0 {
            return Ok(());
        }
        if timeout.is_none() && self.watching == 0 {
            // Nothing can wake any task: the loop hangs, as asyncio's would.
            self.publish();
            self.park();
            return Ok(());
        }
        if timeout != Some(Span::ZERO) {
            self.publish();
        }
        let epoll = self.epoll();
        let ready = self.ctx.epoll_wait(epoll, timeout);
        self.now = self.clock();
        for key in ready {
            self.watching -= 1;
            match key {
                Pollable::Io(handle) => {
                    let waiter = self.io.get_mut(handle.id.index()).and_then(Option::take);
                    if let Some(task) = waiter {
                        // The kernel drew it ready when the request completed.
                        self.lp.wake(task, self.now);
                    }
                }
                Pollable::Readable(channel) if channel == self.executor.done.id() => {
                    self.executor.watching = false;
                    self.collect_executor();
                }
                Pollable::Readable(channel) | Pollable::Writable(channel) => {
                    let key = key.key();
                    if let Some(task) = self.channels.get_mut(&key).and_then(|q| q.pop_front()) {
                        self.lp.wake(task, self.now);
                        self.record(task, ThreadState::Ready, None);
                    }
                    if self.channels.get(&key).is_some_and(|q| !q.is_empty()) {
                        self.watch(key, None);
                    } else {
                        self.channels.remove(&key);
                    }
                    let _ = channel;
                }
            }
        }
        Ok(())
    }

    /// One step of `task`: resume it until it awaits or ends.
    fn step(&mut self, task: TaskId, switch: bool) -> Result<(), BodyError> {
        if switch && !self.options.task_switch.is_zero() {
            self.record(task, ThreadState::Switch, None);
            self.now = self.ctx.loop_compute(self.options.task_switch);
        }
        self.record(task, ThreadState::Running, None);
        let start = self.now;
        let slot = &mut self.slots[task.index()];
        let mut response = match slot.awaits.take() {
            Some(targets) => self.results(&targets),
            None => slot.pending.take().unwrap_or(Response::Resume),
        };
        let mut longest: (Span, Option<SourceRef>) = (Span::ZERO, None);
        loop {
            let Some(result) = self.resume(task, response) else {
                return Ok(());
            };
            match result {
                CoroutineResult::Yield(call) => {
                    let origin = call.origin;
                    let (what, request) = match call.request {
                        Request::Await(what) => (Some(*what), None),
                        Request::AwaitSleep(d) => (Some(Await::Sleep(d)), None),
                        Request::AwaitIo(device, bytes) => {
                            (Some(Await::Io(DeviceRef(device), bytes)), None)
                        }
                        request => (None, Some(request)),
                    };
                    if let Some(what) = what {
                        match self.await_(task, what, origin) {
                            Some(answer) => {
                                response = answer;
                                continue;
                            }
                            None => {
                                let held = self.now.since(start);
                                if held >= self.options.slow_callback {
                                    self.slow(task, start, held, longest.1.or(Some(origin)));
                                }
                                return Ok(());
                            }
                        }
                    }
                    let request = request.expect("not an await");
                    let call = match (request, self.slots[task.index()].row) {
                        (Request::Print(text), Some(row)) => Call {
                            request: Request::PrintAs(row, text),
                            origin,
                        },
                        (request, _) => Call { request, origin },
                    };
                    let timed = takes_time(&call.request);
                    let before = self.now;
                    response = self.ctx.forward(call);
                    if timed {
                        self.now = self.clock();
                        let took = self.now.since(before);
                        if took > longest.0 {
                            longest = (took, Some(origin));
                        }
                    }
                }
                CoroutineResult::Return(result) => {
                    let held = self.now.since(start);
                    if held >= self.options.slow_callback {
                        self.slow(task, start, held, longest.1);
                    }
                    self.finish(task, result);
                    return Ok(());
                }
            }
        }
    }

    /// Resumes a task's coroutine, creating it on its first step. `None`
    /// when no stack could be had (the run then stops with the error).
    fn resume(
        &mut self,
        task: TaskId,
        response: Response,
    ) -> Option<CoroutineResult<Call, TaskExit>> {
        let slot = &mut self.slots[task.index()];
        if slot.coroutine.is_none() && slot.future.is_none() {
            let body = match slot.body.take().expect("a task body to start") {
                TaskStart::Stackful(body) => body,
                TaskStart::Stackless(body) => {
                    let thread = self.ctx.thread();
                    slot.future = Some(body(super::AsyncTask::new(thread, task)));
                    return Some(self.step_stackless(task, None));
                }
            };
            let stack_size = self.ctx.stack_size();
            let stack = match PooledStack::take(stack_size) {
                Ok(stack) => stack,
                Err(e) => {
                    self.ctx.fault(Misuse::TaskStack(e.to_string()));
                    return None;
                }
            };
            let red_zone = red_zone_floor(&stack);
            let bottom = stack.bottom();
            let thread = self.ctx.thread();
            slot.coroutine = Some(Coroutine::with_stack(
                stack,
                move |yielder, _first: Response| {
                    let ctx = Ctx::new(yielder, thread, red_zone, bottom, stack_size);
                    let task = Task { ctx, id: task };
                    match catch_unwind(AssertUnwindSafe(|| body(&task))) {
                        Ok(result) => result,
                        Err(payload) => Err(BodyError {
                            message: format!(
                                "panicked: {}",
                                super::engine::panic_message(payload.as_ref())
                            ),
                            position: None,
                        }),
                    }
                },
            ));
        }
        if slot.future.is_some() {
            return Some(self.step_stackless(task, Some(response)));
        }
        let coroutine = slot.coroutine.as_mut().expect("a coroutine");
        let result = coroutine.resume(response);
        if matches!(result, CoroutineResult::Return(_)) {
            let coroutine = slot.coroutine.take().expect("a coroutine");
            drop(coroutine.into_stack());
        }
        Some(result)
    }

    /// Polls a stackless task's future with `response`: its next call, or
    /// how it ended.
    fn step_stackless(
        &mut self,
        task: TaskId,
        response: Option<Response>,
    ) -> CoroutineResult<Call, TaskExit> {
        let slot = &mut self.slots[task.index()];
        let future = slot.future.as_mut().expect("a started stackless task");
        let mut answer = response;
        let result = match stackless::step(future, &mut answer) {
            Step::Call(call) => return CoroutineResult::Yield(call),
            Step::Done(exit) => exit,
            Step::Misused(why) => Err(stackless::misuse(why)),
            Step::Panicked(message) => Err(BodyError {
                message: format!("panicked: {message}"),
                position: None,
            }),
        };
        slot.future = None;
        CoroutineResult::Return(result)
    }

    /// Handles an await of the running task: `Some(answer)` when it goes on
    /// at once, `None` when it is suspended.
    fn await_(&mut self, task: TaskId, what: Await, origin: SourceRef) -> Option<Response> {
        match what {
            Await::Sleep(d) => {
                let deadline = self.now + d;
                self.lp.sleep(task, self.now, deadline);
                let state = if deadline <= self.now {
                    ThreadState::Ready
                } else {
                    ThreadState::Blocked(BlockReason::Sleep)
                };
                self.record(task, state, Some(origin));
            }
            Await::Yield => {
                self.lp.yield_now(task, self.now);
                self.record(task, ThreadState::Ready, Some(origin));
            }
            Await::Io(device, bytes) => {
                let epoll = self.epoll();
                let row = self.slots[task.index()].row;
                let id = self.ctx.submit_polled(device, bytes, epoll, row, origin);
                if self.io.len() <= id.index() {
                    self.io.resize(id.index() + 1, None);
                }
                self.io[id.index()] = Some(task);
                self.watching += 1;
                self.lp.wait(task, Awaiting::Io(device.0));
                self.record(
                    task,
                    ThreadState::Blocked(BlockReason::Io(device.0)),
                    Some(origin),
                );
            }
            Await::Tasks(targets) => {
                if let Some(missing) = targets.iter().find(|t| t.index() >= self.slots.len()) {
                    let message = format!("task {} does not belong to this loop", missing.0);
                    self.ctx.fault(Misuse::Task(message));
                    return Some(Response::Resume);
                }
                for &target in &targets {
                    self.slots[target.index()].retrieved = true;
                }
                if !self.lp.await_tasks(task, &targets) {
                    return Some(self.results(&targets));
                }
                let first = targets
                    .iter()
                    .copied()
                    .find(|&t| !matches!(self.lp.phase(t), Phase::Done { .. }))
                    .expect("a task still running");
                let reason =
                    BlockReason::Join(self.slots[first.index()].row.unwrap_or(self.ctx.thread()));
                self.record(task, ThreadState::Blocked(reason), Some(origin));
                if let Some(cycle) = self.lp.await_cycle(task) {
                    self.report_cycle(&cycle);
                }
                self.slots[task.index()].awaits = Some(targets);
            }
            Await::Readable(channel) => {
                self.await_channel(task, PollKey::Readable(channel), origin)
            }
            Await::Writable(channel) => {
                self.await_channel(task, PollKey::Writable(channel), origin)
            }
            Await::Start(name, body) => {
                let new = self.spawn(name, body, Some(origin));
                return Some(Response::Int(i64::from(new.0)));
            }
            Await::Executor(body) => {
                let future = self.submit(body, origin);
                return Some(Response::Int(i64::from(future.0)));
            }
            Await::Future(future) => {
                let future = self.wrap(future, origin);
                return Some(Response::Int(i64::from(future.0)));
            }
            Await::Pool(pool, body) => {
                let job = pool.submit_fallible(
                    self.ctx,
                    "run_in_executor",
                    super::pool::JobSize::default(),
                    body,
                );
                self.now = self.clock();
                let future = self.wrap(job, origin);
                return Some(Response::Int(i64::from(future.0)));
            }
        }
        None
    }

    fn await_channel(&mut self, task: TaskId, key: PollKey, origin: SourceRef) {
        let (PollKey::Readable(channel) | PollKey::Writable(channel)) = key else {
            unreachable!("a channel key")
        };
        let queue = self.channels.entry(key).or_default();
        queue.push_back(task);
        if queue.len() == 1 {
            self.watch(key, Some(origin));
        }
        self.lp.wait(task, Awaiting::Channel(channel));
        self.record(
            task,
            ThreadState::Blocked(BlockReason::Channel(channel)),
            Some(origin),
        );
    }

    /// The values of finished `targets`, or the first failure among them.
    fn results(&mut self, targets: &[TaskId]) -> Response {
        let results: TaskResults = match self.lp.first_failure(targets) {
            Some(failed) => match &self.slots[failed.index()].result {
                Some(Err(failure)) => Err(failure.clone()),
                _ => unreachable!("a failed task has its failure"),
            },
            None => Ok(targets
                .iter()
                .map(|t| match &self.slots[t.index()].result {
                    Some(Ok(value)) => value.clone(),
                    _ => unreachable!("an awaited task finished"),
                })
                .collect()),
        };
        Response::Value(Box::new(results))
    }

    /// A new task (or executor future, with no body), ready to run.
    fn spawn(&mut self, name: String, body: TaskStart, origin: Option<SourceRef>) -> TaskId {
        let id = self.lp.spawn(self.now);
        let row = self.ctx.task_row(&name, origin);
        self.info().tasks.push(row);
        self.slots.push(Slot {
            name,
            row: Some(row),
            coroutine: None,
            future: None,
            body: Some(body),
            pending: None,
            awaits: None,
            result: None,
            retrieved: false,
        });
        id
    }

    /// The task ended: its value (or failure) stays for whoever awaits it.
    fn finish(&mut self, task: TaskId, result: Result<Rc<dyn Any>, BodyError>) {
        let failed = result.is_err();
        let slot = &mut self.slots[task.index()];
        slot.result = Some(result.map_err(|error| TaskFailure {
            task: slot.name.clone(),
            error,
        }));
        self.lp.finish(task, failed, self.now);
        self.record(task, ThreadState::Done, None);
    }

    // ----- the default executor -----------------------------------------

    /// Hands `body` to the executor; a future (a task with no row) stands
    /// for its result.
    fn submit(&mut self, body: Body, origin: SourceRef) -> TaskId {
        let future = self.lp.spawn_future();
        self.slots.push(Slot {
            name: String::from("run_in_executor"),
            row: None,
            coroutine: None,
            future: None,
            body: None,
            pending: None,
            awaits: None,
            result: None,
            retrieved: false,
        });
        let e = &mut self.executor;
        if e.busy == e.workers.len() && e.workers.len() < e.max {
            let number = e.workers.len();
            let jobs = e.jobs;
            let done = e.done;
            let name = format!("{}-executor-{number}", self.name);
            let worker = self
                .ctx
                .start_fallible(&name, ThreadOptions::default(), move |ctx| {
                    while let Some((future, body)) = ctx.recv(jobs) {
                        let result = body(ctx).map(Rc::from);
                        ctx.send(done, (future, result));
                    }
                    Ok(Box::new(()) as Box<dyn Any>)
                });
            self.executor.workers.push(worker);
        }
        self.executor.busy += 1;
        self.ctx.send(self.executor.jobs, Some((future, body)));
        if !self.executor.watching {
            self.executor.watching = true;
            self.watch(PollKey::Readable(self.executor.done.id()), Some(origin));
        }
        self.now = self.clock();
        future
    }

    /// A loop future for a pool job's future (`asyncio.wrap_future`): done
    /// now if the job is, else when the pool sends its result to the loop.
    fn wrap(&mut self, job: super::pool::PoolFuture, origin: SourceRef) -> TaskId {
        let future = self.lp.spawn_future();
        self.slots.push(Slot {
            name: job.name(),
            row: None,
            coroutine: None,
            future: None,
            body: None,
            pending: None,
            awaits: None,
            result: None,
            retrieved: false,
        });
        match job.result_or_notify(self.executor.done, future) {
            Some(result) => self.complete_future(future, result),
            None => {
                self.executor.busy += 1;
                if !self.executor.watching {
                    self.executor.watching = true;
                    self.watch(PollKey::Readable(self.executor.done.id()), Some(origin));
                }
            }
        }
        future
    }

    /// A worker finished a job: its future completes.
    fn collect_executor(&mut self) {
        let (future, result) = self.ctx.recv(self.executor.done);
        self.executor.busy -= 1;
        self.now = self.clock();
        self.complete_future(future, result);
        if self.executor.busy > 0 {
            self.executor.watching = true;
            self.watch(PollKey::Readable(self.executor.done.id()), None);
        }
    }

    /// An executor's future completes with `result`.
    fn complete_future(&mut self, future: TaskId, result: Result<Rc<dyn Any>, BodyError>) {
        let failed = result.is_err();
        let slot = &mut self.slots[future.index()];
        slot.result = Some(result.map_err(|error| TaskFailure {
            task: slot.name.clone(),
            error,
        }));
        self.lp.finish(future, failed, self.now);
    }

    /// `shutdown_default_executor`: every worker stops and is joined.
    fn shutdown_executor(&mut self) {
        let workers = std::mem::take(&mut self.executor.workers);
        for _ in &workers {
            self.ctx.send(self.executor.jobs, None);
        }
        for worker in workers {
            let _ = self.ctx.join_any(worker);
        }
    }

    // ----- what the kernel is told --------------------------------------

    fn epoll(&mut self) -> EpollRef {
        if self.epoll.is_none() {
            self.epoll = Some(self.ctx.epoll());
        }
        self.epoll.expect("created")
    }

    /// Adds a channel's readiness to the loop's epoll (requests are added
    /// as they are submitted, by `submit_polled`).
    #[track_caller]
    fn watch(&mut self, key: PollKey, origin: Option<SourceRef>) {
        let epoll = self.epoll();
        let origin = origin.unwrap_or(SourceRef::Rust(Location::caller()));
        self.ctx.epoll_add_at(epoll, key, origin);
        self.watching += 1;
    }

    /// Reads the simulated clock without a scheduling point.
    fn clock(&self) -> Time {
        self.ctx.loop_clock()
    }

    /// Draws `task`'s row in `state` from now on.
    fn record(&mut self, task: TaskId, state: ThreadState, origin: Option<SourceRef>) {
        let Some(row) = self.slots[task.index()].row else {
            return;
        };
        if state == ThreadState::Done {
            // An end frees the task's memory: the kernel records it now.
            self.now = self.ctx.task_state(row, state, origin);
            return;
        }
        self.log_state(row, self.now, state, origin);
    }

    /// Logs a row's state at `time` (at or before now) for the kernel to
    /// record at the loop thread's next request.
    fn log_state(&self, row: ThreadId, time: Time, state: ThreadState, origin: Option<SourceRef>) {
        self.log.borrow_mut().push(super::engine::PendingState {
            time,
            row,
            state,
            origin,
        });
    }

    /// Nothing can wake a task: the loop thread waits forever in epoll.
    fn park(&mut self) {
        let epoll = self.epoll();
        self.ctx.park(epoll);
    }

    fn slow(&mut self, task: TaskId, start: Time, held: Span, origin: Option<SourceRef>) {
        let Some(row) = self.slots[task.index()].row else {
            return;
        };
        let origin = origin.map(|o| self.ctx.intern(o));
        self.info().slow.push(SlowStep {
            task: row,
            start,
            held,
            origin,
        });
    }

    /// An await cycle: a deadlock the kernel reports with the tasks' rows
    /// and the lines where each awaited the next.
    fn report_cycle(&mut self, cycle: &[TaskId]) {
        let rows: Vec<ThreadId> = cycle
            .iter()
            .filter_map(|t| self.slots[t.index()].row)
            .collect();
        self.ctx.await_cycle(rows);
    }
}
