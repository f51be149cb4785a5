//! End-to-end tests: the real `simcli` binary, run as a user runs it.

mod asyncio;
mod cli;
mod errors;
mod explore;
mod explore_suite;
mod guide;
mod io;
mod newcomer;
mod perfetto;
mod pools;
mod python;
mod races;
mod readme;
mod scripts;
mod sweeps;
mod sync;
