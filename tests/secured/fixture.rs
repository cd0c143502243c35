//! This binary's own fixture: the secured stack from its `SECURED_*` variables, the Gladly
//! simulator as a `gladly-kafka simulate` subprocess, a config file for the real binary, the
//! binary run within a bound, and read-back over SASL_SSL.

use std::collections::BTreeMap;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use rdkafka::config::ClientConfig;

const HOW: &str = "start the secured stack first: \
                   `eval \"$(STACK_SECURITY=secured scripts/stack/stack up)\"` \
                   (or run everything with `scripts/test`)";

const BINARY: &str = env!("CARGO_BIN_EXE_gladly-kafka");

/// The simulator's login (its defaults).
pub const SIM_EMAIL: &str = "api@example.com";
pub const SIM_TOKEN: &str = "simulator-token";

/// The secured stack, as `STACK_SECURITY=secured scripts/stack/stack up` prints it.
#[derive(Debug, Clone)]
pub struct Stack {
    pub bootstrap: String,
    pub ca_file: String,
    pub scram: (String, String),
    pub plain: (String, String),
    pub registry_url: String,
    pub registry_login: (String, String),
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {HOW}"))
}

impl Stack {
    pub fn from_env() -> Stack {
        Stack {
            bootstrap: var("SECURED_KAFKA_BOOTSTRAP"),
            ca_file: var("SECURED_CA_FILE"),
            scram: (var("SECURED_SCRAM_USER"), var("SECURED_SCRAM_PASSWORD")),
            plain: (var("SECURED_PLAIN_USER"), var("SECURED_PLAIN_PASSWORD")),
            registry_url: var("SECURED_REGISTRY_URL"),
            registry_login: (
                var("SECURED_REGISTRY_USER"),
                var("SECURED_REGISTRY_PASSWORD"),
            ),
        }
    }

    /// `[kafka.properties]` for SASL_SSL with `mechanism` (`SCRAM-SHA-512` or `PLAIN`).
    pub fn properties(&self, mechanism: &str) -> BTreeMap<String, String> {
        let (user, password) = if mechanism == "PLAIN" {
            &self.plain
        } else {
            &self.scram
        };
        [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", mechanism),
            ("sasl.username", user),
            ("sasl.password", password),
            ("ssl.ca.location", &self.ca_file),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A client config for reading back, over SASL_SSL with SCRAM-SHA-512.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in self.properties("SCRAM-SHA-512") {
            c.set(k, v);
        }
        c
    }
}

#[path = "../common/config.rs"]
mod config;

pub use config::{set_path as set, unique_name as unique};

/// The instant the service is told it is (`--now`): three hours ago on the hour, so the
/// simulator (started at the real time, reports an hour behind) has the whole hour before it.
pub fn now() -> DateTime<Utc> {
    (Utc::now() - chrono::Duration::hours(3))
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap()
}

/// How fast the simulator's clock runs: a simulated microsecond per real second, so it stays
/// at the instant it started. Its reports show the world as of its now (less an hour), and
/// today's rows grow with it (contacts queued since, agents' logged-in time): on a clock that
/// moved, the truth asked for after a run would already differ from what the run was answered.
const SIM_SPEED: &str = "0.000001";

/// `gladly-kafka simulate` on a free loopback port, its clock held at the real time it started
/// ([`SIM_SPEED`]); killed when dropped.
pub struct Simulator {
    child: Child,
    pub url: String,
}

impl Simulator {
    pub fn start() -> Simulator {
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut child = Command::new(BINARY)
            .args(["simulate", "--no-limits", "--history-days", "2"])
            .args(["--speed", SIM_SPEED])
            .args(["--listen", &listen.to_string()])
            .args(["--email", SIM_EMAIL, "--token", SIM_TOKEN])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gladly-kafka simulate starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(listen).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("gladly-kafka simulate exited: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the simulator did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Simulator {
            child,
            url: format!("http://{listen}"),
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config for the binary: the simulator, the secured broker with `mechanism`, the HTTPS
/// registry with its CA and login, fresh topics and transactional ids, and every report
/// starting an hour (work sessions) or a day (the date reports) before `now`.
pub fn config(stack: &Stack, mechanism: &str, gladly: &str, now: DateTime<Utc>) -> toml::Table {
    let text = format!(
        r#"
[gladly]
host = "{gladly}"
email = "{SIM_EMAIL}"
token = "{SIM_TOKEN}"
requests_per_minute = 600
initial_backoff_ms = 20
max_backoff_secs = 1
max_attempts = 2
read_timeout_secs = 10

[kafka]
bootstrap_servers = "{bootstrap}"
transactional_id_prefix = "{txn}"
transaction_timeout_secs = 60

[registry]
url = "{registry}"
username = "{registry_user}"
password = "{registry_password}"
ca_file = "{ca_file}"

[topics]
prefix = "{prefix}"
partitions = 2

[reports.work_sessions]
start = "{ws_start}"

[reports.contacts]
start = "{day}"

[reports.agent_summary]
start = "{day}"

[pipeline]
retry_backoff_ms = 20
window_attempts = 2

[observe]
listen = ""
"#,
        bootstrap = stack.bootstrap,
        txn = unique("txn"),
        registry = stack.registry_url,
        registry_user = stack.registry_login.0,
        registry_password = stack.registry_login.1,
        ca_file = stack.ca_file,
        prefix = unique("secured"),
        ws_start = (now - chrono::Duration::hours(1)).to_rfc3339(),
        day = now.date_naive(),
    );
    let mut table: toml::Table = toml::from_str(&text).expect("a TOML config");
    for (k, v) in stack.properties(mechanism) {
        set(&mut table, &["kafka", "properties", &k], v);
    }
    table
}

/// Removes `path` from `table`.
pub fn unset(table: &mut toml::Table, path: &[&str]) {
    let (last, parents) = path.split_last().expect("a key");
    let mut t = table;
    for p in parents {
        t = t
            .get_mut(*p)
            .and_then(|v| v.as_table_mut())
            .expect("a section");
    }
    t.remove(*last);
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `gladly-kafka --config <table> --now <now> <args>`; fails the test if it is still
/// running after `bound`.
pub fn gladly_kafka(
    table: &toml::Table,
    now: DateTime<Utc>,
    args: &[&str],
    bound: Duration,
) -> Outcome {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), toml::to_string(table).unwrap()).unwrap();
    let (out, err) = (
        tempfile::NamedTempFile::new().unwrap(),
        tempfile::NamedTempFile::new().unwrap(),
    );
    let started = Instant::now();
    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(config.path())
        .args(["--now", &now.to_rfc3339()])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("GLADLY_KAFKA_CONFIG")
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .expect("the binary starts");
    let read = |f: &tempfile::NamedTempFile| std::fs::read_to_string(f.path()).unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Outcome {
                status,
                stdout: read(&out),
                stderr: read(&err),
            };
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "gladly-kafka {args:?} still ran after {bound:?}\nstdout:\n{}\nstderr:\n{}",
                read(&out),
                read(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// these tests read keys, values and timestamps only, not partitions, offsets or headers
#[allow(dead_code)]
#[path = "../common/read_back.rs"]
mod read_back;

pub use read_back::ReadRecord;

/// Every record of `topic` from offset 0 to its end, `read_committed`, over SASL_SSL.
pub fn read_all(stack: &Stack, topic: &str) -> Vec<ReadRecord> {
    read_back::read_all(stack.client_config(), topic)
}

/// The config's `topics.prefix`.
pub fn prefix(table: &toml::Table) -> String {
    table["topics"]["prefix"].as_str().unwrap().to_string()
}

/// The lines of `text` that are not empty.
pub fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}
