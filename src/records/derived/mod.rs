//! Reports configured by columns: a value schema derived from the CSV header, evolved when
//! Gladly adds a column, and the conversion of rows into it.
//!
//! Every column becomes a nullable field, typed by Gladly's header conventions
//! ([`ColumnKind::of`]; words split on spaces or `_`): `… At` and `Timestamp` are
//! `timestamp-millis`, `… in seconds` and `…_sec` are `double`, `Number of …`, `Count of …`, `Times …` and `… Count` are `long`, the rest
//! `string`. The fields keep the
//! order the columns were first seen in; a column Gladly adds later is appended as a new
//! nullable field with a `null` default ([`DerivedSchema::extended`]), so each version reads
//! the records of the ones before it, and a column that disappears keeps its field (null
//! from then on). Each field records the header it came from (`gladly.column`), so the
//! schema can be rebuilt from the registry's latest version after a restart.
//!
//! The key is the configured key columns, as strings, in order: the first must have a value
//! (a row without one is a dead letter); the others may be empty (an event-grain report's
//! `Topic ID` on an event that has none). Never a key made up from the whole row, which would
//! turn every restatement into a new key. The anchor column is the record's timestamp.

mod convert;
mod schema;
#[cfg(test)]
mod tests;

pub(crate) use convert::{push, DerivedConverter, DerivedLayout};
pub use schema::{ColumnKind, DerivedColumn, DerivedSchema};
