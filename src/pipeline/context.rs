//! What every source and the engine's driver share ([`Context`]): the configuration, the
//! clock, the Gladly client, the registry, the metrics, this run's id and the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::gladly;
use crate::kafka::registry::RegistryClient;
use crate::observe::Metrics;

/// The dead-letter topic and its value schema's registry id.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetterTopic {
    /// `topics.dead_letter`.
    pub(crate) name: String,
    /// The id of `<name>-value`.
    pub(crate) schema_id: u32,
}

/// What every source and the engine's driver share.
pub(crate) struct Context {
    /// The configuration in force.
    pub(crate) config: Config,
    /// The pipeline's clock.
    pub(crate) clock: SharedClock,
    /// Gladly, paced under the one org-wide request budget.
    pub(crate) gladly: gladly::Client,
    /// For the value schemas of reports configured by columns, registered as they evolve.
    pub(crate) registry: RegistryClient,
    /// Where rows that cannot be converted go.
    pub(crate) dead_letters: DeadLetterTopic,
    /// This run's id (in headers and checkpoints).
    pub(crate) run_id: String,
    /// True once a shutdown was requested.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The metrics registry.
    pub(crate) metrics: Arc<Metrics>,
}

impl Context {
    /// True once a shutdown was requested.
    pub(crate) fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves once a shutdown is requested (or its sender is gone).
    pub(crate) async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Sleeps `wait`; true when a shutdown was requested meanwhile (the sleep is cut short).
    pub(crate) async fn sleep_or_shutdown(&self, wait: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = self.shutdown_requested() => true,
        }
    }
}
