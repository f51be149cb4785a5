//! The engine: clock, event loop, CPUs and thread lifecycle.
//!
//! The loop takes the earliest instant's events from the queue (the chooser
//! picks among same-instant events), handles one, then fills idle CPUs from
//! the scheduling policy. A thread on a CPU is driven by [`Engine::advance`]:
//! it computes in segments that end at the end of the compute or of the slice,
//! and between segments its coroutine is resumed to get the next request.
//! Zero-time requests are answered at once (the chooser may preempt there);
//! blocking requests take the thread off its CPU.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use corosensei::{Coroutine, CoroutineResult};

use super::choice::{Choice, ChoicePoint, Chooser, Decision};
use super::context::{
    Body, Call, Ctx, ProcessHandle, Request, Response, SourceRef, Spawn, StartProcess,
};
use super::event::EventQueue;
use super::stack::{parked_at, prefetch, red_zone_floor, PooledStack};
use super::stackless::{self, AsyncCtx, StacklessBody, StacklessFuture, Step};
use super::wait::WaitQueue;
use super::{Outcome, Waiting};
use crate::analysis::race::{RaceDetector, SyncObject};
use crate::error::{BodyError, Misuse, SimError, Site};
use crate::ids::{CpuId, OriginId, ProcessId, ResourceId, ThreadId, VarId};
use crate::model::footprint::{Footprint, OutOfMemory};
use crate::model::io::IoId;
use crate::model::machine::Machine;
use crate::model::memory::Memory;
use crate::model::process::{GateAction, GateActions, ProcessGate, ProcessInfo};
use crate::model::sched::{policy_for, Enqueue, Policy};
use crate::model::sync::Resource;
use crate::model::thread::{BlockReason, ThreadOptions, ThreadState};
use crate::time::{Span, Time};
use crate::trace::{AccessKind, LogLine, Origin, StateChange, ThreadInfo, Trace};

mod event_loop;
pub(crate) use event_loop::{PendingState, TaskLog};
mod io;
mod pool;
mod sync;

/// How many options a same-instant or dispatch choice offers at most: the
/// first few events of an instant, the first few tied threads. Repeated
/// choices still reach every order of small groups, and a crowded instant
/// (100,000 threads waking together) stays linear.
pub(crate) const CHOICE_WINDOW: usize = 8;

/// How a body ended.
enum Exit {
    Value(Box<dyn Any>),
    Failed(BodyError),
    Panicked(String),
}

type Coro = Coroutine<Response, Call, Exit, PooledStack>;

/// What runs a thread's body.
enum Runner {
    /// Not dispatched yet: its body waits in its lifecycle.
    Unstarted,
    /// A closure on a coroutine with its own stack.
    Stack(Coro),
    /// A future, polled by the kernel (see `stackless`).
    Future(StacklessFuture),
    /// Ended.
    Ended,
}

/// A thread's body before it starts.
pub(crate) enum Start {
    /// A closure given a [`Ctx`], run on a coroutine.
    Stackful(Body),
    /// An `async` block given an [`super::AsyncCtx`], polled.
    Stackless(StacklessBody),
}

impl From<Body> for Start {
    fn from(body: Body) -> Start {
        Start::Stackful(body)
    }
}

/// Events of the queue.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// The current segment of a CPU ends (a switch, a compute, or a slice).
    /// Stale when the CPU's generation has moved on.
    CpuDone { cpu: u16, generation: u32 },
    /// A blocked thread's timer (sleep) fires. Stale when the thread's wake
    /// generation has moved on.
    Wake { thread: ThreadId, generation: u32 },
    /// A process gate's timer.
    GateTimer { process: ProcessId, token: u64 },
    /// An I/O request reaches its device (at the instant it was submitted:
    /// the chooser orders same-instant arrivals).
    IoArrive { io: IoId },
    /// An I/O request completes.
    IoDone { io: IoId },
    /// An epoll set's waiter wakes, after the events already at this
    /// instant: completions of one instant come back in one wait.
    EpollWake { epoll: ResourceId },
}

/// What a thread does once its current compute is done.
enum Then {
    Resume,
    Spawned(ThreadId),
    /// Native work is done: pass the process's gate again.
    Regate,
    /// A new process's start-up is done: its body runs.
    Started,
    /// Pickling is done: the message goes into the channel.
    Send(Box<(ResourceId, crate::model::sync::Message, SourceRef)>),
    /// Unpickling is done: the thread resumes with the answer it has.
    Keep,
    /// An event loop's own work is done: it resumes with the time.
    Clock,
}

enum Work {
    None,
    Compute {
        remaining: Span,
        then: Then,
    },
    /// Busy-waiting on the CPU for a spinlock.
    Spin(ResourceId),
}

/// What the engine touches of a thread at every operation. The fields used
/// only when a thread starts or ends are in [`Lifecycle`], so that these
/// records stay small and a thousand of them stay in cache.
struct Thread {
    process: ProcessId,
    state: ThreadState,
    runner: Runner,
    /// The answer to deliver at the next resume.
    pending: Option<Response>,
    work: Work,
    cpu: Option<usize>,
    wake_generation: u32,
    /// The gate asked this thread to stop when it is next on a CPU.
    interrupt: bool,
    /// The first thread of a new process, still starting it (state spawn).
    spawning: bool,
    /// Its process's compute stretch, in millionths (kept here: the thread
    /// record is at hand at every compute).
    stretch: u32,
    last_origin: Option<(SourceRef, OriginId)>,
    /// The stack pointer when it last parked (0 before its first run) and
    /// its stack's top: the span of stack to prefetch before a resume.
    parked_at: usize,
    stack_top: usize,
}

impl Thread {
    /// A thread of `process`, ready and not yet started, computing at
    /// `stretch` (millionths).
    fn new(process: ProcessId, stretch: u32) -> Thread {
        Thread {
            process,
            state: ThreadState::Ready,
            runner: Runner::Unstarted,
            pending: None,
            work: Work::None,
            cpu: None,
            wake_generation: 0,
            interrupt: false,
            spawning: false,
            stretch,
            last_origin: None,
            parked_at: 0,
            stack_top: 0,
        }
    }
}

/// A thread's start and end: its body until it first runs, its value and
/// joiners once it ends.
struct Lifecycle {
    body: Option<Start>,
    /// The body's value once finished, until the first join takes it.
    value: Option<Box<dyn Any>>,
    joiners: WaitQueue,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Idle,
    Switching,
    Running,
}

struct Cpu {
    thread: Option<ThreadId>,
    last: Option<ThreadId>,
    phase: Phase,
    generation: u32,
    /// When the current compute segment started.
    segment_start: Time,
    /// When the current slice ends (`Time::MAX`: never).
    slice_end: Time,
}

struct ProcessSlot {
    gate: Option<Box<dyn ProcessGate>>,
    /// Every compute of its threads takes this many millionths longer
    /// (the free-threaded build's single-thread overhead).
    stretch: u32,
    /// Threads alive in it: it holds its memory while it has any.
    live: u32,
}

/// Threads a scenario is assumed to have when lists are first sized.
const SMALL: usize = 8;

/// Events a run may handle per unit of `max_events`: `max_events` counts
/// the threads' operations, and this bound stops a run whose events come
/// without operations (an event loop's timers and I/O, which its tasks
/// await without calling the kernel). A legitimate run handles a few events
/// per operation (a wake, an end of computation, preemptions).
pub(crate) const EVENTS_PER_OPERATION: u64 = 64;

/// The state of one simulation.
pub(crate) struct Engine {
    pub(crate) machine: Machine,
    script: Option<String>,
    now: Time,
    queue: EventQueue<Event>,
    cpus: Vec<Cpu>,
    idle: usize,
    threads: Vec<Thread>,
    /// Indexed like `threads`.
    lives: Vec<Lifecycle>,
    processes: Vec<ProcessSlot>,
    pub(crate) memory: Memory,
    /// Memory the processes and threads hold.
    footprint: Footprint,
    /// Synchronization resources, by [`ResourceId`].
    resources: Vec<Resource>,
    /// When a thread woken by a barging unlock first started to wait.
    barging_since: Vec<Option<Time>>,
    /// Happens-before bookkeeping for data-race detection.
    races: RaceDetector,
    /// Who waits for each I/O request and channel readiness.
    watches: io::Watches,
    /// Reused list of the watchers of a completing request.
    watchers_scratch: Vec<io::Watcher>,
    /// Duration perturbation: up to this percent either way, as the chooser
    /// decides (0: none).
    jitter: u32,
    policy: Box<dyn Policy>,
    /// The chooser set with [`Engine::set_chooser`]; `None` is the default
    /// [`FirstChooser`](super::FirstChooser), answered inline: option 0.
    chooser: Option<Box<dyn Chooser>>,
    /// The chooser looks at the run when it decides
    /// ([`Chooser::wants_snapshot`]): keep `positions`.
    observing: bool,
    /// Each thread's last operations and how many it has called, kept
    /// only while `observing`.
    positions: Vec<Positions>,
    pub(crate) decisions: Vec<Decision>,
    /// Operations the threads called (compute, sleep, join, …).
    pub(crate) operations: u64,
    /// Threads an open choice concerns.
    scratch: Vec<ThreadId>,
    pub(crate) trace: Trace,
    origin_ids: BTreeMap<(usize, u32, u32), OriginId>,
    /// Events handled and bookkeeping calls, against the internal bound
    /// [`EVENTS_PER_OPERATION`] × `max_events`.
    events: u64,
    /// The row states event loops recorded since the engine last looked
    /// (see `event_loop::TaskLog`); `None` until a loop is added.
    pub(crate) task_log: Option<event_loop::TaskLog>,
    /// Channels whose idle receivers are told to stop when nothing else is
    /// left to happen (a pool's workers at interpreter exit), with the
    /// value that tells them.
    exits: Vec<(ResourceId, pool::StopValue)>,
    error: Option<SimError>,
    unfinished: usize,
    started: bool,
    /// The thread and position of the last operation called, for the
    /// position of a limit (two fields: written on every operation, a pair
    /// would be built on the stack and copied).
    last_thread: Option<ThreadId>,
    last_origin: Option<SourceRef>,
    /// The instant the operations since the clock last moved were called
    /// at, and how many there were (against `max_steps_at_instant`).
    instant: Time,
    steps_at_instant: u64,
    /// The threads and positions of the last operations before a zero-time
    /// livelock, gathered once the count nears the limit.
    repeating: Vec<(ThreadId, SourceRef)>,
}

/// How many of a thread's last operations a [`super::Snapshot`] shows.
const RECENT: usize = 8;

/// A thread's last [`RECENT`] operations (a ring) and how many it called.
#[derive(Clone, Default)]
struct Positions {
    recent: [Option<SourceRef>; RECENT],
    count: u64,
}

impl Positions {
    /// The script positions of the last operations, oldest first (`None`
    /// for one not in the script).
    fn recent(&self) -> Vec<Option<(u32, u32)>> {
        let kept = self.count.min(RECENT as u64);
        (self.count - kept..self.count)
            .map(|n| match self.recent[(n % RECENT as u64) as usize] {
                Some(SourceRef::Script { line, column }) => Some((line, column)),
                _ => None,
            })
            .collect()
    }
}

/// Operations before `max_steps_at_instant` whose threads and positions a
/// livelock error names.
const LIVELOCK_WITNESSES: u64 = 4096;

impl Engine {
    pub(crate) fn new(machine: Machine) -> Engine {
        let memory = machine.memory;
        let cpus = (0..machine.cpus)
            .map(|_| Cpu {
                thread: None,
                last: None,
                phase: Phase::Idle,
                generation: 0,
                segment_start: Time::ZERO,
                slice_end: Time::MAX,
            })
            .collect();
        let mut trace = Trace::new(machine.clone());
        // Room for a small scenario, so that the many short runs of an
        // exploration do not pay for growing every list from empty.
        trace.threads.reserve(SMALL);
        trace.states.reserve(8 * SMALL);
        let mut engine = Engine {
            policy: policy_for(&machine),
            idle: usize::from(machine.cpus),
            trace,
            machine,
            script: None,
            now: Time::ZERO,
            queue: EventQueue::new(),
            cpus,
            threads: Vec::with_capacity(SMALL),
            lives: Vec::with_capacity(SMALL),
            processes: Vec::new(),
            memory: Memory::default(),
            footprint: Footprint::new(memory),
            resources: Vec::new(),
            barging_since: Vec::new(),
            jitter: 0,
            races: RaceDetector::new(),
            watches: io::Watches::default(),
            watchers_scratch: Vec::new(),
            chooser: None,
            observing: false,
            positions: Vec::new(),
            decisions: Vec::with_capacity(4 * SMALL),
            operations: 0,
            scratch: Vec::with_capacity(SMALL),
            origin_ids: BTreeMap::new(),
            events: 0,
            task_log: None,
            exits: Vec::new(),
            error: None,
            unfinished: 0,
            started: false,
            last_thread: None,
            last_origin: None,
            instant: Time::ZERO,
            steps_at_instant: 0,
            repeating: Vec::new(),
        };
        engine.add_process("main", None);
        engine
    }

    pub(crate) fn set_chooser(&mut self, chooser: Box<dyn Chooser>) {
        self.observing = chooser.wants_snapshot();
        self.chooser = Some(chooser);
    }

    pub(crate) fn set_jitter(&mut self, percent: u32) {
        self.jitter = percent;
    }

    /// `d` perturbed by up to the jitter percent either way, as the chooser
    /// decides (unchanged without jitter, and by the default chooser).
    #[inline(always)]
    fn jittered(&mut self, d: Span) -> Span {
        // No question when the largest perturbation is under a nanosecond.
        if self.jitter == 0 || u128::from(d.as_nanos()) * u128::from(self.jitter) < 100 {
            return d;
        }
        self.scratch.clear();
        let chosen = self.choose(
            ChoicePoint::Jitter,
            super::choice::jitter_options(self.jitter),
        );
        Span(super::choice::jittered(d.as_nanos(), chosen))
    }

    pub(crate) fn set_script_name(&mut self, name: &str) {
        self.script = Some(name.to_string());
    }

    /// The script that script positions refer to, if any.
    pub(crate) fn script_name(&self) -> Option<&str> {
        self.script.as_deref()
    }

    pub(crate) fn add_process(
        &mut self,
        name: &str,
        gate: Option<Box<dyn ProcessGate>>,
    ) -> ProcessId {
        self.processes.push(ProcessSlot {
            gate,
            stretch: 0,
            live: 0,
        });
        self.trace.processes.push(ProcessInfo {
            name: name.to_string(),
        });
        ProcessId(self.processes.len() as u32 - 1)
    }

    /// Makes every compute of `process`'s threads `overhead` longer (0.1:
    /// 10% longer).
    pub(crate) fn set_compute_overhead(&mut self, process: ProcessId, overhead: f64) {
        let ppm = (overhead.clamp(0.0, 1000.0) * 1e6).round() as u32;
        self.processes[process.index()].stretch = ppm;
    }

    pub(crate) fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Creates a thread record; it becomes ready with [`Engine::make_ready`].
    pub(crate) fn create_thread(
        &mut self,
        name: String,
        process: ProcessId,
        options: ThreadOptions,
        body: impl Into<Start>,
        parent: Option<ThreadId>,
    ) -> ThreadId {
        let id = ThreadId(self.threads.len() as u32);
        if parent.is_none() && self.unfinished as u64 >= self.machine.max_threads {
            // Declared before the run: the run stops at its start.
            self.fail(SimError::Misuse {
                thread: name.clone(),
                time: self.now,
                origin: None,
                misuse: Misuse::TooManyThreads {
                    limit: self.machine.max_threads,
                },
            });
        }
        if let Err(out) = self.charge(process) {
            // Declared before the run: the run stops at its start.
            let what = if self.processes[process.index()].live == 0 {
                "process"
            } else {
                "thread"
            };
            self.fail(SimError::Misuse {
                thread: name.clone(),
                time: self.now,
                origin: None,
                misuse: out_of_memory(what, out),
            });
        }
        self.threads.push(Thread::new(
            process,
            self.processes[process.index()].stretch,
        ));
        self.lives.push(Lifecycle {
            body: Some(body.into()),
            value: None,
            joiners: WaitQueue::new(),
        });
        self.trace.threads.push(ThreadInfo {
            name,
            process,
            parent,
            created: self.now,
            priority: options.priority,
            nice: options.nice,
            task_of: None,
        });
        self.policy.add_thread(id, options);
        self.races.thread_started(parent, id);
        self.unfinished += 1;
        id
    }

    /// Takes the memory a new thread of `process` holds: the process's own
    /// when it is its first, a thread's otherwise.
    fn charge(&mut self, process: ProcessId) -> Result<(), OutOfMemory> {
        let slot = &mut self.processes[process.index()];
        let bytes = if slot.live == 0 {
            self.machine.process_memory
        } else {
            self.machine.thread_memory
        };
        self.footprint.take(process, bytes)?;
        slot.live += 1;
        self.memory_changed();
        Ok(())
    }

    /// Gives back what a thread of `process` held; the process's own when
    /// it was the last.
    fn discharge(&mut self, process: ProcessId) {
        let slot = &mut self.processes[process.index()];
        slot.live = slot.live.saturating_sub(1);
        let bytes = if slot.live == 0 {
            self.machine.process_memory
        } else {
            self.machine.thread_memory
        };
        self.footprint.free(process, bytes);
        self.memory_changed();
    }

    fn memory_changed(&mut self) {
        let used = self.footprint.used();
        match self.trace.memory.last_mut() {
            Some(last) if last.time == self.now => last.used = used,
            _ => self.trace.memory.push(crate::trace::MemorySample {
                time: self.now,
                used,
            }),
        }
    }

    /// Whether a new thread (`process` false) or process could start now.
    fn room_for(&self, process: bool) -> Result<(), OutOfMemory> {
        self.footprint.room_for(if process {
            self.machine.process_memory
        } else {
            self.machine.thread_memory
        })
    }

    fn name(&self, thread: ThreadId) -> String {
        self.trace.threads[thread.index()].name.clone()
    }

    fn fail(&mut self, error: SimError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    // ----- the loop -------------------------------------------------------

    /// Runs until every thread is done, nothing is left to happen, or an
    /// error stops the run.
    pub(crate) fn run(&mut self) -> Outcome {
        if !self.started {
            self.started = true;
            for i in 0..self.threads.len() {
                self.make_ready(ThreadId(i as u32), Enqueue::New);
            }
        }
        self.reschedule();
        // Once every thread is done nothing can observe what is left (a
        // GIL waiter's timer, a request nobody waits for): the run ends
        // with its last thread, not with its last timer.
        while self.error.is_none() && self.unfinished > 0 {
            // Only idle pool workers are left: the interpreter exits now,
            // whatever timers (a GIL's) are still set.
            if !self.exits.is_empty() && self.idle_at_exit() == self.unfinished {
                self.interpreter_exit();
                self.reschedule();
                continue;
            }
            let Some((time, count)) = self.queue.gather(CHOICE_WINDOW, |event| {
                Self::live(&self.cpus, &self.threads, event)
            }) else {
                if self.interpreter_exit() {
                    self.reschedule();
                    continue;
                }
                break;
            };
            if time > self.machine.max_time {
                self.now = self.machine.max_time;
                let site = self.last_site();
                self.fail(SimError::TimeLimit {
                    limit: self.machine.max_time,
                    site,
                });
                break;
            }
            self.now = time;
            let index = if count > 1 {
                self.scratch.clear();
                if self.wants_threads() {
                    for event in self.queue.batch().take(count) {
                        let subject = match *event {
                            Event::CpuDone { cpu, .. } => self.cpus[usize::from(cpu)].thread,
                            Event::Wake { thread, .. } => Some(thread),
                            Event::GateTimer { .. } => None,
                            Event::IoArrive { io } | Event::IoDone { io } => {
                                Some(self.trace.io[io.index()].thread)
                            }
                            Event::EpollWake { epoll } => self.epoll_waiter(epoll),
                        };
                        self.scratch.extend(subject);
                    }
                }
                self.choose(ChoicePoint::SameInstant, count)
            } else {
                0
            };
            let event = self.queue.take(index);
            if index > 0 && !Self::live(&self.cpus, &self.threads, &event) {
                continue;
            }
            if !self.count_event() {
                break;
            }
            self.handle(event);
            self.reschedule();
        }
        if self.task_log.is_some() {
            self.drain_task_log();
        }
        if self.observing {
            if let Some(mut chooser) = self.chooser.take() {
                chooser.run_ended(&|| self.snapshot());
                self.chooser = Some(chooser);
            }
        }
        self.trace.end = self.now;
        self.trace.peak_memory = self.footprint.peak();
        self.trace.process_peaks = (0..self.processes.len())
            .map(|p| self.footprint.process_peak(ProcessId(p as u32)))
            .collect();
        if let Some(error) = self.error.take() {
            return Outcome::Failed(error);
        }
        if self.unfinished > 0 {
            let waiting = self
                .threads
                .iter()
                .enumerate()
                .filter(|(_, t)| t.state != ThreadState::Done)
                .map(|(i, t)| Waiting {
                    thread: ThreadId(i as u32),
                    state: t.state,
                })
                .collect();
            if self.trace.deadlock.is_some() {
                return Outcome::Deadlocked(waiting);
            }
            return Outcome::Stalled(waiting);
        }
        Outcome::Completed
    }

    /// Whether an event still matters (its CPU segment or timer was not
    /// cancelled since it was scheduled).
    fn live(cpus: &[Cpu], threads: &[Thread], event: &Event) -> bool {
        match *event {
            Event::CpuDone { cpu, generation } => cpus[usize::from(cpu)].generation == generation,
            Event::Wake { thread, generation } => {
                threads[thread.index()].wake_generation == generation
            }
            Event::GateTimer { .. }
            | Event::IoArrive { .. }
            | Event::IoDone { .. }
            | Event::EpollWake { .. } => true,
        }
    }

    /// Counts one operation of a thread against `max_events`.
    #[inline(always)]
    fn count_operation(&mut self) -> bool {
        if self.operations >= self.machine.max_events {
            let site = self.last_site();
            self.fail(SimError::EventLimit {
                limit: self.machine.max_events,
                time: self.now,
                events: false,
                site,
            });
            return false;
        }
        self.operations += 1;
        if self.operations & 63 == 0 {
            return self.check_guards(self.operations & (super::guard::CHECK_EVERY - 1) == 0);
        }
        true
    }

    /// Counts an operation of `thread` at this instant against
    /// `max_steps_at_instant`: false when the clock has stood still for
    /// that many (a zero-time livelock), and the run stops.
    #[inline(always)]
    fn count_step(&mut self, thread: ThreadId, origin: SourceRef) -> bool {
        self.last_thread = Some(thread);
        self.last_origin = Some(origin);
        if self.now != self.instant {
            self.instant = self.now;
            self.steps_at_instant = 0;
            self.repeating.clear();
        }
        self.steps_at_instant += 1;
        if self.steps_at_instant + LIVELOCK_WITNESSES > self.machine.max_steps_at_instant {
            return self.witness_livelock(thread, origin);
        }
        true
    }

    /// Near the livelock limit: gathers which threads repeat which
    /// operations, and stops the run at the limit.
    #[cold]
    #[inline(never)]
    fn witness_livelock(&mut self, thread: ThreadId, origin: SourceRef) -> bool {
        if !self.repeating.contains(&(thread, origin)) && self.repeating.len() < 16 {
            self.repeating.push((thread, origin));
        }
        if self.steps_at_instant <= self.machine.max_steps_at_instant {
            return true;
        }
        let mut repeating: Vec<Site> = Vec::new();
        for &(thread, origin) in &self.repeating {
            let site = Site {
                thread: self.name(thread),
                origin: Some(self.origin_of(origin)),
            };
            // One line per thread: its operations in the loop, first seen.
            if !repeating.iter().any(|s| s.thread == site.thread) {
                repeating.push(site);
            }
        }
        self.fail(SimError::Livelock {
            limit: self.machine.max_steps_at_instant,
            time: self.now,
            repeating,
        });
        false
    }

    /// A host guard stopped the run: its suspended threads are forgotten
    /// with everything on their stacks, not unwound. Unwinding a stack runs
    /// every destructor of every frame, and a script that tripped the
    /// memory guard may have tens of thousands of deep ones (60,000 threads
    /// each waiting to join the next took 12 s to unwind, twice what the
    /// run took to reach the guard). The memory stays taken until the
    /// process exits, which follows a tripped guard in `simcli`. A
    /// stackless thread's future is shallow: it is dropped with the engine.
    pub(crate) fn abandon_threads(&mut self) {
        for thread in &mut self.threads {
            if let Runner::Stack(coroutine) = std::mem::replace(&mut thread.runner, Runner::Ended) {
                std::mem::forget(coroutine);
            }
        }
    }

    /// The thread and position of the last operation called, for a limit.
    fn last_site(&self) -> Option<Site> {
        let (thread, origin) = (self.last_thread?, self.last_origin?);
        Some(Site {
            thread: self.name(thread),
            origin: Some(self.origin_of(origin)),
        })
    }

    /// Asks the host's guards (memory, and the timeout when `clock`); false
    /// when one tripped and the run stops.
    #[cold]
    #[inline(never)]
    fn check_guards(&mut self, clock: bool) -> bool {
        let tripped = if clock {
            super::guard::check()
        } else {
            super::guard::check_memory()
        };
        let Some(tripped) = tripped else {
            return true;
        };
        let site = self.last_site();
        let time = self.now;
        self.fail(match tripped {
            super::guard::Tripped::Memory { used, limit } => SimError::MemoryLimit {
                used,
                limit,
                time,
                site,
            },
            super::guard::Tripped::Timeout { seconds } => SimError::Timeout {
                seconds,
                time,
                site,
            },
        });
        false
    }

    /// Counts one event (or an event loop's bookkeeping call) against the
    /// internal bound, so that a run that handles events without operations
    /// (an event loop's timers, say) still ends.
    #[inline(always)]
    fn count_event(&mut self) -> bool {
        self.events += 1;
        if self.events > self.machine.max_events.saturating_mul(EVENTS_PER_OPERATION) {
            let site = self.last_site();
            self.fail(SimError::EventLimit {
                limit: self.machine.max_events,
                time: self.now,
                events: true,
                site,
            });
            return false;
        }
        if self.events & 63 == 0 {
            return self.check_guards(self.events & (super::guard::CHECK_EVERY - 1) == 0);
        }
        true
    }

    /// Whether the chooser wants [`Choice::threads`] filled in.
    fn wants_threads(&self) -> bool {
        self.chooser.as_ref().is_some_and(|c| c.wants_threads())
    }

    /// Asks the chooser (with `self.scratch` as the options' threads) and
    /// records the decision. The default chooser takes option 0 without a
    /// call or a record: replaying an empty list answers option 0 throughout,
    /// so the empty list is its schedule (and a long run does not spend
    /// memory on millions of zeros).
    #[inline(always)]
    fn choose(&mut self, point: ChoicePoint, options: usize) -> usize {
        if self.chooser.is_none() {
            return 0;
        }
        let Some(chosen) = self.ask_chooser(point, options) else {
            return 0;
        };
        self.decisions.push(Decision {
            point,
            options: options as u32,
            chosen: chosen as u32,
        });
        chosen
    }

    /// Asks the chooser set with [`Engine::set_chooser`]. `None` when it
    /// failed or answered out of range: the run then stops with the error.
    fn ask_chooser(&mut self, point: ChoicePoint, options: usize) -> Option<usize> {
        let answer = if self.observing {
            let mut chooser = self.chooser.take().expect("a chooser to ask");
            let choice = Choice {
                point,
                options,
                threads: &self.scratch,
            };
            let answer = chooser.choose_seeing(&choice, &|| self.snapshot());
            self.chooser = Some(chooser);
            answer
        } else {
            let choice = Choice {
                point,
                options,
                threads: &self.scratch,
            };
            let chooser = self.chooser.as_mut().expect("a chooser to ask");
            chooser.choose(&choice)
        };
        let error = match answer {
            Ok(chosen) if chosen < options => return Some(chosen),
            Ok(chosen) => {
                super::ChooserError(format!("chose option {chosen} of {options} at {point:?}"))
            }
            Err(error) => error,
        };
        self.fail(SimError::Chooser {
            time: self.now,
            error,
        });
        None
    }

    /// Remembers `thread`'s last operation, for [`Engine::snapshot`].
    #[inline(never)]
    fn note_position(&mut self, thread: ThreadId, origin: SourceRef) {
        if self.positions.len() <= thread.index() {
            self.positions
                .resize_with(thread.index() + 1, Positions::default);
        }
        let slot = &mut self.positions[thread.index()];
        slot.recent[(slot.count % RECENT as u64) as usize] = Some(origin);
        slot.count += 1;
    }

    /// The run as it stands, for a chooser that looks at it.
    fn snapshot(&self) -> super::Snapshot {
        use super::{LockSnapshot, Snapshot, ThreadSnapshot, VariableSnapshot};
        let threads = self
            .threads
            .iter()
            .enumerate()
            .map(|(i, thread)| ThreadSnapshot {
                id: ThreadId(i as u32),
                name: self.trace.threads[i].name.clone(),
                state: crate::analysis::deadlock::describe_state(&self.trace, thread.state),
                cpu: thread.cpu.filter(|_| thread.state.on_cpu()),
                recent: self
                    .positions
                    .get(i)
                    .map_or_else(Vec::new, Positions::recent),
                operations: self.positions.get(i).map_or(0, |p| p.count),
                busy: matches!(thread.work, Work::Compute { .. } | Work::Spin(_)),
            })
            .collect();
        let variables = (0..)
            .map_while(|i| self.memory.get(VarId(i)))
            .map(|v| VariableSnapshot {
                name: v.name.clone(),
                value: v.value,
            })
            .collect();
        let mut locks = Vec::new();
        for (i, resource) in self.resources.iter().enumerate() {
            let info = &self.trace.resources[i];
            if info.internal {
                continue;
            }
            let mut holders = Vec::new();
            resource.holders(&mut holders);
            let mut waiters = Vec::new();
            let mut permits = None;
            match resource {
                Resource::Mutex { waiters: queue, .. }
                | Resource::Spinlock {
                    spinners: queue, ..
                } => queue.threads_into(&mut waiters),
                Resource::Semaphore {
                    waiters: queue,
                    permits: free,
                    ..
                } => {
                    queue.threads_into(&mut waiters);
                    permits = Some(*free);
                }
                Resource::RwLock { waiters: queue, .. } => {
                    waiters.extend(queue.iter().map(|(w, _)| w.thread));
                }
                _ => continue,
            }
            // While the resource is being handed over (a `Waiter`
            // question), its queue is out of it: its waiters are then the
            // threads blocked on it, in creation order.
            let id = ResourceId(i as u32);
            for (t, thread) in self.threads.iter().enumerate() {
                let on_it = match thread.state {
                    ThreadState::Blocked(
                        BlockReason::Lock(r) | BlockReason::Semaphore(r) | BlockReason::RwLock(r),
                    )
                    | ThreadState::Spin(r) => r == id,
                    _ => false,
                };
                let t = ThreadId(t as u32);
                if on_it && !waiters.contains(&t) {
                    waiters.push(t);
                }
            }
            locks.push(LockSnapshot {
                name: info.name.clone(),
                kind: info.kind.name(),
                holders,
                waiters,
                permits,
            });
        }
        Snapshot {
            time: self.now,
            threads,
            variables,
            locks,
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::CpuDone { cpu, .. } => self.segment_end(usize::from(cpu)),
            Event::Wake { thread, .. } => self.timer_fired(thread),
            Event::IoArrive { io } => self.io_arrive(io),
            Event::IoDone { io } => self.io_done(io),
            Event::EpollWake { epoll } => self.epoll_wake_now(epoll),
            Event::GateTimer { process, token } => self.with_gate(process, |gate, now, actions| {
                gate.timer(token, now, actions);
            }),
        }
    }

    // ----- CPUs -------------------------------------------------------------

    /// Fills idle CPUs, lowest index first, from the head of the ready queue.
    #[inline(always)]
    fn reschedule(&mut self) {
        // Most events leave every CPU busy: check that before the call.
        if self.idle > 0 {
            self.fill_idle_cpus();
        }
    }

    #[inline(never)]
    fn fill_idle_cpus(&mut self) {
        while self.idle > 0 && self.policy.len() > 0 && self.error.is_none() {
            let cpu = self
                .cpus
                .iter()
                .position(|c| c.phase == Phase::Idle)
                .expect("an idle CPU");
            // The default chooser takes the head: no need to count ties.
            let ties = if self.chooser.is_some() {
                self.policy.ties()
            } else {
                1
            };
            let index = if ties > 1 {
                if self.wants_threads() {
                    self.policy.tied_threads(&mut self.scratch);
                }
                self.choose(ChoicePoint::Dispatch, ties)
            } else {
                0
            };
            let thread = self.policy.take(index);
            self.dispatch(cpu, thread);
        }
    }

    fn dispatch(&mut self, cpu: usize, thread: ThreadId) {
        self.idle -= 1;
        self.threads[thread.index()].cpu = Some(cpu);
        let c = &mut self.cpus[cpu];
        c.thread = Some(thread);
        let previous = c.last.replace(thread);
        let cost = match previous {
            Some(last) if last != thread => {
                if self.threads[last.index()].process == self.threads[thread.index()].process {
                    self.machine.context_switch
                } else {
                    self.machine.process_switch
                }
            }
            _ => Span::ZERO,
        };
        if cost.is_zero() {
            self.start_running(cpu);
        } else {
            let c = &mut self.cpus[cpu];
            c.phase = Phase::Switching;
            c.generation = c.generation.wrapping_add(1);
            let generation = c.generation;
            self.record(thread, ThreadState::Switch, Some(cpu), None);
            self.queue.push(
                self.now + cost,
                Event::CpuDone {
                    cpu: cpu as u16,
                    generation,
                },
            );
        }
    }

    fn start_running(&mut self, cpu: usize) {
        let thread = self.cpus[cpu].thread.expect("a thread to run");
        let slice = self.policy.slice(thread);
        let c = &mut self.cpus[cpu];
        c.phase = Phase::Running;
        c.segment_start = self.now;
        c.slice_end = slice.map_or(Time::MAX, |s| self.now + s);
        let state = if self.threads[thread.index()].spawning {
            ThreadState::Spawn
        } else {
            ThreadState::Running
        };
        self.record(thread, state, Some(cpu), None);
        // A more important thread may have become ready during the switch.
        if let Some(head) = self
            .policy
            .preemptive()
            .then(|| self.policy.head())
            .flatten()
        {
            if self.policy.preempts(head, thread) {
                self.preempt(cpu, Enqueue::Preempted);
                return;
            }
        }
        if std::mem::take(&mut self.threads[thread.index()].interrupt) {
            self.interrupt(thread);
            return;
        }
        self.advance(cpu);
    }

    /// The segment of `cpu` ended.
    fn segment_end(&mut self, cpu: usize) {
        match self.cpus[cpu].phase {
            Phase::Switching => self.start_running(cpu),
            Phase::Running => {
                self.settle(cpu);
                self.advance(cpu);
            }
            Phase::Idle => {}
        }
    }

    /// Charges the running thread for the CPU time of its segment so far.
    fn settle(&mut self, cpu: usize) {
        let c = &mut self.cpus[cpu];
        if c.phase != Phase::Running {
            return;
        }
        let ran = self.now - c.segment_start;
        c.segment_start = self.now;
        let thread = c.thread.expect("a running thread");
        match &mut self.threads[thread.index()].work {
            Work::Compute { remaining, .. } => {
                *remaining -= ran;
                self.policy.charge(thread, ran);
            }
            Work::Spin(_) => self.policy.charge(thread, ran),
            Work::None => {}
        }
    }

    /// Drives the thread on `cpu` until it computes, leaves the CPU or ends.
    fn advance(&mut self, cpu: usize) {
        let thread = self.cpus[cpu].thread.expect("a thread on the CPU");
        let t = thread.index();
        loop {
            if self.error.is_some() {
                return;
            }
            match &mut self.threads[t].work {
                Work::Compute { remaining, .. } if !remaining.is_zero() => {
                    let remaining = *remaining;
                    if self.cpus[cpu].slice_end <= self.now {
                        if self.expire(cpu) {
                            return;
                        }
                        continue;
                    }
                    let c = &mut self.cpus[cpu];
                    let end = (self.now + remaining).min(c.slice_end);
                    if end == self.now + remaining
                        && end <= self.machine.max_time
                        && (self.idle == 0 || self.policy.len() == 0)
                        && self.queue.lower_bound().is_none_or(|t| t > end)
                    {
                        // Nothing can happen anywhere before this compute
                        // ends (no event is due, no ready thread can take an
                        // idle CPU): it runs to its end now, with no event.
                        self.now = end;
                        c.segment_start = end;
                        self.policy.charge(thread, remaining);
                        if let Work::Compute { remaining, .. } = &mut self.threads[t].work {
                            *remaining = Span::ZERO;
                        }
                        continue;
                    }
                    c.segment_start = self.now;
                    c.generation = c.generation.wrapping_add(1);
                    let generation = c.generation;
                    self.queue.push(
                        end,
                        Event::CpuDone {
                            cpu: cpu as u16,
                            generation,
                        },
                    );
                    return;
                }
                Work::Compute { .. } => {
                    let Work::Compute { then, .. } =
                        std::mem::replace(&mut self.threads[t].work, Work::None)
                    else {
                        unreachable!()
                    };
                    // Each answer is written straight into the thread's
                    // slot, where the body reads it in place: every copy of
                    // an answer on its way was a load that stalled on the
                    // narrower stores that had just built it.
                    match then {
                        Then::Resume => self.threads[t].pending = Some(Response::Resume),
                        Then::Clock => self.threads[t].pending = Some(Response::Time(self.now)),
                        Then::Keep => {}
                        Then::Send(send) => {
                            let (channel, message, origin) = *send;
                            if !self.send(cpu, thread, channel, message, origin, true) {
                                return;
                            }
                            continue;
                        }
                        Then::Started => {
                            self.threads[t].spawning = false;
                            self.record(thread, ThreadState::Running, Some(cpu), None);
                            self.threads[t].pending = Some(Response::Resume);
                        }
                        Then::Regate => {
                            if !self.regate(cpu, thread) {
                                return;
                            }
                            self.threads[t].pending = Some(Response::Resume);
                        }
                        Then::Spawned(child) => {
                            self.trace.threads[child.index()].created = self.now;
                            self.make_ready(child, Enqueue::New);
                            self.threads[t].pending = Some(Response::Thread(child));
                            if self.threads[t].cpu != Some(cpu) {
                                // The child preempted its parent.
                                return;
                            }
                        }
                    }
                }
                Work::Spin(resource) => {
                    let resource = *resource;
                    if !self.spin(cpu, thread, resource) {
                        return;
                    }
                    continue;
                }
                Work::None => {}
            }
            match self.threads[t].pending {
                None => self.threads[t].pending = Some(Response::Resume),
                Some(Response::EpollReady(epoll)) => {
                    self.threads[t].pending = Some(self.collect_ready(epoll));
                }
                Some(_) => {}
            }
            let Some(call) = self.resume(thread) else {
                return;
            };
            if !self.handle_call(cpu, thread, call) {
                return;
            }
        }
    }

    /// The slice of the thread on `cpu` is used up. Returns true when the
    /// thread left the CPU, false when it got a new slice.
    fn expire(&mut self, cpu: usize) -> bool {
        let thread = self.cpus[cpu].thread.expect("a running thread");
        if self.policy.rotate(thread) {
            self.leave_cpu(cpu);
            self.record(thread, ThreadState::Ready, None, None);
            self.policy.enqueue(thread, self.now, Enqueue::Expired);
            true
        } else {
            let slice = self.policy.slice(thread);
            self.cpus[cpu].slice_end = slice.map_or(Time::MAX, |s| self.now + s);
            false
        }
    }

    /// Takes the running thread off `cpu` and puts it back in the ready queue.
    fn preempt(&mut self, cpu: usize, why: Enqueue) {
        self.settle(cpu);
        let thread = self.cpus[cpu].thread.expect("a thread to preempt");
        self.leave_cpu(cpu);
        self.record(thread, ThreadState::Ready, None, None);
        self.policy.enqueue(thread, self.now, why);
    }

    fn leave_cpu(&mut self, cpu: usize) {
        let c = &mut self.cpus[cpu];
        let thread = c.thread.take().expect("a thread on the CPU");
        c.phase = Phase::Idle;
        c.generation = c.generation.wrapping_add(1);
        self.idle += 1;
        self.threads[thread.index()].cpu = None;
    }

    // ----- threads ----------------------------------------------------------

    /// Resumes a thread's coroutine (creating it at first dispatch) with
    /// its pending answer. Returns its next request, or `None` when it
    /// ended.
    #[inline(always)]
    fn resume(&mut self, thread: ThreadId) -> Option<Call> {
        let t = thread.index();
        if matches!(self.threads[t].runner, Runner::Unstarted) {
            if !self.start_coroutine(thread) {
                return None;
            }
            if matches!(self.threads[t].runner, Runner::Future(_)) {
                // Its first poll answers nothing.
                self.threads[t].pending = None;
                return self.step_stackless(thread);
            }
        }
        let record = &mut self.threads[t];
        let Runner::Stack(coroutine) = &mut record.runner else {
            return self.step_stackless(thread);
        };
        let response = record.pending.take().unwrap_or(Response::Resume);
        match coroutine.resume(response) {
            CoroutineResult::Yield(call) => {
                record.parked_at = parked_at();
                Some(call)
            }
            CoroutineResult::Return(exit) => {
                self.end_coroutine(thread, exit);
                None
            }
        }
    }

    /// Gives a thread dispatched for the first time its stack and coroutine.
    /// False when no stack could be had: the run then stops with the error.
    #[cold]
    #[inline(never)]
    fn start_coroutine(&mut self, thread: ThreadId) -> bool {
        let t = thread.index();
        let body = match self.lives[t].body.take().expect("a body to start") {
            Start::Stackful(body) => body,
            Start::Stackless(body) => {
                // No stack: only its future.
                self.threads[t].runner = Runner::Future(body(AsyncCtx::new(thread)));
                return true;
            }
        };
        let stack = match PooledStack::take(self.machine.stack_size) {
            Ok(stack) => stack,
            Err(e) => {
                let thread = self.name(thread);
                self.fail(SimError::Resources {
                    thread,
                    message: e.to_string(),
                });
                return false;
            }
        };
        let red_zone = red_zone_floor(&stack);
        let stack_bottom = stack.bottom();
        let stack_size = self.machine.stack_size;
        self.threads[t].stack_top = stack.top();
        self.threads[t].runner = Runner::Stack(Coroutine::with_stack(
            stack,
            move |yielder, _first: Response| {
                let ctx = Ctx::new(yielder, thread, red_zone, stack_bottom, stack_size);
                match catch_unwind(AssertUnwindSafe(|| body(&ctx))) {
                    Ok(Ok(value)) => Exit::Value(value),
                    Ok(Err(error)) => Exit::Failed(error),
                    Err(payload) => Exit::Panicked(panic_message(payload.as_ref())),
                }
            },
        ));
        true
    }

    /// The body of `thread` returned: its stack goes back to the pool.
    #[inline(never)]
    fn end_coroutine(&mut self, thread: ThreadId, exit: Exit) {
        let runner = std::mem::replace(&mut self.threads[thread.index()].runner, Runner::Ended);
        if let Runner::Stack(coroutine) = runner {
            drop(coroutine.into_stack());
        }
        self.finish(thread, exit);
    }

    /// Polls a stackless thread's future with its pending answer, which
    /// the body takes in place. Returns its next request, or `None` when
    /// it ended.
    #[inline(always)]
    fn step_stackless(&mut self, thread: ThreadId) -> Option<Call> {
        let record = &mut self.threads[thread.index()];
        let Runner::Future(future) = &mut record.runner else {
            unreachable!("a started thread has a runner")
        };
        let exit = match stackless::step(future, &mut record.pending) {
            Step::Call(call) => return Some(call),
            Step::Done(Ok(value)) => Exit::Value(value),
            Step::Done(Err(error)) => Exit::Failed(error),
            Step::Misused(why) => Exit::Failed(stackless::misuse(why)),
            Step::Panicked(message) => Exit::Panicked(message),
        };
        self.end_coroutine(thread, exit);
        None
    }

    /// Handles a request of the thread on `cpu`. Returns true when the thread
    /// keeps the CPU and should be advanced further.
    ///
    /// Compute and sleep, the requests of every simulation, are handled here;
    /// the rest in [`Engine::handle_other_call`], kept out of line so that the
    /// engine's hot loop stays small.
    #[inline(always)]
    fn handle_call(&mut self, cpu: usize, thread: ThreadId, call: Call) -> bool {
        let counted = if call.request.is_bookkeeping() {
            self.count_event()
        } else {
            self.count_operation()
        };
        if !counted || !self.count_step(thread, call.origin) {
            return false;
        }
        if self.observing {
            self.note_position(thread, call.origin);
        }
        if self.task_log.is_some() {
            self.drain_task_log();
        }
        let t = thread.index();
        match call.request {
            Request::Compute(d) => {
                let stretch = self.threads[t].stretch;
                let d = if stretch == 0 {
                    d
                } else {
                    let nanos =
                        u128::from(d.as_nanos()) * (1_000_000 + u128::from(stretch)) / 1_000_000;
                    Span(u64::try_from(nanos).unwrap_or(u64::MAX))
                };
                let d = self.jittered(d);
                if d.is_zero() {
                    return self.zero_time(cpu, thread);
                }
                self.threads[t].work = Work::Compute {
                    remaining: d,
                    then: Then::Resume,
                };
                true
            }
            Request::Sleep(d) => {
                let d = self.jittered(d);
                let origin = self.intern(thread, call.origin);
                self.block(cpu, thread, BlockReason::Sleep, Some(origin));
                let generation = self.threads[t].wake_generation;
                self.queue
                    .push(self.now + d, Event::Wake { thread, generation });
                false
            }
            _ => self.handle_other_call(cpu, thread, call),
        }
    }

    /// [`Engine::handle_call`] for every request but compute and sleep.
    #[inline(never)]
    fn handle_other_call(&mut self, cpu: usize, thread: ThreadId, call: Call) -> bool {
        let t = thread.index();
        match call.request {
            Request::Compute(_) | Request::Sleep(_) => {
                unreachable!("compute and sleep are handled by handle_call")
            }
            Request::ComputeNoGil(d) => {
                let d = self.jittered(d);
                if d.is_zero() {
                    return self.zero_time(cpu, thread);
                }
                let process = self.threads[t].process;
                self.with_gate(process, |gate, now, actions| {
                    gate.release(thread, now, actions)
                });
                self.threads[t].work = Work::Compute {
                    remaining: d,
                    then: Then::Regate,
                };
                true
            }
            Request::Yield => {
                if let Some(chooser) = &mut self.chooser {
                    chooser.yielded(thread);
                }
                self.leave_cpu(cpu);
                self.record(thread, ThreadState::Ready, None, None);
                self.policy.enqueue(thread, self.now, Enqueue::Yielded);
                false
            }
            Request::Now => {
                self.threads[t].pending = Some(Response::Time(self.now));
                self.zero_time(cpu, thread)
            }
            Request::Print(text) => {
                self.trace.logs.push(LogLine {
                    time: self.now,
                    thread,
                    text: *text,
                });
                self.zero_time(cpu, thread)
            }
            Request::PrintAs(row, text) => {
                self.trace.logs.push(LogLine {
                    time: self.now,
                    thread: row,
                    text: *text,
                });
                self.zero_time(cpu, thread)
            }
            Request::Spawn(spawn) => {
                let Spawn {
                    name,
                    options,
                    body,
                } = *spawn;
                let process = self.threads[t].process;
                if let Err(out) = self.room_for(false) {
                    self.misuse(thread, call.origin, out_of_memory("thread", out));
                    return false;
                }
                if self.unfinished as u64 >= self.machine.max_threads {
                    let limit = self.machine.max_threads;
                    self.misuse(thread, call.origin, Misuse::TooManyThreads { limit });
                    return false;
                }
                let child = self.create_thread(name, process, options, body, Some(thread));
                self.threads[t].work = Work::Compute {
                    remaining: self.machine.thread_spawn,
                    then: Then::Spawned(child),
                };
                true
            }
            Request::Join(target) => self.join(cpu, thread, target, call.origin),
            Request::StartProcess(start) => {
                if let Err(out) = self.room_for(true) {
                    self.misuse(thread, call.origin, out_of_memory("process", out));
                    return false;
                }
                if self.unfinished as u64 >= self.machine.max_threads {
                    let limit = self.machine.max_threads;
                    self.misuse(thread, call.origin, Misuse::TooManyThreads { limit });
                    return false;
                }
                self.start_process(cpu, thread, *start)
            }
            Request::Load(var) => match self.check_access(thread, var, call.origin) {
                Some(value) => {
                    self.plain_access(thread, var, AccessKind::Load, call.origin);
                    self.threads[t].pending = Some(Response::Int(value));
                    self.zero_time(cpu, thread)
                }
                None => false,
            },
            Request::Store(var, value) => match self.check_access(thread, var, call.origin) {
                Some(_) => {
                    self.plain_access(thread, var, AccessKind::Store, call.origin);
                    self.memory.get_mut(var).expect("checked").value = value;
                    self.zero_time(cpu, thread)
                }
                None => false,
            },
            Request::FetchAdd(var, delta) => self.atomic(cpu, thread, var, call.origin, |old| {
                Some(old.wrapping_add(delta))
            }),
            Request::CompareExchange(cas) => {
                let (var, current, new) = *cas;
                self.atomic(cpu, thread, var, call.origin, |old| {
                    (old == current).then_some(new)
                })
            }
            Request::Fault(misuse) => {
                self.misuse(thread, call.origin, *misuse);
                false
            }
            Request::Sync(resource, op) => self.sync_call(cpu, thread, resource, op, call.origin),
            Request::Timed(timed) => {
                let (resource, op, timeout) = *timed;
                self.timed_sync_call(cpu, thread, resource, op, timeout, call.origin)
            }
            Request::Send(send) => {
                let (channel, value, bytes) = *send;
                let message = crate::model::sync::Message {
                    value,
                    from: self.threads[t].process,
                    bytes,
                };
                self.send(cpu, thread, channel, message, call.origin, false)
            }
            Request::Submit(device, bytes) => {
                self.submit(cpu, thread, device, bytes, false, call.origin)
            }
            Request::Io(device, bytes) => {
                self.submit(cpu, thread, device, bytes, true, call.origin)
            }
            Request::IoWait(io) => self.io_wait(cpu, thread, io, call.origin),
            Request::IoReady(io) => self.io_ready(cpu, thread, io, call.origin),
            Request::EpollCreate => self.epoll_create(cpu, thread),
            Request::EpollAdd(epoll, key) => self.epoll_add(cpu, thread, epoll, key, call.origin),
            Request::EpollRemove(epoll, key) => {
                self.epoll_remove(cpu, thread, epoll, key, call.origin)
            }
            Request::EpollLen(epoll) => self.epoll_len(cpu, thread, epoll, call.origin),
            Request::EpollWait(epoll, timeout) => {
                self.epoll_wait(cpu, thread, epoll, timeout, call.origin)
            }
            Request::Await(what) => {
                self.misuse(thread, call.origin, Misuse::NotInTask(what.name()));
                false
            }
            Request::AwaitSleep(_) => {
                self.misuse(thread, call.origin, Misuse::NotInTask("await_sleep"));
                false
            }
            Request::AwaitIo(..) => {
                self.misuse(thread, call.origin, Misuse::NotInTask("await_io"));
                false
            }
            // The loop's bookkeeping: not operations of the script, and
            // not scheduling points.
            Request::TaskRow(name) => {
                let Some(row) = self.task_row(thread, *name, Some(call.origin)) else {
                    return false;
                };
                self.threads[t].pending = Some(Response::Thread(row));
                true
            }
            Request::TaskState(row, state) => self.task_state(thread, row, state, None),
            Request::TaskStateAt(row, state) => {
                self.task_state(thread, row, state, Some(call.origin))
            }
            Request::LoopCompute(d) => {
                if d.is_zero() {
                    self.threads[t].pending = Some(Response::Time(self.now));
                    return true;
                }
                self.threads[t].work = Work::Compute {
                    remaining: d,
                    then: Then::Clock,
                };
                true
            }
            Request::SubmitPolled(submit) => {
                let (device, bytes, epoll, row) = *submit;
                self.submit_polled(cpu, thread, (device, bytes, epoll, row), call.origin)
            }
            Request::LoopClock => {
                self.threads[t].pending = Some(Response::Time(self.now));
                true
            }
            Request::Intern => {
                let id = self.intern(thread, call.origin);
                self.threads[t].pending = Some(Response::Int(i64::from(id.0)));
                true
            }
            Request::Park(epoll) => {
                self.park(cpu, thread, epoll);
                false
            }
            Request::AwaitCycle(rows) => {
                self.await_cycle(&rows);
                true
            }
            Request::NewFuture(future) => {
                let (name, pool, owner) = *future;
                if !self.same_process(thread, owner, call.origin, |_| format!("pool '{pool}'")) {
                    return false;
                }
                let resource = crate::model::sync::Resource::Event {
                    set: false,
                    waiters: super::WaitQueue::new(),
                };
                let id = self.add_resource(&name, resource);
                self.trace.resources[id.index()].internal = true;
                self.threads[t].pending = Some(Response::Int(i64::from(id.0)));
                true
            }
        }
    }

    /// After a zero-time operation: the chooser may preempt the thread when
    /// others are ready. Returns true when it keeps the CPU and goes on now.
    ///
    /// Threads on different CPUs run in parallel within one instant: when
    /// another CPU has a step to take at this instant (an event of the batch,
    /// or an idle CPU and a ready thread), the thread's next step waits
    /// behind it as an event of the same instant. So the CPUs' same-instant
    /// steps interleave, round-robin by default and in any order the chooser
    /// picks among the batch, and a spin on a flag another CPU sets ends.
    fn zero_time(&mut self, cpu: usize, thread: ThreadId) -> bool {
        if let Some(head) = self.policy.head() {
            self.scratch.clear();
            if self.wants_threads() {
                self.scratch.extend([thread, head]);
            }
            if self.choose(ChoicePoint::Preempt, 2) == 1 {
                self.preempt(cpu, Enqueue::Yielded);
                return false;
            }
        }
        if self.cpus.len() > 1
            && (self.queue.has_batch() || (self.idle > 0 && self.policy.len() > 0))
        {
            self.step_later(cpu);
            return false;
        }
        true
    }

    /// The thread on `cpu` takes its next step after the events already at
    /// this instant: it keeps the CPU, and resumes at a `CpuDone` of now.
    fn step_later(&mut self, cpu: usize) {
        let c = &mut self.cpus[cpu];
        c.segment_start = self.now;
        c.generation = c.generation.wrapping_add(1);
        let generation = c.generation;
        self.queue.push(
            self.now,
            Event::CpuDone {
                cpu: cpu as u16,
                generation,
            },
        );
    }

    fn join(&mut self, cpu: usize, thread: ThreadId, target: ThreadId, origin: SourceRef) -> bool {
        let Some(joined) = self.lives.get_mut(target.index()) else {
            self.misuse(thread, origin, Misuse::UnknownThread(target.0));
            return false;
        };
        if target == thread {
            self.misuse(thread, origin, Misuse::JoinSelf);
            return false;
        }
        if self.trace.threads[target.index()].task_of.is_some() {
            let name = self.name(target);
            self.misuse(thread, origin, Misuse::JoinTask(name));
            return false;
        }
        // A thread may be joined any number of times, by any number of
        // threads, as CPython's Thread.join allows: the first join takes
        // its value, a later one gets ().
        if self.threads[target.index()].state == ThreadState::Done {
            let value = joined.value.take().unwrap_or_else(|| Box::new(()));
            self.races.thread_joined(thread, target);
            self.threads[thread.index()].pending = Some(Response::Value(value));
            return self.zero_time(cpu, thread);
        }
        joined.joiners.push(thread, self.now);
        let origin = self.intern(thread, origin);
        self.block(cpu, thread, BlockReason::Join(target), Some(origin));
        false
    }

    /// A plain load or store: checked against earlier unordered accesses.
    fn plain_access(&mut self, thread: ThreadId, var: VarId, kind: AccessKind, origin: SourceRef) {
        let origin = self.intern(thread, origin);
        if let Some(race) = self.races.access(thread, var, kind, self.now, Some(origin)) {
            self.trace.races.push(race);
        }
    }

    /// An atomic read-modify-write: `update` maps the old value to the new
    /// one (`None`: leave it); the thread gets the old value.
    fn atomic(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        var: VarId,
        origin: SourceRef,
        update: impl FnOnce(i64) -> Option<i64>,
    ) -> bool {
        let Some(old) = self.check_access(thread, var, origin) else {
            return false;
        };
        self.races.acquire(thread, SyncObject::Atomic(var));
        self.races.release(thread, SyncObject::Atomic(var));
        if let Some(new) = update(old) {
            self.memory.get_mut(var).expect("checked").value = new;
        }
        self.threads[thread.index()].pending = Some(Response::Int(old));
        self.zero_time(cpu, thread)
    }

    /// Returns the variable's value when `thread` may touch it; otherwise
    /// ends the run with a misuse and returns `None`.
    fn check_access(&mut self, thread: ThreadId, var: VarId, origin: SourceRef) -> Option<i64> {
        let process = self.threads[thread.index()].process;
        let Some(variable) = self.memory.get(var) else {
            self.misuse(thread, origin, Misuse::UnknownVariable(var.0));
            return None;
        };
        if variable.owner != process {
            let misuse = Misuse::ForeignMemory {
                variable: variable.name.clone(),
                owner: self.trace.processes[variable.owner.index()].name.clone(),
                accessor: self.trace.processes[process.index()].name.clone(),
            };
            self.misuse(thread, origin, misuse);
            return None;
        }
        Some(variable.value)
    }

    fn misuse(&mut self, thread: ThreadId, origin: SourceRef, misuse: Misuse) {
        let error = SimError::Misuse {
            thread: self.name(thread),
            time: self.now,
            origin: Some(self.origin_of(origin)),
            misuse,
        };
        self.fail(error);
    }

    /// Takes the thread on `cpu` off it, blocked for `reason`.
    #[inline(always)]
    pub(crate) fn block(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        reason: BlockReason,
        origin: Option<OriginId>,
    ) {
        self.policy.stopped(thread);
        self.leave_cpu(cpu);
        self.record(thread, ThreadState::Blocked(reason), None, origin);
        // A pending interrupt is moot: blocking passes through the gate.
        self.threads[thread.index()].interrupt = false;
        let process = self.threads[thread.index()].process;
        self.with_gate(process, |gate, now, actions| {
            gate.release(thread, now, actions)
        });
    }

    /// Ends a blocked thread's wait: it will resume with `response`.
    #[inline(always)]
    pub(crate) fn wake(&mut self, thread: ThreadId, response: Response) {
        let t = &mut self.threads[thread.index()];
        // Its stack is needed soon: fetching it now overlaps the misses
        // with the work done before its resume.
        prefetch(t.parked_at, t.stack_top);
        t.pending = Some(response);
        t.wake_generation = t.wake_generation.wrapping_add(1);
        self.make_ready(thread, Enqueue::Woken);
    }

    /// Starts a process and its first thread, which spends the start-up
    /// cost in state spawn before its body runs. The caller goes on at once.
    fn start_process(&mut self, cpu: usize, parent: ThreadId, start: StartProcess) -> bool {
        let StartProcess {
            name,
            options,
            body,
        } = start;
        let process = ProcessId(self.processes.len() as u32);
        let gate = options.gil.map(|interval| {
            Box::new(crate::model::python::gil::Gil::new(process, interval)) as Box<dyn ProcessGate>
        });
        self.add_process(&name, gate);
        let main = self.create_thread(name, process, ThreadOptions::default(), body, Some(parent));
        if !options.spawn_cost.is_zero() {
            let t = &mut self.threads[main.index()];
            t.spawning = true;
            t.work = Work::Compute {
                remaining: options.spawn_cost,
                then: Then::Started,
            };
        }
        self.make_ready(main, Enqueue::New);
        self.threads[parent.index()].pending =
            Some(Response::Process(ProcessHandle { process, main }));
        if self.threads[parent.index()].cpu != Some(cpu) {
            return false; // the child preempted its parent
        }
        self.zero_time(cpu, parent)
    }

    /// The thread on `cpu`, back from work outside its process's gate,
    /// passes it again: true when it may go on, false when the gate holds
    /// it (it then leaves the CPU until the gate admits it).
    fn regate(&mut self, cpu: usize, thread: ThreadId) -> bool {
        let process = self.threads[thread.index()].process;
        if self.processes[process.index()].gate.is_none() {
            return true;
        }
        let mut admitted = true;
        let mut hold = None;
        self.with_gate(process, |gate, now, actions| {
            admitted = gate.admit(thread, now, actions);
            hold = Some(gate.hold_reason());
        });
        if admitted || self.threads[thread.index()].cpu != Some(cpu) {
            return admitted;
        }
        self.policy.stopped(thread);
        self.leave_cpu(cpu);
        let reason = hold.expect("a gate's hold reason");
        self.record(thread, ThreadState::Blocked(reason), None, None);
        false
    }

    /// Lets a thread compete for a CPU, through its process's gate.
    #[inline(always)]
    fn make_ready(&mut self, thread: ThreadId, why: Enqueue) {
        let process = self.threads[thread.index()].process;
        if self.processes[process.index()].gate.is_some() {
            let mut admitted = true;
            let mut hold = None;
            self.with_gate(process, |gate, now, actions| {
                admitted = gate.admit(thread, now, actions);
                hold = Some(gate.hold_reason());
            });
            if !admitted {
                let reason = hold.expect("a gate's hold reason");
                self.record(thread, ThreadState::Blocked(reason), None, None);
                return;
            }
        }
        self.enqueue_ready(thread, why);
    }

    /// Puts a thread (past its gate) in the ready queue, preempting for it
    /// where the policy says so.
    #[inline(always)]
    fn enqueue_ready(&mut self, thread: ThreadId, why: Enqueue) {
        let preemptive = self.policy.preemptive();
        if preemptive {
            self.settle_all();
        }
        self.record(thread, ThreadState::Ready, None, None);
        self.policy.enqueue(thread, self.now, why);
        if preemptive {
            self.preempt_for(thread);
        }
    }

    /// Charges every running thread up to now, so that the policy compares
    /// current figures.
    fn settle_all(&mut self) {
        for cpu in 0..self.cpus.len() {
            self.settle(cpu);
        }
    }

    /// When no CPU is idle, preempts the running thread that `thread` should
    /// displace, if the policy says one should make way.
    fn preempt_for(&mut self, thread: ThreadId) {
        if self.idle > 0 {
            return;
        }
        let victim = (0..self.cpus.len())
            .filter(|&cpu| self.cpus[cpu].phase == Phase::Running)
            .filter_map(|cpu| self.cpus[cpu].thread.map(|running| (cpu, running)))
            .filter(|&(_, running)| self.policy.preempts(thread, running))
            .max_by_key(|&(cpu, running)| {
                (self.policy.victim_rank(running), std::cmp::Reverse(cpu))
            });
        if let Some((cpu, _)) = victim {
            self.preempt(cpu, Enqueue::Preempted);
        }
    }

    fn finish(&mut self, thread: ThreadId, exit: Exit) {
        let t = thread.index();
        self.races.thread_finished(thread);
        match exit {
            Exit::Value(value) => self.lives[t].value = Some(value),
            Exit::Failed(error) => {
                let origin = error
                    .position
                    .map(|(line, column)| self.origin_of(SourceRef::Script { line, column }));
                let failure = SimError::Failed {
                    thread: self.name(thread),
                    time: self.now,
                    message: error.message,
                    origin,
                };
                self.fail(failure);
            }
            Exit::Panicked(message) => {
                let failure = SimError::Panicked {
                    thread: self.name(thread),
                    time: self.now,
                    message,
                };
                self.fail(failure);
            }
        }
        self.policy.stopped(thread);
        if let Some(cpu) = self.threads[t].cpu {
            self.leave_cpu(cpu);
        }
        self.record(thread, ThreadState::Done, None, None);
        self.unfinished -= 1;
        self.discharge(self.threads[t].process);
        let process = self.threads[t].process;
        self.with_gate(process, |gate, now, actions| {
            gate.release(thread, now, actions)
        });
        // Every joiner wakes, in the order the chooser picks; the first
        // takes the value.
        let mut joiners = std::mem::take(&mut self.lives[t].joiners);
        while let Some(joiner) = self.pick_waiter(&mut joiners) {
            self.races.thread_joined(joiner.thread, thread);
            let value = self.lives[t].value.take().unwrap_or_else(|| Box::new(()));
            self.wake(joiner.thread, Response::Value(value));
        }
    }

    /// Takes the waiter a released resource goes to, through the chooser.
    pub(crate) fn pick_waiter(&mut self, queue: &mut WaitQueue) -> Option<super::Waiter> {
        let index = self.choose_waiter(queue.len(), |_, out| queue.threads_into(out));
        queue.take(index)
    }

    /// Which of `count` waiters a release goes to, through the chooser
    /// (the first by default). `threads` lists them, in order, and is
    /// called only for a chooser that reads them: a copy of a long queue
    /// on every release would cost the queue.
    pub(crate) fn choose_waiter(
        &mut self,
        count: usize,
        threads: impl FnOnce(&Self, &mut Vec<ThreadId>),
    ) -> usize {
        if count <= 1 {
            return 0;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        if self.wants_threads() {
            threads(self, &mut scratch);
        }
        self.scratch = scratch;
        self.choose(ChoicePoint::Waiter, count)
    }

    // ----- gates ------------------------------------------------------------

    /// Calls the process's gate, if it has one, and carries out its actions.
    #[inline(always)]
    fn with_gate(
        &mut self,
        process: ProcessId,
        call: impl FnOnce(&mut dyn ProcessGate, Time, &mut GateActions),
    ) {
        if self.processes[process.index()].gate.is_some() {
            self.call_gate(process, call);
        }
    }

    /// [`Engine::with_gate`] for a process that has a gate.
    fn call_gate(
        &mut self,
        process: ProcessId,
        call: impl FnOnce(&mut dyn ProcessGate, Time, &mut GateActions),
    ) {
        let Some(mut gate) = self.processes[process.index()].gate.take() else {
            return;
        };
        let mut actions = GateActions::default();
        call(gate.as_mut(), self.now, &mut actions);
        if let Some(candidates) = actions.pick.take() {
            // Which thread the gate hands over to: the chooser's decision.
            let index = self.choose_waiter(candidates.len(), |_, out| {
                out.extend_from_slice(&candidates);
            });
            gate.picked(candidates[index], self.now, &mut actions);
        }
        if let Some(count) = actions.pick_waiter.take() {
            // The same, with the gate's own list.
            let index = self.choose_waiter(count, |_, out| gate.waiters(out));
            gate.picked(gate.waiter(index), self.now, &mut actions);
        }
        let held = ThreadState::Blocked(gate.hold_reason());
        self.processes[process.index()].gate = Some(gate);
        for action in actions.list {
            match action {
                GateAction::Admit(thread) => {
                    // Only a thread the gate holds can be admitted.
                    if self.threads[thread.index()].state == held {
                        self.enqueue_ready(thread, Enqueue::Woken);
                    }
                }
                GateAction::Interrupt(thread) => self.interrupt(thread),
                GateAction::Timer(at, token) => self
                    .queue
                    .push(at.max(self.now), Event::GateTimer { process, token }),
                GateAction::Record(event) => self.trace.gil.push(event),
            }
        }
    }

    /// Stops a thread at its check point and passes it through the gate again.
    fn interrupt(&mut self, thread: ThreadId) {
        let t = thread.index();
        match (self.threads[t].state, self.threads[t].cpu) {
            (ThreadState::Running, Some(cpu)) => {
                self.settle(cpu);
                self.policy.stopped(thread);
                self.leave_cpu(cpu);
                let process = self.threads[t].process;
                self.with_gate(process, |gate, now, actions| {
                    gate.release(thread, now, actions)
                });
                self.make_ready(thread, Enqueue::Woken);
            }
            (ThreadState::Done, _) => {}
            _ => self.threads[t].interrupt = true,
        }
    }

    // ----- trace ------------------------------------------------------------

    #[inline(always)]
    fn record(
        &mut self,
        thread: ThreadId,
        state: ThreadState,
        cpu: Option<usize>,
        origin: Option<OriginId>,
    ) {
        self.threads[thread.index()].state = state;
        self.trace.states.push(StateChange::new(
            self.now,
            thread,
            state,
            cpu.map(|c| CpuId(c as u16)),
            origin,
        ));
    }

    /// The id of a source position, cached per thread for loops.
    #[inline(always)]
    fn intern(&mut self, thread: ThreadId, source: SourceRef) -> OriginId {
        if let Some((last, id)) = self.threads[thread.index()].last_origin {
            if last == source {
                return id;
            }
        }
        self.intern_new(thread, source)
    }

    /// [`Engine::intern`] for a position other than the thread's last.
    fn intern_new(&mut self, thread: ThreadId, source: SourceRef) -> OriginId {
        let key = match source {
            SourceRef::Rust(location) => (
                location.file().as_ptr() as usize,
                location.line(),
                location.column(),
            ),
            SourceRef::Script { line, column } => (0, line, column),
        };
        let id = match self.origin_ids.get(&key) {
            Some(&id) => id,
            None => {
                let id = OriginId(self.trace.origins.len() as u32);
                let origin = self.origin_of(source);
                self.trace.origins.push(origin);
                self.origin_ids.insert(key, id);
                id
            }
        };
        self.threads[thread.index()].last_origin = Some((source, id));
        id
    }

    fn origin_of(&self, source: SourceRef) -> Origin {
        match source {
            SourceRef::Rust(location) => Origin {
                file: location.file().to_string(),
                line: location.line(),
                column: location.column(),
            },
            SourceRef::Script { line, column } => Origin {
                file: self.script.clone().unwrap_or_else(|| "script".to_string()),
                line,
                column,
            },
        }
    }

    /// Moves the bodies' values out, by thread.
    pub(crate) fn take_values(&mut self) -> Vec<Option<Box<dyn Any>>> {
        self.lives.iter_mut().map(|t| t.value.take()).collect()
    }
}

pub(super) fn out_of_memory(what: &'static str, out: OutOfMemory) -> Misuse {
    Misuse::OutOfMemory {
        what,
        used: out.used,
        needed: out.needed,
        limit: out.limit,
    }
}

pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}
