//! Executors: `concurrent.futures`' thread and process pools, as a library
//! on top of the kernel, as CPython builds them on top of threads, queues
//! and pipes.
//!
//! A pool is a FIFO queue (an internal channel) and workers that take jobs
//! from it. A submit creates the job's future (an internal event the worker
//! sets when the job ends), starts a worker when none is idle and the pool
//! is not full (the rule of [`crate::model::python::pool`]), and queues the
//! job. `future.result()` waits for the event, in state join.
//!
//! A process pool's workers are processes of their own: the queue and the
//! way back are pipes, so every job costs the submitter `ipc_cost` (plus
//! `ipc_byte_cost` per byte) to pickle it and the worker as much to
//! unpickle it, and every result the same from the worker to the pool's
//! manager thread in the submitting process (CPython's
//! `_ExecutorManagerThread`), which sets the future.
//!
//! Idle workers wait on the queue; when nothing else is left to happen,
//! the interpreter's exit stops them (`_python_exit`), so a script need not
//! shut its pools down. `shutdown()` does it explicitly: it waits for the
//! queue to drain and joins every worker.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

use std::panic::Location;

use super::context::{boxed_body, Body, Ctx, ProcessStart, StartMethod};
use super::event_loop::{Done, TaskFailure};
use super::stackless::{AsyncCtx, AsyncOp};
use crate::error::{BodyError, Misuse};
use crate::ids::ResourceId;
use crate::model::python::event_loop::TaskId;
use crate::model::python::pool::{starts_worker, JobRecord, PoolInfo, PoolKind};
use crate::model::sync::Channel;
use crate::model::thread::ThreadOptions;

/// A job's outcome: the body's value, or its error.
pub(crate) type JobResult = Result<Rc<dyn Any>, BodyError>;

/// A job in the queue; `None` tells a worker to stop.
pub(crate) type Job = Option<JobMsg>;
/// A result on its way to a process pool's manager; `None` stops it.
pub(crate) type Completion = Option<(Rc<FutureCell>, JobResult)>;

/// A job as the queue carries it.
pub(crate) struct JobMsg {
    future: Rc<FutureCell>,
    body: Body,
}

/// What a process pool's workers are started with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessPoolOptions {
    /// How each worker process starts (its spawn cost).
    pub start_method: StartMethod,
    /// The GIL of each worker process (its switch interval), if any.
    pub gil: Option<crate::time::Span>,
}

impl Default for ProcessPoolOptions {
    fn default() -> Self {
        ProcessPoolOptions {
            start_method: StartMethod::Fork,
            gil: Some(crate::time::ms(5)),
        }
    }
}

/// A pool's state while the run goes on.
pub(crate) struct PoolState {
    info: PoolInfo,
    jobs: Channel<Job>,
    results: Option<Channel<Completion>>,
    options: ProcessPoolOptions,
    /// CPython's `_idle_semaphore`: released when a worker is done with a
    /// job, taken by a submit that then starts no worker.
    idle: usize,
    shutdown: bool,
    /// The machine's `job_cost`: CPU per job on each side.
    job_cost: crate::time::Span,
    /// Per job: whether anyone asked for its result.
    retrieved: Vec<bool>,
    /// The jobs that failed, with their errors.
    errors: Vec<(usize, BodyError)>,
}

/// A thread or process pool declared in a simulation
/// ([`crate::Simulation::thread_pool`], [`crate::Simulation::process_pool`]).
#[derive(Clone)]
pub struct Pool {
    state: Rc<RefCell<PoolState>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pool({})", self.state.borrow().info.name)
    }
}

/// The shared state of a job's future.
pub(crate) struct FutureCell {
    /// The internal event the job's end sets.
    event: ResourceId,
    /// The job's index in its pool's record.
    job: usize,
    pool: Rc<RefCell<PoolState>>,
    result: RefCell<Option<JobResult>>,
    /// Event loops awaiting it: the loop's channel and its future there.
    callbacks: RefCell<Vec<(Channel<Done>, TaskId)>>,
}

impl FutureCell {
    /// Someone asked for the job's result.
    fn retrieve(&self) {
        self.pool.borrow_mut().retrieved[self.job] = true;
    }
}

/// A job's future, untyped (script bindings use it).
#[derive(Clone)]
pub struct PoolFuture {
    pub(crate) cell: Rc<FutureCell>,
}

impl fmt::Debug for PoolFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolFuture({})", self.cell.event)
    }
}

/// A job's future whose body returns `T`.
pub struct Future<T> {
    inner: PoolFuture,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: self.inner.clone(),
            _value: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: Clone + 'static> Future<T> {
    /// `future.result()`: waits (state join) until the job ends and returns
    /// its value, or how it failed.
    #[track_caller]
    pub fn result(&self, ctx: &Ctx<'_>) -> Result<T, TaskFailure> {
        self.inner.result(ctx).map(Self::typed)
    }

    /// The job's value as the `T` its body returned.
    fn typed(value: Rc<dyn Any>) -> T {
        value
            .downcast_ref::<T>()
            .expect("a Future<T> holds a T")
            .clone()
    }

    /// `future.done()`: whether the job has ended (no time).
    #[track_caller]
    pub fn done(&self, ctx: &Ctx<'_>) -> bool {
        self.inner.done(ctx)
    }

    /// The untyped future (to await it in a task).
    pub fn untyped(&self) -> &PoolFuture {
        &self.inner
    }

    /// [`Future::result`] from a stackless thread.
    #[track_caller]
    pub fn result_async(
        &self,
        ctx: AsyncCtx,
    ) -> impl std::future::Future<Output = Result<T, TaskFailure>> {
        let result = self.inner.result_async(ctx);
        async move { result.await.map(Self::typed) }
    }

    /// [`Future::done`] from a stackless thread.
    #[track_caller]
    pub fn done_async(&self, ctx: AsyncCtx) -> AsyncOp<bool> {
        self.inner.done_async(ctx)
    }
}

impl PoolFuture {
    /// Waits (state join) until the job ends; its value or its failure.
    #[track_caller]
    pub fn result(&self, ctx: &Ctx<'_>) -> Result<Rc<dyn Any>, TaskFailure> {
        self.cell.retrieve();
        ctx.future_wait(self.cell.event);
        self.settled()
    }

    /// Whether the job has ended (no time).
    #[track_caller]
    pub fn done(&self, ctx: &Ctx<'_>) -> bool {
        ctx.future_done(self.cell.event)
    }

    /// [`PoolFuture::result`] from a stackless thread.
    #[track_caller]
    pub fn result_async(
        &self,
        ctx: AsyncCtx,
    ) -> impl std::future::Future<Output = Result<Rc<dyn Any>, TaskFailure>> {
        let wait = ctx.future_wait_at(self.cell.event, Location::caller());
        let future = self.clone();
        async move {
            // Asked for when awaited, not when the future is made.
            future.cell.retrieve();
            wait.await;
            future.settled()
        }
    }

    /// [`PoolFuture::done`] from a stackless thread.
    #[track_caller]
    pub fn done_async(&self, ctx: AsyncCtx) -> AsyncOp<bool> {
        ctx.future_done_at(self.cell.event, Location::caller())
    }

    /// The result of a job that has ended.
    fn settled(&self) -> Result<Rc<dyn Any>, TaskFailure> {
        let result = self.cell.result.borrow().clone();
        match result {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(self.failure(error)),
            None => unreachable!("a set future holds its result"),
        }
    }

    /// The job's name.
    pub fn name(&self) -> String {
        let pool = self.cell.pool.borrow();
        pool.info.jobs[self.cell.job].name.clone()
    }

    fn failure(&self, error: BodyError) -> TaskFailure {
        TaskFailure {
            task: self.name(),
            error,
        }
    }

    /// Its result if it has one; else `callback` is sent it when it comes
    /// (an event loop awaiting it). Either way it counts as retrieved.
    pub(crate) fn result_or_notify(
        &self,
        channel: Channel<Done>,
        task: TaskId,
    ) -> Option<JobResult> {
        self.cell.retrieve();
        let result = self.cell.result.borrow().clone();
        if result.is_none() {
            self.cell.callbacks.borrow_mut().push((channel, task));
        }
        result
    }
}

/// How a job's bytes cross a process pool's pipes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobSize {
    /// Bytes of its pickled arguments.
    pub bytes: u64,
    /// Bytes of its pickled result.
    pub result_bytes: u64,
}

impl Pool {
    /// A pool declared in `process`'s simulation; `jobs` is its queue.
    pub(crate) fn new(
        info: PoolInfo,
        jobs: Channel<Job>,
        results: Option<Channel<Completion>>,
        options: ProcessPoolOptions,
        job_cost: crate::time::Span,
    ) -> Pool {
        Pool {
            state: Rc::new(RefCell::new(PoolState {
                info,
                jobs,
                results,
                options,
                idle: 0,
                shutdown: false,
                job_cost,
                retrieved: Vec::new(),
                errors: Vec::new(),
            })),
        }
    }

    /// The pool's name.
    pub fn name(&self) -> String {
        self.state.borrow().info.name.clone()
    }

    /// What the run keeps of it.
    pub(crate) fn info(&self) -> PoolInfo {
        self.state.borrow().info.clone()
    }

    /// The first job whose body failed and whose result nobody asked for:
    /// its record and error. Python would drop that exception silently; a
    /// simulation reports it, since it is a bug of the script.
    pub(crate) fn unretrieved_failure(&self) -> Option<(JobRecord, BodyError)> {
        let state = self.state.borrow();
        state.errors.iter().find_map(|(job, error)| {
            (!state.retrieved[*job]).then(|| (state.info.jobs[*job].clone(), error.clone()))
        })
    }

    /// `pool.submit(body)`: queues `body` and returns its future.
    #[track_caller]
    pub fn submit<T: Clone + 'static>(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> Future<T> {
        let body = boxed_body(body);
        Future {
            inner: self.submit_fallible(ctx, name, JobSize::default(), body),
            _value: PhantomData,
        }
    }

    /// `pool.submit` of a body that may fail, with the sizes a process pool
    /// pickles (script bindings use this).
    #[track_caller]
    pub fn submit_fallible(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        size: JobSize,
        body: Body,
    ) -> PoolFuture {
        let (pool, process, shutdown) = {
            let state = self.state.borrow();
            (state.info.name.clone(), state.info.process, state.shutdown)
        };
        if shutdown {
            ctx.fault(shut_down(&pool));
        }
        let event = ctx.new_future(&format!("{pool}:{name}"), &pool, process);
        let now = ctx.loop_clock();
        let future = self.new_job(name, size, event, now);
        self.adjust_workers(ctx);
        let cost = self.state.borrow().job_cost;
        if !cost.is_zero() {
            ctx.compute(cost);
        }
        let (jobs, bytes) = self.queue_for(size);
        let message = Some(JobMsg {
            future: future.clone(),
            body,
        });
        ctx.send_sized(jobs, message, bytes);
        PoolFuture { cell: future }
    }

    /// `pool.submit(body)` from a stackless thread: the same submit, each
    /// step awaited (the job's body and the pool's workers stay stackful).
    #[track_caller]
    pub fn submit_async<T: Clone + 'static>(
        &self,
        ctx: AsyncCtx,
        name: &str,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> impl std::future::Future<Output = Future<T>> {
        let at = Location::caller();
        let body = boxed_body(body);
        let (pool, name) = (self.clone(), name.to_string());
        async move {
            Future {
                inner: pool.submit_fallible_async(ctx, &name, body, at).await,
                _value: PhantomData,
            }
        }
    }

    /// [`Pool::submit_fallible`], awaited step by step.
    async fn submit_fallible_async(
        &self,
        ctx: AsyncCtx,
        name: &str,
        body: Body,
        at: &'static Location<'static>,
    ) -> PoolFuture {
        let size = JobSize::default();
        let (pool, process, shutdown) = {
            let state = self.state.borrow();
            (state.info.name.clone(), state.info.process, state.shutdown)
        };
        if shutdown {
            ctx.fault_at(shut_down(&pool), at).await;
        }
        let event = ctx
            .new_future_at(&format!("{pool}:{name}"), &pool, process, at)
            .await;
        let now = ctx.loop_clock_at(at).await;
        let future = self.new_job(name, size, event, now);
        for hire in self.plan_workers() {
            let thread = match self.hire_spec(hire) {
                HireSpec::Thread { name, body } => ctx.start_stackful_at(&name, body, at).await,
                HireSpec::Process { name, start, body } => {
                    ctx.start_stackful_process_at(&name, start, body, at)
                        .await
                        .main
                }
            };
            self.hired(hire, thread);
        }
        let cost = self.state.borrow().job_cost;
        if !cost.is_zero() {
            ctx.compute_at(cost, at).await;
        }
        let (jobs, bytes) = self.queue_for(size);
        let message = Some(JobMsg {
            future: future.clone(),
            body,
        });
        ctx.send_at(jobs, message, bytes, at).await;
        PoolFuture { cell: future }
    }

    /// Records a submitted job and makes its future.
    fn new_job(
        &self,
        name: &str,
        size: JobSize,
        event: ResourceId,
        now: crate::time::Time,
    ) -> Rc<FutureCell> {
        let job = {
            let mut state = self.state.borrow_mut();
            state.info.jobs.push(JobRecord {
                name: name.to_string(),
                submitted: now,
                started: None,
                ended: None,
                worker: None,
                bytes: size.bytes,
                result_bytes: size.result_bytes,
                failed: false,
            });
            state.retrieved.push(false);
            state.info.jobs.len() - 1
        };
        Rc::new(FutureCell {
            event,
            job,
            pool: self.state.clone(),
            result: RefCell::new(None),
            callbacks: RefCell::new(Vec::new()),
        })
    }

    /// The job queue and the bytes a job of `size` puts on it: a thread
    /// pool's queue carries the message itself, a process pool's pipe its
    /// pickled arguments.
    fn queue_for(&self, size: JobSize) -> (Channel<Job>, u64) {
        let state = self.state.borrow();
        let bytes = match state.info.kind {
            PoolKind::Threads => std::mem::size_of::<Job>() as u64,
            PoolKind::Processes { .. } => size.bytes,
        };
        (state.jobs, bytes)
    }

    /// `pool.map(f, items)`: submits one job per item, then waits for each
    /// in order; the values in the items' order, or the first failure in
    /// that order (`Executor.map`).
    #[track_caller]
    pub fn map<I: 'static, T: Clone + 'static>(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        items: Vec<I>,
        f: impl Fn(&Ctx<'_>, I) -> T + Clone + 'static,
    ) -> Result<Vec<T>, TaskFailure> {
        let futures: Vec<Future<T>> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.submit(ctx, name, move |ctx| f(ctx, item))
            })
            .collect();
        futures.iter().map(|future| future.result(ctx)).collect()
    }

    /// `pool.shutdown(wait=True)`: no new jobs; every worker finishes the
    /// queue, stops and is joined.
    #[track_caller]
    pub fn shutdown(&self, ctx: &Ctx<'_>) {
        let Some(stop) = self.begin_shutdown() else {
            return;
        };
        for _ in &stop.workers {
            ctx.send_sized(stop.jobs, None, stop.bytes);
        }
        for &worker in &stop.workers {
            let _ = ctx.join_any(worker);
        }
        if let (Some(manager), Some(results)) = (stop.manager, stop.results) {
            ctx.send(results, None);
            let _ = ctx.join_any(manager);
        }
    }

    /// [`Pool::shutdown`] from a stackless thread.
    #[track_caller]
    pub fn shutdown_async(&self, ctx: AsyncCtx) -> impl std::future::Future<Output = ()> {
        let at = Location::caller();
        let pool = self.clone();
        async move {
            let Some(stop) = pool.begin_shutdown() else {
                return;
            };
            for _ in &stop.workers {
                ctx.send_at(stop.jobs, None, stop.bytes, at).await;
            }
            for &worker in &stop.workers {
                ctx.join_at(worker, at).await;
            }
            if let (Some(manager), Some(results)) = (stop.manager, stop.results) {
                let bytes = std::mem::size_of::<Completion>() as u64;
                ctx.send_at(results, None, bytes, at).await;
                ctx.join_at(manager, at).await;
            }
        }
    }

    /// Marks the pool shut down; what stopping it takes, or `None` when it
    /// already was.
    fn begin_shutdown(&self) -> Option<Stopping> {
        let mut state = self.state.borrow_mut();
        if state.shutdown {
            return None;
        }
        state.shutdown = true;
        Some(Stopping {
            workers: state.info.workers.clone(),
            manager: state.info.manager,
            jobs: state.jobs,
            results: state.results,
            bytes: match state.info.kind {
                PoolKind::Threads => std::mem::size_of::<Job>() as u64,
                PoolKind::Processes { .. } => 0,
            },
        })
    }

    /// Starts what a submit needs (see [`Pool::plan_workers`]), at the
    /// submitter's line.
    #[track_caller]
    fn adjust_workers(&self, ctx: &Ctx<'_>) {
        for hire in self.plan_workers() {
            let thread = match self.hire_spec(hire) {
                HireSpec::Thread { name, body } => {
                    ctx.start_fallible(&name, ThreadOptions::default(), body)
                }
                HireSpec::Process { name, start, body } => {
                    ctx.start_process(&name, start, body).main
                }
            };
            self.hired(hire, thread);
        }
    }

    /// What a submit must start: `_adjust_thread_count` for a thread pool;
    /// for a process pool its manager thread at the first submit, and
    /// either every worker at once ("fork") or one per submit while none is
    /// idle (`_adjust_process_count`). A submit that starts no worker takes
    /// an idle one (the idle semaphore).
    fn plan_workers(&self) -> Vec<Hire> {
        let mut state = self.state.borrow_mut();
        let (workers, max, idle) = (state.info.workers.len(), state.info.max_workers, state.idle);
        let mut hires = Vec::new();
        match state.info.kind {
            PoolKind::Threads => {
                if starts_worker(idle, workers, max) {
                    hires.push(Hire::ThreadWorker(workers));
                } else if idle > 0 {
                    state.idle -= 1;
                }
            }
            PoolKind::Processes { start_method, .. } => {
                if start_method == StartMethod::Fork {
                    if workers == 0 {
                        hires.extend((0..max).map(Hire::ProcessWorker));
                    }
                } else if starts_worker(idle, workers, max) {
                    hires.push(Hire::ProcessWorker(workers));
                } else if idle > 0 {
                    state.idle -= 1;
                }
                if state.info.manager.is_none() {
                    hires.push(Hire::Manager);
                }
            }
        }
        hires
    }

    /// The name and stackful body of a worker to start.
    fn hire_spec(&self, hire: Hire) -> HireSpec {
        match hire {
            Hire::ThreadWorker(number) => self.thread_worker(number),
            Hire::ProcessWorker(number) => self.process_worker(number),
            Hire::Manager => self.manager(),
        }
    }

    /// Records a started worker (or manager) thread.
    fn hired(&self, hire: Hire, thread: crate::ids::ThreadId) {
        let mut state = self.state.borrow_mut();
        match hire {
            Hire::ThreadWorker(_) | Hire::ProcessWorker(_) => state.info.workers.push(thread),
            Hire::Manager => state.info.manager = Some(thread),
        }
    }

    fn thread_worker(&self, number: usize) -> HireSpec {
        let name = format!("{}-{number}", self.name());
        let state = self.state.clone();
        let jobs = self.state.borrow().jobs;
        let body: Body = Box::new(move |ctx: &Ctx<'_>| {
            while let Some(JobMsg { future, body }) = ctx.recv(jobs) {
                let result = run_job(ctx, &future, body);
                complete(ctx, &future, result);
                state.borrow_mut().idle += 1;
            }
            Ok(Box::new(()) as Box<dyn Any>)
        });
        HireSpec::Thread { name, body }
    }

    fn process_worker(&self, number: usize) -> HireSpec {
        let name = format!("{}-{number}", self.name());
        let (jobs, results, options) = {
            let state = self.state.borrow();
            (
                state.jobs,
                state.results.expect("a process pool's results"),
                state.options,
            )
        };
        let start = ProcessStart {
            gil: options.gil,
            spawn_cost: options.start_method.cost(),
        };
        let body: Body = Box::new(move |ctx: &Ctx<'_>| {
            while let Some(JobMsg { future, body }) = ctx.recv(jobs) {
                let result = run_job(ctx, &future, body);
                let bytes = {
                    let pool = future.pool.borrow();
                    pool.info.jobs[future.job].result_bytes
                };
                ctx.send_sized(results, Some((future, result)), bytes);
            }
            Ok(Box::new(()) as Box<dyn Any>)
        });
        HireSpec::Process { name, start, body }
    }

    /// A process pool's `_ExecutorManagerThread`: takes results off the
    /// pipe (unpickling them) and sets the futures.
    fn manager(&self) -> HireSpec {
        let name = format!("{}-manager", self.name());
        let state = self.state.clone();
        let results = self
            .state
            .borrow()
            .results
            .expect("a process pool's results");
        let body: Body = Box::new(move |ctx: &Ctx<'_>| {
            while let Some((future, result)) = ctx.recv(results) {
                // process_result_item: the work item's bookkeeping, then
                // set_result.
                let cost = {
                    let mut state = state.borrow_mut();
                    state.idle += 1;
                    state.job_cost
                };
                if !cost.is_zero() {
                    ctx.compute(cost);
                }
                complete(ctx, &future, result);
            }
            Ok(Box::new(()) as Box<dyn Any>)
        });
        HireSpec::Thread { name, body }
    }
}

/// What a shutdown stops: every worker, then the manager.
struct Stopping {
    workers: Vec<crate::ids::ThreadId>,
    manager: Option<crate::ids::ThreadId>,
    jobs: Channel<Job>,
    results: Option<Channel<Completion>>,
    /// What a stop message weighs on the job queue (a process pool's
    /// pipe carries an empty pickle).
    bytes: u64,
}

/// A thread a submit starts for its pool.
#[derive(Clone, Copy, Debug)]
enum Hire {
    /// A thread pool's worker, by number.
    ThreadWorker(usize),
    /// A process pool's worker process, by number.
    ProcessWorker(usize),
    /// A process pool's manager thread.
    Manager,
}

/// How to start a [`Hire`]: its name and stackful body, in a thread of the
/// submitter's process or as a process of its own.
enum HireSpec {
    Thread {
        name: String,
        body: Body,
    },
    Process {
        name: String,
        start: ProcessStart,
        body: Body,
    },
}

/// The misuse of a submit to a pool that was shut down.
fn shut_down(pool: &str) -> Misuse {
    Misuse::Task(format!(
        "pool '{pool}' was shut down: it cannot schedule new jobs (Python raises RuntimeError); submit before shutdown()"
    ))
}

/// Runs a job's body on the worker `ctx`, recording when: first the
/// worker's bookkeeping (`job_cost`), then the body.
fn run_job(ctx: &Ctx<'_>, future: &FutureCell, body: Body) -> JobResult {
    let cost = future.pool.borrow().job_cost;
    if !cost.is_zero() {
        ctx.compute(cost);
    }
    let start = ctx.loop_clock();
    {
        let mut pool = future.pool.borrow_mut();
        let record = &mut pool.info.jobs[future.job];
        record.started = Some(start);
        record.worker = Some(ctx.thread());
    }
    let result = body(ctx).map(Rc::from);
    let end = ctx.loop_clock();
    let mut pool = future.pool.borrow_mut();
    let record = &mut pool.info.jobs[future.job];
    record.ended = Some(end);
    record.failed = result.is_err();
    if let Err(error) = &result {
        pool.errors.push((future.job, error.clone()));
    }
    result
}

/// Sets a job's future: its result, the loops awaiting it, then its event
/// (which wakes whoever waits in `result()`).
fn complete(ctx: &Ctx<'_>, future: &Rc<FutureCell>, result: JobResult) {
    *future.result.borrow_mut() = Some(result.clone());
    let callbacks = std::mem::take(&mut *future.callbacks.borrow_mut());
    for (channel, task) in callbacks {
        ctx.send(channel, (task, result.clone()));
    }
    ctx.set(crate::model::sync::Event(future.event));
}

/// The error that ends a run in which a job failed and nobody asked for its
/// result.
pub(crate) fn unretrieved(
    pool: &str,
    job: &JobRecord,
    error: BodyError,
    trace: &crate::trace::Trace,
    script: &str,
) -> crate::error::SimError {
    let thread = job
        .worker
        .map(|w| trace.threads[w.index()].name.clone())
        .unwrap_or_else(|| pool.to_string());
    crate::error::SimError::Failed {
        thread,
        time: job.ended.unwrap_or(trace.end),
        message: format!(
            "job '{}' of pool '{pool}' failed and nobody asked for its result (Python would drop this exception silently): {}",
            job.name, error.message
        ),
        origin: error.position.map(|(line, column)| crate::trace::Origin {
            file: script.to_string(),
            line,
            column,
        }),
    }
}
