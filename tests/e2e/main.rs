//! End-to-end tests: the real `simcli` binary, run as a user runs it.

mod asyncio;
mod cli;
mod errors;
mod explore;
mod explore_suite;
mod guide;
mod hostile;
mod io;
mod newcomer;
mod perfetto;
mod pools;
mod python;
mod races;
mod readme;
mod replay_property;
mod scripts;
mod stackless;
mod step;
mod sweeps;
mod sync;
