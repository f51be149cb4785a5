//! Synchronization in scripts: `m.mutex(...)`, `m.semaphore(...)`, … declare
//! resources with a machine; inside bodies their methods (`lock`, `acquire`,
//! `send`, …) are operations of the running thread.

use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext, INT};

use super::api::def;
use super::current;
use super::duration::to_span;
use super::error::fault;
use super::machine::{MachineHandle, ThreadHandle};
use crate::ids::ResourceId;
use crate::kernel::Simulation;
use crate::model::sync::{
    Barrier, Channel, Condvar, Countdown, Event, Mutex, MutexOptions, RLock, RwLock, RwPrefer,
    Semaphore, Spinlock,
};
use crate::trace::ResourceKind;

/// A resource as a script declares it.
#[derive(Clone, Debug)]
pub(crate) enum ResourceSpec {
    Mutex(MutexOptions),
    RLock,
    Spinlock,
    Semaphore(u64),
    BoundedSemaphore(u64),
    RwLock(RwPrefer),
    Condvar,
    Barrier(usize),
    Event,
    Countdown(u64),
    Channel(usize),
    Device(crate::model::io::DeviceOptions),
}

/// Declares `spec` in `sim`; ids follow declaration order.
pub(crate) fn create(sim: &mut Simulation, name: &str, spec: &ResourceSpec) -> ResourceId {
    match *spec {
        ResourceSpec::Mutex(options) => sim.mutex(name, options).id(),
        ResourceSpec::RLock => sim.rlock(name).id(),
        ResourceSpec::Spinlock => sim.spinlock(name).id(),
        ResourceSpec::Semaphore(permits) => sim.semaphore(name, permits).id(),
        ResourceSpec::BoundedSemaphore(permits) => sim.bounded_semaphore(name, permits).id(),
        ResourceSpec::RwLock(prefer) => sim.rwlock(name, prefer).id(),
        ResourceSpec::Condvar => sim.condvar(name).id(),
        ResourceSpec::Barrier(parties) => sim.barrier(name, parties).id(),
        ResourceSpec::Event => sim.event(name).id(),
        ResourceSpec::Countdown(count) => sim.countdown(name, count).id(),
        ResourceSpec::Channel(capacity) => sim.channel::<Dynamic>(name, capacity).id(),
        ResourceSpec::Device(options) => sim.device(name, options).id(),
    }
}

/// A script's handle to one resource of one machine.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    machine: MachineHandle,
    id: ResourceId,
}

impl ChannelH {
    /// The channel, checked to belong to the machine that is running.
    pub(crate) fn resource(
        &self,
        call: &NativeCallContext,
    ) -> Result<ResourceId, Box<EvalAltResult>> {
        self.0.id(call)
    }
}

impl Handle {
    /// The resource, checked to belong to the machine that is running.
    fn id(&self, call: &NativeCallContext) -> Result<ResourceId, Box<EvalAltResult>> {
        self.machine.check_running(call, "resource")?;
        Ok(self.id)
    }
}

macro_rules! handle_type {
    ($($name:ident),*) => {$(
        /// A script handle (see [`Handle`]).
        #[derive(Clone, Debug)]
        pub(crate) struct $name(Handle);
    )*};
}

handle_type!(
    MutexH, RLockH, SpinlockH, SemaphoreH, RwLockH, CondvarH, BarrierH, EventH, CountdownH,
    ChannelH
);

fn options_map(
    call: &NativeCallContext,
    map: &Map,
    allowed: &[&str],
    what: &str,
) -> Result<(), Box<EvalAltResult>> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(fault(
            format!("{what} has no option `{key}`"),
            Some(&format!("its options are: {}", allowed.join(", "))),
            call.call_position(),
        )),
        None => Ok(()),
    }
}

fn flag(
    call: &NativeCallContext,
    map: &Map,
    key: &str,
    default: bool,
) -> Result<bool, Box<EvalAltResult>> {
    match map.get(key) {
        None => Ok(default),
        Some(value) => value.as_bool().map_err(|_| {
            fault(
                format!("`{key}` must be true or false, not {value}"),
                None,
                call.call_position(),
            )
        }),
    }
}

fn count(
    call: &NativeCallContext,
    what: &str,
    n: INT,
    min: INT,
) -> Result<u64, Box<EvalAltResult>> {
    if n < min {
        return Err(fault(
            format!("{what} must be at least {min}, not {n}"),
            None,
            call.call_position(),
        ));
    }
    Ok(n as u64)
}

fn declare(
    call: &NativeCallContext,
    machine: &MachineHandle,
    name: &str,
    spec: ResourceSpec,
) -> Result<Handle, Box<EvalAltResult>> {
    let id = machine.declare_resource(call, name, spec)?;
    Ok(Handle {
        machine: machine.clone(),
        id,
    })
}

/// Runs a sync operation on the current thread.
fn op<R>(
    call: &NativeCallContext,
    handle: &Handle,
    f: impl FnOnce(&crate::kernel::Ctx<'_>, ResourceId) -> R,
) -> Result<R, Box<EvalAltResult>> {
    let id = handle.id(call)?;
    current::operation(call, |ctx| f(ctx, id))
}

/// The kind, machine and resource of a synchronization handle (for a body
/// run without a stack, see `script::stackless`).
pub(crate) fn handle_parts(value: &Dynamic) -> Option<(ResourceKind, MachineHandle, ResourceId)> {
    let parts = |kind, h: &Handle| Some((kind, h.machine.clone(), h.id));
    macro_rules! kinds {
        ($($ty:ident => $kind:ident),*) => {$(
            if let Some(h) = value.read_lock::<$ty>() {
                return parts(ResourceKind::$kind, &h.0);
            }
        )*};
    }
    kinds!(
        MutexH => Mutex, SpinlockH => Spinlock, RLockH => RLock, SemaphoreH => Semaphore,
        RwLockH => RwLock, CondvarH => Condvar, BarrierH => Barrier, EventH => Event,
        CountdownH => Countdown, ChannelH => Channel
    );
    None
}

/// Whether `value` is a handle whose methods may block.
fn is_blocking_handle(value: &Dynamic) -> bool {
    value.is::<MutexH>()
        || value.is::<RLockH>()
        || value.is::<SpinlockH>()
        || value.is::<SemaphoreH>()
        || value.is::<RwLockH>()
        || value.is::<CondvarH>()
        || value.is::<BarrierH>()
        || value.is::<EventH>()
        || value.is::<CountdownH>()
        || value.is::<ChannelH>()
        || value.is::<ThreadHandle>()
        || value.is::<super::machine::ChildProcess>()
        || value.is::<super::memory::VariableH>()
        || value.is::<super::io::DeviceH>()
        || value.is::<super::io::IoH>()
        || value.is::<super::io::EpollH>()
        // A captured closure's `.call(...)` may block inside the call too.
        || value.is_fnptr()
}

/// Reads captured handles by value.
///
/// Closures share the variables they capture, and Rhai write-locks a shared
/// variable for the length of a method call on it. A method that blocks
/// (`lock`, `recv`, `join`, …) suspends the thread inside that call, so a
/// second thread calling a method on the same captured handle would find it
/// locked ("data race"). Handles are immutable, so every read of a shared
/// handle yields a copy, and the method runs on the copy.
///
/// (`on_var` is marked volatile in Rhai; the workspace pins rhai 1.27.)
#[allow(deprecated)]
pub(crate) fn install_handle_reads(engine: &mut Engine) {
    engine.on_var(|name, _, context| {
        let Some(value) = context.scope().get(name) else {
            return Ok(None);
        };
        if !value.is_shared() {
            return Ok(None);
        }
        // Look before copying: other shared values (arrays, maps) may be large.
        let handle = value
            .read_lock::<Dynamic>()
            .is_some_and(|inner| is_blocking_handle(&inner));
        Ok(handle.then(|| value.flatten_clone()))
    });
}

/// Roughly the size of a value pickled: 8 bytes a number, a string's
/// length, and the sum of the parts of arrays and maps (plus 8 each).
pub(crate) fn pickled_size(value: &Dynamic) -> u64 {
    if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        return text.len() as u64;
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        return array.iter().map(|v| 8 + pickled_size(v)).sum();
    }
    if let Some(map) = value.read_lock::<Map>() {
        return map
            .iter()
            .map(|(k, v)| 8 + k.len() as u64 + pickled_size(v))
            .sum();
    }
    8
}

/// Registers the resource types, their constructors and their methods.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<MutexH>("Mutex");
    engine.register_type_with_name::<RLockH>("RLock");
    engine.register_type_with_name::<SpinlockH>("Spinlock");
    engine.register_type_with_name::<SemaphoreH>("Semaphore");
    engine.register_type_with_name::<RwLockH>("RwLock");
    engine.register_type_with_name::<CondvarH>("Condvar");
    engine.register_type_with_name::<BarrierH>("Barrier");
    engine.register_type_with_name::<EventH>("Event");
    engine.register_type_with_name::<CountdownH>("Countdown");
    engine.register_type_with_name::<ChannelH>("Channel");

    // ----- declarations -----
    def(
        engine,
        "mutex",
        &["self: Machine", "name: String", "Mutex"],
        "Declares a fair mutex: unlock hands it to the oldest waiter.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str| {
            declare(&call, m, name, ResourceSpec::Mutex(MutexOptions::default())).map(MutexH)
        },
    );
    def(
        engine,
        "mutex",
        &["self: Machine", "name: String", "options: Map", "Mutex"],
        "Declares a mutex with #{ fair (default true; false: barging), inherit (priority inheritance) }.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, options: Map| {
            options_map(&call, &options, &["fair", "inherit"], "a mutex")?;
            let options = MutexOptions {
                fair: flag(&call, &options, "fair", true)?,
                inherit: flag(&call, &options, "inherit", false)?,
            };
            declare(&call, m, name, ResourceSpec::Mutex(options)).map(MutexH)
        },
    );
    def(
        engine,
        "rlock",
        &["self: Machine", "name: String", "RLock"],
        "Declares a reentrant lock (Python's threading.RLock): its owner may lock it again, and it is free once unlocked as many times; waiters are served FIFO.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str| {
            declare(&call, m, name, ResourceSpec::RLock).map(RLockH)
        },
    );
    def(
        engine,
        "spinlock",
        &["self: Machine", "name: String", "Spinlock"],
        "Declares a spinlock: a waiter keeps its CPU, spinning.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str| {
            declare(&call, m, name, ResourceSpec::Spinlock).map(SpinlockH)
        },
    );
    def(
        engine,
        "semaphore",
        &["self: Machine", "name: String", "permits: int", "Semaphore"],
        "Declares a counting semaphore with `permits` permits; waiters are served FIFO.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, permits: INT| {
            let permits = count(&call, "a semaphore's permits", permits, 0)?;
            declare(&call, m, name, ResourceSpec::Semaphore(permits)).map(SemaphoreH)
        },
    );
    def(
        engine,
        "bounded_semaphore",
        &["self: Machine", "name: String", "permits: int", "Semaphore"],
        "Declares a bounded semaphore (Python's threading.BoundedSemaphore): a release that would leave more than `permits` permits is an error.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, permits: INT| {
            let permits = count(&call, "a semaphore's permits", permits, 0)?;
            declare(&call, m, name, ResourceSpec::BoundedSemaphore(permits)).map(SemaphoreH)
        },
    );
    def(
        engine,
        "rwlock",
        &["self: Machine", "name: String", "RwLock"],
        "Declares a reader-writer lock that prefers readers.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str| {
            declare(&call, m, name, ResourceSpec::RwLock(RwPrefer::Readers)).map(RwLockH)
        },
    );
    def(
        engine,
        "rwlock",
        &["self: Machine", "name: String", "options: Map", "RwLock"],
        "Declares a reader-writer lock with #{ prefer: \"readers\" | \"writers\" | \"fifo\" }.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, options: Map| {
            options_map(&call, &options, &["prefer"], "a rwlock")?;
            let prefer = match options.get("prefer") {
                None => RwPrefer::Readers,
                Some(value) => value
                    .clone()
                    .into_string()
                    .ok()
                    .and_then(|s| RwPrefer::from_name(&s))
                    .ok_or_else(|| {
                        fault(
                            format!("`prefer` must be \"readers\", \"writers\" or \"fifo\", not {value}"),
                            None,
                            call.call_position(),
                        )
                    })?,
            };
            declare(&call, m, name, ResourceSpec::RwLock(prefer)).map(RwLockH)
        },
    );
    def(
        engine,
        "condvar",
        &["self: Machine", "name: String", "Condvar"],
        "Declares a condition variable (a notify with no waiter is lost).",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str| {
            declare(&call, m, name, ResourceSpec::Condvar).map(CondvarH)
        },
    );
    def(
        engine,
        "barrier",
        &["self: Machine", "name: String", "parties: int", "Barrier"],
        "Declares a barrier that opens when `parties` threads wait at it.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, parties: INT| {
            let parties = count(&call, "a barrier's parties", parties, 1)? as usize;
            declare(&call, m, name, ResourceSpec::Barrier(parties)).map(BarrierH)
        },
    );
    def(
        engine,
        "event",
        &["self: Machine", "name: String", "Event"],
        "Declares an event (Python's threading.Event, C#'s ManualResetEvent), not set: a flag threads wait for until another sets it.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str| {
            declare(&call, m, name, ResourceSpec::Event).map(EventH)
        },
    );
    def(
        engine,
        "countdown",
        &["self: Machine", "name: String", "count: int", "Countdown"],
        "Declares a countdown (C#'s CountdownEvent): threads wait until it has been signalled `count` times.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, n: INT| {
            let n = count(&call, "a countdown's count", n, 0)?;
            declare(&call, m, name, ResourceSpec::Countdown(n)).map(CountdownH)
        },
    );
    def(
        engine,
        "channel",
        &["self: Machine", "name: String", "capacity: int", "Channel"],
        "Declares a bounded channel: send waits while it is full, recv while it is empty; works across processes.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, capacity: INT| {
            let capacity = count(&call, "a channel's capacity", capacity, 1)? as usize;
            declare(&call, m, name, ResourceSpec::Channel(capacity)).map(ChannelH)
        },
    );

    // ----- operations -----
    macro_rules! locks {
        ($($ty:ident $wrap:ident $tyname:literal),*) => {$(
            def(
                engine,
                "lock",
                &[concat!("self: ", $tyname), "()"],
                "Inside a body: takes the lock, waiting while another thread holds it.",
                |call: NativeCallContext, h: &mut $ty| op(&call, &h.0, |ctx, id| ctx.lock($wrap(id))),
            );
            def(
                engine,
                "unlock",
                &[concat!("self: ", $tyname), "()"],
                "Inside a body: releases the lock (only its holder may).",
                |call: NativeCallContext, h: &mut $ty| op(&call, &h.0, |ctx, id| ctx.unlock($wrap(id))),
            );
            def(
                engine,
                "try_lock",
                &[concat!("self: ", $tyname), "bool"],
                "Inside a body: takes the lock if it is free and says whether it did; never waits.",
                |call: NativeCallContext, h: &mut $ty| op(&call, &h.0, |ctx, id| ctx.try_lock($wrap(id))),
            );
        )*};
    }
    locks!(MutexH Mutex "Mutex", SpinlockH Spinlock "Spinlock");
    def(
        engine,
        "lock",
        &["self: RLock", "()"],
        "Inside a body: takes the reentrant lock, waiting while another thread holds it; its owner takes it again at once.",
        |call: NativeCallContext, h: &mut RLockH| op(&call, &h.0, |ctx, id| ctx.lock(RLock(id))),
    );
    def(
        engine,
        "unlock",
        &["self: RLock", "()"],
        "Inside a body: gives back one level of the reentrant lock (only its owner may); the last frees it.",
        |call: NativeCallContext, h: &mut RLockH| op(&call, &h.0, |ctx, id| ctx.unlock(RLock(id))),
    );
    def(
        engine,
        "try_lock",
        &["self: RLock", "bool"],
        "Inside a body: takes the reentrant lock if it is free or this thread owns it, and says whether it did; never waits.",
        |call: NativeCallContext, h: &mut RLockH| op(&call, &h.0, |ctx, id| ctx.try_lock(RLock(id))),
    );
    macro_rules! simple {
        ($ty:ident $tyname:literal: $($name:literal $method:ident $wrap:ident $doc:literal),*) => {$(
            def(
                engine,
                $name,
                &[concat!("self: ", $tyname), "()"],
                $doc,
                |call: NativeCallContext, h: &mut $ty| op(&call, &h.0, |ctx, id| ctx.$method($wrap(id))),
            );
        )*};
    }
    simple!(SemaphoreH "Semaphore":
        "acquire" acquire Semaphore "Inside a body: takes a permit, waiting (FIFO) while there is none.",
        "release" release Semaphore "Inside a body: gives a permit back (any thread may; past its permits, a bounded semaphore refuses).");
    def(
        engine,
        "acquire",
        &["self: Semaphore", "timeout: Duration", "bool"],
        "Inside a body: takes a permit, waiting (FIFO) at most `timeout`; false when it gave up.",
        |call: NativeCallContext, h: &mut SemaphoreH, timeout: Dynamic| {
            let timeout = to_span(&timeout, "the timeout", call.call_position())?;
            op(&call, &h.0, |ctx, id| {
                ctx.acquire_timeout(Semaphore(id), timeout)
            })
        },
    );
    def(
        engine,
        "try_acquire",
        &["self: Semaphore", "bool"],
        "Inside a body: takes a permit if one is free and says whether it did; never waits.",
        |call: NativeCallContext, h: &mut SemaphoreH| {
            op(&call, &h.0, |ctx, id| ctx.try_acquire(Semaphore(id)))
        },
    );
    def(
        engine,
        "value",
        &["self: Semaphore", "int"],
        "Inside a body: how many permits are free now.",
        |call: NativeCallContext, h: &mut SemaphoreH| {
            op(&call, &h.0, |ctx, id| ctx.permits(Semaphore(id)) as INT)
        },
    );
    simple!(RwLockH "RwLock":
        "read_lock" read_lock RwLock "Inside a body: takes the lock for reading.",
        "read_unlock" read_unlock RwLock "Inside a body: gives back a read hold.",
        "write_lock" write_lock RwLock "Inside a body: takes the lock for writing.",
        "write_unlock" write_unlock RwLock "Inside a body: gives back the write hold.");
    simple!(CondvarH "Condvar":
        "notify_one" notify_one Condvar "Inside a body: wakes one waiter; lost if none waits.",
        "notify_all" notify_all Condvar "Inside a body: wakes every waiter; lost if none waits.");
    simple!(BarrierH "Barrier":
        "wait" barrier_wait Barrier "Inside a body: waits until every party has arrived.");
    simple!(CountdownH "Countdown":
        "signal" signal Countdown "Inside a body: counts one signal; the last lets every waiter go on (a signal past zero is an error).",
        "wait" wait_countdown Countdown "Inside a body: waits until the countdown has had all its signals (at once if it has).");
    simple!(EventH "Event":
        "set" set Event "Inside a body: sets the event; every thread waiting for it goes on, and waits return at once until it is cleared.",
        "clear" clear Event "Inside a body: clears the event; waits wait again.");
    def(
        engine,
        "is_set",
        &["self: Event", "bool"],
        "Inside a body: whether the event is set.",
        |call: NativeCallContext, h: &mut EventH| op(&call, &h.0, |ctx, id| ctx.is_set(Event(id))),
    );
    def(
        engine,
        "wait",
        &["self: Event", "bool"],
        "Inside a body: waits until the event is set (at once if it is); returns true.",
        |call: NativeCallContext, h: &mut EventH| {
            op(&call, &h.0, |ctx, id| {
                ctx.wait_event(Event(id));
                true
            })
        },
    );
    def(
        engine,
        "wait",
        &["self: Event", "timeout: Duration", "bool"],
        "Inside a body: ev.wait() that gives up after `timeout`; false when it did.",
        |call: NativeCallContext, h: &mut EventH, timeout: Dynamic| {
            let timeout = to_span(&timeout, "the timeout", call.call_position())?;
            op(&call, &h.0, |ctx, id| {
                ctx.wait_event_timeout(Event(id), timeout)
            })
        },
    );
    def(
        engine,
        "wait",
        &["self: Condvar", "mutex: Mutex", "()"],
        "Inside a body: releases `mutex` (held by this thread), waits for a notify, then takes `mutex` back.",
        |call: NativeCallContext, cv: &mut CondvarH, mutex: MutexH| {
            let mutex = mutex.0.id(&call)?;
            op(&call, &cv.0, |ctx, id| ctx.wait(Condvar(id), Mutex(mutex)))
        },
    );
    def(
        engine,
        "wait",
        &["self: Condvar", "mutex: Mutex", "timeout: Duration", "bool"],
        "Inside a body: cv.wait(mutex) that gives up after `timeout` (and takes `mutex` back all the same); false when it timed out.",
        |call: NativeCallContext, cv: &mut CondvarH, mutex: MutexH, timeout: Dynamic| {
            let mutex = mutex.0.id(&call)?;
            let timeout = to_span(&timeout, "the timeout", call.call_position())?;
            op(&call, &cv.0, |ctx, id| {
                ctx.wait_timeout(Condvar(id), Mutex(mutex), timeout)
            })
        },
    );
    def(
        engine,
        "wait_for",
        &["self: Condvar", "mutex: Mutex", "predicate: Fn", "bool"],
        "Inside a body, holding `mutex`: waits (cv.wait) until `predicate()` is true, checking it first and after every wake-up, as Python's Condition.wait_for does; returns true.",
        |call: NativeCallContext,
         cv: &mut CondvarH,
         mutex: MutexH,
         predicate: rhai::FnPtr|
         -> Result<bool, Box<EvalAltResult>> {
            let mutex = mutex.0.id(&call)?;
            loop {
                let holds = predicate.call_within_context::<Dynamic>(&call, ())?;
                let holds = holds.as_bool().map_err(|_| {
                    fault(
                        format!("the predicate of wait_for must return true or false, not {holds}"),
                        None,
                        call.call_position(),
                    )
                })?;
                if holds {
                    return Ok(true);
                }
                op(&call, &cv.0, |ctx, id| ctx.wait(Condvar(id), Mutex(mutex)))?;
            }
        },
    );
    def(
        engine,
        "send",
        &["self: Channel", "value: Dynamic", "()"],
        "Inside a body: sends a value, waiting while the channel is full; between processes both sides pay ipc_cost plus ipc_byte_cost per byte of the value.",
        |call: NativeCallContext, ch: &mut ChannelH, value: Dynamic| {
            let bytes = pickled_size(&value);
            op(&call, &ch.0, |ctx, id| {
                ctx.send_sized(Channel::<Dynamic>::new(id), value, bytes)
            })
        },
    );
    def(
        engine,
        "recv",
        &["self: Channel", "Dynamic"],
        "Inside a body: receives the oldest value, waiting while the channel is empty.",
        |call: NativeCallContext, ch: &mut ChannelH| {
            op(&call, &ch.0, |ctx, id| {
                ctx.recv(Channel::<Dynamic>::new(id))
            })
        },
    );
    def(
        engine,
        "readable",
        &["self: Channel", "IoHandle"],
        "A handle epoll waits on until the channel holds a value to receive.",
        |call: NativeCallContext, ch: &mut ChannelH| {
            let id = ch.0.id(&call)?;
            Ok::<_, Box<EvalAltResult>>(super::io::IoH::channel(
                ch.0.machine.clone(),
                crate::model::io::Pollable::Readable(id),
            ))
        },
    );
    def(
        engine,
        "writable",
        &["self: Channel", "IoHandle"],
        "A handle epoll waits on until the channel has room to send.",
        |call: NativeCallContext, ch: &mut ChannelH| {
            let id = ch.0.id(&call)?;
            Ok::<_, Box<EvalAltResult>>(super::io::IoH::channel(
                ch.0.machine.clone(),
                crate::model::io::Pollable::Writable(id),
            ))
        },
    );
}
