//! The three reports as row sources over the [`Model`]: which rows a request returns at an
//! instant, cell by cell.

mod agent_summary;
mod contacts;
mod work_sessions;

use std::fmt::Write as _;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::{Model, MINUTE_MS};
use crate::wire::{AGENT_SUMMARY_COLUMNS, CONTACT_EXPORT_COLUMNS, WORK_SESSION_COLUMNS};
use agent_summary::agent_summary;
use contacts::ContactRows;
use work_sessions::WorkSessionRows;

/// Agent Summary bucket sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// 30 minutes.
    HalfHourly,
    /// A local day.
    Daily,
    /// A local week starting Monday.
    Weekly,
    /// A calendar month.
    Monthly,
    /// A calendar quarter.
    Quarterly,
}

impl Level {
    /// Parses Gladly's `aggregationLevel`.
    pub(crate) fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "halfHourly" => Level::HalfHourly,
            "daily" => Level::Daily,
            "weekly" => Level::Weekly,
            "monthly" => Level::Monthly,
            "quarterly" => Level::Quarterly,
            _ => return None,
        })
    }
}

/// A validated request, ready to generate.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    /// Rows anchored in `[start_ms, end_ms + 1 min)`.
    WorkSessions {
        /// Window start.
        start_ms: i64,
        /// Window end as requested.
        end_ms: i64,
    },
    /// Contacts queued on `[start, end]` in `tz`.
    Contacts {
        /// First date.
        start: NaiveDate,
        /// Last date.
        end: NaiveDate,
        /// Timezone of the dates.
        tz: Tz,
    },
    /// Contacts queued in `[start_ms, end_ms + 1 min)` (a time-precise Contact Export).
    ContactsBetween {
        /// Window start.
        start_ms: i64,
        /// Window end as requested.
        end_ms: i64,
    },
    /// Agent × bucket rows for buckets overlapping `[start, end]` in `tz`.
    AgentSummary {
        /// First date.
        start: NaiveDate,
        /// Last date.
        end: NaiveDate,
        /// Timezone.
        tz: Tz,
        /// Bucket size.
        level: Level,
    },
}

impl Plan {
    /// Column names of this report.
    pub(crate) fn columns(&self) -> &'static [&'static str] {
        match self {
            Plan::WorkSessions { .. } => &WORK_SESSION_COLUMNS,
            Plan::Contacts { .. } | Plan::ContactsBetween { .. } => &CONTACT_EXPORT_COLUMNS,
            Plan::AgentSummary { .. } => &AGENT_SUMMARY_COLUMNS,
        }
    }

    /// File name for `Content-Disposition`, in Gladly's style.
    pub(crate) fn file_name(&self) -> String {
        match self {
            Plan::WorkSessions { start_ms, end_ms } => {
                let f = |ms: i64| {
                    DateTime::<Utc>::from_timestamp_millis(ms)
                        .map(|d| d.format("%Y%m%dT%H%MZ").to_string())
                        .unwrap_or_default()
                };
                format!(
                    "WorkSessionEventsReport-{}-{}.csv",
                    f(*start_ms),
                    f(*end_ms)
                )
            }
            Plan::Contacts { start, end, .. } => format!(
                "ContactExportReportV3-{}-{}.csv",
                start.format("%Y%m%d"),
                end.format("%Y%m%d")
            ),
            Plan::ContactsBetween { start_ms, end_ms } => {
                let f = |ms: i64| {
                    DateTime::<Utc>::from_timestamp_millis(ms)
                        .map(|d| d.format("%Y%m%dT%H%MZ").to_string())
                        .unwrap_or_default()
                };
                format!("ContactExportReportV3-{}-{}.csv", f(*start_ms), f(*end_ms))
            }
            Plan::AgentSummary { start, end, .. } => format!(
                "AgentSummaryV2-{}-{}.csv",
                start.format("%Y%m%d"),
                end.format("%Y%m%d")
            ),
        }
    }

    /// A row source for this plan as of `as_of_ms` (the simulated now minus the data delay).
    pub(crate) fn rows(&self, model: &Model, as_of_ms: i64) -> Box<dyn RowSource> {
        match self {
            Plan::WorkSessions { start_ms, end_ms } => Box::new(WorkSessionRows::new(
                model.clone(),
                as_of_ms,
                *start_ms,
                end_ms + MINUTE_MS,
            )),
            Plan::Contacts { start, end, tz } => {
                Box::new(ContactRows::new(model.clone(), as_of_ms, *start, *end, *tz))
            }
            Plan::ContactsBetween { start_ms, end_ms } => Box::new(ContactRows::between(
                model.clone(),
                as_of_ms,
                *start_ms,
                end_ms + MINUTE_MS,
            )),
            Plan::AgentSummary {
                start,
                end,
                tz,
                level,
            } => Box::new(agent_summary(model, as_of_ms, *start, *end, *tz, *level)),
        }
    }
}

/// Produces a report's rows one at a time into reusable cells (canonical column order).
pub(crate) trait RowSource: Send {
    /// Fills `cells` (one per column, cleared by the caller) with the next row; returns its
    /// identity (stable across fetches, used to pick rows for the bad-cell fault) and the
    /// index of the cell that fault corrupts, or `None` at the end.
    fn next_row(&mut self, cells: &mut [String]) -> Option<(u64, usize)>;

    /// The key the records layer will use for a row, for fault bookkeeping.
    fn key(&self, cells: &[String]) -> String;
}

/// Appends whole seconds of `ms` (never negative).
fn push_secs(out: &mut String, ms: i64) {
    let _ = write!(out, "{}", ms.max(0) / 1000);
}

/// Midnight starting `date` in `tz`, as ms since the epoch.
fn local_midnight(tz: Tz, date: NaiveDate) -> i64 {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight");
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        // midnight skipped by a DST change: the day starts an hour later
        LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map_or_else(
                || naive.and_utc().timestamp_millis(),
                |t| t.timestamp_millis(),
            ),
    }
}

fn local_date(tz: Tz, ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("in range")
        .with_timezone(&tz)
        .date_naive()
}
