//! Simulated time: integer nanoseconds, never the wall clock.
//!
//! [`Time`] is an instant (nanoseconds since the start of a run) and [`Span`] a
//! duration. Both print in the unit that suits them ("1.5ms", "250us", "2s") and
//! parse from the same text, exactly: `"1.5ms".parse::<Span>()` is 1,500,000 ns.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An instant of simulated time, in nanoseconds since the run started.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Time(pub u64);

/// A length of simulated time, in nanoseconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Span(pub u64);

/// `n` nanoseconds.
pub const fn ns(n: u64) -> Span {
    Span(n)
}
/// `n` microseconds.
pub const fn us(n: u64) -> Span {
    Span(n * 1_000)
}
/// `n` milliseconds.
pub const fn ms(n: u64) -> Span {
    Span(n * 1_000_000)
}
/// `n` seconds.
pub const fn secs(n: u64) -> Span {
    Span(n * 1_000_000_000)
}

impl Time {
    /// The start of every run.
    pub const ZERO: Time = Time(0);
    /// The latest representable instant.
    pub const MAX: Time = Time(u64::MAX);

    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// The span from `earlier` to `self` (zero if `earlier` is later).
    pub const fn since(self, earlier: Time) -> Span {
        Span(self.0.saturating_sub(earlier.0))
    }
    /// This instant as the span since the start.
    pub const fn elapsed(self) -> Span {
        Span(self.0)
    }
}

impl Span {
    /// No time at all.
    pub const ZERO: Span = Span(0);
    /// The longest representable span.
    pub const MAX: Span = Span(u64::MAX);

    /// The length in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// The length in seconds, as a float (for ratios and display only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// True when the span is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// `self - other`, or zero when `other` is longer.
    pub const fn saturating_sub(self, other: Span) -> Span {
        Span(self.0.saturating_sub(other.0))
    }
}

impl Add<Span> for Time {
    type Output = Time;
    fn add(self, rhs: Span) -> Time {
        Time(self.0.saturating_add(rhs.0))
    }
}
impl AddAssign<Span> for Time {
    fn add_assign(&mut self, rhs: Span) {
        *self = *self + rhs;
    }
}
impl Sub<Time> for Time {
    type Output = Span;
    fn sub(self, rhs: Time) -> Span {
        self.since(rhs)
    }
}
impl Add for Span {
    type Output = Span;
    fn add(self, rhs: Span) -> Span {
        Span(self.0.saturating_add(rhs.0))
    }
}
impl AddAssign for Span {
    fn add_assign(&mut self, rhs: Span) {
        *self = *self + rhs;
    }
}
impl Sub for Span {
    type Output = Span;
    fn sub(self, rhs: Span) -> Span {
        self.saturating_sub(rhs)
    }
}
impl SubAssign for Span {
    fn sub_assign(&mut self, rhs: Span) {
        *self = *self - rhs;
    }
}
impl std::iter::Sum for Span {
    fn sum<I: Iterator<Item = Span>>(iter: I) -> Span {
        iter.fold(Span::ZERO, |a, b| a + b)
    }
}

/// Units from the largest down, with their length in nanoseconds.
const UNITS: [(&str, u64); 4] = [
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Writes `nanos` exactly in the largest unit it reaches: 1500000 → "1.5ms".
fn write_nanos(f: &mut fmt::Formatter<'_>, nanos: u64) -> fmt::Result {
    let (unit, scale) = UNITS
        .iter()
        .copied()
        .find(|&(_, scale)| nanos >= scale)
        .unwrap_or(("s", 1_000_000_000));
    if nanos == 0 {
        return f.pad("0s");
    }
    let whole = nanos / scale;
    let frac = nanos % scale;
    let text = if frac == 0 {
        format!("{whole}{unit}")
    } else {
        let width = scale.ilog10() as usize;
        let digits = format!("{frac:0width$}");
        format!("{whole}.{}{unit}", digits.trim_end_matches('0'))
    };
    f.pad(&text)
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_nanos(f, self.0)
    }
}
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_nanos(f, self.0)
    }
}

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a duration: {reason} (write e.g. \"1.5ms\", \"250us\", \"2s\", \"100ns\")"
)]
pub struct ParseSpanError {
    text: String,
    reason: &'static str,
}

impl FromStr for Span {
    type Err = ParseSpanError;

    /// Parses a decimal number followed by a unit: `s`, `ms`, `us` (or `µs`), `ns`.
    /// The value must be a whole number of nanoseconds.
    fn from_str(text: &str) -> Result<Span, ParseSpanError> {
        let fail = |reason| ParseSpanError {
            text: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| fail("it has no unit"))?;
        let (number, unit) = trimmed.split_at(split);
        let scale = match unit.trim() {
            "s" | "sec" => 1_000_000_000u64,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return Err(fail("the unit must be s, ms, us or ns")),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(fail("it has no number"));
        }
        let overflow = || fail("it is too long");
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail("the number is malformed"))?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(overflow)?;
        let mut place = scale;
        for digit in frac.chars() {
            let d = digit
                .to_digit(10)
                .ok_or_else(|| fail("the number is malformed"))? as u64;
            if place == 1 {
                if d != 0 {
                    return Err(fail("it is finer than a nanosecond"));
                }
                continue;
            }
            place /= 10;
            nanos = nanos.checked_add(d * place).ok_or_else(overflow)?;
        }
        Ok(Span(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_in_the_largest_unit_exactly() {
        assert_eq!(ms(1).to_string(), "1ms");
        assert_eq!(Span(1_500_000).to_string(), "1.5ms");
        assert_eq!(us(250).to_string(), "250us");
        assert_eq!(secs(2).to_string(), "2s");
        assert_eq!(Span(1_234_567).to_string(), "1.234567ms");
        assert_eq!(Span(7).to_string(), "7ns");
        assert_eq!(Span(0).to_string(), "0s");
        assert_eq!(Time(3_000_000_000).to_string(), "3s");
    }

    #[test]
    fn parses_what_it_prints() {
        for text in [
            "1.5ms", "250us", "2s", "100ns", "0.25s", ".5ms", "3µs", "1.000ms",
        ] {
            let span: Span = text.parse().unwrap();
            assert_eq!(span.to_string().parse::<Span>().unwrap(), span, "{text}");
        }
        assert_eq!("1.5ms".parse::<Span>().unwrap(), Span(1_500_000));
        assert_eq!("250us".parse::<Span>().unwrap(), us(250));
        assert_eq!(" 2s ".parse::<Span>().unwrap(), secs(2));
    }

    #[test]
    fn rejects_bad_text() {
        for text in [
            "",
            "ms",
            "5",
            "1.5",
            "1.5h",
            "1..5ms",
            "1.5ns",
            "99999999999999999999s",
        ] {
            let err = text.parse::<Span>().unwrap_err();
            assert!(
                err.to_string().contains("is not a duration"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Time::MAX + ms(1), Time::MAX);
        assert_eq!(ms(1) - ms(2), Span::ZERO);
        assert_eq!(Time(5) - Time(7), Span::ZERO);
    }
}
