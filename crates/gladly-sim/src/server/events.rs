//! `GET /api/v1/events`: Basic auth and Gladly's general per-second limit, the events faults,
//! the query checked the way Gladly documents it, then the events of the window as JSON Lines,
//! streamed as they are generated.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, FixedOffset};

use super::conversation::{admit_get, rate_headers};
use super::{err, errors, server_error, streamed, too_many};
use crate::events::{Entities, EventSource, Window};
use crate::wire::{ApiError, EVENTS_CONTENT_TYPE, EVENT_ENTITIES};
use crate::Simulator;

/// How far back `startAt` may go.
const COVERAGE_MS: i64 = 24 * 3_600_000;
/// Body chunk size.
const CHUNK: usize = 64 * 1024;

pub(super) async fn events(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    sim.count_request("events");
    let resp = answer(&sim, &headers, uri.query().unwrap_or("")).await;
    sim.count_response(resp.status().as_u16());
    resp
}

async fn answer(sim: &Arc<Simulator>, headers: &HeaderMap, query: &str) -> Response {
    let remaining = match admit_get(sim, headers) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let decision = sim.faults.take_events();
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
    if let Some(retry_after) = decision.rate_limited {
        let mut resp = too_many(retry_after);
        rate_headers(&mut resp, sim, 0);
        return resp;
    }
    if let Some(status) = decision.error {
        return server_error(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let now_ms = sim.clock.now().timestamp_millis();
    let mut resp = match window(query, now_ms) {
        Ok(window) => {
            if !decision.slow.is_zero() {
                tokio::time::sleep(decision.slow).await;
            }
            jsonl_response(sim, window)
        }
        Err(errs) => errors(StatusCode::BAD_REQUEST, errs),
    };
    rate_headers(&mut resp, sim, remaining);
    resp
}

/// The 200: the window's visible events, one JSON object per line, streamed.
fn jsonl_response(sim: &Arc<Simulator>, window: Window) -> Response {
    let body = EventsBody {
        sim: sim.clone(),
        source: sim.event_source(window),
        cut: sim.faults.take_events_cut(),
        sent: 0,
        finished: false,
        cut_happened: Arc::default(),
    };
    let cut = body.cut_happened.clone();
    let mut resp = Response::new(streamed(body, cut));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(EVENTS_CONTENT_TYPE),
    );
    resp
}

/// An events body generated chunk by chunk, with the cut fault.
struct EventsBody {
    sim: Arc<Simulator>,
    source: EventSource,
    cut: Option<usize>,
    sent: usize,
    finished: bool,
    cut_happened: Arc<AtomicBool>,
}

impl Iterator for EventsBody {
    type Item = Result<Bytes, io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut out = Vec::with_capacity(CHUNK + 4096);
        let mut ends = Vec::new();
        while out.len() < CHUNK {
            let Some(event) = self.source.next() else {
                self.finished = true;
                break;
            };
            out.extend_from_slice(event.line.as_bytes());
            out.push(b'\n');
            ends.push((out.len(), event.id));
        }
        if out.is_empty() {
            return None;
        }
        if let Some(cut) = self.cut {
            let room = cut.saturating_sub(self.sent);
            if out.len() > room {
                // the connection breaks here: the rest never comes
                out.truncate(room);
                self.finished = true;
                self.cut_happened.store(true, Ordering::SeqCst);
            }
        }
        let whole = out.len();
        self.sim.record_served_events(
            ends.into_iter()
                .filter(|(end, _)| *end <= whole)
                .map(|(_, id)| id),
        );
        self.sent += out.len();
        Some(Ok(Bytes::from(out)))
    }
}

/// The query's window as of `now_ms`, or the 400's errors.
pub(crate) fn window(query: &str, now_ms: i64) -> Result<Window, Vec<ApiError>> {
    let (mut start, mut end, mut entities) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        match k.as_str() {
            "startAt" => start = Some(v),
            "endAt" => end = Some(v),
            "entities" => entities.push(v),
            _ => {} // unknown parameters are ignored
        }
    }
    let mut errs = Vec::new();
    let start = match start.as_deref().map(str::trim) {
        None | Some("") => {
            errs.push(err(Some("startAt"), "invalid", "startAt is required"));
            None
        }
        Some(s) => instant("startAt", s).map_err(|e| errs.push(e)).ok(),
    };
    let end = match end.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(s) => instant("endAt", s).map(Some).map_err(|e| errs.push(e)).ok(),
    };
    let mut set = Entities::default();
    if entities.iter().all(|e| e.trim().is_empty()) {
        errs.push(err(
            Some("entities"),
            "invalid",
            format!(
                "entities is required: one or more of {}",
                EVENT_ENTITIES.join(", ")
            ),
        ));
    }
    for e in entities.iter().filter(|e| !e.trim().is_empty()) {
        if !set.add(e) {
            errs.push(err(
                Some("entities"),
                "invalid",
                format!(
                    "{e} is not a valid entity: use one of {}",
                    EVENT_ENTITIES.join(", ")
                ),
            ));
        }
    }
    let (Some(start), Some(end)) = (start, end) else {
        return Err(errs);
    };
    let start_ms = ceil_ms(start);
    let end_ms = end.map_or(now_ms, ceil_ms);
    if start_ms < now_ms - COVERAGE_MS {
        errs.push(err(
            Some("startAt"),
            "invalid",
            "startAt must be within the last 24 hours",
        ));
    }
    let after = match end {
        Some(end) => end > start,
        None => end_ms > start_ms,
    };
    if !after {
        errs.push(err(
            Some("startAt"),
            "invalid",
            "endAt must occur after startAt",
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Window {
        start_ms,
        end_ms,
        now_ms,
        entities: set,
        lagged: true,
    })
}

/// The first whole millisecond at or after `t`: an event at millisecond `x` is at or after
/// `t` exactly when `x >= ceil_ms(t)`.
fn ceil_ms(t: DateTime<FixedOffset>) -> i64 {
    t.timestamp_millis() + i64::from(t.timestamp_subsec_nanos() % 1_000_000 != 0)
}

/// ISO 8601 / RFC 3339 with `Z` or a `±hh:mm` offset, 0 to 9 fraction digits (seconds may be
/// left out: `2024-03-05T12:00Z`).
fn instant(name: &str, s: &str) -> Result<DateTime<FixedOffset>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t);
    }
    let normalized = match s.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => s.to_string(),
    };
    DateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M%:z").map_err(|_| {
        err(
            Some(name),
            "invalid",
            format!(
                "{name} must be an ISO 8601 time with a zone, like 2020-04-13T19:27:34Z or \
                 2020-04-13T19:27:34.120-09:00 (encode a + as %2B)"
            ),
        )
    })
}

/// A query-string component, `+` as a space and `%XX` decoded (a malformed escape is kept as
/// it is).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |x: u8| (x as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
                i += 3;
                continue;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
