//! Logging setup (and, later, metrics and health endpoints).
//!
//! Logs go to stderr through `tracing`: human-readable by default, one JSON object per line
//! with `--log-format json` for log pipelines. Filter with `RUST_LOG` (default `info`).

use std::str::FromStr;

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

/// The service's counters and gauges, rendered in the Prometheus text format by
/// [`Metrics::render`]. Cheap to update from the hot path (one lock per window, not per row).
#[derive(Default)]
pub struct Metrics {
    inner: std::sync::Mutex<MetricValues>,
    extra: std::sync::Mutex<Vec<ExtraRenderer>>,
}

/// Renders more metric lines at scrape time (e.g. the Gladly client's counters).
pub type ExtraRenderer = Box<dyn Fn() -> String + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A metric's name and label pairs.
type SeriesKey = (&'static str, Vec<(&'static str, String)>);

#[derive(Debug, Default)]
struct MetricValues {
    /// (name, labels) -> value
    counters: std::collections::BTreeMap<SeriesKey, f64>,
    gauges: std::collections::BTreeMap<SeriesKey, f64>,
    histograms: std::collections::BTreeMap<SeriesKey, Histogram>,
    /// report -> (last cycle ok, when the report's loop started)
    ready: std::collections::BTreeMap<String, bool>,
}

/// Window durations in seconds: buckets from 50 ms to 10 min.
const DURATION_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Help text of each metric.
const HELP: &[(&str, &str, &str)] = &[
    (
        "gladly_kafka_rows_fetched_total",
        "counter",
        "CSV rows read from Gladly reports",
    ),
    (
        "gladly_kafka_records_produced_total",
        "counter",
        "Records (tombstones included) published to report topics",
    ),
    (
        "gladly_kafka_tombstones_total",
        "counter",
        "Tombstones published (provisional work-session keys deleted)",
    ),
    (
        "gladly_kafka_dead_letters_total",
        "counter",
        "Rows sent to the dead-letter topic, by report and reason",
    ),
    (
        "gladly_kafka_windows_total",
        "counter",
        "Windows published with their checkpoint",
    ),
    (
        "gladly_kafka_window_failures_total",
        "counter",
        "Window attempts that failed and were retried",
    ),
    (
        "gladly_kafka_window_splits_total",
        "counter",
        "Windows split because they reached the row cap",
    ),
    (
        "gladly_kafka_transactions_committed_total",
        "counter",
        "Windows committed (exactly-once: Kafka transactions)",
    ),
    (
        "gladly_kafka_transactions_aborted_total",
        "counter",
        "Windows aborted (exactly-once: Kafka transactions)",
    ),
    (
        "gladly_kafka_window_duration_seconds",
        "histogram",
        "Time to fetch and publish one window",
    ),
    (
        "gladly_kafka_window_lag_seconds",
        "gauge",
        "Now minus the report's checkpoint",
    ),
    (
        "gladly_kafka_checkpoint_timestamp_seconds",
        "gauge",
        "The report's checkpoint as Unix time",
    ),
    (
        "gladly_kafka_backfill_windows_done",
        "gauge",
        "Windows of the running backfill that are done",
    ),
    (
        "gladly_kafka_backfill_windows_total",
        "gauge",
        "Windows of the running backfill",
    ),
    (
        "gladly_kafka_report_ready",
        "gauge",
        "1 when the report's last cycle succeeded",
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
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        );
        self.with(|m| *m.counters.entry(key).or_default() += by);
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        );
        self.with(|m| m.gauges.insert(key, value));
    }

    /// Observes a duration in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], secs: f64) {
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        );
        self.with(|m| {
            let h = m.histograms.entry(key).or_default();
            for (i, b) in DURATION_BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        });
    }

    /// The current value of a counter (tests, `status`).
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.with(|m| {
            m.counters
                .iter()
                .filter(|((n, l), _)| {
                    *n == name
                        && labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|(_, v)| *v)
                .sum()
        })
    }

    /// A window was published.
    pub fn window_published(
        &self,
        report: crate::report::Report,
        s: &crate::pipeline::runner::Summary,
        took: std::time::Duration,
        position: crate::pipeline::window::Position,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let r = report.name();
        let l = [("report", r)];
        self.count("gladly_kafka_rows_fetched_total", &l, s.rows as f64);
        self.count("gladly_kafka_records_produced_total", &l, s.records as f64);
        self.count("gladly_kafka_tombstones_total", &l, s.tombstones as f64);
        self.count("gladly_kafka_windows_total", &l, 1.0);
        self.set_ready(report, true);
        self.count("gladly_kafka_transactions_committed_total", &l, 1.0);
        self.observe(
            "gladly_kafka_window_duration_seconds",
            &l,
            took.as_secs_f64(),
        );
        let at = position.covered_until();
        self.gauge(
            "gladly_kafka_checkpoint_timestamp_seconds",
            &l,
            at.timestamp() as f64,
        );
        self.gauge(
            "gladly_kafka_window_lag_seconds",
            &l,
            (now - at).num_seconds().max(0) as f64,
        );
    }

    /// A window attempt failed and will be retried: the report is not ready until one succeeds.
    pub fn window_failed(&self, report: crate::report::Report) {
        self.set_ready(report, false);
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

    /// A row went to the dead-letter topic. The reason label is the reason's first word
    /// group (before `:`) so the label set stays small.
    pub fn dead_letter(&self, report: crate::report::Report, reason: &str) {
        let kind = reason.split(':').next().unwrap_or(reason).trim();
        let kind: String = kind.chars().take(60).collect();
        self.count(
            "gladly_kafka_dead_letters_total",
            &[("report", report.name()), ("reason", &kind)],
            1.0,
        );
    }

    /// Marks a report's last cycle as succeeded or failed (drives `/health/ready`).
    pub fn set_ready(&self, report: crate::report::Report, ok: bool) {
        self.gauge(
            "gladly_kafka_report_ready",
            &[("report", report.name())],
            if ok { 1.0 } else { 0.0 },
        );
        self.with(|m| m.ready.insert(report.name().to_string(), ok));
    }

    /// True when every report that reported so far succeeded last time.
    pub fn is_ready(&self) -> bool {
        self.with(|m| m.ready.values().all(|ok| *ok))
    }

    /// Adds a renderer whose lines are appended to every scrape.
    pub fn add_renderer(&self, r: ExtraRenderer) {
        self.extra.lock().expect("metrics lock").push(r);
    }

    /// The Prometheus text exposition of every metric, plus the extra renderers' lines.
    pub fn render(&self) -> String {
        let mut out = self.render_own();
        for r in self.extra.lock().expect("metrics lock").iter() {
            out.push_str(&r());
        }
        out
    }

    fn render_own(&self) -> String {
        use std::fmt::Write;
        let m = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        let labels = |l: &[(&'static str, String)], extra: Option<(&str, String)>| {
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
            if let Some((k, v)) = extra {
                parts.push(format!("{k}=\"{v}\""));
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", parts.join(","))
            }
        };
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match *kind {
                "counter" => {
                    for ((n, l), v) in m.counters.iter().filter(|((n, _), _)| n == name) {
                        let _ = writeln!(out, "{n}{} {v}", labels(l, None));
                    }
                }
                "gauge" => {
                    for ((n, l), v) in m.gauges.iter().filter(|((n, _), _)| n == name) {
                        let _ = writeln!(out, "{n}{} {v}", labels(l, None));
                    }
                }
                _ => {
                    for ((n, l), h) in m.histograms.iter().filter(|((n, _), _)| n == name) {
                        for (i, b) in DURATION_BUCKETS.iter().enumerate() {
                            let _ = writeln!(
                                out,
                                "{n}_bucket{} {}",
                                labels(l, Some(("le", b.to_string()))),
                                h.counts[i]
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{n}_bucket{} {}",
                            labels(l, Some(("le", "+Inf".into()))),
                            h.count
                        );
                        let _ = writeln!(out, "{n}_sum{} {}", labels(l, None), h.sum);
                        let _ = writeln!(out, "{n}_count{} {}", labels(l, None), h.count);
                    }
                }
            }
        }
        out
    }
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
/// runs) and `GET /health/ready` (200 when every report's last window succeeded, 503 otherwise)
/// on `listen`. An empty `listen` disables it.
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
                    if m.is_ready() {
                        (StatusCode::OK, "ready")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: a report's last window failed",
                        )
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
