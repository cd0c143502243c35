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
    let delay = sim.faults.take_conversation_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let resp = answer(&sim, &headers, &id);
    sim.count_response(resp.status().as_u16());
    resp
}

fn answer(sim: &Simulator, headers: &HeaderMap, id: &str) -> Response {
    let remaining = match admit_get(sim, headers) {
        Ok(r) => r,
        Err(refused) => return *refused,
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
    rate_headers(&mut resp, sim, remaining);
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

/// Authorizes a general GET (conversations, the lists) and admits it under the per-second
/// limit: the requests left this second, or the 401 or 429 to answer instead.
pub(super) fn admit_get(sim: &Simulator, headers: &HeaderMap) -> Result<u32, Box<Response>> {
    if !authorized(&sim.cfg, headers) {
        return Err(Box::new(unauthorized()));
    }
    sim.admit_get().map_err(|wait| {
        let mut resp = too_many(limit_retry_after(sim.cfg.limits.retry_after, Some(wait)));
        rate_headers(&mut resp, sim, 0);
        Box::new(resp)
    })
}

/// Gladly's documented per-second rate-limit headers.
pub(super) fn rate_headers(resp: &mut Response, sim: &Simulator, remaining: u32) {
    let h = resp.headers_mut();
    h.insert(
        "ratelimit-limit-second",
        HeaderValue::from(sim.cfg.limits.per_second),
    );
    h.insert("ratelimit-remaining-second", HeaderValue::from(remaining));
}
