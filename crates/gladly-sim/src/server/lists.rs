//! `GET /api/v1/agents`, `/inboxes`, `/teams`, `/topics` under Gladly's general per-second
//! limit, with its documented rate-limit headers (see [`crate::Simulator::list`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::conversation::{admit_get, rate_headers};
use crate::Simulator;

pub(super) async fn agents(State(sim): State<Arc<Simulator>>, headers: HeaderMap) -> Response {
    serve(&sim, &headers, "agents")
}

pub(super) async fn inboxes(State(sim): State<Arc<Simulator>>, headers: HeaderMap) -> Response {
    serve(&sim, &headers, "inboxes")
}

pub(super) async fn teams(State(sim): State<Arc<Simulator>>, headers: HeaderMap) -> Response {
    serve(&sim, &headers, "teams")
}

pub(super) async fn topics(State(sim): State<Arc<Simulator>>, headers: HeaderMap) -> Response {
    serve(&sim, &headers, "topics")
}

fn serve(sim: &Simulator, headers: &HeaderMap, list: &str) -> Response {
    sim.count_request(list);
    let resp = answer(sim, headers, list);
    sim.count_response(resp.status().as_u16());
    resp
}

fn answer(sim: &Simulator, headers: &HeaderMap, list: &str) -> Response {
    let remaining = match admit_get(sim, headers) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let items = sim.list(list).unwrap_or_default();
    let mut resp = axum::Json(items).into_response();
    rate_headers(&mut resp, sim, remaining);
    resp
}
