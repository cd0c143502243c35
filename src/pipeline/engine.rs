//! The publishing engine: the one owner of a producer's transactions.
//!
//! An [`Engine`] holds one transactional id's producer. [`Engine::begin`] opens a
//! [`Transaction`]; a source writes its unit's records into it ([`Transaction::send`]); the
//! engine's caller ends it with [`Transaction::commit`] (the unit's cursor record last) or
//! [`Transaction::abort`]. A transaction dropped without either (a cancelled future, a panic)
//! is aborted: the abort starts at once, and the next `begin` waits for it. Whenever a call
//! leaves the producer unusable (a fatal error, a transaction the broker timed out, a `begin`
//! or an abort that failed), the engine drops it and the next `begin` creates a new one,
//! whose `init_transactions` aborts whatever the old one left and fences it.
//!
//! Nothing else in the crate begins, commits or aborts. librdkafka's blocking calls run with
//! `spawn_blocking` and a full queue is waited out with a timer, so the engine works on any
//! tokio runtime, a current-thread one included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::internal_events::{ProducerDropped, TransactionAborted};
use crate::kafka::{KafkaSettings, Outgoing, OwnedOutgoing, Publisher, SinkError};
use crate::observe::Metrics;

/// How long a send waits before trying again when librdkafka's queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(1);

/// One transactional id's producer, and the life of its transactions. Cheap to clone: the
/// clones share the producer.
#[derive(Clone)]
pub(crate) struct Engine {
    shared: Arc<Shared>,
}

struct Shared {
    kafka: KafkaSettings,
    transactional_id: String,
    /// What the metrics and logs call the engine's transactions (a report, `dimensions`).
    label: String,
    metrics: Arc<Metrics>,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    /// `None` after a failure that left it unusable: the next `begin` creates a new one.
    producer: Option<Arc<Publisher>>,
    /// The abort a dropped transaction started; the next `begin` waits for it.
    dropped: Option<JoinHandle<Result<(), SinkError>>>,
}

impl Shared {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .expect("the engine's lock is never held across a panic")
    }

    /// Drops the producer after `error` left it unusable.
    fn drop_producer(&self, error: &SinkError) {
        if self.slot().producer.take().is_some() {
            ProducerDropped {
                label: &self.label,
                error,
            }
            .emit();
        }
    }
}

impl Engine {
    /// Creates the engine's producer: in exactly-once mode its `init_transactions` fences
    /// older holders of `transactional_id`.
    pub(crate) async fn open(
        kafka: &KafkaSettings,
        transactional_id: String,
        label: impl Into<String>,
        metrics: Arc<Metrics>,
    ) -> Result<Engine, SinkError> {
        let engine = Engine {
            shared: Arc::new(Shared {
                kafka: kafka.clone(),
                transactional_id,
                label: label.into(),
                metrics,
                slot: Mutex::new(Slot::default()),
            }),
        };
        engine.producer().await?;
        Ok(engine)
    }

    /// The producer, created anew after one was dropped.
    async fn producer(&self) -> Result<Arc<Publisher>, SinkError> {
        if let Some(p) = &self.shared.slot().producer {
            return Ok(p.clone());
        }
        let (kafka, id) = (
            self.shared.kafka.clone(),
            self.shared.transactional_id.clone(),
        );
        let made = Arc::new(blocking(move || Publisher::new(&kafka, &id)).await?);
        self.shared.slot().producer = Some(made.clone());
        Ok(made)
    }

    /// Begins a transaction (at-least-once: a window of acknowledged sends). Waits first for
    /// the abort of a transaction dropped earlier.
    pub(crate) async fn begin(&self) -> Result<Transaction, SinkError> {
        let dropped = self.shared.slot().dropped.take();
        if let Some(abort) = dropped {
            match abort.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.shared.drop_producer(&e),
                Err(e) => self.shared.drop_producer(&SinkError::Undelivered {
                    failed: 0,
                    first: format!("the abort of a dropped transaction did not finish: {e}"),
                }),
            }
        }
        let producer = self.producer().await?;
        let p = producer.clone();
        if let Err(e) = blocking(move || p.begin()).await {
            // e.g. an abort that timed out while the broker was away is still pending in
            // librdkafka, and every later call would conflict with it: start afresh
            self.shared.drop_producer(&e);
            return Err(e);
        }
        crate::fault::crash_point("after-begin");
        Ok(Transaction {
            shared: self.shared.clone(),
            producer,
            open: true,
        })
    }
}

impl Engine {
    /// Writes `record` alone in a transaction of its own (a checkpoint outside a unit: a
    /// `reset`, a finished backfill).
    pub(crate) async fn write_alone(&self, record: OwnedOutgoing) -> Result<(), SinkError> {
        self.begin().await?.commit(record).await
    }
}

/// An open transaction of an [`Engine`]. Ends with [`Transaction::commit`] or
/// [`Transaction::abort`]; dropped open, it is aborted.
pub(crate) struct Transaction {
    shared: Arc<Shared>,
    producer: Arc<Publisher>,
    open: bool,
}

impl Transaction {
    /// Sends one record into the transaction, waiting while librdkafka's queue is full.
    pub(crate) async fn send(&mut self, out: Outgoing<'_>) -> Result<(), SinkError> {
        while !self
            .producer
            .try_send(out)
            .inspect_err(|e| self.failed(e))?
        {
            tokio::time::sleep(QUEUE_FULL_WAIT).await;
        }
        crate::fault::crash_point("after-record");
        Ok(())
    }

    /// Sends `cursor` as the transaction's last record and commits (at-least-once: waits
    /// until every record is acknowledged, then writes the cursor and waits for it too). A
    /// failed commit is aborted.
    pub(crate) async fn commit(mut self, cursor: OwnedOutgoing) -> Result<(), SinkError> {
        let p = self.producer.clone();
        match blocking(move || p.finish(cursor.borrowed())).await {
            Ok(()) => {
                self.open = false;
                crate::fault::crash_point("after-commit");
                Ok(())
            }
            Err(e) => {
                self.failed(&e);
                let _ = self.abort_now("the commit failed").await;
                Err(e)
            }
        }
    }

    /// Aborts the transaction: nothing it sent becomes visible (at-least-once: waits out
    /// what was sent). `why` is logged.
    pub(crate) async fn abort(mut self, why: &str) -> Result<(), SinkError> {
        self.abort_now(why).await
    }

    async fn abort_now(&mut self, why: &str) -> Result<(), SinkError> {
        self.open = false;
        self.aborted(why);
        let p = self.producer.clone();
        let aborted = blocking(move || p.abort()).await;
        if let Err(e) = &aborted {
            // a producer whose abort failed (the broker is away, it is fenced or broken) stays
            // stuck mid-abort; a new one's init_transactions aborts whatever is left
            self.shared.drop_producer(e);
        }
        aborted
    }

    fn aborted(&self, why: &str) {
        TransactionAborted {
            label: &self.shared.label,
            why,
            metrics: &self.shared.metrics,
        }
        .emit();
    }

    /// Drops the producer when `e` left it unusable.
    fn failed(&self, e: &SinkError) {
        if e.needs_new_producer() {
            self.shared.drop_producer(e);
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        self.aborted("dropped before it ended");
        let p = self.producer.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => self.shared.slot().dropped = Some(rt.spawn_blocking(move || p.abort())),
            Err(_) => {
                if let Err(e) = p.abort() {
                    self.shared.drop_producer(&e);
                }
            }
        }
    }
}

/// Runs a blocking librdkafka call off the runtime's threads; a panic in it is resumed here.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(t) => t,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
