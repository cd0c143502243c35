//! The simulator's semantics, checked on its ground truth.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use super::*;

/// A clock tests set and advance by hand; clones share one time.
#[derive(Debug, Clone)]
struct ManualClock(Arc<std::sync::Mutex<DateTime<Utc>>>);

impl ManualClock {
    fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(std::sync::Mutex::new(at)))
    }

    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    /// The clock as the simulator reads it.
    fn reader(&self) -> impl SimClock + 'static {
        let shared = self.0.clone();
        move || *shared.lock().unwrap()
    }
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn sim_at(now: &str) -> (Arc<Simulator>, ManualClock) {
    let clock = ManualClock::new(t(now));
    let sim = Simulator::new(
        SimConfig {
            long_open_fraction: 0.1,
            ..SimConfig::default()
        },
        clock.reader(),
    );
    (sim, clock)
}

fn ws(start: &str, end: &str) -> ReportQuery {
    ReportQuery::WorkSessions {
        start: t(start),
        end: t(end),
    }
}

type Key = (String, String);

fn by_key(rows: &[TruthRow]) -> BTreeMap<Key, TruthRow> {
    rows.iter()
        .map(|r| {
            (
                (
                    r.get("contact_session_id").unwrap().to_string(),
                    r.get("agent_id").unwrap().to_string(),
                ),
                r.clone(),
            )
        })
        .collect()
}

fn secs(r: &TruthRow, col: &str) -> Option<f64> {
    r.get(col)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
}

#[test]
fn rows_are_anchored_at_end_else_creation_and_ids_appear_at_the_end() {
    let (sim, _) = sim_at("2024-03-05T12:00:00Z");
    let as_of = sim.as_of();
    let start = t("2024-03-05T08:00:00Z");
    let end = t("2024-03-05T10:59:00Z");
    let Truth { columns, rows } =
        sim.report_truth(&ws("2024-03-05T08:00:00Z", "2024-03-05T10:59:00Z"));
    assert_eq!(columns, wire::WORK_SESSION_COLUMNS);
    assert!(rows.len() > 100, "{}", rows.len());
    let (mut open, mut ended) = (0, 0);
    for r in &rows {
        let created = t(r.get("contact_session_created_at").unwrap());
        let anchor = match r.get("contact_session_ended_at").unwrap() {
            "" => {
                open += 1;
                assert_eq!(r.get("id"), Some(""), "open contacts have no id");
                assert_eq!(r.get("work_session_handle_time_sec"), Some(""));
                created
            }
            e => {
                ended += 1;
                assert!(!r.get("id").unwrap().is_empty());
                t(e)
            }
        };
        assert!(anchor >= start && anchor < end + Duration::minutes(1));
        assert!(anchor <= as_of, "nothing after now - data delay");
    }
    assert!(open > 0 && ended > 0, "open {open} ended {ended}");
}

#[test]
fn an_open_contact_moves_to_its_end_window_like_gladlys_worked_example() {
    // find a contact created in 11:00-12:00 that is still open at 13:00 (as of)
    let (sim, clock) = sim_at("2024-03-05T14:00:00Z");
    let window = ws("2024-03-05T11:00:00Z", "2024-03-05T12:00:00Z");
    let rows = sim.report_truth(&window).rows;
    let open: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.get("contact_session_ended_at") == Some(""))
        .map(|r| r.get("contact_session_id").unwrap().to_string())
        .collect();
    assert!(!open.is_empty(), "some contacts stay open for hours");
    // a day later every one of them has ended and moved out of the 11:00-12:00 window...
    clock.advance(Duration::hours(24));
    let later = sim.report_truth(&window).rows;
    let later_ids: BTreeSet<String> = later
        .iter()
        .map(|r| r.get("contact_session_id").unwrap().to_string())
        .collect();
    let moved: Vec<&String> = open.iter().filter(|id| !later_ids.contains(*id)).collect();
    assert!(!moved.is_empty());
    // ...into a window that covers its end
    let wide = sim
        .report_truth(&ws("2024-03-05T12:01:00Z", "2024-03-06T13:00:00Z"))
        .rows;
    for id in moved {
        let row = wide
            .iter()
            .find(|r| r.get("contact_session_id") == Some(id.as_str()))
            .expect("the contact is found at its end time");
        assert!(!row.get("id").unwrap().is_empty());
        assert!(t(row.get("contact_session_ended_at").unwrap()) > t("2024-03-05T12:01:00Z"));
    }
}

#[test]
fn work_sessions_only_grow_and_after_contact_time_keeps_growing() {
    let (sim, clock) = sim_at("2024-03-04T06:00:00Z");
    let all = ws("2024-03-01T00:00:00Z", "2024-03-09T00:00:00Z");
    let mut before = by_key(&sim.report_truth(&all).rows);
    let mut grew = 0;
    for _ in 0..6 {
        clock.advance(Duration::minutes(20));
        let after = by_key(&sim.report_truth(&all).rows);
        for ((contact, agent), old) in &before {
            if agent.is_empty() {
                continue; // the agent-less row is replaced once an agent accepts
            }
            let new = after
                .get(&(contact.clone(), agent.clone()))
                .expect("a work session never disappears");
            for col in [
                "work_session_after_contact_time_sec",
                "work_session_unknown_time_sec",
            ] {
                match (secs(old, col), secs(new, col)) {
                    (Some(a), Some(b)) => {
                        assert!(b >= a, "{col} shrank");
                        if b > a {
                            grew += 1;
                        }
                    }
                    (Some(_), None) => panic!("{col} vanished"),
                    _ => {}
                }
            }
            if old.get("contact_session_ended_at") != Some("") {
                assert_eq!(old.get("id"), new.get("id"), "final ids are stable");
                assert_eq!(
                    old.get("work_session_handle_time_sec"),
                    new.get("work_session_handle_time_sec")
                );
            }
        }
        before = after;
    }
    assert!(grew > 0, "after-contact/unknown time grows after the end");
}

#[test]
fn content_is_a_pure_function_of_seed_and_now() {
    let (sim, clock) = sim_at("2024-03-06T09:30:00Z");
    let req = ws("2024-03-06T05:00:00Z", "2024-03-06T08:30:00Z");
    let first: Vec<_> = sim.report_truth(&req).rows;
    clock.advance(Duration::days(30));
    let _ = sim.report_truth(&req);
    clock.set(t("2024-03-06T09:30:00Z"));
    let again: Vec<_> = sim.report_truth(&req).rows;
    assert_eq!(first, again);
    // a fresh simulator (a restart) agrees too
    let (other, _) = sim_at("2024-03-06T09:30:00Z");
    let fresh: Vec<_> = other.report_truth(&req).rows;
    assert_eq!(first, fresh);
    let (seeded, _) = sim_at("2024-03-06T09:30:00Z");
    let seeded = Simulator::new(
        seeded.config().clone().with_seed(99),
        ManualClock::new(t("2024-03-06T09:30:00Z")).reader(),
    );
    let different: Vec<_> = seeded.report_truth(&req).rows;
    assert_ne!(first, different);
}

fn contacts_req(day: &str, tz: &str) -> ReportQuery {
    let d: NaiveDate = day.parse().unwrap();
    ReportQuery::MetricSet {
        metric_set: wire::CONTACT_EXPORT.into(),
        start: d,
        end: d,
        timezone: tz.into(),
        aggregation_level: None,
    }
}

#[test]
fn contact_export_has_one_row_per_contact_filled_at_start_or_end() {
    let (sim, _) = sim_at("2024-03-05T15:00:00Z");
    let Truth { columns, rows } = sim.report_truth(&contacts_req("2024-03-05", "America/New_York"));
    assert_eq!(
        &columns[..4],
        ["Queued At", "Customer ID", "Conversation ID", "Contact ID"]
    );
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.get("Contact ID").unwrap()).collect();
    assert_eq!(ids.len(), rows.len(), "one row per contact");
    let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let mut open = 0;
    for r in &rows {
        let queued = t(r.get("Queued At").unwrap());
        assert_eq!(
            queued.with_timezone(&tz).date_naive().to_string(),
            "2024-03-05"
        );
        if r.get("Ended At") == Some("") {
            open += 1;
            for col in [
                "Agent ID",
                "Status",
                "Handle Time in seconds",
                "Wait Time in seconds",
            ] {
                assert_eq!(r.get(col), Some(""), "{col} fills at the end");
            }
        }
    }
    assert!(open > 0);
    assert!(rows
        .iter()
        .any(|r| r.get("Final IVR Selection").unwrap().contains('\n')));
}

#[test]
fn agent_summary_buckets_cover_the_range_and_todays_keep_growing() {
    let (sim, clock) = sim_at("2024-03-05T15:00:00Z");
    let req = |level: &str| ReportQuery::MetricSet {
        metric_set: wire::AGENT_SUMMARY.into(),
        start: "2024-03-04".parse().unwrap(),
        end: "2024-03-05".parse().unwrap(),
        timezone: "UTC".into(),
        aggregation_level: Some(level.into()),
    };
    let agents = sim.config().agents;
    let daily = sim.report_truth(&req("daily")).rows;
    assert_eq!(daily.len(), 2 * agents);
    let half = sim.report_truth(&req("halfHourly")).rows;
    // 48 buckets of the 4th, and of the 5th those started by 14:00 (as of): 29
    assert_eq!(half.len(), (48 + 29) * agents);
    for level in ["weekly", "monthly", "quarterly"] {
        let rows = sim.report_truth(&req(level)).rows;
        assert_eq!(rows.len(), agents, "{level}");
    }
    let q = sim.report_truth(&req("quarterly")).rows;
    assert!(q[0]
        .get("Bucket Beginning")
        .unwrap()
        .starts_with("2024-01-01T00:00:00"));
    let total = |rows: &[TruthRow], col: &str| -> u64 {
        rows.iter()
            .map(|r| r.get(col).unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let today = |rows: &[TruthRow]| -> Vec<TruthRow> {
        rows.iter()
            .filter(|r| r.get("Bucket Beginning").unwrap().starts_with("2024-03-05"))
            .cloned()
            .collect()
    };
    let before = today(&daily);
    clock.advance(Duration::hours(3));
    let after = today(&sim.report_truth(&req("daily")).rows);
    assert!(total(&after, "Contacts Accepted") > total(&before, "Contacts Accepted"));
    assert!(
        total(&after, "Logged In Time in seconds") > total(&before, "Logged In Time in seconds")
    );
}

#[test]
fn truth_never_shows_rows_before_the_origin() {
    let (sim, _) = sim_at("2024-03-01T03:00:00Z");
    let rows = sim
        .report_truth(&ws("2024-02-28T00:00:00Z", "2024-03-01T03:00:00Z"))
        .rows;
    assert!(rows
        .iter()
        .all(|r| t(r.get("contact_session_created_at").unwrap()) >= sim.config().origin));
    let _ = Utc.timestamp_opt(0, 0);
}

#[test]
fn a_time_precise_contact_export_holds_the_contacts_queued_in_its_interval() {
    let (sim, _) = sim_at("2024-03-06T12:00:00Z");
    let day = sim.report_truth(&contacts_req("2024-03-05", "UTC")).rows;
    let between = |start: &str, end: &str| {
        sim.report_truth(&ReportQuery::MetricSetBetween {
            metric_set: wire::CONTACT_EXPORT.into(),
            start: t(start),
            end: t(end),
        })
        .rows
    };
    // two halves of the day, each inclusive of the minute after its end (like work sessions)
    let am = between("2024-03-05T00:00:00Z", "2024-03-05T11:59:00Z");
    let pm = between("2024-03-05T12:00:00Z", "2024-03-05T23:59:00Z");
    for r in am.iter().chain(&pm) {
        let q = t(r.get("Queued At").unwrap());
        assert_eq!(q.date_naive().to_string(), "2024-03-05", "{q}");
    }
    let ids = |rows: &[TruthRow]| -> BTreeSet<String> {
        rows.iter()
            .map(|r| r.get("Contact ID").unwrap().to_string())
            .collect()
    };
    let halves: BTreeSet<String> = ids(&am).union(&ids(&pm)).cloned().collect();
    assert_eq!(halves, ids(&day), "the halves hold the day, nothing else");
    assert!(!am.is_empty() && !pm.is_empty());
    assert_eq!(
        am.iter()
            .find(|r| ids(&pm).contains(r.get("Contact ID").unwrap())),
        None,
        "minute-aligned halves do not overlap"
    );
}

#[test]
fn time_precise_requests_follow_the_spec() {
    let cfg = SimConfig::default();
    let errors = |body: serde_json::Value| match server::plan(&cfg, wire::REPORTS_PATH, &body) {
        Ok(_) => Vec::new(),
        Err(e) => e.into_iter().map(|e| e.detail).collect::<Vec<_>>(),
    };
    let ok = serde_json::json!({"metricSet": wire::CONTACT_EXPORT,
        "startAtTime": "2024-03-05T10:00Z", "endAtTime": "2024-03-05T11:00Z"});
    assert!(errors(ok.clone()).is_empty());
    let mut mixed = ok.clone();
    mixed["timezone"] = "UTC".into();
    mixed["startAt"] = "2024-03-05".into();
    let e = errors(mixed);
    assert!(
        e.iter()
            .any(|d| d.contains("timezone must not be specified")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|d| d.contains("startAt must not be specified")),
        "{e:?}"
    );
    let mut agents = ok.clone();
    agents["metricSet"] = wire::AGENT_SUMMARY.into();
    assert!(errors(agents)[0].contains("apply to ContactExportReportV3 and"));
    let mut one = ok.clone();
    one.as_object_mut().unwrap().remove("endAtTime");
    assert!(!errors(one).is_empty(), "both are required");
    let mut seconds = ok;
    seconds["startAtTime"] = "2024-03-05T10:00:30Z".into();
    assert!(!errors(seconds).is_empty(), "minute precision");
}
