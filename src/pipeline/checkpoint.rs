//! Checkpoints: how far each report has been published, kept in a compacted Kafka topic.
//!
//! Key: `run/<report>` for the poll loop, `backfill/<report>/<from>/<to>` for a backfill.
//! Value: a JSON [`Checkpoint`]. In exactly-once mode the checkpoint is written in the same
//! transaction as its window's records, so reading it with `read_committed` gives a position
//! whose records are all visible.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::window::Position;
use crate::kafka::producer::client_config;
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
pub enum CheckpointError {
    /// Kafka could not be read.
    #[error("cannot read checkpoints from topic `{topic}`: {source}")]
    Kafka {
        /// The checkpoint topic.
        topic: String,
        /// Why.
        source: KafkaError,
    },
    /// Reading did not reach the end in time.
    #[error("reading checkpoints from topic `{topic}` did not finish within {secs} s (is the broker reachable, or a transaction stuck open?)")]
    Timeout {
        /// The checkpoint topic.
        topic: String,
        /// Seconds waited.
        secs: u64,
    },
}

/// Consumer context that does not log reaching the end of a partition as an error (the reader
/// asks for exactly that).
pub struct QuietEof;

impl rdkafka::ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::PartitionEOF);
        if !eof {
            tracing::warn!(target: "librdkafka", error = %error, "{reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

/// Reads the whole checkpoint topic (`read_committed`) and returns the latest value per key.
/// Blocking. Unreadable values are logged and skipped; tombstones remove a key.
pub fn read_checkpoints(
    kafka: &KafkaSettings,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, Checkpoint>, CheckpointError> {
    let err = |source| CheckpointError::Kafka {
        topic: topic.to_string(),
        source,
    };
    let consumer: BaseConsumer<QuietEof> = client_config(kafka)
        .set("group.id", "gladly-kafka-checkpoint-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create_with_context(QuietEof)
        .map_err(err)?;
    let md = consumer.fetch_metadata(Some(topic), timeout).map_err(err)?;
    let partitions: Vec<i32> = md
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    if partitions.is_empty() {
        return Ok(out);
    }
    let mut tpl = TopicPartitionList::new();
    let mut pending = std::collections::HashSet::new();
    let deadline = Instant::now() + timeout;
    for p in &partitions {
        let (low, high) = watermarks(&consumer, topic, *p, deadline).map_err(err)?;
        if high > low {
            pending.insert(*p);
        }
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(err)?;
    }
    if pending.is_empty() {
        return Ok(out);
    }
    consumer.assign(&tpl).map_err(err)?;
    let started = Instant::now();
    while !pending.is_empty() {
        if started.elapsed() > timeout {
            return Err(CheckpointError::Timeout {
                topic: topic.to_string(),
                secs: timeout.as_secs(),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    continue;
                };
                match m.payload() {
                    None => {
                        out.remove(key);
                    }
                    Some(v) => match serde_json::from_slice::<Checkpoint>(v) {
                        Ok(c) => {
                            out.insert(key.to_string(), c);
                        }
                        Err(e) => {
                            tracing::warn!(key, error = %e, "skipping an unreadable checkpoint")
                        }
                    },
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                pending.remove(&p);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "while reading checkpoints"),
        }
    }
    Ok(out)
}

/// A partition's low and high watermarks, asked again until `deadline` while the broker does
/// not know the partition's leader yet: right after the topic was created, ListOffsets can
/// answer NotLeaderForPartition for a moment.
fn watermarks(
    consumer: &BaseConsumer<QuietEof>,
    topic: &str,
    partition: i32,
    deadline: Instant,
) -> Result<(i64, i64), KafkaError> {
    use rdkafka::error::RDKafkaErrorCode::{
        LeaderNotAvailable, NotLeaderForPartition, UnknownTopicOrPartition,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.fetch_watermarks(topic, partition, left) {
            Err(KafkaError::MetadataFetch(
                NotLeaderForPartition | LeaderNotAvailable | UnknownTopicOrPartition,
            )) if left > Duration::from_millis(100) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            done => return done,
        }
    }
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
