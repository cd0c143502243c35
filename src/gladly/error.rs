//! What can go wrong talking to Gladly, each variant saying what to fix.

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
        return raw.chars().take(300).collect();
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
    #[error("Gladly rejected the {what} request (400): {}; check the report settings (metric set name, dates, timezone, aggregation level)", describe(.errors, .body))]
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
    #[error("request to {url} failed: {source}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The response body broke off (connection cut, read timeout) after `rows` rows.
    #[error("the report body from {url} broke off after {rows} rows: {source}")]
    Body {
        /// The URL requested.
        url: String,
        /// Data rows read before the break.
        rows: u64,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A data row that cannot be read as a row of this report. The stream continues after it.
    #[error("malformed CSV row at line {line}: {reason}")]
    MalformedRow {
        /// 1-based line where the row starts in the body.
        line: u64,
        /// What is wrong (field count, encoding).
        reason: String,
        /// The raw cells, lossily decoded.
        raw: Vec<String>,
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
    /// 400/401/403/404, malformed rows and setup errors need a fix first.
    pub fn is_retryable(&self) -> bool {
        match self {
            GladlyError::RateLimited { .. }
            | GladlyError::Server { .. }
            | GladlyError::Body { .. } => true,
            GladlyError::Transport { source, .. } => !source.is_builder(),
            GladlyError::RetriesExhausted { last, .. } => last.is_retryable(),
            GladlyError::Setup(_)
            | GladlyError::Unauthorized { .. }
            | GladlyError::Forbidden { .. }
            | GladlyError::NotFound { .. }
            | GladlyError::BadRequest { .. }
            | GladlyError::Status { .. }
            | GladlyError::Moved { .. }
            | GladlyError::Decode { .. }
            | GladlyError::MalformedRow { .. } => false,
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
        assert!(m.contains("metric set name"), "{m}");
        assert!(!e.is_retryable());
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
