//! Processes and the per-process gate that decides whether a thread may run.
//!
//! A process owns threads and memory. It may carry a [`ProcessGate`]: a hook
//! the kernel consults whenever one of the process's threads wants to run,
//! stops running, or a timer the gate set fires. The GIL is such a gate; the
//! kernel knows nothing of it beyond this trait.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::ThreadId;
use crate::model::python::gil::GilEvent;
use crate::model::thread::BlockReason;
use crate::time::{Span, Time};

/// What a gate asks the kernel to do. Collected in [`GateActions`] and carried
/// out by the kernel right after the gate returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateAction {
    /// Let a held thread compete for a CPU.
    Admit(ThreadId),
    /// Stop a running thread at its next check point (at once while it
    /// computes) and pass it through the gate again.
    Interrupt(ThreadId),
    /// Call [`ProcessGate::timer`] with this token at this time.
    Timer(Time, u64),
    /// Record an event of the interpreter lock in the trace.
    Record(GilEvent),
}

/// The actions a gate queues during one call.
#[derive(Debug, Default)]
pub struct GateActions {
    pub(crate) list: Vec<GateAction>,
    /// Threads one of which the chooser picks, then [`ProcessGate::picked`].
    pub(crate) pick: Option<Vec<ThreadId>>,
    /// How many of the gate's own waiters the chooser picks from (see
    /// [`GateActions::pick_waiter`]).
    pub(crate) pick_waiter: Option<usize>,
}

impl GateActions {
    /// Lets a held thread compete for a CPU.
    pub fn admit(&mut self, thread: ThreadId) {
        self.list.push(GateAction::Admit(thread));
    }
    /// Stops a running thread at its next check point and passes it through
    /// the gate again.
    pub fn interrupt(&mut self, thread: ThreadId) {
        self.list.push(GateAction::Interrupt(thread));
    }
    /// Asks for a [`ProcessGate::timer`] call at `at` with `token`.
    pub fn set_timer(&mut self, at: Time, token: u64) {
        self.list.push(GateAction::Timer(at, token));
    }
    /// Records an event of the interpreter lock in the trace.
    pub fn record(&mut self, event: GilEvent) {
        self.list.push(GateAction::Record(event));
    }
    /// Asks the kernel's chooser to pick one of `candidates` (in the order
    /// given; the first by default), then to call [`ProcessGate::picked`]
    /// with it.
    pub fn pick(&mut self, candidates: Vec<ThreadId>) {
        self.pick = Some(candidates);
    }
    /// [`GateActions::pick`] among the gate's `count` waiters, which it
    /// lists itself ([`ProcessGate::waiter`], [`ProcessGate::waiters`]):
    /// no list is copied unless the chooser reads the threads, so a hand-off
    /// among 10,000 waiters costs what one among two does.
    pub fn pick_waiter(&mut self, count: usize) {
        self.pick_waiter = Some(count);
    }
}

/// Decides whether the threads of one process may run (the GIL plugs in here).
pub trait ProcessGate: fmt::Debug {
    /// `thread` is ready to run (new, woken, or interrupted). Return true to
    /// let it compete for a CPU now, false to hold it until the gate admits it.
    fn admit(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) -> bool;
    /// `thread` stopped running: it blocked, finished, or was interrupted.
    fn release(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions);
    /// A timer set with [`GateActions::set_timer`] fired.
    fn timer(&mut self, token: u64, now: Time, actions: &mut GateActions) {
        let _ = (token, now, actions);
    }
    /// The thread the chooser picked among those given to
    /// [`GateActions::pick`].
    fn picked(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) {
        let _ = (thread, now, actions);
    }
    /// The waiter at `index` (0: the first), for a gate that calls
    /// [`GateActions::pick_waiter`]; such a gate must answer it.
    fn waiter(&self, index: usize) -> ThreadId {
        let _ = index;
        unreachable!("a gate that asks pick_waiter lists its waiters")
    }
    /// Appends its waiters, in order, to `out`: the chooser's options of a
    /// [`GateActions::pick_waiter`], for a chooser that reads them.
    fn waiters(&self, out: &mut Vec<ThreadId>) {
        let _ = out;
    }
    /// What a held thread is shown waiting for.
    fn hold_reason(&self) -> BlockReason;
}

/// Options of a new process.
#[derive(Debug, Default)]
pub struct ProcessOptions {
    /// The gate its threads pass to run, if any.
    pub gate: Option<Box<dyn ProcessGate>>,
    /// A CPython interpreter lock with this switch interval (see
    /// [`crate::model::python::gil`]); takes the place of `gate`.
    pub gil: Option<Span>,
    /// Every compute of its threads takes this fraction longer: 0.1 for
    /// the free-threaded build's single-thread overhead (PEP 703). Default 0.
    pub compute_overhead: f64,
}

impl ProcessOptions {
    /// A CPython process: its threads share an interpreter lock with this
    /// switch interval (CPython's default is 5ms).
    pub fn python(switch_interval: Span) -> ProcessOptions {
        ProcessOptions {
            gate: None,
            gil: Some(switch_interval),
            compute_overhead: 0.0,
        }
    }
}

/// What the trace keeps of a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its name.
    pub name: String,
}
