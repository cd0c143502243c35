//! `[reports.*]`: which reports are polled, how often and how far back.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::reread::{self, DateTier, InstantTier};
use crate::config_error::ConfigError;
use crate::report::Report;

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
    /// Re-read tiers: `None` for the defaults ([`reread::DATE_TIERS`]), empty for none.
    #[serde(deserialize_with = "reread::deserialize_tiers")]
    pub reread: Option<Vec<DateTier>>,
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
        }
    }
}

impl DateReportSettings {
    /// The `metricSet` to request for `report`.
    pub fn metric_set(&self, report: Report) -> String {
        self.metric_set.clone().unwrap_or_else(|| {
            match report {
                Report::AgentSummary => crate::gladly::AGENT_SUMMARY,
                _ => crate::gladly::CONTACT_EXPORT,
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
        if let Some(tiers) = &ws.reread {
            reread::validate_instant_tiers(tiers, ws.lookback_minutes, ws.cadence_secs)?;
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
            if let Some(tiers) = &s.reread {
                reread::validate_date_tiers(report.name(), tiers, s.horizon_days, s.cadence_secs)?;
            }
        }
        Ok(())
    }
}
