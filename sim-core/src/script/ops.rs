//! The operations a thread body calls: `compute`, `sleep`, `yield_now`,
//! `now`, and `print` inside a body (stamped with time and thread).

use rhai::{Dynamic, Engine, NativeCallContext};

use super::api::def;
use super::duration::to_span;
use super::{current, session, Output};
use crate::time::Span;

/// Registers the operations.
pub(crate) fn register(engine: &mut Engine) {
    def(
        engine,
        "compute",
        &["d: Duration", "()"],
        "Uses `d` of CPU time; the thread may be preempted and resumed meanwhile.",
        |call: NativeCallContext, d: Span| current::operation(&call, |ctx| ctx.compute(d)),
    );
    def(
        engine,
        "compute",
        &["d: String", "()"],
        "compute(\"1.5ms\"): the duration written as text.",
        |call: NativeCallContext, d: &str| {
            let d = to_span(
                &Dynamic::from(d.to_string()),
                "compute",
                call.call_position(),
            )?;
            current::operation(&call, |ctx| ctx.compute(d))
        },
    );
    def(
        engine,
        "compute_nogil",
        &["d: Duration", "()"],
        "Uses `d` of CPU time in native code that releases the process's GIL (hashlib, zlib, numpy); takes the GIL back after.",
        |call: NativeCallContext, d: Span| current::operation(&call, |ctx| ctx.compute_nogil(d)),
    );
    def(
        engine,
        "sleep",
        &["d: Duration", "()"],
        "Blocks for `d` without using a CPU.",
        |call: NativeCallContext, d: Span| current::operation(&call, |ctx| ctx.sleep(d)),
    );
    def(
        engine,
        "sleep",
        &["d: String", "()"],
        "sleep(\"250us\"): the duration written as text.",
        |call: NativeCallContext, d: &str| {
            let d = to_span(&Dynamic::from(d.to_string()), "sleep", call.call_position())?;
            current::operation(&call, |ctx| ctx.sleep(d))
        },
    );
    def(
        engine,
        "yield_now",
        &["()"],
        "Gives up the CPU: the thread goes to the back of the ready queue.",
        |call: NativeCallContext| current::operation(&call, |ctx| ctx.yield_now()),
    );
    def(
        engine,
        "now",
        &["Duration"],
        "The current simulated time, as the duration since the start.",
        |call: NativeCallContext| current::operation(&call, |ctx| ctx.now().elapsed()),
    );
}

/// Where `print` goes: into the run's log when called in a body (stamped
/// with the time and the thread), to the script's output otherwise.
pub(crate) fn install_print(engine: &mut Engine) {
    engine.on_print(print);
    engine.on_debug(|text, _, _| print(text));
}

fn print(text: &str) {
    if current::in_body() {
        current::print(text);
    } else {
        session::with(|s| s.output.push(Output::Print(text.to_string())));
    }
}
