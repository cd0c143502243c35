//! `[gladly]` settings: where the org lives, who calls, and how politely.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::csv::RowLimits;
use crate::config_error::ConfigError;

/// A secret string (the API token). `Debug` and `Display` print `***`; [`Secret::expose`]
/// is the only way to read it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: only for putting it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to reach and pace the Gladly API (`[gladly]` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GladlySettings {
    /// Base URL of the organization, e.g. `https://acme.gladly.com` (no `/api/v1`).
    /// `http://` is meant for the simulator.
    pub host: String,
    /// The API user's agent email (the Basic-auth user name).
    pub email: String,
    /// The API token (the Basic-auth password); or use `token_file`.
    pub token: Option<Secret>,
    /// A file holding the API token (surrounding whitespace is ignored).
    pub token_file: Option<PathBuf>,
    /// Report requests per minute across this process (Gladly allows 10 per org).
    pub requests_per_minute: u32,
    /// Report requests in flight at once, counting the body download (Gladly allows 2 per org).
    pub max_concurrent_reports: u32,
    /// Other requests (GET Conversation) per second across this process (Gladly allows 10
    /// per second per org, shared with every other tool of the org).
    pub requests_per_second: u32,
    /// Longest wait for any single read from the connection (see `request_deadline_secs`
    /// for the whole request).
    pub read_timeout_secs: u64,
    /// Longest time one request may take from sending to the last byte of its body; an
    /// answer still arriving then fails (and is retried like a timeout).
    pub request_deadline_secs: u64,
    /// Longest CSV row, in raw bytes; a longer row becomes a dead letter holding a cut copy.
    pub max_row_bytes: usize,
    /// Longest CSV cell, in bytes; a row with a longer one becomes a dead letter.
    pub max_cell_bytes: usize,
    /// Longest wait to establish a connection.
    pub connect_timeout_secs: u64,
    /// Attempts per report request (the first one included) before giving up.
    pub max_attempts: u32,
    /// First retry backoff cap, doubled per attempt (full jitter below the cap).
    pub initial_backoff_ms: u64,
    /// Largest backoff cap.
    pub max_backoff_secs: u64,
}

impl Default for GladlySettings {
    fn default() -> Self {
        GladlySettings {
            host: String::new(),
            email: String::new(),
            token: None,
            token_file: None,
            requests_per_minute: 8,
            max_concurrent_reports: 1,
            requests_per_second: 5,
            read_timeout_secs: 300,
            request_deadline_secs: 600,
            max_row_bytes: DEFAULT_MAX_ROW_BYTES,
            max_cell_bytes: DEFAULT_MAX_CELL_BYTES,
            connect_timeout_secs: 30,
            max_attempts: 6,
            initial_backoff_ms: 1000,
            max_backoff_secs: 120,
        }
    }
}

/// Default `max_row_bytes`: 256 KiB, a quarter of Kafka's default message size, so a row's
/// record or dead letter (cells plus column names) always fits in one message.
const DEFAULT_MAX_ROW_BYTES: usize = 256 * 1024;
/// Default `max_cell_bytes`: 64 KiB, far above any id, timestamp or name Gladly sends.
const DEFAULT_MAX_CELL_BYTES: usize = 64 * 1024;
/// Largest `max_row_bytes` accepted: a row's record must stay under Kafka's default
/// `message.max.bytes` (1,000,000) with its column names and headers.
const MAX_ROW_BYTES_LIMIT: usize = 512 * 1024;

/// Gladly's documented per-organization report limits.
const GLADLY_REPORTS_PER_MINUTE: u32 = 10;
const GLADLY_CONCURRENT_REPORTS: u32 = 2;
/// Gladly's documented per-organization limit of every other request (per method).
const GLADLY_REQUESTS_PER_SECOND: u32 = 10;

impl GladlySettings {
    /// Checks every value, naming the key (`gladly.<key>`) and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("gladly.{k}");
        let url = self
            .parsed_host()
            .map_err(|m| ConfigError::invalid(key("host"), m))?;
        let simulated = url.scheme() == "http";
        if !self.email.contains('@') {
            return Err(ConfigError::invalid(
                key("email"),
                format!(
                    "{:?} is not an email: set the API user's agent email (the Basic-auth user)",
                    self.email
                ),
            ));
        }
        self.validate_token()?;
        self.validate_limits(simulated)?;
        self.validate_timing()?;
        self.validate_sizes()
    }

    /// The CSV size limits the client applies.
    pub fn row_limits(&self) -> RowLimits {
        RowLimits {
            max_row_bytes: self.max_row_bytes,
            max_cell_bytes: self.max_cell_bytes,
        }
    }

    /// Row and cell limits within what one Kafka message holds, the cell within the row.
    fn validate_sizes(&self) -> Result<(), ConfigError> {
        if !(1024..=MAX_ROW_BYTES_LIMIT).contains(&self.max_row_bytes) {
            return Err(ConfigError::invalid(
                "gladly.max_row_bytes",
                format!(
                    "{} is outside 1024..={MAX_ROW_BYTES_LIMIT}: a row's record (its cells plus column names) must fit \
                     in one Kafka message (message.max.bytes, 1,000,000 by default); the default is {DEFAULT_MAX_ROW_BYTES}",
                    self.max_row_bytes
                ),
            ));
        }
        if self.max_cell_bytes == 0 || self.max_cell_bytes > self.max_row_bytes {
            return Err(ConfigError::invalid(
                "gladly.max_cell_bytes",
                format!(
                    "{} must be at least 1 and at most gladly.max_row_bytes ({}); the default is {DEFAULT_MAX_CELL_BYTES}",
                    self.max_cell_bytes, self.max_row_bytes
                ),
            ));
        }
        Ok(())
    }

    /// One token, from `gladly.token` or `gladly.token_file`, not empty.
    fn validate_token(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("gladly.{k}");
        match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    key("token"),
                    "both gladly.token and gladly.token_file are set: keep one",
                ))
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    key("token"),
                    "no API token: set gladly.token (e.g. GLADLY_KAFKA__GLADLY__TOKEN) or gladly.token_file",
                ))
            }
            (Some(t), None) if t.expose().trim().is_empty() => {
                return Err(ConfigError::invalid(key("token"), "is empty"))
            }
            (None, Some(_)) => {
                self.resolve_token()
                    .map_err(|e| ConfigError::invalid(key("token_file"), e))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Pacing within Gladly's documented limits (a simulator on plain http may go faster).
    fn validate_limits(&self, simulated: bool) -> Result<(), ConfigError> {
        let key = |k: &str| format!("gladly.{k}");
        if self.requests_per_minute == 0 {
            return Err(ConfigError::invalid(
                key("requests_per_minute"),
                "must be at least 1",
            ));
        }
        if !simulated && self.requests_per_minute > GLADLY_REPORTS_PER_MINUTE {
            return Err(ConfigError::invalid(
                key("requests_per_minute"),
                format!(
                    "{} is above Gladly's limit of {GLADLY_REPORTS_PER_MINUTE} report requests per minute per organization \
                     (shared with every other tool of the org), so requests would get 429s: set 8 or less",
                    self.requests_per_minute
                ),
            ));
        }
        if self.max_concurrent_reports == 0 {
            return Err(ConfigError::invalid(
                key("max_concurrent_reports"),
                "must be at least 1",
            ));
        }
        if !simulated && self.max_concurrent_reports > GLADLY_CONCURRENT_REPORTS {
            return Err(ConfigError::invalid(
                key("max_concurrent_reports"),
                format!(
                    "{} is above Gladly's limit of {GLADLY_CONCURRENT_REPORTS} concurrent report requests per organization: set 1",
                    self.max_concurrent_reports
                ),
            ));
        }
        if self.requests_per_second == 0 {
            return Err(ConfigError::invalid(
                key("requests_per_second"),
                "must be at least 1",
            ));
        }
        if !simulated && self.requests_per_second >= GLADLY_REQUESTS_PER_SECOND {
            return Err(ConfigError::invalid(
                key("requests_per_second"),
                format!(
                    "{} is at or above Gladly's limit of {GLADLY_REQUESTS_PER_SECOND} requests per second per organization \
                     (shared with every other tool of the org), so requests would get 429s: set 9 or less (the default, 5, leaves room for other tools)",
                    self.requests_per_second
                ),
            ));
        }
        Ok(())
    }

    /// Timeouts, attempts and backoff are positive, and the backoff range is not inverted.
    fn validate_timing(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("gladly.{k}");
        for (k, v) in [
            ("read_timeout_secs", self.read_timeout_secs),
            ("request_deadline_secs", self.request_deadline_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("max_attempts", u64::from(self.max_attempts)),
            ("initial_backoff_ms", self.initial_backoff_ms),
            ("max_backoff_secs", self.max_backoff_secs),
        ] {
            if v == 0 {
                return Err(ConfigError::invalid(key(k), "must be at least 1"));
            }
        }
        if self.request_deadline_secs < self.read_timeout_secs {
            return Err(ConfigError::invalid(
                key("request_deadline_secs"),
                format!(
                    "{} is below gladly.read_timeout_secs ({}): the deadline covers the whole request, body included, \
                     so set it at least as high (the default is 600)",
                    self.request_deadline_secs, self.read_timeout_secs
                ),
            ));
        }
        if self.max_backoff_secs.saturating_mul(1000) < self.initial_backoff_ms {
            return Err(ConfigError::invalid(
                key("max_backoff_secs"),
                "is below gladly.initial_backoff_ms: raise it or lower the initial backoff",
            ));
        }
        Ok(())
    }

    /// The host as a URL, or what is wrong with it.
    pub(crate) fn parsed_host(&self) -> Result<reqwest::Url, String> {
        if self.host.trim().is_empty() {
            return Err(
                "is empty: set your organization's URL, e.g. https://acme.gladly.com".into(),
            );
        }
        let url = reqwest::Url::parse(self.host.trim()).map_err(|e| {
            format!(
                "{:?} is not a URL ({e}): use e.g. https://acme.gladly.com",
                self.host
            )
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!(
                "{:?}: use https:// (http:// only for the simulator)",
                self.host
            ));
        }
        if !url.path().trim_end_matches('/').is_empty() {
            return Err(format!(
                "{:?} has a path: give only the organization's base URL, e.g. https://acme.gladly.com (the client adds /api/v1/...)",
                self.host
            ));
        }
        Ok(url)
    }

    /// The API token from `token` or `token_file`.
    pub(crate) fn resolve_token(&self) -> Result<Secret, String> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
                let t = text.trim();
                if t.is_empty() {
                    return Err(format!("the token file {} is empty", path.display()));
                }
                Ok(Secret::new(t))
            }
            (None, None) => Err("no API token: set gladly.token or gladly.token_file".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> GladlySettings {
        GladlySettings {
            host: "https://acme.gladly.com".into(),
            email: "api@acme.com".into(),
            token: Some(Secret::new("s3cr3t-token")),
            ..GladlySettings::default()
        }
    }

    #[test]
    fn defaults_plus_credentials_are_valid() {
        ok().validate().unwrap();
        assert_eq!(GladlySettings::default().requests_per_minute, 8);
        assert_eq!(GladlySettings::default().max_concurrent_reports, 1);
        assert_eq!(GladlySettings::default().requests_per_second, 5);
    }

    #[test]
    fn debug_never_prints_the_token() {
        let s = ok();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("***"), "{dbg}");
        assert_eq!(Secret::new("x").to_string(), "***");
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let cases: Vec<(GladlySettings, &str, &str)> = vec![
            (
                GladlySettings {
                    host: "https://acme.gladly.com/api/v1".into(),
                    ..ok()
                },
                "gladly.host",
                "base URL",
            ),
            (
                GladlySettings {
                    host: "ftp://acme".into(),
                    ..ok()
                },
                "gladly.host",
                "https://",
            ),
            (
                GladlySettings {
                    email: "api".into(),
                    ..ok()
                },
                "gladly.email",
                "agent email",
            ),
            (
                GladlySettings {
                    token: None,
                    ..ok()
                },
                "gladly.token",
                "token_file",
            ),
            (
                GladlySettings {
                    requests_per_minute: 12,
                    ..ok()
                },
                "gladly.requests_per_minute",
                "429",
            ),
            (
                GladlySettings {
                    requests_per_second: 10,
                    ..ok()
                },
                "gladly.requests_per_second",
                "429",
            ),
            (
                GladlySettings {
                    requests_per_second: 0,
                    ..ok()
                },
                "gladly.requests_per_second",
                "at least 1",
            ),
            (
                GladlySettings {
                    max_concurrent_reports: 3,
                    ..ok()
                },
                "gladly.max_concurrent_reports",
                "concurrent",
            ),
            (
                GladlySettings {
                    token_file: Some("/nonexistent/token".into()),
                    token: None,
                    ..ok()
                },
                "gladly.token_file",
                "cannot read",
            ),
        ];
        for (s, key, fix) in cases {
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(fix), "{err}");
        }
    }

    #[test]
    fn size_and_deadline_errors_name_the_key_and_the_fix() {
        let cases: Vec<(GladlySettings, &str, &str)> = vec![
            (
                GladlySettings {
                    max_row_bytes: 4 << 20,
                    ..ok()
                },
                "gladly.max_row_bytes",
                "message.max.bytes",
            ),
            (
                GladlySettings {
                    max_cell_bytes: 300 * 1024,
                    ..ok()
                },
                "gladly.max_cell_bytes",
                "at most gladly.max_row_bytes",
            ),
            (
                GladlySettings {
                    request_deadline_secs: 60,
                    ..ok()
                },
                "gladly.request_deadline_secs",
                "below gladly.read_timeout_secs",
            ),
        ];
        for (s, key, fix) in cases {
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(fix), "{err}");
        }
        assert_eq!(ok().row_limits(), crate::gladly::RowLimits::default());
    }

    #[test]
    fn simulator_hosts_may_exceed_gladly_limits() {
        let s = GladlySettings {
            host: "http://127.0.0.1:8080".into(),
            requests_per_minute: 600,
            max_concurrent_reports: 2,
            requests_per_second: 500,
            ..ok()
        };
        s.validate().unwrap();
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "  tok-123\n").unwrap();
        let s = GladlySettings {
            token: None,
            token_file: Some(f.path().to_path_buf()),
            ..ok()
        };
        s.validate().unwrap();
        assert_eq!(s.resolve_token().unwrap().expose(), "tok-123");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<GladlySettings>("hots = \"x\"").unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
    }
}
