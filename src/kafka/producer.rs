//! The producer, in one of two explicit [`Delivery`] modes.
//!
//! A window is published as `begin` → `send`… → `finish(checkpoint)`:
//! - exactly-once: one Kafka transaction holds the window's records, tombstones and checkpoint;
//!   `abort` discards all of them. The transactional id fences an older instance.
//! - at-least-once: an idempotent producer; `finish` waits until every record of the window
//!   is acknowledged, then writes the checkpoint and waits for it too.
//!
//! `begin`, `finish`, `abort` and [`Publisher::new`] block (librdkafka waits for the broker);
//! the pipeline's engine runs them with `spawn_blocking`. [`Publisher::try_send`] never
//! blocks: with librdkafka's queue full it hands the record back, and the caller waits its
//! own way (the engine awaits a timer, so it works on any runtime).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::settings::{Delivery, KafkaSettings};

/// Why publishing failed, and what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Another instance took over this transactional id: this one must stop.
    #[error("another instance with transactional id `{transactional_id}` has taken over (fenced); this instance stops. Run one instance per kafka.transactional_id_prefix")]
    Fenced {
        /// The contested id.
        transactional_id: String,
    },
    /// The window's transaction stayed open longer than `kafka.transaction_timeout_secs`, so
    /// the broker aborted it and bumped the producer's epoch: librdkafka then reports the
    /// producer as fenced, but no other instance is involved. Create a new producer and retry.
    #[error("the window's transaction was open for {open_secs:.1} s, longer than kafka.transaction_timeout_secs = {timeout_secs}, so the broker aborted it (transactional id `{transactional_id}`); the window is retried with a new producer. If windows often take this long, raise kafka.transaction_timeout_secs (up to the broker's transaction.max.timeout.ms) or lower the window size")]
    TimedOut {
        /// The producer's transactional id.
        transactional_id: String,
        /// How long the transaction had been open when the error came.
        open_secs: f64,
        /// `kafka.transaction_timeout_secs`.
        timeout_secs: u64,
    },
    /// The producer is unusable (fatal librdkafka error): create a new one and retry the window.
    #[error("the Kafka producer hit a fatal error: {0}")]
    Fatal(KafkaError),
    /// The window failed but can be retried after `abort` (broker unavailable, timeouts…).
    #[error("publishing to Kafka failed: {0}")]
    Retriable(KafkaError),
    /// Records of the window were not acknowledged (at-least-once).
    #[error("{failed} record(s) of the window were not delivered; first error: {first}")]
    Undelivered {
        /// How many.
        failed: u64,
        /// The first delivery error.
        first: String,
    },
    /// The producer could not be created (bad properties).
    #[error("cannot create the Kafka producer: {0}")]
    Config(KafkaError),
}

impl SinkError {
    /// True when the process must stop (another instance owns the transactional id).
    pub fn is_fenced(&self) -> bool {
        matches!(self, SinkError::Fenced { .. })
    }

    /// True when the producer must be recreated before retrying.
    pub fn needs_new_producer(&self) -> bool {
        matches!(self, SinkError::Fatal(_) | SinkError::TimedOut { .. })
    }
}

/// Counts acknowledged and failed deliveries.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    acked: AtomicU64,
    failed: AtomicU64,
    failed_in_window: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl DeliveryStats {
    /// Records acknowledged by the broker since the producer started.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Records whose delivery failed since the producer started.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// librdkafka context: delivery reports go to [`DeliveryStats`], logs to `tracing`.
pub struct SinkContext {
    stats: Arc<DeliveryStats>,
}

impl ClientContext for SinkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel::*;
        match level {
            Emerg | Alert | Critical | Error => {
                tracing::error!(target: "librdkafka", "{fac}: {log_message}")
            }
            Warning => tracing::warn!(target: "librdkafka", "{fac}: {log_message}"),
            Notice | Info => tracing::info!(target: "librdkafka", "{fac}: {log_message}"),
            Debug => tracing::debug!(target: "librdkafka", "{fac}: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "{reason}");
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.stats.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.stats.failed_in_window.fetch_add(1, Ordering::Relaxed);
                let mut first = self.stats.first_error.lock().expect("not poisoned");
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
        }
    }
}

/// One record to publish. `value = None` is a tombstone.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Destination topic.
    pub topic: &'a str,
    /// Key bytes. Every record the service writes has one (dead letters are keyed by their
    /// report's name); `None` writes a keyless record.
    pub key: Option<&'a [u8]>,
    /// Value bytes, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Record timestamp, ms since the epoch: the row's event time for report records, the wall
    /// clock for dead letters and checkpoints.
    pub timestamp_ms: i64,
    /// Headers.
    pub headers: &'a OwnedHeaders,
}

/// An [`Outgoing`] that owns its parts, to hand to another thread (a unit's cursor record,
/// committed off the runtime's threads).
#[derive(Debug, Clone)]
pub struct OwnedOutgoing {
    /// Destination topic.
    pub topic: String,
    /// Key bytes.
    pub key: Vec<u8>,
    /// Value bytes (never a tombstone: cursors are values).
    pub value: Vec<u8>,
    /// Record timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// Headers.
    pub headers: OwnedHeaders,
}

impl OwnedOutgoing {
    /// The record to send.
    pub fn borrowed(&self) -> Outgoing<'_> {
        Outgoing {
            topic: &self.topic,
            key: Some(&self.key),
            value: Some(&self.value),
            timestamp_ms: self.timestamp_ms,
            headers: &self.headers,
        }
    }
}

/// Builds record headers from `(name, value)` pairs.
pub fn headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> OwnedHeaders {
    pairs
        .into_iter()
        .fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        })
}

/// librdkafka properties the producer sets unless `kafka.properties` sets them, chosen with
/// `scripts/bench-pipeline` (1M work-session rows, 2 cores).
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    // bounded memory: at most 50,000 records (a tombstone with its headers is ~0.5 KiB of
    // librdkafka memory, more than the byte limit counts) or 64 MiB waiting for the broker;
    // librdkafka's 100,000 took the service's peak RSS above 150 MB with no gain in rows/s
    ("queue.buffering.max.messages", "50000"),
    ("queue.buffering.max.kbytes", "65536"),
    ("linger.ms", "20"),
    // about half the broker's CPU per record: records of one window share most of their
    // headers and key fields, so batches compress well
    ("compression.type", "lz4"),
];

/// A producer in one delivery mode. See the module docs for the window protocol.
pub struct Publisher {
    producer: ThreadedProducer<SinkContext>,
    stats: Arc<DeliveryStats>,
    delivery: Delivery,
    transactional_id: String,
    timeout: Duration,
    /// When the open transaction began (exactly-once): a fencing error after
    /// `transaction.timeout.ms` is the broker's timeout, not another instance.
    began: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("delivery", &self.delivery)
            .field("transactional_id", &self.transactional_id)
            .finish()
    }
}

/// The librdkafka configuration of the service's clients: bootstrap plus pass-through.
pub fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.bootstrap_servers);
    for (k, v) in &settings.properties {
        c.set(k, v);
    }
    c
}

/// The producer's librdkafka configuration: [`client_config`], then [`PRODUCER_DEFAULTS`] the
/// user did not set, then what the delivery mode requires.
pub fn producer_config(settings: &KafkaSettings, transactional_id: &str) -> ClientConfig {
    let mut config = client_config(settings);
    for (key, value) in PRODUCER_DEFAULTS {
        // `compression.codec` is librdkafka's alias of `compression.type`
        let aliased =
            *key == "compression.type" && settings.properties.contains_key("compression.codec");
        if !settings.properties.contains_key(*key) && !aliased {
            config.set(*key, *value);
        }
    }
    config.set("enable.idempotence", "true");
    if settings.delivery == Delivery::ExactlyOnce {
        config.set("transactional.id", transactional_id);
        config.set(
            "transaction.timeout.ms",
            (settings.transaction_timeout_secs * 1000).to_string(),
        );
    }
    config
}

impl Publisher {
    /// Creates the producer; in exactly-once mode also registers `transactional_id` with the
    /// broker, which aborts whatever an earlier holder of the id left open and fences it.
    pub fn new(settings: &KafkaSettings, transactional_id: &str) -> Result<Self, SinkError> {
        let config = producer_config(settings, transactional_id);
        let timeout = Duration::from_secs(settings.transaction_timeout_secs);
        let stats = Arc::new(DeliveryStats::default());
        let producer: ThreadedProducer<SinkContext> = config
            .create_with_context(SinkContext {
                stats: stats.clone(),
            })
            .map_err(SinkError::Config)?;
        let publisher = Publisher {
            producer,
            stats,
            delivery: settings.delivery,
            transactional_id: transactional_id.to_string(),
            timeout,
            began: Mutex::new(None),
        };
        if publisher.delivery == Delivery::ExactlyOnce {
            publisher
                .producer
                .init_transactions(publisher.timeout.min(Duration::from_secs(120)))
                .map_err(|e| publisher.classify(e))?;
        }
        Ok(publisher)
    }

    /// The delivery mode.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// Delivery counters.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    /// Starts a window.
    pub fn begin(&self) -> Result<(), SinkError> {
        self.stats.failed_in_window.store(0, Ordering::Relaxed);
        *self.stats.first_error.lock().expect("not poisoned") = None;
        if self.delivery == Delivery::ExactlyOnce {
            self.producer
                .begin_transaction()
                .map_err(|e| self.classify(e))?;
            *self.began.lock().expect("not poisoned") = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// Enqueues one record, waiting (on this thread) while librdkafka's queue is full.
    pub fn send(&self, out: Outgoing<'_>) -> Result<(), SinkError> {
        while !self.try_send(out)? {
            self.producer.poll(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Enqueues one record without blocking: `Ok(false)` when librdkafka's queue is full (the
    /// record was not taken; try again once deliveries made room).
    pub fn try_send(&self, out: Outgoing<'_>) -> Result<bool, SinkError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(out.topic)
            .timestamp(out.timestamp_ms)
            .headers(out.headers.clone());
        if let Some(k) = out.key {
            record = record.key(k);
        }
        if let Some(v) = out.value {
            record = record.payload(v);
        }
        match self.producer.send(record) {
            Ok(()) => Ok(true),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Ok(false),
            Err((e, _)) => Err(self.classify(e)),
        }
    }

    /// Ends a window: exactly-once sends the checkpoint into the transaction and commits;
    /// at-least-once waits for every record, then writes the checkpoint and waits for it.
    pub fn finish(&self, checkpoint: Outgoing<'_>) -> Result<(), SinkError> {
        match self.delivery {
            Delivery::ExactlyOnce => {
                self.send(checkpoint)?;
                self.wait_delivered();
                crate::fault::crash_point("before-commit");
                let committed = self
                    .producer
                    .commit_transaction(self.timeout)
                    .map_err(|e| self.classify(e));
                self.ended();
                committed
            }
            Delivery::AtLeastOnce => {
                self.flush_window()?;
                crate::fault::crash_point("before-commit");
                self.send(checkpoint)?;
                self.flush_window()
            }
        }
    }

    /// Discards the open window (exactly-once) or waits out what was sent (at-least-once).
    pub fn abort(&self) -> Result<(), SinkError> {
        match self.delivery {
            Delivery::ExactlyOnce => {
                let aborted = self
                    .producer
                    .abort_transaction(self.timeout)
                    .map_err(|e| self.classify(e));
                self.ended();
                aborted
            }
            Delivery::AtLeastOnce => {
                let _ = self.producer.flush(self.timeout);
                Ok(())
            }
        }
    }

    /// No transaction is open any more.
    fn ended(&self) {
        *self.began.lock().expect("not poisoned") = None;
    }

    /// Waits, in steps of a millisecond, until librdkafka holds no record of the window, or
    /// the transaction timeout passes (the flush that follows then reports it). rust-rdkafka's
    /// own flush, which `commit_transaction` starts with, looks again only every 100 ms while
    /// the producer's polling thread serves the deliveries: 100 ms lost per window.
    fn wait_delivered(&self) {
        let deadline = std::time::Instant::now() + self.timeout;
        while self.producer.in_flight_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn flush_window(&self) -> Result<(), SinkError> {
        self.wait_delivered();
        self.producer
            .flush(self.timeout)
            .map_err(|e| self.classify(e))?;
        let failed = self.stats.failed_in_window.load(Ordering::Relaxed);
        if failed > 0 {
            let first = self
                .stats
                .first_error
                .lock()
                .expect("not poisoned")
                .clone()
                .unwrap_or_default();
            return Err(SinkError::Undelivered { failed, first });
        }
        Ok(())
    }

    fn classify(&self, e: KafkaError) -> SinkError {
        let code = e.rdkafka_error_code();
        let mut fenced = matches!(
            code,
            Some(RDKafkaErrorCode::Fenced)
                | Some(RDKafkaErrorCode::ProducerFenced)
                | Some(RDKafkaErrorCode::InvalidProducerEpoch)
        );
        let fatal = match &e {
            KafkaError::Transaction(t) => t.is_fatal(),
            _ => false,
        } || self.producer.client().fatal_error().is_some();
        if fatal {
            fenced |= matches!(
                self.producer.client().fatal_error(),
                Some((
                    RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced,
                    _
                ))
            );
        }
        if fenced {
            return self.fenced_or_timed_out();
        }
        if fatal {
            return SinkError::Fatal(e);
        }
        SinkError::Retriable(e)
    }

    /// A fencing error: the broker bumps the epoch both when another instance takes the
    /// transactional id and when it aborts a transaction older than `transaction.timeout.ms`,
    /// and librdkafka reports both as fenced. The broker's clock for a transaction starts at
    /// its first partition, after `begin`: a transaction younger than the timeout cannot have
    /// timed out, so the error is another instance's; an older one is taken as timed out (if
    /// another instance did start meanwhile, this one's new producer fences it in turn, and
    /// that one stops: still one instance left).
    fn fenced_or_timed_out(&self) -> SinkError {
        let open = self
            .began
            .lock()
            .expect("not poisoned")
            .map(|began| began.elapsed());
        match open {
            Some(open) if open >= self.timeout => SinkError::TimedOut {
                transactional_id: self.transactional_id.clone(),
                open_secs: open.as_secs_f64(),
                timeout_secs: self.timeout.as_secs(),
            },
            _ => SinkError::Fenced {
                transactional_id: self.transactional_id.clone(),
            },
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.delivery == Delivery::AtLeastOnce {
            let _ = self.producer.flush(Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(properties: &[(&str, &str)]) -> KafkaSettings {
        KafkaSettings {
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..KafkaSettings::default()
        }
    }

    #[test]
    fn defaults_apply_unless_the_user_sets_them() {
        let c = producer_config(&settings(&[]), "p.work_sessions");
        assert_eq!(c.get("compression.type"), Some("lz4"));
        assert_eq!(c.get("queue.buffering.max.messages"), Some("50000"));
        assert_eq!(c.get("transactional.id"), Some("p.work_sessions"));

        let c = producer_config(
            &settings(&[("linger.ms", "5"), ("compression.type", "gzip")]),
            "x",
        );
        assert_eq!(c.get("linger.ms"), Some("5"));
        assert_eq!(c.get("compression.type"), Some("gzip"));

        // the alias wins over our default rather than conflicting with it
        let c = producer_config(&settings(&[("compression.codec", "snappy")]), "x");
        assert_eq!(c.get("compression.type"), None);
        assert_eq!(c.get("compression.codec"), Some("snappy"));
    }

    #[test]
    fn at_least_once_has_no_transactional_id() {
        let s = KafkaSettings {
            delivery: Delivery::AtLeastOnce,
            ..settings(&[])
        };
        let c = producer_config(&s, "x");
        assert_eq!(c.get("transactional.id"), None);
        assert_eq!(c.get("enable.idempotence"), Some("true"));
    }
}
