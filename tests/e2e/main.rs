//! End-to-end tests: the real `simcli` binary, run as a user runs it.

mod asyncio;
mod cli;
mod errors;
mod explore;
mod explore_suite;
mod hostile;
mod io;
mod python;
mod races;
mod replay_property;
mod scripts;
mod sync;
