//! What the client counts: requests, answers by status, retries and their waits, latency.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;

use crate::observe::{ApiSnapshot, ApiSource, Histogram, REQUEST_BUCKETS};

/// How many recent retries [`ClientStats::recent_retries`] keeps.
const RECENT_RETRIES: usize = 64;
/// One retry the client made: why, and how long it waited.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryEvent {
    /// Which request, e.g. `work-session-events`.
    pub what: String,
    /// The attempt that failed (1 = the first try).
    pub attempt: u32,
    /// The backoff cap for this retry (doubles per retry).
    pub cap: Duration,
    /// The wait actually taken: `Retry-After` when the server sent one, else jitter below `cap`.
    pub delay: Duration,
    /// The `Retry-After` the server asked for.
    pub retry_after: Option<Duration>,
    /// The error that caused the retry.
    pub reason: String,
}

/// Counters of a [`super::Client`], shared by its clones (exported as metrics by the service).
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Report requests sent (each attempt counts).
    pub requests: AtomicU64,
    /// Other requests (GET Conversation) sent (each attempt counts).
    pub general_requests: AtomicU64,
    /// Retries made.
    pub retries: AtomicU64,
    /// 429 answers.
    pub rate_limited: AtomicU64,
    /// 5xx answers.
    pub server_errors: AtomicU64,
    /// Requests that got no response (connect errors, resets, read timeouts).
    pub transport_errors: AtomicU64,
    /// Bodies that broke off while the header was read.
    pub body_errors: AtomicU64,
    /// Milliseconds spent waiting before retries.
    pub retry_wait_ms: AtomicU64,
    responses: Mutex<BTreeMap<u16, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    recent: Mutex<VecDeque<RetryEvent>>,
}

impl ClientStats {
    /// Responses received, by HTTP status.
    pub fn responses(&self) -> BTreeMap<u16, u64> {
        self.responses.lock().expect("stats lock").clone()
    }

    /// Time from sending a request until its response headers arrived (Gladly generates a
    /// report before it answers), by request (`work-session-events` or the metric set).
    pub fn latency(&self) -> BTreeMap<String, Histogram> {
        self.latency.lock().expect("stats lock").clone()
    }

    /// The most recent retries, oldest first.
    pub fn recent_retries(&self) -> Vec<RetryEvent> {
        self.recent
            .lock()
            .expect("stats lock")
            .iter()
            .cloned()
            .collect()
    }

    pub(super) fn count_response(&self, status: StatusCode) {
        *self
            .responses
            .lock()
            .expect("stats lock")
            .entry(status.as_u16())
            .or_default() += 1;
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        } else if status.is_server_error() {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn observe_latency(&self, what: &str, took: Duration) {
        self.latency
            .lock()
            .expect("stats lock")
            .entry(what.to_string())
            .or_insert_with(|| Histogram::new(REQUEST_BUCKETS))
            .observe(took.as_secs_f64());
    }

    pub(super) fn record_retry(&self, event: RetryEvent) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.retry_wait_ms
            .fetch_add(event.delay.as_millis() as u64, Ordering::Relaxed);
        let mut recent = self.recent.lock().expect("stats lock");
        if recent.len() == RECENT_RETRIES {
            recent.pop_front();
        }
        recent.push_back(event);
    }
}

impl ApiSource for ClientStats {
    fn api_snapshot(&self) -> ApiSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ApiSnapshot {
            requests: load(&self.requests),
            get_requests: load(&self.general_requests),
            retries: load(&self.retries),
            rate_limited: load(&self.rate_limited),
            transport_errors: load(&self.transport_errors),
            retry_wait_secs: load(&self.retry_wait_ms) as f64 / 1000.0,
            responses: self.responses(),
            latency: self.latency(),
        }
    }
}
