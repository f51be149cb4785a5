//! The memory a scenario holds: each process and each extra thread costs
//! what it costs in CPython on Linux, and a start past the machine's memory
//! fails, as `threading.Thread.start` (`RuntimeError: can't start new
//! thread`) and `multiprocessing.Process.start` (`OSError`) do.
//!
//! The defaults were measured with the real CPython 3.11 on this project's
//! machine by `python3 bench/python/python_memory.py`:
//! - an idle interpreter's RSS (`python3 -c 'import time; time.sleep(60)'`,
//!   `VmRSS` of `/proc/<pid>/status`): 13,560 KiB;
//! - what one idle `threading.Thread` (blocked in `Event.wait`) adds to the
//!   RSS, over 100 threads: 15.6 KiB (its 8 MiB stack is reserved, not
//!   touched);
//! - what one asyncio task parked in `asyncio.sleep` holds (its coroutine
//!   frame, the `Task`, its future and timer handle), traced with
//!   `tracemalloc` over 100,000 tasks by
//!   `python3 bench/python/asyncio_task_memory.py`: 1,413 bytes.
//!
//! A process's first thread is part of its interpreter; every further thread
//! costs `thread_memory`. A thread's memory is freed when it ends, a
//! process's when its last thread ends.

use crate::ids::ProcessId;

/// An idle CPython interpreter's RSS: 13,560 KiB.
pub const PROCESS_MEMORY: u64 = 13_560 * 1024;
/// What an idle CPython thread adds to the RSS: 15.6 KiB.
pub const THREAD_MEMORY: u64 = 15_974;
/// What an asyncio task parked in `asyncio.sleep` holds: 1,413 bytes.
pub const TASK_MEMORY: u64 = 1_413;
/// The default machine memory: 16 GiB.
pub const MACHINE_MEMORY: u64 = 16 << 30;

/// Reads a size: bytes as "512KiB", "1MiB", "16GiB", "100MB", "4096" or
/// "4096B" (decimal k, M, G, T; binary Ki, Mi, Gi, Ti). The error says what
/// was wrong.
///
/// ```
/// use sim_core::model::footprint::parse_size;
/// assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
/// assert_eq!(parse_size("100MB"), Ok(100_000_000));
/// assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let help = "write sizes as \"512KiB\", \"1MiB\", \"16GiB\" or \"100MB\"";
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = compact
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(compact.len());
    let (number, unit) = compact.split_at(digits);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("size \"{text}\" does not start with a number: {help}"))?;
    let scale: f64 = match unit {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "size \"{text}\" has an unknown unit \"{other}\": {help}"
            ))
        }
    };
    let bytes = number * scale;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("size \"{text}\" is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// A byte count in the binary unit that suits it, with one decimal when it
/// has one: "512B", "15.6KiB", "40MiB", "16GiB". Reports and charts write
/// sizes this way.
///
/// ```
/// use sim_core::model::footprint::format_size;
/// assert_eq!(format_size(13_560 * 1024), "13.2MiB");
/// assert_eq!(format_size(16 << 30), "16GiB");
/// ```
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        let text = format!("{value:.1}");
        format!("{}{}", text.trim_end_matches(".0"), UNITS[unit])
    }
}

/// The memory in use, per process and in all, with their peaks.
#[derive(Debug, Default)]
pub(crate) struct Footprint {
    limit: u64,
    used: u64,
    peak: u64,
    /// Per process: in use and peak.
    processes: Vec<(u64, u64)>,
}

/// A start refused: what it needed on top of what was in use, and the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutOfMemory {
    pub(crate) used: u64,
    pub(crate) needed: u64,
    pub(crate) limit: u64,
}

impl Footprint {
    pub(crate) fn new(limit: u64) -> Footprint {
        Footprint {
            limit,
            ..Footprint::default()
        }
    }

    /// Takes `bytes` for `process`, unless that would pass the limit.
    pub(crate) fn take(&mut self, process: ProcessId, bytes: u64) -> Result<(), OutOfMemory> {
        self.room_for(bytes)?;
        let after = self.used + bytes;
        self.used = after;
        self.peak = self.peak.max(after);
        let i = process.index();
        if self.processes.len() <= i {
            self.processes.resize(i + 1, (0, 0));
        }
        let (used, peak) = &mut self.processes[i];
        *used += bytes;
        *peak = (*peak).max(*used);
        Ok(())
    }

    /// Whether `bytes` more fit within the limit.
    pub(crate) fn room_for(&self, bytes: u64) -> Result<(), OutOfMemory> {
        if self.used.saturating_add(bytes) > self.limit {
            return Err(OutOfMemory {
                used: self.used,
                needed: bytes,
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Gives back `bytes` of `process`.
    pub(crate) fn free(&mut self, process: ProcessId, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
        if let Some((used, _)) = self.processes.get_mut(process.index()) {
            *used = used.saturating_sub(bytes);
        }
    }

    /// In use now.
    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    /// The most ever in use.
    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }

    /// The peak of `process`.
    pub(crate) fn process_peak(&self, process: ProcessId) -> u64 {
        self.processes.get(process.index()).map_or(0, |p| p.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_decimal_and_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("2 KiB"), Ok(2048));
        assert_eq!(parse_size("16GiB"), Ok(16 << 30));
        assert_eq!(parse_size("3kB"), Ok(3000));
        for bad in ["", "MiB", "12 parsecs", "-1MB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn takes_within_the_limit_and_keeps_peaks() {
        let mut f = Footprint::new(100);
        let (a, b) = (ProcessId(0), ProcessId(1));
        assert_eq!(f.take(a, 60), Ok(()));
        assert_eq!(f.take(b, 30), Ok(()));
        assert_eq!(
            f.take(b, 20),
            Err(OutOfMemory {
                used: 90,
                needed: 20,
                limit: 100
            })
        );
        f.free(a, 60);
        assert_eq!(f.take(b, 20), Ok(()));
        assert_eq!((f.used(), f.peak()), (50, 90));
        assert_eq!((f.process_peak(a), f.process_peak(b)), (60, 50));
    }
}
