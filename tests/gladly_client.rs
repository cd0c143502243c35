//! The Gladly client against the in-process simulator, through every fault.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use gladly_kafka::clock::ManualClock;
use gladly_kafka::gladly::{
    Client, ConversationLookup, GladlyError, GladlySettings, ReportRequest, Secret, AGENT_SUMMARY,
    CONTACT_EXPORT,
};
use gladly_kafka::report::Row;
use gladly_sim::{
    ConversationTruth, RetryAfter, SimConfig, SimServer, Simulator, BAD_CELL, EXTRA_COLUMN,
};

#[path = "it/support/sim.rs"]
mod sim;
use sim::{sim_clock, TruthExt};

const NOW: &str = "2024-03-05T15:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn start(cfg: SimConfig) -> (Arc<Simulator>, SimServer) {
    let clock = ManualClock::new(t(NOW));
    let sim = Simulator::new(cfg, sim_clock(clock));
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sim, server)
}

/// Fast settings for tests: generous pacing (limits are off unless a test turns them on),
/// tiny backoffs.
fn settings(server: &SimServer) -> GladlySettings {
    GladlySettings {
        host: server.url.clone(),
        email: "api@example.com".into(),
        token: Some(Secret::new("simulator-token")),
        requests_per_minute: 60_000,
        max_concurrent_reports: 2,
        requests_per_second: 10_000,
        read_timeout_secs: 5,
        connect_timeout_secs: 2,
        max_attempts: 5,
        initial_backoff_ms: 20,
        max_backoff_secs: 1,
        ..GladlySettings::default()
    }
}

fn ws() -> ReportRequest {
    ReportRequest::WorkSessions {
        start: t("2024-03-05T10:00:00Z"),
        end: t("2024-03-05T13:00:00Z"),
    }
}

fn metric(set: &str, level: Option<&str>, tz: &str) -> ReportRequest {
    ReportRequest::MetricSet {
        metric_set: set.into(),
        start: NaiveDate::from_ymd_opt(2024, 3, 4).unwrap(),
        end: NaiveDate::from_ymd_opt(2024, 3, 5).unwrap(),
        timezone: tz.into(),
        aggregation_level: level.map(str::to_string),
        filters: None,
    }
}

/// Rows as maps over the truth's columns (so reordered and extra columns compare by name).
fn project(rows: &[Row], columns: &[String]) -> Vec<BTreeMap<String, String>> {
    rows.iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| (c.clone(), r.get(c).expect("column present").to_string()))
                .collect()
        })
        .collect()
}

async fn fetch_all(client: &Client, req: &ReportRequest) -> Vec<Row> {
    let (rows, bad) = client
        .report(req)
        .await
        .unwrap()
        .collect_rows()
        .await
        .unwrap();
    assert!(bad.is_empty(), "no bad rows: {bad:?}");
    rows
}

async fn assert_matches_truth(sim: &Simulator, client: &Client, req: &ReportRequest) -> Vec<Row> {
    let rows = fetch_all(client, req).await;
    let (header, truth) = sim.truth(req);
    assert!(!truth.is_empty(), "{req:?} has rows");
    assert_eq!(
        project(&rows, header.names()),
        project(&truth, header.names()),
        "{req:?}"
    );
    rows
}

#[tokio::test]
async fn every_report_comes_out_exactly_as_the_truth() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    let client = Client::new(&settings(&server)).unwrap();
    let rows = assert_matches_truth(&sim, &client, &ws()).await;
    assert_eq!(rows[0].header().names()[0], "id");
    assert_eq!(rows[0].line(), 2);
    assert_matches_truth(
        &sim,
        &client,
        &metric(CONTACT_EXPORT, None, "America/Los_Angeles"),
    )
    .await;
    for level in ["halfHourly", "daily", "weekly", "monthly", "quarterly"] {
        assert_matches_truth(
            &sim,
            &client,
            &metric(AGENT_SUMMARY, Some(level), "Europe/Berlin"),
        )
        .await;
    }
    let stats = client.stats();
    assert_eq!(stats.retries.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(stats.responses().get(&200), Some(&7));
}

#[tokio::test]
async fn bom_quoting_extra_and_reordered_columns_still_give_the_truth() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    sim.faults().update(|f| {
        f.bom = true;
        f.quote_all = true;
        f.extra_column = true;
        f.reorder_columns = true;
    });
    let client = Client::new(&settings(&server)).unwrap();
    for req in [ws(), metric(CONTACT_EXPORT, None, "UTC")] {
        let rows = assert_matches_truth(&sim, &client, &req).await;
        let names = rows[0].header().names().to_vec();
        assert_eq!(names[1], EXTRA_COLUMN, "the unknown column is kept");
        assert_ne!(
            names[0],
            sim.truth(&req).0.names()[0],
            "columns were reordered"
        );
        let note = rows[3].get(EXTRA_COLUMN).unwrap();
        assert_eq!(note, "note 4, \"kept\"\nsecond line");
    }
}

#[tokio::test]
async fn server_errors_are_retried_with_growing_backoff() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    let client = Client::new(&GladlySettings {
        initial_backoff_ms: 40,
        max_backoff_secs: 5,
        max_attempts: 6,
        ..settings(&server)
    })
    .unwrap();
    sim.faults().fail_next(4, 503);
    assert_matches_truth(&sim, &client, &ws()).await;
    let retries = client.stats().recent_retries();
    let caps: Vec<u128> = retries.iter().map(|r| r.cap.as_millis()).collect();
    assert_eq!(caps, vec![40, 80, 160, 320], "backoff caps double");
    assert!(retries
        .iter()
        .all(|r| r.delay <= r.cap && r.retry_after.is_none()));
    // the simulator saw the attempts spaced by at least the chosen delays
    let arrivals = sim.stats().report_arrivals;
    assert_eq!(arrivals.len(), 5);
    for (gap, r) in arrivals.windows(2).zip(&retries) {
        assert!(
            gap[1] - gap[0] >= r.delay,
            "{:?} < {:?}",
            gap[1] - gap[0],
            r.delay
        );
    }
    assert_eq!(sim.stats().responses.get(&503), Some(&4));
    // 500 and 502 are retried the same way
    for status in [500, 502] {
        sim.faults().fail_next(2, status);
        fetch_all(&client, &ws()).await;
        assert_eq!(sim.stats().responses.get(&status), Some(&2));
    }
}

#[tokio::test]
async fn retries_are_bounded_then_a_typed_error() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    sim.faults().update(|f| {
        f.error_rate = 1.0;
        f.error_status = 502;
    });
    let client = Client::new(&GladlySettings {
        max_attempts: 3,
        ..settings(&server)
    })
    .unwrap();
    let err = client.report(&ws()).await.unwrap_err();
    match &err {
        GladlyError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(
                matches!(**last, GladlyError::Server { status: 502, .. }),
                "{last}"
            );
        }
        other => panic!("expected RetriesExhausted, got {other}"),
    }
    assert!(err.is_retryable(), "a later window retry may succeed");
    assert_eq!(sim.stats().report_requests(), 3);
}

async fn retry_after_is_honoured(form: RetryAfter, at_least: Duration) {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    let client = Client::new(&settings(&server)).unwrap();
    sim.faults().rate_limit_next(1, form);
    let began = Instant::now();
    fetch_all(&client, &ws()).await;
    let arrivals = sim.stats().report_arrivals;
    assert_eq!(arrivals.len(), 2);
    assert!(
        arrivals[1] - arrivals[0] >= at_least,
        "{:?}",
        arrivals[1] - arrivals[0]
    );
    assert!(began.elapsed() < Duration::from_secs(5));
    let retry = &client.stats().recent_retries()[0];
    assert!(
        retry.retry_after.is_some_and(|d| d >= at_least),
        "{retry:?}"
    );
    assert_eq!(
        Some(retry.delay),
        retry.retry_after,
        "the wait is the server's"
    );
    assert_eq!(
        client
            .stats()
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    // the backoff cap is 20 ms, so a 1 s wait can only come from Retry-After
    retry_after_is_honoured(RetryAfter::Seconds(1), Duration::from_secs(1)).await;
}

#[tokio::test]
async fn retry_after_as_http_date_is_honoured() {
    // HTTP-dates have whole seconds: "in 2 s" means at least 1 s from now
    retry_after_is_honoured(
        RetryAfter::HttpDate(Duration::from_secs(2)),
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test]
async fn nothing_is_retried_on_401_403_400() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    // 401: wrong token
    let wrong = Client::new(&GladlySettings {
        token: Some(Secret::new("wrong")),
        ..settings(&server)
    })
    .unwrap();
    let err = wrong.report(&ws()).await.unwrap_err();
    assert!(matches!(err, GladlyError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("gladly.email") && !err.is_retryable());
    assert!(
        !format!("{err:?}{err}").contains("wrong"),
        "the token is never printed"
    );
    assert_eq!(sim.stats().report_requests(), 1);

    // 403: the user lacks the API User permission
    let client = Client::new(&settings(&server)).unwrap();
    sim.faults().update(|f| f.forbidden = true);
    let err = client.report(&ws()).await.unwrap_err();
    assert!(matches!(err, GladlyError::Forbidden { .. }), "{err}");
    assert!(err.to_string().contains("API User permission"));
    assert_eq!(sim.stats().report_requests(), 2);
    sim.faults().clear();

    // 400: bad metric set, bad aggregation level, bad timezone, end before start
    let bad = [
        (metric("ContactExportReportV9", None, "UTC"), "metricSet"),
        (
            metric(AGENT_SUMMARY, Some("hourly"), "UTC"),
            "aggregationLevel",
        ),
        (metric(CONTACT_EXPORT, None, "Mars/Olympus"), "timezone"),
        (
            ReportRequest::WorkSessions {
                start: t("2024-03-05T10:00:00Z"),
                end: t("2024-03-05T09:00:00Z"),
            },
            "startAtTime",
        ),
    ];
    for (i, (req, attr)) in bad.iter().enumerate() {
        let err = client.report(req).await.unwrap_err();
        match &err {
            GladlyError::BadRequest { errors, .. } => {
                assert_eq!(errors[0].attr.as_deref(), Some(*attr), "{err}");
                assert!(err.to_string().contains(attr));
            }
            other => panic!("expected 400 for {req:?}, got {other}"),
        }
        assert!(!err.is_retryable());
        assert_eq!(
            sim.stats().report_requests(),
            3 + i as u64,
            "one request each"
        );
    }
    assert_eq!(
        client
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn a_404_names_the_host_setting_and_is_not_retried() {
    let app = axum::Router::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = hits.clone();
    let app = app.fallback(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { axum::http::StatusCode::NOT_FOUND }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Client::new(&GladlySettings {
        host: url,
        email: "api@example.com".into(),
        token: Some(Secret::new("x")),
        initial_backoff_ms: 10,
        ..GladlySettings::default()
    })
    .unwrap();
    let err = client.report(&ws()).await.unwrap_err();
    assert!(matches!(err, GladlyError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("gladly.host"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_cut_body_is_an_error_item_not_a_short_success() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    let client = Client::new(&settings(&server)).unwrap();
    let (_, truth) = sim.truth(&ws());
    sim.faults().cut_next(1, 20_000);
    let mut stream = client.report(&ws()).await.unwrap();
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(Ok(row)) => ok.push(row),
            Ok(Err(bad)) => panic!("the simulator sends no bad rows: {bad}"),
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(errors.len(), 1, "exactly one error, then the stream ends");
    assert!(
        matches!(errors[0], GladlyError::Body { .. }),
        "{}",
        errors[0]
    );
    assert!(errors[0].is_retryable());
    assert!(
        !ok.is_empty() && ok.len() < truth.len(),
        "{} of {}",
        ok.len(),
        truth.len()
    );
    // what did arrive is a prefix of the truth; a retry of the window gets everything
    let names = truth[0].header().names().to_vec();
    assert_eq!(project(&ok, &names), project(&truth[..ok.len()], &names));
    assert_matches_truth(&sim, &client, &ws()).await;
}

#[tokio::test]
async fn a_slow_first_byte_times_out_per_read_and_is_retried() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    let client = Client::new(&GladlySettings {
        read_timeout_secs: 1,
        ..settings(&server)
    })
    .unwrap();
    // slower than the read timeout: the first attempt times out, the retry succeeds
    sim.faults().slow_next(1, Duration::from_millis(2500));
    assert_matches_truth(&sim, &client, &ws()).await;
    let stats = client.stats();
    assert_eq!(
        stats
            .transport_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(stats.retries.load(std::sync::atomic::Ordering::Relaxed), 1);
    // slow but within the timeout: no retry
    sim.faults().slow_next(1, Duration::from_millis(400));
    fetch_all(&client, &ws()).await;
    assert_eq!(stats.retries.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test]
async fn the_row_cap_truncates_silently() {
    let (sim, server) = start(SimConfig {
        row_cap: Some(25),
        ..SimConfig::default().without_limits()
    })
    .await;
    let client = Client::new(&settings(&server)).unwrap();
    let rows = fetch_all(&client, &ws()).await;
    assert_eq!(rows.len(), 25, "a capped body looks like a complete one");
    assert!(sim.truth(&ws()).1.len() > 25);
}

#[tokio::test]
async fn bad_cells_are_counted_by_the_simulator() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    sim.faults().update(|f| f.bad_cell_rate = 0.1);
    let client = Client::new(&settings(&server)).unwrap();
    let mut bad = 0;
    for _ in 0..2 {
        let rows = fetch_all(&client, &ws()).await;
        bad += rows
            .iter()
            .filter(|r| r.get("contact_session_created_at") == Some(BAD_CELL))
            .count() as u64;
    }
    assert!(bad > 0);
    assert_eq!(sim.injected_bad_rows(), bad);
    assert_eq!(
        sim.bad_rows().keys.len() as u64,
        bad / 2,
        "the same rows each time"
    );
}

#[tokio::test]
async fn a_paced_run_of_30_requests_gets_no_429() {
    // Gladly's limits with a "minute" of one real second: 10 per second, 2 concurrent
    let cfg = SimConfig::default().with_scaled_limits(Duration::from_secs(1));
    let (sim, server) = start(cfg).await;
    // the client's default budget, scaled the same way: 8 per "minute", one at a time
    let client = Client::new(&GladlySettings {
        requests_per_minute: 8 * 60,
        max_concurrent_reports: 1,
        max_attempts: 1,
        ..settings(&server)
    })
    .unwrap();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let rows = client.report(&ws()).await.expect("no 429").collect_rows();
                    let (rows, bad) = rows.await.unwrap();
                    assert!(!rows.is_empty() && bad.is_empty());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let s = sim.stats();
    assert_eq!(s.report_requests(), 30);
    assert_eq!(s.rate_limited, 0);
    assert_eq!(s.responses.get(&200), Some(&30));
    assert!(s.max_concurrency <= 1);

    // control: the same limits do bite an unpaced client
    let greedy = Client::new(&GladlySettings {
        max_attempts: 1,
        ..settings(&server)
    })
    .unwrap();
    let mut limited = 0;
    for _ in 0..15 {
        if let Err(e) = greedy.report(&ws()).await {
            assert!(e.is_rate_limited(), "{e}");
            limited += 1;
        }
    }
    assert!(limited > 0, "the simulator enforces its limit");
}

#[tokio::test]
async fn the_simulator_limits_concurrency() {
    let cfg = SimConfig {
        contacts_per_hour: 3000.0,
        ..SimConfig::default().with_scaled_limits(Duration::from_secs(1))
    };
    let (sim, server) = start(cfg).await;
    let client = Client::new(&GladlySettings {
        max_concurrent_reports: 3,
        max_attempts: 1,
        ..settings(&server)
    })
    .unwrap();
    // hold two big bodies open (unread, larger than the socket buffers): the third request
    // is over the limit of 2
    let big = ReportRequest::WorkSessions {
        start: t("2024-03-04T00:00:00Z"),
        end: t("2024-03-05T13:00:00Z"),
    };
    let a = client.report(&big).await.unwrap();
    let b = client.report(&big).await.unwrap();
    let err = client.report(&ws()).await.unwrap_err();
    assert!(err.is_rate_limited(), "{err}");
    assert_eq!(sim.stats().max_concurrency, 2);
    drop((a, b));
}

/// Distinct conversation ids of a day of work-session rows.
async fn a_days_conversations(client: &Client) -> Vec<String> {
    let day = ReportRequest::WorkSessions {
        start: t("2024-03-04T00:00:00Z"),
        end: t("2024-03-05T00:00:00Z"),
    };
    let ids: std::collections::BTreeSet<String> = fetch_all(client, &day)
        .await
        .iter()
        .map(|r| r.get("conversation_id").unwrap().to_string())
        .collect();
    ids.into_iter().collect()
}

#[tokio::test]
async fn conversations_match_the_truth_deleted_ones_are_gone_and_merges_are_followed_once() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    let client = Client::new(&settings(&server)).unwrap();
    let ids = a_days_conversations(&client).await;
    let (mut found, mut deleted, mut moved) = (0, 0, 0);
    for id in &ids {
        let got = client.conversation(id).await.unwrap();
        match (sim.conversation(id), got) {
            (ConversationTruth::Deleted, ConversationLookup::Deleted) => deleted += 1,
            (ConversationTruth::Found(v), ConversationLookup::Found(c)) => {
                found += 1;
                assert_eq!(c.id, *id);
                assert_eq!(c.inbox_id.as_deref(), v["inboxId"].as_str());
                assert_eq!(c.status.as_deref(), v["status"].as_str());
                assert_eq!(c.created_at.as_deref(), v["createdAt"].as_str());
            }
            (ConversationTruth::Moved(to), got) => {
                moved += 1;
                match (sim.conversation(&to), got) {
                    (ConversationTruth::Found(v), ConversationLookup::Found(c)) => {
                        assert_eq!(c.id, to, "the body is the conversation it moved to");
                        assert_eq!(c.inbox_id.as_deref(), v["inboxId"].as_str());
                    }
                    (ConversationTruth::Deleted, ConversationLookup::Deleted) => {}
                    (truth, got) => panic!("{id} moved to {to}: {truth:?} vs {got:?}"),
                }
            }
            (truth, got) => panic!("{id}: {truth:?} vs {got:?}"),
        }
    }
    assert!(
        found > 0 && deleted > 0 && moved > 0,
        "{found} found, {deleted} deleted, {moved} moved"
    );
    let stats = sim.stats();
    assert_eq!(
        stats.conversation_gets,
        (ids.len() + moved) as u64,
        "one GET each, two for a move"
    );
    assert_eq!(stats.conversation_moves, moved as u64);
    assert_eq!(
        client
            .stats()
            .general_requests
            .load(std::sync::atomic::Ordering::Relaxed),
        stats.conversation_gets
    );
    let unauth = reqwest::Client::new()
        .get(format!("{}/api/v1/conversations/{}", server.url, ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);
    let mut bad = settings(&server);
    bad.token = Some(Secret::new("wrong"));
    let err = Client::new(&bad)
        .unwrap()
        .conversation(&ids[0])
        .await
        .unwrap_err();
    assert!(matches!(err, GladlyError::Unauthorized { .. }), "{err}");
}

/// Fires every id at once; returns the wall time.
async fn get_all_at_once(client: &Client, ids: &[String]) -> Duration {
    let started = Instant::now();
    let all = futures::future::join_all(ids.iter().map(|id| client.conversation(id))).await;
    for r in all {
        r.expect("every GET ends with an answer");
    }
    started.elapsed()
}

#[tokio::test]
async fn the_general_pacer_keeps_gets_under_the_per_second_limit_and_the_limit_bites() {
    // Gladly's 10 per second, with a "second" of 100 ms of real time
    let second = Duration::from_millis(100);
    let (sim, server) = start(SimConfig::default().with_scaled_second(second)).await;
    let ids: Vec<String> = a_days_conversations(&Client::new(&settings(&server)).unwrap())
        .await
        .into_iter()
        .take(60)
        .collect();
    // the default budget, 5 per second, in scaled seconds: 50 per real second
    let mut paced = settings(&server);
    paced.requests_per_second = 50;
    let took = get_all_at_once(&Client::new(&paced).unwrap(), &ids).await;
    let stats = sim.stats();
    assert_eq!(stats.rate_limited, 0, "no 429 under the budget: {stats:?}");
    assert!(
        took >= Duration::from_millis(1100),
        "60 GETs at 50/s took {took:?}"
    );

    // far over the limit: the simulator answers 429 and the client retries until it gets in
    let mut greedy = settings(&server);
    greedy.requests_per_second = 5000;
    greedy.max_attempts = 50;
    let client = Client::new(&greedy).unwrap();
    get_all_at_once(&client, &ids).await;
    let after = sim.stats();
    assert!(
        after.rate_limited > 0,
        "the per-second limit answered 429: {after:?}"
    );
    assert_eq!(
        client
            .stats()
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        after.rate_limited
    );
}

#[tokio::test]
async fn conversation_gets_are_retried_on_5xx_and_give_up_after_max_attempts() {
    let (sim, server) = start(SimConfig::default().without_limits()).await;
    let client = Client::new(&settings(&server)).unwrap();
    let ids = a_days_conversations(&client).await;
    sim.faults().update(|f| {
        f.conversation_error_next = 2;
        f.conversation_error_status = 502;
    });
    client
        .conversation(&ids[0])
        .await
        .expect("third attempt answers");
    assert_eq!(
        client
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    sim.faults().update(|f| f.conversation_error_next = 100);
    let err = client.conversation(&ids[0]).await.unwrap_err();
    assert!(
        matches!(err, GladlyError::RetriesExhausted { attempts: 5, .. }) && err.is_retryable(),
        "{err}"
    );
}

#[tokio::test]
async fn the_simulator_answers_gladlys_400_shape_and_401() {
    let (_sim, server) = start(SimConfig::default().without_limits()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/reports/work-session-events", server.url);
    let post = |body: serde_json::Value| {
        http.post(&url)
            .basic_auth("api@example.com", Some("simulator-token"))
            .json(&body)
            .send()
    };
    let resp = post(
        serde_json::json!({"startAtTime":"2024-03-05T10:00Z","endAtTime":"2024-03-05T09:00Z"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"errors":[{"attr":"startAtTime","code":"invalid","detail":"endAtTime must occur after startAtTime"}]})
    );
    let resp = post(serde_json::json!({"endAtTime":"2024-03-05T09:00Z"}))
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "blank");
    // offsets are accepted, like Gladly's own example
    let resp = post(serde_json::json!({"startAtTime":"2024-03-05T02:00-08:00","endAtTime":"2024-03-05T05:00-08:00"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let resp = http
        .post(&url)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
