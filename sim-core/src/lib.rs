//! # sim-core
//!
//! A deterministic discrete-event simulator of concurrency. Simulated threads
//! are ordinary Rust closures running as stackful coroutines on simulated
//! CPUs; every operation they call (compute, sleep, join, …) takes simulated
//! time or blocks, and every state change is recorded in a [`Trace`]. The same
//! scenario, options and seed give the same trace, byte for byte.
//!
//! Data flows one way: [`time`] → [`kernel`] (event queue, dispatch) ←
//! [`model`] (machine, schedulers, threads, processes, memory) → [`trace`] →
//! [`analysis`] (stats, starvation, locks) → [`plot`] (Gantt charts) /
//! [`export`] (Chrome trace JSON for Perfetto).
//!
//! ```
//! use sim_core::{Machine, Simulation, ms};
//! let mut sim = Simulation::new(Machine::default()).unwrap();
//! let worker = sim.add_thread("worker", |ctx| {
//!     ctx.compute(ms(5));
//!     ctx.sleep(ms(10));
//!     42
//! });
//! sim.add_thread("main", move |ctx| assert_eq!(ctx.join(worker), 42));
//! let run = sim.run();
//! assert!(run.completed());
//! println!("{}", run.stats());
//! ```

pub mod analysis;
pub mod error;
pub mod explore;
pub mod export;
pub mod ids;
pub mod kernel;
pub mod model;
pub mod output;
pub mod plot;
pub mod script;
pub mod time;
pub mod trace;

pub use analysis::locks::{LockStats, ResourceStats};
pub use analysis::starvation::{Starvation, ThreadStarvation};
pub use analysis::stats::Stats;
pub use error::{BodyError, Misuse, SimError, Site};
pub use ids::{CpuId, OriginId, ProcessId, ResourceId, ThreadId, VarId};
pub use kernel::{
    AsyncCtx, AsyncOp, AsyncTask, Ctx, EventLoopRef, Future, JobSize, JoinHandle, LoopInfo,
    LoopOptions, Outcome, Pool, PoolFuture, ProcessPoolOptions, RandomChooser, ReplayChooser, Run,
    Simulation, StartMethod, Task, TaskFailure, TaskHandle,
};
pub use model::io::{DeviceOptions, DeviceRef, EpollRef, IoHandle, IoId, Pollable};
pub use model::machine::{Machine, SchedulerKind};
pub use model::process::{GateActions, ProcessGate, ProcessOptions};
pub use model::python::event_loop::TaskId;
pub use model::python::pool::{JobRecord, PoolInfo, PoolKind};
pub use model::sync::{
    Barrier, Channel, Condvar, Countdown, Event, Lock, Mutex, MutexOptions, RLock, RwLock,
    RwPrefer, Semaphore, Spinlock,
};
pub use model::thread::{BlockKind, BlockReason, ThreadOptions, ThreadState};
pub use time::{ms, ns, secs, us, Span, Time};
pub use trace::{
    Deadlock, DeviceInfo, IoRecord, ResourceKind, SyncAction, SyncEvent, Trace, WaitStep,
    WaitTarget,
};
