//! The operations a thread body calls: `compute`, `sleep`, `yield_now`,
//! `now`, and `print` inside a body (stamped with time and thread).

use rhai::{Dynamic, Engine, EvalAltResult, FuncRegistration, NativeCallContext, FLOAT, INT};

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
    bare_numbers(engine);
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

/// `compute(0)`, `compute_nogil(0)` and `sleep(0)`: a bare `0` is
/// unambiguous, so it is accepted as no time at all; any other bare number
/// gets the error a missing overload gives (with its hint about units).
///
/// These overloads also shadow Rhai's own `sleep(seconds)`, which would
/// block the real process: nothing in a script may read or spend wall-clock
/// time. They carry no doc, so `simcli api` does not list them.
fn bare_numbers(engine: &mut Engine) {
    fn zero(call: &NativeCallContext, n: INT) -> Result<Span, Box<EvalAltResult>> {
        if n == 0 {
            Ok(Span::ZERO)
        } else {
            Err(no_match(call, "i64"))
        }
    }
    fn no_match(call: &NativeCallContext, ty: &str) -> Box<EvalAltResult> {
        EvalAltResult::ErrorFunctionNotFound(
            format!("{} ({ty})", call.fn_name()),
            call.call_position(),
        )
        .into()
    }
    let registration = |name: &str| {
        FuncRegistration::new(name)
            .with_volatility(true)
            .with_params_info(["d: int", "()"])
    };
    registration("compute").register_into_engine(engine, |call: NativeCallContext, n: INT| {
        let d = zero(&call, n)?;
        current::operation(&call, |ctx| ctx.compute(d))
    });
    registration("compute_nogil").register_into_engine(
        engine,
        |call: NativeCallContext, n: INT| {
            let d = zero(&call, n)?;
            current::operation(&call, |ctx| ctx.compute_nogil(d))
        },
    );
    registration("sleep").register_into_engine(engine, |call: NativeCallContext, n: INT| {
        let d = zero(&call, n)?;
        current::operation(&call, |ctx| ctx.sleep(d))
    });
    FuncRegistration::new("sleep")
        .with_volatility(true)
        .with_params_info(["d: float", "()"])
        .register_into_engine(engine, |call: NativeCallContext, _: FLOAT| {
            Err::<(), _>(no_match(&call, "f64"))
        });
}

/// Where `print` goes: into the run's log when called in a body (stamped
/// with the time and the thread), to the script's output otherwise.
pub(crate) fn install_print(engine: &mut Engine) {
    engine.on_print(print);
    engine.on_debug(|text, _, _| print(text));
}

fn print(text: &str) {
    if super::stackless::capture_print(text) {
        return;
    }
    if current::in_body() {
        current::print(text);
    } else {
        session::with(|s| s.output.push(Output::Print(text.to_string())));
    }
}
