//! Unit tests of the conversions: each CSV quirk of `docs/gladly-api.md` with its expected record,
//! dead-letter reasons, the work-session tombstone rule, and the field tables vs the `.avsc`.

use std::collections::BTreeMap;
use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::{from_avro_datum, Schema};
use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::report::{Header, Report, Row};

const IDS: SchemaIds = SchemaIds { key: 7, value: 8 };

fn meta() -> WindowMeta {
    WindowMeta {
        window_start: Utc.with_ymd_and_hms(2024, 3, 14, 10, 0, 0).unwrap(),
        window_end: Utc.with_ymd_and_hms(2024, 3, 14, 11, 0, 0).unwrap(),
        fetched_at: Utc.with_ymd_and_hms(2024, 3, 14, 12, 0, 0).unwrap(),
    }
}

fn ms(s: &str) -> i64 {
    s.parse::<DateTime<Utc>>().unwrap().timestamp_millis()
}

fn decode(schema: &str, id: u32, bytes: &[u8]) -> BTreeMap<String, Value> {
    decode_in_order(schema, id, bytes).into_iter().collect()
}

/// The record's fields in schema order.
fn decode_in_order(schema: &str, id: u32, bytes: &[u8]) -> Vec<(String, Value)> {
    assert_eq!(bytes[0], 0, "magic byte");
    assert_eq!(u32::from_be_bytes(bytes[1..5].try_into().unwrap()), id);
    let schema = Schema::parse_str(schema).unwrap();
    let mut r = &bytes[5..];
    let v = from_avro_datum(&schema, &mut r, None).unwrap();
    assert!(r.is_empty(), "trailing bytes after the datum");
    let Value::Record(fields) = v else {
        panic!("not a record: {v:?}")
    };
    fields
}

/// Unwraps unions so expectations read naturally.
fn plain(v: &Value) -> Value {
    match v {
        Value::Union(_, inner) => plain(inner),
        other => other.clone(),
    }
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn ts(v: &str) -> Value {
    Value::TimestampMillis(ms(v))
}

fn convert(report: Report, settings: ConvertSettings, rows: &[Row]) -> Vec<Output> {
    let conv = Converter::new(report, settings, IDS);
    let mut w = conv.window(meta());
    let mut out = Vec::new();
    for r in rows {
        w.push(r, &mut out);
    }
    w.finish(&mut out);
    out
}

fn records(out: &[Output]) -> Vec<&Record> {
    out.iter()
        .filter_map(|o| match o {
            Output::Record(r) => Some(r),
            Output::DeadLetter(_) => None,
        })
        .collect()
}

fn dead_letters(out: &[Output]) -> Vec<&DeadLetter> {
    out.iter()
        .filter_map(|o| match o {
            Output::DeadLetter(d) => Some(d),
            Output::Record(_) => None,
        })
        .collect()
}

/// The value of the first record, decoded, unions unwrapped.
fn value_of(report: Report, out: &[Output]) -> BTreeMap<String, Value> {
    let rec = records(out)[0];
    decode(
        schemas::value_schema(report),
        IDS.value,
        rec.value.as_ref().expect("not a tombstone"),
    )
    .iter()
    .map(|(k, v)| (k.clone(), plain(v)))
    .collect()
}

fn key_of(report: Report, rec: &Record) -> Vec<Value> {
    decode_in_order(schemas::key_schema(report), IDS.key, &rec.key)
        .iter()
        .map(|(_, v)| plain(v))
        .collect()
}

const WS_HEADER: [&str; 19] = crate::report::WORK_SESSION_COLUMNS;

/// A complete final work-session row; `edit` overrides cells by column name.
fn ws_row(edit: &[(&str, &str)]) -> Row {
    let mut cells: Vec<(&str, &str)> = WS_HEADER
        .iter()
        .copied()
        .zip([
            "ws1",
            "C1",
            "2024-03-14T10:02:11Z",
            "Cu1",
            "Co1",
            "In1",
            "CHAT",
            "INBOUND",
            "2024-03-14T10:02:20Z",
            "2024-03-14T10:02:15Z",
            "A1",
            "2024-03-14T10:02:20Z",
            "2024-03-14T10:30:00Z",
            "ENDED",
            "true",
            "120.5",
            "30",
            "0",
            "In2",
        ])
        .collect();
    for (k, v) in edit {
        match cells.iter_mut().find(|(c, _)| c == k) {
            Some(cell) => cell.1 = v,
            None => cells.push((k, v)),
        }
    }
    Row::from_pairs(cells)
}

fn ws(rows: &[Row]) -> Vec<Output> {
    convert(Report::WORK_SESSIONS, ConvertSettings::default(), rows)
}

#[test]
fn work_session_row_becomes_the_expected_record() {
    let out = ws(&[ws_row(&[])]);
    assert_eq!(
        out.len(),
        2,
        "record + the tombstone of {{C1,\"\"}}: {out:?}"
    );
    let rec = records(&out)[0];
    assert_eq!(
        rec.timestamp_ms,
        ms("2024-03-14T10:30:00Z"),
        "anchor = ended_at"
    );
    assert_eq!(key_of(Report::WORK_SESSIONS, rec), vec![s("C1"), s("A1")]);
    let expected: BTreeMap<String, Value> = [
        ("id", s("ws1")),
        ("contact_session_id", s("C1")),
        ("contact_session_created_at", ts("2024-03-14T10:02:11Z")),
        ("customer_id", s("Cu1")),
        ("conversation_id", s("Co1")),
        ("inbox_id", s("In1")),
        ("channel", s("CHAT")),
        ("direction", s("INBOUND")),
        ("agent_accepted_at", ts("2024-03-14T10:02:20Z")),
        ("contact_session_routed_at", ts("2024-03-14T10:02:15Z")),
        ("agent_id", s("A1")),
        ("sla_fulfilled_at", ts("2024-03-14T10:02:20Z")),
        ("contact_session_ended_at", ts("2024-03-14T10:30:00Z")),
        ("status", s("ENDED")),
        ("within_sla", Value::Boolean(true)),
        ("work_session_handle_time_sec", Value::Double(120.5)),
        ("work_session_after_contact_time_sec", Value::Double(30.0)),
        ("work_session_unknown_time_sec", Value::Double(0.0)),
        ("accepted_inbox_id", s("In2")),
        ("anchor_at", ts("2024-03-14T10:30:00Z")),
        ("extra", Value::Map(Default::default())),
        ("extra_json", s("{}")),
        ("fetched_at", ts("2024-03-14T12:00:00Z")),
        ("window_start", ts("2024-03-14T10:00:00Z")),
        ("window_end", ts("2024-03-14T11:00:00Z")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(value_of(Report::WORK_SESSIONS, &out), expected);
}

#[test]
fn bom_in_the_header_is_stripped() {
    let names: Vec<String> = WS_HEADER
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if i == 0 {
                format!("\u{feff}{n}")
            } else {
                n.to_string()
            }
        })
        .collect();
    let reference = ws_row(&[]);
    let row = Row::new(Arc::new(Header::new(names)), reference.record().clone(), 2);
    let out = ws(&[row]);
    let v = value_of(Report::WORK_SESSIONS, &out);
    assert_eq!(v["id"], s("ws1"));
    assert_eq!(
        v["extra"],
        Value::Map(Default::default()),
        "no stray `\\u{{feff}}id` column"
    );
}

#[test]
fn unknown_columns_go_to_extra_in_full() {
    let out = ws(&[ws_row(&[
        ("new_metric_sec", "4.5"),
        ("Timezone Filter", ""),
    ])]);
    let v = value_of(Report::WORK_SESSIONS, &out);
    let Value::Map(extra) = &v["extra"] else {
        panic!("extra is a map")
    };
    assert_eq!(extra.len(), 2);
    assert_eq!(extra["new_metric_sec"], s("4.5"));
    assert_eq!(extra["Timezone Filter"], s(""), "empty cells are kept too");
}

#[test]
fn cells_beyond_the_header_are_kept_in_extra() {
    let reference = ws_row(&[]);
    let mut cells: Vec<&str> = reference.record().iter().collect();
    cells.push("surplus");
    let row = Row::new(
        Arc::clone(reference.header()),
        csv::StringRecord::from(cells),
        3,
    );
    let v = value_of(Report::WORK_SESSIONS, &ws(&[row]));
    let Value::Map(extra) = &v["extra"] else {
        panic!("extra is a map")
    };
    assert_eq!(extra["column_20"], s("surplus"));
    assert_eq!(extra_json(&v), serde_json::json!({"column_20": "surplus"}));
}

/// The value's `extra_json` text, parsed.
fn extra_json(v: &BTreeMap<String, Value>) -> serde_json::Value {
    let Value::String(text) = &v["extra_json"] else {
        panic!("extra_json is a string: {:?}", v["extra_json"])
    };
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

/// The value's `extra` map as a JSON object of strings.
fn extra_as_json(v: &BTreeMap<String, Value>) -> serde_json::Value {
    let Value::Map(extra) = &v["extra"] else {
        panic!("extra is a map")
    };
    extra
        .iter()
        .map(|(k, v)| match v {
            Value::String(t) => (k.clone(), serde_json::Value::String(t.clone())),
            other => panic!("{other:?}"),
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn extra_json_holds_the_entries_of_extra_escaped() {
    let tricky = r#"say "hi" \ C:\dir\ "#;
    let reference = ws_row(&[
        ("new \"metric\"", tricky),
        ("Timezone Filter", ""),
        ("note", "caf\u{e9} \u{1f600}\n\t"),
    ]);
    let mut cells: Vec<&str> = reference.record().iter().collect();
    cells.push("sur\"plus\\");
    let row = Row::new(
        Arc::clone(reference.header()),
        csv::StringRecord::from(cells),
        3,
    );
    for report_rows in [vec![row], vec![ws_row(&[])]] {
        let out = ws(&report_rows);
        let v = value_of(Report::WORK_SESSIONS, &out);
        assert_eq!(extra_json(&v), extra_as_json(&v), "the same entries");
    }
    let v = value_of(
        Report::WORK_SESSIONS,
        &ws(&[ws_row(&[("new \"metric\"", tricky)])]),
    );
    assert_eq!(extra_json(&v)["new \"metric\""], tricky);
    for report in [Report::CONTACTS, Report::AGENT_SUMMARY] {
        let row = match report {
            Report::CONTACTS => contact_row(&[("Odd \\ column", tricky)]),
            _ => agent_row(&[("Odd \\ column", tricky)]),
        };
        let v = value_of(report, &convert(report, ConvertSettings::default(), &[row]));
        assert_eq!(extra_json(&v), extra_as_json(&v), "{report}");
        assert_eq!(extra_json(&v)["Odd \\ column"], tricky, "{report}");
    }
}

#[test]
fn missing_optional_columns_are_null() {
    let row = Row::from_pairs([
        ("contact_session_id", "C1"),
        ("contact_session_created_at", "2024-03-14T10:02:11Z"),
    ]);
    let out = ws(&[row]);
    assert_eq!(
        records(&out).len(),
        1,
        "open agent-less contact: no tombstone: {out:?}"
    );
    let v = value_of(Report::WORK_SESSIONS, &out);
    for f in work_sessions::FIELDS.iter().map(|f| f.name) {
        if f != "contact_session_id" && f != "contact_session_created_at" {
            assert_eq!(v[f], Value::Null, "{f}");
        }
    }
    assert_eq!(v["anchor_at"], ts("2024-03-14T10:02:11Z"));
    assert_eq!(
        key_of(Report::WORK_SESSIONS, records(&out)[0]),
        vec![s("C1"), s("")],
        "key v3: the agent-less row's agent_id is the CSV's empty cell, never null"
    );
}

#[test]
fn empty_cells_are_null() {
    let out = ws(&[ws_row(&[
        ("id", ""),
        ("agent_id", " "),
        ("contact_session_ended_at", ""),
        ("within_sla", ""),
        ("work_session_handle_time_sec", ""),
        ("status", ""),
    ])]);
    let v = value_of(Report::WORK_SESSIONS, &out);
    for f in [
        "id",
        "agent_id",
        "contact_session_ended_at",
        "within_sla",
        "work_session_handle_time_sec",
        "status",
    ] {
        assert_eq!(v[f], Value::Null, "{f}");
    }
    assert_eq!(
        v["anchor_at"],
        ts("2024-03-14T10:02:11Z"),
        "anchor falls back to created_at"
    );
}

#[test]
fn odd_timestamp_forms_are_read() {
    for (form, expected) in [
        ("2024-03-14T10:02:11Z", "2024-03-14T10:02:11Z"),
        ("2024-03-14T10:02:11.000Z", "2024-03-14T10:02:11Z"),
        ("2024-03-14T10:02:11.25Z", "2024-03-14T10:02:11.250Z"),
        ("2024-03-14T10:02Z", "2024-03-14T10:02:00Z"),
        ("2024-03-14T03:02:11-07:00", "2024-03-14T10:02:11Z"),
        ("2024-03-14T10:02:11", "2024-03-14T10:02:11Z"),
        ("2024-03-14 10:02:11", "2024-03-14T10:02:11Z"),
        ("2024-03-14 10:02", "2024-03-14T10:02:00Z"),
        ("2024-03-14", "2024-03-14T00:00:00Z"),
    ] {
        let out = ws(&[ws_row(&[("contact_session_created_at", form)])]);
        let v = value_of(Report::WORK_SESSIONS, &out);
        assert_eq!(v["contact_session_created_at"], ts(expected), "{form}");
    }
}

#[test]
fn work_session_naive_times_are_utc_whatever_the_setting() {
    let settings = ConvertSettings {
        timezone: chrono_tz::America::New_York,
        aggregation_level: None,
    };
    let out = convert(
        Report::WORK_SESSIONS,
        settings,
        &[ws_row(&[(
            "contact_session_created_at",
            "2024-03-14 10:02:11",
        )])],
    );
    let v = value_of(Report::WORK_SESSIONS, &out);
    assert_eq!(v["contact_session_created_at"], ts("2024-03-14T10:02:11Z"));
}

#[test]
fn boolean_and_number_forms_are_read() {
    for (cell, expected) in [
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("FALSE", false),
        ("0", false),
        ("no", false),
    ] {
        let v = value_of(
            Report::WORK_SESSIONS,
            &ws(&[ws_row(&[("within_sla", cell)])]),
        );
        assert_eq!(v["within_sla"], Value::Boolean(expected), "{cell}");
    }
    let v = value_of(
        Report::WORK_SESSIONS,
        &ws(&[ws_row(&[("work_session_after_contact_time_sec", "0.125")])]),
    );
    assert_eq!(
        v["work_session_after_contact_time_sec"],
        Value::Double(0.125)
    );
}

#[test]
fn legacy_handle_time_column_is_read() {
    let reference = ws_row(&[]);
    let names: Vec<&str> = WS_HEADER
        .iter()
        .map(|n| {
            if *n == "work_session_handle_time_sec" {
                "work_session_handle_time"
            } else {
                n
            }
        })
        .collect();
    let row = Row::new(Arc::new(Header::new(names)), reference.record().clone(), 2);
    let v = value_of(Report::WORK_SESSIONS, &ws(&[row]));
    assert_eq!(v["work_session_handle_time_sec"], Value::Double(120.5));
    assert_eq!(v["extra"], Value::Map(Default::default()));
}

#[test]
fn both_handle_time_columns_prefer_the_current_name_and_keep_the_other() {
    let out = ws(&[ws_row(&[("work_session_handle_time", "99")])]);
    let v = value_of(Report::WORK_SESSIONS, &out);
    assert_eq!(v["work_session_handle_time_sec"], Value::Double(120.5));
    let Value::Map(extra) = &v["extra"] else {
        panic!("map")
    };
    assert_eq!(extra["work_session_handle_time"], s("99"));
}

#[test]
fn unconvertible_rows_become_dead_letters_with_precise_reasons() {
    let cases: Vec<(Row, &str)> = vec![
        (
            ws_row(&[("agent_accepted_at", "yesterday")]),
            "column `agent_accepted_at`: \"yesterday\" is not a timestamp",
        ),
        (
            ws_row(&[("work_session_handle_time_sec", "12 sec")]),
            "column `work_session_handle_time_sec`: \"12 sec\" is not a number of seconds",
        ),
        (
            ws_row(&[("work_session_handle_time_sec", "-120")]),
            "column `work_session_handle_time_sec`: \"-120\" is negative",
        ),
        (
            ws_row(&[("work_session_handle_time_sec", "5124095576030432:00:00")]),
            "column `work_session_handle_time_sec`: \"5124095576030432:00:00\" is out of range",
        ),
        (
            ws_row(&[("work_session_unknown_time_sec", "1e30")]),
            "column `work_session_unknown_time_sec`: \"1e30\" is out of range",
        ),
        (
            ws_row(&[("within_sla", "maybe")]),
            "column `within_sla`: \"maybe\" is not a boolean",
        ),
        (
            ws_row(&[("contact_session_id", "")]),
            "column `contact_session_id` is empty, but a value is required",
        ),
        (
            Row::from_pairs([("id", "x"), ("agent_id", "A")]),
            "column `contact_session_id` is missing from the report header",
        ),
        (
            ws_row(&[
                ("contact_session_created_at", ""),
                ("contact_session_ended_at", ""),
            ]),
            "no time anchor",
        ),
    ];
    for (row, reason) in cases {
        let raw = columns::raw_cells(&row);
        let out = ws(&[row]);
        let dls = dead_letters(&out);
        assert_eq!(dls.len(), 1, "{reason}: {out:?}");
        assert!(
            dls[0].reason.starts_with(reason),
            "{:?} vs {reason:?}",
            dls[0].reason
        );
        assert_eq!(dls[0].raw, raw);
        assert!(
            records(&out).is_empty(),
            "no tombstones for a contact with a dead letter: {out:?}"
        );
    }
}

#[test]
fn dead_letter_value_decodes() {
    let row = ws_row(&[("agent_accepted_at", "yesterday")]);
    let out = ws(&[row]);
    let dl = dead_letters(&out)[0];
    let bytes = encode_dead_letter(Report::WORK_SESSIONS, dl, &meta(), 42);
    let v = decode(schemas::dead_letter_schema(), 42, &bytes);
    assert_eq!(v["report"], s("work_sessions"));
    assert_eq!(v["reason"], s(&dl.reason));
    assert_eq!(v["line"], Value::Long(0));
    let Value::Array(cols) = &v["columns"] else {
        panic!("array")
    };
    assert_eq!(cols.len(), 19);
    assert_eq!(cols[0], s("id"));
    let Value::Map(raw) = &v["raw"] else {
        panic!("map")
    };
    assert_eq!(raw["agent_accepted_at"], s("yesterday"));
    assert_eq!(v["window_end"], ts("2024-03-14T11:00:00Z"));
}

#[test]
fn a_record_too_big_for_one_kafka_message_is_a_bounded_dead_letter() {
    // the stream's row limits keep such rows out; this is the converter's own guard
    let huge = "n".repeat(MAX_RECORD_BYTES);
    let out = ws(&[ws_row(&[("Big Note", huge.as_str())])]);
    assert!(records(&out).is_empty(), "no record and no tombstone");
    let dl = dead_letters(&out)[0];
    assert!(dl.reason.starts_with("oversized record:"), "{}", dl.reason);
    let bytes = encode_dead_letter(Report::WORK_SESSIONS, dl, &meta(), 42);
    assert!(
        bytes.len() < DEAD_LETTER_RAW_BUDGET + 4096,
        "{}",
        bytes.len()
    );
    let v = decode(schemas::dead_letter_schema(), 42, &bytes);
    let Value::Map(raw) = &v["raw"] else {
        panic!("map")
    };
    assert_eq!(raw["Big Note"], s(&huge[..CUT_CELL_BYTES]));
    assert_eq!(raw["contact_session_id"], s("C1"));
    let Value::String(reason) = &v["reason"] else {
        panic!("string")
    };
    assert!(
        reason.contains("raw cut to 1024 bytes per cell"),
        "{reason}"
    );
}

#[test]
fn a_dead_letter_of_many_big_cells_leaves_some_out_and_says_so() {
    let cell = "é".repeat(2000); // cut at a character boundary
    let raw: Vec<(String, String)> = (0..400).map(|i| (format!("c{i}"), cell.clone())).collect();
    let dl = DeadLetter {
        line: 7,
        reason: "malformed row: 400 fields where the header has 19".into(),
        raw,
    };
    let bytes = encode_dead_letter(Report::CONTACTS, &dl, &meta(), 42);
    assert!(
        bytes.len() < DEAD_LETTER_RAW_BUDGET + 4096,
        "{}",
        bytes.len()
    );
    let v = decode(schemas::dead_letter_schema(), 42, &bytes);
    let Value::String(reason) = &v["reason"] else {
        panic!("string")
    };
    assert!(reason.contains("cells left out"), "{reason}");
    let Value::Map(raw) = &v["raw"] else {
        panic!("map")
    };
    assert_eq!(raw["c0"], s(&"é".repeat(512)));
}

#[test]
fn key_columns_are_the_required_fields() {
    for report in Report::BUILT_IN {
        let table = match report {
            Report::WORK_SESSIONS => work_sessions::FIELDS,
            Report::CONTACTS => contacts::FIELDS,
            Report::AGENT_SUMMARY => agent_summary::FIELDS,
            _ => unreachable!("built-in reports only"),
        };
        for field in table.iter().filter(|f| f.kind.required()) {
            assert!(
                crate::report::BuiltIn::named(report)
                    .unwrap()
                    .required
                    .contains(&field.columns),
                "{report}: {} is required but not a key column",
                field.name
            );
        }
    }
}

// --- the work-session tombstone rule -------------------------------------------------------

/// (contact, agent) of a key; `value` says record (true) or tombstone (false).
fn ws_keys(out: &[Output]) -> Vec<(Vec<Value>, bool)> {
    records(out)
        .into_iter()
        .map(|r| (key_of(Report::WORK_SESSIONS, r), r.value.is_some()))
        .collect()
}

/// Key v3: no agent is `""` (the CSV's empty cell), not null.
fn k(c: &str, a: Option<&str>) -> Vec<Value> {
    vec![s(c), s(a.unwrap_or(""))]
}

fn open_row(contact: &str, agent: &str) -> Row {
    ws_row(&[
        ("contact_session_id", contact),
        ("id", ""),
        ("agent_id", agent),
        ("contact_session_ended_at", ""),
        ("work_session_handle_time_sec", ""),
    ])
}

fn final_row(contact: &str, id: &str, agent: &str) -> Row {
    ws_row(&[
        ("contact_session_id", contact),
        ("id", id),
        ("agent_id", agent),
    ])
}

#[test]
fn open_contact_without_agent_writes_only_its_provisional_row() {
    let out = ws(&[open_row("C1", "")]);
    assert_eq!(ws_keys(&out), vec![(k("C1", None), true)]);
}

#[test]
fn agent_accepting_an_open_contact_tombstones_its_agentless_row() {
    let out = ws(&[open_row("C1", "A1")]);
    assert_eq!(
        ws_keys(&out),
        vec![(k("C1", Some("A1")), true), (k("C1", None), false)]
    );
    // ... unless Gladly still lists the agent-less row.
    let out = ws(&[open_row("C1", "A1"), open_row("C1", "")]);
    assert!(ws_keys(&out).iter().all(|(_, value)| *value), "{out:?}");
}

#[test]
fn an_ended_contacts_rows_keep_their_keys_and_only_the_agentless_one_is_tombstoned() {
    let out = ws(&[
        final_row("C1", "w1", "A1"),
        final_row("C2", "w3", "A3"),
        final_row("C1", "w2", "A2"),
    ]);
    assert_eq!(
        ws_keys(&out),
        vec![
            (k("C1", Some("A1")), true),
            (k("C2", Some("A3")), true),
            (k("C1", Some("A2")), true),
            (k("C1", None), false),
            (k("C2", None), false),
        ]
    );
    for r in records(&out) {
        assert_eq!(
            r.timestamp_ms,
            ms("2024-03-14T10:30:00Z"),
            "tombstones carry the anchor"
        );
    }
}

#[test]
fn ended_contact_without_work_session_id_keeps_its_row() {
    // An abandoned contact: ended, no agent, and (perhaps) never a work-session id.
    let row = ws_row(&[("id", ""), ("agent_id", "")]);
    assert_eq!(ws_keys(&ws(&[row])), vec![(k("C1", None), true)]);
}

#[test]
fn a_dead_letter_suppresses_its_contacts_tombstones_only() {
    let out = ws(&[
        final_row("C1", "w1", "A1"),
        ws_row(&[
            ("contact_session_id", "C1"),
            ("agent_id", "A2"),
            ("within_sla", "?"),
        ]),
        final_row("C2", "w3", "A3"),
    ]);
    assert_eq!(dead_letters(&out).len(), 1);
    assert_eq!(
        ws_keys(&out),
        vec![
            (k("C1", Some("A1")), true),
            (k("C2", Some("A3")), true),
            (k("C2", None), false),
        ]
    );
}

// --- contacts -------------------------------------------------------------------------------

fn contact_row(edit: &[(&str, &str)]) -> Row {
    let mut cells = vec![
        ("Queued At", "2024-03-14 10:02:11"),
        ("Customer ID", "Cu1"),
        ("Conversation ID", "Co1"),
        ("Contact ID", "K1"),
        ("Link", "https://acme.gladly.com/x"),
        ("Channel", "EMAIL"),
        ("Direction", "INBOUND"),
        ("Contact Initiator", "Customer"),
        ("Entry Point", "support@acme.com"),
        ("Final IVR Selection", ""),
        ("Hold Time", "12"),
    ];
    for (k, v) in edit {
        match cells.iter_mut().find(|(c, _)| c == k) {
            Some(cell) => cell.1 = v,
            None => cells.push((k, v)),
        }
    }
    Row::from_pairs(cells)
}

#[test]
fn contact_row_becomes_the_expected_record_in_the_report_timezone() {
    let settings = ConvertSettings {
        timezone: chrono_tz::America::Los_Angeles,
        aggregation_level: None,
    };
    let out = convert(Report::CONTACTS, settings, &[contact_row(&[])]);
    assert_eq!(out.len(), 1);
    let rec = records(&out)[0];
    assert_eq!(rec.timestamp_ms, ms("2024-03-14T17:02:11Z"), "PDT is UTC-7");
    assert_eq!(key_of(Report::CONTACTS, rec), vec![s("K1")]);
    let v = value_of(Report::CONTACTS, &out);
    assert_eq!(v["queued_at"], ts("2024-03-14T17:02:11Z"));
    assert_eq!(v["contact_id"], s("K1"));
    assert_eq!(v["channel"], s("EMAIL"));
    assert_eq!(v["final_ivr_selection"], Value::Null);
    let Value::Map(extra) = &v["extra"] else {
        panic!("map")
    };
    assert_eq!(extra.len(), 1);
    assert_eq!(extra["Hold Time"], s("12"));
}

#[test]
fn contact_headers_match_ignoring_case_and_punctuation() {
    let row = Row::from_pairs([("queued_at", "2024-03-14T10:02:11Z"), ("contact id", "K1")]);
    let out = convert(Report::CONTACTS, ConvertSettings::default(), &[row]);
    let v = value_of(Report::CONTACTS, &out);
    assert_eq!(v["contact_id"], s("K1"));
    assert_eq!(v["customer_id"], Value::Null, "missing optional column");
}

#[test]
fn contact_without_queued_at_is_a_dead_letter() {
    let out = convert(
        Report::CONTACTS,
        ConvertSettings::default(),
        &[contact_row(&[("Queued At", "")])],
    );
    assert_eq!(
        dead_letters(&out)[0].reason,
        "column `Queued At` is empty, but a value is required"
    );
}

/// The columns value schema v2 types, as the simulator serves them for an ended phone call.
const CONTACT_V2_CELLS: [(&str, &str); 5] = [
    ("Inbox ID", "In7"),
    ("Ended At", "2024-03-14 10:20:41"),
    ("Wait Time in seconds", "31"),
    ("Handle Time in seconds", "412.5"),
    ("Hold Time in seconds", "90"),
];

#[test]
fn contact_inbox_end_and_times_become_typed_fields_in_schema_order() {
    let mut edit = CONTACT_V2_CELLS.to_vec();
    edit.extend([
        ("Channel", "PHONE_CALL"),
        ("Agent ID", "A9"),
        ("Status", "ENDED"),
    ]);
    let out = convert(
        Report::CONTACTS,
        ConvertSettings::default(),
        &[contact_row(&edit)],
    );
    let rec = records(&out)[0];
    let fields = decode_in_order(
        schemas::value_schema(Report::CONTACTS),
        IDS.value,
        rec.value.as_ref().unwrap(),
    );
    let typed: Vec<(&str, Value)> = fields
        .iter()
        .skip_while(|(n, _)| n != "final_ivr_selection")
        .skip(1)
        .take_while(|(n, _)| n != "extra")
        .map(|(n, v)| (n.as_str(), plain(v)))
        .collect();
    assert_eq!(
        typed,
        vec![
            ("inbox_id", s("In7")),
            ("ended_at", ts("2024-03-14T10:20:41Z")),
            ("wait_time_sec", Value::Double(31.0)),
            ("handle_time_sec", Value::Double(412.5)),
            ("hold_time_sec", Value::Double(90.0)),
        ]
    );
    let v = value_of(Report::CONTACTS, &out);
    let Value::Map(extra) = &v["extra"] else {
        panic!("map")
    };
    let mut names: Vec<&str> = extra.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["Agent ID", "Hold Time", "Status"],
        "typed columns are no longer in extra; untyped ones still are"
    );
}

#[test]
fn an_open_contact_has_null_end_and_times() {
    let edit: Vec<(&str, &str)> = CONTACT_V2_CELLS
        .iter()
        .map(|&(c, v)| (c, if c == "Inbox ID" { v } else { "" }))
        .collect();
    let out = convert(
        Report::CONTACTS,
        ConvertSettings::default(),
        &[contact_row(&edit)],
    );
    let v = value_of(Report::CONTACTS, &out);
    assert_eq!(v["inbox_id"], s("In7"));
    for f in [
        "ended_at",
        "wait_time_sec",
        "handle_time_sec",
        "hold_time_sec",
    ] {
        assert_eq!(v[f], Value::Null, "{f}");
    }
}

#[test]
fn a_contact_row_of_the_old_shape_still_converts_with_null_new_fields() {
    // no Inbox ID, Ended At or times; the unit-less `Hold Time` is not the typed column
    let out = convert(
        Report::CONTACTS,
        ConvertSettings::default(),
        &[contact_row(&[])],
    );
    let v = value_of(Report::CONTACTS, &out);
    for f in [
        "inbox_id",
        "ended_at",
        "wait_time_sec",
        "handle_time_sec",
        "hold_time_sec",
    ] {
        assert_eq!(v[f], Value::Null, "{f}");
    }
    let Value::Map(extra) = &v["extra"] else {
        panic!("map")
    };
    assert_eq!(extra.len(), 1);
    assert_eq!(extra["Hold Time"], s("12"));
}

#[test]
fn a_contact_written_with_value_schema_v1_reads_as_null_new_fields() {
    let v1 =
        Schema::parse_str(include_str!("../../schemas/history/v1/contacts-value.avsc")).unwrap();
    let current = Schema::parse_str(schemas::value_schema(Report::CONTACTS)).unwrap();
    let old = Value::Record(vec![
        ("queued_at".into(), Value::TimestampMillis(1)),
        ("customer_id".into(), Value::Union(0, Box::new(Value::Null))),
        (
            "conversation_id".into(),
            Value::Union(0, Box::new(Value::Null)),
        ),
        ("contact_id".into(), s("K1")),
        ("link".into(), Value::Union(0, Box::new(Value::Null))),
        ("channel".into(), Value::Union(1, Box::new(s("PHONE_CALL")))),
        ("direction".into(), Value::Union(0, Box::new(Value::Null))),
        (
            "contact_initiator".into(),
            Value::Union(0, Box::new(Value::Null)),
        ),
        ("entry_point".into(), Value::Union(0, Box::new(Value::Null))),
        (
            "final_ivr_selection".into(),
            Value::Union(0, Box::new(Value::Null)),
        ),
        (
            "extra".into(),
            Value::Map([("Hold Time in seconds".to_string(), s("90"))].into()),
        ),
        ("fetched_at".into(), Value::TimestampMillis(2)),
        ("window_start".into(), Value::TimestampMillis(0)),
        ("window_end".into(), Value::TimestampMillis(3)),
    ]);
    let bytes = apache_avro::to_avro_datum(&v1, old).unwrap();
    let read = from_avro_datum(&v1, &mut &bytes[..], Some(&current)).unwrap();
    let Value::Record(fields) = read else {
        panic!("not a record")
    };
    let v: BTreeMap<String, Value> = fields.into_iter().map(|(k, v)| (k, plain(&v))).collect();
    assert_eq!(v["hold_time_sec"], Value::Null, "v1 data keeps its extra");
    assert_eq!(v["extra_json"], s("{ }"), "older data reads the default");
    assert_eq!(v["inbox_id"], Value::Null);
    assert_eq!(v["ended_at"], Value::Null);
    assert_eq!(v["channel"], s("PHONE_CALL"));
}

#[test]
fn bad_contact_times_become_dead_letters_naming_the_column() {
    let cases: [(&str, &str, &str); 5] = [
        (
            "Ended At",
            "soon",
            "column `Ended At`: \"soon\" is not a timestamp",
        ),
        (
            "Hold Time in seconds",
            "-3",
            "column `Hold Time in seconds`: \"-3\" is negative",
        ),
        (
            "Wait Time in seconds",
            "NaN",
            "column `Wait Time in seconds`: \"NaN\" is not a number of seconds",
        ),
        (
            "Handle Time in seconds",
            "inf",
            "column `Handle Time in seconds`: \"inf\" is not a number of seconds",
        ),
        (
            "Handle Time in seconds",
            "1e30",
            "column `Handle Time in seconds`: \"1e30\" is out of range",
        ),
    ];
    for (column, cell, reason) in cases {
        let row = contact_row(&[(column, cell)]);
        let raw = columns::raw_cells(&row);
        let out = convert(Report::CONTACTS, ConvertSettings::default(), &[row]);
        let dls = dead_letters(&out);
        assert_eq!(dls.len(), 1, "{column}={cell}: {out:?}");
        assert!(
            dls[0].reason.starts_with(reason),
            "{:?} vs {reason:?}",
            dls[0].reason
        );
        assert_eq!(dls[0].raw, raw);
        assert!(records(&out).is_empty());
    }
}

// --- agent summary --------------------------------------------------------------------------

fn agent_row(edit: &[(&str, &str)]) -> Row {
    let mut cells = vec![
        ("Bucket Beginning", "2024-03-14"),
        ("Bucket End", "2024-03-15"),
        ("Name", "Ann"),
        ("Email", "ann@acme.com"),
        ("Agent ID", "A1"),
        ("User Status", "Active"),
        ("Role(s)", "Agent, Admin"),
        ("Inbox(es)", "Support"),
        ("Team(s)", "Blue"),
        ("Logged In", "2"),
        ("Logged Out", "1"),
        ("Logged In Time in seconds", "3600.5"),
        ("Went Away", "0"),
        ("Returned from Away", "0"),
        ("Changed Active Reason", "3"),
        ("Active Time in seconds", "3000"),
        ("Contact Accepted - Phone Call", "4"),
    ];
    for (k, v) in edit {
        match cells.iter_mut().find(|(c, _)| c == k) {
            Some(cell) => cell.1 = v,
            None => cells.push((k, v)),
        }
    }
    Row::from_pairs(cells)
}

#[test]
fn agent_summary_row_becomes_the_expected_record() {
    let settings = ConvertSettings {
        timezone: chrono_tz::America::Denver,
        aggregation_level: Some("halfHourly".into()),
    };
    let out = convert(Report::AGENT_SUMMARY, settings, &[agent_row(&[])]);
    let rec = records(&out)[0];
    let start = "2024-03-14T06:00:00Z"; // midnight MDT
    assert_eq!(rec.timestamp_ms, ms(start));
    assert_eq!(
        key_of(Report::AGENT_SUMMARY, rec),
        vec![s("A1"), ts(start), s("halfHourly")]
    );
    let v = value_of(Report::AGENT_SUMMARY, &out);
    assert_eq!(v["bucket_end"], ts("2024-03-15T06:00:00Z"));
    assert_eq!(v["roles"], s("Agent, Admin"));
    assert_eq!(v["logged_in"], Value::Long(2));
    assert_eq!(v["logged_in_time_sec"], Value::Double(3600.5));
    assert_eq!(v["changed_active_reason"], Value::Long(3));
    assert_eq!(v["active_time_sec"], Value::Double(3000.0));
    assert_eq!(v["aggregation_level"], s("halfHourly"));
    let Value::Map(extra) = &v["extra"] else {
        panic!("map")
    };
    assert_eq!(extra["Contact Accepted - Phone Call"], s("4"));
}

#[test]
fn agent_summary_defaults_to_daily_and_reads_the_legacy_id_column() {
    let row = Row::from_pairs([("Bucket Beginning", "2024-03-14T00:00:00Z"), ("ID", "A9")]);
    let out = convert(Report::AGENT_SUMMARY, ConvertSettings::default(), &[row]);
    let rec = records(&out)[0];
    assert_eq!(
        key_of(Report::AGENT_SUMMARY, rec),
        vec![s("A9"), ts("2024-03-14T00:00:00Z"), s("daily")]
    );
}

#[test]
fn agent_summary_bad_count_is_a_dead_letter() {
    let out = convert(
        Report::AGENT_SUMMARY,
        ConvertSettings::default(),
        &[agent_row(&[("Logged In", "two")])],
    );
    assert_eq!(
        dead_letters(&out)[0].reason,
        "column `Logged In`: \"two\" is not a whole number (like 3)"
    );
}

// --- the field tables match the .avsc files --------------------------------------------------

#[test]
fn field_tables_match_the_value_schemas() {
    use apache_avro::schema::{Schema as S, UnionSchema};
    for report in Report::BUILT_IN {
        let schema = Schema::parse_str(schemas::value_schema(report)).unwrap();
        let S::Record(rec) = schema else {
            panic!("{report}: not a record")
        };
        let conv = Converter::new(report, ConvertSettings::default(), IDS);
        let table = conv.inner.fields;
        for (field, avsc) in table.iter().zip(&rec.fields) {
            assert_eq!(field.name, avsc.name, "{report}: field order");
            let kind_ok = match (&avsc.schema, field.kind) {
                (S::String, columns::Kind::Id) => true,
                (S::TimestampMillis, columns::Kind::RequiredTs) => true,
                (S::Union(u), kind) => {
                    let UnionSchema { .. } = u;
                    let v = u.variants();
                    v.len() == 2
                        && v[0] == S::Null
                        && avsc.default == Some(serde_json::Value::Null)
                        && matches!(
                            (&v[1], kind),
                            (S::String, columns::Kind::Str)
                                | (S::TimestampMillis, columns::Kind::Ts)
                                | (S::Double, columns::Kind::Seconds)
                                | (S::Long, columns::Kind::Count)
                                | (S::Boolean, columns::Kind::Bool)
                        )
                }
                _ => false,
            };
            assert!(
                kind_ok,
                "{report}.{}: {:?} vs {:?}",
                field.name, avsc.schema, field.kind
            );
        }
        let tail: Vec<&str> = rec.fields[table.len()..]
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        let expected_tail: &[&str] = match report {
            Report::WORK_SESSIONS => &[
                "anchor_at",
                "extra",
                "extra_json",
                "fetched_at",
                "window_start",
                "window_end",
            ],
            Report::CONTACTS => &[
                "extra",
                "extra_json",
                "fetched_at",
                "window_start",
                "window_end",
            ],
            Report::AGENT_SUMMARY => &[
                "aggregation_level",
                "extra",
                "extra_json",
                "fetched_at",
                "window_start",
                "window_end",
            ],
            _ => unreachable!("built-in reports only"),
        };
        assert_eq!(
            tail, expected_tail,
            "{report}: fields written after the typed columns"
        );
        assert!(table.len() <= columns::MAX_FIELDS);
    }
}

#[test]
fn every_field_and_schema_is_documented() {
    let mut all: Vec<&str> = Report::BUILT_IN
        .iter()
        .flat_map(|r| [schemas::key_schema(*r), schemas::value_schema(*r)])
        .collect();
    all.push(schemas::dead_letter_schema());
    for text in all {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let name = json["name"].as_str().unwrap();
        assert!(json["doc"].is_string(), "{name} has no doc");
        let ns = json["namespace"].as_str().unwrap();
        assert!(ns.starts_with("com.gladly_kafka.v"), "{name}: {ns}");
        for f in json["fields"].as_array().unwrap() {
            assert!(f["doc"].is_string(), "{name}.{} has no doc", f["name"]);
        }
    }
}

#[test]
fn many_interleaved_contacts_get_exactly_their_tombstones_window_after_window() {
    // Enough contacts to grow the state's table many times (64 slots doubled to 2,048);
    // rows of a contact far apart. (5,000 took 7 s unoptimised, most of a mutation run.)
    const N: usize = 1_000;
    let conv = Converter::new(Report::WORK_SESSIONS, ConvertSettings::default(), IDS);
    let rows: Vec<Row> = (0..3)
        .flat_map(|agent| {
            (0..N).map(move |c| {
                let contact = format!("C{c}");
                let agent = format!("A{agent}");
                if c % 2 == 0 {
                    final_row(&contact, &format!("w{c}-{agent}"), &agent)
                } else {
                    open_row(&contact, &agent)
                }
            })
        })
        .collect();
    let mut previous: Option<Vec<Output>> = None;
    for _ in 0..2 {
        let mut w = conv.window(meta());
        let mut out = Vec::new();
        for r in &rows {
            w.push(r, &mut out);
        }
        w.finish(&mut out);
        let tombstones = records(&out).iter().filter(|r| r.value.is_none()).count();
        // Every contact has agent rows and no agent-less row: {C, ""} each.
        assert_eq!(tombstones, N);
        assert_eq!(records(&out).len(), 3 * N + tombstones);
        if let Some(prev) = &previous {
            assert_eq!(prev, &out, "a reused state gives the same result");
        }
        previous = Some(out);
    }
}

// --- the changelog fingerprint ------------------------------------------------------------

#[test]
fn a_published_value_gives_back_the_fingerprint_it_was_sent_with() {
    // what a restarted service reads from the topic must match what it would compute anew,
    // whatever the fetch metadata of the earlier read was
    let mut rows = vec![
        ws_row(&[]),
        ws_row(&[("brand_new_column", "x")]),
        open_row("C9", ""),
    ];
    rows.push(ws_row(&[
        ("contact_session_id", "C\u{e9}"),
        ("agent_id", "A\u{1f600}"),
    ]));
    // extra values that end in non-ASCII, a quote and a backslash: the JSON text still ends
    // in `}`, so the metadata is found from the end
    rows.push(ws_row(&[("new", "\u{1f600}"), ("q", "\""), ("b", "\\")]));
    for r in records(&ws(&rows))
        .into_iter()
        .filter(|r| r.value.is_some())
    {
        let value = r.value.as_deref().unwrap();
        assert_eq!(
            crate::records::changes::published_fingerprint(value),
            Some(r.fingerprint)
        );
        // extra_json is inside what the fingerprint covers: the fingerprinted bytes end with it
        let fields = decode(
            schemas::value_schema(Report::WORK_SESSIONS),
            IDS.value,
            value,
        );
        let Value::String(json) = &fields["extra_json"] else {
            panic!("a string")
        };
        let mut metadata = Vec::new();
        for t in [meta().fetched_at, meta().window_start, meta().window_end] {
            avro::long(&mut metadata, t.timestamp_millis());
        }
        let covered = &value[..value.len() - metadata.len()];
        assert!(covered.ends_with(json.as_bytes()), "{json}");
        assert_eq!(crate::records::changes::fingerprint(covered), r.fingerprint);
    }
    let c = convert(
        Report::CONTACTS,
        ConvertSettings::default(),
        &[contact_row(&[])],
    );
    let r = records(&c)[0];
    assert_eq!(
        crate::records::changes::published_fingerprint(r.value.as_deref().unwrap()),
        Some(r.fingerprint)
    );
}

#[test]
fn the_fingerprint_ignores_when_a_row_was_read() {
    let conv = Converter::new(Report::WORK_SESSIONS, ConvertSettings::default(), IDS);
    let read = |minute: u32| {
        let mut m = meta();
        m.fetched_at += chrono::Duration::minutes(i64::from(minute));
        m.window_start -= chrono::Duration::minutes(i64::from(minute) * 1000);
        let mut w = conv.window(m);
        let mut out = Vec::new();
        w.push(&ws_row(&[]), &mut out);
        records(&out)[0].clone()
    };
    let (a, b) = (read(0), read(7));
    assert_ne!(a.value, b.value, "the metadata differs");
    assert_eq!(a.fingerprint, b.fingerprint, "the row does not");
}
