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
mod events;
mod get_body;
mod lists;
mod pacer;
mod request;
pub mod retry;
mod settings;
mod stats;

pub use crate::report::{Conversation, CustomAttribute};
pub use client::{Client, ClientStats, RetryEvent};
pub use conversation::{ConversationLookup, CONVERSATIONS_PATH};
pub use csv::{BodyChunks, RowLimits, RowResult, RowStream, PREVIEW_BYTES};
pub use error::{ApiError, ApiErrors, GladlyError, RowError};
pub use events::{events_url, EVENTS_PATH};
pub use pacer::Pacer;
pub use request::{minute_precision, ReportRequest, REPORTS_PATH, WORK_SESSIONS_PATH};
pub use retry::{parse_retry_after, Backoff, MAX_RETRY_AFTER};
pub use settings::{GladlySettings, Secret};

/// The Contact Export and Agent Summary metric sets Gladly documents today (the built-in
/// reports' defaults, from [`crate::report::BUILT_IN`]).
pub use crate::report::{AGENT_SUMMARY, CONTACT_EXPORT};

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
