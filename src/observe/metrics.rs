//! The metrics registry: counters, gauges and histograms, updated by the service's events
//! (a window published, a cycle done, …) and rendered at scrape time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::health::{health_problem, Health};
use super::histogram::{Histogram, WINDOW_BUCKETS};
use super::render::{render_snapshot, series, sum_matching, SeriesKey, Snapshot};

/// The counters labelled by report alone that [`Metrics::expect_report`] creates at 0, with
/// `gladly_kafka_cycles_total{result="ok"|"failed"}`. A series that appears at its first
/// increment starts at 1, and `increase()`/`rate()` cannot see that step; created at 0 when
/// `run` starts, a first failure, abort or split after Prometheus's first scrape counts.
/// (`dead_letters_total` is also labelled by reason, which is not known in advance.)
const PER_REPORT_COUNTERS: [&str; 8] = [
    "gladly_kafka_rows_fetched_total",
    "gladly_kafka_records_produced_total",
    "gladly_kafka_tombstones_total",
    "gladly_kafka_windows_total",
    "gladly_kafka_window_failures_total",
    "gladly_kafka_window_splits_total",
    "gladly_kafka_transactions_committed_total",
    "gladly_kafka_transactions_aborted_total",
];

/// Renders more metric lines at scrape time.
pub type ExtraRenderer = Box<dyn Fn() -> String + Send + Sync>;

/// The current time as the service sees it (its clock may be simulated).
pub type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What a committed window published, as counted by the metrics.
#[derive(Debug, Clone, Copy)]
pub struct WindowCounts<'a> {
    /// CSV rows read.
    pub rows: u64,
    /// Records produced (tombstones included).
    pub records: u64,
    /// Tombstones produced.
    pub tombstones: u64,
    /// Records left out because their value had not changed.
    pub suppressed: u64,
    /// Dead letters by reason label (see [`reason_label`]).
    pub dead_letter_reasons: &'a BTreeMap<String, u64>,
}

/// The Gladly API client's counters at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiSnapshot {
    /// Report requests sent (each attempt counts).
    pub requests: u64,
    /// Other requests (GET Conversation) sent.
    pub get_requests: u64,
    /// Retries made.
    pub retries: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Requests that got no response.
    pub transport_errors: u64,
    /// Seconds spent waiting before retries.
    pub retry_wait_secs: f64,
    /// Responses by HTTP status.
    pub responses: BTreeMap<u16, u64>,
    /// Time to the response headers, by request.
    pub latency: BTreeMap<String, Histogram>,
}

/// Something that can report the API client's counters at scrape time.
pub trait ApiSource: Send + Sync {
    /// The counters now.
    fn api_snapshot(&self) -> ApiSnapshot;
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
    now: Option<Now>,
    /// The Gladly client's counters, rendered at scrape time.
    api: Option<Arc<dyn ApiSource>>,
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

    /// Uses `now` for the current time (window lag, last success: the pipeline's clock) and
    /// exports `api`'s counters at every scrape.
    pub fn attach(&self, now: Now, api: Arc<dyn ApiSource>) {
        self.with(|m| {
            m.now = Some(now);
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
    pub fn window_published(&self, report: &str, s: WindowCounts<'_>, took: Duration) {
        let l = [("report", report)];
        self.count("gladly_kafka_rows_fetched_total", &l, s.rows as f64);
        self.count("gladly_kafka_records_produced_total", &l, s.records as f64);
        self.count("gladly_kafka_tombstones_total", &l, s.tombstones as f64);
        self.count(
            "gladly_kafka_records_suppressed_total",
            &l,
            s.suppressed as f64,
        );
        self.count("gladly_kafka_windows_total", &l, 1.0);
        self.count("gladly_kafka_transactions_committed_total", &l, 1.0);
        for (reason, n) in s.dead_letter_reasons {
            self.count(
                "gladly_kafka_dead_letters_total",
                &[("report", report), ("reason", reason)],
                *n as f64,
            );
        }
        self.observe(
            "gladly_kafka_window_duration_seconds",
            &l,
            took.as_secs_f64(),
        );
    }

    /// The report's poll checkpoint covers everything until `covered_until` (read at start, or
    /// just moved).
    pub fn checkpoint_moved(&self, report: &str, covered_until: DateTime<Utc>) {
        self.with(|m| m.checkpoints.insert(report.to_string(), covered_until));
    }

    /// A window attempt failed and will be retried: the report is not ready until a cycle
    /// succeeds.
    pub fn window_failed(&self, report: &str) {
        self.with(|m| {
            m.health.insert(
                report.to_string(),
                Health::Failed("a window of the current cycle failed; it is being retried".into()),
            )
        });
        self.count(
            "gladly_kafka_window_failures_total",
            &[("report", report)],
            1.0,
        );
    }

    /// A window was split at the row cap.
    pub fn window_split(&self, report: &str) {
        self.count(
            "gladly_kafka_window_splits_total",
            &[("report", report)],
            1.0,
        );
    }

    /// A window's transaction was aborted.
    pub fn transaction_aborted(&self, report: &str) {
        self.count(
            "gladly_kafka_transactions_aborted_total",
            &[("report", report)],
            1.0,
        );
    }

    /// `run` polls `report` every `cadence`: it counts as ready until its first cadence has
    /// passed, then only while its last cycle succeeded. The cadence is exported
    /// (`gladly_kafka_report_cadence_seconds`) so that alerts can compare the lag with it, and
    /// the report's counters (rows, records, tombstones, windows, window failures and splits,
    /// transactions committed and aborted, cycles ok and failed) start at 0, so that the first
    /// increment of each is a step `increase()` sees.
    pub fn expect_report(&self, report: &str, cadence: Duration) {
        let deadline = Instant::now() + cadence;
        let l = [("report", report)];
        self.with(|m| {
            m.health
                .entry(report.to_string())
                .or_insert(Health::Starting { deadline });
            m.gauges.insert(
                series("gladly_kafka_report_cadence_seconds", &l),
                cadence.as_secs_f64(),
            );
            for name in PER_REPORT_COUNTERS {
                m.counters.entry(series(name, &l)).or_insert(0.0);
            }
            for result in ["ok", "failed"] {
                let l = [("report", report), ("result", result)];
                m.counters
                    .entry(series("gladly_kafka_cycles_total", &l))
                    .or_insert(0.0);
            }
        });
    }

    /// `run` polls the events feed every `cadence`: like [`Metrics::expect_report`], ready
    /// until its first cadence has passed, then while its last poll succeeded and lost
    /// nothing; its cadence is exported (`gladly_kafka_events_cadence_seconds`) for the
    /// freshness alert, and its counters start at 0.
    pub fn expect_events(&self, cadence: Duration) {
        let deadline = Instant::now() + cadence;
        self.with(|m| {
            m.health
                .entry("events".to_string())
                .or_insert(Health::Starting { deadline });
            m.gauges.insert(
                series("gladly_kafka_events_cadence_seconds", &[]),
                cadence.as_secs_f64(),
            );
            for name in [
                "gladly_kafka_events_published_total",
                "gladly_kafka_events_suppressed_total",
                "gladly_kafka_events_lost_seconds_total",
            ] {
                m.counters.entry(series(name, &[])).or_insert(0.0);
            }
            for result in ["ok", "failed"] {
                let l = [("report", "events"), ("result", result)];
                m.counters
                    .entry(series("gladly_kafka_cycles_total", &l))
                    .or_insert(0.0);
            }
        });
    }

    /// A poll cycle of `report` ended: `Ok`, or why it failed.
    pub fn cycle_done(&self, report: &str, outcome: Result<(), String>) {
        let r = report;
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
    pub fn backfill_progress(&self, report: &str, done: u64, planned: u64) {
        let l = [("report", report)];
        self.gauge("gladly_kafka_backfill_windows_done", &l, done as f64);
        self.gauge("gladly_kafka_backfill_windows_planned", &l, planned as f64);
    }

    /// A window of a re-read pass of `report`'s `tier` was committed with `records` records.
    pub fn reread_window(&self, report: &str, tier: &str, records: u64) {
        let l = [("report", report), ("tier", tier)];
        self.count("gladly_kafka_reread_windows_total", &l, 1.0);
        self.count("gladly_kafka_reread_records_total", &l, records as f64);
    }

    /// A pass of `report`'s `tier` that began at `started_at` is complete.
    pub fn reread_pass_done(&self, report: &str, tier: &str, started_at: DateTime<Utc>) {
        self.count(
            "gladly_kafka_reread_passes_total",
            &[("report", report), ("tier", tier)],
            1.0,
        );
        self.reread_last_pass(report, tier, started_at);
    }

    /// The last complete pass of `report`'s `tier` began at `started_at` (read at start, or
    /// just completed). The tier's counters exist from then on (at 0 until a window is
    /// re-read), so rate() and increase() see their first step.
    pub fn reread_last_pass(&self, report: &str, tier: &str, started_at: DateTime<Utc>) {
        let l = [("report", report), ("tier", tier)];
        self.gauge(
            "gladly_kafka_reread_last_pass_timestamp_seconds",
            &l,
            started_at.timestamp() as f64,
        );
        for counter in [
            "gladly_kafka_reread_windows_total",
            "gladly_kafka_reread_records_total",
            "gladly_kafka_reread_passes_total",
        ] {
            self.count(counter, &l, 0.0);
        }
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
        self.with(|m| m.now.clone())
            .map_or_else(Utc::now, |now| now())
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
            api_series(&api.api_snapshot(), &mut counters, &mut histograms);
        }
        Snapshot {
            counters,
            gauges,
            histograms,
        }
    }
}

/// The API client's series from `api`.
fn api_series(
    api: &ApiSnapshot,
    counters: &mut BTreeMap<SeriesKey, f64>,
    histograms: &mut BTreeMap<SeriesKey, Histogram>,
) {
    let mut set = |name: &'static str, labels: &[(&'static str, &str)], v: f64| {
        counters.insert(series(name, labels), v);
    };
    set("gladly_kafka_api_requests_total", &[], api.requests as f64);
    set(
        "gladly_kafka_api_get_requests_total",
        &[],
        api.get_requests as f64,
    );
    set("gladly_kafka_api_retries_total", &[], api.retries as f64);
    set(
        "gladly_kafka_api_rate_limited_total",
        &[],
        api.rate_limited as f64,
    );
    set(
        "gladly_kafka_api_transport_errors_total",
        &[],
        api.transport_errors as f64,
    );
    set(
        "gladly_kafka_api_retry_wait_seconds_total",
        &[],
        api.retry_wait_secs,
    );
    for (status, n) in &api.responses {
        set(
            "gladly_kafka_api_responses_total",
            &[("status", &status.to_string())],
            *n as f64,
        );
    }
    for (request, h) in &api.latency {
        histograms.insert(
            series(
                "gladly_kafka_api_request_duration_seconds",
                &[("request", request)],
            ),
            h.clone(),
        );
    }
}

/// The reason label of a dead letter: the text before the first `:`, at most 60 characters.
pub fn reason_label(reason: &str) -> String {
    let kind = reason.split(':').next().unwrap_or(reason).trim();
    kind.chars().take(60).collect()
}
