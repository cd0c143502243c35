//! Crash safety and fencing with the real binary and the real broker: a backfill crashed at
//! every named crash point (`gladly_kafka::fault`: after the transaction begins, after the
//! n-th record, just before and just after the commit; which hit of each comes from a printed
//! seed) and restarted each time still ends equal to the truth and skips no window, in both
//! delivery modes; exactly-once never shows a read_committed consumer a key twice within one
//! window's transaction, at-least-once publishes the crashed window again. Two instances with
//! one config: the newer publishes, the older stops with a message saying it was fenced.

use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Duration as Span;
use gladly_kafka::fault;
use gladly_kafka::pipeline::checkpoint::Scope;
use gladly_kafka::pipeline::PipelineError;
use gladly_kafka::report::Report;
use rand::{Rng, SeedableRng};

use support::pipeline::{t0, world, World};
use support::service;

fn backfill_command(w: &World, config: &std::path::Path, from: &str, to: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gladly-kafka"));
    cmd.arg("--config")
        .arg(config)
        .args([
            "backfill",
            "--report",
            "work_sessions",
            "--from",
            from,
            "--to",
            to,
        ])
        .env("GLADLY_KAFKA__GLADLY__TOKEN", w.sim.config().token.clone())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Runs `cmd` to its end; its exit status and stderr.
fn exit_and_stderr(mut cmd: Command) -> (std::process::ExitStatus, String) {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .expect("the binary runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A backfill crashed at every named point in turn (which hit of each is drawn from a printed
/// seed), restarted after each crash, then run to its end, in `delivery` mode: the topic
/// equals the truth, and the backfill's checkpoint says complete at the range's end. Returns
/// the read records.
async fn crash_at_every_point(delivery: &str) -> (World, Vec<support::kafka::ReadRecord>) {
    let w = world(30.0).await;
    // the simulator's clock stands two days after the backfilled range: everything has ended
    w.clock.set(t0() + Span::days(5));
    let mut table = service::config_table(&w);
    service::set(&mut table, "reports.work_sessions.max_window_minutes", 60);
    service::set(&mut table, "kafka.delivery", delivery);
    let config = service::write_config(&table);
    let (from, to) = ("2024-03-11", "2024-03-13");
    let seed = support::seed(&format!("pipeline_crash ({delivery})"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut hit = Vec::new();
    for point in fault::POINTS {
        // the window of the run it crashes in (each run resumes after the last committed
        // window), or for after-record the record
        let n: u32 = match point {
            "after-record" => rng.gen_range(1..=60),
            _ => rng.gen_range(1..=3),
        };
        let at = format!("{point}@{n}");
        let mut cmd = backfill_command(&w, config.path(), from, to);
        cmd.env(fault::CRASH_AT, &at);
        let (status, stderr) = tokio::task::spawn_blocking(move || exit_and_stderr(cmd))
            .await
            .unwrap();
        assert!(
            stderr.contains(&format!("crash point {at}: aborting")) && !status.success(),
            "the run crashed at {at} ({status}):\n{stderr}"
        );
        hit.push(at);
    }
    eprintln!("{delivery}: crashed at {hit:?}");
    assert_eq!(hit.len(), fault::POINTS.len(), "every point was hit");
    let mut cmd = backfill_command(&w, config.path(), from, to);
    cmd.env_remove(fault::CRASH_AT);
    let (status, stderr) = tokio::task::spawn_blocking(move || exit_and_stderr(cmd))
        .await
        .unwrap();
    assert!(
        status.success(),
        "the last run completes the backfill:\n{stderr}"
    );

    // equal to the truth of the whole range (end inclusive: the day after `to` at 00:00)
    let topic = w.config.topics.report_topic(Report::WORK_SESSIONS);
    let records = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    let truth_end = t0() + Span::days(3);
    let live = converged_against(&w, t0(), truth_end).await;
    assert!(live > 100, "{live} keys");

    // no window skipped: the backfill checkpoint says complete at the range's end
    let cps = gladly_kafka::pipeline::checkpoint::read_checkpoints(
        &w.config.kafka,
        &w.config.topics.checkpoint_topic(),
        Duration::from_secs(30),
    )
    .unwrap();
    let key = gladly_kafka::pipeline::checkpoint::checkpoint_key(
        Report::WORK_SESSIONS,
        &Scope::Backfill {
            from: from.into(),
            to: to.into(),
        },
    );
    let cp = cps.get(&key).expect("the backfill checkpoint");
    assert!(cp.complete, "{cp:?}");
    assert_eq!(
        cp.position,
        gladly_kafka::pipeline::window::Position::Instant(truth_end)
    );
    (w, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_crashed_at_every_named_point_loses_and_duplicates_nothing_exactly_once() {
    let (_w, records) = crash_at_every_point("exactly-once").await;
    // no key twice within one window's transaction: a crashed transaction is invisible
    // (run id, window start, fetch time) name one window's transaction
    type Txn = (Vec<u8>, Vec<u8>, Vec<u8>);
    let mut per_txn: BTreeMap<Txn, HashSet<Vec<u8>>> = BTreeMap::new();
    for r in &records {
        let h = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let txn = (
            h("gladly.run_id"),
            h("gladly.window.start"),
            h("gladly.fetched_at"),
        );
        let fresh = per_txn
            .entry(txn)
            .or_default()
            .insert(r.key.clone().unwrap());
        assert!(fresh, "a key appears twice in one window's transaction");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_crashed_at_every_named_point_loses_nothing_at_least_once() {
    // duplicates allowed: a window whose checkpoint was not written is published again
    let (_w, records) = crash_at_every_point("at-least-once").await;
    let keys: HashSet<&Vec<u8>> = records.iter().filter_map(|r| r.key.as_ref()).collect();
    eprintln!(
        "at-least-once: {} records for {} keys",
        records.len(),
        keys.len()
    );
    // the run crashed before its checkpoint had every record of its window acknowledged: the
    // next run published that window again
    assert!(
        records.len() > keys.len(),
        "the window crashed before its checkpoint was published again"
    );
}

/// Compares the read records (last value per key) with the truth of `[start, end]`.
async fn converged_against(
    w: &World,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> usize {
    // the hand oracle (support::oracle): the simulator's rows mapped by test code, every field
    // compared and the window metadata checked, not our Converter on both sides
    let d = w
        .differences_from(
            Report::WORK_SESSIONS,
            &gladly_kafka::gladly::ReportRequest::WorkSessions { start, end },
        )
        .await;
    assert!(d.none(), "the topic equals the truth: {d}");
    d.truth_keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_fences_the_first_which_stops_with_a_clear_message() {
    let w = world(10.0).await;
    w.clock.set(t0() + Span::hours(6));
    let first = w.pipeline().await;
    let second = w.pipeline().await;
    let mut old = first.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    first
        .poll(&mut old)
        .await
        .expect("the first instance publishes");
    let mut new = second
        .open(Report::WORK_SESSIONS, Scope::Run)
        .await
        .unwrap();
    w.clock.advance(Span::hours(1));
    let err = first
        .poll(&mut old)
        .await
        .expect_err("the older instance is fenced");
    assert!(matches!(err, PipelineError::Fenced { .. }), "{err:?}");
    assert!(err.is_fatal(), "a fenced instance stops");
    let msg = err.to_string();
    assert!(
        msg.contains("another instance") && msg.contains("transactional id"),
        "{msg}"
    );
    let s = second
        .poll(&mut new)
        .await
        .expect("the newer instance keeps publishing");
    assert!(s.windows > 0);
}
