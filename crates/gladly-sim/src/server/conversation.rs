//! `GET /api/v1/conversations/{id}` under Gladly's general per-second limit, with its
//! documented rate-limit headers.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{authorized, err, errors, limit_retry_after, server_error, too_many, unauthorized};
use crate::conversations::ConversationTruth;
use crate::Simulator;

pub(super) async fn conversation(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    sim.count_request("conversations");
    let resp = answer(&sim, &headers, &id);
    sim.count_response(resp.status().as_u16());
    resp
}

fn answer(sim: &Simulator, headers: &HeaderMap, id: &str) -> Response {
    if !authorized(&sim.cfg, headers) {
        return unauthorized();
    }
    let limit = sim.cfg.limits.per_second.to_string();
    let remaining = match sim.admit_get() {
        Ok(r) => r,
        Err(wait) => {
            let mut resp = too_many(limit_retry_after(sim.cfg.limits.retry_after, Some(wait)));
            rate_headers(&mut resp, &limit, 0);
            return resp;
        }
    };
    if let Some(status) = sim.faults.take_conversation(id) {
        return server_error(status, StatusCode::SERVICE_UNAVAILABLE);
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
        ConversationTruth::Moved(to) => moved(sim, &to),
    };
    rate_headers(&mut resp, &limit, remaining);
    resp
}

/// The 301 of a merged conversation, `Location` naming the one it was merged into.
fn moved(sim: &Simulator, to: &str) -> Response {
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

/// Gladly's documented per-second rate-limit headers.
pub(super) fn rate_headers(resp: &mut Response, limit: &str, remaining: u32) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(limit) {
        h.insert("ratelimit-limit-second", v);
    }
    h.insert("ratelimit-remaining-second", HeaderValue::from(remaining));
}
