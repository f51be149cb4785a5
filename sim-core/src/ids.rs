//! Small copyable identifiers of the things a simulation holds.
//!
//! Each is an index into the simulation's table of that kind, assigned in
//! creation order, so the same scenario always gives the same ids.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty), $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The index of this id in its table.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A simulated kernel thread.
    ThreadId(u32), "t"
);
id_type!(
    /// A simulated process; process 0 is the default one.
    ProcessId(u32), "p"
);
id_type!(
    /// A simulated core.
    CpuId(u16), "cpu"
);
id_type!(
    /// A synchronization object or device a thread can wait on.
    ResourceId(u32), "r"
);
id_type!(
    /// A variable in a process's memory.
    VarId(u32), "v"
);
id_type!(
    /// An interned source position, see [`crate::trace::Origin`].
    OriginId(u32), "o"
);

impl ProcessId {
    /// The process that threads join when none is named.
    pub const MAIN: ProcessId = ProcessId(0);
}
