//! What the kernel simulates: the machine, its threads and processes, their
//! memory, and the CPU schedulers. The kernel drives these; each concern is a
//! module of its own, and later models (io, python) plug in beside them.

pub mod footprint;
pub mod io;
pub mod machine;
pub mod memory;
pub mod process;
pub mod python;
pub(crate) mod rwlock;
pub mod sched;
pub mod sync;
pub mod thread;
