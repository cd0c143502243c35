//! The Grafana dashboard against a real run: the binary polls the simulator into the test
//! stack (with 429s, unconvertible cells, a cut body and conversations, cycling every 2 s) next
//! to a paced `backfill`, a real Prometheus (deploy/prometheus/prometheus.yml with these two
//! targets, scraped every second, alerts.yml loaded) scrapes both, and every query of
//! deploy/grafana/gladly-kafka.json, its template variables substituted, returns data through
//! Prometheus's HTTP API. The rules evaluate without errors, and the dead-letter alert fires on
//! the run's dead letters.
//!
//! Needs the stack (`KAFKA_BOOTSTRAP`, `SCHEMA_REGISTRY_URL`) and a `prometheus` binary (Debian's
//! package, which `scripts/setup` installs; or `PROMETHEUS=/path/to/prometheus`).

use crate::support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use gladly_kafka::clock::Clock;
use gladly_sim::RetryAfter;
use serde_json::Value as Json;

use support::pipeline::{t0, world};
use support::service::{self, Running};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the dashboard's template variables stand for here: all reports, 30 s rate windows.
const VARIABLES: &[(&str, &str)] = &[
    ("$__rate_interval", "30s"),
    ("${__rate_interval}", "30s"),
    ("$__interval", "5s"),
    ("${__interval}", "5s"),
    ("$__range", "1h"),
    ("${report:regex}", ".*"),
    ("${report}", ".*"),
    ("$report", ".*"),
];

/// Every query of the dashboard: (panel title, legend, expr with the variables substituted).
fn dashboard_queries() -> Vec<(String, String, String)> {
    let path = root().join("deploy/grafana/gladly-kafka.json");
    let d: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    fn walk(panels: &[Json], out: &mut Vec<(String, String, String)>) {
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                let mut expr = t["expr"].as_str().expect("an expr").to_string();
                for (var, value) in VARIABLES {
                    expr = expr.replace(var, value);
                }
                assert!(
                    !expr.contains('$'),
                    "a variable this test does not know: {expr}"
                );
                out.push((
                    p["title"].as_str().unwrap().to_string(),
                    t["legendFormat"].as_str().unwrap_or_default().to_string(),
                    expr,
                ));
            }
            walk(p["panels"].as_array().map_or(&[], |v| v), out);
        }
    }
    let mut out = Vec::new();
    walk(d["panels"].as_array().unwrap(), &mut out);
    out
}

/// The `report` variable's `label_values(<metric>, report)`: the metric.
fn report_variable_metric() -> String {
    let path = root().join("deploy/grafana/gladly-kafka.json");
    let d: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let var = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "report")
        .expect("a report variable");
    let q = var["query"]["query"].as_str().unwrap();
    q.strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(", report)"))
        .unwrap_or_else(|| panic!("label_values(<metric>, report): {q}"))
        .to_string()
}

/// The last 60 lines of a log (a run cycling every 2 s logs a lot).
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// A `prometheus` process with its own config, data directory and loopback port; killed when
/// dropped.
struct Prometheus {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// deploy/prometheus/prometheus.yml with `targets` as the gladly-kafka job's targets,
    /// everything every second, and the rules file by its absolute path.
    fn start(targets: &[SocketAddr]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let shipped = root().join("deploy/prometheus/prometheus.yml");
        let mut config: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(&shipped).unwrap()).unwrap();
        let global = serde_norway::from_str(
            "{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}",
        )
        .unwrap();
        config["global"] = global;
        let rules: Vec<String> = config["rule_files"]
            .as_sequence()
            .expect("rule_files")
            .iter()
            .map(|r| {
                let p = root().join("deploy/prometheus").join(r.as_str().unwrap());
                assert!(p.exists(), "{}", p.display());
                p.display().to_string()
            })
            .collect();
        config["rule_files"] = serde_norway::to_value(rules).unwrap();
        let job = &mut config["scrape_configs"][0];
        assert_eq!(job["job_name"], "gladly-kafka");
        let targets: Vec<String> = targets.iter().map(|a| a.to_string()).collect();
        job["static_configs"] =
            serde_norway::to_value(vec![serde_json::json!({ "targets": targets })]).unwrap();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, serde_norway::to_string(&config).unwrap()).unwrap();

        let addr = service::free_addr();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let bin = std::env::var("PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {bin} ({e}): install Debian's prometheus package (scripts/setup)"
                )
            });
        Prometheus {
            child,
            url: format!("http://{addr}"),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Panics with the log if the process exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("prometheus exited ({status}):\n{}", self.log());
        }
    }

    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Option<Json> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url), params).unwrap();
        let resp = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    async fn wait_ready(&mut self, within: Duration) {
        let started = Instant::now();
        loop {
            self.assert_running();
            let ready = reqwest::Client::new()
                .get(format!("{}/-/ready", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                started.elapsed() < within,
                "prometheus was not ready within {within:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An instant query: the samples' labels and values, or why there are none.
    async fn query(&self, expr: &str) -> Result<Vec<(Json, f64)>, String> {
        let body = self
            .get("/api/v1/query", &[("query", expr)])
            .await
            .ok_or("no answer")?;
        if body["status"] != "success" {
            return Err(format!("error: {body}"));
        }
        let result = &body["data"]["result"];
        let samples: Vec<(Json, f64)> = match body["data"]["resultType"].as_str() {
            Some("vector") => result
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let v = s["value"][1].as_str().unwrap().parse().unwrap_or(f64::NAN);
                    (s["metric"].clone(), v)
                })
                .collect(),
            Some("scalar") => {
                vec![(Json::Null, result[1].as_str().unwrap().parse().unwrap())]
            }
            other => return Err(format!("result type {other:?}: {body}")),
        };
        if samples.is_empty() {
            Err("an empty result".into())
        } else if samples.iter().all(|(_, v)| v.is_nan()) {
            Err(format!("only NaN: {samples:?}"))
        } else {
            Ok(samples)
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `gladly-kafka backfill` process; killed when dropped.
struct Backfill {
    child: Child,
    log: tempfile::NamedTempFile,
    _config: tempfile::NamedTempFile,
}

impl Backfill {
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Backfill {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_backfill(w: &support::pipeline::World, listen: SocketAddr) -> Backfill {
    let mut table = service::config_table(w);
    // one report request per 30 s: after its first window the backfill stays at work (and
    // its progress on /metrics) for the rest of the test
    service::set(&mut table, "gladly.requests_per_minute", 2);
    service::set(&mut table, "observe.listen", listen.to_string());
    let config = service::write_config(&table);
    let log = tempfile::NamedTempFile::new().unwrap();
    let day = |d: i64| (t0() - Span::days(d)).date_naive().to_string();
    let child = service::command(w, config.path())
        .args(["backfill", "--report", "contacts", "--from"])
        .arg(day(12))
        .arg("--to")
        .arg(day(3))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("the binary starts");
    Backfill {
        child,
        log,
        _config: config,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_real_run() {
    let started = Instant::now();
    let w = world(20.0).await;
    w.clock.set(t0() + Span::hours(6));
    // what the 429, dead-letter and abort panels need: two 429s, unconvertible cells, and a
    // body cut after its header (its window fails, is aborted and retried)
    w.sim.faults().update(|f| {
        f.rate_limit_next = 2;
        f.rate_limit_retry_after = RetryAfter::Seconds(0);
        f.bad_cell_rate = 0.02;
        f.cut_next = 1;
        f.cut_after_bytes = 1000;
    });
    let mut table = service::config_table(&w);
    // cycles every 2 s, so every rate has something to show; work sessions over the last
    // three hours only, with their conversations fetched
    for r in ["work_sessions", "contacts", "agent_summary"] {
        service::set(&mut table, &format!("reports.{r}.cadence_secs"), 2);
    }
    let ws_start =
        (w.clock.now() - Span::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    service::set(&mut table, "reports.work_sessions.start", ws_start);
    service::set(&mut table, "reports.work_sessions.lookback_minutes", 120);
    service::set(&mut table, "conversations.enabled", true);
    // the dimension lists' panels need their refreshes
    service::set(&mut table, "dimensions.enabled", true);
    service::set(&mut table, "dimensions.cadence_secs", 60);
    // and the events feed's, its polls
    service::set(&mut table, "events.enabled", true);
    service::set(&mut table, "events.cadence_secs", 10);
    service::set(&mut table, "gladly.requests_per_second", 5000);

    let mut svc = Running::start(&w, table);
    let backfill_addr = service::free_addr();
    let mut prom = Prometheus::start(&[svc.addr, backfill_addr]);
    prom.wait_ready(Duration::from_secs(30)).await;
    svc.after_first_cycles(Duration::from_secs(120)).await;
    // the first faults were served before the first scrape; these happen under Prometheus's
    // eyes, so the 429 and abort panels show more than zeros
    let scraped = format!(
        "gladly_kafka_api_rate_limited_total{{instance=\"{}\"}}",
        svc.addr
    );
    let wait = Instant::now();
    while prom.query(&scraped).await.is_err() {
        assert!(
            wait.elapsed() < Duration::from_secs(30),
            "prometheus did not scrape the service within 30 s:\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.sim.faults().update(|f| {
        f.rate_limit_next = 2;
        f.cut_next = 1;
    });
    support::eventually_async(Duration::from_secs(60), "the second cut served", || {
        (w.sim.faults().snapshot().cut_next == 0).then_some(())
    })
    .await;
    let mut backfill = start_backfill(&w, backfill_addr);

    // every query returns data (and not only NaN) once a few scrapes of both processes are in
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{queries:?}");
    // and the faults moved the counters while Prometheus was looking (`run` creates every
    // report's aborted counter at 0, so increase() sees the second cut's abort whichever report
    // it hits, even that report's first)
    let moved: Vec<(String, String, String)> = [
        "sum(increase(gladly_kafka_api_rate_limited_total[1h])) > 0",
        "sum(increase(gladly_kafka_transactions_aborted_total[1h])) > 0",
    ]
    .iter()
    .map(|e| ("(faults)".to_string(), "moved".to_string(), e.to_string()))
    .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut answers;
    loop {
        svc.assert_running();
        prom.assert_running();
        if let Some(status) = backfill.child.try_wait().unwrap() {
            panic!("the backfill exited ({status}):\n{}", backfill.log());
        }
        answers = Vec::new();
        for (title, legend, expr) in queries.iter().chain(&moved) {
            answers.push((title, legend, expr, prom.query(expr).await));
        }
        if answers.iter().all(|a| a.3.is_ok()) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let failed: Vec<String> = answers
        .iter()
        .filter_map(|(title, legend, expr, a)| {
            a.as_ref()
                .err()
                .map(|e| format!("panel {title:?} ({legend}): {expr}\n  -> {e}"))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} dashboard queries returned no data:\n{}\n\nservice log:\n{}\nbackfill log:\n{}",
        failed.len(),
        queries.len(),
        failed.join("\n"),
        tail(&svc.log()),
        tail(&backfill.log())
    );
    for (title, legend, expr, a) in &answers {
        let samples = a.as_ref().unwrap();
        eprintln!(
            "ok  {title} ({legend}): {} series, e.g. {:.4}\n    {expr}",
            samples.len(),
            samples.iter().map(|s| s.1).find(|v| !v.is_nan()).unwrap()
        );
    }

    // the report variable lists every report
    let metric = report_variable_metric();
    let values = prom
        .get("/api/v1/label/report/values", &[("match[]", &metric)])
        .await
        .expect("label values");
    let mut reports: Vec<&str> = values["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    reports.sort();
    assert_eq!(reports, ["agent_summary", "contacts", "work_sessions"]);

    // the rules loaded and evaluate on these series without errors
    let rules = prom.get("/api/v1/rules", &[]).await.expect("rules");
    let mut names = Vec::new();
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["name"].as_str().unwrap();
            assert_eq!(rule["health"], "ok", "{name}: {rule}");
            names.push(name.to_string());
        }
    }
    assert!(
        names.iter().any(|n| n == "GladlyKafkaDeadLetters"),
        "{names:?}"
    );
    // `run` exports each report's cadence (2 s here), and the lag alert's comparison pairs it
    // one to one with that report's lag on the same instance; the backfill exports neither
    let cadences = prom
        .query("gladly_kafka_report_cadence_seconds")
        .await
        .unwrap();
    assert_eq!(cadences.len(), 3, "{cadences:?}");
    for (labels, secs) in &cadences {
        assert_eq!(*secs, 2.0, "{labels}");
        assert_eq!(labels["instance"], svc.addr.to_string(), "{labels}");
    }
    let paired = prom
        .query("gladly_kafka_window_lag_seconds - 3 * gladly_kafka_report_cadence_seconds")
        .await
        .unwrap();
    assert_eq!(paired.len(), 3, "{paired:?}");

    // the run's dead letters fire the dead-letter alert (it has no `for`)
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = prom.get("/api/v1/alerts", &[]).await.expect("alerts");
        let firing: Vec<&Json> = a["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| {
                x["labels"]["alertname"] == "GladlyKafkaDeadLetters" && x["state"] == "firing"
            })
            .collect();
        if !firing.is_empty() {
            assert!(firing.iter().all(|x| x["labels"]["severity"] == "warning"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "GladlyKafkaDeadLetters is not firing: {a}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    drop(backfill);
    let status = svc.stop(Duration::from_secs(30)).await;
    assert!(status.success(), "SIGTERM exits 0: {status}");
    eprintln!(
        "{} dashboard queries returned data; the test took {:.1?}",
        queries.len(),
        started.elapsed()
    );
}
