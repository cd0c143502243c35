//! One report's publishing state ([`ReportJob`]): its engine (producer and transactional
//! id), converter, topic, checkpoint and changelog memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::checkpoint::{read_checkpoint_records, read_latest, Checkpoint, CheckpointError, Scope};
use super::engine::{blocking, Engine};
use super::error::SetupError;
use super::reread::TierProgress;
use super::window::{Buckets, Position};
use crate::config::Config;
use crate::kafka::reader::{ReadError, Start, TopicReader};
use crate::records::changes::{self, Published};
use crate::records::derived::DerivedSchema;
use crate::records::Converter;
use crate::report::{Report, ReportSpec};

/// One report's publishing state: its engine (producer and transactional id), converter and
/// topic.
pub struct ReportJob {
    pub(super) report: Report,
    pub(super) scope: Scope,
    /// The report's transactions (its producer and transactional id).
    pub(super) engine: Engine,
    pub(super) converter: Converter,
    /// What the report is (request, key, conversion, the topic it publishes to).
    pub(super) spec: ReportSpec,
    /// The value schema version a report configured by columns writes; `None` for a
    /// built-in report.
    pub(super) schema: Option<Arc<DerivedSchema>>,
    pub(super) position: Option<Position>,
    pub(super) buckets: Buckets,
    /// What was last published per key (`pipeline.publish = "changes"`).
    pub(super) published: Published,
    /// The earliest record time the memory was read back from (epoch ms); `None` when the
    /// job keeps no memory of the topic (a backfill, or `"every-read"`).
    pub(super) memory_from: Option<i64>,
    /// Where each re-read tier stands, by tier name (the poll loop's job only).
    pub(super) tiers: BTreeMap<String, TierProgress>,
}

impl ReportJob {
    /// The report.
    pub fn report(&self) -> Report {
        self.report
    }

    /// Where the checkpoint stands.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// Where the re-read tier named `tier` (`24h`, `30d`) stands; `None` before its first
    /// pass.
    pub fn tier_progress(&self, tier: &str) -> Option<&TierProgress> {
        self.tiers.get(tier)
    }
}

/// What the report's topic already holds since `since_ms` (its records stamped since then),
/// so a restarted poll publishes only what changed, not its first pass again.
pub(super) async fn remembered(
    cfg: &Config,
    report: Report,
    since_ms: i64,
) -> Result<Published, SetupError> {
    let topic = cfg.topics.report_topic(report);
    let read = read_back(cfg, topic, since_ms, changes::published_fingerprint).await?;
    tracing::info!(%report, keys = read.len(), "remembered what the topic holds since the re-read horizon");
    Ok(Published::rebuilt(read, since_ms))
}

/// The key, value fingerprint (by `fingerprint`; a tombstone's is
/// [`changes::TOMBSTONE`]) and timestamp of every record `topic` holds stamped since
/// `since_ms`, for a changelog memory.
pub(super) async fn read_back(
    cfg: &Config,
    topic: String,
    since_ms: i64,
    fingerprint: fn(&[u8]) -> Option<u64>,
) -> Result<Vec<(changes::KeyId, u64, i64)>, SetupError> {
    let kafka = cfg.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let mut reader = match TopicReader::open(
            &kafka,
            &topic,
            Start::Since(since_ms),
            false,
            Duration::from_secs(120),
        ) {
            Ok(r) => r,
            // created by this run: nothing published yet
            Err(ReadError::NoTopic(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        while let Some(r) = reader.next_record()? {
            let Some(key) = r.key else { continue };
            let fp = match r.value {
                None => Some(changes::TOMBSTONE),
                Some(v) => fingerprint(&v),
            };
            if let Some(fp) = fp {
                records.push((
                    changes::key_id(&key),
                    fp,
                    r.timestamp_ms.unwrap_or(since_ms),
                ));
            }
        }
        Ok(records)
    })
    .await
    .map_err(|e| SetupError::joined("the topic reader", e))?
    .map_err(SetupError::ReadBack)
}

/// The latest value of every key of the checkpoint topic that `wanted` accepts, parsed as
/// JSON `T` (a dimension list's record, the events feed's cursor); one that does not parse is
/// logged and skipped, and its source starts as if it had none.
pub(super) async fn read_json<T: serde::de::DeserializeOwned + Send + 'static>(
    cfg: &Config,
    wanted: fn(&str) -> bool,
) -> Result<BTreeMap<String, T>, CheckpointError> {
    let kafka = cfg.kafka.clone();
    let topic = cfg.topics.checkpoint_topic();
    let raw =
        blocking(move || read_latest(&kafka, &topic, Duration::from_secs(60), wanted)).await?;
    Ok(raw
        .into_iter()
        .filter_map(|(key, v)| match serde_json::from_slice(&v) {
            Ok(t) => Some((key, t)),
            Err(e) => {
                tracing::warn!(key, error = %e, "skipping an unreadable record of the checkpoint topic");
                None
            }
        })
        .collect())
}

pub(super) async fn read_all_checkpoints(
    cfg: &Config,
) -> Result<BTreeMap<String, Result<Checkpoint, String>>, SetupError> {
    let kafka = cfg.kafka.clone();
    let topic = cfg.topics.checkpoint_topic();
    tokio::task::spawn_blocking(move || {
        read_checkpoint_records(&kafka, &topic, Duration::from_secs(60))
    })
    .await
    .map_err(|e| SetupError::joined("the checkpoint reader", e))?
    .map_err(SetupError::from)
}
