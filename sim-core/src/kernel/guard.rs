//! Guards of the host, outside the simulation's semantics: a cap on the
//! simulator's own memory and a wall-clock timeout.
//!
//! Neither changes what a run does while it stays under them; past one, the
//! run stops with [`crate::SimError::MemoryLimit`] or
//! [`crate::SimError::Timeout`]. The library installs no allocator: the
//! program that embeds it says how to read its memory ([`limit_memory`],
//! e.g. from a counting global allocator), and the engine asks every
//! few events (the timeout every [`CHECK_EVERY`]), so a run of the same script and seed stops at the
//! same place on every host while it stays under the cap. The timeout reads
//! the wall clock, so a run it stops is a failure, never an outcome.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The engine (and the script's progress hook) asks the guards once every
/// this many events or script operations.
/// A power of two, so that the check is a mask.
pub const CHECK_EVERY: u64 = 4096;

/// Reads the bytes the program has allocated.
pub type MemoryProbe = fn() -> u64;

static MEMORY: OnceLock<(MemoryProbe, u64)> = OnceLock::new();

thread_local! {
    /// When runs on this thread must stop, and the timeout it came from.
    static DEADLINE: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
    /// Whether a guard tripped since the last [`clear_tripped`].
    static TRIPPED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a guard tripped on this thread since the last [`clear_tripped`]:
/// the run it stopped abandons its suspended threads instead of unwinding
/// them (tens of thousands of deep stacks take longer to unwind than the
/// guard allowed the run).
pub(crate) fn tripped() -> bool {
    TRIPPED.get()
}

/// Forgets an earlier trip: a run starts.
pub(crate) fn clear_tripped() {
    TRIPPED.set(false);
}

/// Caps the program's memory at `limit` bytes as `probe` reads it: past
/// it, a run stops with an error. Set once per process (a later call is
/// ignored and returns false).
pub fn limit_memory(probe: MemoryProbe, limit: u64) -> bool {
    MEMORY.set((probe, limit)).is_ok()
}

/// Starts the wall-clock timeout of the runs on this thread: `None` for
/// none. Script runs call it with their options' timeout as they begin.
pub fn start_timeout(timeout: Option<Duration>) {
    DEADLINE.set(timeout.map(|t| (Instant::now() + t, t)));
}

/// What stopped a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tripped {
    /// The program's memory passed the cap.
    Memory {
        /// Bytes in use.
        used: u64,
        /// The cap.
        limit: u64,
    },
    /// The run passed its wall-clock timeout.
    Timeout {
        /// The timeout, in seconds.
        seconds: u64,
    },
}

/// Whether the memory guard has tripped: cheap enough (one atomic read in
/// `simcli`) to ask at every script operation, since one operation can
/// allocate megabytes.
#[inline]
pub fn check_memory() -> Option<Tripped> {
    let (probe, limit) = MEMORY.get()?;
    let used = probe();
    if used <= *limit {
        return None;
    }
    TRIPPED.set(true);
    Some(Tripped::Memory {
        used,
        limit: *limit,
    })
}

/// Whether a guard has tripped (the memory, then the timeout).
pub fn check() -> Option<Tripped> {
    if let Some(tripped) = check_memory() {
        return Some(tripped);
    }
    match DEADLINE.get() {
        Some((deadline, timeout)) if Instant::now() >= deadline => {
            TRIPPED.set(true);
            Some(Tripped::Timeout {
                seconds: timeout.as_secs(),
            })
        }
        _ => None,
    }
}
