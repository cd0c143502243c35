//! The warehouse fixture: PostgreSQL and Kafka Connect started by
//! `scripts/stack/stack warehouse-up` (found through `WAREHOUSE_PG_URL`, `WAREHOUSE_JDBC_URL`
//! and `CONNECT_URL`), or a private Connect worker a test starts and stops itself; the shipped
//! sink configs of `deploy/connect/sinks/` with only hosts, ports, topic prefix and schema
//! replaced; SQL through `psql`; and tables compared with an expectation built by test code.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// The warehouse's addresses.
pub struct Warehouse {
    /// `postgresql://…` URL for psql.
    pub pg_url: String,
    /// The same database as a JDBC URL, for the sink.
    pub jdbc_url: String,
    /// Kafka Connect's REST API.
    pub connect_url: String,
}

/// The warehouse from the environment; without it, one message and the end of the process.
pub fn warehouse() -> &'static Warehouse {
    static W: OnceLock<Warehouse> = OnceLock::new();
    W.get_or_init(|| {
        let var = |k| std::env::var(k).ok();
        match (
            var("WAREHOUSE_PG_URL"),
            var("WAREHOUSE_JDBC_URL"),
            var("CONNECT_URL"),
        ) {
            (Some(pg_url), Some(jdbc_url), Some(connect_url)) => Warehouse {
                pg_url,
                jdbc_url,
                connect_url,
            },
            _ => {
                let _ = writeln!(
                    std::io::stderr(),
                    "\nThe warehouse tests need PostgreSQL and Kafka Connect, found through \
                     WAREHOUSE_PG_URL, WAREHOUSE_JDBC_URL and CONNECT_URL. Run every test with \
                     `scripts/test`, or start them after the stack:\n    \
                     eval \"$(scripts/stack/stack warehouse-up)\"\n"
                );
                std::process::exit(2);
            }
        }
    })
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A PostgreSQL schema name of its own (lower case, `_` instead of `-`).
pub fn unique_schema(prefix: &str) -> String {
    super::unique_name(prefix).replace('-', "_").to_lowercase()
}

impl Warehouse {
    /// Runs `sql`; returns its rows, each cell as text (`None` for SQL NULL).
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        const NULL: &str = "\u{1}NULL";
        let out = Command::new("psql")
            .args([
                &self.pg_url,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-F", "\u{1f}", "-P", &format!("null={NULL}"), "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split('\u{1f}')
                    .map(|c| (c != NULL).then(|| c.to_string()))
                    .collect()
            })
            .collect()
    }

    /// Runs `sql` for its effect.
    pub fn execute(&self, sql: &str) {
        self.query(sql);
    }

    /// The columns of `schema.table` with their SQL types (empty if there is no such table).
    pub fn columns(&self, schema: &str, table: &str) -> BTreeMap<String, String> {
        self.query(&format!(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = '{schema}' AND table_name = '{table}'"
        ))
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect()
    }
}

/// Where a test's sinks read and write: its topic prefix, its schema, its Connect worker.
#[derive(Clone)]
pub struct Target {
    /// The topic prefix the pipeline under test publishes with.
    pub prefix: String,
    /// The PostgreSQL schema the tables land in.
    pub schema: String,
    /// The Connect worker's REST API.
    pub connect_url: String,
}

impl Target {
    /// The dead-letter topic the shipped configs report errant records to, under the prefix.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.warehouse.dead_letter", self.prefix)
    }

    /// The connector's name for the shipped sink `sink`.
    pub fn connector(&self, sink: &str) -> String {
        format!("{}-{sink}", self.schema)
    }

    /// The shipped config `deploy/connect/sinks/<sink>.json`, pointed at this target: only
    /// the connector name, topic prefix, database URL and schema change.
    pub fn sink_config(&self, sink: &str) -> Map<String, Value> {
        let path = repo().join(format!("deploy/connect/sinks/{sink}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let mut config: Map<String, Value> = serde_json::from_str(&text).expect("JSON");
        let mut set = |key: &str, f: &dyn Fn(&str) -> String| {
            let v = config[key]
                .as_str()
                .unwrap_or_else(|| panic!("{sink}: {key}"));
            let new = f(v);
            assert_ne!(new, v, "{sink}: {key} = {v} has the expected shape");
            config.insert(key.into(), Value::String(new));
        };
        let prefix = |v: &str| v.replacen("gladly.", &format!("{}.", self.prefix), 1);
        set("name", &|v| v.replacen("gladly-warehouse", &self.schema, 1));
        set("topics", &prefix);
        set("errors.deadletterqueue.topic.name", &prefix);
        set("connection.url", &|_| warehouse().jdbc_url.clone());
        set("collection.name.format", &|v| {
            v.replacen("warehouse.", &format!("{}.", self.schema), 1)
        });
        config
    }

    /// PUTs the shipped sink `sink` to the worker (creates or updates it).
    pub async fn put_sink(&self, sink: &str) {
        let config = self.sink_config(sink);
        let name = self.connector(sink);
        assert_eq!(config["name"], Value::String(name.clone()));
        let url = format!("{}/connectors/{name}/config", self.connect_url);
        let res = reqwest::Client::new()
            .put(&url)
            .json(&config)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert!(status.is_success(), "PUT {url}: {status} {body}");
    }

    /// The connector's status (GET /connectors/<name>/status), if the worker knows it.
    pub async fn status(&self, sink: &str) -> Option<Value> {
        let url = format!(
            "{}/connectors/{}/status",
            self.connect_url,
            self.connector(sink)
        );
        let res = reqwest::get(&url).await.ok()?;
        if !res.status().is_success() {
            return None;
        }
        res.json().await.ok()
    }

    /// Asserts the connector and its task run (a failed task's trace in the message).
    pub async fn assert_running(&self, sink: &str) {
        let s = self.status(sink).await.expect("the connector exists");
        let tasks = s["tasks"].as_array().cloned().unwrap_or_default();
        assert!(
            s["connector"]["state"] == "RUNNING"
                && !tasks.is_empty()
                && tasks.iter().all(|t| t["state"] == "RUNNING"),
            "{sink}: {s:#}"
        );
    }

    /// Deletes the connector (its table stays).
    pub async fn delete_sink(&self, sink: &str) {
        let url = format!("{}/connectors/{}", self.connect_url, self.connector(sink));
        let _ = reqwest::Client::new().delete(&url).send().await;
    }
}

/// A Kafka Connect worker of a test's own (`scripts/stack/stack connect-up` with a private
/// `STACK_DIR`), reading the shared stack's broker and registry; stopped when dropped.
pub struct PrivateWorker {
    dir: tempfile::TempDir,
    /// Its REST API.
    pub url: String,
}

impl PrivateWorker {
    fn stack(dir: &Path, verb: &str) -> String {
        let out = Command::new(repo().join("scripts/stack/stack"))
            .arg(verb)
            .env("STACK_DIR", dir)
            .env("KAFKA_BOOTSTRAP", super::kafka_bootstrap())
            .env("SCHEMA_REGISTRY_URL", super::schema_registry_url())
            .output()
            .expect("the stack script runs");
        assert!(
            out.status.success(),
            "stack {verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts a worker (no connectors).
    pub fn start() -> PrivateWorker {
        let dir = tempfile::tempdir().unwrap();
        let env = Self::stack(dir.path(), "connect-up");
        let url = env
            .trim()
            .strip_prefix("export CONNECT_URL=")
            .unwrap_or_else(|| panic!("connect-up printed {env}"))
            .to_string();
        PrivateWorker { dir, url }
    }

    /// Stops the worker (its port and offsets file are kept for [`PrivateWorker::restart`]).
    pub fn stop(&self) {
        Self::stack(self.dir.path(), "connect-down");
    }

    /// Starts the stopped worker again on the same port.
    pub fn restart(&self) {
        let env = Self::stack(self.dir.path(), "connect-up");
        assert!(env.contains(&self.url), "same port: {env}");
    }

    /// The worker's folder (its log is `warehouse/connect/connect.out`).
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("warehouse/connect/connect.out")
    }
}

impl Drop for PrivateWorker {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/stack/stack"))
            .arg("connect-down")
            .env("STACK_DIR", self.dir.path())
            .output();
    }
}

/// How a column's values compare: as text, as an instant, or as a number.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Compared as trimmed text.
    Text,
    /// An instant: RFC 3339, or a date (midnight UTC); compared at millisecond precision.
    Ts,
    /// A number, compared as an `f64`.
    Num,
    /// JSON text, compared as parsed JSON.
    Json,
}

/// `raw` in the form both sides are compared in; `None` for an empty cell.
pub fn normalize(kind: Kind, raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    Some(match kind {
        Kind::Text => raw.to_string(),
        Kind::Ts => {
            let ms = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
                t.timestamp_millis()
            } else if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
            } else {
                panic!("not an instant: {raw}")
            };
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }
        Kind::Num => {
            let n: f64 = raw
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {raw}"));
            n.to_string()
        }
        Kind::Json => serde_json::from_str::<serde_json::Value>(raw)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"))
            .to_string(),
    })
}

/// What one table should hold: its key columns and some value columns, and per key the
/// values (normalized), computed by test code from the simulator.
#[derive(Clone, Debug)]
pub struct Expected {
    /// The table (and shipped sink) name.
    pub table: &'static str,
    /// Key columns (also the record key's fields).
    pub key: Vec<(&'static str, Kind)>,
    /// Value columns compared (also the record value's fields).
    pub values: Vec<(&'static str, Kind)>,
    /// Key -> values, in the order of `key` and `values`.
    pub rows: BTreeMap<Vec<String>, Vec<Option<String>>>,
}

impl Expected {
    /// The SQL reading the compared columns of `schema.<table>` as text.
    fn select(&self, schema: &str) -> String {
        let expr = |(c, k): &(&str, Kind)| match k {
            Kind::Ts => format!("to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"),
            _ => format!("{c}::text"),
        };
        let cols: Vec<String> = self.key.iter().chain(&self.values).map(expr).collect();
        format!("SELECT {} FROM {schema}.{}", cols.join(", "), self.table)
    }

    /// Rows of already-normalized cells (key cells first) keyed like [`Expected::rows`].
    pub fn keyed(
        &self,
        rows: Vec<Vec<Option<String>>>,
    ) -> BTreeMap<Vec<String>, Vec<Option<String>>> {
        let n = self.key.len();
        rows.into_iter()
            .map(|r| {
                let key = r[..n]
                    .iter()
                    .map(|c| c.clone().unwrap_or_default())
                    .collect();
                (key, r[n..].to_vec())
            })
            .collect()
    }

    /// How `got` differs from the expectation; `None` when equal.
    pub fn differences(&self, got: &BTreeMap<Vec<String>, Vec<Option<String>>>) -> Option<String> {
        if *got == self.rows {
            return None;
        }
        let missing: Vec<_> = self.rows.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<_> = got.keys().filter(|k| !self.rows.contains_key(*k)).collect();
        let differing: Vec<_> = self
            .rows
            .iter()
            .filter_map(|(k, v)| got.get(k).filter(|g| *g != v).map(|g| (k, v, g)))
            .collect();
        Some(format!(
            "{}: {} expected rows, {} found; {} missing (e.g. {:?}), {} extra (e.g. {:?}), \
             {} differing (key, expected, found; columns {:?}): {:?}",
            self.table,
            self.rows.len(),
            got.len(),
            missing.len(),
            &missing[..missing.len().min(3)],
            extra.len(),
            &extra[..extra.len().min(3)],
            differing.len(),
            self.values.iter().map(|v| v.0).collect::<Vec<_>>(),
            &differing[..differing.len().min(2)]
        ))
    }

    /// The table's rows, normalized.
    pub fn read_table(
        &self,
        w: &Warehouse,
        schema: &str,
    ) -> BTreeMap<Vec<String>, Vec<Option<String>>> {
        let kinds: Vec<Kind> = self.key.iter().chain(&self.values).map(|c| c.1).collect();
        let rows = w
            .query(&self.select(schema))
            .into_iter()
            .map(|r| {
                r.iter()
                    .zip(&kinds)
                    .map(|(c, k)| c.as_deref().and_then(|c| normalize(*k, c)))
                    .collect()
            })
            .collect();
        self.keyed(rows)
    }

    /// Polls the table until it equals the expectation; panics with the last difference
    /// after `timeout`.
    pub fn await_table(&self, w: &Warehouse, schema: &str, timeout: Duration) {
        let start = Instant::now();
        let exists = |w: &Warehouse| !w.columns(schema, self.table).is_empty();
        loop {
            let diff = if exists(w) {
                self.differences(&self.read_table(w, schema))
            } else {
                Some(format!("{schema}.{} does not exist yet", self.table))
            };
            let Some(diff) = diff else { return };
            assert!(
                start.elapsed() < timeout,
                "after {timeout:?} the table differs from the truth: {diff}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
