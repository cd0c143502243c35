//! The simulator's truth for what a run published, and the comparison of a topic with it.
//!
//! The truth is one report request posted straight to the `gladly-kafka simulate` subprocess
//! (reqwest, Basic auth), its CSV parsed with the `csv` crate and each row mapped by hand with
//! [`crate::oracle`]: nothing of `src/gladly`, `src/records` or `src/pipeline` is used, so a
//! request, parse or conversion bug in the service cannot agree with itself here. The request
//! is built from the config table [`fixture::config`] wrote, following docs/gladly-api.md.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use serde_json::{json, Value};

use crate::fixture::{self, ReadRecord};
use crate::oracle;

/// Gladly's defaults for what the config table leaves out (docs/configuration.md): dates in
/// UTC, Agent Summary in daily buckets, and the metric sets Gladly documents today.
const DEFAULT_TIMEZONE: &str = "UTC";
const DEFAULT_AGGREGATION_LEVEL: &str = "daily";
const CONTACT_EXPORT: &str = "ContactExportReportV3";
const AGENT_SUMMARY: &str = "AgentSummaryV2";

/// What a run published of one report.
#[derive(Debug, Clone)]
pub enum Range {
    /// Work sessions: `startAtTime`/`endAtTime` (minute precision; Gladly adds a minute).
    Instants(DateTime<Utc>, DateTime<Utc>),
    /// A date report: `startAt`/`endAt` (both inclusive) in `timezone`.
    Dates {
        start: NaiveDate,
        end: NaiveDate,
        timezone: chrono_tz::Tz,
    },
}

fn section<'a>(table: &'a toml::Table, report: &str) -> Option<&'a toml::Table> {
    table
        .get("reports")
        .and_then(|r| r.get(report))
        .and_then(|s| s.as_table())
}

fn setting<'a>(table: &'a toml::Table, report: &str, key: &str) -> Option<&'a str> {
    section(table, report)
        .and_then(|s| s.get(key))
        .and_then(|v| v.as_str())
}

/// The range `once` at `now` publishes with `table` on its first run (no checkpoint, and
/// re-read tiers never reach before `start`): work sessions from `start` to `now` floored to
/// the minute; a date report from `start` to `now`'s date in the report's timezone.
pub fn once_range(table: &toml::Table, report: &str, now: DateTime<Utc>) -> Range {
    let start = setting(table, report, "start")
        .unwrap_or_else(|| panic!("the config sets reports.{report}.start"));
    if report == "work_sessions" {
        let start = DateTime::parse_from_rfc3339(start)
            .unwrap_or_else(|e| panic!("reports.work_sessions.start {start:?}: {e}"))
            .with_timezone(&Utc);
        return Range::Instants(floor_minute(start), floor_minute(now));
    }
    let timezone: chrono_tz::Tz = setting(table, report, "timezone")
        .unwrap_or(DEFAULT_TIMEZONE)
        .parse()
        .expect("an IANA timezone");
    Range::Dates {
        start: start.parse().expect("a date"),
        end: now.with_timezone(&timezone).date_naive(),
        timezone,
    }
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0).unwrap().with_nanosecond(0).unwrap()
}

/// The truth of one report: every row the simulator answers for the range, mapped by the
/// oracle, by key (as JSON text; a key sent twice keeps its last row).
#[derive(Debug)]
pub struct Truth {
    pub report: String,
    /// What was asked, for messages.
    pub request: Value,
    pub rows: usize,
    pub expected: BTreeMap<String, BTreeMap<String, Value>>,
    /// The report's timezone for the date reports (window checks), `None` for work sessions.
    pub date_tz: Option<chrono_tz::Tz>,
}

/// Asks the simulator at `sim_url` for `report` over `range`, in one request, the way
/// docs/gladly-api.md documents it, with the timezone, aggregation level and metric set
/// `table` sets (else Gladly's defaults).
pub async fn fetch(sim_url: &str, table: &toml::Table, report: &str, range: &Range) -> Truth {
    let minute = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%MZ").to_string();
    let day = |d: &NaiveDate| d.format("%Y-%m-%d").to_string();
    let mut level = String::new();
    let (path, body, date_tz) = match (report, range) {
        ("work_sessions", Range::Instants(start, end)) => (
            "/api/v1/reports/work-session-events",
            json!({"startAtTime": minute(start), "endAtTime": minute(end)}),
            None,
        ),
        (
            "contacts" | "agent_summary",
            Range::Dates {
                start,
                end,
                timezone,
            },
        ) => {
            let default = if report == "contacts" {
                CONTACT_EXPORT
            } else {
                AGENT_SUMMARY
            };
            let metric_set = setting(table, report, "metric_set").unwrap_or(default);
            let mut body = json!({
                "metricSet": metric_set,
                "startAt": day(start),
                "endAt": day(end),
                "timezone": timezone.name(),
            });
            if report == "agent_summary" {
                level = setting(table, report, "aggregation_level")
                    .unwrap_or(DEFAULT_AGGREGATION_LEVEL)
                    .to_string();
                body["aggregationLevel"] = json!(level);
            }
            ("/api/v1/reports", body, Some(*timezone))
        }
        _ => panic!("{report} over {range:?}: not a built-in report's range"),
    };
    let response = reqwest::Client::new()
        .post(format!("{sim_url}{path}"))
        .basic_auth(fixture::SIM_EMAIL, Some(fixture::SIM_TOKEN))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the simulator's truth for {report} ({body}): {e}"));
    let status = response.status();
    let text = response.text().await.expect("the truth's body");
    assert!(
        status.is_success(),
        "the simulator answered {status} to {path} {body}: {text}"
    );
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let columns: Vec<String> = csv
        .headers()
        .expect("the truth's header")
        .iter()
        .map(str::to_string)
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut expected = BTreeMap::new();
    let mut rows = 0;
    for record in csv.records() {
        let record = record.unwrap_or_else(|e| panic!("the truth of {report}: {e}"));
        let cells: Vec<String> = record.iter().map(str::to_string).collect();
        let (key, _, fields) = oracle::expected(report, &columns, &cells, &level);
        expected.insert(key.to_string(), fields);
        rows += 1;
    }
    Truth {
        report: report.to_string(),
        request: json!({"path": path, "body": body}),
        rows,
        expected,
        date_tz,
    }
}

/// How `records` (a topic read back from offset 0) differ from `truth`
/// ([`oracle::compare`]).
pub fn differences(truth: &Truth, records: &[ReadRecord]) -> oracle::Differences {
    let name = &truth.report;
    let records = records.iter().map(|r| {
        let key = r
            .key
            .as_deref()
            .unwrap_or_else(|| panic!("{name}: a record without a key"));
        (key, r.value.as_deref(), r.timestamp)
    });
    oracle::compare(name, &truth.expected, records, truth.date_tz)
}

/// Asserts that `topic` (its `records`) equals `truth`; returns the number of keys compared.
pub fn assert_topic_is_truth(topic: &str, truth: &Truth, records: &[ReadRecord]) -> usize {
    let d = differences(truth, records);
    assert!(
        truth.rows > 0,
        "{}: the truth is empty ({})",
        truth.report,
        truth.request
    );
    assert!(
        d.none(),
        "{topic} != the simulator's truth for {} ({} rows of {}):\n{d}",
        truth.report,
        truth.rows,
        truth.request
    );
    d.truth_keys
}
