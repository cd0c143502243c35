//! Checkpoints: how far each report has been published, kept in a compacted Kafka topic.
//!
//! Key: `run/<report>` for the poll loop, `backfill/<report>/<from>/<to>` for a backfill.
//! Value: a JSON [`Checkpoint`]. In exactly-once mode the checkpoint is written in the same
//! transaction as its window's records, so reading it with `read_committed` gives a position
//! whose records are all visible.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::window::Position;
use crate::kafka::reader::{ReadError, Start, TopicReader};
use crate::kafka::KafkaSettings;
use crate::report::Report;

/// Which cursor of a report: the poll loop's, or one backfill's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Scope {
    /// `run` and `once`.
    Run,
    /// `backfill --from --to`.
    Backfill {
        /// Requested start.
        from: String,
        /// Requested end.
        to: String,
    },
}

/// The key of a checkpoint record.
pub fn checkpoint_key(report: Report, scope: &Scope) -> String {
    match scope {
        Scope::Run => format!("run/{report}"),
        Scope::Backfill { from, to } => format!("backfill/{report}/{from}/{to}"),
    }
}

/// The value of a checkpoint record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The report.
    pub report: Report,
    /// Run or backfill.
    pub scope: Scope,
    /// Everything up to here has been published.
    pub position: Position,
    /// When this checkpoint was written (service clock).
    pub updated_at: DateTime<Utc>,
    /// The run that wrote it.
    pub run_id: String,
    /// Service version that wrote it.
    pub service_version: String,
    /// The window that moved it (text bounds), if any (absent after `reset`).
    #[serde(default)]
    pub window: Option<(String, String)>,
    /// Rows in that window.
    #[serde(default)]
    pub rows: u64,
    /// For backfills: true once the whole range is done.
    #[serde(default)]
    pub complete: bool,
}

impl Checkpoint {
    /// JSON bytes of the record value.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a checkpoint serialises")
    }
}

/// Reading checkpoints failed.
#[derive(Debug, thiserror::Error)]
#[error("checkpoints: {0}")]
pub struct CheckpointError(#[from] ReadError);

pub use crate::kafka::reader::QuietEof;

/// Reads the whole checkpoint topic (`read_committed`) and returns the latest value per key.
/// Blocking. Unreadable values are logged and skipped; tombstones remove a key.
pub fn read_checkpoints(
    kafka: &KafkaSettings,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, Checkpoint>, CheckpointError> {
    let mut out = BTreeMap::new();
    let mut reader = match TopicReader::open(kafka, topic, Start::Beginning, false, timeout) {
        Ok(r) => r,
        Err(ReadError::NoTopic(_)) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    while let Some(m) = reader.next_record()? {
        let Some(key) = m.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()) else {
            continue;
        };
        match m.value {
            None => {
                out.remove(key);
            }
            Some(v) => match serde_json::from_slice::<Checkpoint>(&v) {
                Ok(c) => {
                    out.insert(key.to_string(), c);
                }
                Err(e) => tracing::warn!(key, error = %e, "skipping an unreadable checkpoint"),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn checkpoint_round_trips_as_json() {
        let c = Checkpoint {
            report: Report::WorkSessions,
            scope: Scope::Backfill {
                from: "2024-01-01".into(),
                to: "2024-02-01".into(),
            },
            position: Position::Instant(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 0).unwrap()),
            updated_at: Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(),
            run_id: "r1".into(),
            service_version: "0.1.0".into(),
            window: Some(("a".into(), "b".into())),
            rows: 7,
            complete: false,
        };
        let back: Checkpoint = serde_json::from_slice(&c.to_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            checkpoint_key(Report::Contacts, &Scope::Run),
            "run/contacts"
        );
        assert_eq!(
            checkpoint_key(Report::WorkSessions, &c.scope),
            "backfill/work_sessions/2024-01-01/2024-02-01"
        );
    }
}
