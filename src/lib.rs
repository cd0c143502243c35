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
//! - [`fault`]: named crash points for the crash tests, compiled in only with the
//!   `fault-points` feature.
//!
//! The Gladly API simulator is a crate of its own (`crates/gladly-sim`), used by the binary's
//! `simulate` and `demo`, the tests and the benchmarks, never by this library.

#![warn(missing_docs, unreachable_pub)]

pub mod clock;
pub mod config;
pub mod config_error;
pub mod fault;
pub mod gladly;
pub mod kafka;
pub mod observe;
pub mod pipeline;
pub mod records;
pub mod report;
pub mod tail;

/// Service version written into headers and checkpoints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    /// `gladly-sim` is a dependency for the binary's sake; the library must stay free of it.
    #[test]
    fn the_library_does_not_use_the_simulator() {
        // spelled in two parts, so this file does not match itself
        let needle = ["gladly", "_sim"].concat();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut found = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                // the binary: main.rs and its cli/ module
                if path.ends_with("src/main.rs") || path.ends_with("src/cli") {
                    continue;
                }
                if path.is_dir() {
                    dirs.push(path);
                } else if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(&needle)) {
                    found.push(path.display().to_string());
                }
            }
        }
        assert!(found.is_empty(), "the library uses {needle}: {found:?}");
    }
}
