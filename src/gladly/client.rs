//! The Gladly HTTP client: Basic auth, two org-wide pacers (report calls, and every other
//! call under Gladly's general per-second limit), one retry policy, streaming report bodies
//! checked before they are trusted (see `answer`), and a deadline on every request.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::sync::OwnedSemaphorePermit;

use super::answer::{
    check_header, first_bytes, is_csv_type, read_prefix, summarize, with_deadline,
};
use super::csv::{RowLimits, RowStream};
use super::error::{ApiErrors, GladlyError};
use super::pacer::Pacer;
use super::request::ReportRequest;
use super::retry::{parse_retry_after, Backoff};
use super::settings::{GladlySettings, Secret};
pub use super::stats::{ClientStats, RetryEvent};

struct Inner {
    /// Follows no redirects: a report answered from another host is not Gladly data, and
    /// GET Conversation's 301 means "moved" (the caller decides).
    http: reqwest::Client,
    base: String,
    host: String,
    email: String,
    token: Secret,
    pacer: Pacer,
    /// Paces everything but reports (Gladly's general per-second limit).
    general: Pacer,
    backoff: Backoff,
    max_attempts: u32,
    /// Longest time one request may take, body included.
    deadline: Duration,
    limits: RowLimits,
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
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
            .read_timeout(Duration::from_secs(settings.read_timeout_secs.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gladly-kafka/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GladlyError::Setup(format!("cannot build the HTTP client: {e}")))?;
        let base = url.as_str().trim_end_matches('/').to_string();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
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
                deadline: Duration::from_secs(settings.request_deadline_secs.max(1)),
                limits: settings.row_limits(),
                stats: Arc::new(ClientStats::default()),
            }),
        })
    }

    /// The client's counters.
    pub fn stats(&self) -> Arc<ClientStats> {
        self.inner.stats.clone()
    }

    /// Requests a report: paced, retried on 429/5xx/timeouts/resets (honouring `Retry-After`)
    /// until a 200 arrives that is a CSV with a header line, then returns the streaming rows.
    /// A work-session answer must also carry that report's key columns; use
    /// [`Client::report_with_columns`] to name them for a metric set.
    ///
    /// Errors inside the body after that (a cut connection, a malformed row) are `Err` items
    /// of the stream, never a short success; see [`RowStream`].
    pub async fn report(&self, req: &ReportRequest) -> Result<RowStream, GladlyError> {
        let key_columns: Vec<Vec<String>> = match req {
            ReportRequest::WorkSessions { .. } => crate::report::BUILT_IN
                .iter()
                .find(|b| b.metric_set.is_none())
                .map(|b| b.required_columns())
                .unwrap_or_default(),
            ReportRequest::MetricSet { .. } | ReportRequest::MetricSetBetween { .. } => Vec::new(),
        };
        self.report_with_columns(req, &key_columns).await
    }

    /// Like [`Client::report`], and the header must have `key_columns` (see
    /// [`crate::report::ReportSpec::required_columns`]): an answer without them is not the
    /// report, and is retried like a 5xx ([`GladlyError::NotAReport`]).
    pub async fn report_with_columns(
        &self,
        req: &ReportRequest,
        key_columns: &[Vec<String>],
    ) -> Result<RowStream, GladlyError> {
        let (what, url, body) = (
            req.describe(),
            format!("{}{}", self.inner.base, req.path()),
            req.body(),
        );
        let post = Post {
            what: &what,
            url: &url,
            body: &body,
            key_columns,
        };
        let post = &post;
        self.retrying(&what, || async move {
            let permit = self.inner.pacer.acquire().await;
            self.attempt(post, permit).await
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails in a way retrying cannot fix, or
    /// `max_attempts` are used up; between attempts waits `Retry-After` when the server sent
    /// one (at most `gladly.max_backoff_secs`), else a jittered exponential backoff. Each
    /// attempt acquires its own pacer slot.
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
            let asked = err.retry_after();
            let retry_after = asked.map(|d| d.min(inner.backoff.max));
            let delay =
                retry_after.unwrap_or_else(|| inner.backoff.delay(n, &mut rand::thread_rng()));
            tracing::warn!(
                request = %what,
                attempt = n,
                delay_ms = delay.as_millis() as u64,
                retry_after_secs = asked.map(|d| d.as_secs_f64()),
                error = %err,
                "retrying Gladly request"
            );
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
            let deadline = self.inner.deadline;
            match tokio::time::timeout(deadline, self.get_once(url, what)).await {
                Ok(answer) => answer,
                Err(_) => Err(GladlyError::Deadline {
                    url: url.to_string(),
                    secs: deadline.as_secs(),
                    rows: 0,
                }),
            }
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
            .http
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
            StatusCode::OK => Ok(GetAnswer::Ok(
                super::get_body::bounded_body(resp, url, transport).await?,
            )),
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

    /// One report request: sent, its status and content type checked, its header line
    /// read, all within the request deadline (which also bounds the rest of the body).
    async fn attempt(
        &self,
        post: &Post<'_>,
        permit: OwnedSemaphorePermit,
    ) -> Result<RowStream, GladlyError> {
        let (url, what) = (post.url, post.what);
        let inner = &self.inner;
        inner.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + inner.deadline;
        let request = inner
            .http
            .post(url)
            .basic_auth(&inner.email, Some(inner.token.expose()))
            .header(ACCEPT, "text/csv, application/json")
            .json(post.body)
            .send();
        let resp = match tokio::time::timeout_at(deadline, request).await {
            Ok(Ok(r)) => r,
            Ok(Err(source)) => {
                inner.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Err(GladlyError::Transport {
                    url: url.to_string(),
                    source,
                });
            }
            Err(_) => {
                inner.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Err(GladlyError::Deadline {
                    url: url.to_string(),
                    secs: inner.deadline.as_secs(),
                    rows: 0,
                });
            }
        };
        let status = resp.status();
        inner.stats.count_response(status);
        inner.stats.observe_latency(what, started.elapsed());
        if status == StatusCode::OK {
            return self.rows_of(resp, post, deadline, permit).await;
        }
        drop(permit);
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)");
            return Err(GladlyError::Redirected {
                status: status.as_u16(),
                url: url.to_string(),
                location: super::error::cut(location, 200).into_owned(),
            });
        }
        if status.is_success() {
            let content_type = content_type(&resp);
            let head = read_prefix(resp).await;
            return Err(GladlyError::NotAReport {
                what: what.to_string(),
                status: status.as_u16(),
                reason: format!("status {status} where 200 was expected"),
                first_bytes: first_bytes(&head),
                content_type,
            });
        }
        Err(self.error_for(resp, url, what).await)
    }

    /// The rows of a 200: refused unless its content type can be CSV and its header line,
    /// read under the deadline (which keeps bounding the body), has the key columns.
    async fn rows_of(
        &self,
        resp: reqwest::Response,
        post: &Post<'_>,
        deadline: tokio::time::Instant,
        permit: OwnedSemaphorePermit,
    ) -> Result<RowStream, GladlyError> {
        let (url, what) = (post.url, post.what);
        let inner = &self.inner;
        let content_type = content_type(&resp);
        if !is_csv_type(&content_type) {
            drop(permit);
            let head = tokio::time::timeout_at(deadline, read_prefix(resp))
                .await
                .unwrap_or_default();
            return Err(GladlyError::NotAReport {
                what: what.to_string(),
                status: 200,
                reason: format!(
                    "Content-Type {content_type:?} is not CSV; the body is {}",
                    summarize(&content_type, &head)
                ),
                first_bytes: first_bytes(&head),
                content_type,
            });
        }
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
        let chunks = with_deadline(chunks, deadline, url.to_string(), inner.deadline);
        let not_the_report = |reason: String, head: &[u8]| GladlyError::NotAReport {
            what: what.to_string(),
            status: 200,
            reason,
            content_type: content_type.clone(),
            first_bytes: first_bytes(head),
        };
        let rows = RowStream::with_limits(chunks, Some(permit), inner.limits)
            .await
            .map_err(|e| match e {
                GladlyError::Framing { line, detail } => not_the_report(
                    format!("its header line (line {line}) cannot be read: {detail}"),
                    &[],
                ),
                other => other,
            })
            .inspect_err(|_| {
                inner.stats.body_errors.fetch_add(1, Ordering::Relaxed);
            })?;
        match check_header(&rows, post.key_columns) {
            None => Ok(rows),
            Some(reason) => Err(not_the_report(reason, rows.first_bytes())),
        }
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
        let content_type = content_type(&resp);
        let raw = tokio::time::timeout(inner.deadline, read_prefix(resp))
            .await
            .unwrap_or_default();
        let text = summarize(&content_type, &raw);
        match status {
            StatusCode::BAD_REQUEST => GladlyError::BadRequest {
                what: what.to_string(),
                errors: serde_json::from_slice::<ApiErrors>(&raw)
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

/// The response's `Content-Type`, or empty.
fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// One report request, as every attempt sends it.
struct Post<'a> {
    /// `work-session-events` or the metric set.
    what: &'a str,
    url: &'a str,
    body: &'a serde_json::Value,
    /// The columns the answer's header must have.
    key_columns: &'a [Vec<String>],
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
