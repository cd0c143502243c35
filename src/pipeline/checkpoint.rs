//! Checkpoints: how far each report has been published, kept in a compacted Kafka topic.
//!
//! Key: `run/<report>` for the poll loop, `backfill/<report>/<from>/<to>` for a backfill,
//! `reread/<report>/<tier>` for a re-read tier's progress (`reread/work_sessions/24h`), and
//! `dimension/<list>` for a dimension list's last refresh (`pipeline::dimensions`).
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

/// Which cursor of a report: the poll loop's, one backfill's, or one re-read tier's.
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
    /// A re-read tier of the poll loop: its passes' progress (written by the poll loop's
    /// producer; no job is opened with this scope).
    Reread {
        /// The tier's name: its span, `24h` or `30d`.
        tier: String,
    },
}

/// The key of a checkpoint record.
pub fn checkpoint_key(report: Report, scope: &Scope) -> String {
    match scope {
        Scope::Run => format!("run/{report}"),
        Scope::Backfill { from, to } => format!("backfill/{report}/{from}/{to}"),
        Scope::Reread { tier } => format!("reread/{report}/{tier}"),
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
    /// For backfills: true once the whole range is done; for a re-read tier: true once the
    /// current pass is done.
    #[serde(default)]
    pub complete: bool,
    /// For a re-read tier: the current pass (its range and start) and the last complete one.
    /// `position` is how far the current pass got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<PassRecord>,
}

/// A re-read tier's pass, as its progress record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassRecord {
    /// Where the pass starts (an instant, or the first day).
    pub from: Position,
    /// Where it ends: the start of the live poll's re-read when the pass began (an instant),
    /// or the day before it.
    pub to: Position,
    /// When the pass began (the pipeline's clock at the start of its cycle).
    pub started_at: DateTime<Utc>,
    /// The last complete pass (this one, once complete); none before the first.
    #[serde(default)]
    pub last_complete: Option<CompletedPass>,
}

/// When a complete pass of a re-read tier began and ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedPass {
    /// When it began: the tier is due again `every` after this.
    pub started_at: DateTime<Utc>,
    /// When its last window was committed.
    pub finished_at: DateTime<Utc>,
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

/// The key prefix of the dimension lists' records in the checkpoint topic
/// (`dimension/agents`, …): not report checkpoints, see `pipeline::dimensions`.
pub const DIMENSION_KEY_PREFIX: &str = "dimension/";

/// The key of the events feed's record in the checkpoint topic: not a report checkpoint, see
/// `pipeline::event_feed`.
pub const EVENTS_KEY: &str = "events/feed";

/// True for the key of a report's checkpoint (not a dimension list's or the events feed's).
pub fn is_report_key(key: &str) -> bool {
    !key.starts_with(DIMENSION_KEY_PREFIX) && key != EVENTS_KEY
}

/// Reads the whole checkpoint topic (`read_committed`) and returns the latest value per key
/// whose key `wanted` accepts. Blocking. Tombstones remove a key.
pub fn read_latest(
    kafka: &KafkaSettings,
    topic: &str,
    timeout: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, Vec<u8>>, CheckpointError> {
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
        if !wanted(key) {
            continue;
        }
        match m.value {
            None => {
                out.remove(key);
            }
            Some(v) => {
                out.insert(key.to_string(), v);
            }
        }
    }
    Ok(out)
}

/// Reads the whole checkpoint topic (`read_committed`) and returns the latest report
/// checkpoint per key. Blocking. Unreadable values are logged and skipped (`status` shows what
/// it can; a report about to resume from one stops instead, see [`read_checkpoint_records`]);
/// tombstones remove a key; the dimension lists' and the events feed's records are not report
/// checkpoints ([`is_report_key`]).
pub fn read_checkpoints(
    kafka: &KafkaSettings,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, Checkpoint>, CheckpointError> {
    Ok(readable(read_checkpoint_records(kafka, topic, timeout)?))
}

/// Like [`read_checkpoints`], keeping the unreadable values: `Err` holds why each one could
/// not be read.
pub fn read_checkpoint_records(
    kafka: &KafkaSettings,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, Result<Checkpoint, String>>, CheckpointError> {
    let raw = read_latest(kafka, topic, timeout, is_report_key)?;
    Ok(raw
        .into_iter()
        .map(|(key, v)| {
            let parsed = serde_json::from_slice::<Checkpoint>(&v).map_err(|e| e.to_string());
            (key, parsed)
        })
        .collect())
}

/// The readable checkpoints of `records`; the others are logged and left out.
pub fn readable(
    records: BTreeMap<String, Result<Checkpoint, String>>,
) -> BTreeMap<String, Checkpoint> {
    records
        .into_iter()
        .filter_map(|(key, c)| match c {
            Ok(c) => Some((key, c)),
            Err(error) => {
                tracing::warn!(key, error, "skipping an unreadable checkpoint");
                None
            }
        })
        .collect()
}

/// What to run when the checkpoint of `report`'s `scope` cannot be read: a command that
/// writes a new one over it (a re-read tier's record needs none: its next pass starts afresh).
pub fn unreadable_fix(report: Report, scope: &Scope) -> String {
    match scope {
        Scope::Backfill { to, .. } => format!(
            "resume it under a new checkpoint with `gladly-kafka backfill --report {report} --from <where it got to> --to {to}`"
        ),
        _ => format!(
            "write a new checkpoint over it with `gladly-kafka reset --report {report} --to <where to resume, e.g. the last window known to be published>`, then start the service again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn checkpoint_round_trips_as_json() {
        let c = Checkpoint {
            report: Report::WORK_SESSIONS,
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
            pass: None,
        };
        let back: Checkpoint = serde_json::from_slice(&c.to_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            checkpoint_key(Report::CONTACTS, &Scope::Run),
            "run/contacts"
        );
        assert_eq!(
            checkpoint_key(Report::WORK_SESSIONS, &c.scope),
            "backfill/work_sessions/2024-01-01/2024-02-01"
        );
        // no pass field outside re-read records: older readers see what they always saw
        assert!(!String::from_utf8(c.to_bytes()).unwrap().contains("pass"));
    }

    #[test]
    fn a_reread_progress_record_round_trips_and_older_records_still_read() {
        let at = |h| Utc.with_ymd_and_hms(2024, 3, 14, h, 0, 0).unwrap();
        let c = Checkpoint {
            report: Report::WORK_SESSIONS,
            scope: Scope::Reread { tier: "24h".into() },
            position: Position::Instant(at(4)),
            updated_at: at(12),
            run_id: "r1".into(),
            service_version: "0.1.0".into(),
            window: Some(("a".into(), "b".into())),
            rows: 3,
            complete: false,
            pass: Some(PassRecord {
                from: Position::Instant(at(0)),
                to: Position::Instant(at(10)),
                started_at: at(12),
                last_complete: Some(CompletedPass {
                    started_at: at(11),
                    finished_at: at(11),
                }),
            }),
        };
        let json = String::from_utf8(c.to_bytes()).unwrap();
        assert!(
            json.contains(r#""scope":{"kind":"reread","tier":"24h"}"#),
            "{json}"
        );
        let back: Checkpoint = serde_json::from_slice(&c.to_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            checkpoint_key(Report::CONTACTS, &Scope::Reread { tier: "30d".into() }),
            "reread/contacts/30d"
        );
        let old = r#"{"report":"contacts","scope":{"kind":"run"},"position":{"date":"2024-03-14"},
            "updated_at":"2024-03-14T00:00:00Z","run_id":"r","service_version":"0.1.0"}"#;
        let old: Checkpoint = serde_json::from_str(old).unwrap();
        assert_eq!((old.pass, old.complete), (None, false));
    }
}
