//! The two report endpoints: auth, faults and the org-wide limits first, then validation, then
//! a CSV body streamed as it is generated.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::csv_body::CsvBody;
use super::{
    authorized, err, errors, limit_retry_after, plan, server_error, streamed, too_many,
    unauthorized,
};
use crate::faults::Decision;
use crate::reports::Plan;
use crate::wire::{REPORTS_PATH, WORK_SESSIONS_PATH};
use crate::{InFlight, Simulator};

pub(super) async fn work_sessions(
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

pub(super) async fn reports(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

async fn answer(sim: &Arc<Simulator>, path: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let (decision, guard) = match admit(sim, headers) {
        Ok(admitted) => admitted,
        Err(resp) => return *resp,
    };
    let plan = match validate(sim, path, body) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    if !decision.slow.is_zero() {
        tokio::time::sleep(decision.slow).await;
    }
    csv_response(sim, &plan, decision, guard)
}

/// An answer decided before the body is generated (boxed: a `Response` is large).
type Early = Box<Response>;

/// Auth, this request's share of the faults, and the limits: the request goes on holding a
/// concurrency slot, or the answer is already decided.
fn admit(sim: &Arc<Simulator>, headers: &HeaderMap) -> Result<(Decision, InFlight), Early> {
    if !authorized(&sim.cfg, headers) {
        return Err(unauthorized().into());
    }
    let decision = sim.faults.take(sim.draw());
    if decision.forbidden {
        return Err(errors(
            StatusCode::FORBIDDEN,
            vec![err(
                None,
                "forbidden",
                "User does not have permission to access resource",
            )],
        )
        .into());
    }
    if let Some(ra) = decision.rate_limited {
        return Err(too_many(ra).into());
    }
    if let Some(status) = decision.error {
        return Err(server_error(status, StatusCode::INTERNAL_SERVER_ERROR).into());
    }
    match sim.admit() {
        Ok(guard) => Ok((decision, guard)),
        Err(wait) => Err(too_many(limit_retry_after(sim.cfg.limits.retry_after, wait)).into()),
    }
}

/// The body as JSON and then as a plan, or the 400.
fn validate(sim: &Simulator, path: &str, body: &[u8]) -> Result<Plan, Early> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let detail = format!("request body is not JSON: {e}");
        Box::new(errors(
            StatusCode::BAD_REQUEST,
            vec![err(None, "invalid", detail)],
        ))
    })?;
    plan(&sim.cfg, path, &value).map_err(|errs| errors(StatusCode::BAD_REQUEST, errs).into())
}

/// The 200: the plan's rows as of now, with the format faults, streamed.
fn csv_response(
    sim: &Arc<Simulator>,
    plan: &Plan,
    decision: Decision,
    guard: InFlight,
) -> Response {
    let body = CsvBody::new(sim.clone(), plan, decision.format, guard);
    let cut = body.cut_happened();
    let mut resp = Response::new(streamed(body, cut));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename={}", plan.file_name())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
