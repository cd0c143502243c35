//! The service configuration: one TOML file plus `GLADLY_KAFKA__SECTION__KEY` environment
//! overrides (`__` separates levels, names are case-insensitive), e.g.
//! `GLADLY_KAFKA__KAFKA__BOOTSTRAP_SERVERS=broker:9092` or `GLADLY_KAFKA__GLADLY__TOKEN=…`.
//!
//! Every invalid value is reported with its key (`reports.contacts.timezone`) and what to do.
//! Secrets (the Gladly token, registry and SASL passwords) are redacted wherever they print.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::report::Report;

/// Prefix of environment variables that override the config file.
pub const ENV_PREFIX: &str = "GLADLY_KAFKA__";

/// A configuration problem, always naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key has a value of the wrong type, or is unknown.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// Dotted path of the key, e.g. `reports.contacts.horizon_days`.
        key: String,
        /// What is wrong and what to set instead.
        message: String,
    },
}

impl ConfigError {
    /// An invalid-value error for `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Where each key's value came from, so errors can say "set by GLADLY_KAFKA__…".
#[derive(Debug, Default, Clone)]
struct Sources {
    /// dotted key -> (variable name, key path)
    from_env: BTreeMap<String, (String, Vec<String>)>,
}

/// Reads `path` (if given) and overlays the `GLADLY_KAFKA__…` variables of `env`.
fn layered_value(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(toml::Table, Sources), ConfigError> {
    let mut root = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Syntax {
                    path: p.to_path_buf(),
                    message: e.to_string(),
                })?
        }
        None => toml::Table::new(),
    };
    let mut sources = Sources::default();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                name,
                "empty section in the variable name: use GLADLY_KAFKA__SECTION__KEY",
            ));
        }
        let dotted = path.join(".");
        set_path(&mut root, &path, infer_literal(&raw), &name)?;
        sources.from_env.insert(dotted, (name, path));
    }
    Ok((root, sources))
}

/// An environment value as TOML: booleans and numbers typed, anything else a string.
fn infer_literal(raw: &str) -> toml::Value {
    let t = raw.trim();
    if t == "true" || t == "false" {
        return toml::Value::Boolean(t == "true");
    }
    if let Ok(i) = t.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if t.contains('.') {
        if let Ok(f) = t.parse::<f64>() {
            return toml::Value::Float(f);
        }
    }
    toml::Value::String(raw.to_string())
}

fn set_path(
    root: &mut toml::Table,
    path: &[String],
    value: toml::Value,
    var: &str,
) -> Result<(), ConfigError> {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut table = root;
    for (i, part) in parents.iter().enumerate() {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            ConfigError::invalid(
                path[..=i].join("."),
                format!("{var} sets a key below it, but it is not a section"),
            )
        })?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// Deserializes `table` into `T`, naming the failing key; an environment value that was read
/// as a number or boolean but is wanted as text is retried as text.
fn deserialize<T: DeserializeOwned>(
    mut table: toml::Table,
    sources: &Sources,
) -> Result<T, ConfigError> {
    for _ in 0..=sources.from_env.len() {
        let de = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let key = e.path().to_string();
                let message = e.inner().to_string();
                let env_path = sources.from_env.get(&key);
                let retry = message.contains("expected a string")
                    && env_path.is_some_and(|(_, path)| stringify_at(&mut table, path));
                if !retry {
                    let message = match env_path {
                        Some((var, _)) => format!("{message} (set by {var})"),
                        None => message,
                    };
                    return Err(ConfigError::invalid(key, message));
                }
            }
        }
    }
    Err(ConfigError::invalid(
        "",
        "could not resolve the configuration",
    ))
}

fn stringify_at(table: &mut toml::Table, path: &[String]) -> bool {
    let (last, parents) = path.split_last().expect("non-empty");
    let mut t = table;
    for p in parents {
        match t.get_mut(p).and_then(toml::Value::as_table_mut) {
            Some(next) => t = next,
            None => return false,
        }
    }
    match t.get_mut(last) {
        Some(v) if !v.is_str() => {
            let s = match v {
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return false,
            };
            *v = toml::Value::String(s);
            true
        }
        _ => false,
    }
}

/// Loads any configuration type from an optional TOML file plus the process environment.
pub fn load<T: DeserializeOwned>(path: Option<&Path>) -> Result<T, ConfigError> {
    load_from(path, std::env::vars())
}

/// Like [`load`], with the environment given explicitly (for tests).
pub fn load_from<T: DeserializeOwned>(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let (table, sources) = layered_value(path, env)?;
    deserialize(table, &sources)
}

/// The whole configuration: one TOML file plus `GLADLY_KAFKA__…` overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[gladly]`: organization host, credentials, pacing and retries.
    pub gladly: crate::gladly::GladlySettings,
    /// `[kafka]`: brokers, delivery mode, librdkafka pass-through.
    pub kafka: crate::kafka::KafkaSettings,
    /// `[registry]`: the Confluent-compatible schema registry.
    pub registry: crate::kafka::registry::RegistrySettings,
    /// `[topics]`: names and creation settings.
    pub topics: crate::kafka::TopicSettings,
    /// `[reports.*]`: which reports, how often, how far back.
    pub reports: ReportsConfig,
    /// `[conversations]`: the optional conversations topic (GET Conversation).
    pub conversations: ConversationsSettings,
    /// `[pipeline]`: row cap, window retries.
    pub pipeline: PipelineSettings,
    /// `[observe]`: metrics/health listener and log format.
    pub observe: ObserveSettings,
}

impl Config {
    /// Loads from an optional file plus the process environment, and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let c: Config = load(path)?;
        c.validate()?;
        Ok(c)
    }

    /// Checks every section, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.gladly.validate()?;
        self.kafka.validate()?;
        self.registry.validate()?;
        self.topics.validate()?;
        self.reports.validate()?;
        self.pipeline.validate()?;
        if self.enabled_reports().is_empty() {
            return Err(ConfigError::invalid(
                "reports",
                "every report is disabled: set reports.<name>.enabled = true for at least one",
            ));
        }
        if self.conversations.enabled && !self.reports.work_sessions.enabled {
            return Err(ConfigError::invalid(
                "conversations.enabled",
                "needs reports.work_sessions.enabled = true: conversations are fetched for the \
                 contacts that end in work-session windows",
            ));
        }
        Ok(())
    }

    /// The reports with `enabled = true`, in a stable order.
    pub fn enabled_reports(&self) -> Vec<Report> {
        Report::ALL
            .into_iter()
            .filter(|r| match r {
                Report::WorkSessions => self.reports.work_sessions.enabled,
                Report::Contacts => self.reports.contacts.enabled,
                Report::AgentSummary => self.reports.agent_summary.enabled,
            })
            .collect()
    }

    /// `kafka.transactional_id_prefix`, or `gladly-kafka.<topics.prefix>`.
    pub fn transactional_id_prefix(&self) -> String {
        self.kafka
            .transactional_id_prefix
            .clone()
            .unwrap_or_else(|| format!("gladly-kafka.{}", self.topics.prefix))
    }

    /// Settings of a date report (contacts or agent summary).
    pub fn date_settings(&self, report: Report) -> &DateReportSettings {
        match report {
            Report::AgentSummary => &self.reports.agent_summary,
            _ => &self.reports.contacts,
        }
    }

    /// The timezone a report's dates are in (UTC for work sessions).
    pub fn report_timezone(&self, report: Report) -> chrono_tz::Tz {
        match report {
            Report::WorkSessions => chrono_tz::UTC,
            r => self
                .date_settings(r)
                .timezone
                .parse()
                .unwrap_or(chrono_tz::UTC),
        }
    }

    /// Seconds between polls of a report in `run`.
    pub fn cadence(&self, report: Report) -> std::time::Duration {
        std::time::Duration::from_secs(match report {
            Report::WorkSessions => self.reports.work_sessions.cadence_secs,
            r => self.date_settings(r).cadence_secs,
        })
    }
}

/// `[conversations]`: for every conversation with a contact that ended in a work-session
/// window, GET its current state and publish it to `<prefix>.conversations`, in the window's
/// transaction. Paced by `gladly.requests_per_second`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversationsSettings {
    /// Publish the conversations topic (default false: one GET per conversation per window).
    pub enabled: bool,
}

/// `[pipeline]`: how windows are fetched and retried.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSettings {
    /// A response with this many rows is taken as truncated by Gladly's row cap: the window is
    /// split in two and both halves fetched. Gladly is said to cap at about 100,000.
    pub row_cap: u64,
    /// Attempts per window (a cut body, a broker outage) before the cycle fails.
    pub window_attempts: u32,
    /// First backoff between window attempts, in ms (doubles, full jitter, ≤ 60 s).
    pub retry_backoff_ms: u64,
    /// On SIGTERM/SIGINT, how long the open window may take to finish before it is aborted.
    pub shutdown_grace_secs: u64,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            row_cap: 100_000,
            window_attempts: 8,
            retry_backoff_ms: 1000,
            shutdown_grace_secs: 20,
        }
    }
}

impl PipelineSettings {
    /// Checks every value, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.row_cap < 2 {
            return Err(ConfigError::invalid(
                "pipeline.row_cap",
                "must be at least 2 (Gladly is said to cap responses at about 100000 rows)",
            ));
        }
        if self.window_attempts == 0 {
            return Err(ConfigError::invalid(
                "pipeline.window_attempts",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `[observe]`: metrics, health and logs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObserveSettings {
    /// Where `/metrics`, `/health/live` and `/health/ready` listen; empty to disable.
    pub listen: String,
    /// `human` (default) or `json`.
    pub log_format: crate::observe::LogFormat,
}

impl Default for ObserveSettings {
    fn default() -> Self {
        ObserveSettings {
            listen: "127.0.0.1:9464".into(),
            log_format: crate::observe::LogFormat::Human,
        }
    }
}

/// What users set per report under `[reports.<name>]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// `[reports.work_sessions]`.
    pub work_sessions: WorkSessionsSettings,
    /// `[reports.contacts]`.
    pub contacts: DateReportSettings,
    /// `[reports.agent_summary]`.
    pub agent_summary: DateReportSettings,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            work_sessions: WorkSessionsSettings::default(),
            contacts: DateReportSettings {
                horizon_days: 3,
                ..DateReportSettings::default()
            },
            agent_summary: DateReportSettings::default(),
        }
    }
}

/// Work-session polling: instants, `[checkpoint − lookback, now]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkSessionsSettings {
    /// Poll this report at all.
    pub enabled: bool,
    /// Seconds between polls in `run`.
    pub cadence_secs: u64,
    /// Minutes re-read before the checkpoint; at least Gladly's data delay (about 60).
    pub lookback_minutes: u64,
    /// Longest single request window, in minutes (larger spans are split).
    pub max_window_minutes: u64,
    /// Where the first poll starts when there is no checkpoint (default: 24 hours ago).
    pub start: Option<DateTime<Utc>>,
}

impl Default for WorkSessionsSettings {
    fn default() -> Self {
        WorkSessionsSettings {
            enabled: true,
            cadence_secs: 300,
            lookback_minutes: 120,
            max_window_minutes: 360,
            start: None,
        }
    }
}

/// Contact Export / Agent Summary polling: dates in a timezone, with a trailing horizon.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DateReportSettings {
    /// Poll this report at all.
    pub enabled: bool,
    /// Seconds between polls in `run`.
    pub cadence_secs: u64,
    /// Trailing days re-pulled every poll (rows change after the fact).
    pub horizon_days: u32,
    /// Longest single request, in days (larger spans are split).
    pub max_window_days: u32,
    /// IANA timezone the report's dates are in (sent explicitly; Gladly's default is the org's).
    pub timezone: String,
    /// Agent Summary only: `halfHourly`, `daily` (default), `weekly`, `monthly` or `quarterly`.
    pub aggregation_level: Option<String>,
    /// Gladly's `metricSet` name (default `ContactExportReportV3` / `AgentSummaryV2`).
    pub metric_set: Option<String>,
    /// First date polled when there is no checkpoint (default: `horizon_days` ago).
    pub start: Option<chrono::NaiveDate>,
}

impl Default for DateReportSettings {
    fn default() -> Self {
        DateReportSettings {
            enabled: true,
            cadence_secs: 3600,
            horizon_days: 3,
            max_window_days: 1,
            timezone: "UTC".into(),
            aggregation_level: None,
            metric_set: None,
            start: None,
        }
    }
}

impl DateReportSettings {
    /// The `metricSet` to request for `report`.
    pub fn metric_set(&self, report: Report) -> String {
        self.metric_set.clone().unwrap_or_else(|| {
            match report {
                Report::AgentSummary => "AgentSummaryV2",
                _ => "ContactExportReportV3",
            }
            .to_string()
        })
    }

    /// The aggregation level used for `report` (agent summary: `daily` unless set).
    pub fn aggregation_level(&self, report: Report) -> Option<String> {
        match report {
            Report::AgentSummary => Some(
                self.aggregation_level
                    .clone()
                    .unwrap_or_else(|| "daily".to_string()),
            ),
            _ => None,
        }
    }
}

const AGGREGATION_LEVELS: [&str; 5] = ["halfHourly", "daily", "weekly", "monthly", "quarterly"];

impl ReportsConfig {
    /// Checks every value, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ws = &self.work_sessions;
        let key = |k: &str| format!("reports.work_sessions.{k}");
        if ws.cadence_secs == 0 {
            return Err(ConfigError::invalid(
                key("cadence_secs"),
                "must be at least 1 (seconds between polls)",
            ));
        }
        if ws.lookback_minutes < 60 {
            return Err(ConfigError::invalid(
                key("lookback_minutes"),
                format!(
                    "{} is below Gladly's data delay of about 60 minutes, so late rows would be missed: set it to 60 or more",
                    ws.lookback_minutes
                ),
            ));
        }
        if ws.max_window_minutes < 2 {
            return Err(ConfigError::invalid(
                key("max_window_minutes"),
                "must be at least 2 minutes",
            ));
        }
        for (report, s) in [
            (Report::Contacts, &self.contacts),
            (Report::AgentSummary, &self.agent_summary),
        ] {
            let key = |k: &str| format!("reports.{report}.{k}");
            if s.cadence_secs == 0 {
                return Err(ConfigError::invalid(
                    key("cadence_secs"),
                    "must be at least 1",
                ));
            }
            if s.max_window_days == 0 {
                return Err(ConfigError::invalid(
                    key("max_window_days"),
                    "must be at least 1",
                ));
            }
            s.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
                ConfigError::invalid(
                    key("timezone"),
                    format!(
                        "{:?} is not an IANA timezone name: use e.g. \"UTC\" or \"America/New_York\"",
                        s.timezone
                    ),
                )
            })?;
            match (report, s.aggregation_level.as_deref()) {
                (Report::AgentSummary, Some(level)) if !AGGREGATION_LEVELS.contains(&level) => {
                    return Err(ConfigError::invalid(
                        key("aggregation_level"),
                        format!("{level:?} is not one of {}", AGGREGATION_LEVELS.join(", ")),
                    ))
                }
                (Report::Contacts, Some(_)) => {
                    return Err(ConfigError::invalid(
                        key("aggregation_level"),
                        "applies to agent_summary only: remove it from [reports.contacts]",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        #[serde(default)]
        reports: ReportsConfig,
        #[serde(default)]
        kafka: ProbeKafka,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct ProbeKafka {
        bootstrap_servers: String,
        properties: BTreeMap<String, String>,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_are_valid() {
        let p: Probe = load_from(None, env(&[])).unwrap();
        p.reports.validate().unwrap();
        assert_eq!(p.reports.work_sessions.lookback_minutes, 120);
        assert_eq!(
            p.reports
                .agent_summary
                .aggregation_level(Report::AgentSummary)
                .as_deref(),
            Some("daily")
        );
        assert_eq!(
            p.reports.contacts.metric_set(Report::Contacts),
            "ContactExportReportV3"
        );
    }

    #[test]
    fn env_overrides_file_with_typed_values() {
        let f = file(
            "[reports.work_sessions]\ncadence_secs = 60\n[kafka]\nbootstrap_servers = \"a:1\"\n",
        );
        let p: Probe = load_from(
            Some(f.path()),
            env(&[
                ("GLADLY_KAFKA__KAFKA__BOOTSTRAP_SERVERS", "b:2"),
                ("GLADLY_KAFKA__REPORTS__WORK_SESSIONS__ENABLED", "false"),
                ("GLADLY_KAFKA__KAFKA__PROPERTIES__sasl.password", "12345"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(p.kafka.bootstrap_servers, "b:2");
        assert!(!p.reports.work_sessions.enabled);
        assert_eq!(p.reports.work_sessions.cadence_secs, 60);
        // a numeric-looking secret stays text
        assert_eq!(p.kafka.properties["sasl.password"], "12345");
    }

    #[test]
    fn wrong_type_names_the_key_and_the_variable() {
        let err = load_from::<Probe>(
            None,
            env(&[("GLADLY_KAFKA__REPORTS__CONTACTS__HORIZON_DAYS", "soon")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("reports.contacts.horizon_days"), "{err}");
        assert!(
            err.contains("GLADLY_KAFKA__REPORTS__CONTACTS__HORIZON_DAYS"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let f = file("[reports.contacts]\nhorizon = 3\n");
        let err = load_from::<Probe>(Some(f.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("reports.contacts"), "{err}");
        assert!(err.contains("horizon"), "{err}");
    }

    #[test]
    fn validation_names_key_and_fix() {
        let mut r = ReportsConfig::default();
        r.work_sessions.lookback_minutes = 30;
        let err = r.validate().unwrap_err().to_string();
        assert!(
            err.contains("reports.work_sessions.lookback_minutes") && err.contains("60"),
            "{err}"
        );

        let mut r = ReportsConfig::default();
        r.contacts.timezone = "Mars/Olympus".into();
        let err = r.validate().unwrap_err().to_string();
        assert!(
            err.contains("reports.contacts.timezone") && err.contains("IANA"),
            "{err}"
        );

        let mut r = ReportsConfig::default();
        r.agent_summary.aggregation_level = Some("hourly".into());
        let err = r.validate().unwrap_err().to_string();
        assert!(
            err.contains("reports.agent_summary.aggregation_level"),
            "{err}"
        );
    }

    #[test]
    fn the_example_config_documents_a_valid_config() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let c: Config = load_from(
            Some(&path),
            env(&[("GLADLY_KAFKA__GLADLY__TOKEN", "t0ken")]),
        )
        .expect("config/example.toml parses");
        c.validate().expect("config/example.toml is valid");
        assert_eq!(c.reports.work_sessions.lookback_minutes, 120);
        assert_eq!(c.pipeline.row_cap, 100_000);
        let text = std::fs::read_to_string(&path).unwrap();
        for section in [
            "[gladly]",
            "[kafka]",
            "[kafka.properties]",
            "[registry]",
            "[topics]",
            "[reports.work_sessions]",
            "[reports.contacts]",
            "[reports.agent_summary]",
            "[conversations]",
            "[pipeline]",
            "[observe]",
        ] {
            assert!(text.contains(section), "example lacks {section}");
        }
    }

    /// The fields serde accepts in `section` (dotted; "" = top level), read from its
    /// "unknown field" error: the real list, whatever the docs say.
    fn fields_of(section: &str) -> Vec<String> {
        let mut var = ENV_PREFIX.to_string();
        for part in section.split('.').filter(|p| !p.is_empty()) {
            var.push_str(&part.to_ascii_uppercase());
            var.push_str("__");
        }
        var.push_str("ZZ_PROBE");
        let err = load_from::<Config>(None, vec![(var, "1".to_string())])
            .unwrap_err()
            .to_string();
        let expected = err
            .split("expected")
            .nth(1)
            .unwrap_or_else(|| panic!("{err}"));
        let fields: Vec<String> = expected
            .lines()
            .next()
            .unwrap()
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        assert!(!fields.is_empty(), "{err}");
        fields
    }

    /// Keys of `config/example.toml` per section, set or commented out (`# key = ...`), and
    /// set keys without a comment line right above them.
    fn example_keys(text: &str) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
        let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut uncommented = Vec::new();
        let mut section = String::new();
        let mut prev = "";
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
            } else {
                let commented = line.strip_prefix('#').map(str::trim_start);
                let body = commented.unwrap_or(line);
                if let Some((key, _)) = body.split_once(" = ") {
                    if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        keys.entry(section.clone())
                            .or_default()
                            .push(key.to_string());
                        if commented.is_none() && !prev.starts_with('#') {
                            uncommented.push(format!("{section}.{key}"));
                        }
                    }
                }
            }
            prev = line;
        }
        (keys, uncommented)
    }

    #[test]
    fn every_key_is_in_the_example_with_a_comment_and_in_the_readme() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let example = std::fs::read_to_string(dir.join("config/example.toml")).unwrap();
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let (keys, uncommented) = example_keys(&example);
        assert!(
            uncommented.is_empty(),
            "keys without a comment above them in config/example.toml: {uncommented:?}"
        );
        let mut sections = vec![];
        for top in fields_of("") {
            if top == "reports" {
                sections.extend(
                    fields_of("reports")
                        .into_iter()
                        .map(|r| format!("reports.{r}")),
                );
            } else {
                sections.push(top);
            }
        }
        assert!(sections.len() >= 9, "{sections:?}");
        let mut missing = vec![];
        for section in &sections {
            assert!(
                example.contains(&format!("[{section}]")),
                "config/example.toml lacks [{section}]"
            );
            for field in fields_of(section) {
                if section == "kafka" && field == "properties" {
                    assert!(example.contains("[kafka.properties]"));
                    continue;
                }
                let dotted = format!("{section}.{field}");
                // shared with agent_summary, refused for contacts: documented in the README only
                let not_for_contacts = dotted == "reports.contacts.aggregation_level";
                if !not_for_contacts && !keys.get(section).is_some_and(|k| k.contains(&field)) {
                    missing.push(format!("{dotted} (config/example.toml)"));
                }
                if !readme.contains(&format!("`{dotted}`")) {
                    missing.push(format!("{dotted} (README configuration reference)"));
                }
            }
        }
        assert!(missing.is_empty(), "undocumented keys: {missing:#?}");
    }

    #[test]
    fn conversations_need_work_sessions() {
        let mut c: Config = load_from(
            None,
            env(&[
                ("GLADLY_KAFKA__GLADLY__HOST", "https://acme.gladly.com"),
                ("GLADLY_KAFKA__GLADLY__EMAIL", "api@acme.com"),
                ("GLADLY_KAFKA__GLADLY__TOKEN", "t"),
                ("GLADLY_KAFKA__REGISTRY__URL", "http://127.0.0.1:8081"),
                ("GLADLY_KAFKA__CONVERSATIONS__ENABLED", "true"),
            ]),
        )
        .unwrap();
        assert!(!ConversationsSettings::default().enabled, "off by default");
        c.validate().unwrap();
        c.reports.work_sessions.enabled = false;
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("conversations.enabled") && err.contains("reports.work_sessions.enabled"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_value_in_the_whole_config_names_the_key() {
        let err = load_from::<Config>(None, env(&[("GLADLY_KAFKA__KAFKA__DELIVERY", "twice")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka.delivery"), "{err}");
    }

    #[test]
    fn syntax_error_names_the_file() {
        let f = file("[reports\n");
        let err = load_from::<Probe>(Some(f.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid TOML"), "{err}");
    }
}
