//! The time axis: round tick steps (1, 2 or 5 times a power of ten
//! nanoseconds) and labels in one unit that suits the whole run.

use crate::time::Time;

/// Units from the largest down, with their length in nanoseconds.
const UNITS: [(&str, u64); 4] = [
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// One tick of the axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tick {
    /// Where.
    pub(crate) time: Time,
    /// What it reads, e.g. "1.5ms"; the first tick reads "0".
    pub(crate) label: String,
}

/// Ticks over `[0, end]`: the smallest round step that gives at most
/// `max_steps` steps, labelled in the largest unit that `end` reaches, with as
/// many decimals as the step needs and no more.
pub(crate) fn ticks(end: Time, max_steps: u64) -> Vec<Tick> {
    let end = end.as_nanos().max(1);
    let step = nice_step(end, max_steps.max(1));
    let (unit, scale) = UNITS
        .iter()
        .copied()
        .find(|&(_, scale)| end >= scale)
        .unwrap_or(("ns", 1));
    let mut decimals = 0u32;
    while !(u128::from(step) * 10u128.pow(decimals)).is_multiple_of(u128::from(scale)) {
        decimals += 1;
    }
    (0..=end / step)
        .map(|i| {
            let t = i * step;
            let label = if t == 0 {
                "0".to_string()
            } else if decimals == 0 {
                format!("{}{unit}", t / scale)
            } else {
                let frac = u128::from(t % scale) * 10u128.pow(decimals) / u128::from(scale);
                let width = decimals as usize;
                format!("{}.{frac:0width$}{unit}", t / scale)
            };
            Tick {
                time: Time(t),
                label,
            }
        })
        .collect()
}

/// The smallest of 1, 2, 5, 10, 20, 50, … nanoseconds that divides `end`
/// into at most `max_steps` steps.
fn nice_step(end: u64, max_steps: u64) -> u64 {
    let mut magnitude: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            let step = magnitude.saturating_mul(m);
            if u128::from(step) * u128::from(max_steps) >= u128::from(end) {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(end: u64, max: u64) -> Vec<String> {
        ticks(Time(end), max).into_iter().map(|t| t.label).collect()
    }

    #[test]
    fn steps_are_round_and_few() {
        assert_eq!(nice_step(120_000_000, 12), 10_000_000);
        assert_eq!(nice_step(121_000_000, 12), 20_000_000);
        assert_eq!(nice_step(7, 12), 1);
        assert_eq!(nice_step(u64::MAX, 12), 2_000_000_000_000_000_000);
    }

    #[test]
    fn labels_use_one_unit_with_the_decimals_the_step_needs() {
        assert_eq!(
            labels(120_000_000, 12),
            [
                "0", "10ms", "20ms", "30ms", "40ms", "50ms", "60ms", "70ms", "80ms", "90ms",
                "100ms", "110ms", "120ms"
            ]
        );
        assert_eq!(
            labels(3_200_000, 8),
            ["0", "0.5ms", "1.0ms", "1.5ms", "2.0ms", "2.5ms", "3.0ms"]
        );
        assert_eq!(labels(1_000_000_000, 10)[1], "0.1s");
        assert_eq!(
            labels(450, 10),
            ["0", "50ns", "100ns", "150ns", "200ns", "250ns", "300ns", "350ns", "400ns", "450ns"]
        );
        assert_eq!(labels(2_500, 10)[1], "0.5us");
        assert_eq!(labels(1, 10), ["0", "1ns"]);
    }

    #[test]
    fn ticks_stay_inside_the_run_and_count_at_most_the_limit() {
        for end in [1, 9, 10, 11, 999, 1_234_567, 987_654_321_000, u64::MAX / 3] {
            for max in [4, 8, 12] {
                let ticks = ticks(Time(end), max);
                assert!(ticks.len() as u64 <= max + 1, "{end} {max}");
                assert!(ticks.len() >= 2 || end < 2, "{end} {max}");
                assert!(ticks.last().unwrap().time.as_nanos() <= end);
            }
        }
    }
}
