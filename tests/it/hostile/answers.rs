//! 200s that are not the report, a body with an open quote, redirects, 400s: the window
//! fails with a reason naming what came back, and nothing of it is published.

use std::time::Duration;

use super::fixture::{body, header, row, Case};
use super::server::{Answer, Hostile};

const WITHIN: Duration = Duration::from_secs(60);

/// Runs `once` against `answer` (every request gets it) and checks the window failed with
/// `reason` in the error, the checkpoint unmoved and nothing published.
async fn refused(answer: Answer, reason: &[&str]) -> String {
    let case = Case::new(vec![answer]).await;
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 1, "{}", out.output());
    for r in reason {
        assert!(out.stderr.contains(r), "{r:?} in:\n{}", out.output());
    }
    assert!(
        out.stderr.contains("The checkpoint did not move"),
        "{}",
        out.output()
    );
    // retried like a 5xx: 2 requests per window attempt, 2 attempts
    assert_eq!(case.server.report_requests(), 4, "{}", out.output());
    case.assert_nothing_published(&out).await;
    out.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_1a_a_json_error_in_a_200_is_not_the_report() {
    let json = r#"{"errors":[{"attr":"startAtTime","code":"invalid","detail":"report generation failed, try again later"}]}"#;
    refused(
        Answer::with(200, "application/json", json),
        &[
            "is not the report",
            "Content-Type \"application/json\" is not CSV",
            "startAtTime: report generation failed, try again later (invalid)",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_1b_an_empty_200_is_not_the_report() {
    refused(
        Answer::csv(""),
        &[
            "is not the report",
            "an empty body, where the report's CSV header line was expected",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_1c_a_header_without_the_key_columns_is_not_the_report() {
    refused(
        Answer::csv("foo,bar,baz\n1,2,3\n"),
        &[
            "is not the report",
            "its header has no `contact_session_id` or `contact_session_ended_at` column",
            "\"foo\", \"bar\", \"baz\"",
            "(status 200, Content-Type \"text/csv; charset=utf-8\", body starts \"foo,bar,baz\\n1,2,3\\n\")",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_1d_a_maintenance_page_is_not_the_report_and_is_not_dead_lettered() {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Scheduled maintenance</title></head><body>{}</body></html>\n",
        "<p>We will be back soon.</p>\n".repeat(200)
    );
    let stderr = refused(
        Answer::with(200, "text/html; charset=utf-8", page.clone()),
        &[
            "is not the report",
            "an HTML page titled \"Scheduled maintenance\" (2000 bytes or more)",
        ],
    )
    .await;
    // named, with its first bytes at most: never dumped
    assert!(!stderr.contains(&page[..400]), "{stderr}");
    for line in stderr.lines() {
        assert!(line.len() < 2000, "{line}");
    }
    // the same page sent as text/csv: its first line is no report header either
    refused(
        Answer::csv(page),
        &[
            "is not the report",
            "its header has no `contact_session_id`",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_2_an_unterminated_quote_fails_the_window_instead_of_merging_rows() {
    let mut text = header() + &row(0, &[]).replace(",\n", ",\"inb1\n");
    assert!(text.ends_with(",\"inb1\n"), "row 0 ends with an open quote");
    for i in 1..200 {
        text += &row(i, &[]);
    }
    let case = Case::new(vec![Answer::csv(text)]).await;
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 1, "{}", out.output());
    assert!(
        out.stderr.contains("not well-formed CSV at line 2")
            && out.stderr.contains("ends inside a quoted field"),
        "{}",
        out.output()
    );
    case.assert_nothing_published(&out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_10_report_posts_follow_no_redirect_to_another_host() {
    let elsewhere = Hostile::start(vec![Answer::csv(body(5))]).await;
    let location = format!("{}/api/v1/reports/work-session-events", elsewhere.url);
    let case = Case::new(vec![
        Answer::with(307, "text/plain", "").header("location", location.clone())
    ])
    .await;
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 1, "{}", out.output());
    for want in [
        "Gladly answered 307 (a redirect to",
        location.as_str(),
        "report requests follow no redirects",
        "check gladly.host",
    ] {
        assert!(out.stderr.contains(want), "{want:?} in:\n{}", out.output());
    }
    assert_eq!(
        case.server.report_requests(),
        1,
        "a redirect is not retried"
    );
    assert_eq!(
        elsewhere.report_requests() + elsewhere.other_requests(),
        0,
        "nothing was sent to the other host"
    );
    case.assert_nothing_published(&out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_11b_a_400_names_the_work_session_fields_and_sums_up_an_html_body() {
    let page = format!(
        "<html><head><title>400 Bad Request</title></head><body>{}</body></html>",
        "<div>nginx</div>".repeat(300)
    );
    let case = Case::new(vec![Answer::with(400, "text/html", page)]).await;
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 1, "{}", out.output());
    assert!(
        out.stderr
            .contains("an HTML page titled \"400 Bad Request\""),
        "{}",
        out.output()
    );
    assert!(out.stderr.contains("startAtTime"), "{}", out.output());
    for absent in [
        "<div>",
        "metric set",
        "metric_set",
        "aggregation",
        "timezone",
    ] {
        assert!(
            !out.stderr.contains(absent),
            "{absent:?} in:\n{}",
            out.output()
        );
    }
    assert_eq!(case.server.report_requests(), 1, "a 400 is not retried");
    case.assert_nothing_published(&out).await;
}
