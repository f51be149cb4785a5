//! Durations in scripts: `ns(…)`, `us(…)`, `ms(…)`, `sec(…)` build a
//! `Duration` (integer nanoseconds) from an integer or a float; durations
//! add, subtract, scale, compare and print in the unit that suits them.

use rhai::{Engine, EvalAltResult, NativeCallContext, FLOAT, INT};

use super::api::{def_pure, getter};
use super::error::fault;
use crate::time::Span;

/// Nanoseconds per unit, by helper name.
const UNITS: [(&str, u64, &str); 4] = [
    ("ns", 1, "nanoseconds"),
    ("us", 1_000, "microseconds"),
    ("ms", 1_000_000, "milliseconds"),
    ("sec", 1_000_000_000, "seconds"),
];

fn from_int(call: &NativeCallContext, n: INT, unit: u64) -> Result<Span, Box<EvalAltResult>> {
    let nanos = u64::try_from(n)
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| out_of_range(call, &n.to_string()))?;
    Ok(Span(nanos))
}

fn from_float(call: &NativeCallContext, x: FLOAT, unit: u64) -> Result<Span, Box<EvalAltResult>> {
    let nanos = (x * unit as FLOAT).round();
    if !nanos.is_finite() || nanos < 0.0 || nanos > u64::MAX as FLOAT {
        return Err(out_of_range(call, &x.to_string()));
    }
    Ok(Span(nanos as u64))
}

fn out_of_range(call: &NativeCallContext, value: &str) -> Box<EvalAltResult> {
    fault(
        format!("{}({value}) is not a valid duration", call.fn_name()),
        Some("durations are zero or positive and below 584 years"),
        call.call_position(),
    )
}

/// Converts a script value (a Duration or a string like "1.5ms") to a span.
pub(crate) fn to_span(
    value: &rhai::Dynamic,
    what: &str,
    position: rhai::Position,
) -> Result<Span, Box<EvalAltResult>> {
    if let Some(span) = value.clone().try_cast::<Span>() {
        return Ok(span);
    }
    // A bare 0 is unambiguous: no time at all.
    if value.as_int() == Ok(0) {
        return Ok(Span::ZERO);
    }
    if let Ok(text) = value.clone().into_immutable_string() {
        return text.parse::<Span>().map_err(|e| {
            fault(
                format!("{what}: {e}"),
                Some("write durations as ms(5), us(250), sec(1.5) or \"1.5ms\""),
                position,
            )
        });
    }
    Err(fault(
        format!("{what} must be a duration, not {}", value.type_name()),
        Some("write durations as ms(5), us(250), sec(1.5)"),
        position,
    ))
}

fn checked(
    call: &NativeCallContext,
    value: Option<u64>,
    what: &str,
) -> Result<Span, Box<EvalAltResult>> {
    value.map(Span).ok_or_else(|| {
        fault(
            format!("duration {what} out of range"),
            Some("durations are zero or positive and below 584 years"),
            call.call_position(),
        )
    })
}

/// `d` times a whole number.
fn times(call: &NativeCallContext, d: Span, n: INT) -> Result<Span, Box<EvalAltResult>> {
    let n = u64::try_from(n).ok();
    checked(call, n.and_then(|n| d.0.checked_mul(n)), "product")
}

/// Registers the `Duration` type and its helpers.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Span>("Duration");
    for (name, unit, long) in UNITS {
        def_pure(
            engine,
            name,
            &["n: int", "Duration"],
            &format!("A duration of `n` {long}."),
            move |call: NativeCallContext, n: INT| from_int(&call, n, unit),
        );
        def_pure(
            engine,
            name,
            &["x: float", "Duration"],
            &format!("A duration of `x` {long}, rounded to the nanosecond."),
            move |call: NativeCallContext, x: FLOAT| from_float(&call, x, unit),
        );
    }
    def_pure(
        engine,
        "+",
        &["a: Duration", "b: Duration", "Duration"],
        "The sum of two durations.",
        |call: NativeCallContext, a: Span, b: Span| checked(&call, a.0.checked_add(b.0), "sum"),
    );
    def_pure(
        engine,
        "-",
        &["a: Duration", "b: Duration", "Duration"],
        "The difference of two durations; an error if `b` is longer than `a`.",
        |call: NativeCallContext, a: Span, b: Span| {
            checked(&call, a.0.checked_sub(b.0), "difference (negative)")
        },
    );
    def_pure(
        engine,
        "*",
        &["d: Duration", "n: int", "Duration"],
        "`d` times `n`.",
        |call: NativeCallContext, d: Span, n: INT| times(&call, d, n),
    );
    def_pure(
        engine,
        "*",
        &["n: int", "d: Duration", "Duration"],
        "`n` times `d`.",
        |call: NativeCallContext, n: INT, d: Span| times(&call, d, n),
    );
    def_pure(
        engine,
        "*",
        &["d: Duration", "x: float", "Duration"],
        "`d` times `x`, rounded to the nanosecond.",
        |call: NativeCallContext, d: Span, x: FLOAT| from_float(&call, d.0 as FLOAT * x, 1),
    );
    def_pure(
        engine,
        "/",
        &["d: Duration", "n: int", "Duration"],
        "`d` divided by `n`, rounded down to the nanosecond.",
        |call: NativeCallContext, d: Span, n: INT| {
            let n = u64::try_from(n).ok().filter(|&n| n > 0);
            checked(
                &call,
                n.map(|n| d.0 / n),
                "quotient (divide by a positive number)",
            )
        },
    );
    def_pure(
        engine,
        "/",
        &["a: Duration", "b: Duration", "float"],
        "The ratio of two durations.",
        |a: Span, b: Span| a.0 as FLOAT / b.0 as FLOAT,
    );
    macro_rules! compare {
        ($($op:tt)*) => {$(
            def_pure(
                engine,
                stringify!($op),
                &["a: Duration", "b: Duration", "bool"],
                concat!("Compares two durations (", stringify!($op), ")."),
                |a: Span, b: Span| a $op b,
            );
        )*};
    }
    compare!(== != < <= > >=);
    def_pure(
        engine,
        "to_string",
        &["d: Duration", "String"],
        "The duration in the unit that suits it, e.g. \"1.5ms\".",
        |d: &mut Span| d.to_string(),
    );
    def_pure(
        engine,
        "to_debug",
        &["d: Duration", "String"],
        "The duration in the unit that suits it, e.g. \"1.5ms\".",
        |d: &mut Span| d.to_string(),
    );
    getter(
        engine,
        "ns",
        &["d: Duration", "int"],
        "The duration in whole nanoseconds.",
        |d: &mut Span| d.0 as INT,
    );
    for (name, unit, long) in &UNITS[1..] {
        let unit = *unit;
        getter(
            engine,
            name,
            &["d: Duration", "float"],
            &format!("The duration in {long}, as a float."),
            move |d: &mut Span| d.0 as FLOAT / unit as FLOAT,
        );
    }
}
