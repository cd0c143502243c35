//! The source contract, and the driver that publishes any source's units through the engine.
//!
//! A [`Source`] writes one unit of work's records into an open [`Transaction`]; a
//! [`Cursored`] source also says which record moves its cursor past the unit. [`drive`] does
//! the rest
//! for every source alike: begin, write, commit with the cursor last (or abort), split a unit
//! too big for one transaction, retry a failed one with backoff, stop on what retrying
//! cannot fix, and count and log it all through the typed events.
//!
//! The sources: report windows (`report_windows`), dimension lists (`dimensions`), and the
//! conversations of a work-session window (`conversations`), which writes into its window's
//! transaction and rides on the window's cursor.

use std::collections::VecDeque;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

use super::context::{Context, DeadLetterTopic};
use super::engine::{Engine, Transaction};
use super::error::{Failure, Stop};
use super::internal_events::{UnitFailed, UnitSplit};
use super::progress::Progress;
use super::summary::Summary;
use crate::gladly::retry::Backoff;
use rdkafka::message::{Header, OwnedHeaders};

use crate::kafka::{Outgoing, OwnedOutgoing, SinkError};
use crate::records::{encode_dead_letter_of, DeadLetter, WindowMeta};

/// Longest wait between two attempts at a unit.
const MAX_UNIT_BACKOFF: Duration = Duration::from_secs(60);

/// How writing a unit ended.
pub(crate) enum Written<D> {
    /// Every record is in the transaction; `D` says what was written.
    Complete(D),
    /// Too much for one transaction (the row cap; conversations that would not fit in its
    /// timeout): the transaction is aborted and the unit split.
    TooBig {
        /// Rows read when it stopped.
        rows: u64,
    },
}

/// Something that writes a unit of work's records into an open transaction.
pub(crate) trait Source {
    /// A unit of work: a window, a list, a window's ended conversations.
    type Unit: Display + Send + Sync;
    /// What writing a unit did (its counts, what the cursor needs).
    type Done: Send;

    /// What the logs and metrics call the source (a report's name, `dimensions`).
    fn label(&self) -> &str;

    /// Writes `unit`'s records (tombstones and dead letters included) into `tx`.
    fn write(
        &mut self,
        unit: &Self::Unit,
        tx: &mut Transaction,
    ) -> impl Future<Output = Result<Written<Self::Done>, Failure>> + Send;
}

/// A source with a cursor of its own, which [`drive`] publishes a unit per transaction: the
/// unit's records, then the record that moves its cursor past the unit. (A source without one,
/// like the conversations, writes into another's transaction and rides on its cursor.)
pub(crate) trait Cursored: Source {
    /// What one unit is called in logs (`window`, `list`).
    fn kind(&self) -> &'static str;

    /// The units due from where the cursor stands now (a live poll's windows, the lists
    /// not refreshed within their cadence). A backfill or a re-read pass hands [`drive`] its
    /// own units instead.
    fn plan(&self) -> Vec<Self::Unit>;

    /// The span a unit's attempts run in (none by default).
    fn span(&self, _unit: &Self::Unit) -> tracing::Span {
        tracing::Span::none()
    }

    /// The record that moves the cursor past `unit`, written as its transaction's last.
    fn cursor(&self, unit: &Self::Unit, done: &Self::Done) -> OwnedOutgoing;

    /// `unit` was committed with its cursor: move the source's state past it and count it.
    fn committed(&mut self, unit: &Self::Unit, done: Self::Done) -> Summary;

    /// Queues the halves of `unit`, too big for one transaction, in its place (at the front
    /// of `queue`); false when it cannot be split.
    fn split(&mut self, _unit: &Self::Unit, _queue: &mut VecDeque<Self::Unit>) -> bool {
        false
    }
}

/// Sends `dl`, a row (or answer, or line) of `source` that could not be converted, to the
/// dead-letter topic in `tx`, keyed by the source's name, with `headers` plus `gladly.error`
/// (and `gladly.line` when the line is known). Its record time is the wall clock: the topic's
/// retention counts from when the row failed, whatever business time the unit covers.
pub(crate) async fn send_dead_letter(
    to: &DeadLetterTopic,
    tx: &mut Transaction,
    source: &str,
    dl: &DeadLetter,
    meta: &WindowMeta,
    headers: &OwnedHeaders,
) -> Result<(), SinkError> {
    let value = encode_dead_letter_of(source, dl, meta, to.schema_id);
    let line = dl.line.to_string();
    let mut h = headers.clone().insert(Header {
        key: "gladly.error",
        value: Some(dl.reason.as_str()),
    });
    if dl.line > 0 {
        h = h.insert(Header {
            key: "gladly.line",
            value: Some(line.as_str()),
        });
    }
    tx.send(Outgoing {
        topic: &to.name,
        key: Some(source.as_bytes()),
        value: Some(&value),
        timestamp_ms: chrono::Utc::now().timestamp_millis(),
        headers: &h,
    })
    .await
}

/// Publishes `units` in order through `engine`, each in its own transaction with its cursor;
/// splits units too big for one transaction; retries failed ones up to
/// `pipeline.window_attempts` times with backoff. Stops at the first unit that cannot be
/// published.
pub(crate) async fn drive<S: Cursored>(
    ctx: &Context,
    engine: &Engine,
    source: &mut S,
    units: impl IntoIterator<Item = S::Unit>,
    mut progress: Option<&mut Progress>,
) -> Result<Summary, Stop<S::Unit>> {
    let mut queue: VecDeque<S::Unit> = units.into_iter().collect();
    let mut total = Summary::default();
    while let Some(unit) = queue.pop_front() {
        if ctx.stopping() {
            return Err(Stop::Shutdown);
        }
        let queued = queue.len();
        let (published, retries) = attempts(ctx, engine, source, unit, &mut queue).await?;
        total.retries += retries;
        match published {
            Some(s) => {
                total.add(&s);
                if let Some(p) = progress.as_deref_mut() {
                    p.window_done(s.rows);
                }
            }
            // the split unit is replaced by what the queue gained
            None => {
                total.splits += 1;
                if let Some(p) = progress.as_deref_mut() {
                    p.add_windows(queue.len().saturating_sub(queued + 1) as u64);
                }
            }
        }
        if let Some(p) = progress.as_deref() {
            ctx.metrics
                .backfill_progress(source.label(), p.done(), p.planned());
        }
    }
    Ok(total)
}

/// Attempts `unit` until it is committed (its summary) or split (`None`), and counts the
/// failed attempts.
async fn attempts<S: Cursored>(
    ctx: &Context,
    engine: &Engine,
    source: &mut S,
    unit: S::Unit,
    queue: &mut VecDeque<S::Unit>,
) -> Result<(Option<Summary>, u64), Stop<S::Unit>> {
    let cfg = &ctx.config.pipeline;
    let most = cfg.window_attempts.max(1);
    let backoff = Backoff {
        initial: Duration::from_millis(cfg.retry_backoff_ms),
        max: MAX_UNIT_BACKOFF,
    };
    let mut last = String::new();
    for attempt in 1..=most {
        let span = source.span(&unit);
        let tried = once(ctx, engine, source, &unit)
            .instrument(span.clone())
            .await;
        match tried {
            Ok(Attempted::Committed(done)) => {
                let summary = span.in_scope(|| source.committed(&unit, done));
                return Ok((Some(summary), u64::from(attempt - 1)));
            }
            Ok(Attempted::TooBig { rows }) => {
                let text = unit.to_string();
                if !source.split(&unit, queue) {
                    return Err(Stop::TooBig { unit, rows });
                }
                UnitSplit {
                    label: source.label(),
                    unit: &text,
                    rows,
                    cap: cfg.row_cap,
                    metrics: &ctx.metrics,
                }
                .emit();
                return Ok((None, u64::from(attempt - 1)));
            }
            Err(Failure::Shutdown) => return Err(Stop::Shutdown),
            Err(f) => {
                let f = match f.refusal() {
                    Ok(refusal) => return Err(Stop::Refused { unit, refusal }),
                    Err(f) => f,
                };
                last = f.to_string();
                UnitFailed {
                    label: source.label(),
                    kind: source.kind(),
                    unit: &unit.to_string(),
                    attempt,
                    error: &last,
                    metrics: &ctx.metrics,
                }
                .emit();
            }
        }
        if attempt < most {
            let wait = backoff.delay(attempt, &mut rand::thread_rng());
            if ctx.sleep_or_shutdown(wait).await {
                return Err(Stop::Shutdown);
            }
        }
    }
    Err(Stop::Exhausted {
        unit,
        attempts: most,
        last,
    })
}

/// How one attempt that did not fail ended.
enum Attempted<D> {
    /// Committed with its cursor.
    Committed(D),
    /// Too big for one transaction: aborted, to be split.
    TooBig {
        /// Rows read when it stopped.
        rows: u64,
    },
}

/// One attempt at `unit` as one transaction: begin, write, then commit with the cursor last,
/// or abort. The only place a unit's transaction begins and ends.
async fn once<S: Cursored>(
    ctx: &Context,
    engine: &Engine,
    source: &mut S,
    unit: &S::Unit,
) -> Result<Attempted<S::Done>, Failure> {
    let mut tx = engine.begin().await.map_err(Failure::Sink)?;
    let written = tokio::select! {
        biased;
        _ = ctx.shutdown_requested() => Err(Failure::Shutdown),
        w = source.write(unit, &mut tx) => w,
    };
    match written {
        Ok(Written::Complete(done)) => {
            tx.commit(source.cursor(unit, &done))
                .await
                .map_err(Failure::Sink)?;
            Ok(Attempted::Committed(done))
        }
        Ok(Written::TooBig { rows }) => {
            let _ = tx.abort("too big for one transaction").await;
            Ok(Attempted::TooBig { rows })
        }
        Err(f) => {
            let _ = tx.abort(&f.to_string()).await;
            Err(f)
        }
    }
}
