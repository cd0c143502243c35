//! The binary's own commands: what needs more than the library (the Gladly simulator).

pub(crate) mod demo;
