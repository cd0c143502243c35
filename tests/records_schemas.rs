//! The schema evolution guard: every schema in `schemas/` must be BACKWARD compatible with
//! every version recorded under `schemas/history/<version>/` (a consumer using the current
//! schema can read all data written with a recorded one), checked with apache-avro's
//! resolution rules. Key schemas must not change within a topic: a new key schema id changes
//! the key bytes, and compaction would keep the old and the new record side by side. A new
//! key therefore comes with a new default topic name: each `schemas/history/v<N>/topics.json`
//! records the default topic (after the prefix) of every source at that version, and a key
//! schema is compared with the recorded versions that had the same topic (and only those need
//! be readable with it: another topic is another registry subject).
//!
//! To release a schema change: edit `schemas/*.avsc` compatibly, then copy the files to a new
//! `schemas/history/v<N>/` with its `topics.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use gladly_kafka::kafka::TopicSettings;
use gladly_kafka::records::schemas;
use gladly_kafka::report::DimensionList;
use gladly_kafka::report::Report;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// `file name -> text` of the `.avsc` files directly in `path`.
fn avsc_files(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "avsc"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

fn history() -> BTreeMap<String, BTreeMap<String, String>> {
    std::fs::read_dir(dir().join("history"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                avsc_files(&p),
            )
        })
        .collect()
}

fn parse(name: &str, text: &str) -> Schema {
    Schema::parse_str(text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// Why `new` cannot read data written with `old`, if it cannot.
fn backward_problem(old: &Schema, new: &Schema) -> Option<String> {
    SchemaCompatibility::can_read(old, new)
        .err()
        .map(|e| e.to_string())
}

#[test]
fn current_schemas_are_the_compiled_in_contract() {
    let files = avsc_files(&dir());
    for r in Report::BUILT_IN {
        assert_eq!(files[&format!("{r}-key.avsc")], schemas::key_schema(r));
        assert_eq!(files[&format!("{r}-value.avsc")], schemas::value_schema(r));
    }
    assert_eq!(
        files["dead_letter-value.avsc"],
        schemas::dead_letter_schema()
    );
    assert_eq!(
        files["conversations-key.avsc"],
        schemas::conversation_key_schema()
    );
    assert_eq!(
        files["conversations-value.avsc"],
        schemas::conversation_value_schema()
    );
    for list in DimensionList::ALL {
        assert_eq!(
            files[&format!("{list}-key.avsc")],
            schemas::dimension_key_schema(list)
        );
        assert_eq!(
            files[&format!("{list}-value.avsc")],
            schemas::dimension_value_schema(list)
        );
    }
    assert_eq!(files["events-key.avsc"], schemas::events_key_schema());
    assert_eq!(files["events-value.avsc"], schemas::events_value_schema());
    assert_eq!(files.len(), 19, "{:?}", files.keys());
}

#[test]
fn every_schema_is_backward_compatible_with_every_recorded_version() {
    let current = avsc_files(&dir());
    let history = history();
    assert!(
        !history.is_empty(),
        "schemas/history has no recorded version"
    );
    let mut checked = 0;
    for (version, files) in &history {
        for (name, old_text) in files {
            let Some(new_text) = current.get(name) else {
                panic!("{name} of {version} was removed from schemas/: a topic's schema can't be dropped")
            };
            let old = parse(&format!("history/{version}/{name}"), old_text);
            let new = parse(name, new_text);
            let key = name.ends_with("-key.avsc");
            if key && !same_topic(version, name) {
                // a key of another topic (another registry subject): no reader of today's
                // topic ever meets it, so it need not be readable (key v2's nullable agent_id
                // is not readable as key v3's string)
                checked += 1;
                continue;
            }
            if let Some(why) = backward_problem(&old, &new) {
                panic!(
                    "schemas/{name} cannot read data written with history/{version}/{name}: {why}"
                );
            }
            if key {
                assert_eq!(
                    new.canonical_form(),
                    old.canonical_form(),
                    "key schema {name} changed since {version}: key bytes would change and compaction break"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 9);
}

/// The default topics (after the prefix) of every source at `version`.
fn topics(version: &str) -> BTreeMap<String, String> {
    let path = dir().join("history").join(version).join("topics.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: record the version's topics", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The default topic (after the prefix) of each source today.
fn current_topics() -> BTreeMap<String, String> {
    let settings = TopicSettings {
        prefix: "p".into(),
        ..TopicSettings::default()
    };
    let strip = |t: String| t.strip_prefix("p.").unwrap().to_string();
    let mut out: BTreeMap<String, String> = Report::BUILT_IN
        .iter()
        .map(|r| (r.name().to_string(), strip(settings.report_topic(*r))))
        .collect();
    out.insert(
        "conversations".into(),
        strip(settings.conversations_topic()),
    );
    out.insert("events".into(), strip(settings.events_topic()));
    for list in DimensionList::ALL {
        out.insert(list.name().into(), strip(settings.dimension_topic(list)));
    }
    out
}

/// True when the source of `name` (`work_sessions-key.avsc`) had today's topic at `version`.
fn same_topic(version: &str, name: &str) -> bool {
    let source = name.trim_end_matches("-key.avsc");
    topics(version).get(source) == current_topics().get(source)
}

#[test]
fn the_latest_recorded_version_has_todays_topics() {
    let history = history();
    let latest = history
        .keys()
        .max_by_key(|v| v[1..].parse::<u32>().unwrap())
        .unwrap();
    assert_eq!(
        topics(latest),
        current_topics(),
        "history/{latest}/topics.json"
    );
    for (version, files) in &history {
        for (name, text) in files.iter().filter(|(n, _)| n.ends_with("-key.avsc")) {
            if let Some(current) = avsc_files(&dir()).get(name) {
                let changed =
                    parse(name, text).canonical_form() != parse(name, current).canonical_form();
                assert!(
                    !changed || !same_topic(version, name),
                    "{name} changed since {version} without a new topic"
                );
            }
        }
    }
}

#[test]
fn every_current_schema_is_recorded_in_history() {
    let history = history();
    for name in avsc_files(&dir()).keys() {
        assert!(
            history.values().any(|files| files.contains_key(name)),
            "{name} is in no schemas/history/<version>/: record it when releasing"
        );
    }
}

/// Edits the current work-session value schema's JSON.
fn edited(edit: impl FnOnce(&mut Vec<serde_json::Value>)) -> Schema {
    let mut json: serde_json::Value =
        serde_json::from_str(schemas::value_schema(Report::WORK_SESSIONS)).unwrap();
    edit(json["fields"].as_array_mut().unwrap());
    Schema::parse(&json).unwrap()
}

#[test]
fn incompatible_changes_are_caught() {
    let v1 = parse("v1", schemas::value_schema(Report::WORK_SESSIONS));
    let field = |name: &str, ty: serde_json::Value| serde_json::json!({"name": name, "type": ty, "doc": "test"});
    let cases: Vec<(&str, Schema)> = vec![
        (
            "a field added without a default",
            edited(|f| f.push(field("hold_time_sec", serde_json::json!("double")))),
        ),
        (
            "a field's type changed",
            edited(|f| f[1]["type"] = serde_json::json!("long")),
        ),
        (
            "null removed from a union",
            edited(|f| {
                f[3]["type"] = serde_json::json!("string");
                f[3].as_object_mut().unwrap().remove("default");
            }),
        ),
        (
            "a double narrowed to a long",
            edited(|f| f[15]["type"] = serde_json::json!(["null", "long"])),
        ),
    ];
    for (what, new) in cases {
        assert!(backward_problem(&v1, &new).is_some(), "not caught: {what}");
    }
}

#[test]
fn compatible_changes_pass() {
    let v1 = parse("v1", schemas::value_schema(Report::WORK_SESSIONS));
    let cases: Vec<(&str, Schema)> = vec![
        (
            "a nullable field added with a null default",
            edited(|f| {
                f.push(serde_json::json!({"name": "hold_time_sec", "type": ["null", "double"], "default": null, "doc": "t"}))
            }),
        ),
        (
            "a field removed",
            edited(|f| {
                f.remove(13);
            }),
        ),
        (
            "a union widened with a new branch",
            edited(|f| f[15]["type"] = serde_json::json!(["null", "double", "string"])),
        ),
    ];
    for (what, new) in cases {
        assert_eq!(backward_problem(&v1, &new), None, "{what}");
    }
}
