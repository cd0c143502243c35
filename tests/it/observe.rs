//! The operational surface of the real binary: after a `run` cycle, `/metrics` holds counters
//! equal to what a read_committed consumer finds in Kafka (records, tombstones, dead letters by
//! reason, committed windows and their rows) and to what the Gladly simulator served (responses
//! by status, 429s, retries, latency observations); and JSON logs of a run at `trace` level never
//! contain the Gladly token, its Basic-auth form, or the Kafka and registry passwords.

use crate::support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use chrono::Duration as Span;
use gladly_kafka::config::Config;
use gladly_kafka::pipeline::checkpoint::Checkpoint;
use gladly_kafka::report::Report;
use gladly_sim::{RetryAfter, SimConfig};

use support::pipeline::{t0, world, world_where};
use support::service::{self, Running};

async fn read(topic: String) -> Vec<support::kafka::ReadRecord> {
    tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap()
}

fn header(r: &support::kafka::ReadRecord, name: &str) -> String {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.as_deref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counters_equal_what_kafka_holds_and_what_gladly_served() {
    let w = world(20.0).await;
    w.clock.set(t0() + Span::hours(6));
    w.sim.faults().update(|f| {
        f.rate_limit_next = 2;
        f.rate_limit_retry_after = RetryAfter::Seconds(0);
        f.bad_cell_rate = 0.02;
        // the next body breaks after 1000 bytes: past any report's CSV header (< 400 bytes),
        // before the end of any window's body here (> 2500 bytes)
        f.cut_next = 1;
        f.cut_after_bytes = 1000;
    });
    let mut table = service::config_table(&w);
    for r in Report::BUILT_IN {
        service::set(&mut table, &format!("reports.{r}.cadence_secs"), 3600);
    }
    let mut svc = Running::start(&w, table);
    let m = svc.after_first_cycles(Duration::from_secs(120)).await;
    let topics = &w.config.topics;

    for report in Report::BUILT_IN {
        let r = report.name();
        let records = read(topics.report_topic(report)).await;
        let tombstones = records.iter().filter(|r| r.value.is_none()).count();
        assert!(!records.is_empty(), "{r}: records were published");
        assert_eq!(
            m.value("gladly_kafka_records_produced_total", &[("report", r)]),
            records.len() as f64,
            "{r}: records produced = records in the topic"
        );
        assert_eq!(
            m.value("gladly_kafka_tombstones_total", &[("report", r)]),
            tombstones as f64,
            "{r}: tombstones = null values in the topic"
        );
        if report == Report::WORK_SESSIONS {
            assert!(tombstones > 0, "ended contacts tombstone provisional keys");
        }
    }

    // dead letters, by report and reason
    let mut dead: BTreeMap<(String, String), f64> = BTreeMap::new();
    for d in read(topics.dead_letter_topic()).await {
        let report = String::from_utf8(d.key.clone().expect("keyed by report")).unwrap();
        let reason = gladly_kafka::observe::reason_label(&header(&d, "gladly.error"));
        *dead.entry((report, reason)).or_default() += 1.0;
    }
    assert!(!dead.is_empty(), "the bad-cell fault produced dead letters");
    let scraped: BTreeMap<(String, String), f64> = m
        .matching("gladly_kafka_dead_letters_total", &[])
        .map(|(l, v)| ((l["report"].clone(), l["reason"].clone()), v))
        .collect();
    assert_eq!(scraped, dead, "dead letters by (report, reason)");

    // committed windows and their rows, from the checkpoint records of each transaction
    let mut windows: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut last: BTreeMap<String, Checkpoint> = BTreeMap::new();
    for c in read(topics.checkpoint_topic()).await {
        let cp: Checkpoint = serde_json::from_slice(c.value.as_deref().unwrap()).unwrap();
        let e = windows.entry(cp.report.name().to_string()).or_default();
        e.0 += 1.0;
        e.1 += cp.rows as f64;
        last.insert(cp.report.name().to_string(), cp);
    }
    for report in Report::BUILT_IN {
        let r = report.name();
        let (n, rows) = windows[r];
        let l = [("report", r)];
        assert_eq!(m.value("gladly_kafka_windows_total", &l), n, "{r}");
        assert_eq!(
            m.value("gladly_kafka_transactions_committed_total", &l),
            n,
            "{r}"
        );
        assert_eq!(m.value("gladly_kafka_rows_fetched_total", &l), rows, "{r}");
        assert_eq!(
            m.value("gladly_kafka_checkpoint_timestamp_seconds", &l),
            last[r].position.covered_until().timestamp() as f64,
            "{r}: the checkpoint gauge is the committed checkpoint"
        );
        assert_eq!(m.matching("gladly_kafka_window_lag_seconds", &l).count(), 1);
        assert_eq!(m.value("gladly_kafka_report_ready", &l), 1.0, "{r}");
        assert!(m.value("gladly_kafka_last_success_timestamp_seconds", &l) > 0.0);
    }

    // the cut body failed its window, which was aborted and retried
    assert_eq!(w.sim.faults().snapshot().cut_next, 0, "the cut was served");
    assert_eq!(
        m.value("gladly_kafka_transactions_aborted_total", &[]),
        1.0,
        "the cut window was aborted"
    );
    assert_eq!(m.value("gladly_kafka_window_failures_total", &[]), 1.0);

    // the Gladly client's view equals the simulator's
    let served = w.sim.stats();
    let responses: u64 = served.responses.values().sum();
    for (status, n) in &served.responses {
        assert_eq!(
            m.value(
                "gladly_kafka_api_responses_total",
                &[("status", &status.to_string())]
            ),
            *n as f64,
            "responses with status {status}"
        );
    }
    assert_eq!(
        m.value("gladly_kafka_api_responses_total", &[]),
        responses as f64
    );
    assert_eq!(served.rate_limited, 2);
    assert_eq!(m.value("gladly_kafka_api_rate_limited_total", &[]), 2.0);
    assert_eq!(
        m.value("gladly_kafka_api_retries_total", &[]),
        2.0,
        "each 429 was retried"
    );
    assert_eq!(
        m.value("gladly_kafka_api_requests_total", &[]),
        responses as f64
    );
    let latency = "gladly_kafka_api_request_duration_seconds";
    assert_eq!(m.types[latency], "histogram");
    assert_eq!(
        m.value(&format!("{latency}_count"), &[]),
        responses as f64,
        "one latency observation per response"
    );
    assert_eq!(
        m.value(&format!("{latency}_bucket"), &[("le", "+Inf")]),
        responses as f64
    );
    for request in [
        "work-session-events",
        "ContactExportReportV3",
        "AgentSummaryV2",
    ] {
        let buckets: Vec<f64> = m
            .matching(&format!("{latency}_bucket"), &[("request", request)])
            .map(|(_, v)| v)
            .collect();
        assert!(buckets.len() > 5, "{request}: real buckets");
        assert!(
            buckets.windows(2).all(|p| p[0] <= p[1]),
            "{request}: cumulative buckets"
        );
    }

    let (status, body) = svc.get("/health/ready").await.unwrap();
    assert_eq!((status, body.trim()), (200, "ready"));
    assert_eq!(svc.get("/health/live").await.unwrap().0, 200);
    let status = svc.stop(Duration::from_secs(30)).await;
    assert!(status.success(), "SIGTERM exits 0: {status}");
}

/// Runs `once` with JSON logs at trace level; returns (exit ok, stdout, stderr).
async fn once_with_json_logs(
    w: &support::pipeline::World,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut table = service::config_table(w);
    service::set(&mut table, "registry.username", "registry-user");
    let config = service::write_config(&table);
    let mut cmd = service::command(w, config.path());
    cmd.args(["--log-format", "json", "once"])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_of_a_run_never_contain_secrets() {
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let w = world_where(10.0, |c| SimConfig {
        token: token.clone(),
        ..c.without_limits()
    })
    .await;
    w.clock.set(t0() + Span::hours(3));
    let kafka_password = format!("kpw-{}", uuid::Uuid::new_v4().simple());
    let registry_password = format!("rpw-{}", uuid::Uuid::new_v4().simple());
    let env = [
        (
            "GLADLY_KAFKA__KAFKA__PROPERTIES__sasl.password",
            kafka_password.as_str(),
        ),
        (
            "GLADLY_KAFKA__REGISTRY__PASSWORD",
            registry_password.as_str(),
        ),
    ];
    let basic = |t: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{t}", w.config.gladly.email))
    };
    let secrets = |t: &str| {
        vec![
            t.to_string(),
            basic(t),
            kafka_password.clone(),
            registry_password.clone(),
        ]
    };

    // a good run: every stderr line is a JSON object; the config dump and the window spans are there
    let (ok, stdout, stderr) = once_with_json_logs(&w, &env).await;
    assert!(ok, "the run succeeds:\n{stdout}\n{stderr}");
    for s in secrets(&token) {
        assert!(
            !stdout.contains(&s) && !stderr.contains(&s),
            "a secret ({s}) appears in the output"
        );
    }
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 20, "trace-level logs were written");
    let config_dump = lines
        .iter()
        .find(|l| l["message"] == "configuration")
        .expect("the effective configuration is logged at debug level");
    let dump = config_dump["config"].as_str().unwrap();
    assert!(
        dump.contains(&w.config.gladly.email) && dump.contains("***"),
        "the dump is the real config, secrets redacted: {dump}"
    );
    let spans: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "window published")
        .map(|l| &l["span"])
        .collect();
    assert!(spans.len() >= 3, "one per window: {spans:?}");
    for s in &spans {
        assert_eq!(s["name"], "window", "{s}");
        assert!(s["report"].is_string() && s["window"].is_string(), "{s}");
        assert!(s["rows"].is_u64() && s["duration_secs"].is_f64(), "{s}");
    }
    let reports: std::collections::BTreeSet<&str> =
        spans.iter().filter_map(|s| s["report"].as_str()).collect();
    assert_eq!(reports.len(), 3, "windows of every report: {reports:?}");

    // a refused token: the error says what to fix and shows no secret either
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    let mut env_wrong = env.to_vec();
    env_wrong.push(("GLADLY_KAFKA__GLADLY__TOKEN", wrong.as_str()));
    let (ok, stdout, stderr) = once_with_json_logs(&w, &env_wrong).await;
    let output = format!("{stdout}\n{stderr}");
    assert!(!ok, "a refused token fails the run");
    assert!(output.contains("401"), "{output}");
    for s in secrets(&wrong)
        .into_iter()
        .chain([token.clone(), basic(&token)])
    {
        assert!(!output.contains(&s), "a secret ({s}) appears in the output");
    }
}

#[test]
fn the_secret_types_redact_in_debug() {
    // the log test above relies on the config dump going through these Debug impls
    let mut c = Config::default();
    c.gladly.token = Some(gladly_kafka::gladly::Secret::new("t-123-secret"));
    c.kafka
        .properties
        .insert("sasl.password".into(), "k-456-secret".into());
    c.registry.password = Some("r-789-secret".into());
    let dump = format!("{c:?}");
    for s in ["t-123-secret", "k-456-secret", "r-789-secret"] {
        assert!(!dump.contains(s), "{s} in {dump}");
    }
}
