//! The conversations source (`[conversations] enabled = true`): once a work-session window's
//! rows are in its transaction, GET every conversation with a contact that ended in the
//! window (each once, see [`EndedConversations`]) and publish its state into the same
//! transaction, so an aborted window leaves no conversation record behind.
//!
//! A conversation found becomes a record, a deleted one (404) a tombstone. One whose answer
//! cannot be published (a second move, a body that is not a conversation, a bad timestamp)
//! goes to the dead-letter topic and the window goes on. 429/5xx/transport errors that
//! outlast the client's retries fail the window (it is aborted and retried); 401/403 stop
//! the report.

use futures::StreamExt;

use super::context::DeadLetterTopic;
use super::engine::Transaction;
use super::error::Failure;
use super::source::{send_dead_letter, Source, Written};
use super::summary::{ConversationSummary, Outcome};
use super::window::rfc3339;
use crate::clock::SharedClock;
use crate::config::{Config, ConversationsSettings};
use crate::gladly::{self, ConversationLookup};
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::kafka::{headers, Delivery, Outgoing};
use crate::records::conversations::conversation_dead_letter;
use crate::records::{
    schemas, ConversationEncoder, EndedContact, EndedConversations, Record, SchemaIds, WindowMeta,
};
use crate::VERSION;

/// The `gladly.report` header and dead-letter `report` of conversation records.
pub const SOURCE: &str = "conversations";

/// Registers the conversations topic's key and value schemas.
pub async fn register_schemas(
    registry: &RegistryClient,
    topic: &str,
) -> Result<SchemaIds, RegistryError> {
    let key = registry
        .register(&format!("{topic}-key"), schemas::conversation_key_schema())
        .await?;
    let value = registry
        .register(
            &format!("{topic}-value"),
            schemas::conversation_value_schema(),
        )
        .await?;
    Ok(SchemaIds { key, value })
}

/// Most conversations one window may fetch. Exactly-once: the GETs must end within the
/// window's transaction, so at the paced rate they may take half of its timeout (the rest is
/// for the report body and the commit). At-least-once: no bound.
pub fn max_per_window(
    delivery: Delivery,
    per_second: u32,
    transaction_timeout_secs: u64,
) -> Option<usize> {
    (delivery == Delivery::ExactlyOnce)
        .then(|| (u64::from(per_second.max(1)) * transaction_timeout_secs / 2).max(1) as usize)
}

/// Fetches and publishes the conversations of work-session windows.
pub struct ConversationSource {
    gladly: gladly::Client,
    clock: SharedClock,
    encoder: ConversationEncoder,
    topic: String,
    dead_letters: DeadLetterTopic,
    /// Exactly-once: most conversations a window may fetch so they fit in its transaction.
    max_per_window: Option<usize>,
    in_flight: usize,
    run_id: String,
}

impl ConversationSource {
    /// The source for `config` (`None` when `[conversations]` is disabled); registers the
    /// topic's schemas.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect(
        config: &Config,
        registry: &RegistryClient,
        gladly: &gladly::Client,
        clock: SharedClock,
        dead_letter_id: u32,
        run_id: &str,
    ) -> Result<Option<ConversationSource>, RegistryError> {
        let ConversationsSettings { enabled } = config.conversations;
        if !enabled {
            return Ok(None);
        }
        let topic = config.topics.conversations_topic();
        let ids = register_schemas(registry, &topic).await?;
        let per_second = config.gladly.requests_per_second.max(1);
        Ok(Some(ConversationSource {
            gladly: gladly.clone(),
            clock,
            encoder: ConversationEncoder::new(ids),
            topic,
            dead_letters: DeadLetterTopic {
                name: config.topics.dead_letter_topic(),
                schema_id: dead_letter_id,
            },
            max_per_window: max_per_window(
                config.kafka.delivery,
                per_second,
                config.kafka.transaction_timeout_secs,
            ),
            in_flight: per_second as usize,
            run_id: run_id.to_string(),
        }))
    }

    /// The conversations topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// False when `n` conversations would take too long for one transaction at the paced rate
    /// (`gladly.requests_per_second` × half of `kafka.transaction_timeout_secs`): the window
    /// is then split like one that reached the row cap.
    pub fn fits(&self, n: usize) -> bool {
        self.max_per_window.is_none_or(|max| n <= max)
    }

    /// GETs every conversation of `unit` (paced, a few in flight) and sends its record,
    /// tombstone or dead letter into the window's open transaction.
    async fn publish(
        &self,
        unit: &EndedInWindow,
        tx: &mut Transaction,
    ) -> Result<ConversationSummary, Failure> {
        let (ended, meta) = (&unit.ended, unit.meta);
        let mut s = ConversationSummary::default();
        let (start, end) = (rfc3339(meta.window_start), rfc3339(meta.window_end));
        // owned items and clones: a stream of futures borrowing through closures trips the
        // compiler's Send inference for the spawned poll loop
        let todo: Vec<(String, EndedContact)> = ended
            .iter()
            .map(|(id, trigger)| (id.to_string(), trigger.clone()))
            .collect();
        let mut answers = futures::stream::iter(todo)
            .map(|(id, trigger)| {
                let (gladly, clock) = (self.gladly.clone(), self.clock.clone());
                async move {
                    let answer = gladly.conversation(&id).await;
                    (id, trigger, answer, clock.now())
                }
            })
            .buffered(self.in_flight.max(1));
        while let Some((id, trigger, answer, fetched_at)) = answers.next().await {
            let (id, trigger) = (id.as_str(), &trigger);
            s.fetched += 1;
            let meta = WindowMeta { fetched_at, ..meta };
            let fetched = fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let h = headers([
                ("gladly.report", SOURCE),
                ("gladly.window.start", start.as_str()),
                ("gladly.window.end", end.as_str()),
                ("gladly.fetched_at", fetched.as_str()),
                ("gladly.run_id", self.run_id.as_str()),
                ("gladly.service_version", VERSION),
            ]);
            let outcome = match answer {
                Ok(ConversationLookup::Found(c)) => {
                    match self.encoder.record(id, trigger, &c, &meta) {
                        Ok(r) => {
                            self.send(tx, &r, &h).await?;
                            Outcome::Found
                        }
                        Err(reason) => {
                            self.dead_letter(tx, id, trigger, reason, &meta, &h).await?;
                            Outcome::DeadLetter
                        }
                    }
                }
                Ok(ConversationLookup::Deleted) => {
                    self.send(tx, &self.encoder.tombstone(id, trigger), &h)
                        .await?;
                    Outcome::Deleted
                }
                // 429/5xx/transport past the client's retries fail the window; 401/403 stop it
                Err(e) if e.is_retryable() || e.is_credentials() => {
                    tracing::warn!(conversation = id, error = %e, "GET conversation failed");
                    return Err(Failure::Gladly(e));
                }
                Err(e) => {
                    self.dead_letter(tx, id, trigger, e.to_string(), &meta, &h)
                        .await?;
                    Outcome::DeadLetter
                }
            };
            s.count(outcome);
        }
        tracing::info!(
            conversations = s.fetched,
            records = s.records,
            tombstones = s.tombstones,
            dead_letters = s.dead_letters,
            "conversations fetched into the window"
        );
        Ok(s)
    }

    async fn send(
        &self,
        tx: &mut Transaction,
        r: &Record,
        h: &rdkafka::message::OwnedHeaders,
    ) -> Result<(), Failure> {
        tx.send(Outgoing {
            topic: &self.topic,
            key: Some(&r.key),
            value: r.value.as_deref(),
            timestamp_ms: r.timestamp_ms,
            headers: h,
        })
        .await
        .map_err(Failure::Sink)
    }

    async fn dead_letter(
        &self,
        tx: &mut Transaction,
        id: &str,
        trigger: &EndedContact,
        reason: String,
        meta: &WindowMeta,
        h: &rdkafka::message::OwnedHeaders,
    ) -> Result<(), Failure> {
        tracing::warn!(conversation = id, %reason, "conversation sent to the dead-letter topic");
        let dl = conversation_dead_letter(id, trigger, reason);
        send_dead_letter(&self.dead_letters, tx, SOURCE, &dl, meta, h)
            .await
            .map_err(Failure::Sink)
    }
}

/// A unit of the conversations source: the conversations with a contact that ended in one
/// work-session window, fetched into that window's transaction.
pub(crate) struct EndedInWindow {
    /// The conversations, each once.
    pub ended: EndedConversations,
    /// The window.
    pub meta: WindowMeta,
}

impl std::fmt::Display for EndedInWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} conversations ended in [{}, {})",
            self.ended.len(),
            rfc3339(self.meta.window_start),
            rfc3339(self.meta.window_end)
        )
    }
}

/// Writes into its work-session window's transaction and rides on the window's cursor: an
/// aborted window leaves no conversation behind, a committed one all of them.
impl Source for &ConversationSource {
    type Unit = EndedInWindow;
    type Done = ConversationSummary;

    fn label(&self) -> &str {
        SOURCE
    }

    /// Too big when they would not all be fetched within the window's transaction: the
    /// window is then split like one at the row cap.
    async fn write(
        &mut self,
        unit: &EndedInWindow,
        tx: &mut Transaction,
    ) -> Result<Written<ConversationSummary>, Failure> {
        let n = unit.ended.len();
        if !self.fits(n) {
            tracing::warn!(conversations = n, "too many conversations to fetch within one transaction (gladly.requests_per_second x kafka.transaction_timeout_secs / 2)");
            return Ok(Written::TooBig { rows: n as u64 });
        }
        Ok(Written::Complete(self.publish(unit, tx).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_may_fetch_what_half_the_transaction_timeout_allows() {
        // the defaults: 5 per second, 900 s transactions
        assert_eq!(max_per_window(Delivery::ExactlyOnce, 5, 900), Some(2250));
        assert_eq!(max_per_window(Delivery::ExactlyOnce, 1, 10), Some(5));
        assert_eq!(max_per_window(Delivery::ExactlyOnce, 0, 1), Some(1));
        assert_eq!(max_per_window(Delivery::AtLeastOnce, 5, 900), None);
    }
}
