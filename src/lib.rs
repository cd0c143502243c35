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
//!
//! The Gladly API simulator is a crate of its own (`crates/gladly-sim`), used by the binary's
//! `simulate` and `demo`, the tests and the benchmarks, never by this library.

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
