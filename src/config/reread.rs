//! `reports.<name>.reread`: the re-read tiers. Each tier is a span and a period: every period,
//! the windows of the last span that the live poll no longer re-reads are read again, so
//! rows Gladly restates after they left the lookback (work sessions' after-contact and
//! unknown time, contacts that end days after they were queued) reach Kafka.
//!
//! Unset, a report uses its default tiers ([`WORK_SESSION_TIERS`], [`DATE_TIERS`]), minus
//! those the live poll already covers; `reread = []` turns tiers off; a list replaces the
//! defaults and is validated strictly.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::config_error::ConfigError;

/// A work-session tier (`[[reports.work_sessions.reread]]`): every `every_minutes`, re-read
/// the last `span_hours`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstantTier {
    /// How far back a pass reaches, in hours (more than `lookback_minutes`).
    pub span_hours: u64,
    /// How often a pass is due, in minutes (at least the report's cadence).
    pub every_minutes: u64,
}

/// A date-report tier (`[[reports.contacts.reread]]`, `[[reports.agent_summary.reread]]`):
/// every `every_hours`, re-read the last `span_days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateTier {
    /// How far back a pass reaches, in days before today (more than `horizon_days`).
    pub span_days: u32,
    /// How often a pass is due, in hours (at least the report's cadence).
    pub every_hours: u64,
}

/// Work sessions' default tiers: the last 24 hours every hour (after-contact and unknown time
/// mostly stop growing within hours of the contact's end, when the agent wraps up or the
/// customer's next contact begins), and the last 7 days every day (conversations left open
/// for days keep growing unknown time until they end).
pub const WORK_SESSION_TIERS: [InstantTier; 2] = [
    InstantTier {
        span_hours: 24,
        every_minutes: 60,
    },
    InstantTier {
        span_hours: 7 * 24,
        every_minutes: 24 * 60,
    },
];

/// Contact Export's and Agent Summary's default tier: the last 30 days every day (the live
/// poll re-pulls the horizon every hour; a contact that ends days after it was queued, or an
/// agent bucket restated later, is caught within a day).
pub const DATE_TIERS: [DateTier; 1] = [DateTier {
    span_days: 30,
    every_hours: 24,
}];

/// The longest span or period a tier may have: about ten years (longer ones would be out of
/// the range of instants the service computes with).
pub(super) const MAX_TIER_DAYS: u64 = 3660;

/// How far back a tier's pass reaches, in its report's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierSpan {
    /// Work sessions: hours before now.
    Hours(u64),
    /// Date reports: days before today.
    Days(u32),
}

/// A re-read tier as the pipeline uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RereadTier {
    /// Its place in the report's list (`reread[<index>]`); `None` for a default tier.
    pub index: Option<usize>,
    /// How far back a pass reaches.
    pub span: TierSpan,
    /// How often a pass is due.
    pub every: std::time::Duration,
}

impl RereadTier {
    /// The tier's name in checkpoint keys and metric labels: `24h`, `168h`, `30d`.
    pub fn name(&self) -> String {
        match self.span {
            TierSpan::Hours(h) => format!("{h}h"),
            TierSpan::Days(d) => format!("{d}d"),
        }
    }

    /// The span as a duration (days count 24 hours).
    pub fn span_duration(&self) -> chrono::Duration {
        match self.span {
            TierSpan::Hours(h) => chrono::Duration::hours(h as i64),
            TierSpan::Days(d) => chrono::Duration::days(i64::from(d)),
        }
    }

    /// `24h every 60 min`, `30d every 24 h`: the tier in words, in its configured units.
    pub fn describe(&self) -> String {
        match self.span {
            TierSpan::Hours(_) => {
                format!("{} every {} min", self.name(), self.every.as_secs() / 60)
            }
            TierSpan::Days(_) => format!("{} every {} h", self.name(), self.every.as_secs() / 3600),
        }
    }

    /// The config key the tier lives under, e.g. `reports.work_sessions.reread[1]`, or
    /// `reports.work_sessions.reread (default 24h every 60 min)`.
    pub fn key(&self, report: &str) -> String {
        match self.index {
            Some(i) => format!("reports.{report}.reread[{i}]"),
            None => format!("reports.{report}.reread (default {})", self.describe()),
        }
    }
}

impl From<(Option<usize>, InstantTier)> for RereadTier {
    fn from((index, t): (Option<usize>, InstantTier)) -> Self {
        RereadTier {
            index,
            span: TierSpan::Hours(t.span_hours),
            every: std::time::Duration::from_secs(t.every_minutes.saturating_mul(60)),
        }
    }
}

impl From<(Option<usize>, DateTier)> for RereadTier {
    fn from((index, t): (Option<usize>, DateTier)) -> Self {
        RereadTier {
            index,
            span: TierSpan::Days(t.span_days),
            every: std::time::Duration::from_secs(t.every_hours.saturating_mul(3600)),
        }
    }
}

/// The tiers in force: the configured ones, or the defaults whose span reaches past the live
/// re-read.
pub(super) fn effective<T: Copy>(
    configured: Option<&[T]>,
    defaults: &[T],
    reaches_past: impl Fn(&T) -> bool,
) -> Vec<(Option<usize>, T)> {
    match configured {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, t)| (Some(i), *t))
            .collect(),
        None => defaults
            .iter()
            .filter(|t| reaches_past(t))
            .map(|t| (None, *t))
            .collect(),
    }
}

/// Checks configured work-session tiers against the live poll: each must reach past
/// `lookback_minutes`, be due no more often than `cadence_secs`, and have a span of its own.
pub(super) fn validate_instant_tiers(
    tiers: &[InstantTier],
    lookback_minutes: u64,
    cadence_secs: u64,
) -> Result<(), ConfigError> {
    let key = |i: usize, k: &str| format!("reports.work_sessions.reread[{i}].{k}");
    for (i, t) in tiers.iter().enumerate() {
        for (k, value, max) in [
            ("span_hours", t.span_hours, MAX_TIER_DAYS * 24),
            ("every_minutes", t.every_minutes, MAX_TIER_DAYS * 24 * 60),
        ] {
            if value > max {
                return Err(too_long(key(i, k), value, max));
            }
        }
        if t.span_hours.saturating_mul(60) <= lookback_minutes {
            return Err(ConfigError::invalid(
                key(i, "span_hours"),
                format!(
                    "{} h does not reach past the live poll's re-read (reports.work_sessions.lookback_minutes = {lookback_minutes}), \
                     so a pass would re-read nothing: set it above {} h, or remove the tier",
                    t.span_hours,
                    lookback_minutes / 60
                ),
            ));
        }
        if t.every_minutes.saturating_mul(60) < cadence_secs {
            return Err(ConfigError::invalid(
                key(i, "every_minutes"),
                format!(
                    "{} min is more often than the report is polled (reports.work_sessions.cadence_secs = {cadence_secs}); \
                     tiers run in the poll cycle: set it to {} or more",
                    t.every_minutes,
                    cadence_secs.div_ceil(60)
                ),
            ));
        }
        if let Some(j) = tiers[..i].iter().position(|o| o.span_hours == t.span_hours) {
            return Err(ConfigError::invalid(
                key(i, "span_hours"),
                format!(
                    "reread[{j}] has the same span ({} h): a span names its tier's progress, keep one of the two",
                    t.span_hours
                ),
            ));
        }
    }
    Ok(())
}

/// Checks configured tiers of the date report `report` against its live poll (see
/// [`validate_instant_tiers`]).
pub(super) fn validate_date_tiers(
    report: &str,
    tiers: &[DateTier],
    horizon_days: u32,
    cadence_secs: u64,
) -> Result<(), ConfigError> {
    let key = |i: usize, k: &str| format!("reports.{report}.reread[{i}].{k}");
    for (i, t) in tiers.iter().enumerate() {
        for (k, value, max) in [
            ("span_days", u64::from(t.span_days), MAX_TIER_DAYS),
            ("every_hours", t.every_hours, MAX_TIER_DAYS * 24),
        ] {
            if value > max {
                return Err(too_long(key(i, k), value, max));
            }
        }
        if t.span_days <= horizon_days {
            return Err(ConfigError::invalid(
                key(i, "span_days"),
                format!(
                    "{} does not reach past the live poll's horizon (reports.{report}.horizon_days = {horizon_days}), \
                     so a pass would re-read nothing: set it above {horizon_days}, or remove the tier",
                    t.span_days
                ),
            ));
        }
        if t.every_hours.saturating_mul(3600) < cadence_secs {
            return Err(ConfigError::invalid(
                key(i, "every_hours"),
                format!(
                    "{} h is more often than the report is polled (reports.{report}.cadence_secs = {cadence_secs}); \
                     tiers run in the poll cycle: set it to {} or more",
                    t.every_hours,
                    cadence_secs.div_ceil(3600)
                ),
            ));
        }
        if let Some(j) = tiers[..i].iter().position(|o| o.span_days == t.span_days) {
            return Err(ConfigError::invalid(
                key(i, "span_days"),
                format!(
                    "reread[{j}] has the same span ({} days): a span names its tier's progress, keep one of the two",
                    t.span_days
                ),
            ));
        }
    }
    Ok(())
}

fn too_long(key: String, value: u64, max: u64) -> ConfigError {
    ConfigError::invalid(
        key,
        format!("{value} is longer than the {max} (about ten years) a tier may have"),
    )
}

/// Deserializes `reread`: an array of tier tables, or (from an environment variable, which
/// can only hold text) the same array written as TOML, e.g.
/// `GLADLY_KAFKA__REPORTS__WORK_SESSIONS__REREAD='[{span_hours = 24, every_minutes = 60}]'`
/// or `'[]'`.
pub(super) fn deserialize_tiers<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = toml::Value::deserialize(d)?;
    let value = match value {
        toml::Value::String(text) => {
            let mut table: toml::Table = format!("reread = {text}").parse().map_err(|e: toml::de::Error| {
                D::Error::custom(format!(
                    "{text:?} is not a TOML array of tiers, e.g. '[{{span_hours = 24, every_minutes = 60}}]' or '[]': {}",
                    e.message()
                ))
            })?;
            table.remove("reread").expect("just parsed")
        }
        v => v,
    };
    serde_path_to_error::deserialize::<_, Vec<T>>(value)
        .map(Some)
        .map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner().message().to_string();
            if at == "." || at.is_empty() {
                D::Error::custom(inner)
            } else {
                D::Error::custom(format!("{at}: {inner}"))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_words_use_the_configured_units() {
        let t = RereadTier::from((Some(1), WORK_SESSION_TIERS[1]));
        assert_eq!(t.name(), "168h");
        assert_eq!(t.describe(), "168h every 1440 min");
        assert_eq!(t.key("work_sessions"), "reports.work_sessions.reread[1]");
        let d = RereadTier::from((None, DATE_TIERS[0]));
        assert_eq!(d.name(), "30d");
        assert_eq!(d.describe(), "30d every 24 h");
        assert_eq!(d.span_duration(), chrono::Duration::days(30));
        assert_eq!(
            d.key("contacts"),
            "reports.contacts.reread (default 30d every 24 h)"
        );
    }

    #[test]
    fn defaults_the_live_poll_covers_are_left_out_and_a_list_is_kept_whole() {
        let long_lookback = effective(None, &WORK_SESSION_TIERS, |t| t.span_hours * 60 > 1440);
        assert_eq!(long_lookback, vec![(None, WORK_SESSION_TIERS[1])]);
        let all = effective(None, &WORK_SESSION_TIERS, |_| true);
        assert_eq!(all.len(), 2);
        let off = effective(Some(&[]), &WORK_SESSION_TIERS, |_| true);
        assert!(off.is_empty());
        let mine = [InstantTier {
            span_hours: 1,
            every_minutes: 5,
        }];
        assert_eq!(
            effective(Some(&mine), &WORK_SESSION_TIERS, |_| false),
            vec![(Some(0), mine[0])]
        );
    }

    #[test]
    fn a_tier_must_reach_past_the_live_poll_and_run_no_more_often_than_it() {
        let t = |span_hours, every_minutes| InstantTier {
            span_hours,
            every_minutes,
        };
        validate_instant_tiers(&WORK_SESSION_TIERS, 120, 300).unwrap();
        let err = validate_instant_tiers(&[t(24, 60), t(2, 60)], 120, 300)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reports.work_sessions.reread[1].span_hours")
                && err.contains("lookback_minutes = 120"),
            "{err}"
        );
        let err = validate_instant_tiers(&[t(24, 4)], 120, 300)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reports.work_sessions.reread[0].every_minutes")
                && err.contains("cadence_secs = 300")
                && err.contains("set it to 5 or more"),
            "{err}"
        );
        let err = validate_instant_tiers(&[t(u64::MAX, 60)], 120, 300)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reread[0].span_hours") && err.contains("ten years"),
            "{err}"
        );
        let err = validate_instant_tiers(&[t(24, 60), t(24, 120)], 120, 300)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reread[1].span_hours") && err.contains("reread[0]"),
            "{err}"
        );

        let d = |span_days, every_hours| DateTier {
            span_days,
            every_hours,
        };
        validate_date_tiers("contacts", &DATE_TIERS, 3, 3600).unwrap();
        let err = validate_date_tiers("contacts", &[d(3, 24)], 3, 3600)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reports.contacts.reread[0].span_days")
                && err.contains("horizon_days = 3"),
            "{err}"
        );
        let err = validate_date_tiers("agent_summary", &[d(30, 1)], 3, 7200)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reports.agent_summary.reread[0].every_hours")
                && err.contains("set it to 2 or more"),
            "{err}"
        );
        let err = validate_date_tiers("contacts", &[d(30, u64::MAX)], 3, 3600)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reread[0].every_hours"), "{err}");
        let err = validate_date_tiers("contacts", &[d(30, 24), d(30, 48)], 3, 3600)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reread[1].span_days"), "{err}");
    }
}
