//! Answers that take too long or hide why they failed: an overall deadline per request,
//! `Retry-After` within `gladly.max_backoff_secs`, every wait ended by SIGTERM, a forced exit
//! that is not a success, errors that name their cause, and a capped minute named as one.

use std::time::{Duration, Instant};

use super::fixture::{body, header, Case, Running};
use super::server::{paced, trickle, Answer};

const WITHIN: Duration = Duration::from_secs(60);

/// Waits until the server has seen a report request (the binary is past its setup).
async fn until_requested(case: &Case, running: &Running) {
    until(running, "a report request", || {
        case.server.report_requests() > 0
    })
    .await;
}

/// Polls `seen` until it holds (at most a minute).
async fn until(running: &Running, what: &str, seen: impl Fn() -> bool) {
    let started = Instant::now();
    while !seen() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {what}:\n{}",
            running.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM once the binary is waiting on Gladly, and returns how it ended and how long
/// after the signal.
async fn terminate_while_waiting(case: &Case) -> (super::fixture::Outcome, Duration) {
    let mut running = case.spawn(&["once"]);
    // the binary is now in the request (a trickling body) or in the wait before its retry
    until_requested(case, &running).await;
    running.signal("TERM");
    let signalled = Instant::now();
    let out = tokio::task::spawn_blocking(move || running.wait(WITHIN))
        .await
        .unwrap();
    (out, signalled.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_6a_a_trickling_answer_ends_at_the_request_deadline() {
    let mut case = Case::new(vec![Answer::streamed(trickle(
        b"id,contact_session".to_vec(),
        Duration::from_millis(500),
    ))])
    .await;
    case.set("gladly.read_timeout_secs", 2)
        .set("gladly.request_deadline_secs", 3)
        .set("gladly.max_attempts", 1)
        .set("pipeline.window_attempts", 1);
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 1, "{}", out.output());
    assert!(
        out.stderr.contains("no complete answer from ")
            && out
                .stderr
                .contains("within gladly.request_deadline_secs = 3"),
        "{}",
        out.output()
    );
    assert!(out.took < Duration::from_secs(30), "{:?}", out.took);
    case.assert_nothing_published(&out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_6b_sigterm_ends_a_trickling_answer_at_once() {
    let mut case = Case::new(vec![Answer::streamed(trickle(
        b"id,contact_session".to_vec(),
        Duration::from_millis(500),
    ))])
    .await;
    case.set("gladly.read_timeout_secs", 5)
        .set("gladly.request_deadline_secs", 600);
    let (out, after) = terminate_while_waiting(&case).await;
    assert_eq!(out.code(), 0, "a clean stop: {}", out.output());
    assert!(
        out.stdout.contains("work_sessions: interrupted"),
        "{}",
        out.output()
    );
    assert!(
        after < Duration::from_secs(5),
        "stopped {after:?} after SIGTERM"
    );
    case.assert_nothing_published(&out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_6c_a_forced_exit_after_the_grace_period_is_not_a_success() {
    let mut case = Case::new(vec![Answer::csv(body(1))]).await;
    // a registry that never answers keeps the binary in its setup, which ignores the signal
    let hang = format!("{}/hang", case.server.url);
    case.set("registry.url", hang)
        .set("pipeline.shutdown_grace_secs", 1);
    let mut running = case.spawn(&["once"]);
    until(&running, "registry request", || {
        case.server.hanging_requests() > 0
    })
    .await;
    running.signal("TERM");
    let out = tokio::task::spawn_blocking(move || running.wait(WITHIN))
        .await
        .unwrap();
    assert_eq!(out.code(), 3, "{}", out.output());
    assert!(
        out.stderr
            .contains("did not stop within pipeline.shutdown_grace_secs"),
        "{}",
        out.output()
    );
    assert!(out.took < Duration::from_secs(20), "{:?}", out.took);
}

fn too_many() -> Answer {
    Answer::with(429, "text/plain", "slow down").header("retry-after", "1000000000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_7a_retry_after_is_capped_by_max_backoff_secs() {
    let mut case = Case::new(vec![too_many(), too_many(), Answer::csv(body(3))]).await;
    case.set("gladly.max_attempts", 3);
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 0, "{}", out.output());
    // Retry-After is read as at most an hour; the wait is gladly.max_backoff_secs
    assert!(
        out.stderr.contains("delay_ms=1000 retry_after_secs=3600"),
        "{}",
        out.output()
    );
    assert!(out.took < Duration::from_secs(30), "{:?}", out.took);
    assert_eq!(case.server.report_requests(), 3);
    assert_eq!(case.records().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_7b_sigterm_ends_a_retry_after_wait() {
    let mut case = Case::new(vec![too_many()]).await;
    case.set("gladly.max_backoff_secs", 3600)
        .set("gladly.max_attempts", 5);
    let (out, after) = terminate_while_waiting(&case).await;
    assert_eq!(out.code(), 0, "{}", out.output());
    assert!(
        out.stdout.contains("work_sessions: interrupted"),
        "{}",
        out.output()
    );
    assert!(
        after < Duration::from_secs(5),
        "stopped {after:?} after SIGTERM"
    );
    assert_eq!(case.server.report_requests(), 1);
    case.assert_nothing_published(&out).await;
}

/// Runs `once` against `answer` with one attempt and returns its stderr (it must fail).
async fn failing(answer: Answer, read_timeout: i64) -> String {
    let mut case = Case::new(vec![answer]).await;
    case.set("gladly.read_timeout_secs", read_timeout)
        .set("gladly.max_attempts", 1)
        .set("pipeline.window_attempts", 1);
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 1, "{}", out.output());
    case.assert_nothing_published(&out).await;
    out.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_9_errors_name_their_cause() {
    // a response header larger than the client takes
    let big = Answer::csv(body(1)).header("x-padding", "p".repeat(500 * 1024));
    let stderr = failing(big, 10).await;
    eprintln!("CAUSE {stderr}");
    assert!(
        stderr.contains("error sending request for url") && stderr.contains("too large"),
        "{stderr}"
    );
    // a body that stops arriving
    let stalled = Answer::streamed(paced(
        vec![header().into_bytes()],
        Duration::from_secs(4),
        false,
    ));
    let stderr = failing(stalled, 1).await;
    eprintln!("CAUSE {stderr}");
    assert!(
        stderr.contains("error decoding response body: ") && stderr.contains("timed out"),
        "{stderr}"
    );
    // a body cut mid-row
    let cut = Answer::streamed(paced(
        vec![body(5).into_bytes(), b"1,cs".to_vec()],
        Duration::from_millis(10),
        true,
    ));
    let stderr = failing(cut, 10).await;
    eprintln!("CAUSE {stderr}");
    let at = stderr
        .find("error decoding response body: ")
        .unwrap_or_else(|| panic!("{stderr}"));
    let cause = &stderr[at + "error decoding response body: ".len()..];
    assert!(
        cause.len() > 10 && !cause.starts_with('\n'),
        "a cause follows: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_11a_a_capped_minute_is_named_as_one() {
    let mut case = Case::new(vec![Answer::csv(body(3))]).await;
    case.set("reports.work_sessions.start", "2024-03-14T11:59:00Z")
        .set("pipeline.row_cap", 2);
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 1, "{}", out.output());
    assert!(
        out.stderr.contains(
            "Gladly may have truncated it and a one-minute work-session window cannot be split further"
        ) && out.stderr.contains("pipeline.row_cap = 2"),
        "{}",
        out.output()
    );
    assert!(!out.stderr.contains("single day"), "{}", out.output());
    case.assert_nothing_published(&out).await;
}
