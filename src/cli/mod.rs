//! The binary's own commands: what needs more than the library (the Gladly simulator, the
//! SQL printer).

pub(crate) mod demo;
pub(crate) mod sql;
