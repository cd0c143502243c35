//! gladly-kafka: polls Gladly's contact-center reports and publishes every row as a keyed
//! Avro record to compacted Kafka topics.
//!
//! Layout (see `../shared/DESIGN.md`):
//! - [`clock`]: time as a dependency (system, manual, accelerated).
//! - [`report`]: the names shared by every layer: which report, a CSV row.
//! - [`gladly`]: the source — HTTP client with pacing and retry, streaming CSV rows.
//! - [`records`]: the pure core — rows to keyed Avro records, tombstones, dead letters.
//! - [`kafka`]: the sink — producer, topic admin, schema registry client.
//! - [`pipeline`]: windows, checkpoints, the poll loop, backfill.

pub mod clock;
pub mod config;
pub mod gladly;
pub mod kafka;
pub mod observe;
pub mod pipeline;
pub mod records;
pub mod report;

/// Service version written into headers and checkpoints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
