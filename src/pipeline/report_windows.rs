//! The report windows source: a report job's windows, each written into its own transaction
//! (records, tombstones, dead letters, and for a live work-session window the conversations
//! of its ended contacts) with the job's checkpoint or a re-read tier's progress as its cursor.

use std::collections::VecDeque;
use std::time::Instant;

use chrono::Utc;
use rdkafka::message::OwnedHeaders;

use super::checkpoint::{checkpoint_key, Checkpoint, Scope};
use super::context::{Context, DeadLetterTopic};
use super::conversations::{ConversationSource, EndedInWindow};
use super::engine::Transaction;
use super::error::Failure;
use super::internal_events::WindowCommitted;
use super::job::ReportJob;
use super::plan::{
    date_position, halves, live_windows, request, window_end_instant, window_start_instant,
};
use super::reader::{read_window, AbortOnDrop, Chunk, CHUNKS_IN_FLIGHT};
use super::reread::{pass_record, TierProgress};
use super::schema::schema_for;
use super::source::{send_dead_letter, Cursored, Source, Written};
use super::summary::{Summary, DEAD_LETTER_EXAMPLES};
use super::window::{Position, Window};
use crate::config::PublishMode;
use crate::kafka::{headers, Outgoing, OwnedOutgoing};
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

/// A report job's windows, as a source.
pub(super) struct ReportWindows<'a> {
    pub(super) ctx: &'a Context,
    pub(super) job: &'a mut ReportJob,
    pub(super) cursor: Cursor<'a>,
    /// `[conversations]`, fed by a live work-session window's ended contacts.
    pub(super) conversations: Option<&'a ConversationSource>,
}

/// A written window, until it is committed.
pub(super) struct WindowDone {
    summary: Summary,
    /// The records sent, for the changelog memory once committed.
    pending: Pending,
    /// The window's cursor record.
    checkpoint: Checkpoint,
    headers: OwnedHeaders,
    started: Instant,
}

impl Source for ReportWindows<'_> {
    type Unit = Window;
    type Done = WindowDone;

    fn label(&self) -> &str {
        self.job.report.name()
    }

    /// Requests the window, streams its converted rows into `tx` (a reader task parses and
    /// converts while this one publishes), then its conversations, and leaves the checkpoint
    /// for the commit.
    async fn write(
        &mut self,
        window: &Window,
        tx: &mut Transaction,
    ) -> Result<Written<WindowDone>, Failure> {
        let started = Instant::now();
        let (ctx, job) = (self.ctx, &mut *self.job);
        let cfg = &ctx.config;
        let fetched_at = ctx.clock.now();
        let meta = WindowMeta {
            window_start: window_start_instant(window, cfg, job.report),
            window_end: window_end_instant(window, cfg, job.report),
            fetched_at,
        };
        let window_headers = window_headers(ctx, job.report, window, fetched_at);
        let request = request(cfg, job.report, window);
        let required = job.spec.required_columns();
        let rows = ctx
            .gladly
            .report_with_columns(&request, &required)
            .await
            .map_err(Failure::Gladly)?;
        schema_for(&ctx.registry, job, &rows.header())
            .await
            .map_err(Failure::Registry)?;
        let ended = self
            .conversations
            .filter(|_| !self.cursor.is_pass() && job.spec.feeds_conversations())
            .map(|_| EndedConversations::default());
        let (chunks_tx, chunks) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let reader = AbortOnDrop(tokio::spawn(read_window(
            rows,
            job.converter.window(meta),
            ended,
            cfg.pipeline.row_cap,
            chunks_tx,
        )));
        let mut out = WindowOut {
            report: job.report,
            topic: &job.spec.topic,
            dead_letters: &ctx.dead_letters,
            published: (cfg.pipeline.publish == PublishMode::Changes).then_some(&job.published),
            pending: Pending::default(),
            headers: window_headers.clone(),
            meta,
            summary: Summary::default(),
        };
        match out.publish_rows(tx, chunks, reader).await? {
            RowsEnd::Capped => {
                return Ok(Written::TooBig {
                    rows: out.summary.rows,
                })
            }
            RowsEnd::Complete(None) => {}
            RowsEnd::Complete(Some(ended)) => {
                let mut source = self.conversations.expect("ended only with conversations");
                let unit = EndedInWindow { ended, meta };
                match source.write(&unit, tx).await? {
                    Written::Complete(c) => out.summary.conversations = c,
                    Written::TooBig { .. } => {
                        return Ok(Written::TooBig {
                            rows: out.summary.rows,
                        })
                    }
                }
            }
        }
        let (summary, pending) = (out.summary, out.pending);
        let checkpoint = self.checkpoint(window, summary.rows);
        Ok(Written::Complete(WindowDone {
            summary,
            pending,
            checkpoint,
            headers: window_headers,
            started,
        }))
    }
}

impl Cursored for ReportWindows<'_> {
    fn kind(&self) -> &'static str {
        "window"
    }

    /// From the job's checkpoint (less the lookback, or from `start`) to now.
    fn plan(&self) -> Vec<Window> {
        let job = &*self.job;
        live_windows(
            &self.ctx.config,
            job.report,
            job.position,
            self.ctx.clock.now(),
        )
    }

    /// A `window` span (report, window, rows, duration_secs).
    fn span(&self, window: &Window) -> tracing::Span {
        tracing::info_span!(
            "window",
            report = %self.job.report,
            window = %window,
            rows = tracing::field::Empty,
            duration_secs = tracing::field::Empty,
        )
    }

    fn cursor(&self, _window: &Window, done: &WindowDone) -> OwnedOutgoing {
        let c = &done.checkpoint;
        OwnedOutgoing {
            topic: self.ctx.config.topics.checkpoint_topic(),
            key: checkpoint_key(c.report, &c.scope).into_bytes(),
            value: c.to_bytes(),
            // wall-clock time: brokers refuse timestamps far in the future
            // (log.message.timestamp.after.max.ms), whatever clock the pipeline runs on
            timestamp_ms: Utc::now().timestamp_millis(),
            headers: done.headers.clone(),
        }
    }

    fn committed(&mut self, window: &Window, done: WindowDone) -> Summary {
        let remembered_from = self.remembered_from(window);
        let job = &mut *self.job;
        match &mut self.cursor {
            Cursor::Job => job.position = Some(done.checkpoint.position),
            Cursor::Pass { progress, .. } => {
                **progress = TierProgress::from_record(&done.checkpoint)
            }
        }
        job.published.apply(done.pending);
        job.published.forget_before(remembered_from);
        let (tier, covered_until) = match (&self.cursor, &job.scope, job.position) {
            (Cursor::Pass { tier, .. }, _, _) => (Some(*tier), None),
            (Cursor::Job, Scope::Run, Some(p)) => (None, Some(p.covered_until())),
            _ => (None, None),
        };
        WindowCommitted {
            report: job.report.name(),
            tier,
            covered_until,
            summary: &done.summary,
            took: done.started.elapsed(),
            dead_letter_topic: &self.ctx.config.topics.dead_letter_topic(),
            metrics: &self.ctx.metrics,
        }
        .emit();
        Summary {
            windows: 1,
            ..done.summary
        }
    }

    /// Queues the halves of a capped window in its place (its aborted attempt published
    /// nothing: the halves publish its rows). A work-session split also cuts the rest of the
    /// queue to the half's size, rather than each window being fetched to the cap and thrown
    /// away (a request of Gladly's scarce budget).
    fn split(&mut self, window: &Window, queue: &mut VecDeque<Window>) -> bool {
        let (cfg, report) = (&self.ctx.config, self.job.report);
        let Some((a, b)) = halves(cfg, report, window, self.job.buckets) else {
            return false;
        };
        if let (Window::Instants(half), None) = (a, cfg.date_settings(report)) {
            // the rest of this cycle's work-session windows get the half's size too
            let max = half.end() - half.start();
            *queue = queue.iter().flat_map(|w| w.cut_to(max)).collect();
        }
        queue.push_front(b);
        queue.push_front(a);
        true
    }
}

impl ReportWindows<'_> {
    /// The record `window`'s transaction ends with: the job's checkpoint at the window's end
    /// (never behind where it stands), or the re-read tier's progress.
    fn checkpoint(&self, window: &Window, rows: u64) -> Checkpoint {
        let job = &*self.job;
        let reached = self.reached(window);
        let position = match job.position {
            Some(p) if p > reached => p,
            _ => reached,
        };
        let (wstart, wend) = window.bounds_text();
        let base = Checkpoint {
            report: job.report,
            scope: job.scope.clone(),
            position,
            updated_at: self.ctx.clock.now(),
            run_id: self.ctx.run_id.clone(),
            service_version: VERSION.to_string(),
            window: Some((wstart, wend)),
            rows,
            complete: false,
            pass: None,
        };
        match &self.cursor {
            Cursor::Job => base,
            Cursor::Pass { tier, progress } => {
                let pass = progress.open.as_ref().expect("a pass under way");
                pass_record(base, tier, progress, pass, reached)
            }
        }
    }

    /// Where a cursor stands once `window` is published: its end, or for a date report, the
    /// last whole day it completes (a time-precise piece of a day completes none, but its last).
    fn reached(&self, window: &Window) -> Position {
        let (cfg, report) = (&self.ctx.config, self.job.report);
        match cfg.date_settings(report) {
            Some(_) => date_position(cfg, report, window),
            None => window.end_position(),
        }
    }

    /// The earliest anchor a later window of the job can re-read, after `window` (epoch ms):
    /// older keys are forgotten. A poll re-reads its report's re-read horizon; a backfill
    /// moves forward, re-reading only rows at the bound it shares with the previous window.
    fn remembered_from(&self, window: &Window) -> i64 {
        let (cfg, report) = (&self.ctx.config, self.job.report);
        let from = match self.job.scope {
            Scope::Backfill { .. } => window_start_instant(window, cfg, report),
            Scope::Run | Scope::Reread { .. } => self.ctx.clock.now() - cfg.reread_horizon(report),
        };
        from.timestamp_millis()
    }
}

/// The headers every record of the window carries.
fn window_headers(
    ctx: &Context,
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
        ("gladly.run_id", ctx.run_id.as_str()),
        ("gladly.service_version", VERSION),
    ])
}

/// How a window's rows ended.
enum RowsEnd {
    /// At the row cap: the rest is unread, the window must be split.
    Capped,
    /// The whole body, with the conversations of the contacts that ended in the window.
    Complete(Option<EndedConversations>),
}

/// Where a window's records, tombstones and dead letters go, with the headers every record of
/// the window carries, and what was sent so far.
struct WindowOut<'a> {
    report: Report,
    topic: &'a str,
    /// What was last published per key; `None` publishes every record
    /// (`pipeline.publish = "every-read"`).
    published: Option<&'a Published>,
    /// The records sent, for `published` once the window commits.
    pending: Pending,
    dead_letters: &'a DeadLetterTopic,
    headers: OwnedHeaders,
    meta: WindowMeta,
    summary: Summary,
}

impl WindowOut<'_> {
    /// Publishes what the window's reader sends until it ends. Reading and converting run in
    /// their own task, publishing in this one: on two cores the CSV parser and the Avro
    /// encoder keep pace with librdkafka instead of taking turns with it.
    async fn publish_rows(
        &mut self,
        tx: &mut Transaction,
        mut chunks: tokio::sync::mpsc::Receiver<Chunk>,
        mut reader: AbortOnDrop<()>,
    ) -> Result<RowsEnd, Failure> {
        loop {
            match chunks.recv().await {
                Some(Chunk::Outputs { rows, mut out }) => {
                    self.summary.rows += rows;
                    self.emit(tx, &mut out).await.map_err(Failure::Sink)?;
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

    /// Sends `out`'s records and dead letters (draining it) into the transaction; records
    /// whose key's last record already says the same are suppressed.
    async fn emit(
        &mut self,
        tx: &mut Transaction,
        out: &mut Vec<Output>,
    ) -> Result<(), crate::kafka::SinkError> {
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
                    tx.send(Outgoing {
                        topic: self.topic,
                        key: Some(&r.key),
                        value: r.value.as_deref(),
                        timestamp_ms: r.timestamp_ms,
                        headers: &self.headers,
                    })
                    .await?;
                    self.summary.records += 1;
                    if r.value.is_none() {
                        self.summary.tombstones += 1;
                    }
                }
                Output::DeadLetter(dl) => self.dead_letter(tx, &dl).await?,
            }
        }
        Ok(())
    }

    async fn dead_letter(
        &mut self,
        tx: &mut Transaction,
        dl: &records::DeadLetter,
    ) -> Result<(), crate::kafka::SinkError> {
        send_dead_letter(
            self.dead_letters,
            tx,
            self.report.name(),
            dl,
            &self.meta,
            &self.headers,
        )
        .await?;
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
