//! The thread context: how a thread body talks to the kernel.
//!
//! A body runs on its own coroutine stack. Each operation suspends the
//! coroutine with a [`Request`] and returns when the kernel resumes it with the
//! [`Response`], so a body blocks where it calls an operation while the kernel
//! never calls user code except by resuming a coroutine.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::panic::Location;

use corosensei::Yielder;

use super::stack::approximate_stack_pointer;
use crate::error::{BodyError, Misuse};
use crate::ids::{ProcessId, ResourceId, ThreadId, VarId};
use crate::model::io::{DeviceRef, EpollRef, IoHandle, IoId, PollKey, Pollable};
use crate::model::sync::{Barrier, Channel, Condvar, Countdown, Event, Lock, RwLock, Semaphore};
use crate::model::thread::{ThreadOptions, ThreadState};
use crate::time::{Span, Time};

/// A thread body as the kernel stores it.
pub(crate) type Body = Box<dyn FnOnce(&Ctx<'_>) -> Result<Box<dyn Any>, BodyError>>;

/// What a thread asks of the kernel. Every request crosses the coroutine
/// boundary by value, so rare large payloads are boxed to keep it at 16 bytes.
/// Its tag is a whole `u32` and every payload starts at byte 4 or 8: a
/// request built in place and then moved is copied in the pieces it was
/// written in (a byte tag left payloads at odd offsets, whose copies were
/// loads that stalled on the stores before them).
#[repr(u32)]
pub(crate) enum Request {
    Compute(Span),
    /// Compute outside the process's gate (native code without the GIL).
    ComputeNoGil(Span),
    Sleep(Span),
    Yield,
    Now,
    Spawn(Box<Spawn>),
    Join(ThreadId),
    Load(VarId),
    Store(VarId, i64),
    /// Atomic add; answers the previous value.
    FetchAdd(VarId, i64),
    /// Atomic compare-and-swap (variable, expected, new); answers the
    /// previous value. Boxed: rare, and it would make every request larger.
    CompareExchange(Box<(VarId, i64, i64)>),
    /// A thin box (not `Box<str>`) keeps the request at 16 bytes.
    #[allow(clippy::box_collection)]
    Print(Box<String>),
    Fault(Box<Misuse>),
    /// An operation on a synchronization resource.
    Sync(ResourceId, SyncOp),
    /// A synchronization wait that gives up after this long (boxed: it is
    /// rare, and requests stay small).
    Timed(Box<(ResourceId, SyncOp, Span)>),
    /// Start a process with its first thread (boxed: rare and large).
    StartProcess(Box<StartProcess>),
    /// A value sent into a channel, with its size in bytes (boxed: rare
    /// and large).
    Send(Box<(ResourceId, Box<dyn Any>, u64)>),
    /// Submit a request of this many bytes to a device; answers its id.
    Submit(ResourceId, u64),
    /// Blocking I/O: submit, then wait for the completion.
    Io(ResourceId, u64),
    /// Wait for a request to complete.
    IoWait(IoId),
    /// Whether a request has completed.
    IoReady(IoId),
    /// Create an epoll instance; answers its resource id.
    EpollCreate,
    /// Add a key to an epoll set.
    EpollAdd(ResourceId, PollKey),
    /// Remove a key from an epoll set; answers whether it was in.
    EpollRemove(ResourceId, PollKey),
    /// How many keys an epoll set holds.
    EpollLen(ResourceId),
    /// Wait for readiness, for at most this long (`Span::MAX`: no limit).
    EpollWait(ResourceId, Span),
    /// A task's await: only its loop answers it; from a thread it is a
    /// misuse.
    Await(Box<super::event_loop::Await>),
    /// A task's `await_sleep`, unboxed: the commonest await.
    AwaitSleep(Span),
    /// A task's `await_io` (device, bytes), unboxed.
    AwaitIo(ResourceId, u64),
    /// An event loop creates a task's row (its name); answers the row.
    #[allow(clippy::box_collection)]
    TaskRow(Box<String>),
    /// An event loop draws a task's row in a state from now on; answers
    /// the time.
    TaskState(ThreadId, ThreadState),
    /// [`Request::TaskState`], at the call's origin.
    TaskStateAt(ThreadId, ThreadState),
    /// A task's print: the log line names the task's row.
    #[allow(clippy::box_collection)]
    PrintAs(ThreadId, Box<String>),
    /// An event loop's CPU time (a task switch); answers the time after.
    LoopCompute(Span),
    /// A task's `await_io`: submit, and watch the request in the loop's
    /// epoll (device, bytes, epoll, the task's row); answers its id.
    SubmitPolled(Box<(ResourceId, u64, ResourceId, Option<ThreadId>)>),
    /// An event loop reads the clock, which is not a scheduling point.
    LoopClock,
    /// Interns the call's origin; answers its id.
    Intern,
    /// An event loop whose tasks nothing can wake waits in this epoll
    /// forever.
    Park(ResourceId),
    /// The rows of tasks that await each other in a cycle: a deadlock.
    #[allow(clippy::box_collection)]
    AwaitCycle(Box<Vec<ThreadId>>),
    /// A pool creates a job's future (an internal event with the job's
    /// name), once the submitter is checked to be of the pool's process
    /// (the pool's name, its process); answers the future's resource id.
    NewFuture(Box<(String, String, ProcessId)>),
}

impl Request {
    /// Whether this is an event loop's bookkeeping: not an operation of the
    /// script, so not counted against `max_events`.
    #[inline(always)]
    pub(crate) fn is_bookkeeping(&self) -> bool {
        matches!(
            self,
            Request::TaskRow(_)
                | Request::TaskState(..)
                | Request::TaskStateAt(..)
                | Request::LoopCompute(_)
                | Request::LoopClock
                | Request::Intern
                | Request::Park(_)
                | Request::AwaitCycle(_)
                | Request::NewFuture(_)
        )
    }
}

/// What a thread does to a synchronization resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncOp {
    Lock,
    TryLock,
    Unlock,
    Acquire,
    /// Take a permit if one is free; never wait.
    TryAcquire,
    /// How many permits are free.
    Permits,
    Release,
    ReadLock,
    ReadUnlock,
    WriteLock,
    WriteUnlock,
    /// Wait on a condition variable, releasing this mutex meanwhile.
    Wait(ResourceId),
    NotifyOne,
    NotifyAll,
    BarrierWait,
    /// Set an event.
    Set,
    /// Clear an event.
    Clear,
    /// Whether an event is set.
    IsSet,
    /// Wait until an event is set.
    EventWait,
    /// Wait until a pool job's future (an event) is set, in state join.
    FutureWait,
    /// Signal a countdown.
    Signal,
    /// Wait until a countdown reaches zero.
    CountdownWait,
    Recv,
}

/// A request to start a process.
pub(crate) struct StartProcess {
    pub(crate) name: String,
    pub(crate) options: ProcessStart,
    /// The body of its first thread, stackful or stackless.
    pub(crate) body: super::engine::Start,
}

/// How a process started from a body starts: its interpreter lock and what
/// starting it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessStart {
    /// A CPython interpreter lock with this switch interval, if any.
    pub gil: Option<Span>,
    /// CPU time the child's first thread spends starting (state spawn)
    /// before its body runs: for CPython, see [`StartMethod::cost`].
    pub spawn_cost: Span,
}

/// How CPython's multiprocessing starts a process, and what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StartMethod {
    /// `os.fork()`: the child is a copy of the parent.
    Fork,
    /// A server process forks a fresh child on request.
    Forkserver,
    /// A fresh interpreter is executed and imports the main module.
    Spawn,
}

impl StartMethod {
    /// Reads "fork", "forkserver" or "spawn".
    pub fn from_name(name: &str) -> Option<StartMethod> {
        Some(match name {
            "fork" => StartMethod::Fork,
            "forkserver" => StartMethod::Forkserver,
            "spawn" => StartMethod::Spawn,
            _ => return None,
        })
    }

    /// The start-up cost of a child, as measured for CPython on Linux:
    /// fork 2ms, forkserver 35ms, spawn 75ms.
    pub fn cost(self) -> Span {
        match self {
            StartMethod::Fork => crate::time::ms(2),
            StartMethod::Forkserver => crate::time::ms(35),
            StartMethod::Spawn => crate::time::ms(75),
        }
    }
}

/// A started process: its id and its first thread, which `join` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessHandle {
    /// The new process.
    pub process: crate::ids::ProcessId,
    /// Its first thread, running the body.
    pub main: ThreadId,
}

/// A request to start a thread.
pub(crate) struct Spawn {
    pub(crate) name: String,
    pub(crate) options: ThreadOptions,
    pub(crate) body: super::engine::Start,
}

/// Where an operation came from. Its tag is a whole word, so both
/// variants' payloads start at byte 8 (see [`Request`]).
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub(crate) enum SourceRef {
    Rust(&'static Location<'static>),
    Script { line: u32, column: u32 },
}

impl PartialEq for SourceRef {
    /// Rust locations compare by address: cheap, and equal call sites share
    /// one `Location`.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SourceRef::Rust(a), SourceRef::Rust(b)) => std::ptr::eq(*a, *b),
            (
                SourceRef::Script { line: a, column: b },
                SourceRef::Script { line: c, column: d },
            ) => (a, b) == (c, d),
            _ => false,
        }
    }
}

/// A request with its source position.
pub(crate) struct Call {
    pub(crate) request: Request,
    pub(crate) origin: SourceRef,
}

/// The kernel's answer to a request. Its tag is a whole word, so every
/// payload starts at byte 8 (see [`Request`]).
#[repr(u64)]
pub(crate) enum Response {
    Resume,
    Time(Time),
    Thread(ThreadId),
    Value(Box<dyn Any>),
    Int(i64),
    Bool(bool),
    /// A barging mutex was freed: try to take it again.
    Retry,
    /// A process started, with its first thread.
    Process(ProcessHandle),
    /// The epoll wait of this thread ended (readiness or timeout): the
    /// kernel answers with the keys ready when the thread runs again.
    EpollReady(ResourceId),
    /// The ready keys of an epoll wait (a thin box keeps responses small).
    #[allow(clippy::box_collection)]
    Ready(Box<Vec<Pollable>>),
}

/// The context a thread body receives: every operation a simulated thread can
/// perform. Operations take simulated time (or none) and may block; each is
/// recorded with the Rust line that called it, or the script position set with
/// [`Ctx::set_script_position`].
pub struct Ctx<'a> {
    yielder: &'a Yielder<Response, Call>,
    thread: ThreadId,
    script_position: Cell<Option<(u32, u32)>>,
    /// Lowest safe stack address, for stacks without a guard page.
    red_zone: Option<NonZeroUsize>,
    /// Lowest usable address of the coroutine's stack.
    stack_bottom: usize,
    stack_size: usize,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// A handle to a started thread; [`Ctx::join`] waits for it and returns the
/// value its body returned.
pub struct JoinHandle<T> {
    thread: ThreadId,
    _value: PhantomData<fn() -> T>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(thread: ThreadId) -> Self {
        JoinHandle {
            thread,
            _value: PhantomData,
        }
    }

    /// The thread this handle refers to.
    pub fn thread(&self) -> ThreadId {
        self.thread
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinHandle({})", self.thread)
    }
}

/// Wraps a typed body into the kernel's form.
pub(crate) fn boxed_body<T: 'static>(body: impl FnOnce(&Ctx<'_>) -> T + 'static) -> Body {
    Box::new(move |ctx: &Ctx<'_>| Ok(Box::new(body(ctx)) as Box<dyn Any>))
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        yielder: &'a Yielder<Response, Call>,
        thread: ThreadId,
        red_zone: Option<NonZeroUsize>,
        stack_bottom: usize,
        stack_size: usize,
    ) -> Self {
        Ctx {
            yielder,
            thread,
            script_position: Cell::new(None),
            red_zone,
            stack_bottom,
            stack_size,
        }
    }

    fn call(&self, request: Request, location: &'static Location<'static>) -> Response {
        let request = match self.red_zone {
            Some(floor) if approximate_stack_pointer() < floor.get() => {
                Request::Fault(Box::new(Misuse::StackExhausted {
                    size: self.stack_size,
                }))
            }
            _ => request,
        };
        let origin = match self.script_position.get() {
            Some((line, column)) => SourceRef::Script { line, column },
            None => SourceRef::Rust(location),
        };
        self.suspend(Call { request, origin })
    }

    /// Parks this thread with `call` for the kernel; answers its response.
    #[inline(always)]
    fn suspend(&self, call: Call) -> Response {
        super::stack::note_parked();
        self.yielder.suspend(call)
    }

    /// A request from the loop machinery, attributed to a Rust line.
    pub(crate) fn call_boxed(
        &self,
        request: Request,
        location: &'static Location<'static>,
    ) -> Response {
        self.call(request, location)
    }

    /// Passes a task's call on to the kernel as this thread's own.
    pub(crate) fn forward(&self, call: Call) -> Response {
        self.suspend(call)
    }

    /// Creates the future of a job of `pool` (of process `owner`), after
    /// checking that this thread is of that process; answers its event.
    #[track_caller]
    pub(crate) fn new_future(&self, job: &str, pool: &str, owner: ProcessId) -> ResourceId {
        let request = Request::NewFuture(Box::new((job.to_string(), pool.to_string(), owner)));
        match self.call(request, Location::caller()) {
            Response::Int(id) => ResourceId(id as u32),
            _ => unreachable!("the kernel answers NewFuture with an id"),
        }
    }

    /// Waits (state join) until a job's future is set.
    #[track_caller]
    pub(crate) fn future_wait(&self, future: ResourceId) {
        self.sync(future, SyncOp::FutureWait, Location::caller());
    }

    /// Whether a job's future is set (no time); its past is this thread's
    /// when it is.
    #[track_caller]
    pub(crate) fn future_done(&self, future: ResourceId) -> bool {
        matches!(
            self.sync(future, SyncOp::IsSet, Location::caller()),
            Response::Bool(true)
        )
    }

    /// Stops the run with a misuse at the current position.
    #[track_caller]
    pub(crate) fn fault(&self, misuse: Misuse) {
        self.call(Request::Fault(Box::new(misuse)), Location::caller());
    }

    fn answer_time(response: Response) -> Time {
        match response {
            Response::Time(t) => t,
            _ => unreachable!("the kernel answers with the time"),
        }
    }

    /// The simulated time, read without a scheduling point (the loop's
    /// bookkeeping, not an operation of the script).
    #[track_caller]
    pub(crate) fn loop_clock(&self) -> Time {
        Self::answer_time(self.call(Request::LoopClock, Location::caller()))
    }

    /// Draws a task's row in `state` from now on; answers the time.
    #[track_caller]
    pub(crate) fn task_state(
        &self,
        row: ThreadId,
        state: ThreadState,
        origin: Option<SourceRef>,
    ) -> Time {
        let response = match origin {
            Some(origin) => self.suspend(Call {
                request: Request::TaskStateAt(row, state),
                origin,
            }),
            None => self.call(Request::TaskState(row, state), Location::caller()),
        };
        Self::answer_time(response)
    }

    /// Spends `d` of CPU on the loop's own work; answers the time after.
    #[track_caller]
    pub(crate) fn loop_compute(&self, d: Span) -> Time {
        Self::answer_time(self.call(Request::LoopCompute(d), Location::caller()))
    }

    /// Submits a task's request and watches it in `epoll`, at `origin`.
    pub(crate) fn submit_polled(
        &self,
        device: DeviceRef,
        bytes: u64,
        epoll: EpollRef,
        row: Option<ThreadId>,
        origin: SourceRef,
    ) -> IoId {
        let request = Request::SubmitPolled(Box::new((device.0, bytes, epoll.id(), row)));
        match self.suspend(Call { request, origin }) {
            Response::Int(id) => IoId(id as u32),
            _ => unreachable!("the kernel answers a submit with its id"),
        }
    }

    /// A row for a new task of this thread's loop.
    #[track_caller]
    pub(crate) fn task_row(&self, name: &str, origin: Option<SourceRef>) -> ThreadId {
        let request = Request::TaskRow(Box::new(name.to_string()));
        let response = match origin {
            Some(origin) => self.suspend(Call { request, origin }),
            None => self.call(request, Location::caller()),
        };
        match response {
            Response::Thread(row) => row,
            _ => unreachable!("the kernel answers a row"),
        }
    }

    /// Waits in `epoll` with nothing that could wake the thread.
    #[track_caller]
    pub(crate) fn park(&self, epoll: EpollRef) {
        self.call(Request::Park(epoll.id()), Location::caller());
    }

    /// The id of a source position.
    pub(crate) fn intern(&self, origin: SourceRef) -> crate::ids::OriginId {
        match self.suspend(Call {
            request: Request::Intern,
            origin,
        }) {
            Response::Int(id) => crate::ids::OriginId(id as u32),
            _ => unreachable!("the kernel answers an origin id"),
        }
    }

    /// Reports tasks (by row) that await each other in a cycle.
    #[track_caller]
    pub(crate) fn await_cycle(&self, rows: Vec<ThreadId>) {
        self.call(Request::AwaitCycle(Box::new(rows)), Location::caller());
    }

    /// [`Ctx::epoll_add`] attributed to `origin`.
    pub(crate) fn epoll_add_at(&self, epoll: EpollRef, key: PollKey, origin: SourceRef) {
        self.suspend(Call {
            request: Request::EpollAdd(epoll.id(), key),
            origin,
        });
    }

    /// The thread this context belongs to.
    pub fn thread(&self) -> ThreadId {
        self.thread
    }

    /// Bytes left on this thread's coroutine stack, roughly: an interpreter
    /// running on it (the script bindings) checks this to stop deep
    /// recursion with an error instead of overflowing.
    pub fn stack_left(&self) -> usize {
        approximate_stack_pointer().saturating_sub(self.stack_bottom)
    }

    /// The size of this thread's coroutine stack.
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// Attributes the following operations to a script line and column
    /// (`None`: to the calling Rust line again). Script bindings call this.
    pub fn set_script_position(&self, position: Option<(u32, u32)>) {
        self.script_position.set(position);
    }

    /// The script position set with [`Ctx::set_script_position`], if any.
    pub fn script_position(&self) -> Option<(u32, u32)> {
        self.script_position.get()
    }

    /// Uses `d` of CPU time. The thread may be preempted and resumed meanwhile.
    #[track_caller]
    pub fn compute(&self, d: Span) {
        self.call(Request::Compute(d), Location::caller());
    }

    /// Uses `d` of CPU time in native code that releases the process's
    /// interpreter lock (hashlib, zlib, numpy): other threads of the process
    /// run Python meanwhile; the thread takes the lock back after.
    #[track_caller]
    pub fn compute_nogil(&self, d: Span) {
        self.call(Request::ComputeNoGil(d), Location::caller());
    }

    /// Blocks for `d`.
    #[track_caller]
    pub fn sleep(&self, d: Span) {
        self.call(Request::Sleep(d), Location::caller());
    }

    /// Goes to the back of the ready queue.
    #[track_caller]
    pub fn yield_now(&self) {
        self.call(Request::Yield, Location::caller());
    }

    /// The current simulated time.
    #[track_caller]
    pub fn now(&self) -> Time {
        match self.call(Request::Now, Location::caller()) {
            Response::Time(t) => t,
            _ => unreachable!("the kernel answers Now with a time"),
        }
    }

    /// Logs a line stamped with the time and this thread.
    #[track_caller]
    pub fn print(&self, text: impl Into<String>) {
        self.call(Request::Print(Box::new(text.into())), Location::caller());
    }

    /// Starts a thread in this thread's process. This thread pays the
    /// machine's `thread_spawn` in CPU time; the new thread is ready after it.
    #[track_caller]
    pub fn start_thread<T: 'static>(
        &self,
        name: &str,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> JoinHandle<T> {
        self.start_thread_with(name, ThreadOptions::default(), body)
    }

    /// [`Ctx::start_thread`] with a priority and a nice value.
    #[track_caller]
    pub fn start_thread_with<T: 'static>(
        &self,
        name: &str,
        options: ThreadOptions,
        body: impl FnOnce(&Ctx<'_>) -> T + 'static,
    ) -> JoinHandle<T> {
        JoinHandle::new(self.start_boxed(name, options, boxed_body(body), Location::caller()))
    }

    /// Starts a thread whose body may fail; for script bindings.
    #[track_caller]
    pub fn start_fallible(
        &self,
        name: &str,
        options: ThreadOptions,
        body: impl FnOnce(&Ctx<'_>) -> Result<Box<dyn Any>, BodyError> + 'static,
    ) -> ThreadId {
        self.start_boxed(name, options, Box::new(body), Location::caller())
    }

    fn start_boxed(
        &self,
        name: &str,
        options: ThreadOptions,
        body: Body,
        at: &'static Location<'static>,
    ) -> ThreadId {
        let request = Request::Spawn(Box::new(Spawn {
            name: name.to_string(),
            options,
            body: body.into(),
        }));
        match self.call(request, at) {
            Response::Thread(t) => t,
            _ => unreachable!("the kernel answers Spawn with a thread"),
        }
    }

    /// Starts a process whose first thread runs `body` (which may fail; for
    /// script bindings and the Rust API alike). The caller pays nothing
    /// beyond the call; the child's first thread spends
    /// `options.spawn_cost` of CPU in state spawn before its body runs.
    #[track_caller]
    pub fn start_process(
        &self,
        name: &str,
        options: ProcessStart,
        body: impl FnOnce(&Ctx<'_>) -> Result<Box<dyn Any>, BodyError> + 'static,
    ) -> ProcessHandle {
        let request = Request::StartProcess(Box::new(StartProcess {
            name: name.to_string(),
            options,
            body: super::engine::Start::Stackful(Box::new(body)),
        }));
        match self.call(request, Location::caller()) {
            Response::Process(handle) => handle,
            _ => unreachable!("the kernel answers StartProcess with a process"),
        }
    }

    /// Blocks until the thread finishes and returns its body's value.
    #[track_caller]
    pub fn join<T: 'static>(&self, handle: JoinHandle<T>) -> T {
        let value = self.join_any(handle.thread);
        *value.downcast::<T>().expect(
            "a JoinHandle<T> joins a body returning T (the first join of a thread takes its value)",
        )
    }

    /// Joins a thread by id and returns its value untyped; for script bindings.
    #[track_caller]
    pub fn join_any(&self, thread: ThreadId) -> Box<dyn Any> {
        match self.call(Request::Join(thread), Location::caller()) {
            Response::Value(v) => v,
            _ => unreachable!("the kernel answers Join with a value"),
        }
    }

    /// Reads a variable of this thread's process. Takes no time.
    #[track_caller]
    pub fn load(&self, var: VarId) -> i64 {
        match self.call(Request::Load(var), Location::caller()) {
            Response::Int(v) => v,
            _ => unreachable!("the kernel answers Load with a value"),
        }
    }

    /// Writes a variable of this thread's process. Takes no time.
    #[track_caller]
    pub fn store(&self, var: VarId, value: i64) {
        self.call(Request::Store(var, value), Location::caller());
    }

    /// Adds `delta` to a variable atomically and returns its previous value.
    /// Takes no time; synchronizes like a lock release then acquire.
    #[track_caller]
    pub fn fetch_add(&self, var: VarId, delta: i64) -> i64 {
        match self.call(Request::FetchAdd(var, delta), Location::caller()) {
            Response::Int(v) => v,
            _ => unreachable!("the kernel answers FetchAdd with a value"),
        }
    }

    /// Sets a variable to `new` if it holds `current`, atomically: `Ok` with
    /// the previous value when it did, `Err` with the value found otherwise.
    /// Takes no time; synchronizes like a lock release then acquire.
    #[track_caller]
    pub fn compare_exchange(&self, var: VarId, current: i64, new: i64) -> Result<i64, i64> {
        let request = Request::CompareExchange(Box::new((var, current, new)));
        match self.call(request, Location::caller()) {
            Response::Int(v) if v == current => Ok(v),
            Response::Int(v) => Err(v),
            _ => unreachable!("the kernel answers CompareExchange with a value"),
        }
    }

    fn sync(&self, resource: ResourceId, op: SyncOp, at: &'static Location<'static>) -> Response {
        self.call(Request::Sync(resource, op), at)
    }

    /// Takes a mutex or a spinlock, waiting (asleep, or spinning on the CPU
    /// for a spinlock) while another thread holds it. Takes no time when it
    /// is free. Locking a lock this thread holds is an error.
    #[track_caller]
    pub fn lock(&self, lock: impl Lock) {
        let at = Location::caller();
        while let Response::Retry = self.sync(lock.resource(), SyncOp::Lock, at) {}
    }

    /// Takes the lock if it is free; never waits.
    #[track_caller]
    pub fn try_lock(&self, lock: impl Lock) -> bool {
        matches!(
            self.sync(lock.resource(), SyncOp::TryLock, Location::caller()),
            Response::Bool(true)
        )
    }

    /// Releases a lock this thread holds (an error otherwise).
    #[track_caller]
    pub fn unlock(&self, lock: impl Lock) {
        self.sync(lock.resource(), SyncOp::Unlock, Location::caller());
    }

    /// Takes a permit of the semaphore, waiting (FIFO) while there is none.
    #[track_caller]
    pub fn acquire(&self, semaphore: Semaphore) {
        self.sync(semaphore.0, SyncOp::Acquire, Location::caller());
    }

    /// Takes a permit if one is free and says whether it did; never waits.
    #[track_caller]
    pub fn try_acquire(&self, semaphore: Semaphore) -> bool {
        let response = self.sync(semaphore.0, SyncOp::TryAcquire, Location::caller());
        matches!(response, Response::Bool(true))
    }

    /// Takes a permit, waiting (FIFO) at most `timeout`; says whether it
    /// got one (`threading.Semaphore.acquire(timeout=...)`).
    #[track_caller]
    pub fn acquire_timeout(&self, semaphore: Semaphore, timeout: Span) -> bool {
        let request = Request::Timed(Box::new((semaphore.0, SyncOp::Acquire, timeout)));
        let response = self.call(request, Location::caller());
        !matches!(response, Response::Bool(false))
    }

    /// How many permits the semaphore has free now.
    #[track_caller]
    pub fn permits(&self, semaphore: Semaphore) -> u64 {
        match self.sync(semaphore.0, SyncOp::Permits, Location::caller()) {
            Response::Int(n) => n as u64,
            _ => 0,
        }
    }

    /// Gives a permit back (any thread may).
    #[track_caller]
    pub fn release(&self, semaphore: Semaphore) {
        self.sync(semaphore.0, SyncOp::Release, Location::caller());
    }

    /// Takes a reader-writer lock for reading.
    #[track_caller]
    pub fn read_lock(&self, lock: RwLock) {
        self.sync(lock.0, SyncOp::ReadLock, Location::caller());
    }

    /// Gives back a read hold.
    #[track_caller]
    pub fn read_unlock(&self, lock: RwLock) {
        self.sync(lock.0, SyncOp::ReadUnlock, Location::caller());
    }

    /// Takes a reader-writer lock for writing.
    #[track_caller]
    pub fn write_lock(&self, lock: RwLock) {
        self.sync(lock.0, SyncOp::WriteLock, Location::caller());
    }

    /// Gives back the write hold.
    #[track_caller]
    pub fn write_unlock(&self, lock: RwLock) {
        self.sync(lock.0, SyncOp::WriteUnlock, Location::caller());
    }

    /// Releases `mutex` (which this thread must hold), waits for a
    /// notification, then takes `mutex` back.
    #[track_caller]
    pub fn wait(&self, condvar: Condvar, mutex: crate::model::sync::Mutex) {
        let at = Location::caller();
        // A barging mutex freed while this thread waited to take it back
        // wakes it to race for it, as `lock` does.
        if let Response::Retry = self.sync(condvar.0, SyncOp::Wait(mutex.0), at) {
            while let Response::Retry = self.sync(mutex.0, SyncOp::Lock, at) {}
        }
    }

    /// [`Ctx::wait`] that gives up after `timeout`, takes `mutex` back all
    /// the same, and says whether it was notified (`Condition.wait(timeout)`).
    #[track_caller]
    pub fn wait_timeout(
        &self,
        condvar: Condvar,
        mutex: crate::model::sync::Mutex,
        timeout: Span,
    ) -> bool {
        let at = Location::caller();
        let request = Request::Timed(Box::new((condvar.0, SyncOp::Wait(mutex.0), timeout)));
        match self.call(request, at) {
            // Timed out: it left the condvar without the mutex.
            Response::Bool(false) => {
                self.lock(mutex);
                false
            }
            Response::Retry => {
                while let Response::Retry = self.sync(mutex.0, SyncOp::Lock, at) {}
                true
            }
            _ => true,
        }
    }

    /// Wakes the oldest waiter (the chooser may pick another); lost when no
    /// thread waits.
    #[track_caller]
    pub fn notify_one(&self, condvar: Condvar) {
        self.sync(condvar.0, SyncOp::NotifyOne, Location::caller());
    }

    /// Wakes every waiter; lost when no thread waits.
    #[track_caller]
    pub fn notify_all(&self, condvar: Condvar) {
        self.sync(condvar.0, SyncOp::NotifyAll, Location::caller());
    }

    /// Waits until the barrier's last party arrives.
    #[track_caller]
    pub fn barrier_wait(&self, barrier: Barrier) {
        self.sync(barrier.0, SyncOp::BarrierWait, Location::caller());
    }

    /// Sets the event: every thread waiting for it goes on, and a wait
    /// returns at once until it is cleared.
    #[track_caller]
    pub fn set(&self, event: Event) {
        self.sync(event.0, SyncOp::Set, Location::caller());
    }

    /// Clears the event: waits wait again.
    #[track_caller]
    pub fn clear(&self, event: Event) {
        self.sync(event.0, SyncOp::Clear, Location::caller());
    }

    /// Whether the event is set (when it is, what its setter did before
    /// setting it happens before what this thread does next).
    #[track_caller]
    pub fn is_set(&self, event: Event) -> bool {
        let response = self.sync(event.0, SyncOp::IsSet, Location::caller());
        matches!(response, Response::Bool(true))
    }

    /// Waits until the event is set (at once if it is).
    #[track_caller]
    pub fn wait_event(&self, event: Event) {
        self.sync(event.0, SyncOp::EventWait, Location::caller());
    }

    /// [`Ctx::wait_event`] that gives up after `timeout`: false when it did.
    #[track_caller]
    pub fn wait_event_timeout(&self, event: Event, timeout: Span) -> bool {
        let request = Request::Timed(Box::new((event.0, SyncOp::EventWait, timeout)));
        !matches!(
            self.call(request, Location::caller()),
            Response::Bool(false)
        )
    }

    /// Signals the countdown once; the signal that brings it to zero lets
    /// every waiter go on. A signal past zero is an error.
    #[track_caller]
    pub fn signal(&self, countdown: Countdown) {
        self.sync(countdown.0, SyncOp::Signal, Location::caller());
    }

    /// Waits until the countdown reaches zero (at once if it has).
    #[track_caller]
    pub fn wait_countdown(&self, countdown: Countdown) {
        self.sync(countdown.0, SyncOp::CountdownWait, Location::caller());
    }

    /// Sends a value, waiting while the channel is full. Between processes
    /// it costs both sides the machine's `ipc_cost` plus `ipc_byte_cost`
    /// per byte (here the value's `size_of`).
    #[track_caller]
    pub fn send<T: 'static>(&self, channel: Channel<T>, value: T) {
        let bytes = std::mem::size_of::<T>() as u64;
        self.send_sized(channel, value, bytes);
    }

    /// [`Ctx::send`] of a value whose pickled size is `bytes` (script
    /// bindings estimate it).
    #[track_caller]
    pub fn send_sized<T: 'static>(&self, channel: Channel<T>, value: T, bytes: u64) {
        let request = Request::Send(Box::new((
            channel.id,
            Box::new(value) as Box<dyn Any>,
            bytes,
        )));
        self.call(request, Location::caller());
    }

    /// Submits a request of `bytes` to `device` and goes on (no time): the
    /// handle tells when it completes ([`Ctx::io_ready`], [`Ctx::io_wait`],
    /// [`Ctx::epoll_add`]).
    #[track_caller]
    pub fn submit(&self, device: DeviceRef, bytes: u64) -> IoHandle {
        match self.call(Request::Submit(device.0, bytes), Location::caller()) {
            Response::Int(id) => IoHandle {
                id: IoId(id as u32),
                device: device.0,
                bytes,
            },
            _ => unreachable!("the kernel answers Submit with an id"),
        }
    }

    /// Blocking I/O: submits a request of `bytes` to `device` and waits, off
    /// the CPU (state io), until it completes.
    #[track_caller]
    pub fn io(&self, device: DeviceRef, bytes: u64) {
        self.call(Request::Io(device.0, bytes), Location::caller());
    }

    /// Waits, off the CPU (state io), until the request completes; returns
    /// at once if it has.
    #[track_caller]
    pub fn io_wait(&self, handle: IoHandle) {
        self.call(Request::IoWait(handle.id), Location::caller());
    }

    /// Whether the request has completed (no time).
    #[track_caller]
    pub fn io_ready(&self, handle: IoHandle) -> bool {
        matches!(
            self.call(Request::IoReady(handle.id), Location::caller()),
            Response::Bool(true)
        )
    }

    /// Creates an epoll instance of this thread's process.
    #[track_caller]
    pub fn epoll(&self) -> EpollRef {
        match self.call(Request::EpollCreate, Location::caller()) {
            Response::Int(id) => EpollRef(ResourceId(id as u32)),
            _ => unreachable!("the kernel answers EpollCreate with an id"),
        }
    }

    /// Adds a request or a channel's readiness to the epoll set (no time).
    #[track_caller]
    pub fn epoll_add(&self, epoll: EpollRef, what: impl Into<Pollable>) {
        let key = what.into().key();
        self.call(Request::EpollAdd(epoll.0, key), Location::caller());
    }

    /// Removes it from the set; false when it was not in (no time).
    #[track_caller]
    pub fn epoll_remove(&self, epoll: EpollRef, what: impl Into<Pollable>) -> bool {
        let key = what.into().key();
        matches!(
            self.call(Request::EpollRemove(epoll.0, key), Location::caller()),
            Response::Bool(true)
        )
    }

    /// How many handles the set holds, ready or not (no time).
    #[track_caller]
    pub fn epoll_len(&self, epoll: EpollRef) -> usize {
        match self.call(Request::EpollLen(epoll.0), Location::caller()) {
            Response::Int(n) => n as usize,
            _ => unreachable!("the kernel answers EpollLen with a count"),
        }
    }

    /// Waits (state epoll) until at least one handle of the set is ready,
    /// or `timeout` passes, and returns every ready one in the order they
    /// became ready, removed from the set (one-shot). A timeout that passes
    /// first returns an empty list. Waiting on an empty set with no timeout
    /// is a misuse: it would block forever.
    #[track_caller]
    pub fn epoll_wait(&self, epoll: EpollRef, timeout: Option<Span>) -> Vec<Pollable> {
        let request = Request::EpollWait(epoll.0, timeout.unwrap_or(Span::MAX));
        match self.call(request, Location::caller()) {
            Response::Ready(ready) => *ready,
            _ => unreachable!("the kernel answers EpollWait with the ready handles"),
        }
    }

    /// Receives the oldest value, waiting while the channel is empty.
    #[track_caller]
    pub fn recv<T: 'static>(&self, channel: Channel<T>) -> T {
        match self.sync(channel.id, SyncOp::Recv, Location::caller()) {
            Response::Value(value) => *value
                .downcast::<T>()
                .expect("a Channel<T> carries T values"),
            _ => unreachable!("the kernel answers Recv with a value"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_stay_small_across_the_coroutine_boundary() {
        assert!(
            std::mem::size_of::<Request>() <= 16,
            "{}",
            std::mem::size_of::<Request>()
        );
        assert!(
            std::mem::size_of::<Call>() <= 32,
            "{}",
            std::mem::size_of::<Call>()
        );
    }
}
