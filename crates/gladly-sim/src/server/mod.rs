//! The HTTP side of the simulator: routes, Basic auth, Gladly's error body and rate-limit
//! answers. The report endpoints are in [`report`] (validation in [`validate`], bodies in
//! [`csv_body`]), GET Conversation in [`conversation`], the Events API in [`events`].

mod conversation;
mod csv_body;
mod events;
mod lists;
mod report;
mod validate;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::StreamExt;

use crate::faults::RetryAfter;
use crate::wire::{
    ApiError, ApiErrors, CONVERSATION_ROUTE, EVENTS_PATH, REPORTS_PATH, WORK_SESSIONS_PATH,
};
use crate::{SimConfig, Simulator};

#[cfg(test)]
pub(crate) use events::window as events_window;
pub(crate) use validate::plan;

/// A running simulator server. Stops when dropped or on [`SimServer::shutdown`].
#[derive(Debug)]
pub struct SimServer {
    /// Base URL, e.g. `http://127.0.0.1:41234` (use it as `gladly.host`).
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimServer {
    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

pub(crate) async fn serve(sim: Arc<Simulator>, addr: SocketAddr) -> io::Result<SimServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route(WORK_SESSIONS_PATH, post(report::work_sessions))
        .route(REPORTS_PATH, post(report::reports))
        .route(CONVERSATION_ROUTE, get(conversation::conversation))
        .route("/api/v1/agents", get(lists::agents))
        .route("/api/v1/inboxes", get(lists::inboxes))
        .route("/api/v1/teams", get(lists::teams))
        .route("/api/v1/topics", get(lists::topics))
        .route(EVENTS_PATH, get(events::events))
        .fallback(not_found)
        .with_state(sim);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "simulator server stopped");
        }
    });
    Ok(SimServer {
        url: format!("http://{addr}"),
        addr,
        stop: Some(tx),
        task,
    })
}

/// Gladly's error body with `status`.
fn errors(status: StatusCode, errs: Vec<ApiError>) -> Response {
    (status, axum::Json(ApiErrors { errors: errs })).into_response()
}

/// One error entry.
fn err(attr: Option<&str>, code: &str, detail: impl Into<String>) -> ApiError {
    ApiError {
        attr: attr.map(str::to_string),
        code: code.into(),
        detail: detail.into(),
    }
}

async fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        vec![err(None, "not_found", "Resource not found")],
    )
}

/// The 401 of a request without valid Basic auth.
fn unauthorized() -> Response {
    errors(
        StatusCode::UNAUTHORIZED,
        vec![err(None, "unauthorized", "Authentication not provided")],
    )
}

/// True when `headers` carry Basic auth with the configured email and token.
fn authorized(cfg: &SimConfig, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("{}:{}", cfg.email, cfg.token).as_bytes()
}

/// A 429 ("Rate limit reached") with `Retry-After` in the given form.
fn too_many(retry_after: RetryAfter) -> Response {
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, "Rate limit reached").into_response();
    let value = match retry_after {
        RetryAfter::Absent => None,
        RetryAfter::Seconds(s) => Some(s.to_string()),
        RetryAfter::HttpDate(d) => Some(httpdate::fmt_http_date(std::time::SystemTime::now() + d)),
    };
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The `Retry-After` of a limit's 429: absent when the config says so or the wait is
/// unknown, else the wait in whole seconds (at least 1).
fn limit_retry_after(configured: RetryAfter, wait: Option<std::time::Duration>) -> RetryAfter {
    match (configured, wait) {
        (RetryAfter::Absent, _) | (_, None) => RetryAfter::Absent,
        (_, Some(w)) => RetryAfter::Seconds(w.as_secs_f64().ceil().max(1.0) as u64),
    }
}

/// A body streaming `chunks` as they are generated. When `cut` is set by then, the connection
/// breaks after them (a moment later, so the data before the cut goes out first and the
/// answer looks like a broken body rather than a failed request).
fn streamed<I>(chunks: I, cut: Arc<AtomicBool>) -> Body
where
    I: Iterator<Item = Result<Bytes, io::Error>> + Send + 'static,
{
    let tail = futures::stream::once(async move {
        if !cut.load(Ordering::SeqCst) {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Some(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated connection cut",
        )))
    })
    .filter_map(futures::future::ready);
    Body::from_stream(futures::stream::iter(chunks).chain(tail))
}

/// A simulated 5xx with a plain-text body.
fn server_error(status: u16, fallback: StatusCode) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(fallback);
    (status, "simulated server error").into_response()
}
