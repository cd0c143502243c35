//! Pipeline fixture: the in-process simulator on a manual clock, a config pointing the real
//! pipeline at it and at the stack's Kafka and registry, and the comparison of what the topics
//! hold (read_committed, last value per key, tombstones drop keys) with the simulator's truth.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use gladly_kafka::clock::ManualClock;
use gladly_kafka::config::Config;
use gladly_kafka::gladly::{ReportRequest, Secret};
use gladly_kafka::kafka::registry::RegistryClient;
use gladly_kafka::observe::Metrics;
use gladly_kafka::pipeline::Pipeline;
use gladly_kafka::records::{self, ConvertSettings, Converter, Output, WindowMeta};
use gladly_kafka::report::{Report, Source};
use gladly_sim::{SimConfig, SimServer, Simulator};
use tokio::sync::watch;

use super::sim::{sim_clock, TruthExt};

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

    /// How the report's topic, upserted by key, differs from the simulator's truth.
    pub async fn differences(&self, report: Report) -> Differences {
        self.differences_from(report, &self.truth_request(report))
            .await
    }

    /// How the report's topic, upserted by key, differs from the simulator's truth for `req`
    /// (a range that ends before now, say).
    pub async fn differences_from(&self, report: Report, req: &ReportRequest) -> Differences {
        let topic = self.config.topics.report_topic(report);
        let registry = RegistryClient::new(&self.config.registry).unwrap();
        let ids = registry.register_report(&topic, report).await.unwrap();
        let (_, rows) = self.sim.truth(req);
        let bad: BTreeSet<String> = self.sim.bad_rows().keys;
        let settings = ConvertSettings {
            timezone: self.config.report_timezone(report),
            aggregation_level: match self.config.spec(report).unwrap().source {
                Source::MetricSet {
                    aggregation_level, ..
                } => aggregation_level,
                Source::WorkSessionEvents => None,
            },
        };
        let converter = Converter::new(report, settings, ids);
        let meta = WindowMeta {
            window_start: t0(),
            window_end: t0(),
            fetched_at: t0(),
        };
        let mut wc = converter.window(meta);
        let mut out = Vec::new();
        for row in &rows {
            let key = match report {
                Report::WORK_SESSIONS => format!(
                    "work_sessions:{}/{}",
                    row.get("contact_session_id").unwrap_or(""),
                    row.get("agent_id").unwrap_or("")
                ),
                Report::CONTACTS => format!("contacts:{}", row.get("Contact ID").unwrap_or("")),
                Report::AGENT_SUMMARY => format!(
                    "agent_summary:{}/{}",
                    row.get("Agent ID").unwrap_or(""),
                    row.get("Bucket Beginning").unwrap_or("")
                ),
                other => panic!("{other}: the built-in reports only"),
            };
            if !bad.contains(&key) {
                wc.push(row, &mut out);
            }
        }
        wc.finish(&mut out);
        let mut truth: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for o in out {
            match o {
                Output::Record(r) => {
                    truth.insert(r.key, r.value);
                }
                Output::DeadLetter(d) => panic!("truth row did not convert: {d:?}"),
            }
        }
        let truth: BTreeMap<Vec<u8>, serde_json::Value> = truth
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, comparable(report, &v))))
            .collect();

        let t = topic.clone();
        let records = tokio::task::spawn_blocking(move || super::kafka::read_all(&t))
            .await
            .unwrap();
        let mut state: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for r in records {
            state.insert(r.key.expect("keyed"), r.value);
        }
        let state: BTreeMap<Vec<u8>, serde_json::Value> = state
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, comparable(report, &v))))
            .collect();

        let missing: Vec<_> = truth.keys().filter(|k| !state.contains_key(*k)).collect();
        let extra: Vec<_> = state.keys().filter(|k| !truth.contains_key(*k)).collect();
        let differing: Vec<_> = truth
            .iter()
            .filter(|(k, v)| state.get(*k).is_some_and(|s| s != *v))
            .map(|(k, v)| (v.clone(), state[k].clone()))
            .collect();
        Differences {
            truth_keys: truth.len(),
            topic_keys: state.len(),
            missing: missing.len(),
            extra: extra.len(),
            differing: differing.len(),
            examples: format!(
                "missing: {:?}\nextra: {:?}\ndiffering (truth, topic): {:#?}",
                &missing[..missing.len().min(3)],
                &extra[..extra.len().min(3)],
                &differing[..differing.len().min(2)]
            ),
        }
    }
}

/// How a topic differs from the truth: keys missing, extra, or with another value.
#[derive(Debug)]
pub struct Differences {
    pub truth_keys: usize,
    pub topic_keys: usize,
    pub missing: usize,
    pub extra: usize,
    pub differing: usize,
    pub examples: String,
}

impl Differences {
    /// True when the topic equals the truth.
    pub fn none(&self) -> bool {
        self.missing + self.extra + self.differing == 0
    }
}

impl std::fmt::Display for Differences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} truth keys, {} topic keys; {} missing, {} extra, {} differing\n{}",
            self.truth_keys,
            self.topic_keys,
            self.missing,
            self.extra,
            self.differing,
            self.examples
        )
    }
}

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
