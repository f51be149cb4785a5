//! The simulated thread whose body is running script code right now.
//!
//! Script operations (`compute`, `sleep`, …) are plain Rhai functions, so they
//! find the thread's [`Ctx`] here. A body sets it when it starts and every
//! operation sets it again when it returns (other bodies ran meanwhile); the
//! run clears it when the simulation ends.

use std::cell::Cell;
use std::ptr;

use rhai::{EvalAltResult, NativeCallContext};

use super::error::fault;
use super::limits;
use crate::kernel::Ctx;

thread_local! {
    static CURRENT: Cell<*const Ctx<'static>> = const { Cell::new(ptr::null()) };
}

/// Whether script code is running inside a thread body (stackful, or
/// stepped by `script::stackless`).
pub(crate) fn in_body() -> bool {
    !CURRENT.get().is_null() || super::limits::STACKLESS_BODY.get()
}

/// Bytes left on the running body's stack and its size; `None` at the top
/// level.
pub(crate) fn stack() -> Option<(usize, usize)> {
    let pointer = CURRENT.get();
    // SAFETY: as in `on_current`.
    (!pointer.is_null()).then(|| {
        let ctx = unsafe { &*pointer };
        (ctx.stack_left(), ctx.stack_size())
    })
}

/// A body starts running on `ctx`'s coroutine.
pub(crate) fn enter(ctx: &Ctx<'_>) {
    CURRENT.set((ctx as *const Ctx<'_>).cast::<Ctx<'static>>());
    limits::operation_called();
}

/// The body ended (or the simulation did).
pub(crate) fn clear() {
    CURRENT.set(ptr::null());
}

/// Runs a simulated operation on the current thread, attributed to the
/// script position of the call.
pub(crate) fn operation<R>(
    call: &NativeCallContext,
    op: impl FnOnce(&Ctx<'_>) -> R,
) -> Result<R, Box<EvalAltResult>> {
    let pointer = CURRENT.get();
    if pointer.is_null() {
        return Err(fault(
            format!("{}() is an operation of a simulated thread", call.fn_name()),
            Some("call it inside a thread body: m.add_thread(\"name\", || { ... })"),
            call.call_position(),
        ));
    }
    let position = call.call_position();
    let position = position
        .line()
        .zip(position.position())
        .map(|(line, column)| (line as u32, column as u32));
    Ok(on_current(pointer, position, op))
}

/// `print` inside a body: a log line stamped with the time and the thread.
pub(crate) fn print(text: &str) {
    let pointer = CURRENT.get();
    if !pointer.is_null() {
        on_current(pointer, None, |ctx| ctx.print(text));
    }
}

fn on_current<R>(
    pointer: *const Ctx<'static>,
    position: Option<(u32, u32)>,
    op: impl FnOnce(&Ctx<'_>) -> R,
) -> R {
    // SAFETY: `pointer` was set by `enter` (or restored below) by the body
    // running on this very coroutine; its `Ctx` lives on the coroutine's stack
    // for the whole body call, and only the running coroutine reads it. The
    // run clears it before any coroutine stack is freed.
    let ctx = unsafe { &*pointer };
    if position.is_some() {
        ctx.set_script_position(position);
    }
    let result = op(ctx);
    // Other bodies ran while this one waited: make it current again.
    CURRENT.set(pointer);
    limits::operation_called();
    result
}
