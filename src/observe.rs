//! Observability: logs, Prometheus metrics, health.
//!
//! Logs go to stderr through `tracing`: human-readable by default, one JSON object per line
//! with `--log-format json` for log pipelines. Filter with `RUST_LOG` (default `info`). Every
//! window is a `window` span with `report`, `window`, `rows` and `duration_secs`.
//!
//! [`Metrics`] holds the counters, gauges and histograms; [`serve`] exposes them on
//! `/metrics` next to `/health/live` and `/health/ready`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::clock::SharedClock;
use crate::gladly::ClientStats;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: use human or json")),
        }
    }
}

/// Installs the global subscriber; later calls are no-ops (tests call it freely).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Buckets of window durations, in seconds: 50 ms to 10 min.
pub const WINDOW_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0,
];

/// Buckets of Gladly report request latencies, in seconds: 10 ms to 5 min (Gladly generates a
/// report before it answers; big windows take minutes).
pub const REQUEST_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// A Prometheus histogram: cumulative bucket counts, count and sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    buckets: &'static [f64],
    /// `cumulative[i]` = observations `<= buckets[i]`.
    cumulative: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    /// An empty histogram over `buckets` (upper bounds, ascending; `+Inf` is implied).
    pub fn new(buckets: &'static [f64]) -> Self {
        Histogram {
            buckets,
            cumulative: vec![0; buckets.len()],
            count: 0,
            sum: 0.0,
        }
    }

    /// Adds one observation.
    pub fn observe(&mut self, value: f64) {
        for (b, c) in self.buckets.iter().zip(self.cumulative.iter_mut()) {
            if value <= *b {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += value;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, observations <= bound)` per bucket, without `+Inf`.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.buckets
            .iter()
            .copied()
            .zip(self.cumulative.iter().copied())
    }
}

/// Renders more metric lines at scrape time.
pub type ExtraRenderer = Box<dyn Fn() -> String + Send + Sync>;

/// A metric's name and label pairs.
type SeriesKey = (&'static str, Vec<(&'static str, String)>);

fn series(name: &'static str, labels: &[(&'static str, &str)]) -> SeriesKey {
    (
        name,
        labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    )
}

/// Where a report stands for `/health/ready`.
#[derive(Debug, Clone)]
enum Health {
    /// No cycle finished yet; ready until `deadline` (the end of its first cadence).
    Starting { deadline: Instant },
    /// The last cycle succeeded and no window has failed since.
    Ok,
    /// The last cycle failed, or a window of the current one did: why.
    Failed(String),
}

#[derive(Default)]
struct MetricValues {
    counters: BTreeMap<SeriesKey, f64>,
    gauges: BTreeMap<SeriesKey, f64>,
    histograms: BTreeMap<SeriesKey, Histogram>,
    /// report -> readiness
    health: BTreeMap<String, Health>,
    /// report -> where its poll checkpoint stands (lag is computed at scrape time)
    checkpoints: BTreeMap<String, DateTime<Utc>>,
    /// The pipeline's clock ("now" for lag); the wall clock when unset.
    clock: Option<SharedClock>,
    /// The Gladly client's counters, rendered at scrape time.
    api: Option<Arc<ClientStats>>,
}

/// Every series at one instant: own values plus derived ones (lag, readiness, Gladly client).
struct Snapshot {
    counters: BTreeMap<SeriesKey, f64>,
    gauges: BTreeMap<SeriesKey, f64>,
    histograms: BTreeMap<SeriesKey, Histogram>,
}

/// The service's metrics, rendered in the Prometheus text format by [`Metrics::render`], and
/// the readiness behind `/health/ready`. Cheap to update from the hot path (one lock per
/// window, not per row).
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<MetricValues>,
    extra: Mutex<Vec<ExtraRenderer>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Name, type and help text of every metric, in exposition order.
const HELP: &[(&str, &str, &str)] = &[
    (
        "gladly_kafka_rows_fetched_total",
        "counter",
        "CSV rows read from Gladly in published windows",
    ),
    (
        "gladly_kafka_records_produced_total",
        "counter",
        "Records (tombstones included) committed to report topics",
    ),
    (
        "gladly_kafka_tombstones_total",
        "counter",
        "Tombstones committed (provisional work-session keys deleted)",
    ),
    (
        "gladly_kafka_dead_letters_total",
        "counter",
        "Rows committed to the dead-letter topic, by report and reason",
    ),
    (
        "gladly_kafka_windows_total",
        "counter",
        "Windows published with their checkpoint",
    ),
    (
        "gladly_kafka_window_failures_total",
        "counter",
        "Window attempts that failed (aborted, then retried)",
    ),
    (
        "gladly_kafka_window_splits_total",
        "counter",
        "Windows split because they reached the row cap",
    ),
    (
        "gladly_kafka_transactions_committed_total",
        "counter",
        "Windows committed (a Kafka transaction each in exactly-once mode)",
    ),
    (
        "gladly_kafka_transactions_aborted_total",
        "counter",
        "Windows aborted (failed or split), nothing of them visible to read_committed consumers",
    ),
    (
        "gladly_kafka_cycles_total",
        "counter",
        "Poll cycles of a report, by result (ok or failed)",
    ),
    (
        "gladly_kafka_window_duration_seconds",
        "histogram",
        "Time to fetch, convert and publish one window",
    ),
    (
        "gladly_kafka_window_lag_seconds",
        "gauge",
        "Now minus the report's poll checkpoint",
    ),
    (
        "gladly_kafka_checkpoint_timestamp_seconds",
        "gauge",
        "The report's poll checkpoint as Unix time",
    ),
    (
        "gladly_kafka_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the report's last successful poll cycle",
    ),
    (
        "gladly_kafka_report_ready",
        "gauge",
        "1 when the report counts as ready for /health/ready",
    ),
    (
        "gladly_kafka_backfill_windows_done",
        "gauge",
        "Windows of the running backfill that are published (resumed ones included)",
    ),
    (
        "gladly_kafka_backfill_windows_planned",
        "gauge",
        "Windows of the running backfill in all (grows when a window is split)",
    ),
    (
        "gladly_kafka_api_requests_total",
        "counter",
        "Gladly report requests sent (every attempt)",
    ),
    (
        "gladly_kafka_api_get_requests_total",
        "counter",
        "Gladly GET Conversation requests sent (every attempt)",
    ),
    (
        "gladly_kafka_api_responses_total",
        "counter",
        "Gladly responses (reports and GETs), by HTTP status",
    ),
    (
        "gladly_kafka_api_retries_total",
        "counter",
        "Gladly requests (reports and GETs) retried (429, 5xx, timeouts, resets)",
    ),
    (
        "gladly_kafka_api_rate_limited_total",
        "counter",
        "Gladly 429 (rate limit) responses",
    ),
    (
        "gladly_kafka_api_transport_errors_total",
        "counter",
        "Gladly requests that got no response (connect errors, resets, timeouts)",
    ),
    (
        "gladly_kafka_api_retry_wait_seconds_total",
        "counter",
        "Time spent waiting before Gladly retries",
    ),
    (
        "gladly_kafka_api_request_duration_seconds",
        "histogram",
        "Gladly request latency until the response headers, by request",
    ),
    (
        "gladly_kafka_conversations_fetched_total",
        "counter",
        "GET Conversation answers, by outcome (found, deleted, dead_letter)",
    ),
];

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut MetricValues) -> R) -> R {
        f(&mut self.inner.lock().expect("metrics lock"))
    }

    /// Adds `by` to a counter.
    pub fn count(&self, name: &'static str, labels: &[(&'static str, &str)], by: f64) {
        let key = series(name, labels);
        self.with(|m| *m.counters.entry(key).or_default() += by);
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        let key = series(name, labels);
        self.with(|m| m.gauges.insert(key, value));
    }

    /// Observes a duration (seconds) in a histogram with [`WINDOW_BUCKETS`].
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], secs: f64) {
        let key = series(name, labels);
        self.with(|m| {
            m.histograms
                .entry(key)
                .or_insert_with(|| Histogram::new(WINDOW_BUCKETS))
                .observe(secs)
        });
    }

    /// Uses `clock` for "now" (window lag, last success) and exports `api`'s counters.
    pub fn attach(&self, clock: SharedClock, api: Arc<ClientStats>) {
        self.with(|m| {
            m.clock = Some(clock);
            m.api = Some(api);
        });
    }

    /// The sum of a counter's series whose labels include `labels` (tests, `status`).
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        sum_matching(&self.snapshot().counters, name, labels)
    }

    /// The sum of a gauge's series whose labels include `labels`.
    pub fn gauge_value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        sum_matching(&self.snapshot().gauges, name, labels)
    }

    /// A window was published (committed with its checkpoint): its rows, records, tombstones
    /// and dead letters count now, never those of an aborted attempt.
    pub fn window_published(
        &self,
        report: crate::report::Report,
        s: &crate::pipeline::runner::Summary,
        took: std::time::Duration,
    ) {
        let l = [("report", report.name())];
        self.count("gladly_kafka_rows_fetched_total", &l, s.rows as f64);
        self.count("gladly_kafka_records_produced_total", &l, s.records as f64);
        self.count("gladly_kafka_tombstones_total", &l, s.tombstones as f64);
        self.count("gladly_kafka_windows_total", &l, 1.0);
        self.count("gladly_kafka_transactions_committed_total", &l, 1.0);
        for (reason, n) in &s.dead_letter_reasons {
            self.count(
                "gladly_kafka_dead_letters_total",
                &[("report", report.name()), ("reason", reason)],
                *n as f64,
            );
        }
        self.observe(
            "gladly_kafka_window_duration_seconds",
            &l,
            took.as_secs_f64(),
        );
    }

    /// The report's poll checkpoint stands at `position` (read at start, or just moved).
    pub fn checkpoint_moved(
        &self,
        report: crate::report::Report,
        position: crate::pipeline::window::Position,
    ) {
        self.with(|m| {
            m.checkpoints
                .insert(report.name().to_string(), position.covered_until())
        });
    }

    /// A window attempt failed and will be retried: the report is not ready until a cycle
    /// succeeds.
    pub fn window_failed(&self, report: crate::report::Report) {
        self.with(|m| {
            m.health.insert(
                report.name().to_string(),
                Health::Failed("a window of the current cycle failed; it is being retried".into()),
            )
        });
        self.count(
            "gladly_kafka_window_failures_total",
            &[("report", report.name())],
            1.0,
        );
    }

    /// A window was split at the row cap.
    pub fn window_split(&self, report: crate::report::Report) {
        self.count(
            "gladly_kafka_window_splits_total",
            &[("report", report.name())],
            1.0,
        );
    }

    /// A window's transaction was aborted.
    pub fn transaction_aborted(&self, report: crate::report::Report) {
        self.count(
            "gladly_kafka_transactions_aborted_total",
            &[("report", report.name())],
            1.0,
        );
    }

    /// `run` polls `report` every `cadence`: it counts as ready until its first cadence has
    /// passed, then only while its last cycle succeeded.
    pub fn expect_report(&self, report: crate::report::Report, cadence: std::time::Duration) {
        let deadline = Instant::now() + cadence;
        self.with(|m| {
            m.health
                .entry(report.name().to_string())
                .or_insert(Health::Starting { deadline });
        });
    }

    /// A poll cycle of `report` ended: `Ok`, or why it failed.
    pub fn cycle_done(&self, report: crate::report::Report, outcome: Result<(), String>) {
        let r = report.name();
        let result = if outcome.is_ok() { "ok" } else { "failed" };
        self.count(
            "gladly_kafka_cycles_total",
            &[("report", r), ("result", result)],
            1.0,
        );
        let now = self.now();
        self.with(|m| {
            let health = match outcome {
                Ok(()) => {
                    m.gauges.insert(
                        series(
                            "gladly_kafka_last_success_timestamp_seconds",
                            &[("report", r)],
                        ),
                        now.timestamp() as f64,
                    );
                    Health::Ok
                }
                Err(why) => Health::Failed(format!("last cycle failed: {why}")),
            };
            m.health.insert(r.to_string(), health);
        });
    }

    /// `Ok` when every report is ready at `now`, else why not (one line per report).
    pub fn readiness_at(&self, now: Instant) -> Result<(), String> {
        let problems: Vec<String> = self.with(|m| {
            m.health
                .iter()
                .filter_map(|(r, h)| health_problem(h, now).map(|p| format!("{r}: {p}")))
                .collect()
        });
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// True when every report polled by `run` succeeded in its last cycle or is still within
    /// its first cadence (and no window of a running cycle has failed).
    pub fn is_ready(&self) -> bool {
        self.readiness_at(Instant::now()).is_ok()
    }

    /// Progress of a backfill of `report`: `done` of `planned` windows published.
    pub fn backfill_progress(&self, report: crate::report::Report, done: u64, planned: u64) {
        let l = [("report", report.name())];
        self.gauge("gladly_kafka_backfill_windows_done", &l, done as f64);
        self.gauge("gladly_kafka_backfill_windows_planned", &l, planned as f64);
    }

    /// Adds a renderer whose lines are appended to every scrape.
    pub fn add_renderer(&self, r: ExtraRenderer) {
        self.extra.lock().expect("metrics lock").push(r);
    }

    /// The Prometheus text exposition of every metric, plus the extra renderers' lines.
    pub fn render(&self) -> String {
        let mut out = render_snapshot(&self.snapshot());
        for r in self.extra.lock().expect("metrics lock").iter() {
            out.push_str(&r());
        }
        out
    }

    fn now(&self) -> DateTime<Utc> {
        self.with(|m| m.clock.as_ref().map(|c| c.now()))
            .unwrap_or_else(Utc::now)
    }

    fn snapshot(&self) -> Snapshot {
        let now = self.now();
        let instant = Instant::now();
        let (mut counters, gauges, mut histograms, api) = self.with(|m| {
            let mut gauges = m.gauges.clone();
            for (r, at) in &m.checkpoints {
                let l = [("report", r.as_str())];
                gauges.insert(
                    series("gladly_kafka_checkpoint_timestamp_seconds", &l),
                    at.timestamp() as f64,
                );
                gauges.insert(
                    series("gladly_kafka_window_lag_seconds", &l),
                    (now - *at).num_seconds().max(0) as f64,
                );
            }
            for (r, h) in &m.health {
                let ready = health_problem(h, instant).is_none();
                gauges.insert(
                    series("gladly_kafka_report_ready", &[("report", r.as_str())]),
                    if ready { 1.0 } else { 0.0 },
                );
            }
            (
                m.counters.clone(),
                gauges,
                m.histograms.clone(),
                m.api.clone(),
            )
        });
        if let Some(api) = api {
            let load = |a: &std::sync::atomic::AtomicU64| {
                a.load(std::sync::atomic::Ordering::Relaxed) as f64
            };
            let mut set = |name: &'static str, labels: &[(&'static str, &str)], v: f64| {
                counters.insert(series(name, labels), v);
            };
            set("gladly_kafka_api_requests_total", &[], load(&api.requests));
            set(
                "gladly_kafka_api_get_requests_total",
                &[],
                load(&api.general_requests),
            );
            set("gladly_kafka_api_retries_total", &[], load(&api.retries));
            set(
                "gladly_kafka_api_rate_limited_total",
                &[],
                load(&api.rate_limited),
            );
            set(
                "gladly_kafka_api_transport_errors_total",
                &[],
                load(&api.transport_errors),
            );
            set(
                "gladly_kafka_api_retry_wait_seconds_total",
                &[],
                load(&api.retry_wait_ms) / 1000.0,
            );
            for (status, n) in api.responses() {
                set(
                    "gladly_kafka_api_responses_total",
                    &[("status", &status.to_string())],
                    n as f64,
                );
            }
            for (request, h) in api.latency() {
                histograms.insert(
                    series(
                        "gladly_kafka_api_request_duration_seconds",
                        &[("request", &request)],
                    ),
                    h,
                );
            }
        }
        Snapshot {
            counters,
            gauges,
            histograms,
        }
    }
}

/// The reason label of a dead letter: the text before the first `:`, at most 60 characters.
pub fn reason_label(reason: &str) -> String {
    let kind = reason.split(':').next().unwrap_or(reason).trim();
    kind.chars().take(60).collect()
}

fn health_problem(h: &Health, now: Instant) -> Option<String> {
    match h {
        Health::Ok => None,
        Health::Starting { deadline } if now < *deadline => None,
        Health::Starting { .. } => Some("no cycle finished within its first cadence".into()),
        Health::Failed(why) => Some(why.clone()),
    }
}

fn sum_matching(map: &BTreeMap<SeriesKey, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    map.iter()
        .filter(|((n, l), _)| {
            *n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, v)| *v)
        .sum()
}

fn render_labels(l: &[(&'static str, String)], le: Option<f64>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(b) = le {
        let b = if b.is_infinite() {
            "+Inf".to_string()
        } else {
            b.to_string()
        };
        parts.push(format!("le=\"{b}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn render_snapshot(s: &Snapshot) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (name, kind, help) in HELP {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        match *kind {
            "counter" | "gauge" => {
                let map = if *kind == "counter" {
                    &s.counters
                } else {
                    &s.gauges
                };
                for ((n, l), v) in map.iter().filter(|((n, _), _)| n == name) {
                    let _ = writeln!(out, "{n}{} {v}", render_labels(l, None));
                }
            }
            _ => {
                for ((n, l), h) in s.histograms.iter().filter(|((n, _), _)| n == name) {
                    for (b, c) in h.buckets() {
                        let _ = writeln!(out, "{n}_bucket{} {c}", render_labels(l, Some(b)));
                    }
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {}",
                        render_labels(l, Some(f64::INFINITY)),
                        h.count()
                    );
                    let _ = writeln!(out, "{n}_sum{} {}", render_labels(l, None), h.sum());
                    let _ = writeln!(out, "{n}_count{} {}", render_labels(l, None), h.count());
                }
            }
        }
    }
    out
}

/// A running `/metrics` + health listener; stops when dropped.
#[derive(Debug)]
pub struct ObserveServer {
    /// The bound address.
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ObserveServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `GET /metrics` (Prometheus text), `GET /health/live` (always 200 while the process
/// runs) and `GET /health/ready` (200 when [`Metrics::is_ready`], else 503 naming the reports
/// that are not and why) on `listen`. An empty `listen` disables it.
pub async fn serve(
    listen: &str,
    metrics: std::sync::Arc<Metrics>,
) -> std::io::Result<Option<ObserveServer>> {
    use axum::http::StatusCode;
    use axum::routing::get;
    if listen.trim().is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let m1 = metrics.clone();
    let m2 = metrics;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m1.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route("/health/live", get(|| async { "live" }))
        .route(
            "/health/ready",
            get(move || {
                let m = m2.clone();
                async move {
                    match m.readiness_at(Instant::now()) {
                        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready\n{why}\n"),
                        ),
                    }
                }
            }),
        );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    tracing::info!(%addr, "metrics and health on http://{addr}/metrics");
    Ok(Some(ObserveServer { addr, task }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::pipeline::runner::Summary;
    use crate::pipeline::window::Position;
    use crate::report::Report;

    #[test]
    fn histograms_are_cumulative_with_inf_count_and_sum() {
        let m = Metrics::default();
        for secs in [0.03, 0.3, 7.0, 1000.0] {
            m.observe(
                "gladly_kafka_window_duration_seconds",
                &[("report", "contacts")],
                secs,
            );
        }
        let text = m.render();
        let line = |suffix: &str| {
            let want = format!("gladly_kafka_window_duration_seconds{suffix} ");
            text.lines()
                .find(|l| l.starts_with(&want))
                .unwrap_or_else(|| panic!("no {want} in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(line("_bucket{report=\"contacts\",le=\"0.05\"}"), "1");
        assert_eq!(line("_bucket{report=\"contacts\",le=\"0.5\"}"), "2");
        assert_eq!(line("_bucket{report=\"contacts\",le=\"10\"}"), "3");
        assert_eq!(line("_bucket{report=\"contacts\",le=\"600\"}"), "3");
        assert_eq!(line("_bucket{report=\"contacts\",le=\"+Inf\"}"), "4");
        assert_eq!(line("_count{report=\"contacts\"}"), "4");
        assert_eq!(line("_sum{report=\"contacts\"}"), "1007.33");
        assert!(text.contains("# TYPE gladly_kafka_window_duration_seconds histogram"));
    }

    #[test]
    fn a_report_is_ready_during_its_first_cadence_then_only_after_a_good_cycle() {
        let m = Metrics::default();
        let start = Instant::now();
        m.expect_report(Report::WorkSessions, Duration::from_secs(300));
        assert!(m.readiness_at(start).is_ok(), "within the first cadence");
        let late = start + Duration::from_secs(301);
        let why = m.readiness_at(late).unwrap_err();
        assert!(
            why.contains("work_sessions") && why.contains("first cadence"),
            "{why}"
        );
        m.cycle_done(Report::WorkSessions, Ok(()));
        assert!(m.readiness_at(late).is_ok());

        // a failed window makes it unready at once; a good cycle makes it ready again
        m.window_failed(Report::WorkSessions);
        assert!(m.readiness_at(late).is_err());
        m.cycle_done(Report::WorkSessions, Ok(()));
        assert!(m.readiness_at(late).is_ok());

        m.cycle_done(Report::WorkSessions, Err("broker down".into()));
        let why = m.readiness_at(late).unwrap_err();
        assert!(why.contains("last cycle failed: broker down"), "{why}");

        // expecting a report again (a restarted loop) does not hide its failure
        m.expect_report(Report::WorkSessions, Duration::from_secs(300));
        assert!(m.readiness_at(late).is_err());
        assert_eq!(
            m.counter_value("gladly_kafka_cycles_total", &[("result", "ok")]),
            2.0
        );
        assert_eq!(
            m.gauge_value("gladly_kafka_report_ready", &[("report", "work_sessions")]),
            0.0
        );
    }

    #[test]
    fn every_expected_report_must_be_ready() {
        let m = Metrics::default();
        let now = Instant::now();
        m.expect_report(Report::WorkSessions, Duration::from_secs(1));
        m.expect_report(Report::Contacts, Duration::from_secs(3600));
        m.cycle_done(Report::WorkSessions, Ok(()));
        let later = now + Duration::from_secs(7200);
        let why = m.readiness_at(later).unwrap_err();
        assert!(
            why.contains("contacts") && !why.contains("work_sessions"),
            "{why}"
        );
    }

    #[test]
    fn lag_is_computed_at_scrape_time_from_the_pipeline_clock() {
        let m = Metrics::default();
        let t: DateTime<Utc> = "2024-03-14T10:00:00Z".parse().unwrap();
        let clock = ManualClock::new(t + chrono::Duration::minutes(5));
        m.attach(Arc::new(clock.clone()), Arc::new(ClientStats::default()));
        m.checkpoint_moved(Report::WorkSessions, Position::Instant(t));
        let lag = || m.gauge_value("gladly_kafka_window_lag_seconds", &[]);
        assert_eq!(lag(), 300.0);
        // nothing published for an hour: the lag grows without any window
        clock.advance(chrono::Duration::hours(1));
        assert_eq!(lag(), 3900.0);
        assert_eq!(
            m.gauge_value("gladly_kafka_checkpoint_timestamp_seconds", &[]),
            t.timestamp() as f64
        );
        m.cycle_done(Report::WorkSessions, Ok(()));
        assert_eq!(
            m.gauge_value("gladly_kafka_last_success_timestamp_seconds", &[]),
            clock.now().timestamp() as f64
        );
    }

    #[test]
    fn window_counters_and_dead_letter_reasons() {
        let m = Metrics::default();
        let s = Summary {
            windows: 1,
            rows: 10,
            records: 12,
            tombstones: 3,
            ..Summary::default()
        };
        m.window_published(Report::WorkSessions, &s, Duration::from_millis(20));
        m.window_published(Report::WorkSessions, &s, Duration::from_millis(20));
        let dl = Summary {
            dead_letter_reasons: [(reason_label("Queued At: \"soon\" is not a timestamp"), 1)]
                .into(),
            ..Summary::default()
        };
        m.window_published(Report::Contacts, &dl, Duration::ZERO);
        let text = m.render();
        for line in [
            "gladly_kafka_rows_fetched_total{report=\"work_sessions\"} 20",
            "gladly_kafka_records_produced_total{report=\"work_sessions\"} 24",
            "gladly_kafka_tombstones_total{report=\"work_sessions\"} 6",
            "gladly_kafka_transactions_committed_total{report=\"work_sessions\"} 2",
            "gladly_kafka_dead_letters_total{report=\"contacts\",reason=\"Queued At\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
    }

    #[test]
    fn every_series_has_help_and_type_and_names_follow_conventions() {
        let m = Metrics::default();
        m.attach(
            Arc::new(ManualClock::new(Utc::now())),
            Arc::new(ClientStats::default()),
        );
        m.window_published(Report::Contacts, &Summary::default(), Duration::ZERO);
        m.backfill_progress(Report::Contacts, 1, 4);
        let text = m.render();
        for (name, kind, _) in HELP {
            assert!(name.starts_with("gladly_kafka_"), "{name}");
            match *kind {
                "counter" => assert!(name.ends_with("_total"), "{name}"),
                "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
                _ => assert!(!name.ends_with("_total"), "a gauge named {name}"),
            }
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                HELP.iter().any(|(n, _, _)| *n == name || *n == base),
                "{line} has no HELP"
            );
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
