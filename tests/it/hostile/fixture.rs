//! The real `gladly-kafka` binary against a [`Hostile`] server and the stack's Kafka and
//! registry (`KAFKA_BOOTSTRAP`, `SCHEMA_REGISTRY_URL`, started by `scripts/stack/stack up`):
//! a config TOML in a tempfile, `once` (or `run`) run to its end with its peak RSS measured
//! from `/proc`, and the topics read back with `read_committed`.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::server::{Answer, Hostile};
use crate::support;

/// The work-session topic after the prefix.
const WORK_SESSIONS_TOPIC: &str = gladly_kafka::report::BUILT_IN[0].topic;

/// The instant the binary believes it is (`--now`).
pub const NOW: &str = "2024-03-14T12:00:00Z";
/// Where work sessions start without a checkpoint: one window, `[START, NOW]`.
pub const START: &str = "2024-03-14T11:00:00Z";

/// One hostile case: the server, the config, the topics' prefix.
pub struct Case {
    pub server: Hostile,
    pub prefix: String,
    table: toml::Table,
}

/// How a run of the binary ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    /// Peak resident set (VmHWM) of the child, in KiB.
    pub peak_rss_kib: u64,
}

impl Outcome {
    /// stdout and stderr, for assertion messages.
    pub fn output(&self) -> String {
        let cut = |s: &str| s.chars().take(20_000).collect::<String>();
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }

    /// The exit code (panics on a signal death).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal:\n{}", self.output()))
    }
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Read {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

impl Read {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Case {
    /// A hostile server with `answers` and a config polling only work sessions, one window
    /// `[START, NOW]`, with fast retries: 2 attempts per request, 2 per window.
    pub async fn new(answers: Vec<Answer>) -> Case {
        let server = Hostile::start(answers).await;
        let prefix = support::unique_name("hostile");
        let text = format!(
            r#"
[gladly]
host = "{host}"
email = "api@example.com"
token = "hostile-token"
requests_per_minute = 60000
read_timeout_secs = 10
max_attempts = 2
initial_backoff_ms = 10
max_backoff_secs = 1

[kafka]
bootstrap_servers = "{bootstrap}"
transactional_id_prefix = "{prefix}"
transaction_timeout_secs = 60

[registry]
url = "{registry}"

[topics]
prefix = "{prefix}"
partitions = 1

[reports.work_sessions]
start = "{START}"

[reports.contacts]
enabled = false

[reports.agent_summary]
enabled = false

[pipeline]
window_attempts = 2
retry_backoff_ms = 10
shutdown_grace_secs = 10

[observe]
listen = ""
"#,
            host = server.url,
            bootstrap = support::kafka_bootstrap(),
            registry = support::schema_registry_url(),
        );
        Case {
            server,
            prefix,
            table: toml::from_str(&text).expect("a TOML config"),
        }
    }

    /// Sets `dotted.key` in the config.
    pub fn set(&mut self, dotted: &str, value: impl Into<toml::Value>) -> &mut Case {
        support::service::set(&mut self.table, dotted, value);
        self
    }

    /// Starts `args` of the binary; stdout and stderr go to files.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(config.path(), toml::to_string(&self.table).unwrap()).unwrap();
        let stdout = tempfile::NamedTempFile::new().unwrap();
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gladly-kafka"))
            .arg("--config")
            .arg(config.path())
            .arg("--now")
            .arg(NOW)
            .args(args)
            .env_remove("GLADLY_KAFKA_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout.reopen().unwrap())
            .stderr(stderr.reopen().unwrap())
            .spawn()
            .expect("the binary starts");
        Running {
            child,
            started: Instant::now(),
            peak_rss_kib: 0,
            stdout,
            stderr,
            _config: config,
        }
    }

    /// Runs `once` to its end (at most `within`), off the async runtime.
    pub async fn once(&self, within: Duration) -> Outcome {
        let mut running = self.spawn(&["once"]);
        tokio::task::spawn_blocking(move || running.wait(within))
            .await
            .unwrap()
    }

    /// Every record of `<prefix>.<name>`, read with `read_committed`.
    pub async fn topic(&self, name: &str) -> Vec<Read> {
        let topic = format!("{}.{name}", self.prefix);
        tokio::task::spawn_blocking(move || read_committed(&topic))
            .await
            .unwrap()
    }

    /// Records with a value (not tombstones) of the work-session topic.
    pub async fn records(&self) -> Vec<Read> {
        let all = self.topic(WORK_SESSIONS_TOPIC).await;
        all.into_iter().filter(|r| r.value.is_some()).collect()
    }

    /// The `run/work_sessions` checkpoint's position, if one was committed.
    pub async fn checkpoint(&self) -> Option<String> {
        let all = self.topic("_checkpoints").await;
        let last = all
            .iter()
            .rev()
            .find(|r| r.key.as_deref() == Some(b"run/work_sessions".as_slice()))?;
        let v: serde_json::Value = serde_json::from_slice(last.value.as_ref()?).unwrap();
        Some(v["position"]["instant"].as_str()?.to_string())
    }

    /// Asserts nothing of the window became visible: no record, no dead letter, no
    /// checkpoint.
    pub async fn assert_nothing_published(&self, out: &Outcome) {
        assert!(
            self.topic(WORK_SESSIONS_TOPIC).await.is_empty(),
            "no record: {}",
            out.output()
        );
        assert!(
            self.topic("dead_letter").await.is_empty(),
            "no dead letter: {}",
            out.output()
        );
        assert_eq!(self.checkpoint().await, None, "the checkpoint did not move");
    }
}

/// A running binary.
pub struct Running {
    child: Child,
    started: Instant,
    peak_rss_kib: u64,
    stdout: tempfile::NamedTempFile,
    stderr: tempfile::NamedTempFile,
    _config: tempfile::NamedTempFile,
}

impl Running {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Sends `signal` (`TERM`, `INT`).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
    }

    /// Waits for the exit (killing the child after `within`), sampling its peak RSS.
    pub fn wait(&mut self, within: Duration) -> Outcome {
        let status = loop {
            if let Some(hwm) = vm_hwm_kib(self.child.id()) {
                self.peak_rss_kib = self.peak_rss_kib.max(hwm);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the binary did not end within {within:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Outcome {
            status,
            stdout: std::fs::read_to_string(self.stdout.path()).unwrap_or_default(),
            stderr: self.stderr(),
            took: self.started.elapsed(),
            peak_rss_kib: self.peak_rss_kib,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Every record of `topic` from the start to its end, `read_committed` (the shared reader),
/// headers as text.
fn read_committed(topic: &str) -> Vec<Read> {
    support::kafka::read_all(topic)
        .into_iter()
        .map(|r| Read {
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        String::from_utf8_lossy(&v.unwrap_or_default()).into_owned(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// The work-session report's 19 columns as a header line.
pub fn header() -> String {
    gladly_kafka::report::WORK_SESSION_COLUMNS.join(",") + "\n"
}

/// A well-formed work-session row of an open contact `cs<i>` created inside the window,
/// with `edits` (column, cell) applied.
pub fn row(i: usize, edits: &[(&str, &str)]) -> String {
    let cols = gladly_kafka::report::WORK_SESSION_COLUMNS;
    let mut cells: Vec<String> = cols
        .iter()
        .map(|c| match *c {
            "contact_session_id" => format!("cs{i}"),
            "contact_session_created_at" => "2024-03-14T11:10:00Z".into(),
            "agent_id" => format!("ag{}", i % 7),
            "channel" => "CHAT".into(),
            "inbox_id" => "inb1".into(),
            "work_session_handle_time_sec" => "12".into(),
            _ => String::new(),
        })
        .collect();
    for (col, cell) in edits {
        let at = cols.iter().position(|c| c == col).expect("a column");
        cells[at] = cell.to_string();
    }
    cells.join(",") + "\n"
}

/// A header and `n` well-formed rows.
pub fn body(n: usize) -> String {
    header() + &(0..n).map(|i| row(i, &[])).collect::<String>()
}
