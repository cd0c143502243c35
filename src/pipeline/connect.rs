//! The connected [`Pipeline`]: Gladly client, registered schemas, topics in place.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::checkpoint::{checkpoint_key, readable, unreadable_fix, Checkpoint, Scope};
use super::context::{Context, DeadLetterTopic};
use super::conversations::ConversationSource;
use super::dimensions::{self, DimensionSource};
use super::engine::Engine;
use super::error::{sink_failure, PipelineError, SetupError};
use super::event_feed::EventSource;
use super::job::{read_all_checkpoints, remembered, ReportJob};
use super::plan::buckets;
use super::reread::TierProgress;
use super::schema::converter;
use super::window::Position;
use crate::clock::SharedClock;
use crate::config::{Config, PublishMode};
use crate::gladly;
use crate::kafka::access::{probe, Reached};
use crate::kafka::admin::{ensure_topics, topic_specs, TopicSpec};
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::kafka::{headers, OwnedOutgoing};
use crate::observe::Metrics;
use crate::records::changes::Published;
use crate::records::derived::DerivedSchema;
use crate::records::{self, SchemaIds};
use crate::report::{Format, Report, ReportSpec};
use crate::VERSION;

/// How long the service waits for a broker to answer at startup (a refused login or an
/// untrusted certificate stops it at once).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Proves the brokers accept the configured client (see [`probe`]), off the runtime's threads.
pub(crate) async fn probe_kafka(config: &Config, timeout: Duration) -> Result<Reached, SetupError> {
    let kafka = config.kafka.clone();
    tokio::task::spawn_blocking(move || probe(&kafka, timeout))
        .await
        .map_err(|e| SetupError::joined("the Kafka probe", e))?
        .map_err(SetupError::Kafka)
}

/// Every topic the service writes with `config`: the reports', the dead-letter and checkpoint
/// topics, the conversations topic when enabled, and the enabled dimension lists' topics.
pub(crate) fn all_topic_specs(config: &Config) -> Vec<TopicSpec> {
    let reports: Vec<_> = config
        .enabled_reports()
        .into_iter()
        .filter_map(|r| config.spec(r))
        .collect();
    let mut specs = topic_specs(&config.topics, &reports);
    let compacted = |name: String, setting: &str| TopicSpec {
        name,
        setting: setting.into(),
        compact: true,
        partitions: config.topics.partitions,
        exact_partitions: true,
        configs: vec![],
    };
    if config.conversations.enabled {
        specs.push(compacted(
            config.topics.conversations_topic(),
            "topics.conversations",
        ));
    }
    if config.events.enabled {
        specs.push(compacted(config.topics.events_topic(), "topics.events"));
    }
    specs.extend(dimensions::topic_specs(config));
    specs
}

/// Registers a report's schemas: a built-in report's key and value schemas; a report
/// configured by columns' key schema only (its value schema is derived from the first answer's
/// header, so its value id is 0 until then).
pub(crate) async fn register_report_schemas(
    registry: &RegistryClient,
    spec: &ReportSpec,
) -> Result<SchemaIds, RegistryError> {
    match &spec.format {
        Format::Typed(_) => registry.register_report(&spec.topic, spec.report).await,
        Format::Derived(d) => registry
            .register_key(
                &format!("{}-key", spec.topic),
                &DerivedSchema::key_schema(spec.report, &d.key),
            )
            .await
            .map(|key| SchemaIds { key, value: 0 }),
    }
}

/// The connected pipeline: Gladly client, registered schemas, topics in place. Cheap to clone
/// (one per report task).
#[derive(Clone)]
pub struct Pipeline {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// What the sources and the driver share.
    pub(super) ctx: Context,
    pub(super) ids: BTreeMap<Report, SchemaIds>,
    /// `[conversations]`, when enabled: fed by work-session windows.
    pub(super) conversations: Option<ConversationSource>,
    /// `[dimensions]`, when enabled: the lists refreshed on their cadence.
    pub(super) dimensions: Option<DimensionSource>,
    /// `[events]`, when enabled: Gladly's Events API.
    pub(super) events: Option<EventSource>,
}

impl Pipeline {
    /// Connects: creates the Gladly client, registers the schemas, creates or checks topics.
    pub async fn connect(
        config: Config,
        clock: SharedClock,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> Result<Pipeline, PipelineError> {
        let gladly = gladly::Client::new(&config.gladly).map_err(SetupError::Gladly)?;
        probe_kafka(&config, PROBE_TIMEOUT).await?;
        let now = clock.clone();
        metrics.attach(Arc::new(move || now.now()), gladly.stats());
        let registry = RegistryClient::new(&config.registry).map_err(SetupError::from)?;
        let mut ids = BTreeMap::new();
        for r in config.enabled_reports() {
            let spec = config.spec(r).ok_or(SetupError::NotEnabled(r))?;
            let got = register_report_schemas(&registry, &spec)
                .await
                .map_err(SetupError::from)?;
            ids.insert(r, got);
        }
        let dead_letter_id = registry
            .register(
                &format!("{}-value", config.topics.dead_letter_topic()),
                records::schemas::dead_letter_schema(),
            )
            .await
            .map_err(SetupError::from)?;
        ensure_topics(
            &config.kafka,
            config.topics.replication_factor,
            &all_topic_specs(&config),
        )
        .await
        .map_err(SetupError::from)?;
        let dead_letters = DeadLetterTopic {
            name: config.topics.dead_letter_topic(),
            schema_id: dead_letter_id,
        };
        let run_id = uuid::Uuid::new_v4().to_string();
        let conversations = ConversationSource::connect(
            &config,
            &registry,
            &gladly,
            clock.clone(),
            dead_letter_id,
            &run_id,
        )
        .await
        .map_err(SetupError::from)?;
        let dimensions = DimensionSource::connect(&config, &registry)
            .await
            .map_err(SetupError::from)?;
        let events = EventSource::connect(&config, &registry)
            .await
            .map_err(SetupError::from)?;
        Ok(Pipeline {
            inner: Arc::new(Inner {
                ctx: Context {
                    config,
                    clock,
                    gladly,
                    registry,
                    dead_letters,
                    run_id,
                    shutdown,
                    metrics,
                },
                ids,
                conversations,
                dimensions,
                events,
            }),
        })
    }

    /// What the sources and the driver share.
    pub(super) fn ctx(&self) -> &Context {
        &self.inner.ctx
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.ctx.config
    }

    /// The pipeline's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.ctx.clock
    }

    /// This run's id (in headers and checkpoints).
    pub fn run_id(&self) -> &str {
        &self.inner.ctx.run_id
    }

    /// The metrics registry.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.ctx.metrics.clone()
    }

    /// The Gladly client (for its statistics).
    pub fn gladly(&self) -> &gladly::Client {
        &self.inner.ctx.gladly
    }

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
        let engine = Engine::open(&cfg.kafka, transactional_id, report.name(), self.metrics())
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
                .ctx
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
        let (converter, schema) = converter(&self.ctx().registry, &spec, ids).await?;
        Ok(ReportJob {
            report,
            scope,
            engine,
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
                    .ctx
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
        let record = OwnedOutgoing {
            topic: self.config().topics.checkpoint_topic(),
            key: checkpoint_key(report, &job.scope).into_bytes(),
            value: checkpoint.to_bytes(),
            // wall-clock time: brokers refuse timestamps far in the future
            // (log.message.timestamp.after.max.ms), whatever clock the pipeline runs on
            timestamp_ms: chrono::Utc::now().timestamp_millis(),
            headers: headers([("gladly.run_id", self.run_id())]),
        };
        job.engine
            .write_alone(record)
            .await
            .map_err(|e| sink_failure(report, e))?;
        job.position = Some(position);
        if job.scope == Scope::Run {
            self.inner
                .ctx
                .metrics
                .checkpoint_moved(report.name(), position.covered_until());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_includes_the_conversations_and_events_ones_only_when_enabled() {
        let names = |c: &Config| -> Vec<String> {
            all_topic_specs(c).into_iter().map(|s| s.name).collect()
        };
        let mut c = Config::default();
        let base = names(&c).len();
        assert!(!names(&c).contains(&"gladly.conversations".to_string()));
        assert!(!names(&c).contains(&"gladly.events".to_string()));
        c.conversations.enabled = true;
        c.events.enabled = true;
        let specs = all_topic_specs(&c);
        for (name, setting) in [
            ("gladly.conversations", "topics.conversations"),
            ("gladly.events", "topics.events"),
        ] {
            let spec = specs.iter().find(|s| s.name == name).unwrap();
            assert!(spec.compact);
            assert_eq!(spec.setting, setting);
        }
        assert_eq!(specs.len(), base + 2);
    }
}
