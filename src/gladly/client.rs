//! The Gladly HTTP client: Basic auth, two org-wide pacers (report calls, and every other
//! call under Gladly's general per-second limit), one retry policy, streaming report bodies.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use reqwest::header::{ACCEPT, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::sync::OwnedSemaphorePermit;

use super::csv_stream::RowStream;
use super::error::{ApiErrors, GladlyError};
use super::pacer::Pacer;
use super::retry::{parse_retry_after, Backoff};
use super::settings::{GladlySettings, Secret};
use super::ReportRequest;
use crate::observe::{ApiSnapshot, ApiSource, Histogram, REQUEST_BUCKETS};

/// How many recent retries [`ClientStats::recent_retries`] keeps.
const RECENT_RETRIES: usize = 64;
/// Longest error body kept for messages.
const ERROR_BODY_LIMIT: usize = 2000;

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

/// Counters of a [`Client`], shared by its clones (exported as metrics by the service).
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

    fn count_response(&self, status: StatusCode) {
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

    fn observe_latency(&self, what: &str, took: Duration) {
        self.latency
            .lock()
            .expect("stats lock")
            .entry(what.to_string())
            .or_insert_with(|| Histogram::new(REQUEST_BUCKETS))
            .observe(took.as_secs_f64());
    }

    fn record_retry(&self, event: RetryEvent) {
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

struct Inner {
    http: reqwest::Client,
    /// For GETs: redirects are not followed (Gladly's 301 means "moved"; the caller decides).
    http_get: reqwest::Client,
    base: String,
    host: String,
    email: String,
    token: Secret,
    pacer: Pacer,
    /// Paces everything but reports (Gladly's general per-second limit).
    general: Pacer,
    backoff: Backoff,
    max_attempts: u32,
    stats: Arc<ClientStats>,
}

/// A Gladly API client. Cheap to clone; clones share the pacers (the org-wide budgets) and
/// one set of [`ClientStats`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.inner.host)
            .field("email", &self.inner.email)
            .field("token", &self.inner.token)
            .finish()
    }
}

impl Client {
    /// A client for `settings` (the token is read now, from `token` or `token_file`).
    pub fn new(settings: &GladlySettings) -> Result<Client, GladlyError> {
        let url = settings.parsed_host().map_err(GladlyError::Setup)?;
        let token = settings.resolve_token().map_err(GladlyError::Setup)?;
        if settings.max_attempts == 0 {
            return Err(GladlyError::Setup(
                "gladly.max_attempts must be at least 1".into(),
            ));
        }
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
                .read_timeout(Duration::from_secs(settings.read_timeout_secs.max(1)))
                .user_agent(concat!("gladly-kafka/", env!("CARGO_PKG_VERSION")))
        };
        let built = |b: reqwest::ClientBuilder| {
            b.build()
                .map_err(|e| GladlyError::Setup(format!("cannot build the HTTP client: {e}")))
        };
        let http = built(builder())?;
        let http_get = built(builder().redirect(reqwest::redirect::Policy::none()))?;
        let base = url.as_str().trim_end_matches('/').to_string();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                http_get,
                host: base.clone(),
                base,
                email: settings.email.clone(),
                token,
                pacer: Pacer::new(
                    settings.requests_per_minute,
                    settings.max_concurrent_reports,
                ),
                // one second of requests in flight hides up to a second of latency
                general: Pacer::per_second(
                    settings.requests_per_second,
                    settings.requests_per_second,
                ),
                backoff: Backoff {
                    initial: Duration::from_millis(settings.initial_backoff_ms.max(1)),
                    max: Duration::from_secs(settings.max_backoff_secs.max(1)),
                },
                max_attempts: settings.max_attempts,
                stats: Arc::new(ClientStats::default()),
            }),
        })
    }

    /// The client's counters.
    pub fn stats(&self) -> Arc<ClientStats> {
        self.inner.stats.clone()
    }

    /// Requests a report: paced, retried on 429/5xx/timeouts/resets (honouring `Retry-After`)
    /// until a 200 arrives and its header line is read, then returns the streaming rows.
    ///
    /// Errors inside the body after that (a cut connection, a malformed row) are `Err` items
    /// of the stream, never a short success; see [`RowStream`].
    pub async fn report(&self, req: &ReportRequest) -> Result<RowStream, GladlyError> {
        let what = req.describe();
        let url = format!("{}{}", self.inner.base, req.path());
        let body = req.body();
        let (what, url, body) = (&what, &url, &body);
        self.retrying(what, || async move {
            let permit = self.inner.pacer.acquire().await;
            self.attempt(url, what, body, permit).await
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails in a way retrying cannot fix, or
    /// `max_attempts` are used up; between attempts waits `Retry-After` when the server sent
    /// one, else a jittered exponential backoff. Each attempt acquires its own pacer slot.
    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, GladlyError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, GladlyError>>,
    {
        let inner = &self.inner;
        let mut n = 0;
        loop {
            n += 1;
            let err = match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !err.is_retryable() {
                return Err(err);
            }
            if n >= inner.max_attempts {
                return Err(GladlyError::RetriesExhausted {
                    attempts: n,
                    last: Box::new(err),
                });
            }
            let cap = inner.backoff.cap(n);
            let retry_after = err.retry_after();
            let delay =
                retry_after.unwrap_or_else(|| inner.backoff.delay(n, &mut rand::thread_rng()));
            tracing::warn!(request = %what, attempt = n, delay_ms = delay.as_millis() as u64, error = %err, "retrying Gladly request");
            inner.stats.record_retry(RetryEvent {
                what: what.to_string(),
                attempt: n,
                cap,
                delay,
                retry_after,
                reason: err.to_string(),
            });
            tokio::time::sleep(delay).await;
        }
    }

    /// A GET of `url` under the general pacer and the retry policy. 404 and 301/308 are
    /// answers, not errors: the caller knows what they mean for its resource.
    pub(super) async fn get(
        &self,
        what: &str,
        url: &reqwest::Url,
    ) -> Result<GetAnswer, GladlyError> {
        self.retrying(what, || async move {
            let _permit = self.inner.general.acquire().await;
            self.get_once(url, what).await
        })
        .await
    }

    async fn get_once(&self, url: &reqwest::Url, what: &str) -> Result<GetAnswer, GladlyError> {
        let inner = &self.inner;
        inner.stats.general_requests.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let transport = |source| {
            inner.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
            GladlyError::Transport {
                url: url.to_string(),
                source,
            }
        };
        let resp = inner
            .http_get
            .get(url.clone())
            .basic_auth(&inner.email, Some(inner.token.expose()))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        inner.stats.count_response(status);
        inner.stats.observe_latency(what, started.elapsed());
        match status {
            StatusCode::OK => Ok(GetAnswer::Ok(resp.bytes().await.map_err(transport)?)),
            StatusCode::NOT_FOUND => Ok(GetAnswer::NotFound),
            StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT => {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok(GetAnswer::Moved { location })
            }
            _ => Err(self.error_for(resp, url.as_str(), what).await),
        }
    }

    async fn attempt(
        &self,
        url: &str,
        what: &str,
        body: &serde_json::Value,
        permit: OwnedSemaphorePermit,
    ) -> Result<RowStream, GladlyError> {
        let inner = &self.inner;
        inner.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let sent = inner
            .http
            .post(url)
            .basic_auth(&inner.email, Some(inner.token.expose()))
            .header(ACCEPT, "text/csv, application/json")
            .json(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(source) => {
                inner.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Err(GladlyError::Transport {
                    url: url.to_string(),
                    source,
                });
            }
        };
        let status = resp.status();
        inner.stats.count_response(status);
        inner.stats.observe_latency(what, started.elapsed());
        if status.is_success() {
            let body_url = url.to_string();
            let chunks = resp
                .bytes_stream()
                .map(move |r| {
                    r.map_err(|source| GladlyError::Body {
                        url: body_url.clone(),
                        rows: 0,
                        source,
                    })
                })
                .boxed();
            return RowStream::from_body(chunks, Some(permit))
                .await
                .inspect_err(|_| {
                    inner.stats.body_errors.fetch_add(1, Ordering::Relaxed);
                });
        }
        drop(permit);
        Err(self.error_for(resp, url, what).await)
    }

    /// The error a non-success response stands for (its body read for the message).
    async fn error_for(&self, resp: reqwest::Response, url: &str, what: &str) -> GladlyError {
        let inner = &self.inner;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let text = match resp.bytes().await {
            Ok(b) => String::from_utf8_lossy(&b[..b.len().min(ERROR_BODY_LIMIT)]).into_owned(),
            Err(_) => String::new(),
        };
        match status {
            StatusCode::BAD_REQUEST => GladlyError::BadRequest {
                what: what.to_string(),
                errors: serde_json::from_str::<ApiErrors>(&text)
                    .map(|e| e.errors)
                    .unwrap_or_default(),
                body: text,
            },
            StatusCode::UNAUTHORIZED => GladlyError::Unauthorized {
                host: inner.host.clone(),
                email: inner.email.clone(),
            },
            StatusCode::FORBIDDEN => GladlyError::Forbidden {
                host: inner.host.clone(),
                email: inner.email.clone(),
            },
            StatusCode::NOT_FOUND => GladlyError::NotFound {
                url: url.to_string(),
            },
            StatusCode::TOO_MANY_REQUESTS => GladlyError::RateLimited { retry_after },
            s if s.is_server_error() => GladlyError::Server {
                status: s.as_u16(),
                url: url.to_string(),
                body: text,
                retry_after,
            },
            s => GladlyError::Status {
                status: s.as_u16(),
                url: url.to_string(),
                body: text,
            },
        }
    }

    /// The org's base URL.
    pub(super) fn base(&self) -> &str {
        &self.inner.base
    }
}

/// What a GET answered, once retries are done.
#[derive(Debug)]
pub(super) enum GetAnswer {
    /// 200 with this body.
    Ok(bytes::Bytes),
    /// 404.
    NotFound,
    /// 301 or 308, with the `Location` header if there was one.
    Moved {
        /// Where the resource went.
        location: Option<String>,
    },
}
