//! The HTTP side of the simulator: routes, auth, limits, validation, streamed CSV bodies.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, FixedOffset, NaiveDate};
use chrono_tz::Tz;
use futures::StreamExt;
use serde_json::Value;

use super::conversations::ConversationTruth;
use super::faults::{FaultState, RetryAfter, BAD_CELL, EXTRA_COLUMN};
use super::model::mix;
use super::reports::{Level, Plan, RowSource};
use super::{InFlight, SimConfig, Simulator};
use crate::wire::{ApiError, ApiErrors, CONVERSATION_ROUTE, REPORTS_PATH, WORK_SESSIONS_PATH};

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

pub(super) async fn serve(sim: Arc<Simulator>, addr: SocketAddr) -> io::Result<SimServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route(WORK_SESSIONS_PATH, post(work_sessions))
        .route(REPORTS_PATH, post(reports))
        .route(CONVERSATION_ROUTE, get(conversation))
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

fn errors(status: StatusCode, errs: Vec<ApiError>) -> Response {
    (status, axum::Json(ApiErrors { errors: errs })).into_response()
}

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

async fn work_sessions(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    report(
        sim,
        "work-session-events",
        WORK_SESSIONS_PATH,
        headers,
        body,
    )
    .await
}

async fn reports(State(sim): State<Arc<Simulator>>, headers: HeaderMap, body: Bytes) -> Response {
    report(sim, "reports", REPORTS_PATH, headers, body).await
}

async fn report(
    sim: Arc<Simulator>,
    endpoint: &str,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.count_request(endpoint);
    let resp = answer(&sim, path, &headers, &body).await;
    sim.count_response(resp.status().as_u16());
    resp
}

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

async fn answer(sim: &Arc<Simulator>, path: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    if !authorized(&sim.cfg, headers) {
        return errors(
            StatusCode::UNAUTHORIZED,
            vec![err(None, "unauthorized", "Authentication not provided")],
        );
    }
    let decision = sim.faults.take(sim.draw());
    if decision.forbidden {
        return errors(
            StatusCode::FORBIDDEN,
            vec![err(
                None,
                "forbidden",
                "User does not have permission to access resource",
            )],
        );
    }
    if let Some(ra) = decision.rate_limited {
        return too_many(ra);
    }
    if let Some(status) = decision.error {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, "simulated server error").into_response();
    }
    let guard = match sim.admit() {
        Ok(g) => g,
        Err(wait) => {
            let ra = match (sim.cfg.limits.retry_after, wait) {
                (RetryAfter::Absent, _) | (_, None) => RetryAfter::Absent,
                (_, Some(w)) => RetryAfter::Seconds(w.as_secs_f64().ceil().max(1.0) as u64),
            };
            return too_many(ra);
        }
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return errors(
                StatusCode::BAD_REQUEST,
                vec![err(
                    None,
                    "invalid",
                    format!("request body is not JSON: {e}"),
                )],
            )
        }
    };
    let plan = match plan(&sim.cfg, path, &value) {
        Ok(p) => p,
        Err(errs) => return errors(StatusCode::BAD_REQUEST, errs),
    };
    if !decision.slow.is_zero() {
        tokio::time::sleep(decision.slow).await;
    }
    let as_of = sim.as_of().timestamp_millis();
    let source = plan.rows(&sim.model, as_of);
    let report = match plan {
        Plan::WorkSessions { .. } => "work_sessions",
        Plan::Contacts { .. } => "contacts",
        Plan::AgentSummary { .. } => "agent_summary",
    };
    let cap = decision.format.row_cap.or(sim.cfg.row_cap);
    let body = CsvBody::new(
        sim.clone(),
        report,
        plan.columns(),
        source,
        decision.format,
        cap,
        sim.faults.take_cut(),
        guard,
    );
    // a cut happens after the data before it has gone out (else it would look like a
    // failed request rather than a broken body)
    let cut = body.cut_happened.clone();
    let tail = futures::stream::once(async move {
        if !cut.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Some(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated connection cut",
        )))
    })
    .filter_map(futures::future::ready);
    let stream = futures::stream::iter(body).chain(tail);
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename={}",
        plan_file_name(&sim.cfg, path, &value)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

fn plan_file_name(cfg: &SimConfig, path: &str, value: &Value) -> String {
    plan(cfg, path, value)
        .map(|p| p.file_name())
        .unwrap_or_default()
}

fn field<'a>(body: &'a Value, name: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(
            Some(name),
            "invalid",
            format!("{name} must be a string"),
        )),
    }
}

fn required<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    field(body, name)?.ok_or_else(|| err(Some(name), "blank", format!("{name} can't be blank")))
}

fn minute_instant(name: &str, s: &str) -> Result<DateTime<FixedOffset>, ApiError> {
    let normalized = match s.strip_suffix('Z') {
        Some(rest) => format!("{rest}+00:00"),
        None => s.to_string(),
    };
    DateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M%:z").map_err(|_| {
        err(
            Some(name),
            "invalid",
            format!("{name} must be an ISO 8601 time at minute precision, like 2020-04-13T19:27Z or 2020-04-14T19:27-09:00"),
        )
    })
}

fn date(name: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        err(
            Some(name),
            "invalid",
            format!("{name} must be a date like 2024-03-14"),
        )
    })
}

/// Validates a request body for `path` the way Gladly does; `Err` is the 400 body.
pub(super) fn plan(cfg: &SimConfig, path: &str, body: &Value) -> Result<Plan, Vec<ApiError>> {
    if !body.is_object() {
        return Err(vec![err(
            None,
            "invalid",
            "request body must be a JSON object",
        )]);
    }
    if path == WORK_SESSIONS_PATH {
        let start = required(body, "startAtTime").and_then(|s| minute_instant("startAtTime", s));
        let end = required(body, "endAtTime").and_then(|s| minute_instant("endAtTime", s));
        let (start, end) = match (start, end) {
            (Ok(s), Ok(e)) => (s, e),
            (s, e) => return Err([s.err(), e.err()].into_iter().flatten().collect()),
        };
        if end <= start {
            return Err(vec![err(
                Some("startAtTime"),
                "invalid",
                "endAtTime must occur after startAtTime",
            )]);
        }
        return Ok(Plan::WorkSessions {
            start_ms: start.timestamp_millis(),
            end_ms: end.timestamp_millis(),
        });
    }
    let metric = required(body, "metricSet").map_err(|e| vec![e])?;
    let is_contacts = metric == cfg.contact_export_metric_set;
    let is_agents = metric == cfg.agent_summary_metric_set;
    if !is_contacts && !is_agents {
        return Err(vec![err(
            Some("metricSet"),
            "invalid",
            format!("{metric} is not a valid metricSet"),
        )]);
    }
    if body.get("startAtTime").is_some() || body.get("endAtTime").is_some() {
        return Err(vec![err(
            Some("startAtTime"),
            "invalid",
            "the simulator supports startAt/endAt dates only",
        )]);
    }
    let start = required(body, "startAt").and_then(|s| date("startAt", s));
    let end = required(body, "endAt").and_then(|s| date("endAt", s));
    let (start, end) = match (start, end) {
        (Ok(s), Ok(e)) => (s, e),
        (s, e) => return Err([s.err(), e.err()].into_iter().flatten().collect()),
    };
    if end < start {
        return Err(vec![err(
            Some("endAt"),
            "invalid",
            "endAt must not be before startAt",
        )]);
    }
    let tz_name = field(body, "timezone")
        .map_err(|e| vec![e])?
        .unwrap_or("UTC");
    let tz: Tz = tz_name.parse().map_err(|_| {
        vec![err(
            Some("timezone"),
            "invalid",
            format!("{tz_name} is not a valid timezone"),
        )]
    })?;
    if let Some(filters) = body.get("filters") {
        if !filters.is_object() {
            return Err(vec![err(
                Some("filters"),
                "invalid",
                "filters must be an object",
            )]);
        }
    }
    if is_contacts {
        return Ok(Plan::Contacts { start, end, tz });
    }
    let level_name = field(body, "aggregationLevel")
        .map_err(|e| vec![e])?
        .unwrap_or("daily");
    let level = Level::parse(level_name).ok_or_else(|| {
        vec![err(
            Some("aggregationLevel"),
            "invalid",
            format!("{level_name} is not a valid aggregationLevel: use halfHourly, daily, weekly, monthly or quarterly"),
        )]
    })?;
    if level == Level::HalfHourly && (end - start).num_days() > 31 {
        return Err(vec![err(
            Some("aggregationLevel"),
            "invalid",
            "halfHourly is not available for more than 1 month",
        )]);
    }
    Ok(Plan::AgentSummary {
        start,
        end,
        tz,
        level,
    })
}

async fn conversation(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    sim.count_request("conversations");
    let resp = conversation_answer(&sim, &headers, &id);
    sim.count_response(resp.status().as_u16());
    resp
}

fn conversation_answer(sim: &Simulator, headers: &HeaderMap, id: &str) -> Response {
    if !authorized(&sim.cfg, headers) {
        return errors(
            StatusCode::UNAUTHORIZED,
            vec![err(None, "unauthorized", "Authentication not provided")],
        );
    }
    let limit = sim.cfg.limits.per_second.to_string();
    let remaining = match sim.admit_get() {
        Ok(r) => r,
        Err(wait) => {
            let ra = match sim.cfg.limits.retry_after {
                RetryAfter::Absent => RetryAfter::Absent,
                _ => RetryAfter::Seconds(wait.as_secs_f64().ceil().max(1.0) as u64),
            };
            let mut resp = too_many(ra);
            rate_headers(&mut resp, &limit, 0);
            return resp;
        }
    };
    if let Some(status) = sim.faults.take_conversation(id) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, "simulated server error").into_response();
    }
    let mut resp = match sim.conversation(id) {
        ConversationTruth::Found(v) => axum::Json(v).into_response(),
        ConversationTruth::Deleted => errors(
            StatusCode::NOT_FOUND,
            vec![err(
                None,
                "not_found",
                "A conversation with the given id does not exist",
            )],
        ),
        ConversationTruth::Moved(to) => {
            sim.stats.lock().expect("stats lock").conversation_moves += 1;
            let mut resp = errors(
                StatusCode::MOVED_PERMANENTLY,
                vec![err(
                    None,
                    "moved",
                    format!("the conversation was merged into {to}"),
                )],
            );
            if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/conversations/{to}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
    };
    rate_headers(&mut resp, &limit, remaining);
    resp
}

/// Gladly's documented per-second rate-limit headers.
fn rate_headers(resp: &mut Response, limit: &str, remaining: u32) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(limit) {
        h.insert("ratelimit-limit-second", v);
    }
    h.insert("ratelimit-remaining-second", HeaderValue::from(remaining));
}

/// Index in the output order standing for the extra column.
const EXTRA: usize = usize::MAX;
/// Body chunk size.
const CHUNK: usize = 64 * 1024;

/// A CSV body generated chunk by chunk, applying the format faults.
struct CsvBody {
    sim: Arc<Simulator>,
    report: &'static str,
    columns: &'static [&'static str],
    source: Box<dyn RowSource>,
    cells: Vec<String>,
    order: Vec<usize>,
    faults: FaultState,
    cap: Option<usize>,
    rows: usize,
    cut: Option<usize>,
    sent: usize,
    started: bool,
    finished: bool,
    cut_happened: Arc<std::sync::atomic::AtomicBool>,
    _guard: InFlight,
}

impl CsvBody {
    #[allow(clippy::too_many_arguments)]
    fn new(
        sim: Arc<Simulator>,
        report: &'static str,
        columns: &'static [&'static str],
        source: Box<dyn RowSource>,
        faults: FaultState,
        cap: Option<usize>,
        cut: Option<usize>,
        guard: InFlight,
    ) -> Self {
        let mut order: Vec<usize> = (0..columns.len()).collect();
        if faults.reorder_columns {
            order.reverse();
        }
        if faults.extra_column {
            order.insert(1.min(order.len()), EXTRA);
        }
        CsvBody {
            sim,
            report,
            columns,
            source,
            cells: vec![String::new(); columns.len()],
            order,
            faults,
            cap,
            rows: 0,
            cut,
            sent: 0,
            started: false,
            finished: false,
            cut_happened: Arc::default(),
            _guard: guard,
        }
    }

    fn write_cell(&self, out: &mut Vec<u8>, cell: &str) {
        let quote = self.faults.quote_all
            || cell
                .bytes()
                .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
        if quote {
            out.push(b'"');
            for b in cell.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(cell.as_bytes());
        }
    }

    fn write_line(&self, out: &mut Vec<u8>, cell_of: impl Fn(usize) -> String) {
        for (i, &idx) in self.order.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let cell = cell_of(idx);
            self.write_cell(out, &cell);
        }
        out.extend_from_slice(b"\r\n");
    }

    fn fill(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            if self.faults.bom {
                out.extend_from_slice("\u{feff}".as_bytes());
            }
            let columns = self.columns;
            self.write_line(out, |i| {
                if i == EXTRA {
                    EXTRA_COLUMN.to_string()
                } else {
                    columns[i].to_string()
                }
            });
        }
        let mut served = 0;
        while out.len() < CHUNK {
            if self.cap.is_some_and(|cap| self.rows >= cap) {
                self.finished = true;
                break;
            }
            self.cells.iter_mut().for_each(String::clear);
            let Some((identity, bad_idx)) = self.source.next_row(&mut self.cells) else {
                self.finished = true;
                break;
            };
            self.rows += 1;
            served += 1;
            if self.faults.bad_cell_rate > 0.0 {
                let draw = (mix(identity ^ self.sim.cfg.seed ^ 0xBAD0_CE11) >> 11) as f64
                    / (1u64 << 53) as f64;
                if draw < self.faults.bad_cell_rate {
                    let key = format!("{}:{}", self.report, self.source.key(&self.cells));
                    self.sim.record_bad(key);
                    self.cells[bad_idx] = BAD_CELL.to_string();
                }
            }
            let rows = self.rows;
            if self.faults.extra_column {
                let cells = &self.cells;
                let line = {
                    let mut l = Vec::new();
                    self.write_line(&mut l, |i| {
                        if i == EXTRA {
                            format!("note {rows}, \"kept\"\nsecond line")
                        } else {
                            cells[i].clone()
                        }
                    });
                    l
                };
                out.extend_from_slice(&line);
            } else {
                for (i, &idx) in self.order.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_cell(out, &self.cells[idx]);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        self.sim.count_rows(served);
    }
}

impl Iterator for CsvBody {
    type Item = Result<Bytes, io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut out = Vec::with_capacity(CHUNK + 4096);
        self.fill(&mut out);
        if let Some(cut) = self.cut {
            let room = cut.saturating_sub(self.sent);
            if out.len() > room {
                // the connection breaks here: the rest never comes
                out.truncate(room);
                self.finished = true;
                self.cut_happened
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        self.sent += out.len();
        Some(Ok(Bytes::from(out)))
    }
}
