//! What a run means, derived from its trace: statistics now; deadlock, race
//! and starvation analyses beside them later.

pub mod deadlock;
pub mod stats;
