//! What the trace keeps of I/O: each device's settings and every request,
//! from submission through its wait for a channel to its completion.

use serde::{Deserialize, Serialize};

use crate::ids::{OriginId, ResourceId, ThreadId};
use crate::model::io::DeviceOptions;
use crate::time::{Span, Time};

/// A device of the run: its resource id (its name is in
/// [`super::Trace::resources`]) and how it serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Its resource id.
    pub resource: ResourceId,
    /// Latency, bandwidth and channels.
    pub options: DeviceOptions,
}

/// One request to a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoRecord {
    /// The device.
    pub device: ResourceId,
    /// The thread that submitted it.
    pub thread: ThreadId,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was submitted.
    pub submitted: Time,
    /// When a channel took it, and which; `None` while it queues.
    pub started: Option<(Time, u16)>,
    /// When it completed; `None` while it is in flight.
    pub completed: Option<Time>,
    /// The operation that submitted it.
    pub origin: Option<OriginId>,
    /// The asyncio task that awaits it (its loop's thread submitted it).
    #[serde(default)]
    pub task: Option<ThreadId>,
}

impl IoRecord {
    /// How long it waited for a channel (until `end` if it still does).
    pub fn queue_wait(&self, end: Time) -> Span {
        self.started.map_or(end, |(t, _)| t) - self.submitted
    }

    /// How long it was in service (until `end` if it still is).
    pub fn service(&self, end: Time) -> Span {
        match self.started {
            Some((start, _)) => self.completed.unwrap_or(end) - start,
            None => Span::ZERO,
        }
    }
}
