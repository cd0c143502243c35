//! [`ReportRequest`]: one report request, its path and the JSON body Gladly expects.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

/// Path of the work-session report.
pub const WORK_SESSIONS_PATH: &str = "/api/v1/reports/work-session-events";
/// Path of the metric-set reports (Contact Export, Agent Summary, …).
pub const REPORTS_PATH: &str = "/api/v1/reports";

/// One report request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportRequest {
    /// `POST /api/v1/reports/work-session-events`. Sent at minute precision (seconds are
    /// truncated); Gladly includes rows up to one minute past `end`.
    WorkSessions {
        /// Window start.
        start: DateTime<Utc>,
        /// Window end.
        end: DateTime<Utc>,
    },
    /// `POST /api/v1/reports` with a metric set, whole dates in `timezone` (`end` inclusive).
    MetricSet {
        /// e.g. [`CONTACT_EXPORT`](super::CONTACT_EXPORT) or
        /// [`AGENT_SUMMARY`](super::AGENT_SUMMARY).
        metric_set: String,
        /// First date.
        start: NaiveDate,
        /// Last date (inclusive).
        end: NaiveDate,
        /// IANA timezone of the dates.
        timezone: String,
        /// `halfHourly`, `daily`, `weekly`, `monthly` or `quarterly` (bucketed reports only).
        aggregation_level: Option<String>,
        /// Gladly's `filters` object, sent as given.
        filters: Option<serde_json::Value>,
    },
    /// `POST /api/v1/reports` with a metric set over instants (`startAtTime`/`endAtTime`,
    /// Gladly's 2026 spec; Contact Export only): sent at minute precision, without dates or a
    /// timezone, which must not accompany them. Rows up to one minute past `end` are assumed
    /// included, as for work sessions.
    MetricSetBetween {
        /// The metric set ([`CONTACT_EXPORT`](super::CONTACT_EXPORT)).
        metric_set: String,
        /// Window start.
        start: DateTime<Utc>,
        /// Window end.
        end: DateTime<Utc>,
        /// Gladly's `filters` object, sent as given.
        filters: Option<serde_json::Value>,
    },
}

/// Formats an instant as Gladly's minute-precision `YYYY-mm-ddThh:mmZ`.
pub fn minute_precision(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%MZ").to_string()
}

impl ReportRequest {
    /// The request path under the org host.
    pub fn path(&self) -> &'static str {
        match self {
            ReportRequest::WorkSessions { .. } => WORK_SESSIONS_PATH,
            ReportRequest::MetricSet { .. } | ReportRequest::MetricSetBetween { .. } => {
                REPORTS_PATH
            }
        }
    }

    /// The JSON body Gladly expects.
    pub fn body(&self) -> serde_json::Value {
        match self {
            ReportRequest::WorkSessions { start, end } => json!({
                "startAtTime": minute_precision(*start),
                "endAtTime": minute_precision(*end),
            }),
            ReportRequest::MetricSet {
                metric_set,
                start,
                end,
                timezone,
                aggregation_level,
                filters,
            } => {
                let mut body = json!({
                    "metricSet": metric_set,
                    "startAt": start.format("%Y-%m-%d").to_string(),
                    "endAt": end.format("%Y-%m-%d").to_string(),
                    "timezone": timezone,
                });
                if let Some(level) = aggregation_level {
                    body["aggregationLevel"] = json!(level);
                }
                with_filters(body, filters)
            }
            ReportRequest::MetricSetBetween {
                metric_set,
                start,
                end,
                filters,
            } => with_filters(
                json!({
                    "metricSet": metric_set,
                    "startAtTime": minute_precision(*start),
                    "endAtTime": minute_precision(*end),
                }),
                filters,
            ),
        }
    }

    /// A short name for logs and errors: `work-session-events` or the metric set.
    pub fn describe(&self) -> String {
        match self {
            ReportRequest::WorkSessions { .. } => "work-session-events".into(),
            ReportRequest::MetricSet { metric_set, .. } => metric_set.clone(),
            ReportRequest::MetricSetBetween { metric_set, .. } => {
                format!("{metric_set} (time-precise)")
            }
        }
    }
}

/// `body` with Gladly's `filters` object, when there is one.
fn with_filters(
    mut body: serde_json::Value,
    filters: &Option<serde_json::Value>,
) -> serde_json::Value {
    if let Some(f) = filters {
        body["filters"] = f.clone();
    }
    body
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CONTACT_EXPORT;

    #[test]
    fn request_bodies_follow_the_documented_shape() {
        let ws = ReportRequest::WorkSessions {
            start: "2024-03-14T10:00:59Z".parse().unwrap(),
            end: "2024-03-15T10:00:00Z".parse().unwrap(),
        };
        assert_eq!(ws.path(), "/api/v1/reports/work-session-events");
        assert_eq!(
            ws.body(),
            json!({"startAtTime":"2024-03-14T10:00Z","endAtTime":"2024-03-15T10:00Z"})
        );
        let ce = ReportRequest::MetricSet {
            metric_set: CONTACT_EXPORT.into(),
            start: NaiveDate::from_ymd_opt(2024, 3, 14).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 3, 14).unwrap(),
            timezone: "UTC".into(),
            aggregation_level: None,
            filters: None,
        };
        assert_eq!(
            ce.body(),
            json!({"metricSet":"ContactExportReportV3","startAt":"2024-03-14","endAt":"2024-03-14","timezone":"UTC"})
        );
        let mut ag = ce.clone();
        if let ReportRequest::MetricSet {
            aggregation_level, ..
        } = &mut ag
        {
            *aggregation_level = Some("halfHourly".into());
        }
        assert_eq!(ag.body()["aggregationLevel"], "halfHourly");
        if let ReportRequest::MetricSet { filters, .. } = &mut ag {
            *filters = Some(json!({"inboxes": ["ib1"]}));
        }
        assert_eq!(ag.body()["filters"], json!({"inboxes": ["ib1"]}));
        assert_eq!(ag.path(), "/api/v1/reports");
    }
}
