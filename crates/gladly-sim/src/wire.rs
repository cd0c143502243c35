//! Gladly's wire format as the simulator speaks it, written from Gladly's public REST API
//! documentation: paths, metric-set names, request bodies, the 400 error body and the CSV
//! columns. Nothing here is shared with a client, so a client that gets the format wrong is
//! caught by the simulator instead of agreeing with it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// `POST`: the Work Session report (V2), body [`WorkSessionsBody`].
pub const WORK_SESSIONS_PATH: &str = "/api/v1/reports/work-session-events";
/// `POST`: the metric-set reports (Contact Export, Agent Summary, …), body [`MetricSetBody`].
pub const REPORTS_PATH: &str = "/api/v1/reports";
/// `GET`: one conversation (axum route syntax for the id).
pub const CONVERSATION_ROUTE: &str = "/api/v1/conversations/{id}";
/// The Contact Export metric set Gladly documents today.
pub const CONTACT_EXPORT: &str = "ContactExportReportV3";
/// The Agent Summary metric set Gladly documents today.
pub const AGENT_SUMMARY: &str = "AgentSummaryV2";
/// The Conversation Export metric set: one row per conversation, anchored at its creation.
pub const CONVERSATION_EXPORT: &str = "ConversationExportReport";
/// The Contact Timestamps metric set: one row per contact event.
pub const CONTACT_TIMESTAMPS: &str = "ContactTimestampsReport";
/// The Conversation Timestamps metric set: one row per conversation event.
pub const CONVERSATION_TIMESTAMPS: &str = "ConversationTimestampsReport";
/// The Work Session Events (V4) metric set: the work-session rows through `/api/v1/reports`.
pub const WORK_SESSION_EVENTS_V4: &str = "WorkSessionEventsReportV4";

/// `GET`: the Events API, query `startAt`, `endAt`, `entities` (repeated), answered in JSON
/// Lines.
pub const EVENTS_PATH: &str = "/api/v1/events";
/// The media type of an Events API answer (the one Gladly's spec names).
pub const EVENTS_CONTENT_TYPE: &str = "application/x-jsonlines";
/// The `entities` values of the Events API, as Gladly documents them. An event belongs to the
/// entity before the `/` of its type (`CONVERSATION_ASSIGNEE/…` to `CONVERSATION`).
pub const EVENT_ENTITIES: [&str; 8] = [
    "AGENT_AVAILABILITY",
    "AGENT_STATUS",
    "CONTACT",
    "CONVERSATION",
    "CUSTOMER",
    "CUSTOMER_PROFILE",
    "PAYMENT_REQUEST",
    "TASK",
];
/// The unknown field some events carry inside `content` (about 1 in 50, chosen by id), to
/// exercise a client's forward compatibility.
pub const EVENT_EXTRA_FIELD: &str = "simulatorExtra";

/// One entry of Gladly's error body: `attr` names the offending field and may be absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// The offending request field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attr: Option<String>,
    /// A short code: `blank`, `invalid`, …
    pub code: String,
    /// A human-readable explanation.
    pub detail: String,
}

/// Gladly's error body: `{"errors":[{"attr":…,"code":…,"detail":…}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiErrors {
    /// The errors.
    pub errors: Vec<ApiError>,
}

/// The body of `POST /api/v1/reports/work-session-events`: instants at minute precision,
/// `YYYY-mm-ddThh:mmZ` (a `±hh:mm` offset is accepted too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkSessionsBody {
    /// Start of the interval.
    pub start_at_time: String,
    /// End of the interval (rows up to one minute past it are included).
    pub end_at_time: String,
}

/// The body of `POST /api/v1/reports`: whole dates in `timezone`, `endAt` inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSetBody {
    /// The report, e.g. [`CONTACT_EXPORT`] or [`AGENT_SUMMARY`].
    pub metric_set: String,
    /// First date, `YYYY-mm-dd`.
    pub start_at: String,
    /// Last date, `YYYY-mm-dd`, inclusive.
    pub end_at: String,
    /// IANA timezone of the dates (the organization's when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `halfHourly`, `daily` (default), `weekly`, `monthly` or `quarterly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregation_level: Option<String>,
}

/// A report request, typed: what [`crate::Simulator::report_truth`] answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportQuery {
    /// The Work Session report of `[start, end]` (sent at minute precision).
    WorkSessions {
        /// Start of the interval.
        start: DateTime<Utc>,
        /// End of the interval.
        end: DateTime<Utc>,
    },
    /// A metric-set report of the dates `[start, end]` in `timezone`.
    MetricSet {
        /// The metric set.
        metric_set: String,
        /// First date.
        start: NaiveDate,
        /// Last date (inclusive).
        end: NaiveDate,
        /// IANA timezone of the dates.
        timezone: String,
        /// Bucket size of bucketed reports.
        aggregation_level: Option<String>,
    },
    /// A time-precise metric-set report (`startAtTime`/`endAtTime`, no dates or timezone) of
    /// `[start, end]` (sent at minute precision): Contact Export only.
    MetricSetBetween {
        /// The metric set.
        metric_set: String,
        /// Start of the interval.
        start: DateTime<Utc>,
        /// End of the interval.
        end: DateTime<Utc>,
    },
}

impl ReportQuery {
    /// The path the request is posted to.
    pub fn path(&self) -> &'static str {
        match self {
            ReportQuery::WorkSessions { .. } => WORK_SESSIONS_PATH,
            ReportQuery::MetricSet { .. } | ReportQuery::MetricSetBetween { .. } => REPORTS_PATH,
        }
    }

    /// The JSON body of the request.
    pub fn body(&self) -> serde_json::Value {
        let minute = |at: &DateTime<Utc>| at.format("%Y-%m-%dT%H:%MZ").to_string();
        let body = match self {
            ReportQuery::WorkSessions { start, end } => serde_json::to_value(WorkSessionsBody {
                start_at_time: minute(start),
                end_at_time: minute(end),
            }),
            ReportQuery::MetricSet {
                metric_set,
                start,
                end,
                timezone,
                aggregation_level,
            } => serde_json::to_value(MetricSetBody {
                metric_set: metric_set.clone(),
                start_at: start.format("%Y-%m-%d").to_string(),
                end_at: end.format("%Y-%m-%d").to_string(),
                timezone: Some(timezone.clone()),
                aggregation_level: aggregation_level.clone(),
            }),
            ReportQuery::MetricSetBetween {
                metric_set,
                start,
                end,
            } => Ok(serde_json::json!({
                "metricSet": metric_set,
                "startAtTime": minute(start),
                "endAtTime": minute(end),
            })),
        };
        body.expect("a request body serializes")
    }
}

/// The Work Session report's 19 columns, in the order Gladly documents them (V2 endpoint).
pub const WORK_SESSION_COLUMNS: [&str; 19] = [
    "id",
    "contact_session_id",
    "contact_session_created_at",
    "customer_id",
    "conversation_id",
    "inbox_id",
    "channel",
    "direction",
    "agent_accepted_at",
    "contact_session_routed_at",
    "agent_id",
    "sla_fulfilled_at",
    "contact_session_ended_at",
    "status",
    "within_sla",
    "work_session_handle_time_sec",
    "work_session_after_contact_time_sec",
    "work_session_unknown_time_sec",
    "accepted_inbox_id",
];

/// Contact Export columns: the documented ones, then plausible further ones.
pub const CONTACT_EXPORT_COLUMNS: [&str; 18] = [
    "Queued At",
    "Customer ID",
    "Conversation ID",
    "Contact ID",
    "Link",
    "Channel",
    "Direction",
    "Contact Initiator",
    "Entry Point",
    "Final IVR Selection",
    "Inbox ID",
    "Agent ID",
    "Accepted At",
    "Ended At",
    "Status",
    "Wait Time in seconds",
    "Handle Time in seconds",
    "Hold Time in seconds",
];

/// Agent Summary columns: the documented ones, then per-channel and duration columns.
pub const AGENT_SUMMARY_COLUMNS: [&str; 23] = [
    "Bucket Beginning",
    "Bucket End",
    "Name",
    "Email",
    "Agent ID",
    "User Status",
    "Role(s)",
    "Inbox(es)",
    "Team(s)",
    "Logged In",
    "Logged Out",
    "Logged In Time in seconds",
    "Went Away",
    "Returned from Away",
    "Changed Active Reason",
    "Active Time in seconds",
    "Contacts Accepted",
    "Contact Accepted - Phone Call",
    "Contact Accepted - Chat",
    "Contact Accepted - Email",
    "Contact Accepted - Other",
    "Handle Time in seconds",
    "After Contact Time in seconds",
];

/// Conversation Export columns, as the Singer tap `harrystech/tap-gladly` records them
/// (`tap_gladly/schemas/report_conversation_export.json`): the two filter echoes, then the
/// metrics of Gladly's "Conversation Export" help page.
pub const CONVERSATION_EXPORT_COLUMNS: [&str; 55] = [
    "Timezone Filter",
    "Inboxes Filter",
    "Created At",
    "Conversation ID",
    "Customer ID",
    "Conversation Link",
    "Status",
    "Assigned Agent ID - Current",
    "Assigned Agent Name - Current",
    "Inbox ID - Current",
    "Inbox Name - Current",
    "First Closed At",
    "Last Closed At",
    "Initiator Type - Created",
    "Initiator Agent ID - Created",
    "Initiator Agent Name - Created",
    "Inbox ID - Created",
    "Inbox Name - Created",
    "Assigned Agent ID - Created",
    "Assigned Agent Name - Created",
    "Initiator Type - Last Closed",
    "Initiator Agent ID - Last Closed",
    "Initiator Agent Name - Last Closed",
    "Initiator Rule ID - Last Closed",
    "Inbox ID - Last Closed",
    "Inbox Name - Last Closed",
    "Assigned Agent ID - Last Closed",
    "Assigned Agent Name - Last Closed",
    "Topics",
    "Topics with Hierarchy",
    "First Contact ID",
    "First Channel",
    "Second Channel",
    "Third Channel",
    "Last Channel",
    "Created-to-First Closed Time in seconds",
    "Created-to-Last Closed Time in seconds",
    "Conversation Handle Time in seconds",
    "Is FCR Eligible",
    "Is FCR Success",
    "Merged Conversations",
    "Count of Contacts",
    "Count of Channels",
    "Count of Notes",
    "Count of Agents Assigned",
    "Count of Inboxes Assigned",
    "Times Agent Unassigned by Rule",
    "Times Closed",
    "Times Reopened",
    "Times Topic Added",
    "Times Topic Removed",
    "Payment Requests - Completed",
    "Payment Requests - Declined",
    "Payment Amount - Completed USD",
    "Payment Amount - Declined USD",
];

/// Contact Timestamps columns: `Timezone Filter` (by analogy with Conversation Timestamps,
/// unconfirmed), then the first metrics of Gladly's "Contact Timestamps" help page.
pub const CONTACT_TIMESTAMPS_COLUMNS: [&str; 14] = [
    "Timezone Filter",
    "Timestamp",
    "Event Type",
    "Contact ID",
    "Conversation ID",
    "Customer ID",
    "Channel",
    "Initiator Type",
    "Initiator ID",
    "Initiator Agent Name",
    "Assigned Inbox ID",
    "Assigned Inbox Name",
    "Assigned Agent ID",
    "Assigned Agent Name",
];

/// Conversation Timestamps columns, as `harrystech/tap-gladly` records them
/// (`tap_gladly/schemas/reports__conversation_timestamps_report.json`).
pub const CONVERSATION_TIMESTAMPS_COLUMNS: [&str; 21] = [
    "Timezone Filter",
    "Timestamp",
    "Event Type",
    "Conversation ID",
    "Customer ID",
    "Initiator Type",
    "Initiator ID",
    "Initiator Agent Name",
    "Assigned Inbox ID",
    "Assigned Inbox Name",
    "Assigned Agent ID",
    "Assigned Agent Name",
    "Topic ID",
    "Topic Name",
    "Newly Assigned Inbox ID",
    "Newly Assigned Inbox Name",
    "Newly Assigned Agent ID",
    "Newly Assigned Agent Name",
    "Assignment Update Reason",
    "Merged Customer ID",
    "Merged Conversation ID",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_follow_the_documented_shape() {
        let ws = ReportQuery::WorkSessions {
            start: "2024-03-14T10:00:59Z".parse().unwrap(),
            end: "2024-03-15T10:00:00Z".parse().unwrap(),
        };
        assert_eq!(ws.path(), "/api/v1/reports/work-session-events");
        assert_eq!(
            ws.body(),
            json!({"startAtTime":"2024-03-14T10:00Z","endAtTime":"2024-03-15T10:00Z"})
        );
        let day = NaiveDate::from_ymd_opt(2024, 3, 14).unwrap();
        let ag = ReportQuery::MetricSet {
            metric_set: AGENT_SUMMARY.into(),
            start: day,
            end: day,
            timezone: "UTC".into(),
            aggregation_level: Some("halfHourly".into()),
        };
        assert_eq!(ag.path(), "/api/v1/reports");
        assert_eq!(
            ag.body(),
            json!({"metricSet":"AgentSummaryV2","startAt":"2024-03-14","endAt":"2024-03-14","timezone":"UTC","aggregationLevel":"halfHourly"})
        );
    }

    #[test]
    fn the_error_body_omits_a_missing_attr() {
        let body = ApiErrors {
            errors: vec![
                ApiError {
                    attr: Some("metricSet".into()),
                    code: "blank".into(),
                    detail: "metricSet can't be blank".into(),
                },
                ApiError {
                    attr: None,
                    code: "invalid".into(),
                    detail: "request body must be a JSON object".into(),
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"errors":[
                {"attr":"metricSet","code":"blank","detail":"metricSet can't be blank"},
                {"code":"invalid","detail":"request body must be a JSON object"}
            ]})
        );
    }
}
