//! Limits that keep an untrusted script from hanging or exhausting the host.

use std::cell::Cell;

use rhai::{Dynamic, Engine};

use super::current;
use super::error::{ErrorStage, Fault};

/// Most nested function calls (each costs coroutine stack in a body).
pub const MAX_CALL_LEVELS: usize = 48;
/// Longest string, in bytes.
pub const MAX_STRING: usize = 1 << 20;
/// Largest array, in elements.
pub const MAX_ARRAY: usize = 1 << 20;
/// Largest object map, in entries.
pub const MAX_MAP: usize = 1 << 16;
/// Script operations a thread body may run without calling a simulated
/// operation: past it, the body is taken to loop endlessly.
pub const BODY_OPERATIONS: u64 = 1_000_000;
/// Script operations the top level may run between simulated operations.
pub const TOP_LEVEL_OPERATIONS: u64 = 100_000_000;

/// A body is stopped when less than this is left of its stack: one script
/// operation (a call through the interpreter) can take tens of KiB in a
/// debug build.
pub const STACK_MARGIN: usize = 96 * 1024;
/// The least `stack_size` a script machine accepts: a body is stopped with
/// less than [`STACK_MARGIN`] left, so it needs that and room to start.
pub const MIN_SCRIPT_STACK: usize = STACK_MARGIN + 32 * 1024;
/// The stack of script threads unless the machine sets `stack_size`: only
/// the pages a body touches cost memory.
pub const SCRIPT_STACK: usize = 1024 * 1024;

thread_local! {
    /// Whether a body without a stack is running (see `script::stackless`).
    pub(crate) static STACKLESS_BODY: Cell<bool> = const { Cell::new(false) };
    /// Script operations since the last simulated operation (of any thread:
    /// between two simulated operations only one body runs).
    static SINCE_OPERATION: Cell<u64> = const { Cell::new(0) };
}

/// Restarts the count: a simulated operation was called.
pub(crate) fn operation_called() {
    SINCE_OPERATION.set(0);
}

/// Installs the limits on `engine`.
pub(crate) fn install(engine: &mut Engine) {
    engine
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(MAX_STRING)
        .set_max_array_size(MAX_ARRAY)
        .set_max_map_size(MAX_MAP);
    engine.on_progress(|total| progress(total, 1, current::stack()).map(Dynamic::from));
}

/// `weight` more script operations, up to the `total`-th of this
/// evaluation, run with `stack` (bytes left and size; `None` at the top
/// level or in a body without a stack): the fault that stops the script
/// there, if any.
pub(crate) fn progress(total: u64, weight: u64, stack: Option<(usize, usize)>) -> Option<Fault> {
    let count = SINCE_OPERATION.get() + weight;
    SINCE_OPERATION.set(count);
    // One script operation can take milliseconds (a push that copies a
    // large array, a pad): the clock is read every 64.
    let tripped = if total >> 6 != total.saturating_sub(weight) >> 6 {
        crate::kernel::guard::check()
    } else {
        crate::kernel::guard::check_memory()
    };
    if let Some(tripped) = tripped {
        return Some(guard_fault(tripped));
    }
    if let Some((_, size)) = stack.filter(|(left, _)| *left < STACK_MARGIN) {
        return Some(Fault {
            message: format!(
                "the thread's stack ({} KiB) is nearly exhausted: calls nested too deeply",
                size / 1024
            ),
            hint: Some(
                "recurse less deeply, or give threads more stack: machine(#{ stack_size: 4194304 })"
                    .into(),
            ),
            stage: ErrorStage::Limit,
        });
    }
    let in_body = current::in_body();
    let limit = if in_body {
        BODY_OPERATIONS
    } else {
        TOP_LEVEL_OPERATIONS
    };
    if count <= limit {
        return None;
    }
    let fault = if in_body {
        Fault {
            message: format!(
                "this thread body ran {BODY_OPERATIONS} script operations without a simulated operation; it looks like an endless loop"
            ),
            hint: Some(
                "a body must call compute(), sleep() or another operation as it loops; \
                 `while true { compute(ms(1)); }` is fine, `while true { }` never lets time pass"
                    .into(),
            ),
            stage: ErrorStage::Limit,
        }
    } else {
        Fault {
            message: format!(
                "the script ran {TOP_LEVEL_OPERATIONS} operations at its top level; it looks like an endless loop"
            ),
            hint: Some("check the loops at the top level of the script".into()),
            stage: ErrorStage::Limit,
        }
    };
    Some(fault)
}

/// The script error of a tripped host guard, raised between operations.
fn guard_fault(tripped: crate::kernel::guard::Tripped) -> Fault {
    use crate::kernel::guard::Tripped;
    let size = crate::model::footprint::format_size;
    match tripped {
        Tripped::Memory { used, limit } => Fault {
            message: format!(
                "the simulator's own memory reached {} (the guard is {}): the script holds too much",
                size(used),
                size(limit)
            ),
            hint: Some(
                "this line was running when the guard tripped: keep fewer or smaller values, or raise simcli's --max-memory"
                    .into(),
            ),
            stage: ErrorStage::Limit,
        },
        Tripped::Timeout { seconds } => Fault {
            message: format!(
                "the script took longer than its wall-clock timeout of {seconds}s; where it stopped depends on the machine's speed, \
                 so this result would not be deterministic: it is a failure, not an outcome"
            ),
            hint: Some("raise --timeout, or shorten the scenario".into()),
            stage: ErrorStage::Limit,
        },
    }
}
