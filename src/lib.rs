//! gladly-kafka: polls Gladly's contact-center reports and publishes every row as a keyed
//! Avro record to compacted Kafka topics. The contract (topics, keys, schemas, headers,
//! windows, checkpoints) is in `docs/design.md`; what it relies on from Gladly in
//! `docs/gladly-api.md`.
//!
//! Layout, dependencies pointing down (`scripts/module-graph` checks there is no cycle):
//! - [`pipeline`]: windows, checkpoints, the poll loop, backfill — uses every layer below.
//! - [`config`]: the whole configuration, assembled from each layer's settings.
//! - [`gladly`]: the source — HTTP client with pacing and retry, streaming CSV rows.
//! - [`kafka`]: the sink — producer, topic admin, schema registry client.
//! - [`records`]: the pure core — rows to keyed Avro records, tombstones, dead letters.
//! - [`observe`]: logs, metrics, health; knows nothing of the layers that feed it.
//! - [`report`], [`clock`], [`config_error`]: leaves shared by every layer — which report and
//!   a CSV row, time as a dependency, a configuration problem naming its key.
//! - [`tail`]: a topic read back as JSON lines (the `tail` command).
//! - [`simulator`]: a Gladly API simulator for tests, the demo and benchmarks.
//! - [`demo`]: `simulate` and `demo`, the simulator behind the command line.

#![warn(missing_docs, unreachable_pub)]

pub mod clock;
pub mod config;
pub mod config_error;
pub mod demo;
pub mod gladly;
pub mod kafka;
pub mod observe;
pub mod pipeline;
pub mod records;
pub mod report;
pub mod simulator;
pub mod tail;

/// Service version written into headers and checkpoints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
