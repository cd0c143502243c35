//! The metric-set reports added beside Contact Export (Conversation Export, Contact and
//! Conversation Timestamps, Work Session Events V4), over HTTP and on the ground truth.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::wire::{
    CONTACT_EXPORT, CONTACT_TIMESTAMPS, CONVERSATION_EXPORT, CONVERSATION_TIMESTAMPS,
    WORK_SESSION_EVENTS_V4,
};

const NEW: [&str; 4] = [
    CONVERSATION_EXPORT,
    CONTACT_TIMESTAMPS,
    CONVERSATION_TIMESTAMPS,
    WORK_SESSION_EVENTS_V4,
];

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A simulator whose clock is shared with the test.
fn sim_with(cfg: SimConfig, now: &str) -> (Arc<Simulator>, Arc<std::sync::Mutex<DateTime<Utc>>>) {
    let clock = Arc::new(std::sync::Mutex::new(t(now)));
    let reader = clock.clone();
    (Simulator::new(cfg, move || *reader.lock().unwrap()), clock)
}

fn cfg() -> SimConfig {
    SimConfig {
        long_open_fraction: 0.1,
        ..SimConfig::default()
    }
    .without_limits()
}

/// `POST /api/v1/reports` with `body`: the status and the de-chunked body.
async fn post(server: &SimServer, sim: &Simulator, body: serde_json::Value) -> (u16, String) {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        sim.config().email,
        sim.config().token
    ));
    let body = body.to_string();
    let req = format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: sim\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = rest;
        loop {
            let (size, tail) = rest.split_once("\r\n").unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.push_str(&tail[..size]);
            rest = &tail[size + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dates(metric: &str, start: &str, end: &str) -> serde_json::Value {
    serde_json::json!({"metricSet": metric, "startAt": start, "endAt": end, "timezone": "UTC"})
}

fn ids(truth: &Truth, column: &str) -> BTreeSet<String> {
    truth
        .rows
        .iter()
        .map(|r| r.get(column).unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn each_new_report_answers_its_header_and_the_truth_over_http() {
    let (sim, _) = sim_with(cfg(), "2024-03-06T12:00:00Z");
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    for metric in NEW {
        let (status, body) = post(&server, &sim, dates(metric, "2024-03-05", "2024-03-05")).await;
        assert_eq!(status, 200, "{metric}: {body}");
        let truth = sim.metric_set_truth(metric, day("2024-03-05"), day("2024-03-05"), "UTC");
        let mut lines = body.split("\r\n").filter(|l| !l.is_empty());
        assert_eq!(lines.next().unwrap(), truth.columns.join(","), "{metric}");
        assert!(truth.rows.len() > 100, "{metric}: {}", truth.rows.len());
        assert_eq!(lines.count(), truth.rows.len(), "{metric}");
        if metric != WORK_SESSION_EVENTS_V4 {
            assert_eq!(truth.columns[0], "Timezone Filter");
            assert!(truth
                .rows
                .iter()
                .all(|r| r.get("Timezone Filter") == Some("UTC")));
        }
    }
}

#[test]
fn rows_agree_with_contact_export_and_the_work_session_endpoint() {
    let (sim, _) = sim_with(cfg(), "2024-03-07T12:00:00Z");
    let (d, next) = (day("2024-03-05"), day("2024-03-06"));
    let contacts = sim.metric_set_truth(CONTACT_EXPORT, d, next, "UTC");
    let conversations = sim.metric_set_truth(CONVERSATION_EXPORT, d, d, "UTC");
    let from_contacts = ids(&contacts, "Conversation ID");
    let exported = ids(&conversations, "Conversation ID");
    assert_eq!(
        exported.len(),
        conversations.rows.len(),
        "one row per conversation"
    );
    assert!(exported.is_subset(&from_contacts));
    for r in &conversations.rows {
        let created = t(r.get("Created At").unwrap());
        assert_eq!(created.date_naive(), d, "anchored at creation");
        let n: usize = r.get("Count of Contacts").unwrap().parse().unwrap();
        let mine = contacts
            .rows
            .iter()
            .filter(|c| c.get("Conversation ID") == r.get("Conversation ID"))
            .collect::<Vec<_>>();
        assert_eq!(mine.len(), n, "its contacts are in Contact Export");
        assert!(mine
            .iter()
            .all(|c| c.get("Customer ID") == r.get("Customer ID")));
        assert_eq!(r.get("First Contact ID"), mine[0].get("Contact ID"));
    }
    // event rows: keyed by id + event type + timestamp, timestamps within the dates
    for (metric, id) in [
        (CONTACT_TIMESTAMPS, "Contact ID"),
        (CONVERSATION_TIMESTAMPS, "Conversation ID"),
    ] {
        let events = sim.metric_set_truth(metric, d, d, "UTC");
        let keys: BTreeSet<(String, String, String)> = events
            .rows
            .iter()
            .map(|r| {
                let at = r.get("Timestamp").unwrap();
                assert_eq!(t(at).date_naive(), d, "{metric}");
                let e = r.get("Event Type").unwrap().to_string();
                (r.get(id).unwrap().to_string(), e, at.to_string())
            })
            .collect();
        assert_eq!(keys.len(), events.rows.len(), "{metric}: keys are unique");
    }
    let contact_events = sim.metric_set_truth(CONTACT_TIMESTAMPS, d, d, "UTC");
    assert!(ids(&contact_events, "Conversation ID").is_subset(&ids(
        &sim.metric_set_truth(CONTACT_EXPORT, d - Duration::days(1), next, "UTC"),
        "Conversation ID"
    )));
    let started: BTreeSet<String> = contact_events
        .rows
        .iter()
        .filter(|r| r.get("Event Type") == Some("CONTACT/STARTED"))
        .map(|r| r.get("Contact ID").unwrap().to_string())
        .collect();
    assert!(started.is_subset(&ids(&contacts, "Contact ID")));
    // V4 is the work-session endpoint's answer for the day
    let v4 = sim.metric_set_truth(WORK_SESSION_EVENTS_V4, d, d, "UTC");
    let endpoint = sim.report_truth(&ReportQuery::WorkSessions {
        start: t("2024-03-05T00:00:00Z"),
        end: t("2024-03-05T23:59:00Z"),
    });
    assert_eq!(v4.rows, endpoint.rows);
}

#[test]
fn conversation_rows_restate_until_the_conversation_closes() {
    let (sim, clock) = sim_with(cfg(), "2024-03-05T12:00:00Z");
    let d = day("2024-03-05");
    let before = sim.metric_set_truth(CONVERSATION_EXPORT, d, d, "UTC");
    let open: Vec<&TruthRow> = before
        .rows
        .iter()
        .filter(|r| r.get("Status") == Some("OPEN"))
        .collect();
    assert!(!open.is_empty());
    assert!(open.iter().all(|r| r.get("Last Closed At") == Some("")));
    *clock.lock().unwrap() += Duration::days(1);
    let after = sim.metric_set_truth(CONVERSATION_EXPORT, d, d, "UTC");
    let mut closed = 0;
    for old in open {
        let new = after
            .rows
            .iter()
            .find(|r| r.get("Conversation ID") == old.get("Conversation ID"))
            .expect("a conversation row stays");
        assert_eq!(new.get("Created At"), old.get("Created At"));
        if new.get("Status") != Some("OPEN") {
            closed += 1;
            assert_ne!(new.get("Last Closed At"), Some(""));
            assert_ne!(new, old, "the row restates");
        }
    }
    assert!(closed > 0);
    // the closes show up as events too
    let events = sim.metric_set_truth(CONVERSATION_TIMESTAMPS, d, day("2024-03-06"), "UTC");
    assert!(events
        .rows
        .iter()
        .any(|r| r.get("Event Type") == Some("CONVERSATION/CLOSED")));
}

/// The Conversation Timestamps rows of `events` by conversation, each in time order.
fn by_conversation(events: &Truth) -> std::collections::BTreeMap<&str, Vec<&TruthRow>> {
    let mut of: std::collections::BTreeMap<&str, Vec<&TruthRow>> = Default::default();
    for e in &events.rows {
        let mine = of.entry(e.get("Conversation ID").unwrap()).or_default();
        mine.push(e);
    }
    for mine in of.values_mut() {
        mine.sort_by_key(|e| t(e.get("Timestamp").unwrap()));
    }
    of
}

#[test]
fn conversation_export_counts_agree_with_the_conversation_events() {
    // sparse contacts, so that some follow-ups come after their conversation closed
    let sparse = SimConfig {
        contacts_per_hour: 2.0,
        diurnal: false,
        ..cfg()
    };
    let (sim, _) = sim_with(sparse.with_seed(3), "2024-03-20T00:00:00Z");
    let (start, end) = (day("2024-03-01"), day("2024-03-14"));
    let export = sim.metric_set_truth(CONVERSATION_EXPORT, start, end, "UTC");
    // a conversation's events all come within a day of its creation
    let events = sim.metric_set_truth(
        CONVERSATION_TIMESTAMPS,
        start,
        end + Duration::days(1),
        "UTC",
    );
    let of = by_conversation(&events);
    let mut closers = BTreeSet::new();
    let (mut reopened, mut merged) = (0, 0);
    for r in &export.rows {
        let mine = &of[r.get("Conversation ID").unwrap()];
        let of_kind = |kind: &str| -> Vec<&TruthRow> {
            let is = |e: &&&TruthRow| e.get("Event Type") == Some(kind);
            mine.iter().filter(is).copied().collect()
        };
        let count = |column: &str| r.get(column).unwrap().parse::<usize>().unwrap();
        let closes = of_kind("CONVERSATION/CLOSED");
        assert_eq!(count("Times Closed"), closes.len());
        assert_eq!(
            count("Times Reopened"),
            of_kind("CONVERSATION/REOPENED").len()
        );
        assert_eq!(
            count("Times Topic Added"),
            of_kind("CONVERSATION/TOPIC_ADDED").len()
        );
        assert_eq!(
            count("Times Topic Removed"),
            of_kind("CONVERSATION/TOPIC_REMOVED").len()
        );
        let assignees: BTreeSet<&str> = of_kind("CONVERSATION_ASSIGNEE/UPDATED")
            .iter()
            .map(|e| e.get("Newly Assigned Agent ID").unwrap())
            .collect();
        assert_eq!(count("Count of Agents Assigned"), assignees.len());
        let created = &of_kind("CONVERSATION/CREATED")[0];
        assert_eq!(r.get("Created At"), created.get("Timestamp"));
        assert_eq!(
            r.get("Initiator Agent ID - Created"),
            created.get("Initiator ID")
        );
        let last = closes.last();
        assert_eq!(
            r.get("Last Closed At").unwrap(),
            last.map_or("", |e| e.get("Timestamp").unwrap())
        );
        let initiator = r
            .get("Initiator Type - Last Closed")
            .unwrap()
            .to_uppercase();
        assert_eq!(
            initiator,
            last.map_or("", |e| e.get("Initiator Type").unwrap())
        );
        assert_eq!(
            r.get("Initiator Agent ID - Last Closed").unwrap(),
            last.map_or("", |e| e.get("Initiator ID").unwrap())
        );
        closers.insert(initiator);
        reopened += usize::from(count("Times Reopened") > 0);
        merged += usize::from(r.get("Status") == Some("MERGED"));
    }
    // closed by an agent and by the system, reopened and merged: each case is compared
    assert_eq!(closers, BTreeSet::from(["AGENT".into(), "SYSTEM".into()]));
    assert!(
        reopened > 0 && merged > 0,
        "{reopened} reopened, {merged} merged"
    );
}

#[tokio::test]
async fn the_added_column_appears_from_its_instant_only() {
    let from = t("2024-03-06T13:00:00Z");
    let cfg = cfg().with_added_column(CONVERSATION_EXPORT, "Number of Transfers", from);
    let (sim, clock) = sim_with(cfg, "2024-03-06T12:00:00Z");
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let d = day("2024-03-05");
    let old = sim.metric_set_truth(CONVERSATION_EXPORT, d, d, "UTC");
    assert_eq!(old.columns, wire::CONVERSATION_EXPORT_COLUMNS);
    let (_, body) = post(
        &server,
        &sim,
        dates(CONVERSATION_EXPORT, "2024-03-05", "2024-03-05"),
    )
    .await;
    assert!(!body.lines().next().unwrap().contains("Number of Transfers"));
    // the truth can tell the answer from the instant on ahead of time…
    let future = sim.metric_set_truth_at(CONVERSATION_EXPORT, d, d, "UTC", from);
    assert_eq!(future.columns.last(), Some(&"Number of Transfers"));
    // …and it is what is served from then
    *clock.lock().unwrap() = from;
    let new = sim.metric_set_truth(CONVERSATION_EXPORT, d, d, "UTC");
    assert_eq!(new, future);
    assert_eq!(new.columns.len(), old.columns.len() + 1);
    let transfers: Vec<u32> = new
        .rows
        .iter()
        .map(|r| r.get("Number of Transfers").unwrap().parse().unwrap())
        .collect();
    assert!(transfers.iter().any(|n| *n > 0), "real values");
    let (_, body) = post(
        &server,
        &sim,
        dates(CONVERSATION_EXPORT, "2024-03-05", "2024-03-05"),
    )
    .await;
    assert!(body
        .lines()
        .next()
        .unwrap()
        .ends_with(",Number of Transfers"));
    // other reports keep their columns
    let contacts = sim.metric_set_truth(CONTACT_EXPORT, d, d, "UTC");
    assert_eq!(contacts.columns, wire::CONTACT_EXPORT_COLUMNS);
}

#[test]
fn an_id_column_added_to_event_rows_names_the_last_agent() {
    let from = t("2024-03-06T00:00:00Z");
    let cfg = cfg().with_added_column(CONTACT_TIMESTAMPS, "Last Agent ID", from);
    let (sim, _) = sim_with(cfg, "2024-03-06T12:00:00Z");
    let d = day("2024-03-05");
    let rows = sim.metric_set_truth(CONTACT_TIMESTAMPS, d, d, "UTC").rows;
    let accepted = rows
        .iter()
        .filter(|r| {
            r.get("Event Type") == Some("CONTACT/ENDED") && r.get("Assigned Agent ID") != Some("")
        })
        .collect::<Vec<_>>();
    assert!(!accepted.is_empty());
    for r in accepted {
        assert_eq!(r.get("Last Agent ID"), r.get("Assigned Agent ID"));
    }
}

#[tokio::test]
async fn row_cap_limits_and_faults_apply_to_the_new_reports() {
    let cfg = SimConfig {
        row_cap: Some(7),
        ..cfg()
    };
    let (sim, _) = sim_with(cfg, "2024-03-06T12:00:00Z");
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    for metric in NEW {
        let (status, body) = post(&server, &sim, dates(metric, "2024-03-05", "2024-03-05")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body.split("\r\n").filter(|l| !l.is_empty()).count(),
            8,
            "{metric}"
        );
        sim.faults().rate_limit_next(1, RetryAfter::Seconds(3));
        let (status, _) = post(&server, &sim, dates(metric, "2024-03-05", "2024-03-05")).await;
        assert_eq!(status, 429, "{metric}");
    }
    // and the org-wide per-minute limit
    let limited = SimConfig {
        limits: Limits {
            per_minute: 2,
            ..Limits::default()
        },
        ..cfg_with_limits()
    };
    let (sim, _) = sim_with(limited, "2024-03-06T12:00:00Z");
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let body = dates(CONTACT_TIMESTAMPS, "2024-03-05", "2024-03-05");
        statuses.push(post(&server, &sim, body).await.0);
    }
    assert_eq!(statuses, [200, 200, 429]);
}

fn cfg_with_limits() -> SimConfig {
    SimConfig {
        long_open_fraction: 0.1,
        ..SimConfig::default()
    }
}

#[test]
fn the_new_reports_take_dates_and_work_session_events_v4_a_time_range_too() {
    let cfg = SimConfig::default();
    for metric in NEW {
        let body = serde_json::json!({
            "metricSet": metric,
            "startAtTime": "2024-03-05T10:00Z",
            "endAtTime": "2024-03-05T11:00Z",
        });
        match server::plan(&cfg, wire::REPORTS_PATH, &body) {
            Ok(plan) => assert!(
                metric == wire::WORK_SESSION_EVENTS_V4
                    && matches!(plan, crate::reports::Plan::WorkSessions { .. }),
                "{metric}"
            ),
            Err(errs) => {
                assert_ne!(metric, wire::WORK_SESSION_EVENTS_V4);
                assert_eq!(errs[0].attr.as_deref(), Some("startAtTime"), "{metric}");
            }
        }
        let bad_tz = serde_json::json!({
            "metricSet": metric, "startAt": "2024-03-05", "endAt": "2024-03-05", "timezone": "Mars/Base",
        });
        let errs = server::plan(&cfg, wire::REPORTS_PATH, &bad_tz).unwrap_err();
        assert_eq!(errs[0].attr.as_deref(), Some("timezone"), "{metric}");
    }
}
