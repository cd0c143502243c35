//! An oracle for the built-in reports written apart from `src/records` and `src/pipeline`:
//! the simulator's truth rows (CSV cells as Gladly sends them) mapped by hand to the field
//! values a consumer decodes from the topic (with apache-avro against the schema files), and
//! invariants on the window metadata that a wrong `window_start`/`window_end`/`fetched_at`
//! cannot pass by accident.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

/// How a cell becomes a field.
#[derive(Clone, Copy)]
enum Kind {
    /// Text as sent.
    Text,
    /// An RFC 3339 instant, as UTC epoch millis.
    Instant,
    /// A whole number.
    Long,
    /// Seconds as a double.
    Secs,
    /// `true`/`false`.
    Bool,
}

/// `(CSV column, field, kind)` per report: what a user reads, by hand from
/// docs/gladly-api.md and the schema files.
fn mapping(report: &str) -> &'static [(&'static str, &'static str, Kind)] {
    use Kind::*;
    match report {
        "work_sessions" => &[
            ("id", "id", Text),
            ("contact_session_id", "contact_session_id", Text),
            (
                "contact_session_created_at",
                "contact_session_created_at",
                Instant,
            ),
            ("customer_id", "customer_id", Text),
            ("conversation_id", "conversation_id", Text),
            ("inbox_id", "inbox_id", Text),
            ("channel", "channel", Text),
            ("direction", "direction", Text),
            ("agent_accepted_at", "agent_accepted_at", Instant),
            (
                "contact_session_routed_at",
                "contact_session_routed_at",
                Instant,
            ),
            ("agent_id", "agent_id", Text),
            ("sla_fulfilled_at", "sla_fulfilled_at", Instant),
            (
                "contact_session_ended_at",
                "contact_session_ended_at",
                Instant,
            ),
            ("status", "status", Text),
            ("within_sla", "within_sla", Bool),
            (
                "work_session_handle_time_sec",
                "work_session_handle_time_sec",
                Secs,
            ),
            (
                "work_session_after_contact_time_sec",
                "work_session_after_contact_time_sec",
                Secs,
            ),
            (
                "work_session_unknown_time_sec",
                "work_session_unknown_time_sec",
                Secs,
            ),
            ("accepted_inbox_id", "accepted_inbox_id", Text),
        ],
        "contacts" => &[
            ("Queued At", "queued_at", Instant),
            ("Customer ID", "customer_id", Text),
            ("Conversation ID", "conversation_id", Text),
            ("Contact ID", "contact_id", Text),
            ("Link", "link", Text),
            ("Channel", "channel", Text),
            ("Direction", "direction", Text),
            ("Contact Initiator", "contact_initiator", Text),
            ("Entry Point", "entry_point", Text),
            ("Final IVR Selection", "final_ivr_selection", Text),
            ("Inbox ID", "inbox_id", Text),
            ("Ended At", "ended_at", Instant),
            ("Wait Time in seconds", "wait_time_sec", Secs),
            ("Handle Time in seconds", "handle_time_sec", Secs),
            ("Hold Time in seconds", "hold_time_sec", Secs),
        ],
        "agent_summary" => &[
            ("Bucket Beginning", "bucket_start", Instant),
            ("Bucket End", "bucket_end", Instant),
            ("Name", "name", Text),
            ("Email", "email", Text),
            ("Agent ID", "agent_id", Text),
            ("User Status", "user_status", Text),
            ("Role(s)", "roles", Text),
            ("Inbox(es)", "inboxes", Text),
            ("Team(s)", "teams", Text),
            ("Logged In", "logged_in", Long),
            ("Logged Out", "logged_out", Long),
            ("Logged In Time in seconds", "logged_in_time_sec", Secs),
            ("Went Away", "went_away", Long),
            ("Returned from Away", "returned_from_away", Long),
            ("Changed Active Reason", "changed_active_reason", Long),
            ("Active Time in seconds", "active_time_sec", Secs),
        ],
        other => panic!("{other}: the built-in reports only"),
    }
}

/// An RFC 3339 cell (any offset: Contact Export and Agent Summary send the report's
/// timezone's offset) as UTC epoch millis.
fn instant(cell: &str) -> i64 {
    DateTime::parse_from_rfc3339(cell)
        .unwrap_or_else(|e| panic!("truth instant {cell:?}: {e}"))
        .with_timezone(&Utc)
        .timestamp_millis()
}

fn cell_value(kind: Kind, cell: &str) -> Value {
    if cell.trim().is_empty() {
        return Value::Null;
    }
    match kind {
        Kind::Text => json!(cell),
        Kind::Instant => json!(instant(cell)),
        Kind::Long => json!(cell.trim().parse::<i64>().expect("a whole number")),
        Kind::Secs => json!(cell.trim().parse::<f64>().expect("seconds")),
        Kind::Bool => json!(cell.trim().eq_ignore_ascii_case("true")),
    }
}

/// The expected key (as JSON) and field values of one truth row, and the `bad_rows` key the
/// simulator would give it. `aggregation_level` is the requested one (agent summary).
pub fn expected(
    report: &str,
    columns: &[&str],
    cells: &[String],
    aggregation_level: &str,
) -> (Value, String, BTreeMap<String, Value>) {
    let cell = |c: &str| -> &str {
        columns
            .iter()
            .position(|x| *x == c)
            .map_or("", |i| cells[i].as_str())
    };
    let map = mapping(report);
    let mut fields = BTreeMap::new();
    for (column, field, kind) in map {
        fields.insert(field.to_string(), cell_value(*kind, cell(column)));
    }
    // every column the schema does not know lands in `extra` as raw text, empty or not
    let mut extra = serde_json::Map::new();
    for (c, v) in columns.iter().zip(cells) {
        if !map.iter().any(|(col, _, _)| col == c) {
            extra.insert(c.to_string(), json!(v));
        }
    }
    let (key, bad) = match report {
        "work_sessions" => {
            let (c, a) = (cell("contact_session_id"), cell("agent_id"));
            // the anchor: the end of an ended contact, else its creation
            let anchor = match cell("contact_session_ended_at") {
                "" => instant(cell("contact_session_created_at")),
                e => instant(e),
            };
            fields.insert("anchor_at".into(), json!(anchor));
            (
                json!({"contact_session_id": c, "agent_id": a}),
                format!("work_sessions:{c}/{a}"),
            )
        }
        "contacts" => {
            let c = cell("Contact ID");
            (json!({ "contact_id": c }), format!("contacts:{c}"))
        }
        _ => {
            let (a, b) = (cell("Agent ID"), cell("Bucket Beginning"));
            fields.insert("aggregation_level".into(), json!(aggregation_level));
            (
                json!({"agent_id": a, "bucket_start": instant(b), "aggregation_level": aggregation_level}),
                format!("agent_summary:{a}/{b}"),
            )
        }
    };
    (key, bad, fields_with_extra(fields, extra))
}

fn fields_with_extra(
    mut fields: BTreeMap<String, Value>,
    extra: serde_json::Map<String, Value>,
) -> BTreeMap<String, Value> {
    fields.insert("extra".into(), Value::Object(extra));
    fields
}

/// The anchor field of a report's value: also its Kafka record timestamp.
pub fn anchor_field(report: &str) -> &'static str {
    match report {
        "work_sessions" => "anchor_at",
        "contacts" => "queued_at",
        _ => "bucket_start",
    }
}

/// Decodes a Confluent-framed Avro datum with the schema file `schemas/<name>.avsc`.
pub fn decode(name: &str, bytes: &[u8]) -> Value {
    let path = format!("{}/schemas/{name}.avsc", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema = apache_avro::Schema::parse_str(&text).expect("a schema file parses");
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    let value = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).expect("decodes");
    value.try_into().expect("as JSON")
}

fn ms(v: &Value, field: &str) -> Option<i64> {
    v.get(field).and_then(Value::as_i64)
}

/// Why a published value's window metadata is impossible, if it is. `timestamp` is the Kafka
/// record timestamp; `date_tz` the report's timezone for the date reports (`None` for work
/// sessions, whose bounds are the requested instants).
pub fn window_violation(
    report: &str,
    value: &Value,
    timestamp: Option<i64>,
    date_tz: Option<chrono_tz::Tz>,
) -> Option<String> {
    let (Some(start), Some(end), Some(fetched)) = (
        ms(value, "window_start"),
        ms(value, "window_end"),
        ms(value, "fetched_at"),
    ) else {
        return Some("window metadata missing".into());
    };
    let anchor = ms(value, anchor_field(report))?;
    let show = |t: i64| {
        DateTime::<Utc>::from_timestamp_millis(t).map_or(t.to_string(), |d| {
            d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
    };
    let meta = format!(
        "window [{}, {}), fetched_at {}, anchor {}",
        show(start),
        show(end),
        show(fetched),
        show(anchor)
    );
    if start >= end {
        return Some(format!("window_start >= window_end: {meta}"));
    }
    if timestamp != Some(anchor) {
        return Some(format!("record timestamp {timestamp:?} != anchor: {meta}"));
    }
    match date_tz {
        None => {
            // work sessions: Gladly includes rows up to a minute past endAtTime, and the
            // request is sent when the window ends (its end is floored to the minute of now)
            if anchor < start || anchor >= end + 60_000 {
                return Some(format!("anchor outside the window (+1 minute): {meta}"));
            }
            if fetched < end {
                return Some(format!("fetched_at before window_end: {meta}"));
            }
        }
        Some(tz) => {
            // a Contact Export day over the row cap is split into time windows, which Gladly
            // also answers up to a minute past their end
            let slack = if report == "contacts" { 60_000 } else { 0 };
            if anchor < start || anchor >= end + slack {
                return Some(format!("anchor outside the window: {meta}"));
            }
            // the last day of a date window is at most the day of the fetch: the window ends
            // at the latest at the midnight after the fetch's local day
            let day = DateTime::<Utc>::from_timestamp_millis(fetched)
                .expect("in range")
                .with_timezone(&tz)
                .date_naive();
            if end > local_midnight(tz, day + Duration::days(1)) || fetched < start {
                return Some(format!("window ends after the fetch's day ({tz}): {meta}"));
            }
        }
    }
    None
}

/// Midnight starting `date` in `tz`, as epoch millis.
pub fn local_midnight(tz: chrono_tz::Tz, date: NaiveDate) -> i64 {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .expect("a local midnight")
        .timestamp_millis()
}

/// The fields of `want` that `got` has with another value, as `field: truth …, topic …`.
pub fn differing_fields(want: &BTreeMap<String, Value>, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    // typed fields first: `extra` only says that a column landed elsewhere
    let typed = want.iter().filter(|(f, _)| *f != "extra");
    for (field, w) in typed.chain(want.get_key_value("extra")) {
        let g = got.get(field).cloned().unwrap_or(Value::Null);
        let same = match (w.as_f64(), g.as_f64()) {
            (Some(a), Some(b)) if w.is_f64() || g.is_f64() => (a - b).abs() < 1e-9,
            _ => *w == g,
        };
        if !same {
            out.push(format!("{field}: truth {w}, topic {g}"));
        }
    }
    out
}

/// How many examples of each kind a failure shows.
const EXAMPLES: usize = 5;

/// How a topic, upserted by key (last value wins, a tombstone removes the key), differs from
/// the truth: the keys missing from it, the keys it has beyond the truth, the keys whose
/// fields differ (`key: field: truth …, topic …; …`) and the values whose window metadata is
/// impossible.
#[derive(Debug, Default)]
pub struct Differences {
    pub truth_keys: usize,
    pub topic_keys: usize,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub differing: Vec<String>,
    pub window: Vec<String>,
}

impl Differences {
    /// True when the topic equals the truth.
    pub fn none(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.differing.is_empty()
            && self.window.is_empty()
    }
}

impl std::fmt::Display for Differences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} truth keys, {} topic keys: {} missing, {} extra, {} differing, {} bad windows",
            self.truth_keys,
            self.topic_keys,
            self.missing.len(),
            self.extra.len(),
            self.differing.len(),
            self.window.len()
        )?;
        for (what, list) in [
            ("missing from the topic", &self.missing),
            ("in the topic, not in the truth", &self.extra),
            ("differing", &self.differing),
            ("window metadata", &self.window),
        ] {
            if list.is_empty() {
                continue;
            }
            write!(f, "\n{what} (first {}):", list.len().min(EXAMPLES))?;
            for line in list.iter().take(EXAMPLES) {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

/// Decodes a topic of report `name` read back from offset 0 (`(key, value, timestamp)` per
/// record) with the schema files, upserts it by key and compares every live key with
/// `expected` (key as JSON text -> fields, from [`expected`]): same key set, every field
/// equal, and window metadata a correct run can have (`date_tz`: see [`window_violation`]).
pub fn compare<'a>(
    name: &str,
    expected: &BTreeMap<String, BTreeMap<String, Value>>,
    records: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>, Option<i64>)>,
    date_tz: Option<chrono_tz::Tz>,
) -> Differences {
    let mut state: BTreeMap<String, Option<(Value, Option<i64>)>> = BTreeMap::new();
    for (key, value, timestamp) in records {
        let key = decode(&format!("{name}-key"), key);
        let value = value.map(|v| (decode(&format!("{name}-value"), v), timestamp));
        state.insert(key.to_string(), value);
    }
    let state: BTreeMap<String, (Value, Option<i64>)> = state
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();

    let mut d = Differences {
        truth_keys: expected.len(),
        topic_keys: state.len(),
        ..Differences::default()
    };
    for (key, want) in expected {
        match state.get(key) {
            None => d.missing.push(key.clone()),
            Some((got, _)) => {
                let fields = differing_fields(want, got);
                if !fields.is_empty() {
                    d.differing.push(format!("{key}: {}", fields.join("; ")));
                }
            }
        }
    }
    for (key, (got, timestamp)) in &state {
        if !expected.contains_key(key) {
            d.extra.push(key.clone());
        }
        if let Some(why) = window_violation(name, got, *timestamp, date_tz) {
            d.window.push(format!("{key}: {why}"));
        }
    }
    d
}
