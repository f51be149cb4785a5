//! CPython's models: the interpreter lock ([`gil`]), asyncio's event
//! loop ([`event_loop`]) and `concurrent.futures`' executors ([`pool`]).

pub mod event_loop;
pub mod gil;
pub mod pool;
