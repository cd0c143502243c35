//! `docker-compose.yml` run for real: the demo profile brings up Kafka, the registry, the
//! simulator and the service (the image `scripts/docker build` made; no build here), the
//! service becomes ready, and its topics, read back on their own, hold records of every
//! built-in report that decode with the schemas and name the inboxes and agents the simulator
//! lists. The warehouse profile, up beside it, fills PostgreSQL through Kafka Connect with the
//! shipped sinks: their tables hold the topics' rows. Then everything is torn down.
//!
//! `compose.host.yml` beside this file puts the services on the host's network for an engine
//! without a bridge (`GLADLY_DOCKER_NETWORK=host`). Compose 1.29 refuses published ports on
//! the host network and cannot drop a list in an override, so there the test runs the two
//! files' merged config (`compose config`) without the `ports` entries, which the host network
//! would ignore anyway.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gladly_kafka::config::Config;
use gladly_kafka::report::Report;

use super::engine;
use super::support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The profiles every command of the test names: the demo and the warehouse.
const PROFILES: [&str; 4] = ["--profile", "demo", "--profile", "warehouse"];

/// A compose project of its own, torn down (containers, network, volumes) when dropped.
struct Project {
    name: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
    /// The merged config without published ports, on the host network.
    _merged: Option<tempfile::NamedTempFile>,
}

impl Project {
    /// The compose file, plus the host-network override (merged, ports dropped) where the
    /// engine has no bridge.
    fn new(host_network: bool) -> Project {
        let mut project = Project {
            name: support::unique_name("gk").replace('-', ""),
            files: vec![root().join("docker-compose.yml")],
            env: Vec::new(),
            _merged: None,
        };
        if host_network {
            project
                .files
                .push(root().join("tests/docker/compose.host.yml"));
            project.env = ports();
            let out = project.run(&[&PROFILES[..], &["config"]].concat());
            assert!(
                out.status.success(),
                "compose config: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut merged: serde_norway::Value = serde_norway::from_slice(&out.stdout).unwrap();
            for (_, svc) in merged["services"]
                .as_mapping_mut()
                .expect("services")
                .iter_mut()
            {
                svc.as_mapping_mut().expect("a service").remove("ports");
            }
            let file = tempfile::NamedTempFile::new().unwrap();
            // as JSON (which is YAML too): re-emitted as YAML 1.2, `restart: "no"` would lose
            // its quotes and read as a boolean in Compose's YAML 1.1
            std::fs::write(file.path(), serde_json::to_string(&merged).unwrap()).unwrap();
            project.files = vec![file.path().to_path_buf()];
            project._merged = Some(file);
        }
        project
    }

    /// `docker compose` where the CLI plugin exists, else the standalone `docker-compose`.
    fn command(&self) -> Command {
        let plugin = Command::new("docker")
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mut cmd = if plugin {
            let mut c = Command::new("docker");
            c.arg("compose");
            c
        } else {
            Command::new("docker-compose")
        };
        cmd.current_dir(root()).arg("-p").arg(&self.name);
        for f in &self.files {
            cmd.arg("-f").arg(f);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("compose runs")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let out = self.run(
            &[
                &PROFILES[..],
                &["down", "-v", "--remove-orphans", "-t", "10"],
            ]
            .concat(),
        );
        if !out.status.success() {
            eprintln!("compose down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// The free loopback ports the host-network override file asks for (all different).
fn ports() -> Vec<(String, String)> {
    let names = [
        "KAFKA_PORT",
        "KAFKA_INTERNAL_PORT",
        "KAFKA_CONTROLLER_PORT",
        "REGISTRY_PORT",
        "REGISTRY_MANAGEMENT_PORT",
        "SIMULATOR_PORT",
        "METRICS_PORT",
        "POSTGRES_PORT",
        "CONNECT_PORT",
    ];
    names
        .iter()
        .zip(support::service::free_ports::<9>())
        .map(|(name, port)| (name.to_string(), port.to_string()))
        .collect()
}

fn port(env: &[(String, String)], name: &str, default: u16) -> u16 {
    env.iter()
        .find(|(k, _)| k == name)
        .map_or(default, |(_, v)| v.parse().unwrap())
}

/// `GET url` (basic auth when `auth` is given): status and body, `None` while nothing answers.
async fn get(url: &str, auth: Option<(&str, &str)>) -> Option<(u16, String)> {
    let mut req = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5));
    if let Some((user, password)) = auth {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// The compose file's config (config/example.toml): where the demo publishes.
fn demo_config() -> Config {
    gladly_kafka::config::load(Some(root().join("config/example.toml").as_path()))
        .expect("config/example.toml loads")
}

/// The ids of the simulator's list `name` (`GET /api/v1/<name>`, the demo's credentials).
async fn list_ids(sim_port: u16, name: &str) -> BTreeSet<String> {
    let (status, body) = get(
        &format!("http://127.0.0.1:{sim_port}/api/v1/{name}"),
        Some(("api@example.com", "simulator-token")),
    )
    .await
    .expect("the simulator answers");
    assert_eq!(status, 200, "{body}");
    let ids: BTreeSet<String> = serde_json::from_str::<Vec<serde_json::Value>>(&body)
        .expect("a JSON list")
        .iter()
        .map(|a| a["id"].as_str().expect("an id").to_string())
        .collect();
    assert!(!ids.is_empty(), "{name}");
    ids
}

/// The committed records of `topic`, once it has any; panics with the stack's logs after
/// 400 s.
async fn committed_records(
    kafka: &str,
    topic: &str,
    started: Instant,
    logs: &dyn Fn() -> String,
) -> Vec<support::read_back::ReadRecord> {
    loop {
        let mut client = rdkafka::config::ClientConfig::new();
        client.set("bootstrap.servers", kafka);
        let t = topic.to_string();
        let records = tokio::task::spawn_blocking(move || support::read_back::read_all(client, &t))
            .await
            .unwrap();
        if !records.is_empty() {
            return records;
        }
        assert!(
            started.elapsed() < Duration::from_secs(400),
            "no committed record in {topic} within 400 s of `up`:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_and_warehouse_profiles_bring_up_the_stack_publish_and_fill_the_tables() {
    // the compose file's gladly-kafka:local must be there: `up --no-build` does not build it
    assert_eq!(engine::image(), "gladly-kafka:local");
    let host = std::env::var("GLADLY_DOCKER_NETWORK").is_ok_and(|n| n == "host");
    let project = Project::new(host);
    let started = Instant::now();
    let up = project.run(&[&PROFILES[..], &["up", "-d", "--no-build"]].concat());
    assert!(
        up.status.success(),
        "compose up:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let metrics = port(&project.env, "METRICS_PORT", 9464);
    let logs = || {
        let out = project.run(&[&PROFILES[..], &["logs", "--tail", "40"]].concat());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // ready, and a transaction of every report committed (the demo config keeps to Gladly's
    // rate limits, so the first windows take a while)
    let base = format!("http://127.0.0.1:{metrics}");
    loop {
        let ready = matches!(
            get(&format!("{base}/health/ready"), None).await,
            Some((200, _))
        );
        let committed = match get(&format!("{base}/metrics"), None).await {
            Some((200, body)) => {
                let s = support::service::Scrape::parse(&body);
                Report::BUILT_IN.iter().all(|r| {
                    s.value(
                        "gladly_kafka_transactions_committed_total",
                        &[("report", r.name())],
                    ) > 0.0
                })
            }
            _ => false,
        };
        if ready && committed {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(400),
            "the service is not ready with a window of every report within 400 s of `up`:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "compose: ready, every report published, {:?} after `up`",
        started.elapsed()
    );

    // the simulator's inboxes (all of them, disabled ones included) and current agents, asked
    // of the simulator itself
    let sim = port(&project.env, "SIMULATOR_PORT", 8089);
    let inboxes = list_ids(sim, "inboxes").await;
    let agents = list_ids(sim, "agents").await;

    let kafka = format!("127.0.0.1:{}", port(&project.env, "KAFKA_PORT", 9092));
    let config = demo_config();
    for report in Report::BUILT_IN {
        let records = committed_records(&kafka, &config.report_topic(report), started, &logs).await;
        let (mut listed_agents, mut with_inbox) = (0, 0);
        for r in records.iter().filter_map(|r| r.value.as_ref()) {
            let value = support::pipeline::comparable(report, r);
            // a session routed to an inbox names one the simulator lists
            if let Some(inbox) = value.get("inbox_id").and_then(|a| a.as_str()) {
                assert!(
                    inboxes.contains(inbox),
                    "{report}: an inbox of the simulator: {value}"
                );
                with_inbox += 1;
            }
            // agents come and go (the list has today's), so: some of them, not all
            if let Some(agent) = value.get("agent_id").and_then(|a| a.as_str()) {
                listed_agents += usize::from(agents.contains(agent));
            }
        }
        match report {
            Report::WORK_SESSIONS => assert!(with_inbox > 0 && listed_agents > 0, "{report}"),
            Report::AGENT_SUMMARY => assert!(listed_agents > 0, "{report}"),
            _ => {}
        }
    }

    warehouse_tables_hold_the_topics(&project, &kafka, &config, started, &logs).await;
    drop(project);
}

/// The warehouse profile: connect-init registered the three sinks, each runs, and each table
/// has rows; every work-session row is a key of the topic (read after the table, which lags
/// it) with the topic's inbox, and the sink dropped the map and kept its JSON twin.
async fn warehouse_tables_hold_the_topics(
    project: &Project,
    kafka: &str,
    config: &Config,
    started: Instant,
    logs: &dyn Fn() -> String,
) {
    let connect = format!(
        "http://127.0.0.1:{}",
        port(&project.env, "CONNECT_PORT", 8083)
    );
    let db = support::warehouse::Warehouse {
        pg_url: format!(
            "postgresql://gladly:gladly@127.0.0.1:{}/gladly",
            port(&project.env, "POSTGRES_PORT", 5432)
        ),
        jdbc_url: String::new(),
        connect_url: connect.clone(),
    };
    let tables = ["work_sessions", "contacts", "agent_summary"];
    loop {
        let mut running = 0;
        for sink in tables {
            let url = format!("{connect}/connectors/gladly-warehouse-{sink}/status");
            if let Some((200, body)) = get(&url, None).await {
                let status: serde_json::Value = serde_json::from_str(&body).unwrap();
                let task = &status["tasks"][0]["state"];
                assert_ne!(task, "FAILED", "{sink}: {body}");
                running += usize::from(task == "RUNNING");
            }
        }
        let filled = running == tables.len()
            && tables.iter().all(|t| {
                let exists = db.query(&format!("SELECT to_regclass('warehouse.{t}') IS NOT NULL"));
                exists[0][0].as_deref() == Some("t")
                    && db.query(&format!("SELECT count(*) > 0 FROM warehouse.{t}"))[0][0].as_deref()
                        == Some("t")
            });
        if filled {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the warehouse tables are not all filled within 600 s of `up` \
             ({running} of {} sinks running):\n{}",
            tables.len(),
            logs()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!(
        "compose: warehouse tables filled {:?} after `up`",
        started.elapsed()
    );

    let rows =
        db.query("SELECT contact_session_id, agent_id, inbox_id FROM warehouse.work_sessions");
    let topic = config.report_topic(Report::WORK_SESSIONS);
    let records = committed_records(kafka, &topic, started, logs).await;
    let mut latest = std::collections::BTreeMap::new();
    for r in records.iter().filter_map(|r| r.value.as_ref()) {
        let v = support::pipeline::comparable(Report::WORK_SESSIONS, r);
        let key = (
            v["contact_session_id"].as_str().unwrap().to_string(),
            v["agent_id"].as_str().unwrap_or("").to_string(),
        );
        latest.insert(key, v["inbox_id"].as_str().map(str::to_string));
    }
    for row in &rows {
        let key = (row[0].clone().unwrap(), row[1].clone().unwrap_or_default());
        let inbox = latest
            .get(&key)
            .unwrap_or_else(|| panic!("table row {row:?} is not a key of {topic}"));
        assert_eq!(inbox, &row[2], "inbox of {key:?}: table vs topic");
    }
    let columns = db.columns("warehouse", "work_sessions");
    assert!(
        columns.contains_key("extra_json") && !columns.contains_key("extra"),
        "{columns:?}"
    );
    eprintln!(
        "compose: {} work-session rows in the warehouse, all keys of {topic}",
        rows.len()
    );
}
