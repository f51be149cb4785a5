//! Stackless threads: a simulated thread whose body is a Rust `async` block.
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
//! second. The kernel drives the body itself: it polls the future with the
//! answer to the last request and takes the next request from this OS
//! thread's mailbox, exactly where a stackful thread would resume its
//! coroutine. The same requests reach the same kernel code, so a stackless
//! thread is scheduled, traced, checked for races and deadlocks and explored
//! like any other.
//!
//! The body may await only its context's operations (directly or through
//! its own `async fn`s): an executor of another library never answers
//! them, and awaiting its futures fails the thread with a clear error.
//! The operations are those of computing, waiting and sharing: compute,
//! sleep, yield, time, print, locks, semaphores, shared variables and
//! blocking I/O. A body that needs more (starting or joining threads,
//! channels, condition variables) is a stackful thread.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::context::{Call, Request, Response, SourceRef, SyncOp};
use crate::error::BodyError;
use crate::ids::{ResourceId, ThreadId, VarId};
use crate::model::io::DeviceRef;
use crate::model::sync::{Lock, Semaphore};
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

thread_local! {
    /// The request of the operation the polled body is waiting on.
    static LETTER: Cell<Option<Call>> = const { Cell::new(None) };
    /// The kernel's answer to it, during the next poll.
    static ANSWER: Cell<Option<Response>> = const { Cell::new(None) };
}

/// What one poll of a stackless body gave.
pub(crate) enum Step {
    /// The body waits on this request.
    Call(Call),
    /// The body returned.
    Done(Result<Box<dyn Any>, BodyError>),
    /// The body waits on something other than its context's operations.
    Stray,
}

/// Polls `future` with `response`, the answer to its last request.
pub(crate) fn step(future: &mut StacklessFuture, response: Response) -> Step {
    ANSWER.set(Some(response));
    let polled = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    ANSWER.set(None);
    match polled {
        Poll::Ready(result) => {
            LETTER.set(None);
            Step::Done(result)
        }
        Poll::Pending => match LETTER.take() {
            Some(call) => Step::Call(call),
            None => Step::Stray,
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
            |response, _| match response {
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
        let mut op = AsyncOp::new(
            request,
            Location::caller(),
            |response, current| match response {
                Response::Int(v) if v == current => Ok(v),
                Response::Int(v) => Err(v),
                _ => unreachable!("the kernel answers CompareExchange with a value"),
            },
        );
        op.arg = current;
        op
    }

    /// Takes a mutex or a spinlock, waiting while another thread holds it.
    #[track_caller]
    pub fn lock(&self, lock: impl Lock) -> AsyncOp<()> {
        let at = Location::caller();
        let mut op = sync(lock.resource(), SyncOp::Lock, at, unit);
        // A barging mutex answers Retry when it is freed: ask again.
        op.retry = Some((lock.resource(), at));
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

    /// Gives a permit back.
    #[track_caller]
    pub fn release(&self, semaphore: Semaphore) -> AsyncOp<()> {
        sync(semaphore.0, SyncOp::Release, Location::caller(), unit)
    }

    /// Blocking I/O: submits a request of `bytes` to `device` and waits, off
    /// the CPU (state io), until it completes.
    #[track_caller]
    pub fn io(&self, device: DeviceRef, bytes: u64) -> AsyncOp<()> {
        AsyncOp::new(Request::Io(device.0, bytes), Location::caller(), unit)
    }
}

fn sync<T>(
    resource: ResourceId,
    op: SyncOp,
    at: &'static Location<'static>,
    decode: fn(Response, i64) -> T,
) -> AsyncOp<T> {
    AsyncOp::new(Request::Sync(resource, op), at, decode)
}

fn unit(_: Response, _: i64) {}

fn int(response: Response, _: i64) -> i64 {
    match response {
        Response::Int(v) => v,
        _ => unreachable!("the kernel answers with a value"),
    }
}

fn boolean(response: Response, _: i64) -> bool {
    matches!(response, Response::Bool(true))
}

/// One operation of a stackless thread, to be awaited: it does nothing
/// until then.
#[must_use = "an operation does nothing until it is awaited"]
pub struct AsyncOp<T> {
    /// The request, until it is handed to the kernel.
    call: Option<Call>,
    /// The lock to ask for again when the kernel answers Retry.
    retry: Option<(ResourceId, &'static Location<'static>)>,
    /// Makes the result of the answer and `arg`.
    decode: fn(Response, i64) -> T,
    arg: i64,
}

impl<T> AsyncOp<T> {
    fn new(
        request: Request,
        at: &'static Location<'static>,
        decode: fn(Response, i64) -> T,
    ) -> AsyncOp<T> {
        AsyncOp {
            call: Some(Call {
                request,
                origin: SourceRef::Rust(at),
            }),
            retry: None,
            decode,
            arg: 0,
        }
    }
}

impl<T> std::fmt::Debug for AsyncOp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncOp")
            .field("sent", &self.call.is_none())
            .finish()
    }
}

impl<T> Future for AsyncOp<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        let op = self.get_mut();
        if let Some(call) = op.call.take() {
            LETTER.set(Some(call));
            return Poll::Pending;
        }
        match ANSWER.take() {
            Some(Response::Retry) if op.retry.is_some() => {
                let (resource, at) = op.retry.expect("a lock to retry");
                LETTER.set(Some(Call {
                    request: Request::Sync(resource, SyncOp::Lock),
                    origin: SourceRef::Rust(at),
                }));
                Poll::Pending
            }
            Some(response) => Poll::Ready((op.decode)(response, op.arg)),
            // Polled by something other than the kernel: no answer yet.
            None => Poll::Pending,
        }
    }
}
