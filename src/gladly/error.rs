//! What can go wrong talking to Gladly, each variant saying what to fix.
//!
//! Two kinds, two types: a [`GladlyError`] is fatal to what it happened to (a request, or a
//! report body that broke off), while a [`RowError`] is one data row of a body that could not
//! be read, with the rest of the body still coming.

use std::time::Duration;

use serde::Deserialize;

/// One entry of Gladly's 400 body `{"errors":[{"attr","code","detail"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    /// The offending request field, when Gladly names one.
    #[serde(default)]
    pub attr: Option<String>,
    /// A short code such as `blank` or `invalid`.
    #[serde(default)]
    pub code: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub detail: String,
}

/// Gladly's error body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiErrors {
    /// The errors.
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

fn describe(errors: &[ApiError], raw: &str) -> String {
    if errors.is_empty() {
        return raw.to_string();
    }
    errors
        .iter()
        .map(|e| match &e.attr {
            Some(a) => format!("{a}: {} ({})", e.detail, e.code),
            None => format!("{} ({})", e.detail, e.code),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What to check after a 400, for the request that got it.
fn bad_request_advice(what: &str) -> &'static str {
    if what == "work-session-events" {
        "check the window sent (startAtTime and endAtTime at minute precision, the end after the start; \
         reports.work_sessions.start and max_window_minutes)"
    } else {
        "check the report settings (reports.<report>.metric_set, start, timezone, filters, time_range and, for Agent Summary, aggregation_level)"
    }
}

/// `e` and every error under it, joined with `: ` (reqwest's own message is only "error
/// sending request" or "error decoding response body"; the cause is further down).
pub(crate) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// `text` cut to `chars` characters, with an ellipsis when it was longer.
pub(crate) fn cut(text: &str, chars: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(chars) {
        None => text.into(),
        Some((at, _)) => format!("{}…", &text[..at]).into(),
    }
}

/// An error from the Gladly client.
#[derive(Debug, thiserror::Error)]
pub enum GladlyError {
    /// The settings cannot make a client (bad host, unreadable token file, TLS setup).
    #[error("gladly client setup: {0}")]
    Setup(String),
    /// 401: the credentials were not accepted.
    #[error(
        "Gladly rejected the credentials (401) for {email} at {host}: check gladly.email (the API user's \
         agent email) and the API token (gladly.token or gladly.token_file); a token is shown only once when created"
    )]
    Unauthorized {
        /// The org host.
        host: String,
        /// The user name sent.
        email: String,
    },
    /// 403: authenticated, but not allowed.
    #[error(
        "Gladly refused access (403) for {email} at {host}: give this user the API User permission \
         (and keep its Agent role) so it may call the report API"
    )]
    Forbidden {
        /// The org host.
        host: String,
        /// The user name sent.
        email: String,
    },
    /// 404: nothing at that path: almost always the wrong organization host.
    #[error(
        "Gladly answered 404 for {url}: check gladly.host: it must be your organization's base URL, e.g. \
         https://acme.gladly.com (some orgs live on a region host such as acme.us-1.gladly.com)"
    )]
    NotFound {
        /// The URL requested.
        url: String,
    },
    /// 400: Gladly rejected the request body.
    #[error("Gladly rejected the {what} request (400): {}; {}", describe(.errors, .body), bad_request_advice(.what))]
    BadRequest {
        /// Which request, e.g. `work-session-events` or `ContactExportReportV3`.
        what: String,
        /// Gladly's errors, when the body had its documented shape.
        errors: Vec<ApiError>,
        /// The raw body (truncated).
        body: String,
    },
    /// 429: over the org's report limit.
    #[error("Gladly rate limit reached (429){}", .retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited {
        /// What `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
    },
    /// 5xx: Gladly had a problem.
    #[error("Gladly answered {status} for {url}: {body}")]
    Server {
        /// The status code.
        status: u16,
        /// The URL requested.
        url: String,
        /// Start of the body.
        body: String,
        /// What `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
    },
    /// Another unexpected status (not retried).
    #[error("Gladly answered {status} for {url}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The URL requested.
        url: String,
        /// Start of the body.
        body: String,
    },
    /// The request did not get a response: connect failure, reset, read timeout.
    #[error("request to {url} failed: {}", causes(.source))]
    Transport {
        /// The URL requested.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The response body broke off (connection cut, read timeout) after `rows` rows.
    #[error("the report body from {url} broke off after {rows} rows: {}", causes(.source))]
    Body {
        /// The URL requested.
        url: String,
        /// Data rows read before the break.
        rows: u64,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The body is not CSV that can be split into rows: it ends inside a quoted field, or
    /// its header line is over `gladly.max_row_bytes`. The stream ends; nothing of it counts.
    #[error("the report body is not well-formed CSV at line {line}: {detail}")]
    Framing {
        /// 1-based line of the row where the problem starts.
        line: u64,
        /// What is wrong.
        detail: String,
    },
    /// A request (its body included) took longer than `gladly.request_deadline_secs`.
    #[error(
        "no complete answer from {url} within gladly.request_deadline_secs = {secs} ({rows} rows read): \
         Gladly is answering too slowly; the window is retried"
    )]
    Deadline {
        /// The URL requested.
        url: String,
        /// The deadline, in seconds.
        secs: u64,
        /// Data rows read before the deadline.
        rows: u64,
    },
    /// A 200 that is not the report: wrong content type, a body without a CSV header line,
    /// or a header without the report's key columns. Retried like a 5xx.
    #[error(
        "Gladly's answer to the {what} request is not the report: {reason} \
         (status {status}, Content-Type {content_type:?}, body starts {first_bytes:?})"
    )]
    NotAReport {
        /// Which request, e.g. `work-session-events` or `ContactExportReportV3`.
        what: String,
        /// The status code.
        status: u16,
        /// What is wrong with it.
        reason: String,
        /// The `Content-Type` it came with (empty when none).
        content_type: String,
        /// The first bytes of the body, lossily decoded and cut.
        first_bytes: String,
    },
    /// A report request answered with a redirect. Report requests follow none: Gladly's
    /// report endpoints do not redirect, and the answer of another host is not Gladly data.
    #[error(
        "Gladly answered {status} (a redirect to {location}) for {url}; report requests follow no redirects, \
         so no credentials or data cross hosts: check gladly.host (your organization's base URL, e.g. https://acme.gladly.com)"
    )]
    Redirected {
        /// The 3xx status.
        status: u16,
        /// The URL requested.
        url: String,
        /// The `Location` header, or `(none)`.
        location: String,
    },
    /// A 301/308 that cannot be followed: no usable `Location`, another host, or a second
    /// move (moves are followed once).
    #[error("Gladly answered {status} (moved) for {url}: {detail}")]
    Moved {
        /// 301 or 308.
        status: u16,
        /// The URL requested.
        url: String,
        /// Why it was not followed.
        detail: String,
    },
    /// A 200 whose body is not what Gladly documents.
    #[error("Gladly's answer from {url} is not the documented shape: {reason}")]
    Decode {
        /// The URL requested.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A 200 to a GET whose body is longer than the service holds in memory (a list, a
    /// conversation, a range of events): not retried as is; the events feed splits the range.
    #[error("Gladly's answer from {url} is not the documented shape: the body is longer than {limit} bytes")]
    TooLong {
        /// The URL requested.
        url: String,
        /// The bound, bytes.
        limit: usize,
    },
    /// Every attempt failed with a retryable error.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<GladlyError>,
    },
}

impl GladlyError {
    /// True when trying again later may succeed (429, 5xx, timeouts, resets, a cut body).
    /// 400/401/403/404 and setup errors need a fix first.
    pub fn is_retryable(&self) -> bool {
        match self {
            GladlyError::RateLimited { .. }
            | GladlyError::Server { .. }
            | GladlyError::Body { .. }
            | GladlyError::Framing { .. }
            | GladlyError::Deadline { .. }
            | GladlyError::NotAReport { .. } => true,
            GladlyError::Transport { source, .. } => !source.is_builder(),
            GladlyError::RetriesExhausted { last, .. } => last.is_retryable(),
            GladlyError::Setup(_)
            | GladlyError::Unauthorized { .. }
            | GladlyError::Forbidden { .. }
            | GladlyError::NotFound { .. }
            | GladlyError::BadRequest { .. }
            | GladlyError::Status { .. }
            | GladlyError::Moved { .. }
            | GladlyError::Redirected { .. }
            | GladlyError::Decode { .. }
            | GladlyError::TooLong { .. } => false,
        }
    }

    /// This error with `rows`, the data rows read before it, where it counts them.
    pub(crate) fn after_rows(self, rows: u64) -> GladlyError {
        match self {
            GladlyError::Body { url, source, .. } => GladlyError::Body { url, rows, source },
            GladlyError::Deadline { url, secs, .. } => GladlyError::Deadline { url, secs, rows },
            other => other,
        }
    }

    /// The wait the server asked for with `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GladlyError::RateLimited { retry_after } | GladlyError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// True when the credentials or permissions are wrong (401, 403, setup): nothing else will
    /// work either until they are fixed.
    pub fn is_credentials(&self) -> bool {
        matches!(
            self,
            GladlyError::Setup(_)
                | GladlyError::Unauthorized { .. }
                | GladlyError::Forbidden { .. }
        )
    }

    /// True for a 429 (directly or as the last of exhausted retries).
    pub fn is_rate_limited(&self) -> bool {
        match self {
            GladlyError::RateLimited { .. } => true,
            GladlyError::RetriesExhausted { last, .. } => last.is_rate_limited(),
            _ => false,
        }
    }
}

/// A data row of a report body that cannot be read as a row of the report: the wrong number
/// of fields, not UTF-8, or over the size limits. Soft: only this row is lost (the service
/// publishes it as a dead letter) and [`super::RowStream`] goes on with the next one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CSV row at line {line}: {reason}")]
pub struct RowError {
    /// 1-based line where the row starts in the body.
    pub line: u64,
    /// What is wrong, starting with its kind (`malformed row: …` for the field count or
    /// encoding, `oversized row: …`, `oversized cell: …`).
    pub reason: String,
    /// The raw cells, lossily decoded (cut to a preview when the row is oversized).
    pub raw: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_request_lists_gladly_details() {
        let e = GladlyError::BadRequest {
            what: "ContactExportReportV9".into(),
            errors: vec![ApiError {
                attr: Some("metricSet".into()),
                code: "invalid".into(),
                detail: "unknown metricSet".into(),
            }],
            body: String::new(),
        };
        let m = e.to_string();
        assert!(m.contains("metricSet: unknown metricSet (invalid)"), "{m}");
        assert!(
            m.contains("metric_set") && m.contains("aggregation_level"),
            "{m}"
        );
        assert!(!e.is_retryable());
        // work sessions have no metric set, timezone or aggregation level to check
        let ws = GladlyError::BadRequest {
            what: "work-session-events".into(),
            errors: vec![],
            body: "an HTML page titled \"Bad Request\" (5120 bytes)".into(),
        };
        let m = ws.to_string();
        assert!(m.contains("startAtTime") && !m.contains("metric"), "{m}");
        assert!(!m.contains("timezone") && !m.contains("aggregation"), "{m}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("message head is too large")]
    struct Inner;

    #[test]
    fn causes_name_the_whole_chain() {
        assert_eq!(causes(&Outer(Inner)), "outer: message head is too large");
    }

    #[test]
    fn answers_that_are_not_the_report_and_deadlines_are_retried_redirects_are_not() {
        let not = GladlyError::NotAReport {
            what: "work-session-events".into(),
            status: 200,
            reason: "Content-Type \"text/html\" is not CSV".into(),
            content_type: "text/html".into(),
            first_bytes: "<!DOCTYPE html>".into(),
        };
        assert!(not.is_retryable());
        let m = not.to_string();
        assert!(
            m.contains("not the report") && m.contains("<!DOCTYPE html>"),
            "{m}"
        );
        assert!(GladlyError::Deadline {
            url: "u".into(),
            secs: 5,
            rows: 3
        }
        .is_retryable());
        let r = GladlyError::Redirected {
            status: 302,
            url: "https://acme.gladly.com/api/v1/reports".into(),
            location: "https://elsewhere.example/x.csv".into(),
        };
        assert!(!r.is_retryable());
        let m = r.to_string();
        assert!(
            m.contains("elsewhere.example") && m.contains("gladly.host"),
            "{m}"
        );
    }

    #[test]
    fn retryability() {
        assert!(GladlyError::RateLimited { retry_after: None }.is_retryable());
        let nested = GladlyError::RetriesExhausted {
            attempts: 3,
            last: Box::new(GladlyError::RateLimited { retry_after: None }),
        };
        assert!(nested.is_retryable() && nested.is_rate_limited());
        assert!(!GladlyError::NotFound { url: "u".into() }.is_retryable());
        assert!(!GladlyError::Unauthorized {
            host: "h".into(),
            email: "e".into()
        }
        .is_retryable());
    }
}
