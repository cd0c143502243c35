//! One attempt at one window, as one unit: begin, stream the window's records, tombstones
//! and dead letters into the transaction (a [`WindowTx`]), fetch its conversations, then write
//! the checkpoint and commit — or abort, so a failed attempt leaves nothing visible.

use std::time::Instant;

use chrono::Utc;
use rdkafka::message::{Header, OwnedHeaders};
use tracing::Instrument;

use super::checkpoint::{checkpoint_key, Checkpoint, Scope};
use super::connect::Pipeline;
use super::conversations::ConversationFailure;
use super::error::Failure;
use super::job::{block, ReportJob};
use super::plan::{date_position, request, window_end_instant, window_start_instant};
use super::reader::{read_window, AbortOnDrop, Chunk, CHUNKS_IN_FLIGHT};
use super::reread::{pass_record, TierProgress};
use super::summary::{Summary, DEAD_LETTER_EXAMPLES};
use super::window::{Position, Window};
use crate::config::PublishMode;
use crate::kafka::{headers, Outgoing, Publisher, SinkError};
use crate::records::changes::{key_id, Pending, Published};
use crate::records::{self, EndedConversations, Output, WindowMeta};
use crate::report::Report;
use crate::VERSION;

/// What a window's transaction records besides its rows.
pub(super) enum Cursor<'a> {
    /// The job's own checkpoint (a poll, a backfill): the window moves `job.position`.
    Job,
    /// A pass of the re-read tier `tier`: the window writes the tier's progress record (its
    /// `open` pass is the one under way) and leaves the live position alone; it fetches no
    /// conversations (they were fetched when their contacts ended, in the live windows).
    Pass {
        /// The tier's name.
        tier: &'a str,
        /// Its progress, with the pass under way.
        progress: &'a mut TierProgress,
    },
}

impl Cursor<'_> {
    fn is_pass(&self) -> bool {
        matches!(self, Cursor::Pass { .. })
    }
}

/// How an attempt that did not fail ended.
pub(super) enum Attempt {
    /// Published and committed with its checkpoint.
    Done(Summary),
    /// Aborted at the row cap (or too many conversations for one transaction): split it.
    Capped(Summary),
}

/// A window's open transaction: where its records, tombstones and dead letters go, with the
/// headers every record of the window carries, and what was sent so far.
pub(super) struct WindowTx<'a> {
    publisher: &'a Publisher,
    report: Report,
    topic: &'a str,
    /// What was last published per key; `None` publishes every record
    /// (`pipeline.publish = "every-read"`).
    published: Option<&'a Published>,
    /// The records sent, for `published` once the window commits.
    pending: Pending,
    dead_letter_topic: String,
    dead_letter_id: u32,
    headers: OwnedHeaders,
    meta: WindowMeta,
    summary: Summary,
}

impl WindowTx<'_> {
    /// Sends `out`'s records and dead letters (draining it) into the transaction.
    fn emit(&mut self, out: &mut Vec<Output>) -> Result<(), SinkError> {
        for o in out.drain(..) {
            match o {
                Output::Record(r) => {
                    let key = key_id(&r.key);
                    if self
                        .published
                        .is_some_and(|p| !p.wants(key, r.fingerprint, r.since_ms))
                    {
                        self.summary.suppressed += 1;
                        continue;
                    }
                    self.pending.push(key, r.fingerprint, r.timestamp_ms);
                    self.publisher.send(Outgoing {
                        topic: self.topic,
                        key: Some(&r.key),
                        value: r.value.as_deref(),
                        timestamp_ms: r.timestamp_ms,
                        headers: &self.headers,
                    })?;
                    crate::fault::crash_point("after-record");
                    self.summary.records += 1;
                    if r.value.is_none() {
                        self.summary.tombstones += 1;
                    }
                }
                Output::DeadLetter(dl) => self.dead_letter(&dl)?,
            }
        }
        Ok(())
    }

    fn dead_letter(&mut self, dl: &records::DeadLetter) -> Result<(), SinkError> {
        let value = records::encode_dead_letter(self.report, dl, &self.meta, self.dead_letter_id);
        let line = dl.line.to_string();
        let h = self
            .headers
            .clone()
            .insert(Header {
                key: "gladly.error",
                value: Some(dl.reason.as_str()),
            })
            .insert(Header {
                key: "gladly.line",
                value: Some(line.as_str()),
            });
        self.publisher.send(Outgoing {
            topic: &self.dead_letter_topic,
            key: Some(self.report.name().as_bytes()),
            value: Some(&value),
            // wall-clock time: the dead-letter topic's retention counts from when the row
            // failed, whatever business time the window covers
            timestamp_ms: Utc::now().timestamp_millis(),
            headers: &h,
        })?;
        self.summary.dead_letters += 1;
        *self
            .summary
            .dead_letter_reasons
            .entry(crate::observe::reason_label(&dl.reason))
            .or_default() += 1;
        if self.summary.dead_letter_examples.len() < DEAD_LETTER_EXAMPLES {
            let reason: String = dl.reason.chars().take(300).collect();
            (self.summary.dead_letter_examples).push(format!("line {}: {reason}", dl.line));
        }
        tracing::debug!(report = %self.report, line = dl.line, reason = %dl.reason, "row sent to the dead-letter topic");
        Ok(())
    }
}

/// Sends `checkpoint` as the last record of the open transaction and commits it.
pub(super) fn commit_checkpoint(
    publisher: &Publisher,
    topic: &str,
    checkpoint: &Checkpoint,
    headers: &OwnedHeaders,
) -> Result<(), SinkError> {
    let key = checkpoint_key(checkpoint.report, &checkpoint.scope);
    let value = checkpoint.to_bytes();
    publisher.finish(Outgoing {
        topic,
        key: Some(key.as_bytes()),
        value: Some(&value),
        // wall-clock time: brokers refuse timestamps far in the future
        // (log.message.timestamp.after.max.ms), whatever clock the pipeline runs on
        timestamp_ms: Utc::now().timestamp_millis(),
        headers,
    })?;
    crate::fault::crash_point("after-commit");
    Ok(())
}

impl Pipeline {
    /// One attempt at a window, inside a `window` span (report, window, rows, duration_secs).
    pub(super) async fn attempt(
        &self,
        job: &mut ReportJob,
        window: Window,
        cursor: &mut Cursor<'_>,
    ) -> Result<Attempt, Failure> {
        let span = tracing::info_span!(
            "window",
            report = %job.report,
            window = %window,
            rows = tracing::field::Empty,
            duration_secs = tracing::field::Empty,
        );
        self.attempt_in_span(job, window, cursor)
            .instrument(span)
            .await
    }

    async fn attempt_in_span(
        &self,
        job: &mut ReportJob,
        window: Window,
        cursor: &mut Cursor<'_>,
    ) -> Result<Attempt, Failure> {
        let started = Instant::now();
        let streamed = self
            .stream_in_transaction(job, window, !cursor.is_pass())
            .await;
        let (summary, headers, pending) = match streamed {
            Ok((Attempt::Done(s), headers, pending)) => (s, headers, pending),
            Ok((capped, _, _)) => {
                job.abort_window();
                self.inner.metrics.transaction_aborted(job.report.name());
                return Ok(capped);
            }
            Err(f) => {
                job.abort_window();
                self.inner.metrics.transaction_aborted(job.report.name());
                return Err(f);
            }
        };
        let checkpoint = self.window_checkpoint(job, cursor, &window, summary.rows);
        let topic = self.config().topics.checkpoint_topic();
        let publisher = job.publisher.as_ref().expect("the attempt's producer");
        if let Err(e) = block(|| commit_checkpoint(publisher, &topic, &checkpoint, &headers)) {
            job.abort_window();
            self.inner.metrics.transaction_aborted(job.report.name());
            return Err(Failure::Sink(e));
        }
        match cursor {
            Cursor::Job => job.position = Some(checkpoint.position),
            Cursor::Pass { progress, .. } => **progress = TierProgress::from_record(&checkpoint),
        }
        job.published.apply(pending);
        job.published
            .forget_before(self.remembered_from(job, &window));
        self.committed(job, cursor, &summary, started.elapsed());
        Ok(Attempt::Done(Summary {
            windows: 1,
            ..summary
        }))
    }

    /// The record `window`'s transaction ends with: the job's checkpoint at the window's end
    /// (never behind where it stands), or the re-read tier's progress.
    fn window_checkpoint(
        &self,
        job: &ReportJob,
        cursor: &Cursor<'_>,
        window: &Window,
        rows: u64,
    ) -> Checkpoint {
        let reached = self.reached(job, window);
        let position = match job.position {
            Some(p) if p > reached => p,
            _ => reached,
        };
        let (wstart, wend) = window.bounds_text();
        let base = Checkpoint {
            report: job.report,
            scope: job.scope.clone(),
            position,
            updated_at: self.clock().now(),
            run_id: self.run_id().to_string(),
            service_version: VERSION.to_string(),
            window: Some((wstart, wend)),
            rows,
            complete: false,
            pass: None,
        };
        match cursor {
            Cursor::Job => base,
            Cursor::Pass { tier, progress } => {
                let pass = progress.open.as_ref().expect("a pass under way");
                pass_record(base, tier, progress, pass, reached)
            }
        }
    }

    /// Where a cursor stands once `window` is published: its end, or for a date report, the
    /// last whole day it completes (a time-precise piece of a day completes none, but its last).
    fn reached(&self, job: &ReportJob, window: &Window) -> Position {
        match self.config().date_settings(job.report) {
            Some(_) => date_position(self.config(), job.report, window),
            None => window.end_position(),
        }
    }

    /// The earliest anchor a later window of `job` can re-read, after `window` (epoch ms):
    /// older keys are forgotten. A poll re-reads its report's re-read horizon; a backfill
    /// moves forward, re-reading only rows at the bound it shares with the previous window.
    fn remembered_from(&self, job: &ReportJob, window: &Window) -> i64 {
        let from = match job.scope {
            Scope::Backfill { .. } => window_start_instant(window, self.config(), job.report),
            Scope::Run | Scope::Reread { .. } => {
                self.clock().now() - self.config().reread_horizon(job.report)
            }
        };
        from.timestamp_millis()
    }

    /// Counts and logs a committed window.
    fn committed(
        &self,
        job: &ReportJob,
        cursor: &Cursor<'_>,
        summary: &Summary,
        took: std::time::Duration,
    ) {
        let metrics = &self.inner.metrics;
        metrics.window_published(job.report.name(), summary.counts(), took);
        summary.conversations.count_committed(metrics);
        match (cursor, &job.scope, job.position) {
            (Cursor::Pass { tier, .. }, _, _) => {
                metrics.reread_window(job.report.name(), tier, summary.records)
            }
            (Cursor::Job, Scope::Run, Some(p)) => {
                metrics.checkpoint_moved(job.report.name(), p.covered_until())
            }
            _ => {}
        }
        let span = tracing::Span::current();
        span.record("rows", summary.rows);
        span.record("duration_secs", took.as_secs_f64());
        tracing::info!(
            records = summary.records,
            tombstones = summary.tombstones,
            dead_letters = summary.dead_letters,
            "window published"
        );
        // one line for all the window's dead letters, however many: counts by reason and the
        // first few (each one is logged at debug)
        if summary.dead_letters > 0 {
            tracing::warn!(
                dead_letters = summary.dead_letters,
                topic = %self.config().topics.dead_letter_topic(),
                "rows sent to the dead-letter topic: {}",
                summary.dead_letter_line()
            );
        }
    }

    /// Begins the window's transaction and streams its rows (and, with `conversations`, the
    /// conversations of its ended contacts) into it. Returns what was sent and the window's
    /// headers; the caller commits or aborts.
    async fn stream_in_transaction(
        &self,
        job: &mut ReportJob,
        window: Window,
        conversations: bool,
    ) -> Result<(Attempt, OwnedHeaders, Pending), Failure> {
        let cfg = self.config();
        let fetched_at = self.clock().now();
        let meta = WindowMeta {
            window_start: window_start_instant(&window, cfg, job.report),
            window_end: window_end_instant(&window, cfg, job.report),
            fetched_at,
        };
        let window_headers = self.window_headers(job.report, &window, fetched_at);
        job.publisher(cfg).await.map_err(Failure::Sink)?;
        if let Err(e) = block(|| job.publisher.as_ref().expect("just made").begin()) {
            // e.g. an abort that timed out while the broker was away is still pending in
            // librdkafka, and every later call would conflict with it: start afresh
            tracing::warn!(report = %job.report, error = %e, "cannot begin a window; the producer will be recreated");
            job.publisher = None;
            return Err(Failure::Sink(e));
        }
        crate::fault::crash_point("after-begin");
        let request = request(cfg, job.report, &window);
        let required = job.spec.required_columns();
        // every wait in there (pacing, backoff, Retry-After, a slow answer) ends on a signal
        let mut shutdown = self.inner.shutdown.clone();
        let rows = tokio::select! {
            biased;
            _ = shutdown.wait_for(|v| *v) => return Err(Failure::Shutdown),
            rows = self.inner.gladly.report_with_columns(&request, &required) => rows,
        }
        .map_err(Failure::Gladly)?;
        self.schema_for(job, &rows.header())
            .await
            .map_err(Failure::Registry)?;
        let mut tx = WindowTx {
            publisher: job.publisher.as_ref().expect("just made"),
            report: job.report,
            topic: &job.spec.topic,
            dead_letter_topic: cfg.topics.dead_letter_topic(),
            dead_letter_id: self.inner.dead_letter_id,
            published: (cfg.pipeline.publish == PublishMode::Changes).then_some(&job.published),
            pending: Pending::default(),
            headers: window_headers.clone(),
            meta,
            summary: Summary::default(),
        };
        let ended = self
            .inner
            .conversations
            .as_ref()
            .filter(|_| conversations && job.spec.feeds_conversations())
            .map(|_| EndedConversations::default());
        let (chunks_tx, chunks) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let reader = AbortOnDrop(tokio::spawn(read_window(
            rows,
            job.converter.window(meta),
            ended,
            cfg.pipeline.row_cap,
            chunks_tx,
        )));
        let done = match self.publish_rows(&mut tx, chunks, reader).await? {
            RowsEnd::Capped => false,
            RowsEnd::Complete(None) => true,
            RowsEnd::Complete(Some(ended)) => self.publish_conversations(&mut tx, &ended).await?,
        };
        let attempt = if done {
            Attempt::Done(tx.summary)
        } else {
            Attempt::Capped(tx.summary)
        };
        Ok((attempt, window_headers, tx.pending))
    }

    /// The headers every record of the window carries.
    fn window_headers(
        &self,
        report: Report,
        window: &Window,
        fetched_at: chrono::DateTime<Utc>,
    ) -> OwnedHeaders {
        let (wstart, wend) = window.bounds_text();
        let fetched = fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        headers([
            ("gladly.report", report.name()),
            ("gladly.window.start", wstart.as_str()),
            ("gladly.window.end", wend.as_str()),
            ("gladly.fetched_at", fetched.as_str()),
            ("gladly.run_id", self.run_id()),
            ("gladly.service_version", VERSION),
        ])
    }

    /// Publishes what the window's reader sends until it ends. Reading and converting run in
    /// their own task, publishing in this one: on two cores the CSV parser and the Avro
    /// encoder keep pace with librdkafka instead of taking turns with it.
    async fn publish_rows(
        &self,
        tx: &mut WindowTx<'_>,
        mut chunks: tokio::sync::mpsc::Receiver<Chunk>,
        mut reader: AbortOnDrop<()>,
    ) -> Result<RowsEnd, Failure> {
        let mut shutdown = self.inner.shutdown.clone();
        loop {
            let chunk = tokio::select! {
                biased;
                _ = shutdown.wait_for(|v| *v) => return Err(Failure::Shutdown),
                chunk = chunks.recv() => chunk,
            };
            match chunk {
                Some(Chunk::Outputs { rows, mut out }) => {
                    tx.summary.rows += rows;
                    block(|| tx.emit(&mut out)).map_err(Failure::Sink)?;
                }
                Some(Chunk::End { capped: true, .. }) => return Ok(RowsEnd::Capped),
                Some(Chunk::End { ended, .. }) => return Ok(RowsEnd::Complete(ended)),
                Some(Chunk::Failed(e)) => return Err(Failure::Gladly(e)),
                // the reader ends with End or Failed: without either, it panicked
                None => {
                    let why = match (&mut reader.0).await {
                        Err(e) => e.to_string(),
                        Ok(()) => "it closed its channel without ending".to_string(),
                    };
                    return Err(Failure::ReaderPanicked(why));
                }
            }
        }
    }

    /// GETs the conversations of the contacts that ended in the window into its transaction.
    /// False when there are too many for one transaction: the window is split like a capped
    /// one.
    async fn publish_conversations(
        &self,
        tx: &mut WindowTx<'_>,
        ended: &EndedConversations,
    ) -> Result<bool, Failure> {
        let Some(source) = &self.inner.conversations else {
            return Ok(true);
        };
        if !source.fits(ended.len()) {
            tracing::warn!(conversations = ended.len(), "too many conversations to fetch within one transaction (gladly.requests_per_second x kafka.transaction_timeout_secs / 2)");
            return Ok(false);
        }
        let mut shutdown = self.inner.shutdown.clone();
        let published = tokio::select! {
            biased;
            _ = shutdown.wait_for(|v| *v) => return Err(Failure::Shutdown),
            r = source.publish(ended, tx.publisher, tx.meta) => r,
        };
        let c = published.map_err(|e| match e {
            ConversationFailure::Gladly { source, .. } => Failure::Gladly(source),
            ConversationFailure::Sink(e) => Failure::Sink(e),
        })?;
        tracing::info!(
            conversations = c.fetched,
            records = c.records,
            tombstones = c.tombstones,
            dead_letters = c.dead_letters,
            "conversations fetched into the window"
        );
        tx.summary.conversations = c;
        Ok(true)
    }
}

/// How a window's rows ended.
enum RowsEnd {
    /// At the row cap: the rest is unread, the window must be split.
    Capped,
    /// The whole body, with the conversations of the contacts that ended in the window.
    Complete(Option<EndedConversations>),
}
