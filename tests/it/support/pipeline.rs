//! Pipeline fixture: the in-process simulator on a manual clock, a config pointing the real
//! pipeline at it and at the stack's Kafka and registry, and the comparison of what the topics
//! hold (read_committed, last value per key, tombstones drop keys) with the simulator's truth.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use gladly_kafka::clock::ManualClock;
use gladly_kafka::config::Config;
use gladly_kafka::gladly::{ReportRequest, Secret};
use gladly_kafka::observe::Metrics;
use gladly_kafka::pipeline::Pipeline;
use gladly_kafka::records;
use gladly_kafka::report::{Report, Source};
use gladly_sim::{ReportQuery, RetryAfter, SimConfig, SimServer, Simulator};
use serde_json::Value;
use tokio::sync::watch;

use super::oracle;
use super::sim::sim_clock;

/// Where simulated polling starts.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 11, 0, 0, 0).unwrap()
}

/// A simulator, its server and clock, and a config for the pipeline.
pub struct World {
    pub clock: ManualClock,
    pub sim: Arc<Simulator>,
    pub server: SimServer,
    pub config: Config,
    pub stop: watch::Sender<bool>,
}

/// A simulated contact center from two days before [`t0`], with limits off.
pub async fn world(contacts_per_hour: f64) -> World {
    world_with(contacts_per_hour, None).await
}

/// Like [`world`]; with `minute`, the simulator enforces Gladly's report limits (10 per
/// minute, 2 concurrent) with a "minute" that lasts `minute` of real time.
pub async fn world_with(contacts_per_hour: f64, minute: Option<std::time::Duration>) -> World {
    world_where(contacts_per_hour, |base| match minute {
        Some(m) => base.with_scaled_limits(m),
        None => base.without_limits(),
    })
    .await
}

/// Like [`world`], with the simulator's config (limits on by default) edited by `sim`.
pub async fn world_where(
    contacts_per_hour: f64,
    sim: impl FnOnce(SimConfig) -> SimConfig,
) -> World {
    let clock = ManualClock::new(t0());
    let base = SimConfig {
        seed: 7,
        origin: t0() - Duration::days(2),
        contacts_per_hour,
        agents: 12,
        ..SimConfig::default()
    };
    let sim_cfg = sim(base);
    let sim = Simulator::new(sim_cfg.clone(), sim_clock(clock.clone()));
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut config = Config::default();
    config.gladly.host = server.url.clone();
    config.gladly.email = sim_cfg.email.clone();
    config.gladly.token = Some(Secret::new(sim_cfg.token.clone()));
    config.gladly.requests_per_minute = 60_000;
    config.gladly.initial_backoff_ms = 20;
    config.gladly.max_backoff_secs = 1;
    config.gladly.read_timeout_secs = 10;
    config.kafka.bootstrap_servers = super::kafka_bootstrap();
    config.kafka.transaction_timeout_secs = 60;
    config.kafka.transactional_id_prefix = Some(super::unique_name("txn"));
    config.registry.url = super::schema_registry_url();
    config.topics.prefix = super::unique_name("pipe");
    config.topics.partitions = 2;
    // the first poll reaches back one lookback, like every later one
    config.reports.work_sessions.start = Some(t0() - Duration::days(1));
    config.reports.work_sessions.lookback_minutes = 24 * 60;
    // date reports re-pull a horizon of two days, so the first poll does too
    config.reports.contacts.start = Some(t0().date_naive() - Duration::days(2));
    config.reports.contacts.horizon_days = 2;
    config.reports.agent_summary.start = Some(t0().date_naive() - Duration::days(2));
    config.reports.agent_summary.horizon_days = 2;
    config.pipeline.retry_backoff_ms = 20;
    config.observe.listen = String::new();
    config.validate().expect("a valid test config");
    let (stop, _) = watch::channel(false);
    World {
        clock,
        sim,
        server,
        config,
        stop,
    }
}

impl World {
    /// Connects a pipeline on the world's clock.
    pub async fn pipeline(&self) -> Pipeline {
        Pipeline::connect(
            self.config.clone(),
            Arc::new(self.clock.clone()),
            self.stop.subscribe(),
            Arc::new(Metrics::default()),
        )
        .await
        .expect("pipeline connects")
    }

    /// The request whose truth covers everything polled since [`t0`]: the pipeline's own
    /// request for one window from the report's start to now.
    pub fn truth_request(&self, report: Report) -> ReportRequest {
        use gladly_kafka::clock::Clock;
        use gladly_kafka::pipeline::window::{floor_minute, DateWindow, InstantWindow, Window};
        let now = self.clock.now();
        let window = match self.config.date_settings(report) {
            None => Window::Instants(
                InstantWindow::new(
                    self.config.reports.work_sessions.start.expect("set"),
                    floor_minute(now),
                )
                .expect("start before now"),
            ),
            Some(s) => Window::Dates(
                DateWindow::new(s.start.expect("set"), now.date_naive()).expect("start before now"),
            ),
        };
        gladly_kafka::pipeline::request(&self.config, report, &window)
    }

    /// Asserts that the report's topic, upserted by key, equals the simulator's truth (minus
    /// rows the bad-cell fault made unconvertible). Returns the number of live keys.
    pub async fn assert_converged(&self, report: Report) -> usize {
        let d = self.differences(report).await;
        assert!(d.none(), "{report}: topic != truth: {d}");
        assert!(d.truth_keys > 0, "{report}: the truth is not empty");
        d.truth_keys
    }

    /// The simulator's query for everything polled since the report's start, built by hand
    /// (not by the pipeline's planner): work sessions from `start` to now floored to the
    /// minute; the date reports from `start` to today in the report's timezone.
    fn truth_query(&self, report: Report) -> ReportQuery {
        use chrono::Timelike;
        use gladly_kafka::clock::Clock;
        let now = self.clock.now();
        let r = &self.config.reports;
        match report {
            Report::WORK_SESSIONS => ReportQuery::WorkSessions {
                start: r.work_sessions.start.expect("set"),
                end: now.with_second(0).unwrap().with_nanosecond(0).unwrap(),
            },
            Report::CONTACTS | Report::AGENT_SUMMARY => {
                let tz = self.config.report_timezone(report);
                let (metric_set, start) = if report == Report::CONTACTS {
                    (gladly_kafka::gladly::CONTACT_EXPORT, r.contacts.start)
                } else {
                    (gladly_kafka::gladly::AGENT_SUMMARY, r.agent_summary.start)
                };
                ReportQuery::MetricSet {
                    metric_set: metric_set.into(),
                    start: start.expect("set"),
                    end: now.with_timezone(&tz).date_naive(),
                    timezone: tz.name().into(),
                    aggregation_level: self.aggregation_level(report),
                }
            }
            other => panic!("{other}: the built-in reports only"),
        }
    }

    /// The aggregation level the report requests, if it is bucketed.
    fn aggregation_level(&self, report: Report) -> Option<String> {
        match self.config.spec(report).unwrap().source {
            Source::MetricSet {
                aggregation_level, ..
            } => aggregation_level,
            Source::WorkSessionEvents => None,
        }
    }

    /// How the report's topic, upserted by key, differs from the simulator's truth mapped by
    /// hand (`super::oracle`), and which published values have impossible window metadata.
    pub async fn differences(&self, report: Report) -> Differences {
        self.differences_in(report, &self.truth_query(report)).await
    }

    /// Like [`World::differences`], against the simulator's truth for `req` (a range that
    /// ends before now, say).
    pub async fn differences_from(&self, report: Report, req: &ReportRequest) -> Differences {
        self.differences_in(report, &super::sim::query(req)).await
    }

    async fn differences_in(&self, report: Report, query: &ReportQuery) -> Differences {
        let name = report.to_string();
        let truth = self.sim.report_truth(query);
        let bad: BTreeSet<String> = self.sim.bad_rows().keys;
        let level = self.aggregation_level(report).unwrap_or_default();
        let mut expected: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for row in &truth.rows {
            let (key, bad_key, fields) =
                oracle::expected(&name, truth.columns, row.cells(), &level);
            if !bad.contains(&bad_key) {
                expected.insert(key.to_string(), fields);
            }
        }

        let topic = self.config.topics.report_topic(report);
        let records = tokio::task::spawn_blocking(move || super::kafka::read_all(&topic))
            .await
            .unwrap();
        let date_tz =
            (report != Report::WORK_SESSIONS).then(|| self.config.report_timezone(report));
        let records = records.iter().map(|r| {
            let key = r.key.as_deref().expect("keyed");
            (key, r.value.as_deref(), r.timestamp)
        });
        oracle::compare(&name, &expected, records, date_tz)
    }
}

/// How a topic differs from the truth: keys missing, extra, or with another value.
pub use oracle::Differences;

/// A value decoded with apache-avro against the schema file, without the fetch metadata.
pub fn comparable(report: Report, bytes: &[u8]) -> serde_json::Value {
    let schema = apache_avro::Schema::parse_str(records::schemas::value_schema(report)).unwrap();
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    let value = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).expect("decodes");
    let mut json: serde_json::Value = value.try_into().expect("as JSON");
    if let Some(o) = json.as_object_mut() {
        for k in ["fetched_at", "window_start", "window_end"] {
            o.remove(k);
        }
    }
    json
}

/// The hostile day the convergence suites share: three 429s answered at once, one request in
/// ten a 503, two bodies cut after 3,000 bytes, and answers capped at `row_cap` rows (the
/// pipeline's `row_cap` should match, so a capped window is split).
pub fn hostile_day(sim: &Simulator, row_cap: usize) {
    sim.faults().update(|f| {
        f.rate_limit_next = 3;
        f.rate_limit_retry_after = RetryAfter::Seconds(0);
        f.error_rate = 0.1;
        f.error_status = 503;
        f.cut_next = 2;
        f.cut_after_bytes = 3000;
        f.row_cap = Some(row_cap);
    });
}
