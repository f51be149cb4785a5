//! The kernel: a deterministic discrete-event engine that runs simulated
//! threads as stackful coroutines (or stackless futures) on simulated CPUs.
//!
//! - `event`: the event queue and its total order.
//! - `choice`: the one choice point ([`Chooser`]) and the decisions it records.
//! - `context`: [`Ctx`], what a thread body calls.
//! - `snapshot`: [`Snapshot`], the run at a decision, for choosers that show it.
//! - `stack`: coroutine stacks carved from large regions.
//! - `stackless`: [`AsyncCtx`] and [`AsyncTask`], what a stackless thread or
//!   task awaits, and how the kernel polls it.
//! - `wait`: [`WaitQueue`], how threads wait on anything.
//! - `deadlock`: whether a new wait closed a cycle of waits.
//! - `engine`: the loop, the CPUs and the thread lifecycle.
//! - `guard`: the host's guards (the simulator's memory, a wall-clock timeout).
//!
//! [`Simulation`] is the public front: declare processes, threads and
//! variables, then [`Simulation::run`] to get a [`Run`].

mod choice;
mod context;
mod deadlock;
mod engine;
mod event;
mod event_loop;
pub mod guard;
mod pool;
mod snapshot;
mod stack;
mod stackless;
mod wait;

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

pub use choice::{
    jitter_options, jittered, Choice, ChoicePoint, Chooser, ChooserError, Decision, FirstChooser,
    RandomChooser, ReplayChooser,
};
pub use context::{Ctx, JoinHandle, ProcessHandle, ProcessStart, StartMethod};
pub(crate) use engine::EVENTS_PER_OPERATION;
pub use event_loop::{
    EventLoopRef, LoopInfo, LoopOptions, LoopStatsInfo, SlowStep, Task, TaskFailure, TaskHandle,
    TaskResult, TaskResults,
};
pub use pool::{Future, JobSize, Pool, PoolFuture, ProcessPoolOptions};
pub use snapshot::{LockSnapshot, Snapshot, ThreadSnapshot, VariableSnapshot};
pub use stack::MIN_STACK;
pub use stackless::{AsyncCtx, AsyncOp, AsyncTask};
pub(crate) use stackless::{StacklessBody, StacklessFuture};
pub use wait::{WaitQueue, Waiter};

use crate::analysis::stats::Stats;
use crate::error::{BodyError, SimError};
use crate::ids::{ProcessId, ResourceId, ThreadId, VarId};
use crate::model::io::{DeviceOptions, DeviceRef};
use crate::model::machine::{Machine, MachineError};
use crate::model::process::{ProcessGate, ProcessOptions};
use crate::model::python::gil::Gil;
use crate::model::sync::{
    Barrier, Channel, Condvar, Countdown, Event, Mutex, MutexOptions, RLock, Resource, RwLock,
    RwPrefer, Semaphore, Spinlock,
};
use crate::model::thread::{ThreadOptions, ThreadState};
use crate::trace::Trace;
use context::{boxed_body, Body};
use engine::Engine;

/// A scenario being declared, then run once.
///
/// ```
/// use sim_core::{Machine, Simulation, ms};
/// let mut sim = Simulation::new(Machine { cpus: 2, ..Machine::textbook() }).unwrap();
/// for name in ["a", "b", "c", "d"] {
///     sim.add_thread(name, |ctx| ctx.compute(ms(100)));
/// }
/// let run = sim.run();
/// assert_eq!(run.trace.makespan().as_nanos(), ms(200).as_nanos());
/// ```
pub struct Simulation {
    engine: Engine,
    /// Event loops, read back into the trace after the run.
    loops: Vec<Rc<RefCell<event_loop::LoopSeed>>>,
    /// Pools, read back into the trace after the run.
    pools: Vec<Pool>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("machine", &self.engine.machine)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// A simulation of `machine` with the deterministic default chooser.
    pub fn new(machine: Machine) -> Result<Simulation, MachineError> {
        machine.validate()?;
        Ok(Simulation {
            engine: Engine::new(machine),
            loops: Vec::new(),
            pools: Vec::new(),
        })
    }

    /// Replaces the chooser (random, replay, or an exploration strategy).
    pub fn set_chooser(&mut self, chooser: Box<dyn Chooser>) {
        self.engine.set_chooser(chooser);
    }

    /// Lets the chooser perturb every compute and sleep duration by up to
    /// `percent` either way, in steps of 0.1% (exploration's `--jitter`): a
    /// [`ChoicePoint::Jitter`] decision per duration, recorded and replayed
    /// like any other. The default chooser keeps durations as written.
    pub fn set_jitter(&mut self, percent: u32) {
        self.engine.set_jitter(percent);
    }

    /// Names the script that script positions refer to.
    pub fn set_script_name(&mut self, name: &str) {
        self.engine.set_script_name(name);
    }

    /// The machine being simulated.
    pub fn machine(&self) -> &Machine {
        &self.engine.machine
    }

    /// Adds a process; its threads share its memory and its gate.
    pub fn add_process(&mut self, name: &str, options: ProcessOptions) -> ProcessId {
        let id = ProcessId(self.engine.process_count() as u32);
        let gate = match options.gil {
            Some(interval) => Some(Box::new(Gil::new(id, interval)) as Box<dyn ProcessGate>),
            None => options.gate,
        };
        let process = self.engine.add_process(name, gate);
        if options.compute_overhead > 0.0 {
            self.engine
                .set_compute_overhead(process, options.compute_overhead);
        }
        process
    }

    /// Adds a thread to the default process, ready at time 0.
    pub fn add_thread<T: 'static>(
        &mut self,
        name: &str,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> JoinHandle<T> {
        self.add_thread_to(ProcessId::MAIN, name, ThreadOptions::default(), body)
    }

    /// Adds a thread with a priority and nice value to the default process.
    pub fn add_thread_with<T: 'static>(
        &mut self,
        name: &str,
        options: ThreadOptions,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> JoinHandle<T> {
        self.add_thread_to(ProcessId::MAIN, name, options, body)
    }

    /// Adds a thread to `process`, ready at time 0 (threads become ready in
    /// the order they are added).
    ///
    /// # Panics
    /// If `process` was not returned by [`Simulation::add_process`].
    pub fn add_thread_to<T: 'static>(
        &mut self,
        process: ProcessId,
        name: &str,
        options: ThreadOptions,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> JoinHandle<T> {
        JoinHandle::new(self.declare_thread(process, name, options, boxed_body(body)))
    }

    /// Adds a stackless thread to the default process: its body is an
    /// `async` block that awaits the operations of its [`AsyncCtx`], and it
    /// keeps no stack of its own (see [`AsyncCtx`] for what it may do).
    pub fn add_stackless_thread<F, T>(
        &mut self,
        name: &str,
        body: impl FnOnce(AsyncCtx) -> F + 'static,
    ) -> JoinHandle<T>
    where
        F: std::future::Future<Output = T> + 'static,
        T: 'static,
    {
        self.add_stackless_thread_to(ProcessId::MAIN, name, ThreadOptions::default(), body)
    }

    /// Adds a stackless thread to `process`, ready at time 0.
    ///
    /// # Panics
    /// If `process` was not returned by [`Simulation::add_process`].
    pub fn add_stackless_thread_to<F, T>(
        &mut self,
        process: ProcessId,
        name: &str,
        options: ThreadOptions,
        body: impl FnOnce(AsyncCtx) -> F + 'static,
    ) -> JoinHandle<T>
    where
        F: std::future::Future<Output = T> + 'static,
        T: 'static,
    {
        let body = engine::Start::Stackless(stackless::boxed_stackless(body));
        JoinHandle::new(self.declare_thread(process, name, options, body))
    }

    /// Adds a thread whose body may fail (script bindings use this).
    pub fn add_fallible_thread(
        &mut self,
        process: ProcessId,
        name: &str,
        options: ThreadOptions,
        body: impl FnOnce(&Ctx<'_>) -> Result<Box<dyn Any>, BodyError> + 'static,
    ) -> ThreadId {
        self.declare_thread(process, name, options, Box::new(body) as Body)
    }

    /// Adds a stackless thread whose body may fail (script bindings use
    /// this for the bodies they run without a stack).
    pub(crate) fn add_fallible_stackless_thread(
        &mut self,
        process: ProcessId,
        name: &str,
        options: ThreadOptions,
        body: stackless::StacklessBody,
    ) -> ThreadId {
        self.declare_thread(process, name, options, engine::Start::Stackless(body))
    }

    /// A thread of `process` declared before the run, whatever its body.
    fn declare_thread(
        &mut self,
        process: ProcessId,
        name: &str,
        options: ThreadOptions,
        body: impl Into<engine::Start>,
    ) -> ThreadId {
        assert!(
            process.index() < self.engine.process_count(),
            "unknown process {process}"
        );
        self.engine
            .create_thread(name.to_string(), process, options, body, None)
    }

    /// Adds an asyncio event loop to `process`: a thread named `name` that
    /// runs the loop's tasks one at a time, waiting in epoll when none is
    /// ready; it ends when every task has. Add tasks with
    /// [`Simulation::add_task`].
    ///
    /// ```
    /// use sim_core::{LoopOptions, Machine, ProcessId, Simulation, ms};
    /// let mut sim = Simulation::new(Machine::textbook()).unwrap();
    /// let lp = sim.add_event_loop(ProcessId::MAIN, "loop", LoopOptions::default());
    /// for name in ["a", "b", "c"] {
    ///     sim.add_task(&lp, name, |t| t.await_sleep(ms(100)));
    /// }
    /// let run = sim.run();
    /// // Three tasks sleep at once on one thread.
    /// assert!(run.trace.makespan().as_nanos() < ms(101).as_nanos());
    /// ```
    pub fn add_event_loop(
        &mut self,
        process: ProcessId,
        name: &str,
        options: LoopOptions,
    ) -> EventLoopRef {
        let seed = Rc::new(RefCell::new(event_loop::LoopSeed {
            tasks: Vec::new(),
            info: None,
        }));
        let channels = event_loop::executor_channels(self, name);
        let cpus = usize::from(self.engine.machine.cpus);
        let log = self.engine.task_log();
        let body =
            event_loop::loop_body(seed.clone(), name.to_string(), options, cpus, channels, log);
        let thread = self.engine.create_thread(
            name.to_string(),
            process,
            ThreadOptions::default(),
            body,
            None,
        );
        self.loops.push(seed.clone());
        EventLoopRef { thread, seed }
    }

    /// Adds a task to a loop, ready when the loop starts (tasks run in the
    /// order they are added). Its value is what [`Task::await_task`] returns.
    pub fn add_task<T: Clone + 'static>(
        &mut self,
        lp: &EventLoopRef,
        name: &str,
        body: impl FnOnce(&Task<'_>) -> T + 'static,
    ) -> TaskHandle<T> {
        TaskHandle::new(self.add_fallible_task(lp, name, event_loop::boxed_task(body)))
    }

    /// Adds a stackless task to the loop `lp`: its body is an `async` block
    /// that awaits the operations of its [`AsyncTask`], and it keeps no
    /// stack of its own.
    pub fn add_stackless_task<F, T>(
        &mut self,
        lp: &EventLoopRef,
        name: &str,
        body: impl FnOnce(AsyncTask) -> F + 'static,
    ) -> TaskHandle<T>
    where
        F: std::future::Future<Output = T> + 'static,
        T: Clone + 'static,
    {
        let mut seed = lp.seed.borrow_mut();
        let start = event_loop::TaskStart::Stackless(stackless::boxed_stackless_task(body));
        seed.tasks.push((name.to_string(), start));
        TaskHandle::new(crate::model::python::event_loop::TaskId(
            seed.tasks.len() as u32 - 1,
        ))
    }

    /// Adds a task whose body may fail (script bindings use this).
    pub fn add_fallible_task(
        &mut self,
        lp: &EventLoopRef,
        name: &str,
        body: impl FnOnce(&Task<'_>) -> Result<Rc<dyn Any>, BodyError> + 'static,
    ) -> crate::model::python::event_loop::TaskId {
        let mut seed = lp.seed.borrow_mut();
        let body: event_loop::TaskBody = Box::new(body);
        seed.tasks.push((name.to_string(), body.into()));
        crate::model::python::event_loop::TaskId(seed.tasks.len() as u32 - 1)
    }

    /// Declares a thread pool of `process` (`ThreadPoolExecutor(max_workers)`):
    /// its workers are threads of that process, started one per submit
    /// while none is idle, up to `max_workers`; each start costs the
    /// submitter `thread_spawn`. Only threads of `process` may submit.
    ///
    /// ```
    /// use sim_core::{Machine, ProcessId, Simulation, ms};
    /// let mut sim = Simulation::new(Machine { cpus: 2, ..Machine::textbook() }).unwrap();
    /// let pool = sim.thread_pool(ProcessId::MAIN, "pool", 2);
    /// sim.add_thread("main", move |ctx| {
    ///     let futures: Vec<_> = (1..=4u64)
    ///         .map(|i| pool.submit(ctx, "job", move |ctx| { ctx.compute(ms(10)); i }))
    ///         .collect();
    ///     futures.iter().map(|f| f.result(ctx).unwrap()).sum::<u64>()
    /// });
    /// let run = sim.run();
    /// // Four 10ms jobs on two workers and two CPUs.
    /// assert_eq!(run.trace.makespan().as_nanos(), ms(20).as_nanos());
    /// ```
    pub fn thread_pool(&mut self, process: ProcessId, name: &str, max_workers: usize) -> Pool {
        let jobs = self.channel(&format!("{name}.queue"), usize::MAX);
        self.mark_internal(jobs.id());
        self.engine
            .on_exit(jobs.id(), || Box::new(None::<pool::JobMsg>));
        let info = crate::model::python::pool::PoolInfo::new(
            name,
            crate::model::python::pool::PoolKind::Threads,
            process,
            max_workers,
        );
        let pool = Pool::new(
            info,
            jobs,
            None,
            ProcessPoolOptions::default(),
            self.engine.machine.job_cost,
        );
        self.pools.push(pool.clone());
        pool
    }

    /// Declares a process pool submitted to from `process`
    /// (`ProcessPoolExecutor(max_workers)`): each worker is a process of its
    /// own, started as `start_process` starts one (its spawn cost); "fork"
    /// starts them all at the first submit, the other methods one per
    /// submit while none is idle. Jobs and results cross pipes, paying
    /// `ipc_cost` (and `ipc_byte_cost` per byte) on both sides.
    pub fn process_pool(
        &mut self,
        process: ProcessId,
        name: &str,
        max_workers: usize,
        options: ProcessPoolOptions,
    ) -> Pool {
        let jobs = self.channel(&format!("{name}.queue"), usize::MAX);
        let results = self.channel(&format!("{name}.results"), usize::MAX);
        for channel in [jobs.id(), results.id()] {
            self.mark_internal(channel);
            self.engine.mark_pipe(channel);
        }
        self.engine
            .on_exit(jobs.id(), || Box::new(None::<pool::JobMsg>));
        self.engine
            .on_exit(results.id(), || Box::new(pool::Completion::None));
        let kind = crate::model::python::pool::PoolKind::Processes {
            start_method: options.start_method,
            gil: options.gil.is_some(),
        };
        let info = crate::model::python::pool::PoolInfo::new(name, kind, process, max_workers);
        let pool = Pool::new(
            info,
            jobs,
            Some(results),
            options,
            self.engine.machine.job_cost,
        );
        self.pools.push(pool.clone());
        pool
    }

    /// Marks a resource as the simulator's own plumbing: not reported.
    pub(crate) fn mark_internal(&mut self, resource: ResourceId) {
        self.engine.trace.resources[resource.index()].internal = true;
    }

    /// Declares a mutex.
    pub fn mutex(&mut self, name: &str, options: MutexOptions) -> Mutex {
        let resource = Resource::Mutex {
            owner: None,
            options,
            waiters: WaitQueue::new(),
            reentrant: false,
            depth: 0,
        };
        Mutex(self.engine.add_resource(name, resource))
    }

    /// Declares a reentrant lock (`threading.RLock`, C#'s `Monitor`): a fair
    /// mutex whose owner may lock it again; it is free once unlocked as
    /// many times as it was locked.
    pub fn rlock(&mut self, name: &str) -> RLock {
        let resource = Resource::Mutex {
            owner: None,
            options: MutexOptions::default(),
            waiters: WaitQueue::new(),
            reentrant: true,
            depth: 0,
        };
        RLock(self.engine.add_resource(name, resource))
    }

    /// Declares a spinlock: a waiter keeps its CPU, spinning.
    pub fn spinlock(&mut self, name: &str) -> Spinlock {
        let resource = Resource::Spinlock {
            owner: None,
            spinners: WaitQueue::new(),
        };
        Spinlock(self.engine.add_resource(name, resource))
    }

    /// Declares a semaphore with `permits` permits.
    pub fn semaphore(&mut self, name: &str, permits: u64) -> Semaphore {
        let resource = Resource::Semaphore {
            permits,
            waiters: WaitQueue::new(),
            bound: None,
        };
        Semaphore(self.engine.add_resource(name, resource))
    }

    /// Declares a bounded semaphore (`threading.BoundedSemaphore`) with
    /// `permits` permits: a release that would leave it more than
    /// `permits` is an error.
    pub fn bounded_semaphore(&mut self, name: &str, permits: u64) -> Semaphore {
        let resource = Resource::Semaphore {
            permits,
            waiters: WaitQueue::new(),
            bound: Some(permits),
        };
        Semaphore(self.engine.add_resource(name, resource))
    }

    /// Declares a reader-writer lock.
    pub fn rwlock(&mut self, name: &str, prefer: RwPrefer) -> RwLock {
        let resource = Resource::RwLock {
            readers: Default::default(),
            writer: None,
            prefer,
            waiters: Default::default(),
        };
        RwLock(self.engine.add_resource(name, resource))
    }

    /// Declares a condition variable.
    pub fn condvar(&mut self, name: &str) -> Condvar {
        let resource = Resource::Condvar {
            waiters: std::collections::VecDeque::new(),
        };
        Condvar(self.engine.add_resource(name, resource))
    }

    /// Declares an event (`threading.Event`, C#'s `ManualResetEvent`), not
    /// set: a flag that threads wait for until another sets it.
    pub fn event(&mut self, name: &str) -> Event {
        let resource = Resource::Event {
            set: false,
            waiters: WaitQueue::new(),
        };
        Event(self.engine.add_resource(name, resource))
    }

    /// Declares a countdown (C#'s `CountdownEvent`) of `count`: threads
    /// wait until it has been signalled `count` times (at once when `count`
    /// is 0).
    pub fn countdown(&mut self, name: &str, count: u64) -> Countdown {
        let resource = Resource::Countdown {
            remaining: count,
            waiters: WaitQueue::new(),
        };
        Countdown(self.engine.add_resource(name, resource))
    }

    /// Declares a barrier for `parties` threads (at least 1).
    pub fn barrier(&mut self, name: &str, parties: usize) -> Barrier {
        let resource = Resource::Barrier {
            parties: parties.max(1),
            waiting: WaitQueue::new(),
        };
        Barrier(self.engine.add_resource(name, resource))
    }

    /// Declares a channel holding up to `capacity` values (at least 1):
    /// `send` waits while it is full, `recv` while it is empty. Channels
    /// work across processes, like pipes.
    pub fn channel<T: 'static>(&mut self, name: &str, capacity: usize) -> Channel<T> {
        let resource = Resource::Channel {
            capacity: capacity.max(1),
            items: std::collections::VecDeque::new(),
            senders: std::collections::VecDeque::new(),
            first_user: None,
            crossed: false,
            receivers: WaitQueue::new(),
        };
        Channel::new(self.engine.add_resource(name, resource))
    }

    /// Declares an I/O device: requests queue FIFO for one of its
    /// `channels` and each takes `latency + bytes / bandwidth` in service.
    pub fn device(&mut self, name: &str, options: DeviceOptions) -> DeviceRef {
        DeviceRef(self.engine.add_device(name, options))
    }

    /// Declares a variable in `process`'s memory.
    pub fn variable(&mut self, process: ProcessId, name: &str, init: i64) -> VarId {
        self.engine.memory.declare(process, name, init)
    }

    /// Runs the scenario to its end and returns everything it recorded.
    pub fn run(mut self) -> Run {
        guard::clear_tripped();
        let mut outcome = self.engine.run();
        if guard::tripped() {
            self.engine.abandon_threads();
        }
        let values = self.engine.take_values();
        let mut trace = std::mem::replace(&mut self.engine.trace, Trace::new(Machine::default()));
        trace.variables = std::mem::take(&mut self.engine.memory).into_vec();
        // A stalled loop's coroutine is dropped with the engine's threads;
        // what it published so far stands.
        trace.loops = self
            .loops
            .iter()
            .filter_map(|seed| seed.borrow_mut().info.take())
            .collect();
        trace.pools = self.pools.iter().map(Pool::info).collect();
        if outcome == Outcome::Completed {
            let script = self.engine.script_name().unwrap_or_default();
            if let Some(failure) = self.pools.iter().find_map(|pool| {
                let (job, error) = pool.unretrieved_failure()?;
                Some(pool::unretrieved(&pool.name(), &job, error, &trace, script))
            }) {
                outcome = Outcome::Failed(failure);
            }
        }
        Run {
            trace,
            outcome,
            decisions: std::mem::take(&mut self.engine.decisions),
            operations: self.engine.operations,
            values,
        }
    }
}

/// A thread that was still waiting when the run stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The thread.
    pub thread: ThreadId,
    /// The state it was stuck in.
    pub state: ThreadState,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every thread finished.
    Completed,
    /// Unfinished threads, and nothing left that could wake them.
    Stalled(Vec<Waiting>),
    /// Some threads wait for each other in a cycle (the cycle is in
    /// [`Trace::deadlock`]); these are every unfinished thread.
    Deadlocked(Vec<Waiting>),
    /// An error stopped the run.
    Failed(SimError),
}

/// The result of a run: its trace, how it ended, and the decisions it took.
pub struct Run {
    /// Everything that happened.
    pub trace: Trace,
    /// How it ended.
    pub outcome: Outcome,
    /// Every decision taken, in order; a [`ReplayChooser`] fed with them
    /// reproduces the run. Empty when no chooser was set: the default takes
    /// option 0 every time, which is what replaying an empty list does.
    pub decisions: Vec<Decision>,
    /// How many operations the threads called (compute, sleep, yield_now,
    /// now, print, start_thread, join, load, store).
    pub operations: u64,
    values: Vec<Option<Box<dyn Any>>>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("outcome", &self.outcome)
            .field("end", &self.trace.end)
            .field("decisions", &self.decisions.len())
            .finish_non_exhaustive()
    }
}

impl Run {
    /// The error that stopped the run, if one did.
    pub fn error(&self) -> Option<&SimError> {
        match &self.outcome {
            Outcome::Failed(error) => Some(error),
            _ => None,
        }
    }

    /// Whether every thread finished.
    pub fn completed(&self) -> bool {
        self.outcome == Outcome::Completed
    }

    /// Statistics derived from the trace.
    pub fn stats(&self) -> Stats {
        Stats::from_trace(&self.trace)
    }

    /// Takes the value a finished, unjoined thread returned.
    pub fn take_value<T: 'static>(&mut self, handle: &JoinHandle<T>) -> Option<T> {
        let value = self.values.get_mut(handle.thread().index())?.take()?;
        value.downcast::<T>().ok().map(|b| *b)
    }

    /// Takes a thread's value untyped (script bindings use this).
    pub fn take_any(&mut self, thread: ThreadId) -> Option<Box<dyn Any>> {
        self.values.get_mut(thread.index())?.take()
    }
}
