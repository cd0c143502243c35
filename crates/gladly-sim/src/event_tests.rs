//! `GET /api/v1/events`: the route (auth, validation, the 24-hour rule, limits and faults),
//! the answer (order, bytes, visibility lag, entities) and its agreement with the reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::wire::{
    AGENT_SUMMARY, CONTACT_TIMESTAMPS, CONVERSATION_TIMESTAMPS, EVENTS_CONTENT_TYPE,
    EVENT_EXTRA_FIELD,
};

type Clock = Arc<std::sync::Mutex<DateTime<Utc>>>;

const NOW: &str = "2024-03-06T12:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn cfg() -> SimConfig {
    SimConfig {
        long_open_fraction: 0.1,
        ..SimConfig::default()
    }
    .without_limits()
}

/// A simulator whose clock is shared with the test.
fn sim_with(cfg: SimConfig, now: &str) -> (Arc<Simulator>, Clock) {
    let clock = Arc::new(std::sync::Mutex::new(t(now)));
    let reader = clock.clone();
    (Simulator::new(cfg, move || *reader.lock().unwrap()), clock)
}

fn set(clock: &Clock, at: DateTime<Utc>) {
    *clock.lock().unwrap() = at;
}

/// An answer: status, lower-cased head, de-chunked body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn lines(&self) -> Vec<Value> {
        self.body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn error(&self) -> (String, String) {
        let v: Value = serde_json::from_str(&self.body).unwrap();
        let e = &v["errors"][0];
        assert_eq!(e["code"], "invalid", "{}", self.body);
        (
            e["attr"].as_str().unwrap_or("").to_string(),
            e["detail"].as_str().unwrap().to_string(),
        )
    }
}

/// `GET /api/v1/events?<query>`, with the simulator's credentials when `auth` is set.
async fn get_as(server: &SimServer, auth: Option<(&str, &str)>, query: &str) -> Answer {
    use base64::Engine;
    let auth = auth.map_or(String::new(), |(user, pass)| {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Authorization: Basic {b}\r\n")
    });
    let req = format!(
        "GET /api/v1/events?{query} HTTP/1.1\r\nHost: sim\r\n{auth}Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    // a cut connection ends in a reset: keep what came before it
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head.contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.push_str(&tail[..size.min(tail.len())]);
            rest = tail.get(size + 2..).unwrap_or("");
        }
        out
    } else {
        rest.to_string()
    };
    Answer { status, head, body }
}

async fn get(server: &SimServer, sim: &Simulator, query: &str) -> Answer {
    let c = sim.config();
    get_as(server, Some((&c.email, &c.token)), query).await
}

/// `startAt=…&endAt=…&entities=…` (times in `Z`).
fn query(start: DateTime<Utc>, end: Option<DateTime<Utc>>, entities: &[&str]) -> String {
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut q = format!("startAt={}", fmt(start));
    if let Some(end) = end {
        q.push_str(&format!("&endAt={}", fmt(end)));
    }
    for e in entities {
        q.push_str(&format!("&entities={e}"));
    }
    q
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn ts_of(v: &Value) -> DateTime<Utc> {
    t(v["timestamp"].as_str().unwrap())
}

const ALL: [&str; 4] = [
    "CONTACT",
    "CONVERSATION",
    "AGENT_STATUS",
    "AGENT_AVAILABILITY",
];

#[tokio::test]
async fn the_route_checks_auth_and_the_query_like_gladly() {
    let (sim, _) = sim_with(cfg(), NOW);
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let now = t(NOW);
    let ok = query(now - Duration::hours(1), None, &["CONTACT"]);
    assert_eq!(get_as(&server, None, &ok).await.status, 401);
    let wrong = get_as(&server, Some(("api@example.com", "nope")), &ok).await;
    assert_eq!(wrong.status, 401);

    let answer = get(&server, &sim, &ok).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .head
            .contains(&format!("content-type: {EVENTS_CONTENT_TYPE}")),
        "{}",
        answer.head
    );
    assert!(answer.head.contains("ratelimit-limit-second: 10"));
    assert!(!answer.lines().is_empty());

    let bad = |q: &str, attr: &str, detail: &str| {
        let (q, attr, detail) = (q.to_string(), attr.to_string(), detail.to_string());
        let (server, sim) = (&server, &sim);
        async move {
            let a = get(server, sim, &q).await;
            assert_eq!(a.status, 400, "{q}: {}", a.body);
            let (got_attr, got_detail) = a.error();
            assert_eq!(got_attr, attr, "{q}");
            assert!(got_detail.contains(&detail), "{q}: {got_detail}");
        }
    };
    bad("entities=CONTACT", "startAt", "required").await;
    bad("startAt=yesterday&entities=CONTACT", "startAt", "ISO 8601").await;
    bad(
        "startAt=2024-03-06T11:00:00Z&endAt=soon&entities=CONTACT",
        "endAt",
        "ISO 8601",
    )
    .await;
    bad("startAt=2024-03-06T11:00:00Z", "entities", "required").await;
    bad(
        "startAt=2024-03-06T11:00:00Z&entities=CONTACT&entities=AGENTS",
        "entities",
        "AGENTS is not a valid entity",
    )
    .await;
    // comma-separated values are not documented: refused
    bad(
        "startAt=2024-03-06T11:00:00Z&entities=CONTACT,TASK",
        "entities",
        "not a valid entity",
    )
    .await;
    // 24 hours and a second ago
    bad(
        "startAt=2024-03-05T11:59:59Z&entities=CONTACT",
        "startAt",
        "must be within the last 24 hours",
    )
    .await;
    bad(
        "startAt=2024-03-06T11:00:00Z&endAt=2024-03-06T11:00:00Z&entities=CONTACT",
        "startAt",
        "endAt must occur after startAt",
    )
    .await;
    // endAt defaults to now: a startAt in the future has nothing after it
    bad(
        "startAt=2024-03-06T12:00:01Z&entities=CONTACT",
        "startAt",
        "endAt must occur after startAt",
    )
    .await;
    // a raw + decodes as a space
    bad(
        "startAt=2024-03-06T12:00:00+01:00&entities=CONTACT",
        "startAt",
        "ISO 8601",
    )
    .await;

    // exactly 24 hours back is fine, and so are offsets, 0 to 9 fraction digits and minutes
    for start in [
        "2024-03-05T12:00:00Z",
        "2024-03-06T12:30:00%2B01:00",
        "2024-03-06T02:00:00-09:00",
        "2024-03-06T11:00:00.123456789Z",
        "2024-03-06T11:00:00.1Z",
        "2024-03-06T11:00Z",
    ] {
        let a = get(&server, &sim, &format!("startAt={start}&entities=CONTACT")).await;
        assert_eq!(a.status, 200, "{start}: {}", a.body);
    }
    // unknown parameters are ignored
    let a = get(&server, &sim, &format!("{ok}&limit=5")).await;
    assert_eq!(a.status, 200);
    let stats = sim.stats();
    assert_eq!(stats.event_gets, stats.requests["events"]);
    assert!(stats.event_gets >= 20, "{}", stats.event_gets);
    assert_eq!(stats.report_requests(), 0);
}

#[test]
fn the_query_parser_bounds_the_window_to_the_millisecond() {
    let now = t(NOW).timestamp_millis();
    let w = server::events_window(
        "startAt=2024-03-06T11%3A00%3A00.0005Z&endAt=2024-03-06T11:30:00.000999999%2B00:00&entities=CONTACT",
        now,
    )
    .unwrap();
    assert_eq!(w.start_ms, t("2024-03-06T11:00:00.001Z").timestamp_millis());
    assert_eq!(w.end_ms, t("2024-03-06T11:30:00.001Z").timestamp_millis());
    let w = server::events_window("startAt=2024-03-06T11:00:00Z&entities=TASK", now).unwrap();
    assert_eq!(w.end_ms, now, "endAt defaults to now");
    // several problems are reported together
    let errs = server::events_window("endAt=x", now).unwrap_err();
    let attrs: Vec<_> = errs.iter().map(|e| e.attr.clone().unwrap()).collect();
    assert_eq!(attrs, ["startAt", "endAt", "entities"]);
}

#[tokio::test]
async fn answers_are_ordered_compact_lines_identical_on_every_read() {
    let (sim, clock) = sim_with(cfg(), NOW);
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let now = t(NOW);
    let q = query(now - Duration::hours(6), Some(now), &ALL);
    let first = get(&server, &sim, &q).await;
    assert_eq!(first.status, 200);
    assert!(first.body.ends_with('\n'));
    let lines: Vec<&str> = first.body.lines().collect();
    assert!(lines.len() > 1000, "{}", lines.len());
    let events = first.lines();
    for (line, v) in lines.iter().zip(&events) {
        assert_eq!(
            line.len(),
            v.to_string().len(),
            "compact JSON, one object per line"
        );
        assert!(line.starts_with(r#"{"id":""#), "{line}");
    }
    assert!(
        events.windows(2).all(|p| ts_of(&p[0]) <= ts_of(&p[1])),
        "ascending timestamps"
    );
    let ids: BTreeSet<String> = events.iter().map(id).collect();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    assert_eq!(first.body, get(&server, &sim, &q).await.body, "same bytes");

    // an hour later, the overlap of another window holds the very same lines
    set(&clock, now + Duration::hours(1));
    let later = get(
        &server,
        &sim,
        &query(now - Duration::hours(3), None, &["CONTACT", "CONVERSATION"]),
    )
    .await;
    let old: BTreeMap<String, &str> = events.iter().map(id).zip(lines.iter().copied()).collect();
    let mut shared = 0;
    for line in later.body.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(before) = old.get(&id(&v)) {
            assert_eq!(*before, line);
            shared += 1;
        }
    }
    assert!(shared > 500, "{shared}");
    // a fresh simulator (a restart) serves the same events
    let (again, _) = sim_with(cfg(), NOW);
    assert_eq!(
        again.events_visible(&ALL, now - Duration::hours(6), now),
        events
    );
    // the server remembers what it sent
    let served = sim.served_event_ids();
    assert!(ids.is_subset(&served));
    assert_eq!(
        sim.stats().events_served,
        (2 * events.len() + later.body.lines().count()) as u64
    );
}

#[tokio::test]
async fn an_empty_window_is_an_empty_body() {
    // no contact exists before the origin, and these entities have no events at all
    let (sim, _) = sim_with(cfg(), "2024-03-01T00:10:00Z");
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let a = get(
        &server,
        &sim,
        "startAt=2024-02-29T23:00:00Z&endAt=2024-02-29T23:30:00Z&entities=CONTACT&entities=TASK",
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (200, ""));
    let a = get(
        &server,
        &sim,
        "startAt=2024-02-29T23:00:00Z&entities=CUSTOMER&entities=PAYMENT_REQUEST",
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (200, ""));
}

#[test]
fn envelopes_follow_the_reference() {
    let (sim, _) = sim_with(cfg(), NOW);
    let now = t(NOW);
    let events = sim.events_truth(&ALL, now - Duration::hours(24), now);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut extra = 0;
    for v in &events {
        let obj = v.as_object().unwrap();
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["id", "type", "timestamp", "initiator", "content"])
        );
        let id = id(v);
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let ts = v["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.');
        assert!(v["initiator"]["id"].is_string());
        assert!(["AGENT", "CUSTOMER", "SYSTEM"].contains(&v["initiator"]["type"].as_str().unwrap()));
        let kind = v["type"].as_str().unwrap();
        *kinds.entry(kind.to_string()).or_default() += 1;
        let c = &v["content"];
        if c.get(EVENT_EXTRA_FIELD).is_some() {
            extra += 1;
        }
        let entity = kind.split('/').next().unwrap();
        let required: &[&str] = match entity {
            "CONTACT" => &["channel", "contactId", "conversationId", "customerId"],
            "CONVERSATION" | "CONVERSATION_ASSIGNEE" => &["customerId", "conversationId"],
            _ => &["agentId", "occurredAt"],
        };
        for f in required {
            assert!(c[f].is_string(), "{kind} lacks {f}: {v}");
        }
        if entity.starts_with("CONTACT") || entity.starts_with("CONVERSATION") {
            assert!(c["context"]["assignee"]["inboxId"].is_string(), "{v}");
        }
        match kind {
            "CONTACT/OFFERED" | "CONTACT/OFFER_ACCEPTED" => assert!(c["agentId"].is_string()),
            "CONTACT/ENDED" => {
                assert!(["ANSWERED", "ABANDONED", "UNANSWERED"]
                    .contains(&c["status"].as_str().unwrap()));
                assert!(c["reason"].is_string());
            }
            "CONTACT/TRANSFERRED" | "CONVERSATION_ASSIGNEE/UPDATED" => {
                assert!(c["assignee"]["agentId"].is_string(), "{v}");
            }
            "AGENT_AVAILABILITY/UPDATED" => assert!(c["availableFor"].is_array()),
            "AGENT_STATUS/LOGGED_IN" => assert!(c["activeReason"]["id"].is_string()),
            _ => {}
        }
    }
    for kind in [
        "CONTACT/STARTED",
        "CONTACT/OFFERED",
        "CONTACT/OFFER_ACCEPTED",
        "CONTACT/TRANSFERRED",
        "CONTACT/HOLD_STARTED",
        "CONTACT/HOLD_ENDED",
        "CONTACT/ENDED",
        "CONVERSATION/CREATED",
        "CONVERSATION/CLOSED",
        "CONVERSATION/TOPIC_ADDED",
        "CONVERSATION_ASSIGNEE/UPDATED",
        "AGENT_STATUS/LOGGED_IN",
        "AGENT_STATUS/LOGGED_OUT",
        "AGENT_AVAILABILITY/UPDATED",
    ] {
        assert!(kinds.contains_key(kind), "no {kind}: {kinds:?}");
    }
    let total = events.len();
    assert!(extra * 100 > total && extra * 25 < total, "{extra}/{total}");
    // every contact starts, and an ended contact ended once
    let per = |kind: &str| kinds.get(kind).copied().unwrap_or(0);
    assert!(per("CONTACT/ENDED") <= per("CONTACT/STARTED") + 200);
}

#[tokio::test]
async fn entities_filter_by_the_type_prefix() {
    let (sim, _) = sim_with(cfg(), NOW);
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let now = t(NOW);
    let start = now - Duration::hours(12);
    let types = |events: &[Value]| -> BTreeSet<String> {
        events
            .iter()
            .map(|v| v["type"].as_str().unwrap().to_string())
            .collect()
    };
    for (entities, prefixes) in [
        (vec!["AGENT_STATUS"], vec!["AGENT_STATUS/"]),
        (vec!["AGENT_AVAILABILITY"], vec!["AGENT_AVAILABILITY/"]),
        (vec!["CONTACT"], vec!["CONTACT/"]),
        (
            vec!["CONVERSATION"],
            vec!["CONVERSATION/", "CONVERSATION_ASSIGNEE/"],
        ),
        (
            vec!["AGENT_STATUS", "CONTACT"],
            vec!["AGENT_STATUS/", "CONTACT/"],
        ),
    ] {
        let a = get(&server, &sim, &query(start, None, &entities)).await;
        let got = types(&a.lines());
        assert!(!got.is_empty(), "{entities:?}");
        for kind in &got {
            assert!(
                prefixes.iter().any(|p| kind.starts_with(p)),
                "{kind} in {entities:?}"
            );
        }
        for p in &prefixes {
            assert!(got.iter().any(|k| k.starts_with(p)), "{p} in {entities:?}");
        }
        assert_eq!(a.lines(), sim.events_visible(&entities, start, now));
    }
    // the entities the simulator has nothing for answer nothing
    let none = ["CUSTOMER", "CUSTOMER_PROFILE", "PAYMENT_REQUEST", "TASK"];
    assert_eq!(
        get(&server, &sim, &query(start, None, &none)).await.body,
        ""
    );
}

#[test]
fn events_show_up_after_their_lag_and_stay() {
    let (sim, clock) = sim_with(cfg(), NOW);
    let now = t(NOW);
    let (start, end) = (now - Duration::hours(2), now);
    let truth = sim.events_truth(&ALL, start, end);
    assert!(truth.len() > 300);
    let mut lags = Vec::new();
    for v in truth.iter().step_by(7) {
        let lag = sim.event_lag(&id(v)).unwrap();
        assert!(
            lag >= Duration::zero() && lag < Duration::seconds(15),
            "{lag}"
        );
        lags.push(lag);
        let at = ts_of(v);
        set(&clock, at + lag - Duration::milliseconds(1));
        let before = sim.events_visible(&ALL, at, at + Duration::seconds(1));
        assert!(!before.contains(v), "visible before its lag");
        set(&clock, at + lag);
        let after = sim.events_visible(&ALL, at, at + Duration::seconds(1));
        assert!(after.contains(v), "visible once its lag has passed");
    }
    assert!(lags.iter().any(|l| *l < Duration::seconds(3)));
    assert!(lags.iter().any(|l| *l > Duration::seconds(12)));
    assert_eq!(sim.event_lag("not-an-event-id"), None);
    // the truth ignores the lag; what is served is always a part of it, all of it 15 s on
    set(&clock, end + Duration::seconds(5));
    let served = sim.events_visible(&ALL, start, end);
    assert!(served.iter().all(|v| truth.contains(v)));
    set(&clock, end + Duration::seconds(15));
    assert_eq!(
        sim.events_visible(&ALL, start, end),
        truth,
        "all after 15 s"
    );
}

#[test]
fn some_events_can_come_much_later() {
    let cfg = SimConfig {
        contacts_per_hour: 2000.0,
        ..cfg()
    }
    .with_late_events(0.1, Duration::minutes(10));
    let (sim, clock) = sim_with(cfg, NOW);
    let now = t(NOW);
    let (start, end) = (now - Duration::minutes(5), now);
    set(&clock, end + Duration::seconds(15));
    let truth = sim.events_truth(&ALL, start, end);
    let served: BTreeSet<String> = sim
        .events_visible(&ALL, start, end)
        .iter()
        .map(id)
        .collect();
    let late: Vec<&Value> = truth.iter().filter(|v| !served.contains(&id(v))).collect();
    let share = late.len() as f64 / truth.len() as f64;
    assert!((0.05..0.15).contains(&share), "{share}");
    for v in &late {
        assert!(sim.event_lag(&id(v)).unwrap() >= Duration::minutes(10));
    }
    set(&clock, end + Duration::minutes(10) + Duration::seconds(15));
    assert_eq!(sim.events_visible(&ALL, start, end), truth);
}

fn by_contact<'a>(events: &'a [Value], kind: &str) -> BTreeMap<&'a str, &'a Value> {
    events
        .iter()
        .filter(|v| v["type"] == kind)
        .map(|v| (v["content"]["contactId"].as_str().unwrap(), v))
        .collect()
}

#[test]
fn ended_events_carry_the_ids_of_the_work_session_rows() {
    let (sim, _) = sim_with(cfg(), NOW);
    let now = t(NOW);
    // work sessions anchored in the window, as of now minus the data delay
    let (start, end) = (t("2024-03-05T14:00:00Z"), t("2024-03-06T10:00:00Z"));
    let rows = sim
        .report_truth(&ReportQuery::WorkSessions { start, end })
        .rows;
    let events = sim.events_truth(&["CONTACT"], start - Duration::hours(9), now);
    let ended = by_contact(&events, "CONTACT/ENDED");
    let started = by_contact(&events, "CONTACT/STARTED");
    let accepted: BTreeSet<(String, String, String)> = events
        .iter()
        .filter(|v| v["type"] == "CONTACT/OFFER_ACCEPTED")
        .map(|v| {
            let field = |f: &str| v["content"][f].as_str().unwrap().to_string();
            let at = v["timestamp"].as_str().unwrap().to_string();
            (field("contactId"), field("agentId"), at)
        })
        .collect();
    let mut contacts: BTreeMap<&str, Vec<&TruthRow>> = BTreeMap::new();
    for r in &rows {
        contacts
            .entry(r.get("contact_session_id").unwrap())
            .or_default()
            .push(r);
    }
    let mut checked = 0;
    let mut multi = 0;
    for (contact, rows) in &contacts {
        let first = rows[0];
        let s = started[contact];
        assert_eq!(
            s["timestamp"],
            first.get("contact_session_created_at").unwrap()
        );
        let ended_at = first.get("contact_session_ended_at").unwrap();
        if ended_at.is_empty() {
            continue; // open as of the report's instant; its ENDED may exist by now
        }
        let e = ended[contact];
        let c = &e["content"];
        assert_eq!(e["timestamp"], ended_at);
        assert_eq!(c["conversationId"], first.get("conversation_id").unwrap());
        assert_eq!(c["customerId"], first.get("customer_id").unwrap());
        assert_eq!(c["channel"], first.get("channel").unwrap());
        let assignee = &c["context"]["assignee"];
        assert_eq!(assignee["inboxId"], first.get("inbox_id").unwrap());
        // the assignee at the end: the agent of the row accepted last (none on an
        // agent-less row)
        let last = rows
            .iter()
            .max_by_key(|r| r.get("agent_accepted_at").unwrap())
            .unwrap();
        match last.get("agent_id").unwrap() {
            "" => {
                assert!(assignee.get("agentId").is_none());
                assert_eq!(c["status"], "ABANDONED");
                assert_eq!(last.get("status"), Some("ABANDONED"));
            }
            agent => {
                assert_eq!(assignee["agentId"], agent);
                assert_eq!(c["status"], "ANSWERED");
            }
        }
        // every agent's accept is an OFFER_ACCEPTED at its agent_accepted_at
        for r in rows
            .iter()
            .filter(|r| !r.get("agent_id").unwrap().is_empty())
        {
            let key = (
                contact.to_string(),
                r.get("agent_id").unwrap().to_string(),
                r.get("agent_accepted_at").unwrap().to_string(),
            );
            assert!(accepted.contains(&key), "{key:?}");
        }
        multi += usize::from(rows.len() > 1);
        checked += 1;
    }
    assert!(checked > 500 && multi > 20, "{checked} {multi}");
    // and every contact that ended in the window (plus the report's extra minute) is a row
    let window_end = end + Duration::minutes(1);
    for (contact, e) in &ended {
        let at = ts_of(e);
        if at >= start && at < window_end {
            assert!(contacts.contains_key(contact), "{contact} ended at {at}");
        }
    }
}

#[test]
fn an_open_contact_ends_when_it_ends() {
    let (sim, clock) = sim_with(cfg(), NOW);
    let now = t(NOW);
    let m = &sim.model;
    let c = m
        .contacts_created(
            (now - Duration::hours(3)).timestamp_millis(),
            now.timestamp_millis(),
        )
        .find(|c| c.ended_ms > now.timestamp_millis() + 60_000)
        .expect("an open contact");
    let contact = m.id(model::Kind::Contact, c.n);
    let window = |sim: &Simulator| {
        sim.events_truth(
            &["CONTACT"],
            now - Duration::hours(4),
            now + Duration::hours(12),
        )
    };
    let kinds = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .filter(|v| v["content"]["contactId"] == contact.as_str())
            .map(|v| v["type"].as_str().unwrap().to_string())
            .collect()
    };
    let open = kinds(window(&sim));
    assert_eq!(open.first().map(String::as_str), Some("CONTACT/STARTED"));
    assert!(!open.iter().any(|k| k == "CONTACT/ENDED"), "{open:?}");
    let ended_at = DateTime::<Utc>::from_timestamp_millis(c.ended_ms).unwrap();
    set(&clock, ended_at - Duration::milliseconds(1));
    assert!(!kinds(window(&sim)).iter().any(|k| k == "CONTACT/ENDED"));
    set(&clock, ended_at);
    let events = window(&sim);
    let e = events
        .iter()
        .find(|v| v["content"]["contactId"] == contact.as_str() && v["type"] == "CONTACT/ENDED")
        .expect("ended once it ends");
    assert_eq!(ts_of(e), ended_at);
    let after = kinds(events);
    assert_eq!(
        &after[..open.len()],
        &open[..],
        "earlier events do not change"
    );
}

/// `(id column, type, timestamp)` of the rows of a timestamps report.
fn report_events(truth: &Truth, id_column: &str) -> BTreeSet<(String, String, String)> {
    truth
        .rows
        .iter()
        .map(|r| {
            (
                r.get(id_column).unwrap().to_string(),
                r.get("Event Type").unwrap().to_string(),
                r.get("Timestamp").unwrap().to_string(),
            )
        })
        .collect()
}

fn api_events(events: &[Value], id_field: &str) -> BTreeSet<(String, String, String)> {
    events
        .iter()
        .map(|v| {
            (
                v["content"][id_field].as_str().unwrap().to_string(),
                v["type"].as_str().unwrap().to_string(),
                v["timestamp"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn events_agree_with_the_timestamps_reports_and_agent_summary() {
    // the 5th is wholly past the data delay by then
    let (sim, _) = sim_with(cfg(), "2024-03-06T02:00:00Z");
    let (start, end) = (t("2024-03-05T00:00:00Z"), t("2024-03-06T00:00:00Z"));
    let day = start.date_naive();

    let contact = sim.metric_set_truth(CONTACT_TIMESTAMPS, day, day, "UTC");
    let mut events = sim.events_truth(&["CONTACT"], start, end);
    events.retain(|v| v["type"] != "CONTACT/OFFERED"); // not a report event
    assert_eq!(
        api_events(&events, "contactId"),
        report_events(&contact, "Contact ID")
    );

    let conversation = sim.metric_set_truth(CONVERSATION_TIMESTAMPS, day, day, "UTC");
    let events = sim.events_truth(&["CONVERSATION"], start, end);
    assert_eq!(
        api_events(&events, "conversationId"),
        report_events(&conversation, "Conversation ID")
    );

    let summary = sim.metric_set_truth(AGENT_SUMMARY, day, day, "UTC");
    let events = sim.events_truth(&["AGENT_STATUS"], start, end);
    for row in &summary.rows {
        let agent = row.get("Agent ID").unwrap();
        for (kind, column) in [
            ("AGENT_STATUS/LOGGED_IN", "Logged In"),
            ("AGENT_STATUS/LOGGED_OUT", "Logged Out"),
        ] {
            let n = events
                .iter()
                .filter(|v| v["type"] == kind && v["content"]["agentId"] == agent)
                .count();
            assert_eq!(n.to_string(), row.get(column).unwrap(), "{agent} {kind}");
        }
    }
}

#[tokio::test]
async fn the_per_second_limit_and_the_faults_apply() {
    let limited = SimConfig {
        long_open_fraction: 0.1,
        limits: Limits {
            per_second: 2,
            second: std::time::Duration::from_secs(60),
            ..Limits::default()
        },
        ..SimConfig::default()
    };
    let (sim, _) = sim_with(limited, NOW);
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let q = query(t(NOW) - Duration::minutes(30), None, &["CONTACT"]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(&server, &sim, &q).await);
    }
    assert_eq!(
        statuses.iter().map(|a| a.status).collect::<Vec<_>>(),
        [200, 200, 429]
    );
    assert!(statuses[2].head.contains("ratelimit-remaining-second: 0"));
    assert!(statuses[1].head.contains("ratelimit-remaining-second: 0"));
    assert_eq!(sim.stats().rate_limited, 1);

    let (sim, _) = sim_with(cfg(), NOW);
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let q = query(t(NOW) - Duration::hours(3), None, &ALL);
    let full = get(&server, &sim, &q).await.body;
    sim.faults().fail_events_next(2, 502);
    assert_eq!(get(&server, &sim, &q).await.status, 502);
    assert_eq!(get(&server, &sim, &q).await.status, 502);
    sim.faults()
        .rate_limit_events_next(1, RetryAfter::Seconds(2));
    let limited = get(&server, &sim, &q).await;
    assert_eq!(limited.status, 429);
    assert!(limited.head.contains("retry-after: 2"));
    sim.faults().update(|f| f.events_forbidden = true);
    assert_eq!(get(&server, &sim, &q).await.status, 403);
    sim.faults().update(|f| f.events_forbidden = false);
    // report faults leave events alone, and events faults the reports
    sim.faults().fail_next(1, 503);
    assert_eq!(get(&server, &sim, &q).await.status, 200);
    sim.faults().clear();

    sim.faults()
        .slow_events_next(1, std::time::Duration::from_millis(300));
    let began = std::time::Instant::now();
    assert_eq!(get(&server, &sim, &q).await.body, full);
    assert!(began.elapsed() >= std::time::Duration::from_millis(300));

    // a body cut mid-line: the whole lines before it count as served, the rest do not
    let (cut_sim, _) = sim_with(cfg(), NOW);
    let cut_server = cut_sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cut_at = full.len() / 2;
    cut_sim.faults().cut_events_next(1, cut_at);
    let cut = get(&cut_server, &cut_sim, &q).await;
    assert_eq!(cut.status, 200);
    assert_eq!(cut.body, full[..cut_at]);
    assert!(!cut.body.ends_with('\n'), "cut mid-line");
    let whole: BTreeSet<String> = cut
        .body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| id(&v))
        .collect();
    assert_eq!(cut_sim.served_event_ids(), whole);
    // the next read is whole again
    assert_eq!(get(&cut_server, &cut_sim, &q).await.body, full);
}
