//! The request budget: how many report requests per hour the enabled reports' schedules need
//! (each report's live polls and re-read tiers, one request per window at the configured
//! window sizes), against the `gladly.requests_per_minute` the process may send. Pure
//! arithmetic on the configuration, in steady state: a first poll catching up, row-cap
//! splits, retries and backfills come on top.

use super::reread::{RereadTier, TierSpan};
use super::root::Config;
use crate::config_error::ConfigError;
use crate::report::Report;

/// One schedule's share: a report's live polls, or one of its re-read tiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// `live`, or the tier in words (`24h every 60 min`).
    pub what: String,
    /// The keys that lower it, and which way.
    pub fix: String,
    /// Report requests per run: the windows of one poll or one pass.
    pub windows: u64,
    /// Runs per hour (a tier runs at most once per poll cycle).
    pub runs_per_hour: f64,
}

impl Demand {
    /// Report requests per hour.
    pub fn per_hour(&self) -> f64 {
        self.windows as f64 * self.runs_per_hour
    }

    /// `4 requests every 5 min`: a run's requests and how often it runs.
    pub fn rate(&self) -> String {
        let every = if self.runs_per_hour > 0.0 {
            (3600.0 / self.runs_per_hour).round() as u64
        } else {
            0
        };
        let every = match every {
            s if s % 3600 == 0 => format!("{} h", s / 3600),
            s if s % 60 == 0 => format!("{} min", s / 60),
            s => format!("{s} s"),
        };
        let plural = if self.windows == 1 { "" } else { "s" };
        format!("{} request{plural} every {every}", self.windows)
    }
}

/// One report's schedules.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportBudget {
    /// The report.
    pub report: Report,
    /// Its live polls.
    pub live: Demand,
    /// Its re-read tiers in force.
    pub tiers: Vec<Demand>,
}

impl ReportBudget {
    /// Report requests per hour of the live polls and every tier.
    pub fn per_hour(&self) -> f64 {
        self.live.per_hour() + self.tiers.iter().map(Demand::per_hour).sum::<f64>()
    }
}

/// What every enabled report's schedules need, against what the process may send; and the
/// scheduled GETs (the events feed's polls, the dimension lists' refreshes) against
/// `gladly.requests_per_second`, which GET Conversation shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// `gladly.requests_per_minute`.
    pub requests_per_minute: u32,
    /// Each enabled report's schedules.
    pub reports: Vec<ReportBudget>,
    /// `gladly.requests_per_second`.
    pub requests_per_second: u32,
    /// The scheduled GETs: `events`, `dimensions` (each list once per cadence).
    pub gets: Vec<Demand>,
}

impl Budget {
    /// Report requests per hour the process may send.
    pub fn allowed_per_hour(&self) -> u64 {
        u64::from(self.requests_per_minute) * 60
    }

    /// Report requests per hour every schedule needs together.
    pub fn used_per_hour(&self) -> f64 {
        self.reports.iter().map(ReportBudget::per_hour).sum()
    }

    /// Scheduled GETs per hour (see [`Budget::gets`]).
    pub fn gets_per_hour(&self) -> f64 {
        self.gets.iter().map(Demand::per_hour).sum()
    }

    /// `28 report requests/hour of 480 allowed (6%; work_sessions 17.2 = live 12 + 24h every
    /// 60 min 4 + …; contacts …)`: what `check` and `status` print after `budget: `; then,
    /// when the events feed or the dimension lists are on, `; scheduled GETs 64/hour of
    /// 18000 allowed (events 60, dimensions 4)`.
    pub fn summary(&self) -> String {
        let gets = if self.gets.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = self
                .gets
                .iter()
                .map(|d| format!("{} {}", d.what, number(d.per_hour())))
                .collect();
            format!(
                "; scheduled GETs {}/hour of {} allowed ({})",
                self.gets_per_hour().ceil() as u64,
                u64::from(self.requests_per_second) * 3600,
                parts.join(", ")
            )
        };
        format!("{}{gets}", self.report_summary())
    }

    fn report_summary(&self) -> String {
        let allowed = self.allowed_per_hour();
        let used = self.used_per_hour();
        let pct = if allowed == 0 {
            0.0
        } else {
            used * 100.0 / allowed as f64
        };
        let reports: Vec<String> = self
            .reports
            .iter()
            .map(|r| {
                let parts: Vec<String> = std::iter::once(&r.live)
                    .chain(&r.tiers)
                    .map(|d| format!("{} {}", d.what, number(d.per_hour())))
                    .collect();
                format!(
                    "{} {} = {}",
                    r.report,
                    number(r.per_hour()),
                    parts.join(" + ")
                )
            })
            .collect();
        format!(
            "{} report requests/hour of {allowed} allowed ({pct:.0}%; {})",
            used.ceil() as u64,
            reports.join("; ")
        )
    }

    /// Refuses schedules that need more requests than `gladly.requests_per_minute` allows,
    /// naming the largest ones and the keys that lower them.
    pub fn check(&self) -> Result<(), ConfigError> {
        let gets_allowed = u64::from(self.requests_per_second) * 3600;
        if self.gets_per_hour() > gets_allowed as f64 {
            let fixes: Vec<String> = self
                .gets
                .iter()
                .map(|d| format!("{}: {}", d.what, d.fix))
                .collect();
            return Err(ConfigError::invalid(
                "gladly.requests_per_second",
                format!(
                    "the scheduled GETs need {} per hour, more than the {gets_allowed} that {} per second allow: {}",
                    self.gets_per_hour().ceil() as u64,
                    self.requests_per_second,
                    fixes.join("; ")
                ),
            ));
        }
        let (used, allowed) = (self.used_per_hour(), self.allowed_per_hour());
        if used <= allowed as f64 {
            return Ok(());
        }
        let mut all: Vec<(Report, &Demand)> = self
            .reports
            .iter()
            .flat_map(|r| {
                std::iter::once(&r.live)
                    .chain(&r.tiers)
                    .map(|d| (r.report, d))
            })
            .collect();
        all.sort_by(|a, b| b.1.per_hour().total_cmp(&a.1.per_hour()));
        let largest: Vec<String> = all
            .iter()
            .take(3)
            .map(|(r, d)| {
                format!(
                    "{r} {} needs {}/h ({}): {}",
                    d.what,
                    number(d.per_hour()),
                    d.rate(),
                    d.fix
                )
            })
            .collect();
        Err(ConfigError::invalid(
            "gladly.requests_per_minute",
            format!(
                "the enabled reports' polls and re-read tiers need {} report requests per hour, more than the \
                 {allowed} that {} per minute allow, so they would fall further behind every hour. The largest: {}. \
                 Or raise gladly.requests_per_minute (Gladly allows 10 per organization, shared with its other tools)",
                used.ceil() as u64,
                self.requests_per_minute,
                largest.join("; ")
            ),
        ))
    }
}

/// `12`, `1.2`: at most one decimal, none when whole.
fn number(x: f64) -> String {
    let rounded = (x * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

impl Config {
    /// What the enabled reports' schedules need (see [`Budget`]).
    pub fn budget(&self) -> Budget {
        Budget {
            requests_per_minute: self.gladly.requests_per_minute,
            reports: self
                .enabled_reports()
                .into_iter()
                .map(|r| self.report_budget(r))
                .collect(),
            requests_per_second: self.gladly.requests_per_second,
            gets: self.scheduled_gets(),
        }
    }

    /// The scheduled GETs: the events feed's polls (one request each in steady state), the
    /// dimension lists' refreshes (one per list).
    fn scheduled_gets(&self) -> Vec<Demand> {
        let mut gets = Vec::new();
        if self.events.enabled {
            gets.push(Demand {
                what: "events".into(),
                fix: "raise events.cadence_secs".into(),
                windows: 1,
                runs_per_hour: 3600.0 / self.events.cadence_secs.max(1) as f64,
            });
        }
        let lists = self.dimensions.enabled_lists().len() as u64;
        if lists > 0 {
            gets.push(Demand {
                what: "dimensions".into(),
                fix: "raise dimensions.cadence_secs".into(),
                windows: lists,
                runs_per_hour: 3600.0 / self.dimensions.cadence_secs.max(1) as f64,
            });
        }
        gets
    }

    fn report_budget(&self, report: Report) -> ReportBudget {
        let cadence = self.cadence(report).as_secs().max(1);
        let per_hour = |secs: u64| 3600.0 / secs.max(cadence) as f64;
        let tiers = self.reread_tiers(report);
        match self.date_settings(report) {
            None => {
                let ws = &self.reports.work_sessions;
                let max = ws.max_window_minutes.max(1);
                // a poll reads from the last poll's end minus the lookback: lookback + cadence
                let live = (ws.lookback_minutes + cadence.div_ceil(60)).div_ceil(max);
                let tier = |t: &RereadTier| {
                    let TierSpan::Hours(h) = t.span else {
                        unreachable!("work-session tiers span hours")
                    };
                    let windows = (h * 60).saturating_sub(ws.lookback_minutes).div_ceil(max);
                    tier_demand(
                        report,
                        t,
                        windows,
                        per_hour(t.every.as_secs()),
                        "span_hours",
                    )
                };
                ReportBudget {
                    report,
                    live: Demand {
                        what: "live".into(),
                        fix: "raise reports.work_sessions.cadence_secs or max_window_minutes, or lower lookback_minutes".into(),
                        windows: live,
                        runs_per_hour: per_hour(cadence),
                    },
                    tiers: tiers.iter().map(tier).collect(),
                }
            }
            Some(s) => {
                let level = match self.spec(report).map(|spec| spec.source) {
                    Some(crate::report::Source::MetricSet {
                        aggregation_level, ..
                    }) => aggregation_level,
                    _ => None,
                };
                let windows =
                    |days: u64| date_windows(days, u64::from(s.max_window_days), level.as_deref());
                let horizon = u64::from(s.horizon_days);
                let tier = |t: &RereadTier| {
                    let TierSpan::Days(d) = t.span else {
                        unreachable!("date-report tiers span days")
                    };
                    let w = windows(u64::from(d).saturating_sub(horizon));
                    tier_demand(report, t, w, per_hour(t.every.as_secs()), "span_days")
                };
                ReportBudget {
                    report,
                    live: Demand {
                        what: "live".into(),
                        fix: format!("raise reports.{report}.cadence_secs or max_window_days, or lower horizon_days"),
                        // the horizon's days and today
                        windows: windows(horizon + 1),
                        runs_per_hour: per_hour(cadence),
                    },
                    tiers: tiers.iter().map(tier).collect(),
                }
            }
        }
    }
}

fn tier_demand(
    report: Report,
    t: &RereadTier,
    windows: u64,
    runs_per_hour: f64,
    span_key: &str,
) -> Demand {
    let every_key = match t.span {
        TierSpan::Hours(_) => "every_minutes",
        TierSpan::Days(_) => "every_hours",
    };
    let fix = match t.index {
        Some(i) => format!("raise reports.{report}.reread[{i}].{every_key} or lower its {span_key}"),
        None => format!(
            "set reports.{report}.reread to replace the default tiers with rarer or shorter ones, or to [] for none"
        ),
    };
    Demand {
        what: t.describe(),
        fix,
        windows,
        runs_per_hour,
    }
}

/// The most windows `days` consecutive days are cut into, at most `max_days` a window, when
/// windows hold whole buckets of `level` (agent summary's `aggregationLevel`; days
/// otherwise): the buckets such a span can touch, grouped by as many as always fit.
pub(crate) fn date_windows(days: u64, max_days: u64, level: Option<&str>) -> u64 {
    if days == 0 {
        return 0;
    }
    let (shortest, longest) = match level {
        Some("weekly") => (7, 7),
        Some("monthly") => (28, 31),
        Some("quarterly") => (90, 92),
        _ => (1, 1),
    };
    // a partial bucket at each end, whole ones between
    let buckets = if days == 1 {
        1
    } else {
        (days - 2) / shortest + 2
    };
    buckets.div_ceil((max_days / longest).max(1))
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
