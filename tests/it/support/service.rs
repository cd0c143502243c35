//! The real `gladly-kafka` binary against a [`World`]: its configuration as a TOML file, a
//! free loopback port for `/metrics` and health, scraping, and a graceful stop (SIGTERM).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gladly_kafka::clock::Clock;
use gladly_kafka::report::Report;

use super::pipeline::World;

/// The world's config as a TOML table the binary can read (the token comes from the env).
pub fn config_table(w: &World) -> toml::Table {
    let c = &w.config;
    let ws = &c.reports.work_sessions;
    let text = format!(
        r#"
[gladly]
host = "{host}"
email = "{email}"
requests_per_minute = 60000
initial_backoff_ms = 20
max_backoff_secs = 1
read_timeout_secs = 10

[kafka]
bootstrap_servers = "{bootstrap}"
transactional_id_prefix = "{txn}"
transaction_timeout_secs = 60

[registry]
url = "{registry}"

[topics]
prefix = "{prefix}"
partitions = 2

[reports.work_sessions]
start = "{ws_start}"
lookback_minutes = {lookback}

[reports.contacts]
start = "{contacts_start}"
horizon_days = {contacts_horizon}

[reports.agent_summary]
start = "{agents_start}"
horizon_days = {agents_horizon}

[pipeline]
retry_backoff_ms = 20

[observe]
listen = ""
"#,
        host = c.gladly.host,
        email = c.gladly.email,
        bootstrap = c.kafka.bootstrap_servers,
        txn = c
            .kafka
            .transactional_id_prefix
            .as_deref()
            .expect("set by world()"),
        registry = c.registry.url,
        prefix = c.topics.prefix,
        ws_start = ws
            .start
            .expect("set by world()")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        lookback = ws.lookback_minutes,
        contacts_start = c.reports.contacts.start.expect("set by world()"),
        contacts_horizon = c.reports.contacts.horizon_days,
        agents_start = c.reports.agent_summary.start.expect("set by world()"),
        agents_horizon = c.reports.agent_summary.horizon_days,
    );
    toml::from_str(&text).expect("a TOML config")
}

/// Sets `dotted.key` in `table` (creating sections as needed).
pub fn set(table: &mut toml::Table, dotted: &str, value: impl Into<toml::Value>) {
    let parts: Vec<&str> = dotted.split('.').collect();
    super::config::set_path(table, &parts, value);
}

/// Writes `table` to a temporary file.
pub fn write_config(table: &toml::Table) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), toml::to_string(table).unwrap()).unwrap();
    f
}

/// A loopback address with a port nothing listens on right now.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `n` free loopback ports, all different: every listener is held until all are bound
/// (ports asked for one at a time can repeat, and a broker given one port for two listeners
/// does not start).
#[allow(dead_code)] // the Docker and testcontainers binaries use it
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// The binary with `--config`, `--now` at the world's clock and the simulator's token in
/// `GLADLY_KAFKA__GLADLY__TOKEN`.
pub fn command(w: &World, config: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gladly-kafka"));
    cmd.arg("--config")
        .arg(config)
        .arg("--now")
        .arg(
            w.clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
        .env("GLADLY_KAFKA__GLADLY__TOKEN", w.sim.config().token.clone())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// A running `gladly-kafka run` whose stderr goes to a file.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    log: tempfile::NamedTempFile,
    _config: tempfile::NamedTempFile,
}

impl Running {
    /// Starts `run` with `observe.listen` on a free port.
    pub fn start(w: &World, mut table: toml::Table) -> Running {
        let addr = free_addr();
        set(&mut table, "observe.listen", addr.to_string());
        let config = write_config(&table);
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = command(w, config.path())
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("the binary starts");
        Running {
            child,
            addr,
            log,
            _config: config,
        }
    }

    /// What the service logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// `GET path` on the metrics listener: status and body (`None` while nothing listens).
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://{}{path}", self.addr);
        let resp = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    /// Scrapes `/metrics`.
    pub async fn scrape(&self) -> Option<Scrape> {
        match self.get("/metrics").await? {
            (200, body) => Some(Scrape::parse(&body)),
            _ => None,
        }
    }

    /// Scrapes `/metrics` until every report has finished a successful cycle and returns that
    /// scrape; panics if a cycle failed, the service exited, or `within` passed.
    pub async fn after_first_cycles(&mut self, within: Duration) -> Scrape {
        let started = Instant::now();
        loop {
            self.assert_running();
            if let Some(s) = self.scrape().await {
                let failed = s.value("gladly_kafka_cycles_total", &[("result", "failed")]);
                assert_eq!(failed, 0.0, "a cycle failed:\n{}", self.log());
                let done = Report::BUILT_IN.iter().all(|r| {
                    s.value(
                        "gladly_kafka_cycles_total",
                        &[("report", r.name()), ("result", "ok")],
                    ) >= 1.0
                });
                if done {
                    return s;
                }
            }
            assert!(
                started.elapsed() < within,
                "every report finished a cycle within {within:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Panics with the service's log if it exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the service exited ({status}):\n{}", self.log());
        }
    }

    /// Sends SIGTERM and waits up to `within` for the exit status.
    pub async fn stop(mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {pid}");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "the service did not stop within {within:?} of SIGTERM:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed Prometheus text exposition.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// (name, labels, value) per sample line.
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
    /// `# TYPE` lines: name -> type.
    pub types: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses the text format (panics on a malformed line: the test must fail).
    pub fn parse(text: &str) -> Scrape {
        let mut s = Scrape::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                s.types.insert(name.to_string(), kind.to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {line}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    (name.to_string(), parse_labels(body))
                }
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "metric name {name:?}"
            );
            s.samples.push((name, labels, value));
        }
        s
    }

    /// The sum of the samples of `name` whose labels include `labels` (0 when none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, v)| v).sum()
    }

    /// Like [`Scrape::value`], but panics when no sample matches: for checks a missing
    /// metric must not pass (`ready < 3` holds for a 0 that was never exported).
    pub fn present(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let values: Vec<f64> = self.matching(name, labels).map(|(_, v)| v).collect();
        assert!(
            !values.is_empty(),
            "no sample of {name} with labels {labels:?} in the scrape"
        );
        values.iter().sum()
    }

    /// The samples of `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, l, v)| (l, *v))
    }
}

fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "label {key} is quoted");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape in {body}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}
