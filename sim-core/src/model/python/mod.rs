//! CPython's models: the interpreter lock ([`gil`]) and asyncio's event
//! loop ([`event_loop`]).

pub mod event_loop;
pub mod gil;
