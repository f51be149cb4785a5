//! CPython's models: the interpreter lock ([`gil`]).

pub mod gil;
