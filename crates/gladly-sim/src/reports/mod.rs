//! The reports as row sources over the [`Model`]: which rows a request returns at an
//! instant, cell by cell.

mod agent_summary;
mod contact_timestamps;
mod contacts;
mod conversation_export;
mod conversation_timestamps;
mod hourly;
mod work_sessions;

use std::fmt::Write as _;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::{Model, MINUTE_MS};
use crate::wire::{
    AGENT_SUMMARY_COLUMNS, CONTACT_EXPORT_COLUMNS, CONTACT_TIMESTAMPS, CONTACT_TIMESTAMPS_COLUMNS,
    CONVERSATION_EXPORT, CONVERSATION_EXPORT_COLUMNS, CONVERSATION_TIMESTAMPS,
    CONVERSATION_TIMESTAMPS_COLUMNS, WORK_SESSION_COLUMNS, WORK_SESSION_EVENTS_V4,
};
use agent_summary::agent_summary;
use contact_timestamps::ContactTimestampRows;
use contacts::ContactRows;
use conversation_export::ConversationExportRows;
use conversation_timestamps::ConversationTimestampRows;
use work_sessions::WorkSessionRows;

// what the Events API shares with the reports: the same events, shifts and assignees
pub(crate) use agent_summary::{shift_start_hour, SHIFT_MS};
pub(crate) use contact_timestamps::events as contact_events;
pub(crate) use conversation_export::{agent_before, assignments, inbox_then};
pub(crate) use conversation_timestamps::{
    events as conversation_events, Event as ConversationEvent,
};

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
    /// One of the reports requested by dates whose rows are anchored at an instant whose
    /// local date in `tz` falls in `[start, end]`.
    Dated {
        /// Which report.
        report: Dated,
        /// First date.
        start: NaiveDate,
        /// Last date.
        end: NaiveDate,
        /// Timezone of the dates.
        tz: Tz,
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

/// The reports requested by dates with one anchor instant per row (besides Contact Export).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dated {
    /// `ConversationExportReport`: a conversation, anchored at its creation.
    ConversationExport,
    /// `ContactTimestampsReport`: a contact event, anchored at its timestamp.
    ContactTimestamps,
    /// `ConversationTimestampsReport`: a conversation event, anchored at its timestamp.
    ConversationTimestamps,
    /// `WorkSessionEventsReportV4`: a work session, anchored like the work-session endpoint's.
    WorkSessionsV4,
}

impl Dated {
    /// The report of a metric set name, if it is one of these.
    pub(crate) fn parse(metric_set: &str) -> Option<Dated> {
        Some(match metric_set {
            CONVERSATION_EXPORT => Dated::ConversationExport,
            CONTACT_TIMESTAMPS => Dated::ContactTimestamps,
            CONVERSATION_TIMESTAMPS => Dated::ConversationTimestamps,
            WORK_SESSION_EVENTS_V4 => Dated::WorkSessionsV4,
            _ => return None,
        })
    }

    /// The metric set name.
    pub(crate) fn metric_set(self) -> &'static str {
        match self {
            Dated::ConversationExport => CONVERSATION_EXPORT,
            Dated::ContactTimestamps => CONTACT_TIMESTAMPS,
            Dated::ConversationTimestamps => CONVERSATION_TIMESTAMPS,
            Dated::WorkSessionsV4 => WORK_SESSION_EVENTS_V4,
        }
    }
}

impl Plan {
    /// Column names of this report.
    pub(crate) fn columns(&self) -> &'static [&'static str] {
        match self {
            Plan::WorkSessions { .. } => &WORK_SESSION_COLUMNS,
            Plan::Contacts { .. } | Plan::ContactsBetween { .. } => &CONTACT_EXPORT_COLUMNS,
            Plan::AgentSummary { .. } => &AGENT_SUMMARY_COLUMNS,
            Plan::Dated { report, .. } => match report {
                Dated::ConversationExport => &CONVERSATION_EXPORT_COLUMNS,
                Dated::ContactTimestamps => &CONTACT_TIMESTAMPS_COLUMNS,
                Dated::ConversationTimestamps => &CONVERSATION_TIMESTAMPS_COLUMNS,
                Dated::WorkSessionsV4 => &WORK_SESSION_COLUMNS,
            },
        }
    }

    /// The metric set of a `/api/v1/reports` plan (`None` for the work-session endpoint).
    pub(crate) fn metric_set<'a>(&self, cfg: &'a crate::SimConfig) -> Option<&'a str> {
        match self {
            Plan::WorkSessions { .. } => None,
            Plan::Contacts { .. } | Plan::ContactsBetween { .. } => {
                Some(&cfg.contact_export_metric_set)
            }
            Plan::AgentSummary { .. } => Some(&cfg.agent_summary_metric_set),
            Plan::Dated { report, .. } => Some(report.metric_set()),
        }
    }

    /// Short name of the report, for fault bookkeeping keys.
    pub(crate) fn report_name(&self) -> &'static str {
        match self {
            Plan::WorkSessions { .. } => "work_sessions",
            Plan::Contacts { .. } | Plan::ContactsBetween { .. } => "contacts",
            Plan::AgentSummary { .. } => "agent_summary",
            Plan::Dated { report, .. } => match report {
                Dated::ConversationExport => "conversations",
                Dated::ContactTimestamps => "contact_timestamps",
                Dated::ConversationTimestamps => "conversation_timestamps",
                Dated::WorkSessionsV4 => "work_sessions_v4",
            },
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
            Plan::Dated {
                report, start, end, ..
            } => format!(
                "{}-{}-{}.csv",
                report.metric_set(),
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
            Plan::Dated {
                report,
                start,
                end,
                tz,
            } => {
                let (m, at, s, e, tz) = (model.clone(), as_of_ms, *start, *end, *tz);
                match report {
                    Dated::ConversationExport => {
                        Box::new(ConversationExportRows::new(m, at, s, e, tz))
                    }
                    Dated::ContactTimestamps => {
                        Box::new(ContactTimestampRows::new(m, at, s, e, tz))
                    }
                    Dated::ConversationTimestamps => {
                        Box::new(ConversationTimestampRows::new(m, at, s, e, tz))
                    }
                    Dated::WorkSessionsV4 => Box::new(WorkSessionRows::new(
                        m,
                        at,
                        local_midnight(tz, s),
                        local_midnight(tz, e + Duration::days(1)),
                    )),
                }
            }
        }
    }
}

/// What a row says about its contact or conversation, for a column added mid-run (see
/// [`crate::AddedColumn`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Extras {
    /// Times the contact (or the conversation's contacts) passed from one agent to another.
    pub(crate) transfers: u32,
    /// The agent who accepted last, if any.
    pub(crate) last_agent: Option<u32>,
}

impl Extras {
    /// The extras of the agents `work` (in acceptance order).
    pub(crate) fn of_work(work: &[crate::model::Work]) -> Self {
        Extras {
            transfers: work.len().saturating_sub(1) as u32,
            last_agent: work.last().map(|w| w.agent),
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

    /// What the row last returned by [`RowSource::next_row`] says about its contact or
    /// conversation (nothing for reports without one).
    fn extras(&self) -> Extras {
        Extras::default()
    }
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
