//! The poll loop: plan a report's windows, fetch each one's rows from Gladly, convert them, and
//! publish records, tombstones, dead letters and the checkpoint as one unit (a transaction in
//! exactly-once mode). `once`, `run` and `backfill` all go through [`Pipeline::publish_windows`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use tokio::sync::watch;
use tracing::Instrument;

use super::checkpoint::{checkpoint_key, read_checkpoints, Checkpoint, Scope};
use super::conversations::{
    all_topic_specs, ConversationFailure, ConversationSource, ConversationSummary,
};
use super::window::{
    cut_dates, cut_instants, plan_dates, plan_instants, Buckets, Position, Window,
};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::gladly::{self, GladlyError, ReportRequest};
use crate::kafka::admin::ensure_topics;
use crate::kafka::registry::RegistryClient;
use crate::kafka::{headers, Outgoing, Publisher, SinkError};
use crate::observe::Metrics;
use crate::records::{
    self, ConvertSettings, Converter, EndedConversations, Output, SchemaIds, WindowMeta,
};
use crate::report::Report;
use crate::VERSION;

/// Why a report stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Gladly refused in a way retrying cannot fix (credentials, permissions, bad request).
    #[error("{report}: Gladly refused the request: {source}")]
    Gladly {
        /// The report.
        report: Report,
        /// Gladly's answer.
        source: GladlyError,
    },
    /// Another instance took over the transactional id.
    #[error("{report}: {source}")]
    Fenced {
        /// The report.
        report: Report,
        /// The sink error.
        source: SinkError,
    },
    /// A window kept failing.
    #[error("{report}: window {window} failed {attempts} times; last error: {last}. The checkpoint did not move: the next cycle retries it")]
    Exhausted {
        /// The report.
        report: Report,
        /// The window.
        window: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// A single day reached the row cap: it cannot be split further.
    #[error("{report}: window {window} returned {rows} rows, the suspected row cap (pipeline.row_cap = {cap}); Gladly may have truncated it and a single day cannot be split. Raise pipeline.row_cap if your org's cap is higher")]
    CapReached {
        /// The report.
        report: Report,
        /// The window.
        window: String,
        /// Rows seen.
        rows: u64,
        /// The cap.
        cap: u64,
    },
    /// Startup failed (registry, topics, producer, checkpoints).
    #[error("{0}")]
    Setup(String),
    /// A shutdown was requested.
    #[error("shutting down")]
    Shutdown,
}

impl PipelineError {
    /// True for errors after which the whole process must stop.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            PipelineError::Fenced { .. } | PipelineError::Gladly { .. } | PipelineError::Setup(_)
        )
    }
}

/// What a set of windows produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Windows published.
    pub windows: u64,
    /// Rows fetched from Gladly.
    pub rows: u64,
    /// Records produced (tombstones included).
    pub records: u64,
    /// Tombstones produced.
    pub tombstones: u64,
    /// Dead letters produced.
    pub dead_letters: u64,
    /// Dead letters by reason label (see [`crate::observe::reason_label`]).
    pub dead_letter_reasons: BTreeMap<String, u64>,
    /// Windows split because they reached the row cap.
    pub splits: u64,
    /// Window attempts that failed and were retried.
    pub retries: u64,
    /// Conversations published with the windows (`[conversations]`).
    pub conversations: ConversationSummary,
}

impl Summary {
    fn add(&mut self, o: &Summary) {
        self.windows += o.windows;
        self.rows += o.rows;
        self.records += o.records;
        self.tombstones += o.tombstones;
        self.dead_letters += o.dead_letters;
        for (reason, n) in &o.dead_letter_reasons {
            *self.dead_letter_reasons.entry(reason.clone()).or_default() += n;
        }
        self.conversations.add(&o.conversations);
        self.splits += o.splits;
        self.retries += o.retries;
    }
}

/// The connected pipeline: Gladly client, registered schemas, topics in place.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    clock: SharedClock,
    gladly: gladly::Client,
    ids: BTreeMap<Report, SchemaIds>,
    dead_letter_id: u32,
    run_id: String,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    /// `[conversations]`, when enabled: fed by work-session windows.
    conversations: Option<ConversationSource>,
}

/// One report's publishing state: its producer (and transactional id), converter and topic.
pub struct ReportJob {
    report: Report,
    scope: Scope,
    transactional_id: String,
    publisher: Option<Publisher>,
    converter: Converter,
    topic: String,
    position: Option<Position>,
    buckets: Buckets,
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
}

enum Attempt {
    Done(Summary),
    Capped(Summary),
}

enum Failure {
    Gladly(GladlyError),
    Sink(SinkError),
    /// The producer could not be recreated (broker unreachable): retried like a sink error.
    Producer(String),
    Shutdown,
}

impl Pipeline {
    /// Connects: creates the Gladly client, registers the schemas, creates or checks topics.
    pub async fn connect(
        config: Config,
        clock: SharedClock,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> Result<Pipeline, PipelineError> {
        let gladly = gladly::Client::new(&config.gladly)
            .map_err(|e| PipelineError::Setup(format!("Gladly client: {e}")))?;
        metrics.attach(clock.clone(), gladly.stats());
        let registry = RegistryClient::new(&config.registry)
            .map_err(|e| PipelineError::Setup(format!("schema registry: {e}")))?;
        let reports = config.enabled_reports();
        let mut ids = BTreeMap::new();
        for r in &reports {
            let topic = config.topics.report_topic(*r);
            let got = registry
                .register_report(&topic, *r)
                .await
                .map_err(|e| PipelineError::Setup(format!("schema registry: {e}")))?;
            ids.insert(*r, got);
        }
        let dl_subject = format!("{}-value", config.topics.dead_letter_topic());
        let dead_letter_id = registry
            .register(&dl_subject, records::schemas::dead_letter_schema())
            .await
            .map_err(|e| PipelineError::Setup(format!("schema registry: {e}")))?;
        ensure_topics(
            &config.kafka,
            config.topics.replication_factor,
            &all_topic_specs(&config),
        )
        .await
        .map_err(|e| PipelineError::Setup(e.to_string()))?;
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
        .map_err(|e| PipelineError::Setup(format!("schema registry: {e}")))?;
        Ok(Pipeline {
            inner: Arc::new(Inner {
                config,
                clock,
                gladly,
                ids,
                dead_letter_id,
                run_id,
                shutdown,
                metrics,
                conversations,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
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

    /// Opens a report's producer (fencing any older holder of its transactional id) and reads
    /// its checkpoint.
    pub async fn open(&self, report: Report, scope: Scope) -> Result<ReportJob, PipelineError> {
        let cfg = &self.inner.config;
        let suffix = match scope {
            Scope::Run => String::new(),
            Scope::Backfill { .. } => ".backfill".into(),
        };
        let transactional_id = format!("{}.{}{suffix}", cfg.transactional_id_prefix(), report);
        let publisher = new_publisher(cfg, &transactional_id, report).await?;
        let checkpoints = read_all_checkpoints(cfg).await?;
        let position = checkpoints
            .get(&checkpoint_key(report, &scope))
            .map(|c| c.position);
        if let (Scope::Run, Some(p)) = (&scope, position) {
            self.inner.metrics.checkpoint_moved(report, p);
        }
        let settings = ConvertSettings {
            timezone: cfg.report_timezone(report),
            aggregation_level: cfg.reports.agent_summary.aggregation_level(report),
        };
        let ids = *self.inner.ids.get(&report).ok_or_else(|| {
            PipelineError::Setup(format!(
                "report {report} is not enabled in [reports.{report}]"
            ))
        })?;
        Ok(ReportJob {
            report,
            scope,
            transactional_id,
            publisher: Some(publisher),
            converter: Converter::new(report, settings, ids),
            topic: cfg.topics.report_topic(report),
            position,
            buckets: buckets(cfg, report),
        })
    }

    /// The windows one poll of `job` covers now.
    pub fn plan(&self, job: &ReportJob) -> Vec<Window> {
        let cfg = &self.inner.config;
        let now = self.inner.clock.now();
        match job.report {
            Report::WorkSessions => {
                let ws = &cfg.reports.work_sessions;
                let checkpoint = match job.position {
                    Some(Position::Instant(t)) => Some(t),
                    _ => None,
                };
                let first = ws.start.unwrap_or(now - chrono::Duration::hours(24));
                plan_instants(
                    checkpoint,
                    first,
                    now,
                    chrono::Duration::minutes(ws.lookback_minutes as i64),
                    chrono::Duration::minutes(ws.max_window_minutes as i64),
                )
                .into_iter()
                .map(Window::Instants)
                .collect()
            }
            r => {
                let s = cfg.date_settings(r);
                let today = now.with_timezone(&cfg.report_timezone(r)).date_naive();
                let checkpoint = match job.position {
                    Some(Position::Date(d)) => Some(d),
                    _ => None,
                };
                let first = s
                    .start
                    .unwrap_or(today - chrono::Duration::days(i64::from(s.horizon_days)));
                plan_dates(
                    checkpoint,
                    first,
                    today,
                    s.horizon_days,
                    s.max_window_days,
                    buckets(cfg, r),
                )
                .into_iter()
                .map(Window::Dates)
                .collect()
            }
        }
    }

    /// The windows of a backfill over `[from, to]` (dates inclusive, or instants).
    pub fn plan_backfill(
        &self,
        report: Report,
        from: BackfillBound,
        to: BackfillBound,
    ) -> Vec<Window> {
        let cfg = &self.inner.config;
        match report {
            Report::WorkSessions => {
                let max =
                    chrono::Duration::minutes(cfg.reports.work_sessions.max_window_minutes as i64);
                cut_instants(from.start_instant(), to.end_instant(), max)
                    .into_iter()
                    .map(Window::Instants)
                    .collect()
            }
            r => {
                let s = cfg.date_settings(r);
                cut_dates(from.date(), to.date(), s.max_window_days, buckets(cfg, r))
                    .into_iter()
                    .map(Window::Dates)
                    .collect()
            }
        }
    }

    /// One poll of a report: plan and publish.
    pub async fn poll(&self, job: &mut ReportJob) -> Result<Summary, PipelineError> {
        let windows = self.plan(job);
        self.publish_windows(job, windows, None).await
    }

    /// Publishes `windows` in order, each with its checkpoint; splits capped windows; retries
    /// failed ones with backoff. Stops at the first window that cannot be published.
    pub async fn publish_windows(
        &self,
        job: &mut ReportJob,
        windows: Vec<Window>,
        mut progress: Option<&mut Progress>,
    ) -> Result<Summary, PipelineError> {
        let cap = self.inner.config.pipeline.row_cap;
        let attempts = self.inner.config.pipeline.window_attempts.max(1);
        let mut queue: VecDeque<Window> = windows.into();
        let mut total = Summary::default();
        while let Some(window) = queue.pop_front() {
            if *self.inner.shutdown.borrow() {
                return Err(PipelineError::Shutdown);
            }
            let mut last = String::new();
            let mut done = false;
            for attempt in 1..=attempts {
                match self.try_window(job, window).await {
                    Ok(Attempt::Done(s)) => {
                        total.add(&s);
                        if let Some(p) = progress.as_deref_mut() {
                            p.window_done(s.rows);
                            self.inner
                                .metrics
                                .backfill_progress(job.report, p.done(), p.planned());
                        }
                        done = true;
                        break;
                    }
                    Ok(Attempt::Capped(s)) => {
                        // the attempt was aborted: its rows are published by the halves, so
                        // only the split counts here
                        total.splits += 1;
                        match window.halves(job.buckets) {
                            Some((a, b)) => {
                                tracing::warn!(report = %job.report, %window, rows = s.rows, cap, "window reached the row cap (or its conversations would not fit in one transaction): splitting it in two");
                                self.inner.metrics.window_split(job.report);
                                let before = queue.len();
                                if let Window::Instants(half) = a {
                                    // the rest of this cycle's windows get the half's size
                                    // too, rather than each being fetched to the cap and
                                    // thrown away (a request of Gladly's scarce budget)
                                    let max = half.end() - half.start();
                                    queue = queue.iter().flat_map(|w| w.cut_to(max)).collect();
                                }
                                queue.push_front(b);
                                queue.push_front(a);
                                if let Some(p) = progress.as_deref_mut() {
                                    p.add_windows((queue.len() - before - 1) as u64);
                                    self.inner.metrics.backfill_progress(
                                        job.report,
                                        p.done(),
                                        p.planned(),
                                    );
                                }
                            }
                            None => {
                                return Err(PipelineError::CapReached {
                                    report: job.report,
                                    window: window.to_string(),
                                    rows: s.rows,
                                    cap,
                                })
                            }
                        }
                        done = true;
                        break;
                    }
                    Err(Failure::Shutdown) => return Err(PipelineError::Shutdown),
                    Err(Failure::Gladly(e)) if !e.is_retryable() => {
                        return Err(PipelineError::Gladly {
                            report: job.report,
                            source: e,
                        })
                    }
                    Err(Failure::Sink(e)) if e.is_fenced() => {
                        return Err(PipelineError::Fenced {
                            report: job.report,
                            source: e,
                        })
                    }
                    Err(f) => {
                        let msg = match &f {
                            Failure::Gladly(e) => e.to_string(),
                            Failure::Sink(e) => e.to_string(),
                            Failure::Producer(e) => e.clone(),
                            Failure::Shutdown => unreachable!("handled above"),
                        };
                        total.retries += 1;
                        self.inner.metrics.window_failed(job.report);
                        tracing::warn!(report = %job.report, %window, attempt, error = %msg, "window failed; retrying it");
                        if let Failure::Sink(e) = &f {
                            if e.needs_new_producer() {
                                job.publisher = None;
                            }
                        }
                        last = msg;
                        if attempt < attempts {
                            let wait =
                                backoff(attempt, self.inner.config.pipeline.retry_backoff_ms);
                            if self.sleep_or_shutdown(wait).await {
                                return Err(PipelineError::Shutdown);
                            }
                        }
                    }
                }
            }
            if !done {
                return Err(PipelineError::Exhausted {
                    report: job.report,
                    window: window.to_string(),
                    attempts,
                    last,
                });
            }
        }
        Ok(total)
    }

    async fn sleep_or_shutdown(&self, wait: Duration) -> bool {
        let mut rx = self.inner.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = rx.wait_for(|s| *s) => true,
        }
    }

    /// One attempt at a window, inside a `window` span (report, window, rows, duration_secs).
    async fn try_window(&self, job: &mut ReportJob, window: Window) -> Result<Attempt, Failure> {
        let span = tracing::info_span!(
            "window",
            report = %job.report,
            window = %window,
            rows = tracing::field::Empty,
            duration_secs = tracing::field::Empty,
        );
        self.try_window_in_span(job, window).instrument(span).await
    }

    async fn try_window_in_span(
        &self,
        job: &mut ReportJob,
        window: Window,
    ) -> Result<Attempt, Failure> {
        let inner = &self.inner;
        let cfg = &inner.config;
        if job.publisher.is_none() {
            let p = new_publisher(cfg, &job.transactional_id, job.report)
                .await
                .map_err(|e| match e {
                    PipelineError::Fenced { source, .. } => Failure::Sink(source),
                    other => Failure::Producer(other.to_string()),
                })?;
            job.publisher = Some(p);
        }
        let publisher = job.publisher.as_ref().expect("just created");
        let fetched_at = inner.clock.now();
        let (wstart, wend) = window.bounds_text();
        let fetched_text = fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let report_name = job.report.name();
        let window_headers = headers([
            ("gladly.report", report_name),
            ("gladly.window.start", wstart.as_str()),
            ("gladly.window.end", wend.as_str()),
            ("gladly.fetched_at", fetched_text.as_str()),
            ("gladly.run_id", inner.run_id.as_str()),
            ("gladly.service_version", VERSION),
        ]);
        let meta = WindowMeta {
            window_start: window_start_instant(&window, cfg, job.report),
            window_end: window_end_instant(&window, cfg, job.report),
            fetched_at,
        };
        let request = self.request(job.report, &window);
        let started = Instant::now();
        if let Err(e) = block(|| publisher.begin()) {
            // e.g. an abort that timed out while the broker was away is still pending in
            // librdkafka, and every later call would conflict with it: start afresh
            tracing::warn!(report = %job.report, error = %e, "cannot begin a window; the producer will be recreated");
            job.publisher = None;
            return Err(Failure::Sink(e));
        }
        let outcome = self
            .stream_window(job, publisher, &request, &window_headers, meta)
            .await;
        let summary = match outcome {
            Ok((s, capped)) if capped => {
                abort_window(job);
                inner.metrics.transaction_aborted(job.report);
                tracing::Span::current().record("rows", s.rows);
                return Ok(Attempt::Capped(s));
            }
            Ok((s, _)) => s,
            Err(f) => {
                abort_window(job);
                inner.metrics.transaction_aborted(job.report);
                return Err(f);
            }
        };
        let new_position = match job.position {
            Some(p) if p > window.end_position() => p,
            _ => window.end_position(),
        };
        let checkpoint = Checkpoint {
            report: job.report,
            scope: job.scope.clone(),
            position: new_position,
            updated_at: inner.clock.now(),
            run_id: inner.run_id.clone(),
            service_version: VERSION.to_string(),
            window: Some((wstart.clone(), wend.clone())),
            rows: summary.rows,
            complete: false,
        };
        let key = checkpoint_key(job.report, &job.scope);
        let value = checkpoint.to_bytes();
        let ckpt_topic = cfg.topics.checkpoint_topic();
        let result = block(|| {
            publisher.finish(Outgoing {
                topic: &ckpt_topic,
                key: Some(key.as_bytes()),
                value: Some(&value),
                // wall-clock time: brokers refuse timestamps far in the future
                // (log.message.timestamp.after.max.ms), whatever clock the pipeline runs on
                timestamp_ms: Utc::now().timestamp_millis(),
                headers: &window_headers,
            })
        });
        if let Err(e) = result {
            abort_window(job);
            inner.metrics.transaction_aborted(job.report);
            return Err(Failure::Sink(e));
        }
        job.position = Some(new_position);
        let took = started.elapsed();
        inner.metrics.window_published(job.report, &summary, took);
        summary.conversations.count_committed(&inner.metrics);
        if job.scope == Scope::Run {
            inner.metrics.checkpoint_moved(job.report, new_position);
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
        Ok(Attempt::Done(Summary {
            windows: 1,
            ..summary
        }))
    }

    /// Streams one window's rows into the open transaction. Returns the summary and whether the
    /// row cap was reached (the caller aborts and splits).
    async fn stream_window(
        &self,
        job: &ReportJob,
        publisher: &Publisher,
        request: &ReportRequest,
        window_headers: &rdkafka::message::OwnedHeaders,
        meta: WindowMeta,
    ) -> Result<(Summary, bool), Failure> {
        let inner = &self.inner;
        let dl_topic = inner.config.topics.dead_letter_topic();
        let rows = inner
            .gladly
            .report(request)
            .await
            .map_err(Failure::Gladly)?;
        let ended = inner
            .conversations
            .as_ref()
            .filter(|_| job.report == Report::WorkSessions)
            .map(|_| EndedConversations::default());
        // reading and converting run in their own task, publishing in this one: on two cores
        // the CSV parser and the Avro encoder keep pace with librdkafka instead of taking
        // turns with it
        let (tx, mut rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let reader = AbortOnDrop(tokio::spawn(read_window(
            rows,
            job.converter.window(meta),
            ended,
            inner.config.pipeline.row_cap,
            tx,
        )));
        let mut s = Summary::default();
        let mut shutdown = inner.shutdown.clone();
        let (capped, ended) = loop {
            let chunk = tokio::select! {
                biased;
                _ = shutdown.wait_for(|v| *v) => return Err(Failure::Shutdown),
                chunk = rx.recv() => chunk,
            };
            match chunk {
                Some(Chunk::Outputs { rows, mut out }) => {
                    s.rows += rows;
                    block(|| {
                        self.emit(
                            job,
                            publisher,
                            &mut out,
                            &mut s,
                            window_headers,
                            &meta,
                            &dl_topic,
                        )
                    })
                    .map_err(Failure::Sink)?;
                }
                Some(Chunk::End { capped, ended }) => break (capped, ended),
                Some(Chunk::Failed(e)) => return Err(Failure::Gladly(e)),
                None => {
                    // the reader ends with End or Failed; without either it panicked
                    let e = match reader.0.is_finished() {
                        true => "the window's reader stopped unexpectedly",
                        false => "the window's reader closed its channel",
                    };
                    return Err(Failure::Producer(e.to_string()));
                }
            }
        };
        if capped {
            return Ok((s, true));
        }
        if let (Some(source), Some(ended)) = (&inner.conversations, &ended) {
            if !source.fits(ended.len()) {
                tracing::warn!(conversations = ended.len(), "too many conversations to fetch within one transaction (gladly.requests_per_second x kafka.transaction_timeout_secs / 2)");
                return Ok((s, true));
            }
            let published = tokio::select! {
                biased;
                _ = shutdown.wait_for(|v| *v) => return Err(Failure::Shutdown),
                r = source.publish(ended, publisher, meta) => r,
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
            s.conversations = c;
        }
        Ok((s, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        job: &ReportJob,
        publisher: &Publisher,
        out: &mut Vec<Output>,
        s: &mut Summary,
        window_headers: &rdkafka::message::OwnedHeaders,
        meta: &WindowMeta,
        dl_topic: &str,
    ) -> Result<(), SinkError> {
        for o in out.drain(..) {
            match o {
                Output::Record(r) => {
                    publisher.send(Outgoing {
                        topic: &job.topic,
                        key: Some(&r.key),
                        value: r.value.as_deref(),
                        timestamp_ms: r.timestamp_ms,
                        headers: window_headers,
                    })?;
                    s.records += 1;
                    if r.value.is_none() {
                        s.tombstones += 1;
                    }
                }
                Output::DeadLetter(dl) => {
                    let value = records::encode_dead_letter(
                        job.report,
                        &dl,
                        meta,
                        self.inner.dead_letter_id,
                    );
                    let line = dl.line.to_string();
                    let h = window_headers
                        .clone()
                        .insert(rdkafka::message::Header {
                            key: "gladly.error",
                            value: Some(dl.reason.as_str()),
                        })
                        .insert(rdkafka::message::Header {
                            key: "gladly.line",
                            value: Some(line.as_str()),
                        });
                    publisher.send(Outgoing {
                        topic: dl_topic,
                        key: Some(job.report.name().as_bytes()),
                        value: Some(&value),
                        // wall-clock time: the dead-letter topic's retention counts from when
                        // the row failed, whatever business time the window covers
                        timestamp_ms: Utc::now().timestamp_millis(),
                        headers: &h,
                    })?;
                    s.dead_letters += 1;
                    *s.dead_letter_reasons
                        .entry(crate::observe::reason_label(&dl.reason))
                        .or_default() += 1;
                    tracing::warn!(report = %job.report, line = dl.line, reason = %dl.reason, "row sent to the dead-letter topic");
                }
            }
        }
        Ok(())
    }

    fn request(&self, report: Report, window: &Window) -> ReportRequest {
        let cfg = &self.inner.config;
        match window {
            Window::Instants(w) => ReportRequest::WorkSessions {
                start: w.start(),
                end: w.end(),
            },
            Window::Dates(w) => {
                let s = cfg.date_settings(report);
                ReportRequest::MetricSet {
                    metric_set: s.metric_set(report),
                    start: w.start(),
                    end: w.end(),
                    timezone: s.timezone.clone(),
                    aggregation_level: s.aggregation_level(report),
                }
            }
        }
    }

    /// Writes a checkpoint outside a window (for `reset` and a finished backfill).
    pub async fn write_checkpoint(
        &self,
        job: &mut ReportJob,
        position: Position,
        complete: bool,
    ) -> Result<(), PipelineError> {
        let cfg = &self.inner.config;
        let publisher = match &job.publisher {
            Some(p) => p,
            None => {
                job.publisher = Some(new_publisher(cfg, &job.transactional_id, job.report).await?);
                job.publisher.as_ref().expect("just set")
            }
        };
        let c = Checkpoint {
            report: job.report,
            scope: job.scope.clone(),
            position,
            updated_at: self.inner.clock.now(),
            run_id: self.inner.run_id.clone(),
            service_version: VERSION.to_string(),
            window: None,
            rows: 0,
            complete,
        };
        let key = checkpoint_key(job.report, &job.scope);
        let value = c.to_bytes();
        let topic = cfg.topics.checkpoint_topic();
        let h = headers([("gladly.run_id", self.inner.run_id.as_str())]);
        let report = job.report;
        block(|| {
            publisher.begin()?;
            publisher.finish(Outgoing {
                topic: &topic,
                key: Some(key.as_bytes()),
                value: Some(&value),
                timestamp_ms: Utc::now().timestamp_millis(),
                headers: &h,
            })
        })
        .map_err(|e| sink_failure(report, e))?;
        job.position = Some(position);
        if job.scope == Scope::Run {
            self.inner.metrics.checkpoint_moved(report, position);
        }
        Ok(())
    }
}

/// A backfill bound from the command line: a date or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillBound {
    /// A calendar day (inclusive at either end).
    Date(NaiveDate),
    /// An instant.
    Instant(DateTime<Utc>),
}

impl BackfillBound {
    /// Parses `2024-03-14` or an RFC 3339 instant.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(BackfillBound::Date(d));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| BackfillBound::Instant(t.with_timezone(&Utc)))
            .map_err(|_| format!("{s:?} is neither a date (2024-03-14) nor an RFC 3339 instant (2024-03-14T10:00:00Z)"))
    }

    fn start_instant(self) -> DateTime<Utc> {
        match self {
            BackfillBound::Date(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
            BackfillBound::Instant(t) => t,
        }
    }

    fn end_instant(self) -> DateTime<Utc> {
        match self {
            BackfillBound::Date(d) => {
                BackfillBound::Date(d + chrono::Duration::days(1)).start_instant()
            }
            BackfillBound::Instant(t) => t,
        }
    }

    fn date(self) -> NaiveDate {
        match self {
            BackfillBound::Date(d) => d,
            BackfillBound::Instant(t) => t.date_naive(),
        }
    }

    /// Text for the backfill's checkpoint key.
    pub fn text(self) -> String {
        match self {
            BackfillBound::Date(d) => d.to_string(),
            BackfillBound::Instant(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// Progress of a long run of windows: a line at most every few seconds with windows done,
/// rows, rate and ETA.
#[derive(Debug)]
pub struct Progress {
    label: String,
    /// Windows this run publishes.
    total: u64,
    /// Windows published by earlier runs (a resumed backfill).
    done_before: u64,
    done: u64,
    rows: u64,
    started: Instant,
    last_line: Instant,
    every: Duration,
}

impl Progress {
    /// Progress over `total` windows.
    pub fn new(label: impl Into<String>, total: u64, every: Duration) -> Self {
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            done_before: 0,
            done: 0,
            rows: 0,
            started: now,
            last_line: now,
            every,
        }
    }

    /// Counts `n` windows as published by an earlier run (a resumed backfill).
    pub fn resumed(mut self, n: u64) -> Self {
        self.done_before = n;
        self
    }

    /// Windows published, earlier runs included.
    pub fn done(&self) -> u64 {
        self.done_before + self.done
    }

    /// Windows in all, earlier runs included (grows when a window is split).
    pub fn planned(&self) -> u64 {
        self.done_before + self.total
    }

    fn add_windows(&mut self, n: u64) {
        self.total += n;
    }

    fn window_done(&mut self, rows: u64) {
        self.done += 1;
        self.rows += rows;
        if self.last_line.elapsed() >= self.every || self.done == self.total {
            self.last_line = Instant::now();
            tracing::info!("{}", self.line());
        }
    }

    /// The progress line: `<label>: 12/720 windows (1.7%), 1234567 rows, 152300 rows/s, ETA 4m12s`
    /// (windows count earlier runs of a resumed backfill; rows and rate this run's).
    pub fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.rows as f64 / secs;
        let pct = if self.planned() == 0 {
            100.0
        } else {
            self.done() as f64 * 100.0 / self.planned() as f64
        };
        let eta = if self.done == 0 {
            "?".to_string()
        } else {
            let left = secs / self.done as f64 * (self.total.saturating_sub(self.done)) as f64;
            format_duration(Duration::from_secs_f64(left))
        };
        format!(
            "{}: {}/{} windows ({pct:.1}%), {} rows, {rate:.0} rows/s, ETA {eta}",
            self.label,
            self.done(),
            self.planned(),
            self.rows
        )
    }

    /// Rows so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Outputs handed from a window's reader to its publisher at a time.
const CHUNK_OUTPUTS: usize = 2048;
/// Chunks that may wait for the publisher: enough to keep both busy, few enough to bound memory.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What a window's reader hands its publisher.
enum Chunk {
    /// Records and dead letters of `rows` rows.
    Outputs { rows: u64, out: Vec<Output> },
    /// The body ended (`capped`: at the row cap, the rest unread), with the conversations of
    /// the contacts that ended in the window.
    End {
        capped: bool,
        ended: Option<EndedConversations>,
    },
    /// The body failed (cut, timed out): the window fails.
    Failed(GladlyError),
}

/// Aborts the task when dropped: a window that stops early (failure, shutdown) stops reading.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads a window's rows, converts them and sends the outputs in chunks, up to the row cap.
/// Rows with the wrong number of fields become dead letters; the window goes on.
async fn read_window(
    mut rows: gladly::RowStream,
    mut wc: records::WindowConverter,
    mut ended: Option<EndedConversations>,
    cap: u64,
    tx: tokio::sync::mpsc::Sender<Chunk>,
) {
    let mut out: Vec<Output> = Vec::with_capacity(CHUNK_OUTPUTS + 16);
    let (mut total, mut pending) = (0u64, 0u64);
    while let Some(item) = rows.next().await {
        match item {
            Ok(row) => {
                total += 1;
                pending += 1;
                if let Some(e) = ended.as_mut() {
                    e.push(&row);
                }
                wc.push(&row, &mut out);
            }
            Err(GladlyError::MalformedRow { line, reason, raw }) => {
                let header = rows.header();
                let raw = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, cell)| {
                        let name = header
                            .names()
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("column_{}", i + 1));
                        (name, cell)
                    })
                    .collect();
                out.push(Output::DeadLetter(records::DeadLetter {
                    line,
                    reason: format!("malformed row: {reason}"),
                    raw,
                }));
            }
            Err(e) => {
                let _ = tx.send(Chunk::Failed(e)).await;
                return;
            }
        }
        let capped = total >= cap;
        if capped || out.len() >= CHUNK_OUTPUTS {
            let chunk = Chunk::Outputs {
                rows: std::mem::take(&mut pending),
                out: std::mem::replace(&mut out, Vec::with_capacity(CHUNK_OUTPUTS + 16)),
            };
            if tx.send(chunk).await.is_err() {
                return; // the window stopped
            }
        }
        if capped {
            let _ = tx
                .send(Chunk::End {
                    capped: true,
                    ended: None,
                })
                .await;
            return;
        }
    }
    wc.finish(&mut out);
    let _ = tx.send(Chunk::Outputs { rows: pending, out }).await;
    let _ = tx
        .send(Chunk::End {
            capped: false,
            ended,
        })
        .await;
}

/// Aborts the job's open window. A producer whose abort fails (the broker is away, the
/// producer is fenced or broken) is dropped, to be recreated for the next attempt: its
/// `init_transactions` aborts whatever is left, where this one would stay stuck mid-abort.
fn abort_window(job: &mut ReportJob) {
    let Some(publisher) = job.publisher.as_ref() else {
        return;
    };
    if let Err(e) = block(|| publisher.abort()) {
        tracing::warn!(report = %job.report, error = %e, "aborting the window failed; the producer will be recreated");
        job.publisher = None;
    }
}

/// The buckets a report's date windows hold (whole days but for agent summary's levels).
fn buckets(cfg: &Config, report: Report) -> Buckets {
    match report {
        Report::WorkSessions => Buckets::Days,
        r => Buckets::from_level(cfg.date_settings(r).aggregation_level(r).as_deref()),
    }
}

/// Exponential backoff with full jitter: a random wait below `base · 2^(attempt−1)`, capped at 60 s.
fn backoff(attempt: u32, base_ms: u64) -> Duration {
    use rand::Rng;
    let cap = base_ms
        .saturating_mul(1u64 << attempt.min(16).saturating_sub(1))
        .min(60_000);
    Duration::from_millis(rand::thread_rng().gen_range(cap / 2..=cap.max(1)))
}

fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn sink_failure(report: Report, e: SinkError) -> PipelineError {
    if e.is_fenced() {
        PipelineError::Fenced { report, source: e }
    } else {
        PipelineError::Setup(format!("{report}: {e}"))
    }
}

async fn new_publisher(
    cfg: &Config,
    transactional_id: &str,
    report: Report,
) -> Result<Publisher, PipelineError> {
    let kafka = cfg.kafka.clone();
    let id = transactional_id.to_string();
    tokio::task::spawn_blocking(move || Publisher::new(&kafka, &id))
        .await
        .map_err(|e| PipelineError::Setup(format!("producer task: {e}")))?
        .map_err(|e| sink_failure(report, e))
}

async fn read_all_checkpoints(cfg: &Config) -> Result<BTreeMap<String, Checkpoint>, PipelineError> {
    let kafka = cfg.kafka.clone();
    let topic = cfg.topics.checkpoint_topic();
    tokio::task::spawn_blocking(move || read_checkpoints(&kafka, &topic, Duration::from_secs(60)))
        .await
        .map_err(|e| PipelineError::Setup(format!("checkpoint task: {e}")))?
        .map_err(|e| PipelineError::Setup(e.to_string()))
}

fn window_start_instant(w: &Window, cfg: &Config, report: Report) -> DateTime<Utc> {
    match w {
        Window::Instants(w) => w.start(),
        Window::Dates(d) => midnight(d.start(), cfg.report_timezone(report)),
    }
}

fn window_end_instant(w: &Window, cfg: &Config, report: Report) -> DateTime<Utc> {
    match w {
        Window::Instants(w) => w.end(),
        Window::Dates(d) => midnight(
            d.end() + chrono::Duration::days(1),
            cfg.report_timezone(report),
        ),
    }
}

fn midnight(d: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let naive = d.and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&naive)
        .earliest()
        .unwrap_or_else(|| naive.and_utc().with_timezone(&tz))
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_bounds_parse_dates_and_instants() {
        assert_eq!(
            BackfillBound::parse("2024-03-14").unwrap(),
            BackfillBound::Date(NaiveDate::from_ymd_opt(2024, 3, 14).unwrap())
        );
        assert!(matches!(
            BackfillBound::parse("2024-03-14T10:00:00Z").unwrap(),
            BackfillBound::Instant(_)
        ));
        let err = BackfillBound::parse("yesterday").unwrap_err();
        assert!(err.contains("2024-03-14"), "{err}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt, 100);
            assert!(d <= Duration::from_millis(60_000));
        }
        assert!(backoff(1, 100) <= Duration::from_millis(100));
    }

    #[test]
    fn progress_line_has_rate_and_eta() {
        let mut p = Progress::new("backfill work_sessions", 4, Duration::from_secs(3600));
        p.window_done(1000);
        let line = p.line();
        assert!(
            line.starts_with("backfill work_sessions: 1/4 windows (25.0%), 1000 rows"),
            "{line}"
        );
        assert!(line.contains("rows/s") && line.contains("ETA"), "{line}");
    }

    #[test]
    fn a_resumed_backfill_counts_earlier_windows() {
        let mut p = Progress::new("backfill contacts", 2, Duration::from_secs(3600)).resumed(6);
        assert_eq!((p.done(), p.planned()), (6, 8));
        p.window_done(10);
        p.add_windows(1);
        assert_eq!((p.done(), p.planned()), (7, 9));
        assert!(p.line().contains(": 7/9 windows"), "{}", p.line());
    }
}
