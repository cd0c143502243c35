//! The source: the Gladly HTTP client (Basic auth, org-wide pacing, retries with backoff and
//! `Retry-After`), report requests, streaming CSV rows, GET Conversation, and the list
//! endpoints of the dimension topics ([`crate::report::DimensionList`]).
//!
//! ```
//! use futures::StreamExt;
//! use gladly_kafka::gladly::{Client, GladlyError, ReportRequest, RowError, RowStream};
//!
//! /// The ids of a report's rows, and its bad rows: a bad row is set aside and the stream
//! /// goes on; a body that broke off ends it, and the caller retries the whole window.
//! async fn read(mut rows: RowStream) -> Result<(Vec<String>, Vec<RowError>), GladlyError> {
//!     let (mut ids, mut dead_letters) = (Vec::new(), Vec::new());
//!     while let Some(item) = rows.next().await {
//!         // `?` stops on a fatal GladlyError only: the body broke off, the rest is lost
//!         match item? {
//!             Ok(row) => ids.push(row.get("id").unwrap_or_default().to_string()),
//!             // soft: only this row is lost (the service dead-letters it); read on
//!             Err(bad) => dead_letters.push(bad),
//!         }
//!     }
//!     Ok((ids, dead_letters))
//! }
//!
//! /// Against Gladly: the rows of one window.
//! async fn window(client: &Client) -> Result<(Vec<String>, Vec<RowError>), GladlyError> {
//!     let req = ReportRequest::WorkSessions {
//!         start: "2024-03-14T10:00:00Z".parse().unwrap(),
//!         end: "2024-03-14T11:00:00Z".parse().unwrap(),
//!     };
//!     read(client.report(&req).await?).await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), GladlyError> {
//! // Here, from bodies in memory. A row with a field too many is a soft error:
//! let body = "id,channel\n1,CHAT\n2,EMAIL,oops\n3,SMS\n";
//! let (ids, bad) = read(RowStream::from_bytes(body).await?).await?;
//! assert_eq!(ids, ["1", "3"]);
//! assert_eq!((bad.len(), bad[0].line), (1, 3));
//!
//! // A body that ends inside a quoted field was cut: a fatal error, not a short success.
//! let cut = "id,channel\n1,CHAT\n2,\"EMA";
//! let err = read(RowStream::from_bytes(cut).await?).await.unwrap_err();
//! assert!(matches!(err, GladlyError::Framing { line: 3, .. }), "{err}");
//! # Ok(()) }
//! ```

mod answer;
mod client;
mod conversation;
mod csv;
mod error;
mod get_body;
mod lists;
mod pacer;
pub mod retry;
mod settings;
mod stats;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

pub use crate::report::{Conversation, CustomAttribute};
pub use client::{Client, ClientStats, RetryEvent};
pub use conversation::{ConversationLookup, CONVERSATIONS_PATH};
pub use csv::{BodyChunks, RowLimits, RowResult, RowStream, PREVIEW_BYTES};
pub use error::{ApiError, ApiErrors, GladlyError, RowError};
pub use pacer::Pacer;
pub use retry::{parse_retry_after, Backoff, MAX_RETRY_AFTER};
pub use settings::{GladlySettings, Secret};

/// Path of the work-session report.
pub const WORK_SESSIONS_PATH: &str = "/api/v1/reports/work-session-events";
/// Path of the metric-set reports (Contact Export, Agent Summary, …).
pub const REPORTS_PATH: &str = "/api/v1/reports";
/// The Contact Export and Agent Summary metric sets Gladly documents today (the built-in
/// reports' defaults, from [`crate::report::BUILT_IN`]).
pub use crate::report::{AGENT_SUMMARY, CONTACT_EXPORT};

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
        /// e.g. [`CONTACT_EXPORT`] or [`AGENT_SUMMARY`].
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
        /// The metric set ([`CONTACT_EXPORT`]).
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

/// A client of a fake Gladly: `app` served on a loopback port, one attempt per request.
#[cfg(test)]
pub(crate) async fn client_for(app: axum::Router) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Client::new(&GladlySettings {
        host: format!("http://{addr}"),
        email: "api@example.com".into(),
        token: Some(Secret::new("t")),
        requests_per_second: 1000,
        max_attempts: 1,
        ..Default::default()
    })
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

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
