//! Exports of a finished [`Trace`](crate::trace::Trace) to formats other
//! tools read. One file per format:
//!
//! - [`perfetto`](mod@perfetto): the Chrome trace event format (JSON) that
//!   ui.perfetto.dev and chrome://tracing open.
//!
//! The native format, RON, lives with the trace itself
//! ([`Trace::to_ron`](crate::trace::Trace::to_ron)): it round-trips, these
//! do not.

pub mod perfetto;

pub use perfetto::{perfetto, write_perfetto, Mark, PerfettoOptions};
