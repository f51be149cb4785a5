//! Per I/O device: how many requests it served and how many bytes, how busy
//! each channel was, how long requests waited for a channel and how long
//! they were in service.
//!
//! Utilisation is a channel's time in service over the makespan, as CPU
//! utilisation is; a request still queued or in service at the end of the
//! run counts up to the end.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::{Span, Time};
use crate::trace::Trace;

/// What happened on one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceStats {
    /// Its name.
    pub name: String,
    /// Requests submitted to it.
    pub requests: u64,
    /// Requests that completed.
    pub completed: u64,
    /// Bytes of every request.
    pub bytes: u64,
    /// Per channel, the share of the run it was in service (0 to 1).
    pub utilisation: Vec<f64>,
    /// Wait for a channel per request (zero when one was free).
    pub mean_queue_wait: Span,
    /// The longest wait for a channel.
    pub max_queue_wait: Span,
    /// The most requests waiting for a channel at once.
    pub max_queue: u64,
    /// Time in service per request.
    pub mean_service: Span,
    /// The longest time in service.
    pub max_service: Span,
}

impl DeviceStats {
    /// The mean utilisation of its channels.
    pub fn mean_utilisation(&self) -> f64 {
        if self.utilisation.is_empty() {
            return 0.0;
        }
        self.utilisation.iter().sum::<f64>() / self.utilisation.len() as f64
    }
}

/// Statistics of every device of a run, in declaration order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IoStats {
    /// Per device.
    pub devices: Vec<DeviceStats>,
}

impl IoStats {
    /// Derives the statistics of `trace`'s devices from its requests.
    pub fn from_trace(trace: &Trace) -> IoStats {
        let end = trace.end;
        // Shares of the makespan, as CPU utilisation.
        let whole = trace.makespan().as_nanos().max(1) as f64;
        // Where each device's stats are, by resource id.
        let mut place = vec![None; trace.resources.len()];
        let mut devices: Vec<DeviceStats> = Vec::with_capacity(trace.devices.len());
        let mut busy: Vec<Vec<Span>> = Vec::with_capacity(trace.devices.len());
        let mut totals: Vec<(Span, Span)> = Vec::with_capacity(trace.devices.len());
        // Queue length changes: (time, +1 / -1) per device.
        let mut queue_moves: Vec<Vec<(Time, i64)>> = Vec::with_capacity(trace.devices.len());
        for info in &trace.devices {
            if let Some(slot) = place.get_mut(info.resource.index()) {
                *slot = Some(devices.len());
            }
            devices.push(DeviceStats {
                name: trace.resource_name(info.resource).to_string(),
                requests: 0,
                completed: 0,
                bytes: 0,
                utilisation: Vec::new(),
                mean_queue_wait: Span::ZERO,
                max_queue_wait: Span::ZERO,
                max_queue: 0,
                mean_service: Span::ZERO,
                max_service: Span::ZERO,
            });
            busy.push(vec![Span::ZERO; usize::from(info.options.channels.max(1))]);
            totals.push((Span::ZERO, Span::ZERO));
            queue_moves.push(Vec::new());
        }
        for record in &trace.io {
            let Some(&Some(d)) = place.get(record.device.index()) else {
                continue;
            };
            let stats = &mut devices[d];
            stats.requests += 1;
            stats.bytes = stats.bytes.saturating_add(record.bytes);
            if record.completed.is_some() {
                stats.completed += 1;
            }
            let wait = record.queue_wait(end);
            let service = record.service(end);
            stats.max_queue_wait = stats.max_queue_wait.max(wait);
            stats.max_service = stats.max_service.max(service);
            totals[d].0 += wait;
            totals[d].1 += service;
            if let Some((_, channel)) = record.started {
                if let Some(b) = busy[d].get_mut(usize::from(channel)) {
                    *b += service;
                }
            }
            if !wait.is_zero() {
                queue_moves[d].push((record.submitted, 1));
                queue_moves[d].push((record.submitted + wait, -1));
            }
        }
        for (d, stats) in devices.iter_mut().enumerate() {
            stats.utilisation = busy[d]
                .iter()
                .map(|b| b.as_nanos() as f64 / whole)
                .collect();
            let per = |total: Span| Span(total.as_nanos().checked_div(stats.requests).unwrap_or(0));
            stats.mean_queue_wait = per(totals[d].0);
            stats.mean_service = per(totals[d].1);
            // Leaving before joining at one instant: a request that left the
            // queue at t did not wait beside one that joined at t.
            let moves = &mut queue_moves[d];
            moves.sort_unstable();
            let mut length: i64 = 0;
            for &(_, step) in moves.iter() {
                length += step;
                stats.max_queue = stats.max_queue.max(length as u64);
            }
        }
        IoStats { devices }
    }

    /// The statistics of the device with this name.
    pub fn device(&self, name: &str) -> Option<&DeviceStats> {
        self.devices.iter().find(|d| d.name == name)
    }
}

impl fmt::Display for IoStats {
    /// One line per device, then one utilisation figure per channel when a
    /// device has several. Nothing when the run had no device.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.devices.is_empty() {
            return Ok(());
        }
        let width = self
            .devices
            .iter()
            .map(|d| d.name.len())
            .max()
            .unwrap_or(0)
            .max(6);
        writeln!(
            f,
            "{:<width$}  {:>8}  {:>12}  {:>11}  {:>12}  {:>12}  {:>9}  {:>12}  {:>12}",
            "device",
            "requests",
            "bytes",
            "utilisation",
            "mean wait",
            "max wait",
            "max queue",
            "mean service",
            "max service"
        )?;
        for d in &self.devices {
            writeln!(
                f,
                "{:<width$}  {:>8}  {:>12}  {:>10.1}%  {:>12}  {:>12}  {:>9}  {:>12}  {:>12}",
                d.name,
                d.requests,
                d.bytes,
                d.mean_utilisation() * 100.0,
                d.mean_queue_wait.to_string(),
                d.max_queue_wait.to_string(),
                d.max_queue,
                d.mean_service.to_string(),
                d.max_service.to_string()
            )?;
            if d.utilisation.len() > 8 {
                let min = d.utilisation.iter().copied().fold(f64::INFINITY, f64::min);
                let max = d.utilisation.iter().copied().fold(0.0, f64::max);
                writeln!(
                    f,
                    "  {} channels: {}, from {:.1}% to {:.1}% busy",
                    d.name,
                    d.utilisation.len(),
                    min * 100.0,
                    max * 100.0
                )?;
            } else if d.utilisation.len() > 1 {
                let channels: Vec<String> = d
                    .utilisation
                    .iter()
                    .enumerate()
                    .map(|(i, u)| format!("ch{i} {:.1}%", u * 100.0))
                    .collect();
                writeln!(f, "  {} channels: {}", d.name, channels.join(", "))?;
            }
        }
        Ok(())
    }
}
