//! Loading, overrides, validation messages, and the example config and the book's
//! configuration reference (docs/configuration.md) documenting every key.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::report::{DimensionList, Report, Source};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    #[serde(default)]
    reports: ReportsConfig,
    #[serde(default)]
    kafka: ProbeKafka,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProbeKafka {
    bootstrap_servers: String,
    properties: BTreeMap<String, String>,
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn defaults_are_valid() {
    let p: Probe = load_from(None, env(&[])).unwrap();
    p.reports.validate().unwrap();
    assert_eq!(p.reports.work_sessions.lookback_minutes, 120);
    let cfg = Config {
        reports: p.reports.clone(),
        ..Config::default()
    };
    let spec = |r| cfg.spec(r).unwrap().source;
    assert!(matches!(
        spec(Report::AGENT_SUMMARY),
        Source::MetricSet { aggregation_level: Some(l), .. } if l == "daily"
    ));
    assert!(matches!(
        spec(Report::CONTACTS),
        Source::MetricSet { metric_set, time_precise: true, .. } if metric_set == "ContactExportReportV3"
    ));
}

#[test]
fn env_overrides_file_with_typed_values() {
    let f =
        file("[reports.work_sessions]\ncadence_secs = 60\n[kafka]\nbootstrap_servers = \"a:1\"\n");
    let p: Probe = load_from(
        Some(f.path()),
        env(&[
            ("GLADLY_KAFKA__KAFKA__BOOTSTRAP_SERVERS", "b:2"),
            ("GLADLY_KAFKA__REPORTS__WORK_SESSIONS__ENABLED", "false"),
            ("GLADLY_KAFKA__KAFKA__PROPERTIES__sasl.password", "12345"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(p.kafka.bootstrap_servers, "b:2");
    assert!(!p.reports.work_sessions.enabled);
    assert_eq!(p.reports.work_sessions.cadence_secs, 60);
    // a numeric-looking secret stays text
    assert_eq!(p.kafka.properties["sasl.password"], "12345");
}

#[test]
fn wrong_type_names_the_key_and_the_variable() {
    let err = load_from::<Probe>(
        None,
        env(&[("GLADLY_KAFKA__REPORTS__CONTACTS__HORIZON_DAYS", "soon")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("reports.contacts.horizon_days"), "{err}");
    assert!(
        err.contains("GLADLY_KAFKA__REPORTS__CONTACTS__HORIZON_DAYS"),
        "{err}"
    );
}

#[test]
fn unknown_key_is_named() {
    let f = file("[reports.contacts]\nhorizon = 3\n");
    let err = load_from::<Probe>(Some(f.path()), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("reports.contacts"), "{err}");
    assert!(err.contains("horizon"), "{err}");
}

#[test]
fn validation_names_key_and_fix() {
    let mut r = ReportsConfig::default();
    r.work_sessions.lookback_minutes = 30;
    let err = r.validate().unwrap_err().to_string();
    assert!(
        err.contains("reports.work_sessions.lookback_minutes") && err.contains("60"),
        "{err}"
    );

    let mut r = ReportsConfig::default();
    r.contacts.timezone = "Mars/Olympus".into();
    let err = r.validate().unwrap_err().to_string();
    assert!(
        err.contains("reports.contacts.timezone") && err.contains("IANA"),
        "{err}"
    );

    let mut r = ReportsConfig::default();
    r.agent_summary.aggregation_level = Some("hourly".into());
    let err = r.validate().unwrap_err().to_string();
    assert!(
        err.contains("reports.agent_summary.aggregation_level"),
        "{err}"
    );
}

#[test]
fn dimensions_are_off_by_default_and_their_keys_are_checked() {
    let d = DimensionsSettings::default();
    assert!(d.enabled_lists().is_empty());
    assert_eq!(d.cadence_secs, 3600);
    let p: Config = load_from(
        None,
        env(&[
            ("GLADLY_KAFKA__DIMENSIONS__ENABLED", "true"),
            ("GLADLY_KAFKA__DIMENSIONS__LISTS", r#"["topics", "agents"]"#),
        ]),
    )
    .unwrap();
    let lists: Vec<_> = p
        .dimensions
        .enabled_lists()
        .iter()
        .map(|l| l.name())
        .collect();
    assert_eq!(lists, ["agents", "topics"]);
    let p: Config = load_from(
        None,
        env(&[("GLADLY_KAFKA__DIMENSIONS__LISTS", "teams, inboxes")]),
    )
    .unwrap();
    assert_eq!(
        p.dimensions.lists,
        [DimensionList::Teams, DimensionList::Inboxes]
    );
    let err = load_from::<Config>(None, env(&[("GLADLY_KAFKA__DIMENSIONS__LISTS", "widgets")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dimensions.lists") && err.contains("agents"),
        "{err}"
    );
    let mut d = DimensionsSettings {
        cadence_secs: 30,
        ..DimensionsSettings::default()
    };
    let err = d.validate().unwrap_err().to_string();
    assert!(err.contains("dimensions.cadence_secs"), "{err}");
    d.cadence_secs = 3600;
    d.enabled = true;
    d.lists.clear();
    let err = d.validate().unwrap_err().to_string();
    assert!(err.contains("dimensions.lists"), "{err}");
}

#[test]
fn the_example_config_documents_a_valid_config() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let c: Config = load_from(
        Some(&path),
        env(&[("GLADLY_KAFKA__GLADLY__TOKEN", "t0ken")]),
    )
    .expect("config/example.toml parses");
    c.validate().expect("config/example.toml is valid");
    assert_eq!(c.reports.work_sessions.lookback_minutes, 120);
    assert_eq!(c.pipeline.row_cap, 100_000);
    let text = std::fs::read_to_string(&path).unwrap();
    for section in [
        "[gladly]",
        "[kafka]",
        "[kafka.properties]",
        "[registry]",
        "[topics]",
        "[reports.work_sessions]",
        "[reports.contacts]",
        "[reports.agent_summary]",
        "[conversations]",
        "[pipeline]",
        "[observe]",
    ] {
        assert!(text.contains(section), "example lacks {section}");
    }
}

/// The fields serde accepts in `section` (dotted; "" = top level), read from its
/// "unknown field" error: the real list, whatever the docs say.
fn fields_of(section: &str) -> Vec<String> {
    let mut var = ENV_PREFIX.to_string();
    for part in section.split('.').filter(|p| !p.is_empty()) {
        var.push_str(&part.to_ascii_uppercase());
        var.push_str("__");
    }
    var.push_str("ZZ_PROBE");
    let err = load_from::<Config>(None, vec![(var, "1".to_string())])
        .unwrap_err()
        .to_string();
    let expected = err
        .split("expected")
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"));
    let fields: Vec<String> = expected
        .lines()
        .next()
        .unwrap()
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    assert!(!fields.is_empty(), "{err}");
    fields
}

/// Keys of `config/example.toml` per section, set or commented out (`# key = ...`), and
/// set keys without a comment line right above them.
fn example_keys(text: &str) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut uncommented = Vec::new();
    let mut section = String::new();
    let mut prev = "";
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else {
            let commented = line.strip_prefix('#').map(str::trim_start);
            let body = commented.unwrap_or(line);
            if let Some((key, _)) = body.split_once(" = ") {
                if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    keys.entry(section.clone())
                        .or_default()
                        .push(key.to_string());
                    if commented.is_none() && !prev.starts_with('#') {
                        uncommented.push(format!("{section}.{key}"));
                    }
                }
            }
        }
        prev = line;
    }
    (keys, uncommented)
}

#[test]
fn every_key_is_in_the_example_with_a_comment_and_in_the_reference() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(dir.join("config/example.toml")).unwrap();
    let reference = std::fs::read_to_string(dir.join("docs/configuration.md")).unwrap();
    let (keys, uncommented) = example_keys(&example);
    assert!(
        uncommented.is_empty(),
        "keys without a comment above them in config/example.toml: {uncommented:?}"
    );
    let mut sections = vec![];
    for top in fields_of("") {
        if top == "reports" {
            // the built-in reports, and one configured by columns
            sections.extend(
                [
                    "work_sessions",
                    "contacts",
                    "agent_summary",
                    "conversation_export",
                ]
                .map(|r| format!("reports.{r}")),
            );
        } else {
            sections.push(top);
        }
    }
    assert!(sections.len() >= 9, "{sections:?}");
    let mut missing = vec![];
    for section in &sections {
        assert!(
            example.contains(&format!("[{section}]")),
            "config/example.toml lacks [{section}]"
        );
        for field in fields_of(section) {
            if section == "kafka" && field == "properties" {
                assert!(example.contains("[kafka.properties]"));
                continue;
            }
            let dotted = format!("{section}.{field}");
            // shared with agent_summary, refused for contacts: documented in the reference only
            let not_for_contacts = dotted == "reports.contacts.aggregation_level";
            // refused for the built-in reports, documented under the configured one
            let configured_only = [
                "preset",
                "key",
                "anchor",
                "time_precise",
                "time_range",
                "topic",
            ]
            .contains(&field.as_str())
                && section != "reports.conversation_export";
            if configured_only {
                continue;
            }
            // documented once, under [reports.contacts]
            let shared = section == "reports.conversation_export"
                && ["aggregation_level", "start", "reread", "filters"].contains(&field.as_str());
            if shared {
                continue;
            }
            if !not_for_contacts && !keys.get(section).is_some_and(|k| k.contains(&field)) {
                missing.push(format!("{dotted} (config/example.toml)"));
            }
            if !reference.contains(&format!("`{dotted}`")) {
                missing.push(format!(
                    "{dotted} (docs/configuration.md, the reference table)"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented keys: {missing:#?}");
}

#[test]
fn conversations_need_work_sessions() {
    let mut c: Config = load_from(
        None,
        env(&[
            ("GLADLY_KAFKA__GLADLY__HOST", "https://acme.gladly.com"),
            ("GLADLY_KAFKA__GLADLY__EMAIL", "api@acme.com"),
            ("GLADLY_KAFKA__GLADLY__TOKEN", "t"),
            ("GLADLY_KAFKA__REGISTRY__URL", "http://127.0.0.1:8081"),
            ("GLADLY_KAFKA__CONVERSATIONS__ENABLED", "true"),
        ]),
    )
    .unwrap();
    assert!(!ConversationsSettings::default().enabled, "off by default");
    c.validate().unwrap();
    c.reports.work_sessions.enabled = false;
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("conversations.enabled") && err.contains("reports.work_sessions.enabled"),
        "{err}"
    );
}

#[test]
fn a_wrong_value_in_the_whole_config_names_the_key() {
    let err = load_from::<Config>(None, env(&[("GLADLY_KAFKA__KAFKA__DELIVERY", "twice")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("kafka.delivery"), "{err}");
}

#[test]
fn syntax_error_names_the_file() {
    let f = file("[reports\n");
    let err = load_from::<Probe>(Some(f.path()), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not valid TOML"), "{err}");
}

#[test]
fn reread_tiers_load_from_tables_inline_arrays_and_environment_text() {
    let f = file(
        "[[reports.work_sessions.reread]]\nspan_hours = 48\nevery_minutes = 60\n\
         [reports.contacts]\nreread = [{ span_days = 10, every_hours = 6 }]\n",
    );
    let p: Probe = load_from(
        Some(f.path()),
        env(&[("GLADLY_KAFKA__REPORTS__AGENT_SUMMARY__REREAD", "[]")]),
    )
    .unwrap();
    p.reports.validate().unwrap();
    assert_eq!(
        p.reports.work_sessions.reread,
        Some(vec![InstantTier {
            span_hours: 48,
            every_minutes: 60
        }])
    );
    assert_eq!(
        p.reports.contacts.reread,
        Some(vec![DateTier {
            span_days: 10,
            every_hours: 6
        }])
    );
    assert_eq!(p.reports.agent_summary.reread, Some(vec![]));
    let p: Probe = load_from(
        None,
        env(&[(
            "GLADLY_KAFKA__REPORTS__WORK_SESSIONS__REREAD",
            "[{span_hours = 12, every_minutes = 30}]",
        )]),
    )
    .unwrap();
    assert_eq!(p.reports.work_sessions.reread.unwrap()[0].span_hours, 12);
    // unset: the defaults
    let p: Probe = load_from(None, env(&[])).unwrap();
    assert_eq!(p.reports.work_sessions.reread, None);
}

#[test]
fn a_wrong_reread_tier_names_the_key() {
    let f = file("[[reports.work_sessions.reread]]\nspan_hours = 48\n");
    let err = load_from::<Probe>(Some(f.path()), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("reports.work_sessions.reread") && err.contains("every_minutes"),
        "{err}"
    );
    let f = file("[[reports.contacts.reread]]\nspan_hours = 48\nevery_hours = 1\n");
    let err = load_from::<Probe>(Some(f.path()), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("reports.contacts.reread") && err.contains("span_hours"),
        "{err}"
    );
    let err = load_from::<Probe>(
        None,
        env(&[("GLADLY_KAFKA__REPORTS__CONTACTS__REREAD", "30 days")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("reports.contacts.reread") && err.contains("not a TOML array"),
        "{err}"
    );
}

/// A config that passes every check but the ones a test is about.
fn valid() -> Config {
    load_from(
        None,
        env(&[
            ("GLADLY_KAFKA__GLADLY__HOST", "https://acme.gladly.com"),
            ("GLADLY_KAFKA__GLADLY__EMAIL", "api@acme.com"),
            ("GLADLY_KAFKA__GLADLY__TOKEN", "t"),
            ("GLADLY_KAFKA__REGISTRY__URL", "http://127.0.0.1:8081"),
        ]),
    )
    .unwrap()
}

#[test]
fn the_tiers_in_force_and_how_far_the_memory_reaches() {
    let mut c = valid();
    c.validate().unwrap();
    let names =
        |c: &Config, r| -> Vec<String> { c.reread_tiers(r).iter().map(RereadTier::name).collect() };
    assert_eq!(names(&c, Report::WORK_SESSIONS), ["24h", "168h"]);
    assert_eq!(names(&c, Report::CONTACTS), ["30d"]);
    assert_eq!(
        c.reread_horizon(Report::WORK_SESSIONS),
        chrono::Duration::days(7)
    );
    assert_eq!(
        c.reread_horizon(Report::AGENT_SUMMARY),
        chrono::Duration::days(32)
    );
    // a start reads back only what the live poll re-reads
    assert_eq!(
        c.live_reread_horizon(Report::WORK_SESSIONS),
        chrono::Duration::minutes(120)
    );
    assert_eq!(
        c.live_reread_horizon(Report::AGENT_SUMMARY),
        chrono::Duration::days(5)
    );
    // tiers off: the live re-read alone, as before tiers
    c.reports.work_sessions.reread = Some(vec![]);
    c.reports.contacts.reread = Some(vec![]);
    assert_eq!(
        c.reread_horizon(Report::WORK_SESSIONS),
        chrono::Duration::minutes(120)
    );
    assert_eq!(
        c.reread_horizon(Report::CONTACTS),
        chrono::Duration::days(5)
    );
    // a lookback of a day leaves only the weekly default in force
    c.reports.work_sessions.reread = None;
    c.reports.work_sessions.lookback_minutes = 24 * 60;
    assert_eq!(names(&c, Report::WORK_SESSIONS), ["168h"]);
    c.validate().unwrap();
}

#[test]
fn validate_refuses_schedules_over_the_request_budget() {
    let mut c = valid();
    c.reports.work_sessions.cadence_secs = 60;
    c.reports.work_sessions.max_window_minutes = 10;
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("gladly.requests_per_minute")
            && err.contains("work_sessions live needs 780/h")
            && err.contains("reports.work_sessions.cadence_secs"),
        "{err}"
    );
}

/// The error validating `toml` as the `[reports]` of a valid config.
fn reports_error(toml: &str) -> String {
    let f = file(toml);
    let p: Probe = load_from(Some(f.path()), env(&[])).expect("loads");
    let c = Config {
        reports: p.reports,
        ..valid()
    };
    c.validate().unwrap_err().to_string()
}

#[test]
fn a_report_configured_by_columns_loads_from_a_preset_or_its_columns() {
    let f = file(
        "[reports.conversation_export]\npreset = \"conversation_export\"\nhorizon_days = 7\n\
         [reports.tickets]\nmetric_set = \"ConversationTimestampsReport\"\n\
         key = [\"Conversation ID\", \"Event Type\", \"Timestamp\"]\nanchor = \"Timestamp\"\n\
         filters = { inboxes = [\"ib1\"] }\ntopic = \"cc.ticket_events\"\n",
    );
    let p: Probe = load_from(Some(f.path()), env(&[])).unwrap();
    let c = Config {
        reports: p.reports,
        ..valid()
    };
    c.validate().unwrap();
    let ce = Report::named("conversation_export").unwrap();
    let tickets = Report::named("tickets").unwrap();
    assert_eq!(
        c.enabled_reports(),
        [
            Report::WORK_SESSIONS,
            Report::CONTACTS,
            Report::AGENT_SUMMARY,
            ce,
            tickets
        ]
    );
    let spec = c.spec(ce).unwrap();
    assert_eq!(spec.metric_set(), Some("ConversationExportReport"));
    assert_eq!(
        spec.required_columns(),
        [
            vec!["Conversation ID".to_string()],
            vec!["Created At".into()]
        ]
    );
    assert_eq!(
        spec.topic,
        format!("{}.conversation_export", c.topics.prefix)
    );
    let spec = c.spec(tickets).unwrap();
    assert_eq!(spec.topic, "cc.ticket_events");
    assert!(matches!(
        spec.source,
        Source::MetricSet { filters: Some(f), .. } if f == serde_json::json!({"inboxes": ["ib1"]})
    ));
}

#[test]
fn a_wrong_report_section_names_the_key_and_the_fix() {
    // a typo of a built-in report is a report configured by columns without its columns
    let err = reports_error("[reports.contact]\nhorizon_days = 5\n");
    assert!(
        err.contains("reports.contact.metric_set") && err.contains("preset"),
        "{err}"
    );
    let err = reports_error("[reports.x]\npreset = \"tickets\"\n");
    assert!(
        err.contains("reports.x.preset") && err.contains("conversation_export"),
        "{err}"
    );
    let err = reports_error("[reports.contacts]\npreset = \"conversation_export\"\n");
    assert!(err.contains("reports.contacts.preset"), "{err}");
    let err = reports_error("[reports.x]\nmetric_set = \"M\"\nkey = []\nanchor = \"A\"\n");
    assert!(err.contains("reports.x.key"), "{err}");
    let err = reports_error("[reports.Bad-Name]\npreset = \"conversation_export\"\n");
    assert!(err.contains("reports.Bad-Name"), "{err}");
    let err = reports_error(
        "[reports.a]\npreset = \"conversation_export\"\ntopic = \"t\"\n\
         [reports.b]\npreset = \"contact_timestamps\"\ntopic = \"t\"\n",
    );
    assert!(err.contains("both publish to t"), "{err}");
}
