//! The connected [`Pipeline`]: Gladly client, registered schemas, topics in place.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::conversations::{all_topic_specs, ConversationSource};
use super::dimensions::DimensionSource;
use super::error::{PipelineError, SetupError};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::gladly;
use crate::kafka::access::{probe, Reached};
use crate::kafka::admin::ensure_topics;
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::observe::Metrics;
use crate::records::derived::DerivedSchema;
use crate::records::{self, SchemaIds};
use crate::report::{Format, Report, ReportSpec};

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
    pub(super) config: Config,
    pub(super) clock: SharedClock,
    pub(super) gladly: gladly::Client,
    pub(super) ids: BTreeMap<Report, SchemaIds>,
    /// For the value schemas of reports configured by columns, registered as they evolve.
    pub(super) registry: RegistryClient,
    pub(super) dead_letter_id: u32,
    pub(super) run_id: String,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) metrics: Arc<Metrics>,
    /// `[conversations]`, when enabled: fed by work-session windows.
    pub(super) conversations: Option<ConversationSource>,
    /// `[dimensions]`, when enabled: the lists refreshed on their cadence.
    pub(super) dimensions: Option<DimensionSource>,
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
        Ok(Pipeline {
            inner: Arc::new(Inner {
                config,
                clock,
                gladly,
                ids,
                registry,
                dead_letter_id,
                run_id,
                shutdown,
                metrics,
                conversations,
                dimensions,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The pipeline's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// This run's id (in headers and checkpoints).
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// The metrics registry.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }

    /// The Gladly client (for its statistics).
    pub fn gladly(&self) -> &gladly::Client {
        &self.inner.gladly
    }

    /// True once a shutdown was requested.
    pub(super) fn stopping(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Sleeps `wait`; true when a shutdown was requested meanwhile (the sleep is cut short).
    pub(super) async fn sleep_or_shutdown(&self, wait: std::time::Duration) -> bool {
        let mut rx = self.inner.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = rx.wait_for(|s| *s) => true,
        }
    }
}
