//! `[reports.*]`: which reports are polled, how often and how far back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::reread::{self, DateTier, InstantTier};
use crate::config_error::ConfigError;
use crate::report::{
    BuiltIn, DerivedFormat, Format, Preset, Report, ReportSpec, Source, BUILT_IN, PRESETS,
};

/// What users set per report under `[reports.<name>]`: the three built-in reports, and any
/// other Gladly report configured by columns (`[reports.conversation_export]`, …).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct ReportsConfig {
    /// `[reports.work_sessions]`.
    pub work_sessions: WorkSessionsSettings,
    /// `[reports.contacts]`.
    pub contacts: DateReportSettings,
    /// `[reports.agent_summary]`.
    pub agent_summary: DateReportSettings,
    /// Every other `[reports.<name>]`: a report configured by columns (`preset`, or
    /// `metric_set`, `key` and `anchor`), published to `<prefix>.<name>`.
    #[serde(flatten)]
    pub configured: BTreeMap<String, DateReportSettings>,
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
            configured: BTreeMap::new(),
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
    /// Re-read tiers: `None` for the defaults ([`reread::WORK_SESSION_TIERS`]), empty for
    /// none.
    #[serde(deserialize_with = "reread::deserialize_tiers")]
    pub reread: Option<Vec<InstantTier>>,
}

impl Default for WorkSessionsSettings {
    fn default() -> Self {
        WorkSessionsSettings {
            enabled: true,
            cadence_secs: 300,
            lookback_minutes: 120,
            max_window_minutes: 360,
            start: None,
            reread: None,
        }
    }
}

/// Polling of a report requested by dates (`metricSet`): Contact Export, Agent Summary, and
/// every report configured by columns. Dates are in a timezone, with a trailing horizon.
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
    /// Re-read tiers: `None` for the defaults ([`reread::DATE_TIERS`]), empty for none.
    #[serde(deserialize_with = "reread::deserialize_tiers")]
    pub reread: Option<Vec<DateTier>>,
    /// Gladly's `filters` object, sent as given (e.g. `{ inboxes = ["…"] }`; each filter
    /// applies to certain metric sets only, and Gladly answers 400 to the others).
    pub filters: Option<toml::Table>,
    /// Configured reports: a known report's `metricSet`, key and anchor (`conversation_export`,
    /// `contact_timestamps`, `conversation_timestamps`, `work_session_events_v4`).
    pub preset: Option<String>,
    /// Configured reports: the columns whose cells make the key (header names).
    pub key: Option<Vec<String>>,
    /// Configured reports: the date-time column that is each row's event time.
    pub anchor: Option<String>,
    /// Configured reports: Gladly serves the metric set over instants too
    /// (`startAtTime`/`endAtTime`), so a day too big for one answer is split in halves.
    pub time_precise: bool,
    /// Configured reports: Gladly takes only a time range for the metric set, so every
    /// window is sent as `startAtTime`/`endAtTime` (default: the preset's, else `false`).
    pub time_range: Option<bool>,
    /// Configured reports: the topic (default `<prefix>.<name>`).
    pub topic: Option<String>,
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
            reread: None,
            filters: None,
            preset: None,
            key: None,
            anchor: None,
            time_precise: false,
            time_range: None,
            topic: None,
        }
    }
}

const AGGREGATION_LEVELS: [&str; 5] = ["halfHourly", "daily", "weekly", "monthly", "quarterly"];

impl ReportsConfig {
    /// The sections of the reports requested by dates, by name: the built-in ones, then the
    /// configured ones.
    pub fn dated(&self) -> impl Iterator<Item = (&str, &DateReportSettings)> {
        [
            ("contacts", &self.contacts),
            ("agent_summary", &self.agent_summary),
        ]
        .into_iter()
        .chain(self.configured.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// The `[reports.<name>]` section of a report requested by dates.
    pub fn date_section(&self, report: Report) -> Option<&DateReportSettings> {
        self.dated()
            .find(|(name, _)| *name == report.name())
            .map(|(_, s)| s)
    }

    /// Whether `report` is polled: its section's `enabled` (a report with no section is not).
    pub fn enabled(&self, report: Report) -> bool {
        if BuiltIn::named(report).is_some_and(|b| b.metric_set.is_none()) {
            return self.work_sessions.enabled;
        }
        self.date_section(report).is_some_and(|s| s.enabled)
    }

    /// The spec of a report requested by dates: its built-in defaults or its preset, with what
    /// its section sets. `None` for a report with no such section.
    pub(super) fn date_spec(
        &self,
        report: Report,
        topic: impl FnOnce(&DateReportSettings) -> String,
    ) -> Option<ReportSpec> {
        let s = self.date_section(report)?;
        let timezone = s.timezone.parse().unwrap_or(chrono_tz::UTC);
        let filters = s
            .filters
            .as_ref()
            .and_then(|f| serde_json::to_value(f).ok());
        let topic = topic(s);
        if let Some(b) = BuiltIn::named(report) {
            let default = b.metric_set.unwrap_or_default();
            let metric_set = s.metric_set.clone().unwrap_or_else(|| default.to_string());
            return Some(ReportSpec {
                report,
                source: Source::MetricSet {
                    time_precise: b.time_precise && metric_set == default,
                    time_range: false,
                    metric_set,
                    aggregation_level: b
                        .aggregation_level
                        .map(|d| s.aggregation_level.clone().unwrap_or_else(|| d.into())),
                    filters,
                },
                format: Format::Typed(b.format),
                timezone,
                topic,
            });
        }
        let preset = s.preset.as_deref().and_then(Preset::named);
        let metric_set = s
            .metric_set
            .clone()
            .or_else(|| preset.map(|p| p.metric_set.to_string()))?;
        let key = s
            .key
            .clone()
            .or_else(|| preset.map(|p| p.key.iter().map(|k| k.to_string()).collect()))?;
        let anchor = s
            .anchor
            .clone()
            .or_else(|| preset.map(|p| p.anchor.to_string()))?;
        Some(ReportSpec {
            report,
            source: Source::MetricSet {
                metric_set,
                aggregation_level: s.aggregation_level.clone(),
                time_precise: s.time_precise,
                time_range: s
                    .time_range
                    .unwrap_or_else(|| preset.is_some_and(|p| p.time_range)),
                filters,
            },
            format: Format::Derived(DerivedFormat { key, anchor }),
            timezone,
            topic,
        })
    }

    /// Checks every value, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_work_sessions()?;
        for (name, s) in self.dated() {
            let key = |k: &str| format!("reports.{name}.{k}");
            let report = Report::named(name)
                .map_err(|e| ConfigError::invalid(format!("reports.{name}"), e.to_string()))?;
            let built_in = BuiltIn::named(report);
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
            if let Some(level) = s.aggregation_level.as_deref() {
                if built_in.is_some_and(|b| b.aggregation_level.is_none()) {
                    return Err(ConfigError::invalid(
                        key("aggregation_level"),
                        format!("applies to bucketed reports only (agent_summary): remove it from [reports.{name}]"),
                    ));
                }
                if !AGGREGATION_LEVELS.contains(&level) {
                    return Err(ConfigError::invalid(
                        key("aggregation_level"),
                        format!("{level:?} is not one of {}", AGGREGATION_LEVELS.join(", ")),
                    ));
                }
            }
            match built_in {
                Some(_) => validate_built_in(name, s)?,
                None => validate_configured(name, s)?,
            }
            if let Some(tiers) = &s.reread {
                reread::validate_date_tiers(name, tiers, s.horizon_days, s.cadence_secs)?;
            }
        }
        Ok(())
    }

    fn validate_work_sessions(&self) -> Result<(), ConfigError> {
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
        if let Some(tiers) = &ws.reread {
            reread::validate_instant_tiers(tiers, ws.lookback_minutes, ws.cadence_secs)?;
        }
        Ok(())
    }
}

/// A built-in report's section takes none of the keys that configure a report by columns.
fn validate_built_in(name: &str, s: &DateReportSettings) -> Result<(), ConfigError> {
    let set = [
        ("preset", s.preset.is_some()),
        ("key", s.key.is_some()),
        ("anchor", s.anchor.is_some()),
        ("time_precise", s.time_precise),
        ("time_range", s.time_range.is_some()),
        ("topic", s.topic.is_some()),
    ];
    if let Some((k, _)) = set.iter().find(|(_, set)| *set) {
        let fix = if *k == "topic" {
            format!("set topics.{name} instead")
        } else {
            "it applies to reports configured by columns only: remove it".to_string()
        };
        return Err(ConfigError::invalid(
            format!("reports.{name}.{k}"),
            format!("{name} is a built-in report; {fix}"),
        ));
    }
    Ok(())
}

/// A configured report needs a preset, or its metric set, key and anchor.
fn validate_configured(name: &str, s: &DateReportSettings) -> Result<(), ConfigError> {
    let key = |k: &str| format!("reports.{name}.{k}");
    let preset = match s.preset.as_deref() {
        None => None,
        Some(p) => Some(Preset::named(p).ok_or_else(|| {
            let known: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            ConfigError::invalid(
                key("preset"),
                format!("{p:?} is not a preset: use one of {}", known.join(", ")),
            )
        })?),
    };
    let builtins: Vec<&str> = BUILT_IN.iter().map(|b| b.report.name()).collect();
    let missing = |k: &str| {
        ConfigError::invalid(
            key(k),
            format!(
                "[reports.{name}] is not a built-in report ({}), so it is configured by columns: \
                 set preset = \"conversation_export\" (or another preset), or metric_set, key and anchor",
                builtins.join(", ")
            ),
        )
    };
    if s.metric_set.is_none() && preset.is_none() {
        return Err(missing("metric_set"));
    }
    match (&s.key, preset) {
        (None, None) => return Err(missing("key")),
        (Some(k), _) if k.is_empty() || k.iter().any(|c| c.trim().is_empty()) => {
            return Err(ConfigError::invalid(
                key("key"),
                "list the header names of the columns that identify a row, e.g. [\"Conversation ID\"]",
            ))
        }
        _ => {}
    }
    match (&s.anchor, preset) {
        (None, None) => Err(missing("anchor")),
        (Some(a), _) if a.trim().is_empty() => Err(ConfigError::invalid(
            key("anchor"),
            "name the date-time column of each row's event time, e.g. \"Created At\"",
        )),
        _ => Ok(()),
    }
}
