//! Validation of report request bodies the way Gladly does it: field by field, each problem a
//! `{attr, code, detail}` entry of the 400 body.

use chrono::{DateTime, FixedOffset, NaiveDate};
use chrono_tz::Tz;
use serde_json::Value;

use super::err;
use crate::reports::{Dated, Level, Plan};
use crate::wire::{ApiError, WORK_SESSIONS_PATH};
use crate::SimConfig;

/// Validates a request body for `path`; `Err` is the 400 body's errors.
pub(crate) fn plan(cfg: &SimConfig, path: &str, body: &Value) -> Result<Plan, Vec<ApiError>> {
    if !body.is_object() {
        return Err(vec![err(
            None,
            "invalid",
            "request body must be a JSON object",
        )]);
    }
    if path == WORK_SESSIONS_PATH {
        work_sessions(body)
    } else {
        metric_set(cfg, body)
    }
}

/// `{startAtTime, endAtTime}`: minute-precision instants, end after start.
fn work_sessions(body: &Value) -> Result<Plan, Vec<ApiError>> {
    let start = required(body, "startAtTime").and_then(|s| minute_instant("startAtTime", s));
    let end = required(body, "endAtTime").and_then(|s| minute_instant("endAtTime", s));
    let (start, end) = both(start, end)?;
    if end <= start {
        return Err(vec![err(
            Some("startAtTime"),
            "invalid",
            "endAtTime must occur after startAtTime",
        )]);
    }
    Ok(Plan::WorkSessions {
        start_ms: start.timestamp_millis(),
        end_ms: end.timestamp_millis(),
    })
}

/// `{metricSet, startAt, endAt, timezone?, aggregationLevel?, filters?}` of the metric sets
/// the simulator serves.
fn metric_set(cfg: &SimConfig, body: &Value) -> Result<Plan, Vec<ApiError>> {
    let metric = required(body, "metricSet").map_err(|e| vec![e])?;
    let is_contacts = metric == cfg.contact_export_metric_set;
    let dated = Dated::parse(metric);
    if !is_contacts && dated.is_none() && metric != cfg.agent_summary_metric_set {
        return Err(vec![err(
            Some("metricSet"),
            "invalid",
            format!("{metric} is not a valid metricSet"),
        )]);
    }
    if body.get("startAtTime").is_some() || body.get("endAtTime").is_some() {
        return time_precise(is_contacts, dated == Some(Dated::WorkSessionsV4), body);
    }
    let start = required(body, "startAt").and_then(|s| date("startAt", s));
    let end = required(body, "endAt").and_then(|s| date("endAt", s));
    let (start, end) = both(start, end)?;
    if end < start {
        return Err(vec![err(
            Some("endAt"),
            "invalid",
            "endAt must not be before startAt",
        )]);
    }
    let tz = timezone(body)?;
    if body.get("filters").is_some_and(|f| !f.is_object()) {
        return Err(vec![err(
            Some("filters"),
            "invalid",
            "filters must be an object",
        )]);
    }
    if is_contacts {
        return Ok(Plan::Contacts { start, end, tz });
    }
    if let Some(report) = dated {
        return Ok(Plan::Dated {
            report,
            start,
            end,
            tz,
        });
    }
    let level = aggregation_level(body, start, end)?;
    Ok(Plan::AgentSummary {
        start,
        end,
        tz,
        level,
    })
}

/// `{metricSet, startAtTime, endAtTime}` (the 2026 spec): minute-precision instants, both
/// required, and then `startAt`, `endAt` and `timezone` must not be sent. The spec names
/// `ContactExportReportV3` (and an `AgentSummaryReport` its metric-set enum lacks); a peer
/// requests `WorkSessionEventsReportV4` by a time range too, answered here as the work-session
/// endpoint answers the same range.
fn time_precise(is_contacts: bool, is_v4: bool, body: &Value) -> Result<Plan, Vec<ApiError>> {
    if !is_contacts && !is_v4 {
        return Err(vec![err(
            Some("startAtTime"),
            "invalid",
            "startAtTime and endAtTime apply to ContactExportReportV3 and WorkSessionEventsReportV4 only",
        )]);
    }
    let mixed: Vec<ApiError> = ["startAt", "endAt", "timezone"]
        .into_iter()
        .filter(|k| body.get(*k).is_some())
        .map(|k| {
            err(
                Some(k),
                "invalid",
                format!("{k} must not be specified with startAtTime and endAtTime"),
            )
        })
        .collect();
    if !mixed.is_empty() {
        return Err(mixed);
    }
    let start = required(body, "startAtTime").and_then(|s| minute_instant("startAtTime", s));
    let end = required(body, "endAtTime").and_then(|s| minute_instant("endAtTime", s));
    let (start, end) = both(start, end)?;
    if end <= start {
        return Err(vec![err(
            Some("startAtTime"),
            "invalid",
            "endAtTime must occur after startAtTime",
        )]);
    }
    let (start_ms, end_ms) = (start.timestamp_millis(), end.timestamp_millis());
    Ok(if is_v4 {
        Plan::WorkSessions { start_ms, end_ms }
    } else {
        Plan::ContactsBetween { start_ms, end_ms }
    })
}

/// Both values, or every error of the two.
fn both<A, B>(a: Result<A, ApiError>, b: Result<B, ApiError>) -> Result<(A, B), Vec<ApiError>> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err([a.err(), b.err()].into_iter().flatten().collect()),
    }
}

/// `timezone`: an IANA name, UTC when absent.
fn timezone(body: &Value) -> Result<Tz, Vec<ApiError>> {
    let name = field(body, "timezone")
        .map_err(|e| vec![e])?
        .unwrap_or("UTC");
    name.parse().map_err(|_| {
        vec![err(
            Some("timezone"),
            "invalid",
            format!("{name} is not a valid timezone"),
        )]
    })
}

/// `aggregationLevel`: daily when absent; half-hourly only for up to a month.
fn aggregation_level(
    body: &Value,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Level, Vec<ApiError>> {
    let name = field(body, "aggregationLevel")
        .map_err(|e| vec![e])?
        .unwrap_or("daily");
    let level = Level::parse(name).ok_or_else(|| {
        vec![err(
            Some("aggregationLevel"),
            "invalid",
            format!("{name} is not a valid aggregationLevel: use halfHourly, daily, weekly, monthly or quarterly"),
        )]
    })?;
    if level == Level::HalfHourly && (end - start).num_days() > 31 {
        return Err(vec![err(
            Some("aggregationLevel"),
            "invalid",
            "halfHourly is not available for more than 1 month",
        )]);
    }
    Ok(level)
}

/// A string field; absent, null and blank are `None`, anything else not a string is invalid.
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

/// A string field that must be present (`blank` otherwise).
fn required<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    field(body, name)?.ok_or_else(|| err(Some(name), "blank", format!("{name} can't be blank")))
}

/// `YYYY-mm-ddThh:mmZ` or `YYYY-mm-ddThh:mm±hh:mm`.
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

/// `YYYY-mm-dd`.
fn date(name: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        err(
            Some(name),
            "invalid",
            format!("{name} must be a date like 2024-03-14"),
        )
    })
}
