//! Stackless threads and tasks: a simulated thread (or asyncio task) whose
//! body is a Rust `async` block.
//!
//! A thread added with [`super::Simulation::add_thread`] runs on a coroutine
//! with a stack of its own; a parked thread keeps its stack's touched pages,
//! at least one page (4 KiB) whatever it holds. A stackless thread keeps only
//! its future: the variables live across an `.await`, typically tens of
//! bytes. It is for models of very many threads (a server with a thread per
//! connection, a million sleepers) through the Rust API.
//!
//! Each operation of [`AsyncCtx`] returns an [`AsyncOp`], a future that hands its
//! request to the kernel the first time it is polled and yields its answer the
//! second. The kernel drives the body itself: it polls the future with a
//! waker that carries the poll's mailbox (the answer to the last request,
//! and room for the next), exactly where a stackful thread would resume its
//! coroutine. The same requests reach the same kernel code, so a stackless
//! thread is scheduled, traced, checked for races and deadlocks and explored
//! like any other. An asyncio task can be stackless too
//! ([`AsyncTask`]): its loop polls it where it would resume the task's
//! coroutine.
//!
//! The body may await only its context's operations (directly or through
//! its own `async fn`s): nothing else ever wakes it, so a future that
//! waits on anything else (another library's timer or channel) fails the
//! thread with a clear error; one that is ready at once is fine. It awaits
//! one operation at a time, as a thread does: two awaited together
//! (`join!`, `select!`, or an answer left while another request goes out)
//! fail it too, with an error that says so.
//!
//! It has the operations of a stackful thread's [`super::Ctx`]: compute,
//! sleep, yield, time, print, locks, reader-writer locks, semaphores,
//! condition variables, barriers, events, countdowns, channels, shared
//! variables, I/O and epoll, timed waits, starting (with a priority or
//! not) and joining stackless threads, and starting a process whose first
//! thread is stackless. Pools take a stackless submitter too
//! ([`super::pool::Pool::submit_async`] and the other `_async` methods);
//! their workers and job bodies stay stackful. Only starting a thread with
//! a stackful body and `join_any` (which script bindings use) stay with
//! stackful threads.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::Location;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::context::{
    boxed_body, Call, JoinHandle, ProcessHandle, ProcessStart, Request, Response, SourceRef, Spawn,
    StartProcess, SyncOp,
};
use super::engine::Start;
use super::event_loop::{
    task_results, task_value, Await, StacklessTaskBody, TaskHandle, TaskResults, TaskStart,
};
use crate::error::{BodyError, Misuse};
use crate::ids::{ProcessId, ResourceId, ThreadId, VarId};
use crate::model::io::{DeviceRef, EpollRef, IoHandle, IoId, Pollable};
use crate::model::python::event_loop::TaskId;
use crate::model::sync::{
    Barrier, Channel, Condvar, Countdown, Event, Lock, Mutex, RwLock, Semaphore,
};
use crate::model::thread::ThreadOptions;
use crate::time::{Span, Time};

/// A stackless body, boxed as the kernel keeps it.
pub(crate) type StacklessFuture = Pin<Box<dyn Future<Output = Result<Box<dyn Any>, BodyError>>>>;

/// What makes a stackless body once the thread has an id.
pub(crate) type StacklessBody = Box<dyn FnOnce(AsyncCtx) -> StacklessFuture>;

/// Boxes `body` as the kernel keeps it, its value boxed as a join answers it.
pub(crate) fn boxed_stackless<F, T>(body: impl FnOnce(AsyncCtx) -> F + 'static) -> StacklessBody
where
    F: Future<Output = T> + 'static,
    T: 'static,
{
    Box::new(move |ctx| Box::pin(async move { Ok(Box::new(body(ctx).await) as Box<dyn Any>) }))
}

/// Where a polled body and the kernel hand each other a request and its
/// answer. It lives in [`step`]'s frame for one poll, and the body's
/// operations reach it through the poll's waker (see [`mailbox`]), so
/// nothing of one poll can reach the next, a panic's included.
struct Mailbox {
    /// The OS thread polling (see [`this_os_thread`]): a `Waker` may be
    /// lent to other OS threads, and the mailbox is for its own only.
    owner: *const u8,
    /// The request of the operation the polled body is waiting on.
    letter: Cell<Option<Call>>,
    /// The kernel's answer to the last request, during the next poll: the
    /// kernel's own slot (a thread's pending answer), which the operation
    /// reads in place and empties.
    answer: *mut Option<Response>,
    /// A second operation asked to be sent while one waited (`join!`).
    doubled: Cell<bool>,
}

/// The waker the kernel polls a body with: its data is the poll's
/// [`Mailbox`]. Waking it does nothing (the kernel alone decides when a
/// body runs again), and a clone has no data, so nothing kept past the
/// poll points at the mailbox.
static MAILBOX_WAKER: RawWakerVTable = RawWakerVTable::new(
    clone_without_mailbox,
    ignore_waker,
    ignore_waker,
    ignore_waker,
);

fn clone_without_mailbox(_: *const ()) -> RawWaker {
    RawWaker::new(std::ptr::null(), &MAILBOX_WAKER)
}

fn ignore_waker(_: *const ()) {}

thread_local! {
    /// A byte whose address names this OS thread (no initializer to run
    /// and nothing to drop: taking it costs an address computation).
    static HERE: u8 = const { 0 };
}

/// This OS thread, as the address of its [`HERE`].
fn this_os_thread() -> *const u8 {
    HERE.with(std::ptr::from_ref)
}

/// The mailbox of the kernel's poll that `cx` belongs to; `None` when the
/// future is polled by something other than the kernel, or by another OS
/// thread than the kernel's (a `Waker` is `Send`: a body may lend it).
fn mailbox<'a>(cx: &'a Context<'_>) -> Option<&'a Mailbox> {
    let waker = cx.waker();
    if !std::ptr::eq(waker.vtable(), &MAILBOX_WAKER) || waker.data().is_null() {
        return None;
    }
    let mailbox = waker.data().cast::<Mailbox>();
    // SAFETY: only `step` makes a waker with this vtable and data, from a
    // mailbox in its frame that outlives the poll, and `cx` borrows that
    // waker, so the mailbox is alive for `'a`; clones have no data. Its
    // `owner` is never written after `step` made it, so reading it alone
    // (not through a reference to the mailbox) races with nothing, even
    // from another OS thread; the mailbox itself is lent only to its own.
    let owner = unsafe { std::ptr::addr_of!((*mailbox).owner).read() };
    if owner != this_os_thread() {
        return None;
    }
    // SAFETY: as above, and this is the OS thread polling.
    Some(unsafe { &*mailbox })
}

/// Why a stackless body that awaited something else failed.
const STRAY: &str = "a stackless body awaited something other than its context's operations; \
     only the kernel runs its future, and it answers nothing else";

/// Why a stackless body that awaited two operations together failed.
const TWO_AT_ONCE: &str = "a stackless body awaited two of its operations at once (join!, select!); \
     a thread or task does one operation at a time: await them one after the other, or start one for each";

/// What one poll of a stackless body gave.
pub(crate) enum Step<O> {
    /// The body waits on this request.
    Call(Call),
    /// The body returned.
    Done(O),
    /// The body misused its operations (awaited something else, or two at
    /// once): why.
    Misused(&'static str),
    /// The body panicked, with this message.
    Panicked(String),
}

/// A misuse ([`Step::Misused`]) as the error its body fails with.
pub(crate) fn misuse(why: &'static str) -> BodyError {
    BodyError {
        message: why.to_string(),
        position: None,
    }
}

/// Polls `future` with `answer`, the answer to its last request (`None`
/// at its first poll, when it has asked nothing yet); the operation it was
/// for takes it, and leaves `None`. A panic of the body is caught and told.
#[inline(always)]
pub(crate) fn step<O>(
    future: &mut Pin<Box<dyn Future<Output = O>>>,
    answer: &mut Option<Response>,
) -> Step<O> {
    let mailbox = Mailbox {
        owner: this_os_thread(),
        letter: Cell::new(None),
        answer: std::ptr::from_mut(answer),
        doubled: Cell::new(false),
    };
    let raw = RawWaker::new(std::ptr::from_ref(&mailbox).cast(), &MAILBOX_WAKER);
    // SAFETY: the vtable's functions do nothing with the data pointer, and
    // `mailbox` (above) is the only reader of it, while it is alive.
    let waker = unsafe { Waker::from_raw(raw) };
    // The output, if the body returned: kept apart so that the common
    // result, still pending, is a plain flag to copy out of the unwind
    // guard.
    let mut output = None;
    let pending = catch_unwind(AssertUnwindSafe(|| {
        match future.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(value) => {
                output = Some(value);
                false
            }
            Poll::Pending => true,
        }
    }));
    // An answer nobody took while a new request went out: some operation
    // was polled before the one the answer was for.
    let unanswered = answer.is_some();
    *answer = None;
    let doubled = mailbox.doubled.get();
    let letter = mailbox.letter.take();
    match pending {
        Err(payload) => Step::Panicked(super::engine::panic_message(payload.as_ref())),
        Ok(_) if doubled => Step::Misused(TWO_AT_ONCE),
        Ok(false) => Step::Done(output.expect("a returned body's output")),
        Ok(true) => match letter {
            Some(_) if unanswered => Step::Misused(TWO_AT_ONCE),
            Some(call) => Step::Call(call),
            None => Step::Misused(STRAY),
        },
    }
}

/// The operations of a stackless thread. It is a small copyable handle: the
/// body's `async move` block takes it by value.
///
/// ```
/// use sim_core::{ms, us, Machine, ProcessId, Simulation};
/// let mut sim = Simulation::new(Machine::textbook()).unwrap();
/// let served = sim.variable(ProcessId::MAIN, "served", 0);
/// for i in 0..1000 {
///     sim.add_stackless_thread(&format!("conn{i}"), move |ctx| async move {
///         ctx.compute(us(10)).await;
///         ctx.sleep(ms(50)).await; // the client's next request
///         ctx.fetch_add(served, 1).await;
///     });
/// }
/// let run = sim.run();
/// assert!(run.completed());
/// assert_eq!(run.trace.variables[0].value, 1000);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AsyncCtx {
    thread: ThreadId,
}

impl AsyncCtx {
    pub(crate) fn new(thread: ThreadId) -> AsyncCtx {
        AsyncCtx { thread }
    }

    /// This thread's id.
    pub fn thread(&self) -> ThreadId {
        self.thread
    }

    /// Uses `d` of CPU time; the thread may be preempted and resumed meanwhile.
    #[track_caller]
    pub fn compute(&self, d: Span) -> AsyncOp<()> {
        AsyncOp::new(Request::Compute(d), Location::caller(), unit)
    }

    /// Uses `d` of CPU time in native code that releases the process's
    /// interpreter lock; takes the lock back after.
    #[track_caller]
    pub fn compute_nogil(&self, d: Span) -> AsyncOp<()> {
        AsyncOp::new(Request::ComputeNoGil(d), Location::caller(), unit)
    }

    /// Blocks for `d`.
    #[track_caller]
    pub fn sleep(&self, d: Span) -> AsyncOp<()> {
        AsyncOp::new(Request::Sleep(d), Location::caller(), unit)
    }

    /// Goes to the back of the ready queue.
    #[track_caller]
    pub fn yield_now(&self) -> AsyncOp<()> {
        AsyncOp::new(Request::Yield, Location::caller(), unit)
    }

    /// The current simulated time.
    #[track_caller]
    pub fn now(&self) -> AsyncOp<Time> {
        AsyncOp::new(
            Request::Now,
            Location::caller(),
            |response, _| match *response {
                Response::Time(t) => t,
                _ => unreachable!("the kernel answers Now with a time"),
            },
        )
    }

    /// Logs a line stamped with the time and this thread.
    #[track_caller]
    pub fn print(&self, text: impl Into<String>) -> AsyncOp<()> {
        let request = Request::Print(Box::new(text.into()));
        AsyncOp::new(request, Location::caller(), unit)
    }

    /// Reads a variable of this thread's process. Takes no time.
    #[track_caller]
    pub fn load(&self, var: VarId) -> AsyncOp<i64> {
        AsyncOp::new(Request::Load(var), Location::caller(), int)
    }

    /// Writes a variable of this thread's process. Takes no time.
    #[track_caller]
    pub fn store(&self, var: VarId, value: i64) -> AsyncOp<()> {
        AsyncOp::new(Request::Store(var, value), Location::caller(), unit)
    }

    /// Adds `delta` to a variable atomically; answers its previous value.
    #[track_caller]
    pub fn fetch_add(&self, var: VarId, delta: i64) -> AsyncOp<i64> {
        AsyncOp::new(Request::FetchAdd(var, delta), Location::caller(), int)
    }

    /// Sets a variable to `new` if it holds `current`, atomically: `Ok` with
    /// the previous value when it did, `Err` with the value found otherwise.
    #[track_caller]
    pub fn compare_exchange(
        &self,
        var: VarId,
        current: i64,
        new: i64,
    ) -> AsyncOp<Result<i64, i64>> {
        let request = Request::CompareExchange(Box::new((var, current, new)));
        let mut op =
            AsyncOp::new(
                request,
                Location::caller(),
                |response, (current, _)| match *response {
                    Response::Int(v) if v == current => Ok(v),
                    Response::Int(v) => Err(v),
                    _ => unreachable!("the kernel answers CompareExchange with a value"),
                },
            );
        op.arg = (current, 0);
        op
    }

    /// Takes a mutex or a spinlock, waiting while another thread holds it.
    #[track_caller]
    pub fn lock(&self, lock: impl Lock) -> AsyncOp<()> {
        self.lock_at(lock, Location::caller())
    }

    fn lock_at(&self, lock: impl Lock, at: &'static Location<'static>) -> AsyncOp<()> {
        let mut op = sync(lock.resource(), SyncOp::Lock, at, unit);
        // A barging mutex answers Retry when it is freed: ask again.
        op.retry = Some((lock.resource(), SourceRef::Rust(at)));
        op
    }

    /// Takes the lock if it is free and says whether it did; never waits.
    #[track_caller]
    pub fn try_lock(&self, lock: impl Lock) -> AsyncOp<bool> {
        sync(
            lock.resource(),
            SyncOp::TryLock,
            Location::caller(),
            boolean,
        )
    }

    /// Releases a lock this thread holds (an error otherwise).
    #[track_caller]
    pub fn unlock(&self, lock: impl Lock) -> AsyncOp<()> {
        sync(lock.resource(), SyncOp::Unlock, Location::caller(), unit)
    }

    /// Takes a permit of the semaphore, waiting (FIFO) while there is none.
    #[track_caller]
    pub fn acquire(&self, semaphore: Semaphore) -> AsyncOp<()> {
        sync(semaphore.0, SyncOp::Acquire, Location::caller(), unit)
    }

    /// Takes a permit if one is free and says whether it did; never waits.
    #[track_caller]
    pub fn try_acquire(&self, semaphore: Semaphore) -> AsyncOp<bool> {
        sync(semaphore.0, SyncOp::TryAcquire, Location::caller(), boolean)
    }

    /// Takes a permit, waiting (FIFO) at most `timeout`; says whether it
    /// got one.
    #[track_caller]
    pub fn acquire_timeout(&self, semaphore: Semaphore, timeout: Span) -> AsyncOp<bool> {
        let request = Request::Timed(Box::new((semaphore.0, SyncOp::Acquire, timeout)));
        AsyncOp::new(request, Location::caller(), not_timed_out)
    }

    /// How many permits the semaphore has free now.
    #[track_caller]
    pub fn permits(&self, semaphore: Semaphore) -> AsyncOp<u64> {
        sync(
            semaphore.0,
            SyncOp::Permits,
            Location::caller(),
            |response, _| match *response {
                Response::Int(n) => n as u64,
                _ => 0,
            },
        )
    }

    /// Gives a permit back.
    #[track_caller]
    pub fn release(&self, semaphore: Semaphore) -> AsyncOp<()> {
        sync(semaphore.0, SyncOp::Release, Location::caller(), unit)
    }

    /// Takes a reader-writer lock for reading.
    #[track_caller]
    pub fn read_lock(&self, lock: RwLock) -> AsyncOp<()> {
        sync(lock.0, SyncOp::ReadLock, Location::caller(), unit)
    }

    /// Gives back a read hold.
    #[track_caller]
    pub fn read_unlock(&self, lock: RwLock) -> AsyncOp<()> {
        sync(lock.0, SyncOp::ReadUnlock, Location::caller(), unit)
    }

    /// Takes a reader-writer lock for writing.
    #[track_caller]
    pub fn write_lock(&self, lock: RwLock) -> AsyncOp<()> {
        sync(lock.0, SyncOp::WriteLock, Location::caller(), unit)
    }

    /// Gives back the write hold.
    #[track_caller]
    pub fn write_unlock(&self, lock: RwLock) -> AsyncOp<()> {
        sync(lock.0, SyncOp::WriteUnlock, Location::caller(), unit)
    }

    /// Releases `mutex` (which this thread must hold), waits for a
    /// notification, then takes `mutex` back.
    #[track_caller]
    pub fn wait(&self, condvar: Condvar, mutex: Mutex) -> AsyncOp<()> {
        let at = Location::caller();
        let mut op = sync(condvar.0, SyncOp::Wait(mutex.0), at, unit);
        // A barging mutex freed while this thread waited to take it back
        // wakes it to race for it, as `lock` does.
        op.retry = Some((mutex.0, SourceRef::Rust(at)));
        op
    }

    /// [`AsyncCtx::wait`] that gives up after `timeout`, takes `mutex` back
    /// all the same, and says whether it was notified.
    #[track_caller]
    pub fn wait_timeout(
        &self,
        condvar: Condvar,
        mutex: Mutex,
        timeout: Span,
    ) -> impl Future<Output = bool> {
        let (wait, relock) = self.wait_timeout_parts(condvar, mutex, timeout);
        async move {
            match wait.await {
                Some(notified) => {
                    relock.await;
                    notified
                }
                None => true,
            }
        }
    }

    /// The two steps of [`AsyncCtx::wait_timeout`]: the timed wait, whose
    /// answer is `Some(notified)` when the mutex must be taken back, and
    /// taking it back.
    #[track_caller]
    pub(crate) fn wait_timeout_parts(
        &self,
        condvar: Condvar,
        mutex: Mutex,
        timeout: Span,
    ) -> (AsyncOp<Option<bool>>, AsyncOp<()>) {
        let at = Location::caller();
        let request = Request::Timed(Box::new((condvar.0, SyncOp::Wait(mutex.0), timeout)));
        // Timed out: it left the condvar without the mutex. Retry: a barging
        // mutex was freed while it waited to take it back.
        let wait = AsyncOp::new(request, at, |response, _| match *response {
            Response::Bool(false) => Some(false),
            Response::Retry => Some(true),
            _ => None,
        });
        (wait, self.lock_at(mutex, at))
    }

    /// Wakes the oldest waiter (the chooser may pick another); lost when no
    /// thread waits.
    #[track_caller]
    pub fn notify_one(&self, condvar: Condvar) -> AsyncOp<()> {
        sync(condvar.0, SyncOp::NotifyOne, Location::caller(), unit)
    }

    /// Wakes every waiter; lost when no thread waits.
    #[track_caller]
    pub fn notify_all(&self, condvar: Condvar) -> AsyncOp<()> {
        sync(condvar.0, SyncOp::NotifyAll, Location::caller(), unit)
    }

    /// Waits until the barrier's last party arrives.
    #[track_caller]
    pub fn barrier_wait(&self, barrier: Barrier) -> AsyncOp<()> {
        sync(barrier.0, SyncOp::BarrierWait, Location::caller(), unit)
    }

    /// Sets the event: every thread waiting for it goes on.
    #[track_caller]
    pub fn set(&self, event: Event) -> AsyncOp<()> {
        sync(event.0, SyncOp::Set, Location::caller(), unit)
    }

    /// Clears the event: waits wait again.
    #[track_caller]
    pub fn clear(&self, event: Event) -> AsyncOp<()> {
        sync(event.0, SyncOp::Clear, Location::caller(), unit)
    }

    /// Whether the event is set.
    #[track_caller]
    pub fn is_set(&self, event: Event) -> AsyncOp<bool> {
        sync(event.0, SyncOp::IsSet, Location::caller(), boolean)
    }

    /// Waits until the event is set (at once if it is).
    #[track_caller]
    pub fn wait_event(&self, event: Event) -> AsyncOp<()> {
        sync(event.0, SyncOp::EventWait, Location::caller(), unit)
    }

    /// [`AsyncCtx::wait_event`] that gives up after `timeout`: false when it did.
    #[track_caller]
    pub fn wait_event_timeout(&self, event: Event, timeout: Span) -> AsyncOp<bool> {
        let request = Request::Timed(Box::new((event.0, SyncOp::EventWait, timeout)));
        AsyncOp::new(request, Location::caller(), not_timed_out)
    }

    /// Signals the countdown once; a signal past zero is an error.
    #[track_caller]
    pub fn signal(&self, countdown: Countdown) -> AsyncOp<()> {
        sync(countdown.0, SyncOp::Signal, Location::caller(), unit)
    }

    /// Waits until the countdown reaches zero (at once if it has).
    #[track_caller]
    pub fn wait_countdown(&self, countdown: Countdown) -> AsyncOp<()> {
        sync(countdown.0, SyncOp::CountdownWait, Location::caller(), unit)
    }

    /// Sends a value, waiting while the channel is full (between processes
    /// at the machine's IPC cost for the value's `size_of`).
    #[track_caller]
    pub fn send<T: 'static>(&self, channel: Channel<T>, value: T) -> AsyncOp<()> {
        let bytes = std::mem::size_of::<T>() as u64;
        self.send_at(channel, value, bytes, Location::caller())
    }

    /// [`AsyncCtx::send`] of a value whose pickled size is `bytes` (what a
    /// process pool's pipe or a `multiprocessing.Queue` carries).
    #[track_caller]
    pub fn send_sized<T: 'static>(&self, channel: Channel<T>, value: T, bytes: u64) -> AsyncOp<()> {
        self.send_at(channel, value, bytes, Location::caller())
    }

    pub(crate) fn send_at<T: 'static>(
        &self,
        channel: Channel<T>,
        value: T,
        bytes: u64,
        at: &'static Location<'static>,
    ) -> AsyncOp<()> {
        let value = Box::new(value) as Box<dyn Any>;
        let request = Request::Send(Box::new((channel.id, value, bytes)));
        AsyncOp::new(request, at, unit)
    }

    /// Receives the oldest value, waiting while the channel is empty.
    #[track_caller]
    pub fn recv<T: 'static>(&self, channel: Channel<T>) -> AsyncOp<T> {
        sync(channel.id, SyncOp::Recv, Location::caller(), received::<T>)
    }

    /// Starts a stackless thread in this thread's process. This thread pays
    /// the machine's `thread_spawn` in CPU time; the new one is ready after.
    #[track_caller]
    pub fn start_thread<F, T>(
        &self,
        name: &str,
        body: impl FnOnce(AsyncCtx) -> F + 'static,
    ) -> AsyncOp<JoinHandle<T>>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.spawn(name, ThreadOptions::default(), body, Location::caller())
    }

    /// [`AsyncCtx::start_thread`] with a priority and a nice value.
    #[track_caller]
    pub fn start_thread_with<F, T>(
        &self,
        name: &str,
        options: ThreadOptions,
        body: impl FnOnce(AsyncCtx) -> F + 'static,
    ) -> AsyncOp<JoinHandle<T>>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.spawn(name, options, body, Location::caller())
    }

    fn spawn<F, T>(
        &self,
        name: &str,
        options: ThreadOptions,
        body: impl FnOnce(AsyncCtx) -> F + 'static,
        at: &'static Location<'static>,
    ) -> AsyncOp<JoinHandle<T>>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        let body = Start::Stackless(boxed_stackless(body));
        start_thread_op(name, options, body, at, join_handle)
    }

    /// Starts a process (`multiprocessing.Process(...).start()`) whose first
    /// thread runs the stackless `body`, with `options` (its own GIL, what
    /// starting it costs); answers the process and a handle to join that
    /// thread. The child is ready at once; this thread goes on.
    #[track_caller]
    pub fn start_process<F, T>(
        &self,
        name: &str,
        options: ProcessStart,
        body: impl FnOnce(AsyncCtx) -> F + 'static,
    ) -> AsyncOp<(ProcessHandle, JoinHandle<T>)>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        let body = Start::Stackless(boxed_stackless(body));
        start_process_op(name, options, body, Location::caller(), |response, arg| {
            let handle = new_process(response, arg);
            (handle, JoinHandle::new(handle.main))
        })
    }

    /// Waits until the thread finishes and answers its body's value.
    #[track_caller]
    pub fn join<T: 'static>(&self, handle: JoinHandle<T>) -> AsyncOp<T> {
        let request = Request::Join(handle.thread());
        AsyncOp::new(request, Location::caller(), |response, _| {
            match taken(response) {
                Response::Value(value) => *value
                    .downcast::<T>()
                    .expect("a JoinHandle<T> joins a body returning T (the first join of a thread takes its value)"),
                _ => unreachable!("the kernel answers Join with a value"),
            }
        })
    }

    /// Blocking I/O: submits a request of `bytes` to `device` and waits, off
    /// the CPU (state io), until it completes.
    #[track_caller]
    pub fn io(&self, device: DeviceRef, bytes: u64) -> AsyncOp<()> {
        AsyncOp::new(Request::Io(device.0, bytes), Location::caller(), unit)
    }

    /// Submits a request of `bytes` to `device` and goes on (no time); the
    /// handle tells when it completes.
    #[track_caller]
    pub fn submit(&self, device: DeviceRef, bytes: u64) -> AsyncOp<IoHandle> {
        let request = Request::Submit(device.0, bytes);
        let mut op =
            AsyncOp::new(
                request,
                Location::caller(),
                |response, (device, bytes)| match *response {
                    Response::Int(id) => IoHandle {
                        id: IoId(id as u32),
                        device: ResourceId(device as u32),
                        bytes,
                    },
                    _ => unreachable!("the kernel answers Submit with an id"),
                },
            );
        op.arg = (i64::from(device.0 .0), bytes);
        op
    }

    /// Waits, off the CPU (state io), until the request completes; at once
    /// if it has.
    #[track_caller]
    pub fn io_wait(&self, handle: IoHandle) -> AsyncOp<()> {
        AsyncOp::new(Request::IoWait(handle.id), Location::caller(), unit)
    }

    /// Whether the request has completed (no time).
    #[track_caller]
    pub fn io_ready(&self, handle: IoHandle) -> AsyncOp<bool> {
        AsyncOp::new(Request::IoReady(handle.id), Location::caller(), boolean)
    }

    /// Creates an epoll instance of this thread's process.
    #[track_caller]
    pub fn epoll(&self) -> AsyncOp<EpollRef> {
        AsyncOp::new(
            Request::EpollCreate,
            Location::caller(),
            |response, _| match *response {
                Response::Int(id) => EpollRef(ResourceId(id as u32)),
                _ => unreachable!("the kernel answers EpollCreate with an id"),
            },
        )
    }

    /// Adds a request or a channel's readiness to the epoll set (no time).
    #[track_caller]
    pub fn epoll_add(&self, epoll: EpollRef, what: impl Into<Pollable>) -> AsyncOp<()> {
        let request = Request::EpollAdd(epoll.0, what.into().key());
        AsyncOp::new(request, Location::caller(), unit)
    }

    /// Removes it from the set; false when it was not in (no time).
    #[track_caller]
    pub fn epoll_remove(&self, epoll: EpollRef, what: impl Into<Pollable>) -> AsyncOp<bool> {
        let request = Request::EpollRemove(epoll.0, what.into().key());
        AsyncOp::new(request, Location::caller(), boolean)
    }

    /// How many handles the set holds, ready or not (no time).
    #[track_caller]
    pub fn epoll_len(&self, epoll: EpollRef) -> AsyncOp<usize> {
        AsyncOp::new(
            Request::EpollLen(epoll.0),
            Location::caller(),
            |response, _| match *response {
                Response::Int(n) => n as usize,
                _ => unreachable!("the kernel answers EpollLen with a count"),
            },
        )
    }

    /// Waits (state epoll) until a handle of the set is ready, or `timeout`
    /// passes, and answers every ready one, removed from the set (one-shot);
    /// nothing when the timeout passed first.
    #[track_caller]
    pub fn epoll_wait(&self, epoll: EpollRef, timeout: Option<Span>) -> AsyncOp<Vec<Pollable>> {
        let request = Request::EpollWait(epoll.0, timeout.unwrap_or(Span::MAX));
        AsyncOp::new(request, Location::caller(), |response, _| {
            match taken(response) {
                Response::Ready(ready) => *ready,
                _ => unreachable!("the kernel answers EpollWait with the ready handles"),
            }
        })
    }
}

/// The requests a pool makes for a stackless submitter (see
/// [`super::pool::Pool::submit_async`]), each attributed to `at`, the
/// submitter's line, as a stackful submit's are.
impl AsyncCtx {
    pub(crate) fn fault_at(&self, misuse: Misuse, at: &'static Location<'static>) -> AsyncOp<()> {
        AsyncOp::new(Request::Fault(Box::new(misuse)), at, unit)
    }

    pub(crate) fn new_future_at(
        &self,
        job: &str,
        pool: &str,
        owner: ProcessId,
        at: &'static Location<'static>,
    ) -> AsyncOp<ResourceId> {
        let request = Request::NewFuture(Box::new((job.to_string(), pool.to_string(), owner)));
        AsyncOp::new(request, at, |response, _| match *response {
            Response::Int(id) => ResourceId(id as u32),
            _ => unreachable!("the kernel answers NewFuture with an id"),
        })
    }

    pub(crate) fn loop_clock_at(&self, at: &'static Location<'static>) -> AsyncOp<Time> {
        AsyncOp::new(Request::LoopClock, at, |response, _| match *response {
            Response::Time(t) => t,
            _ => unreachable!("the kernel answers LoopClock with the time"),
        })
    }

    pub(crate) fn compute_at(&self, d: Span, at: &'static Location<'static>) -> AsyncOp<()> {
        AsyncOp::new(Request::Compute(d), at, unit)
    }

    /// Starts a thread with a stackful body (a pool's worker or manager).
    pub(crate) fn start_stackful_at(
        &self,
        name: &str,
        body: super::context::Body,
        at: &'static Location<'static>,
    ) -> AsyncOp<ThreadId> {
        let body = Start::Stackful(body);
        start_thread_op(name, ThreadOptions::default(), body, at, new_thread)
    }

    /// Starts a process whose first thread has a stackful body (a process
    /// pool's worker).
    pub(crate) fn start_stackful_process_at(
        &self,
        name: &str,
        options: ProcessStart,
        body: super::context::Body,
        at: &'static Location<'static>,
    ) -> AsyncOp<ProcessHandle> {
        start_process_op(name, options, Start::Stackful(body), at, new_process)
    }

    /// Waits (state join) until a job's future is set.
    pub(crate) fn future_wait_at(
        &self,
        future: ResourceId,
        at: &'static Location<'static>,
    ) -> AsyncOp<()> {
        sync(future, SyncOp::FutureWait, at, unit)
    }

    /// Whether a job's future is set (no time).
    pub(crate) fn future_done_at(
        &self,
        future: ResourceId,
        at: &'static Location<'static>,
    ) -> AsyncOp<bool> {
        sync(future, SyncOp::IsSet, at, boolean)
    }

    /// Joins a thread, dropping its value (a pool's worker).
    pub(crate) fn join_at(&self, thread: ThreadId, at: &'static Location<'static>) -> AsyncOp<()> {
        AsyncOp::new(Request::Join(thread), at, |response, _| {
            drop(taken(response))
        })
    }
}

/// Starts a thread with `body`; `decode` makes the result of its id.
fn start_thread_op<H>(
    name: &str,
    options: ThreadOptions,
    body: Start,
    at: &'static Location<'static>,
    decode: fn(&mut Response, Arg) -> H,
) -> AsyncOp<H> {
    let request = Request::Spawn(Box::new(Spawn {
        name: name.to_string(),
        options,
        body,
    }));
    AsyncOp::new(request, at, decode)
}

/// Starts a process whose first thread runs `body`; `decode` makes the
/// result of its handle.
fn start_process_op<H>(
    name: &str,
    options: ProcessStart,
    body: Start,
    at: &'static Location<'static>,
    decode: fn(&mut Response, Arg) -> H,
) -> AsyncOp<H> {
    let request = Request::StartProcess(Box::new(StartProcess {
        name: name.to_string(),
        options,
        body,
    }));
    AsyncOp::new(request, at, decode)
}

fn new_thread(response: &mut Response, _: Arg) -> ThreadId {
    match *response {
        Response::Thread(thread) => thread,
        _ => unreachable!("the kernel answers Spawn with a thread"),
    }
}

fn join_handle<T>(response: &mut Response, arg: Arg) -> JoinHandle<T> {
    JoinHandle::new(new_thread(response, arg))
}

fn new_process(response: &mut Response, _: Arg) -> ProcessHandle {
    match *response {
        Response::Process(handle) => handle,
        _ => unreachable!("the kernel answers StartProcess with a process"),
    }
}

fn sync<T>(
    resource: ResourceId,
    op: SyncOp,
    at: &'static Location<'static>,
    decode: fn(&mut Response, Arg) -> T,
) -> AsyncOp<T> {
    AsyncOp::new(Request::Sync(resource, op), at, decode)
}

/// What a decoder needs beyond the answer (an exchange's expected value, a
/// submitted request's device and size).
type Arg = (i64, u64);

/// Takes an answer that carries a box out of the mailbox. The scalar
/// answers are read where they lie: moving an answer out copies it whole,
/// and that copy's load stalls on the narrower stores that just wrote it.
fn taken(response: &mut Response) -> Response {
    std::mem::replace(response, Response::Resume)
}

fn unit(_: &mut Response, _: Arg) {}

fn int(response: &mut Response, _: Arg) -> i64 {
    match *response {
        Response::Int(v) => v,
        _ => unreachable!("the kernel answers with a value"),
    }
}

fn not_timed_out(response: &mut Response, _: Arg) -> bool {
    !matches!(response, Response::Bool(false))
}

fn boolean(response: &mut Response, _: Arg) -> bool {
    matches!(response, Response::Bool(true))
}

/// One operation of a stackless thread, to be awaited: it does nothing
/// until then.
#[must_use = "an operation does nothing until it is awaited"]
pub struct AsyncOp<T> {
    /// The request, until it is handed to the kernel.
    call: Option<Call>,
    /// The mutex to ask for again when the kernel answers Retry (a barging
    /// mutex freed: a lock, or a condition wait taking its mutex back).
    retry: Option<(ResourceId, SourceRef)>,
    /// Makes the result of the answer and `arg`.
    decode: fn(&mut Response, Arg) -> T,
    arg: Arg,
}

impl<T> AsyncOp<T> {
    fn new(
        request: Request,
        at: &'static Location<'static>,
        decode: fn(&mut Response, Arg) -> T,
    ) -> AsyncOp<T> {
        AsyncOp {
            call: Some(Call {
                request,
                origin: SourceRef::Rust(at),
            }),
            retry: None,
            decode,
            arg: (0, 0),
        }
    }
}

impl<T> AsyncOp<T> {
    /// The same operation attributed to a script position (the call in
    /// a script thread body that asked for it) instead of a Rust line.
    pub(crate) fn at_script(mut self, line: u32, column: u32) -> Self {
        let origin = SourceRef::Script { line, column };
        if let Some(call) = &mut self.call {
            call.origin = origin;
        }
        if let Some((_, at)) = &mut self.retry {
            *at = origin;
        }
        self
    }
}

impl<T> std::fmt::Debug for AsyncOp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncOp")
            .field("sent", &self.call.is_none())
            .finish()
    }
}

/// An answer slot, emptied when this guard drops, a panic included.
struct Emptied<'a>(&'a mut Option<Response>);

impl Drop for Emptied<'_> {
    fn drop(&mut self) {
        *self.0 = None;
    }
}

/// Hands `call` to the kernel, unless another operation of the same poll
/// already waits: the kernel answers one at a time.
fn send(mailbox: &Mailbox, call: Call) {
    match mailbox.letter.take() {
        None => mailbox.letter.set(Some(call)),
        Some(waiting) => {
            mailbox.letter.set(Some(waiting));
            mailbox.doubled.set(true);
        }
    }
}

impl<T> Future for AsyncOp<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // Polled by something other than the kernel: it answers nothing.
        let Some(mailbox) = mailbox(cx) else {
            return Poll::Pending;
        };
        let op = self.get_mut();
        if let Some(call) = op.call.take() {
            send(mailbox, call);
            return Poll::Pending;
        }
        // SAFETY: the answer is the slot `step` lent the mailbox for this
        // poll, which nothing else touches until the poll returns.
        let answer = unsafe { &mut *mailbox.answer };
        match answer {
            Some(Response::Retry) if op.retry.is_some() => {
                *answer = None;
                let (resource, at) = op.retry.expect("a lock to retry");
                send(
                    mailbox,
                    Call {
                        request: Request::Sync(resource, SyncOp::Lock),
                        origin: at,
                    },
                );
                Poll::Pending
            }
            Some(_) => {
                // Emptied however the decoder ends: it may panic (the await
                // of a failed task), and a body that catches that panic
                // goes on to its next operation with nothing left over.
                let slot = Emptied(answer);
                let Some(response) = slot.0.as_mut() else {
                    unreachable!("matched Some")
                };
                let value = (op.decode)(response, op.arg);
                drop(slot);
                Poll::Ready(value)
            }
            // Not the poll that answers it.
            None => Poll::Pending,
        }
    }
}

/// The operations of a stackless asyncio task (see
/// [`super::Simulation::add_stackless_task`]): every operation of a stackless
/// thread (through `Deref` to [`AsyncCtx`]; they run on the loop thread and
/// block it, as plain calls do in a coroutine), and the awaits, which
/// suspend only this task. Like [`super::Task`], without a stack: a live
/// task keeps only its future. It has every await of a `Task`, the
/// executor's and pools' included (`run_in_executor`, `run_in_pool`,
/// `wrap_future`): their jobs run on pool threads, with stackful bodies.
///
/// ```
/// use sim_core::{ms, LoopOptions, Machine, ProcessId, Simulation};
/// let mut sim = Simulation::new(Machine::textbook()).unwrap();
/// let lp = sim.add_event_loop(ProcessId::MAIN, "loop", LoopOptions::default());
/// for i in 0..1_000 {
///     sim.add_stackless_task(&lp, &format!("conn{i}"), move |t| async move {
///         t.await_sleep(ms(100)).await; // every connection waits at once
///         i
///     });
/// }
/// let run = sim.run();
/// assert!(run.completed());
/// // 100ms and the loop's task switches, not 1,000 sleeps one after another.
/// assert!(run.trace.makespan().as_nanos() < ms(200).as_nanos());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AsyncTask {
    ctx: AsyncCtx,
    id: TaskId,
}

impl std::ops::Deref for AsyncTask {
    type Target = AsyncCtx;
    fn deref(&self) -> &AsyncCtx {
        &self.ctx
    }
}

impl AsyncTask {
    pub(crate) fn new(thread: ThreadId, id: TaskId) -> AsyncTask {
        AsyncTask {
            ctx: AsyncCtx::new(thread),
            id,
        }
    }

    /// This task.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// `await asyncio.sleep(d)`: the loop runs other tasks meanwhile.
    #[track_caller]
    pub fn await_sleep(&self, d: Span) -> AsyncOp<()> {
        AsyncOp::new(Request::AwaitSleep(d), Location::caller(), unit)
    }

    /// `await asyncio.sleep(0)`: lets every other ready task take a step.
    #[track_caller]
    pub fn await_yield(&self) -> AsyncOp<()> {
        ask_loop(Await::Yield, Location::caller(), unit)
    }

    /// Submits `bytes` to `device` and awaits the completion (a socket or
    /// file read through the loop's selector).
    #[track_caller]
    pub fn await_io(&self, device: DeviceRef, bytes: u64) -> AsyncOp<()> {
        let request = Request::AwaitIo(device.0, bytes);
        AsyncOp::new(request, Location::caller(), unit)
    }

    /// Starts a stackless task on this loop (`asyncio.create_task`): it runs
    /// once this one awaits.
    #[track_caller]
    pub fn start_task<F, T>(
        &self,
        name: &str,
        body: impl FnOnce(AsyncTask) -> F + 'static,
    ) -> AsyncOp<TaskHandle<T>>
    where
        F: Future<Output = T> + 'static,
        T: Clone + 'static,
    {
        let start = TaskStart::Stackless(boxed_stackless_task(body));
        ask_loop(
            Await::Start(name.to_string(), start),
            Location::caller(),
            task_handle,
        )
    }

    /// Awaits every task of `tasks` (`asyncio.gather`): their values in the
    /// order given, or the first failure, as soon as it happens.
    #[track_caller]
    pub fn gather_any(&self, tasks: &[TaskId]) -> AsyncOp<TaskResults> {
        ask_loop(
            Await::Tasks(tasks.to_vec()),
            Location::caller(),
            |response, _| task_results(taken(response)),
        )
    }

    /// Awaits a task and answers its value.
    ///
    /// # Panics
    /// If the task failed (it panicked, or misused its operations).
    #[track_caller]
    pub fn await_task<T: Clone + 'static>(&self, task: TaskHandle<T>) -> AsyncOp<T> {
        ask_loop(
            Await::Tasks(vec![task.id()]),
            Location::caller(),
            |response, _| task_value(task_results(taken(response))),
        )
    }

    /// `loop.run_in_executor(None, f)`: runs `body` on a thread of the
    /// loop's default executor; the handle is awaited like a task's. The
    /// job is a pool thread's work, so its body is a stackful one (a
    /// [`Ctx`](super::Ctx)); only this task stays stackless.
    #[track_caller]
    pub fn run_in_executor<T: Clone + 'static>(
        &self,
        body: impl FnOnce(&super::Ctx<'_>) -> T + 'static,
    ) -> AsyncOp<TaskHandle<T>> {
        ask_loop(
            Await::Executor(boxed_body(body)),
            Location::caller(),
            task_handle,
        )
    }

    /// `loop.run_in_executor(pool, f)`: runs `body` as a job of `pool` (a
    /// thread or process pool); the handle is awaited like a task's.
    #[track_caller]
    pub fn run_in_pool<T: Clone + 'static>(
        &self,
        pool: &super::pool::Pool,
        body: impl FnOnce(&super::Ctx<'_>) -> T + 'static,
    ) -> AsyncOp<TaskHandle<T>> {
        let what = Await::Pool(pool.clone(), boxed_body(body));
        ask_loop(what, Location::caller(), task_handle)
    }

    /// A pool job's future as a loop future (`asyncio.wrap_future`), to
    /// await like a task: the task waits, the loop runs others meanwhile.
    #[track_caller]
    pub fn wrap_future(&self, future: &super::pool::PoolFuture) -> AsyncOp<TaskId> {
        ask_loop(
            Await::Future(future.clone()),
            Location::caller(),
            |response, _| match *response {
                Response::Int(task) => TaskId(task as u32),
                _ => unreachable!("the loop answers a wrap with the future"),
            },
        )
    }

    /// Awaits a value from `channel` (an `asyncio.Queue.get`): the task
    /// waits until the channel holds one, then takes it.
    #[track_caller]
    pub fn await_recv<T: 'static>(&self, channel: Channel<T>) -> impl Future<Output = T> {
        let at = Location::caller();
        let readable = ask_loop(Await::Readable(channel.id), at, unit);
        let recv = sync(channel.id, SyncOp::Recv, at, received::<T>);
        async move {
            readable.await;
            recv.await
        }
    }

    /// Awaits room in `channel`, then sends `value`.
    #[track_caller]
    pub fn await_send<T: 'static>(
        &self,
        channel: Channel<T>,
        value: T,
    ) -> impl Future<Output = ()> {
        let at = Location::caller();
        let writable = ask_loop(Await::Writable(channel.id), at, unit);
        let bytes = std::mem::size_of::<T>() as u64;
        let value = Box::new(value) as Box<dyn Any>;
        let send = AsyncOp::new(
            Request::Send(Box::new((channel.id, value, bytes))),
            at,
            unit,
        );
        async move {
            writable.await;
            send.await
        }
    }
}

/// An await the loop answers.
fn ask_loop<T>(
    what: Await,
    at: &'static Location<'static>,
    decode: fn(&mut Response, Arg) -> T,
) -> AsyncOp<T> {
    AsyncOp::new(Request::Await(Box::new(what)), at, decode)
}

/// The loop's answer to a start or a submit: the task (or the job's
/// future, awaited as a task).
fn task_handle<T>(response: &mut Response, _: Arg) -> TaskHandle<T> {
    match *response {
        Response::Int(task) => TaskHandle::new(TaskId(task as u32)),
        _ => unreachable!("the loop answers a start or a submit with the task"),
    }
}

/// A value received from a channel.
fn received<T: 'static>(response: &mut Response, _: Arg) -> T {
    match taken(response) {
        Response::Value(value) => *value
            .downcast::<T>()
            .expect("a Channel<T> carries T values"),
        _ => unreachable!("the kernel answers Recv with a value"),
    }
}

/// Boxes a stackless task body as the loop keeps it.
pub(crate) fn boxed_stackless_task<F, T>(
    body: impl FnOnce(AsyncTask) -> F + 'static,
) -> StacklessTaskBody
where
    F: Future<Output = T> + 'static,
    T: Clone + 'static,
{
    Box::new(move |task| {
        Box::pin(async move { Ok(std::rc::Rc::new(body(task).await) as std::rc::Rc<dyn Any>) })
    })
}
