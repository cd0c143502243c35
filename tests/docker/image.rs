//! The image, run with `--network host` against the live stack and the in-process simulator,
//! configured from the environment only (no file mounted): it answers `/health/ready` and
//! `/metrics`, publishes the simulator's data (read back from the topics, compared with the
//! simulator's truth), runs as uid 10001, and `docker stop` (SIGTERM) in the middle of a cycle
//! leaves no half-written window: the committed checkpoint and the topic agree.

use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Utc};
use gladly_kafka::clock::Clock;
use gladly_kafka::gladly::ReportRequest;
use gladly_kafka::pipeline::checkpoint::{checkpoint_key, read_checkpoints, Scope};
use gladly_kafka::pipeline::window::Position;
use gladly_kafka::report::Report;

use super::engine::{self, Container};
use super::support;
use support::pipeline::{t0, world, World};
use support::service::{self, Scrape};

/// The config `table` as `GLADLY_KAFKA__SECTION__KEY` variables, the simulator's token and
/// `observe.listen` on `listen`.
fn environment(w: &World, table: &toml::Table, listen: &str) -> Vec<(String, String)> {
    fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
        for (k, v) in table {
            let name = format!("{prefix}__{}", k.to_ascii_uppercase());
            match v {
                toml::Value::Table(t) => flatten(&name, t, out),
                toml::Value::String(s) => out.push((name, s.clone())),
                other => out.push((name, other.to_string())),
            }
        }
    }
    let mut env = Vec::new();
    flatten("GLADLY_KAFKA", table, &mut env);
    env.retain(|(k, _)| k != "GLADLY_KAFKA__OBSERVE__LISTEN");
    env.push(("GLADLY_KAFKA__OBSERVE__LISTEN".into(), listen.into()));
    env.push((
        "GLADLY_KAFKA__GLADLY__TOKEN".into(),
        w.sim.config().token.clone(),
    ));
    env.push(("RUST_LOG".into(), "info".into()));
    env
}

/// The image's `run` at the world's clock, configured by `table`; returns the container and
/// its metrics address.
fn run(w: &World, table: &toml::Table) -> (Container, String) {
    let listen = service::free_addr().to_string();
    let now = w
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let env = environment(w, table, &listen);
    let c = Container::run(&env, engine::image(), &["--now", &now, "run"]);
    (c, listen)
}

/// `GET http://addr/path`: status and body, `None` while nothing answers.
async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// Polls `/metrics` until `done` holds for a scrape, and returns it; panics with the
/// container's log if it exits or `within` passes.
async fn scrape_until(
    c: &Container,
    addr: &str,
    within: Duration,
    done: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let started = Instant::now();
    loop {
        assert!(c.running(), "the container exited:\n{}", c.logs());
        if let Some((200, body)) = get(addr, "/metrics").await {
            let s = Scrape::parse(&body);
            let failed = s.value("gladly_kafka_cycles_total", &[("result", "failed")]);
            assert_eq!(failed, 0.0, "a cycle failed:\n{}", c.logs());
            if done(&s) {
                return s;
            }
        }
        assert!(
            started.elapsed() < within,
            "no such scrape within {within:?}:\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_serves_health_and_metrics_publishes_the_simulators_data_as_uid_10001() {
    let w = world(20.0).await;
    w.clock.set(t0() + Span::hours(6));
    let (c, addr) = run(&w, &service::config_table(&w));
    let s = scrape_until(&c, &addr, Duration::from_secs(180), |s| {
        Report::BUILT_IN.iter().all(|r| {
            s.value(
                "gladly_kafka_cycles_total",
                &[("report", r.name()), ("result", "ok")],
            ) >= 1.0
        })
    })
    .await;
    assert!(s.value("gladly_kafka_transactions_committed_total", &[]) > 0.0);
    let (status, body) = get(&addr, "/health/ready").await.expect("health answers");
    assert_eq!((status, body.trim()), (200, "ready"), "{}", c.logs());
    assert_eq!(get(&addr, "/health/live").await.unwrap().0, 200);

    // the topics, read back on their own, hold the simulator's truth
    for report in Report::BUILT_IN {
        let keys = w.assert_converged(report).await;
        assert!(keys > 10, "{report}: {keys} keys");
    }

    // the service's process (seen from the host) runs as the image's unprivileged user
    let pid = c.inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("a Uid line");
    assert!(
        uids.split_whitespace().all(|u| u == "10001"),
        "real, effective, saved and fs uid are 10001: {uids}"
    );
    assert_eq!(c.inspect("{{.Config.User}}"), "10001:10001");

    assert_eq!(c.stop(30), 0, "SIGTERM exits 0:\n{}", c.logs());
}

/// The instant a record's `gladly.window.end` header names.
fn window_end(r: &support::kafka::ReadRecord) -> DateTime<Utc> {
    let (_, v) = r
        .headers
        .iter()
        .find(|(k, _)| k == "gladly.window.end")
        .expect("every record names its window");
    let text = String::from_utf8(v.clone().expect("a value")).unwrap();
    DateTime::parse_from_rfc3339(&text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_stop_in_the_middle_of_a_cycle_leaves_no_half_written_window() {
    let w = world(30.0).await;
    // six days of hour-long windows, each request answered after 150 ms: the first cycle
    // takes half a minute at least, and the stop lands inside it
    w.clock.set(t0() + Span::days(5));
    w.sim
        .faults()
        .slow_next(u32::MAX, Duration::from_millis(150));
    let mut table = service::config_table(&w);
    service::set(&mut table, "reports.work_sessions.max_window_minutes", 60);
    service::set(&mut table, "reports.contacts.enabled", false);
    service::set(&mut table, "reports.agent_summary.enabled", false);
    let (c, addr) = run(&w, &table);
    scrape_until(&c, &addr, Duration::from_secs(120), |s| {
        s.value("gladly_kafka_transactions_committed_total", &[]) >= 3.0
    })
    .await;
    assert_eq!(c.stop(30), 0, "SIGTERM is a clean stop:\n{}", c.logs());

    // the committed checkpoint: somewhere inside the cycle
    let start = w.config.reports.work_sessions.start.unwrap();
    let end = w.clock.now();
    let cps = read_checkpoints(
        &w.config.kafka,
        &w.config.topics.checkpoint_topic(),
        Duration::from_secs(30),
    )
    .unwrap();
    let cp = cps
        .get(&checkpoint_key(Report::WORK_SESSIONS, &Scope::Run))
        .expect("a committed checkpoint");
    let Position::Instant(at) = cp.position else {
        panic!("an instant: {cp:?}")
    };
    assert!(
        start < at && at < end - Span::hours(1),
        "the stop interrupted the cycle: {at}"
    );

    // no record of a window past it, and every window up to it whole: the topic equals the
    // truth of [start, checkpoint]
    let topic = w.config.topics.report_topic(Report::WORK_SESSIONS);
    let records = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    assert!(!records.is_empty());
    let last = records.iter().map(window_end).max().unwrap();
    assert!(last <= at, "a record of a window ending {last}, after {at}");
    let d = w
        .differences_from(
            Report::WORK_SESSIONS,
            &ReportRequest::WorkSessions { start, end: at },
        )
        .await;
    assert!(d.none(), "topic != truth up to the checkpoint: {d}");
    assert!(d.truth_keys > 10, "{d}");
}
