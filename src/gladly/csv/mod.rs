//! The report body as CSV rows: [`RowStream`] yields the [`Row`](crate::report::Row)s of a
//! response body ([`BodyChunks`]) under [`RowLimits`]; see `stream` for its items and `parser`
//! for how records are framed.
//!
//! Imports run one way: `stream` uses `parser`, `parser` uses neither `stream` nor this file.

mod parser;
mod stream;
#[cfg(test)]
mod tests;

pub use parser::{BodyChunks, RowLimits};
pub use stream::{RowResult, RowStream, PREVIEW_BYTES};
