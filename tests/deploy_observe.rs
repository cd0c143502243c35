//! The dashboards and alerts in `deploy/`, checked without Kafka or Docker:
//!
//! - `promtool check rules`, `promtool test rules` (every alert firing and not firing) and
//!   `promtool check config` on the shipped Prometheus config pass;
//! - every alert has a severity, a summary, a description and a runbook anchor in the book,
//!   and a unit test where it fires and one where it does not;
//! - the dashboard and the rules name only metrics the service exposes (histograms through
//!   `_bucket`/`_sum`/`_count`), select the datasource through `${datasource}`, and every
//!   panel split by report honours the `report` variable;
//! - the compose profile `observe` provisions Prometheus and Grafana from these files.
//!
//! tests/it/observe_dashboards.rs evaluates the same queries against a real run.
//! `promtool` comes with Debian's `prometheus` package (`scripts/setup` installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/markdown.rs"]
mod markdown;

use serde_json::Value as Json;
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn dashboard() -> Json {
    let path = root().join("deploy/grafana/gladly-kafka.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("the dashboard is JSON")
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// Runs `promtool args` in deploy/prometheus; panics with its output unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let out = Command::new(&bin)
        .args(args)
        .current_dir(root().join("deploy/prometheus"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {bin} ({e}): install Debian's prometheus package (scripts/setup)")
        });
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{output}",
        args.join(" ")
    );
    output
}

#[test]
fn promtool_checks_the_rules_and_config_and_runs_the_alert_unit_tests() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    let config = promtool(&["check", "config", "prometheus.yml"]);
    assert!(config.contains("1 rule files found"), "{config}");
}

/// Every rule of `alerts.yml` with an `alert:` name.
fn alerts() -> Vec<Value> {
    let file = yaml(&root().join("deploy/prometheus/alerts.yml"));
    let mut out = Vec::new();
    for group in file["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            if rule.get("alert").is_some() {
                out.push(rule.clone());
            }
        }
    }
    out
}

/// The anchors of a Markdown file's headings (repository-relative path), as GitHub and mdBook
/// make them.
fn anchors_of(path: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|e| panic!("runbook {path}: {e}"));
    markdown::anchors(&text)
}

#[test]
fn every_alert_has_severity_summary_description_and_a_runbook_in_the_book() {
    let alerts = alerts();
    assert!(alerts.len() >= 6, "{alerts:?}");
    for rule in &alerts {
        let name = text(&rule["alert"]);
        let severity = text(&rule["labels"]["severity"]);
        assert!(
            ["critical", "warning"].contains(&severity),
            "{name}: severity {severity}"
        );
        let a = &rule["annotations"];
        for key in ["summary", "description"] {
            assert!(
                a.get(key).is_some_and(|v| text(v).len() > 20),
                "{name}: a {key} annotation"
            );
        }
        let runbook = text(&a["runbook_url"]);
        let (path, anchor) = runbook
            .strip_prefix("docs/")
            .and_then(|r| r.split_once('#'))
            .unwrap_or_else(|| {
                panic!("{name}: runbook_url {runbook} is docs/<chapter>.md#<anchor>")
            });
        let path = format!("docs/{path}");
        assert!(
            anchors_of(&path).contains(anchor),
            "{name}: {path} has no heading for #{anchor}"
        );
    }
}

/// The lag alert follows the configured cadences: it compares with the cadence the service
/// exports, and no recording rule assumes a constant.
#[test]
fn the_lag_alert_compares_with_the_exported_cadence() {
    let lag = alerts()
        .into_iter()
        .find(|a| a["alert"] == "GladlyKafkaWindowLagHigh")
        .expect("GladlyKafkaWindowLagHigh");
    let expr = text(&lag["expr"]);
    assert!(
        expr.contains("gladly_kafka_window_lag_seconds")
            && expr.contains("3 * gladly_kafka_report_cadence_seconds"),
        "{expr}"
    );
    let file = yaml(&root().join("deploy/prometheus/alerts.yml"));
    for group in file["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let constant = rule.get("record").is_some() && text(&rule["expr"]).contains("vector(");
            assert!(
                !constant,
                "a recording rule assumes a value: {rule:?}; export it from the service instead"
            );
        }
    }
}

#[test]
fn every_alert_is_unit_tested_firing_and_not_firing() {
    let tests = yaml(&root().join("deploy/prometheus/alerts_test.yml"));
    // alertname -> (tested firing, tested quiet)
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for t in tests["tests"].as_sequence().expect("tests") {
        for case in t
            .get("alert_rule_test")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let e = seen
                .entry(text(&case["alertname"]).to_string())
                .or_default();
            match case["exp_alerts"].as_sequence() {
                Some(s) if !s.is_empty() => e.0 = true,
                _ => e.1 = true,
            }
        }
    }
    for rule in alerts() {
        let name = text(&rule["alert"]);
        assert_eq!(
            seen.get(name),
            Some(&(true, true)),
            "{name}: alerts_test.yml shows it firing and not firing"
        );
    }
}

/// Name and type (`counter`, `gauge`, `histogram`) of every metric the service exposes: the
/// `# TYPE` lines `/metrics` always carries.
fn exposed_metrics() -> BTreeMap<String, String> {
    let text = gladly_kafka::observe::Metrics::default().render();
    let types: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (n, t) = l.split_once(' ').unwrap();
            (n.to_string(), t.to_string())
        })
        .collect();
    assert!(types.len() > 20, "{text}");
    types
}

/// The `gladly_kafka_…` metric names in a PromQL expression (not the recording rules'
/// `gladly_kafka:…`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("gladly_kafka_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every query target of the dashboard: (panel title, expr, legend).
fn dashboard_targets(d: &Json) -> Vec<(String, String, String)> {
    fn walk(panels: &[Json], out: &mut Vec<(String, String, String)>) {
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    p["title"].as_str().unwrap_or_default().to_string(),
                    t["expr"]
                        .as_str()
                        .expect("every target has an expr")
                        .to_string(),
                    t["legendFormat"].as_str().unwrap_or_default().to_string(),
                ));
            }
            walk(p["panels"].as_array().map_or(&[], |v| v), out);
        }
    }
    let mut out = Vec::new();
    walk(d["panels"].as_array().expect("panels"), &mut out);
    out
}

fn check_names(what: &str, expr: &str, exposed: &BTreeMap<String, String>) {
    let names = metric_names(expr);
    assert!(
        !names.is_empty(),
        "{what}: no gladly_kafka metric in {expr}"
    );
    for name in names {
        let (base, suffix) = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                let b = name.strip_suffix(s)?;
                (exposed.get(b).map(String::as_str) == Some("histogram")).then_some((b, *s))
            })
            .unwrap_or((name.as_str(), ""));
        let kind = exposed
            .get(base)
            .unwrap_or_else(|| panic!("{what}: {name} is not a metric the service exposes"));
        assert_eq!(
            kind == "histogram",
            !suffix.is_empty(),
            "{what}: a histogram is queried through _bucket, _sum or _count: {name}"
        );
        if kind == "counter" {
            assert!(
                expr.contains("rate(") || expr.contains("increase("),
                "{what}: the counter {name} goes through rate() or increase(): {expr}"
            );
        }
    }
}

#[test]
fn the_dashboard_and_the_rules_use_only_metrics_the_service_exposes() {
    let exposed = exposed_metrics();
    let d = dashboard();
    let targets = dashboard_targets(&d);
    assert!(targets.len() >= 20, "{targets:?}");
    let mut used = BTreeSet::new();
    for (title, expr, _) in &targets {
        check_names(&format!("panel {title:?}"), expr, &exposed);
        used.extend(metric_names(expr));
    }
    for rule in alerts() {
        let expr = text(&rule["expr"]);
        if !expr.contains("up{") {
            check_names(text(&rule["alert"]), expr, &exposed);
        }
    }
    // every metric but the raw checkpoint (the lag is derived from it) has a panel
    for (name, kind) in &exposed {
        let shown = used
            .iter()
            .any(|u| u == name || (kind == "histogram" && u.starts_with(name.as_str())));
        let skip = name == "gladly_kafka_checkpoint_timestamp_seconds"
            || name == "gladly_kafka_windows_total"
            || name == "gladly_kafka_window_splits_total";
        assert!(shown || skip, "no panel shows {name}");
    }
}

#[test]
fn the_dashboard_selects_datasource_and_report_through_variables() {
    let d = dashboard();
    let vars = d["templating"]["list"].as_array().expect("templating");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let report = var("report");
    assert_eq!(report["datasource"]["uid"], "${datasource}");
    let q = report["query"]["query"].as_str().unwrap();
    let metric = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(", report)"))
        .unwrap_or_else(|| panic!("label_values(<metric>, report): {q}"));
    assert!(exposed_metrics().contains_key(metric), "{metric}");
    assert_eq!(report["includeAll"], true);
    assert_eq!(report["allValue"], ".*");

    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel ids are unique"
        );
        let g = &p["gridPos"];
        assert!(
            g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
            "{g}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
    for (title, expr, legend) in dashboard_targets(&d) {
        if expr.contains("by (report") || legend.contains("{{report}}") {
            assert!(
                expr.contains("report=~\"$report\""),
                "{title}: split by report, so filtered by $report: {expr}"
            );
        }
    }
}

/// `"127.0.0.1:9090:9090"` → (host ip, host port, container port).
fn ports(svc: &Value) -> Vec<(String, u16, u16)> {
    svc["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|p| {
            let parts: Vec<&str> = text(p).split(':').collect();
            assert_eq!(parts.len(), 3, "{p:?}: host address, port, container port");
            (
                parts[0].to_string(),
                parts[1].parse().unwrap(),
                parts[2].parse().unwrap(),
            )
        })
        .collect()
}

/// A service's read-only bind mounts: container path -> host path (absolute).
fn mounts(svc: &Value) -> BTreeMap<String, PathBuf> {
    svc["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|v| {
            let parts: Vec<&str> = text(v).split(':').collect();
            assert_eq!(parts.get(2), Some(&"ro"), "{v:?} is mounted read-only");
            let host = root().join(parts[0].trim_start_matches("./"));
            assert!(host.exists(), "{} exists", host.display());
            (parts[1].to_string(), host)
        })
        .collect()
}

/// The host file a container path falls in, through a mount of it or of a parent directory.
fn host_path(mounts: &BTreeMap<String, PathBuf>, in_container: &str) -> PathBuf {
    mounts
        .iter()
        .find_map(|(c, h)| {
            let rest = in_container.strip_prefix(c.as_str())?;
            Some(h.join(rest.trim_start_matches('/')))
        })
        .unwrap_or_else(|| panic!("nothing is mounted at {in_container}"))
}

#[test]
fn the_observe_profile_provisions_prometheus_and_grafana_from_deploy() {
    let c = yaml(&root().join("docker-compose.yml"));
    let svc = |name: &str| {
        c["services"]
            .get(name)
            .unwrap_or_else(|| panic!("compose has no service {name}"))
            .clone()
    };
    let (prom, grafana) = (svc("prometheus"), svc("grafana"));
    for (name, s) in [("prometheus", &prom), ("grafana", &grafana)] {
        assert_eq!(
            s["profiles"]
                .as_sequence()
                .map(|p| p.iter().map(text).collect::<Vec<_>>()),
            Some(vec!["observe"]),
            "{name} is in profile observe"
        );
        let image = text(&s["image"]);
        let (_, tag) = image.rsplit_once(':').expect("a tagged image");
        assert!(tag != "latest", "{name}: pin {image}");
        for (host, _, _) in ports(s) {
            assert_eq!(host, "127.0.0.1", "{name} publishes on loopback only");
        }
    }

    // Prometheus: the shipped config and rules, scraping the service's metrics port
    let pm = mounts(&prom);
    let config = host_path(&pm, "/etc/prometheus/prometheus.yml");
    assert_eq!(config, root().join("deploy/prometheus/prometheus.yml"));
    let pc = yaml(&config);
    for rules in pc["rule_files"].as_sequence().expect("rule_files") {
        let in_container = format!("/etc/prometheus/{}", text(rules));
        assert!(host_path(&pm, &in_container).exists(), "{in_container}");
    }
    let service = svc("gladly-kafka");
    let listen = text(&service["environment"]["GLADLY_KAFKA__OBSERVE__LISTEN"]);
    let port = listen.rsplit(':').next().unwrap();
    let job = &pc["scrape_configs"][0];
    assert_eq!(
        job["static_configs"][0]["targets"][0],
        format!("gladly-kafka:{port}").as_str()
    );
    let down = alerts()
        .into_iter()
        .find(|a| a["alert"] == "GladlyKafkaDown")
        .unwrap();
    assert!(
        text(&down["expr"]).contains(&format!("up{{job=\"{}\"}}", text(&job["job_name"]))),
        "GladlyKafkaDown selects the job of prometheus.yml"
    );
    let prom_port = ports(&prom)[0].2;

    // Grafana: the datasource is that Prometheus; the dashboard provider loads the dashboard
    let gm = mounts(&grafana);
    let ds = yaml(&host_path(
        &gm,
        "/etc/grafana/provisioning/datasources/prometheus.yml",
    ));
    assert_eq!(ds["datasources"][0]["type"], "prometheus");
    assert_eq!(
        ds["datasources"][0]["url"],
        format!("http://prometheus:{prom_port}").as_str()
    );
    let provider = yaml(&host_path(
        &gm,
        "/etc/grafana/provisioning/dashboards/gladly-kafka.yml",
    ));
    let dir = text(&provider["providers"][0]["options"]["path"]);
    assert_eq!(
        host_path(&gm, &format!("{dir}/gladly-kafka.json")),
        root().join("deploy/grafana/gladly-kafka.json")
    );
}
