//! One report's publishing state ([`ReportJob`]): its producer and transactional id,
//! converter, topic and checkpoint; opening it fences older holders of the id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::checkpoint::{
    checkpoint_key, read_checkpoint_records, readable, unreadable_fix, Checkpoint, Scope,
};
use super::connect::Pipeline;
use super::error::{sink_failure, PipelineError, SetupError};
use super::plan::buckets;
use super::reread::TierProgress;
use super::window::{Buckets, Position};
use super::window_tx::commit_checkpoint;
use crate::config::Config;
use crate::config::PublishMode;
use crate::kafka::reader::{ReadError, Start, TopicReader};
use crate::kafka::{headers, Publisher, SinkError};
use crate::records::changes::{self, Published};
use crate::records::derived::DerivedSchema;
use crate::records::Converter;
use crate::report::{Report, ReportSpec};
use crate::VERSION;

/// One report's publishing state: its producer (and transactional id), converter and topic.
pub struct ReportJob {
    pub(super) report: Report,
    pub(super) scope: Scope,
    pub(super) transactional_id: String,
    /// `None` after a producer failure: the next attempt creates a new one.
    pub(super) publisher: Option<Publisher>,
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

    /// The job's producer, created anew (with `init_transactions`, fencing older holders of
    /// the id) when the last one was dropped after a failure.
    pub(super) async fn publisher(&mut self, cfg: &Config) -> Result<&Publisher, SinkError> {
        if self.publisher.is_none() {
            self.publisher = Some(new_publisher(cfg, &self.transactional_id).await?);
        }
        Ok(self.publisher.as_ref().expect("just set"))
    }

    /// Aborts the open window. A producer whose abort fails (the broker is away, the producer
    /// is fenced or broken) is dropped, to be recreated for the next attempt: its
    /// `init_transactions` aborts whatever is left, where this one would stay stuck mid-abort.
    pub(super) fn abort_window(&mut self) {
        let Some(publisher) = self.publisher.as_ref() else {
            return;
        };
        if let Err(e) = block(|| publisher.abort()) {
            tracing::warn!(report = %self.report, error = %e, "aborting the window failed; the producer will be recreated");
            self.publisher = None;
        }
    }
}

impl Pipeline {
    /// Opens a report's producer (fencing any older holder of its transactional id) and reads
    /// its checkpoint. A checkpoint that is there but cannot be read stops it
    /// ([`SetupError::UnreadableCheckpoint`]).
    pub async fn open(&self, report: Report, scope: Scope) -> Result<ReportJob, PipelineError> {
        self.open_job(report, scope, false).await
    }

    /// [`Pipeline::open`]; with `overwrite` (for `reset`, which writes a new checkpoint over
    /// it), an unreadable checkpoint is taken as none.
    pub(super) async fn open_job(
        &self,
        report: Report,
        scope: Scope,
        overwrite: bool,
    ) -> Result<ReportJob, PipelineError> {
        let cfg = self.config();
        let suffix = match scope {
            Scope::Run => "",
            Scope::Backfill { .. } => ".backfill",
            Scope::Reread { .. } => return Err(SetupError::RereadScope(report).into()),
        };
        let transactional_id = format!("{}.{}{suffix}", cfg.transactional_id_prefix(), report);
        let ids = *self
            .inner
            .ids
            .get(&report)
            .ok_or(SetupError::NotEnabled(report))?;
        let publisher = new_publisher(cfg, &transactional_id)
            .await
            .map_err(|e| sink_failure(report, e))?;
        let checkpoints = read_all_checkpoints(cfg).await?;
        let key = checkpoint_key(report, &scope);
        if let (Some(Err(error)), false) = (checkpoints.get(&key), overwrite) {
            return Err(SetupError::UnreadableCheckpoint {
                key,
                topic: cfg.topics.checkpoint_topic(),
                error: error.clone(),
                fix: unreadable_fix(report, &scope),
            }
            .into());
        }
        let checkpoints = readable(checkpoints);
        let position = checkpoints
            .get(&checkpoint_key(report, &scope))
            .map(|c| c.position);
        let tiers = match scope {
            Scope::Run => self.tiers_from(report, &checkpoints),
            _ => BTreeMap::new(),
        };
        if let (Scope::Run, Some(p)) = (&scope, position) {
            self.inner
                .metrics
                .checkpoint_moved(report.name(), p.covered_until());
        }
        // a start remembers what the live poll re-reads; a re-read pass reaches further back
        // when it runs (Pipeline::remember_back)
        let (published, memory_from) = match (&scope, cfg.pipeline.publish) {
            (Scope::Run, PublishMode::Changes) => {
                let since = self.clock().now() - cfg.live_reread_horizon(report);
                let since = since.timestamp_millis();
                (remembered(cfg, report, since).await?, Some(since))
            }
            _ => (Published::default(), None),
        };
        let spec = cfg.spec(report).ok_or(SetupError::NotEnabled(report))?;
        let (converter, schema) = self.converter(&spec, ids).await?;
        Ok(ReportJob {
            report,
            scope,
            transactional_id,
            publisher: Some(publisher),
            converter,
            schema,
            spec,
            position,
            buckets: buckets(cfg, report),
            published,
            memory_from,
            tiers,
        })
    }

    /// Makes `job`'s changelog memory reach back to `from` (a re-read pass about to start
    /// there): reads the topic back again, from the report's longest re-read horizon, so
    /// every later pass is covered too. If that read fails the memory stays as it was, and the
    /// pass republishes the unchanged rows it lacks (upserts absorb them).
    pub(super) async fn remember_back(&self, job: &mut ReportJob, from: DateTime<Utc>) {
        let Some(memory_from) = job.memory_from else {
            return;
        };
        if memory_from <= from.timestamp_millis() {
            return;
        }
        let since = (self.clock().now() - self.config().reread_horizon(job.report))
            .timestamp_millis()
            .min(from.timestamp_millis());
        match remembered(self.config(), job.report, since).await {
            Ok(published) => {
                job.published = published;
                job.memory_from = Some(since);
            }
            Err(e) => {
                tracing::warn!(report = %job.report, error = %e, "cannot read the topic back for a re-read pass; rows it re-reads unchanged are published again")
            }
        }
    }

    /// Where each of `report`'s tiers in force stands, from its progress record.
    fn tiers_from(
        &self,
        report: Report,
        checkpoints: &BTreeMap<String, Checkpoint>,
    ) -> BTreeMap<String, TierProgress> {
        let mut out = BTreeMap::new();
        for tier in self.config().reread_tiers(report) {
            let name = tier.name();
            let key = checkpoint_key(report, &Scope::Reread { tier: name.clone() });
            let Some(record) = checkpoints.get(&key) else {
                continue;
            };
            let progress = TierProgress::from_record(record);
            if let Some(last) = progress.last {
                self.inner
                    .metrics
                    .reread_last_pass(report.name(), &name, last.started_at);
            }
            out.insert(name, progress);
        }
        out
    }

    /// Writes a checkpoint outside a window (for `reset` and a finished backfill).
    pub async fn write_checkpoint(
        &self,
        job: &mut ReportJob,
        position: Position,
        complete: bool,
    ) -> Result<(), PipelineError> {
        let report = job.report;
        let checkpoint = Checkpoint {
            report,
            scope: job.scope.clone(),
            position,
            updated_at: self.clock().now(),
            run_id: self.run_id().to_string(),
            service_version: VERSION.to_string(),
            window: None,
            rows: 0,
            complete,
            pass: None,
        };
        let topic = self.config().topics.checkpoint_topic();
        let h = headers([("gladly.run_id", self.run_id())]);
        let publisher = job
            .publisher(self.config())
            .await
            .map_err(|e| sink_failure(report, e))?;
        block(|| {
            publisher.begin()?;
            commit_checkpoint(publisher, &topic, &checkpoint, &h)
        })
        .map_err(|e| sink_failure(report, e))?;
        job.position = Some(position);
        if job.scope == Scope::Run {
            self.inner
                .metrics
                .checkpoint_moved(report.name(), position.covered_until());
        }
        Ok(())
    }
}

/// Runs librdkafka's blocking calls (begin, send into a full queue, commit, abort) without
/// stalling the runtime's other tasks.
pub(super) fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A transactional producer for `transactional_id` (its `init_transactions` fences older
/// holders of the id), created off the runtime's threads.
pub(super) async fn new_publisher(
    cfg: &Config,
    transactional_id: &str,
) -> Result<Publisher, SinkError> {
    let kafka = cfg.kafka.clone();
    let id = transactional_id.to_string();
    match tokio::task::spawn_blocking(move || Publisher::new(&kafka, &id)).await {
        Ok(made) => made,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// What the report's topic already holds since `since_ms` (its records stamped since then),
/// so a restarted poll publishes only what changed, not its first pass again.
async fn remembered(cfg: &Config, report: Report, since_ms: i64) -> Result<Published, SetupError> {
    let kafka = cfg.kafka.clone();
    let topic = cfg.topics.report_topic(report);
    let read = tokio::task::spawn_blocking(move || {
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
            let fingerprint = match r.value {
                None => Some(changes::TOMBSTONE),
                Some(v) => changes::published_fingerprint(&v),
            };
            if let Some(fp) = fingerprint {
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
    .map_err(SetupError::ReadBack)?;
    tracing::info!(%report, keys = read.len(), "remembered what the topic holds since the re-read horizon");
    Ok(Published::rebuilt(read, since_ms))
}

async fn read_all_checkpoints(
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
