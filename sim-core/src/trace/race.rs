//! What the trace keeps of data races: two plain accesses to one variable,
//! from different threads, at least one a store, with no happens-before
//! order between them.

use serde::{Deserialize, Serialize};

use crate::ids::{OriginId, ThreadId, VarId};
use crate::time::Time;

/// A plain access to shared memory (atomics never race).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKind {
    /// `load()`.
    Load,
    /// `store(x)`.
    Store,
}

/// One side of a race.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaceAccess {
    /// The thread that accessed.
    pub thread: ThreadId,
    /// Load or store.
    pub kind: AccessKind,
    /// When.
    pub time: Time,
    /// Where in the source, if recorded.
    pub origin: Option<OriginId>,
}

/// Two unordered conflicting accesses to one variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Race {
    /// The variable.
    pub variable: VarId,
    /// The earlier access.
    pub first: RaceAccess,
    /// The later access.
    pub second: RaceAccess,
}
