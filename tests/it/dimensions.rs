//! The dimension topics end to end: `once` refreshes the simulator's agents, inboxes, teams
//! and topics lists into the real broker on the world's manual clock, across the simulator's
//! schedule (day 2: the base lists; day 3: a rename and additions; day 4: removals).
//!
//! - After every refresh each topic, read `read_committed` and upserted by key (tombstones
//!   drop keys), equals the simulator's list at that time; the removed ids end in tombstones.
//! - A refresh that finds nothing changed publishes nothing; a list refreshed within the
//!   cadence is not fetched again by `once`.
//! - The removals are refreshed by a freshly connected pipeline: the tombstones come from the
//!   ids kept in the checkpoint topic, not from memory.
//! - `check` GETs each enabled list once; the `run` binary refreshes the lists and exports
//!   their metrics.

use crate::support;

use std::collections::BTreeMap;

use chrono::Duration;
use gladly_kafka::pipeline::dimensions::ListSummary;
use gladly_kafka::pipeline::service;
use gladly_kafka::records::{decode, schemas};
use gladly_kafka::report::DimensionList;
use serde_json::{json, Value};

use support::kafka::ReadRecord;
use support::pipeline::{t0, world, World};

/// `once` for the dimension lists, by list.
async fn refresh(p: &gladly_kafka::pipeline::Pipeline) -> BTreeMap<DimensionList, ListSummary> {
    service::once_dimensions(p, true)
        .await
        .expect("refresh")
        .into_iter()
        .map(|s| (s.list, s))
        .collect()
}

async fn read(topic: String) -> Vec<ReadRecord> {
    tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap()
}

/// The topic of `list`, upserted by id: id -> value without `fetched_at`; plus every record
/// read (tombstones included), by id, in order.
async fn upserted(
    w: &World,
    list: DimensionList,
) -> (
    BTreeMap<String, Value>,
    BTreeMap<String, Vec<Option<Value>>>,
) {
    let records = read(w.config.topics.dimension_topic(list)).await;
    let (mut live, mut all) = (BTreeMap::new(), BTreeMap::<String, Vec<_>>::new());
    for r in records {
        let key =
            decode::to_json(r.key.as_ref().unwrap(), schemas::dimension_key_schema(list)).unwrap();
        let id = key["id"].as_str().unwrap().to_string();
        let value = r.value.map(|v| {
            let mut j = decode::to_json(&v, schemas::dimension_value_schema(list)).unwrap();
            j.as_object_mut().unwrap().remove("fetched_at");
            j
        });
        all.entry(id.clone()).or_default().push(value.clone());
        match value {
            Some(v) => live.insert(id, v),
            None => live.remove(&id),
        };
    }
    (live, all)
}

/// What the topic should hold for the simulator's `list` now: every schema field from the
/// item's camelCase field, missing ones at their default.
fn expected(w: &World, list: DimensionList) -> BTreeMap<String, Value> {
    let schema: Value = serde_json::from_str(schemas::dimension_value_schema(list)).unwrap();
    let fields: Vec<String> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .filter(|f| f != "fetched_at")
        .collect();
    let camel = |f: &str| {
        let mut out = String::new();
        let mut up = false;
        for c in f.chars() {
            if c == '_' {
                up = true;
            } else if up {
                out.extend(c.to_uppercase());
                up = false;
            } else {
                out.push(c);
            }
        }
        out
    };
    w.sim
        .list(list.name())
        .unwrap()
        .into_iter()
        .map(|item| {
            let mut v = serde_json::Map::new();
            for f in &fields {
                let got = item.get(camel(f)).cloned();
                let default = match f.as_str() {
                    "extra" => json!({}),
                    // the simulator's items have no undocumented field: an empty object
                    "extra_json" => json!("{}"),
                    "agent_ids" => json!([]),
                    _ => Value::Null,
                };
                v.insert(f.clone(), got.unwrap_or(default));
            }
            // an array field's twin is its JSON text (serde_json's compact form, as published)
            for f in fields
                .iter()
                .filter(|f| f.ends_with("_json") && *f != "extra_json")
            {
                let array = &v[f.trim_end_matches("_json")];
                assert!(array.is_array(), "{f} twins an array");
                let text = serde_json::to_string(array).unwrap();
                v.insert(f.clone(), Value::String(text));
            }
            (item["id"].as_str().unwrap().to_string(), Value::Object(v))
        })
        .collect()
}

/// Every list's topic equals the simulator's list; returns the live ids of each.
async fn assert_converged(w: &World) -> BTreeMap<DimensionList, usize> {
    let mut out = BTreeMap::new();
    for list in DimensionList::ALL {
        let (live, _) = upserted(w, list).await;
        let want = expected(w, list);
        assert_eq!(live, want, "{list} topic differs from the simulator's list");
        out.insert(list, live.len());
    }
    out
}

/// Records (tombstones included) in each list's topic.
async fn record_counts(w: &World) -> BTreeMap<DimensionList, usize> {
    let mut out = BTreeMap::new();
    for list in DimensionList::ALL {
        out.insert(
            list,
            read(w.config.topics.dimension_topic(list)).await.len(),
        );
    }
    out
}

/// (records, tombstones) of each list's refresh.
fn published(s: &BTreeMap<DimensionList, ListSummary>) -> Vec<(DimensionList, u64, u64)> {
    s.values()
        .map(|l| (l.list, l.records, l.tombstones))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimension_topics_converge_through_an_add_a_rename_and_a_removal() {
    use DimensionList::*;
    let mut w = world(5.0).await;
    w.config.dimensions.enabled = true;
    w.config.gladly.requests_per_second = 50;
    // day 2 of the simulator's schedule: the base lists
    let p = w.pipeline().await;
    let first = refresh(&p).await;
    assert_eq!(first.len(), 4, "every list is due at the first refresh");
    assert!(first
        .values()
        .all(|s| s.records == s.items && s.tombstones == 0));
    let sizes = assert_converged(&w).await;
    assert_eq!(sizes[&Agents], 12);

    // a cadence later nothing changed: every list is fetched, nothing published
    let before = record_counts(&w).await;
    w.clock.advance(Duration::hours(1));
    let same = refresh(&p).await;
    assert_eq!(same.len(), 4);
    assert!(
        same.values().all(|s| s.records == 0 && s.tombstones == 0),
        "{same:?}"
    );
    assert_eq!(record_counts(&w).await, before);
    // within the cadence no list is due
    w.clock.advance(Duration::minutes(30));
    assert!(refresh(&p).await.is_empty());

    // day 3: agent 1 renamed and a new hire (who joins team 0), inbox 0 disabled and one
    // added, team "Weekend" added, topic "Holiday" added
    w.clock.set(t0() + Duration::days(1) + Duration::hours(1));
    let day3 = refresh(&p).await;
    assert_eq!(
        published(&day3),
        [
            (Agents, 2, 0),
            (Inboxes, 2, 0),
            (Teams, 2, 0),
            (Topics, 1, 0)
        ]
    );
    assert_converged(&w).await;
    drop(p);

    // day 4, after a restart: agent 2 removed (team 2 loses them), the added inbox removed,
    // team 1 renamed, topic 6 removed and "Holiday" disabled
    w.clock.set(t0() + Duration::days(2) + Duration::hours(1));
    let p = w.pipeline().await;
    let day4 = refresh(&p).await;
    assert_eq!(
        published(&day4),
        [
            (Agents, 0, 1),
            (Inboxes, 0, 1),
            (Teams, 2, 0),
            (Topics, 1, 1)
        ]
    );
    let sizes = assert_converged(&w).await;
    assert_eq!(sizes[&Agents], 12);
    let gone_agent = w.sim.list_at("agents", t0()).unwrap()[2]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, all) = upserted(&w, Agents).await;
    assert_eq!(
        all[&gone_agent].last(),
        Some(&None),
        "the removed agent's last record is a tombstone"
    );
    assert_eq!(
        all[&gone_agent].len(),
        2,
        "published once, then its tombstone"
    );

    // the checkpoint record holds the ids listed now
    let checkpoints = read(w.config.topics.checkpoint_topic()).await;
    let last = checkpoints
        .iter()
        .rev()
        .find(|r| r.key.as_deref() == Some(b"dimension/agents".as_slice()))
        .expect("the agents' checkpoint record");
    let c: Value = serde_json::from_slice(last.value.as_ref().unwrap()).unwrap();
    let ids: Vec<&String> = c["ids"].as_object().unwrap().keys().collect();
    let want = expected(&w, Agents);
    assert_eq!(ids, want.keys().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_gets_each_enabled_list_once() {
    let mut w = world(5.0).await;
    w.config.dimensions.enabled = true;
    w.config.dimensions.lists = vec![DimensionList::Agents, DimensionList::Topics];
    let clock: gladly_kafka::clock::SharedClock = std::sync::Arc::new(w.clock.clone());
    assert!(gladly_kafka::pipeline::check::check(&w.config, clock).await);
    let requests = w.sim.stats().requests;
    assert_eq!(requests.get("agents"), Some(&1));
    assert_eq!(requests.get("topics"), Some(&1));
    assert_eq!(requests.get("inboxes"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refreshes_the_lists_and_exports_their_metrics() {
    use support::service::{self, Running};
    let w = world(5.0).await;
    let mut table = service::config_table(&w);
    service::set(&mut table, "dimensions.enabled", true);
    let svc = Running::start(&w, table);
    let agents = w.sim.list("agents").unwrap().len() as f64;
    let started = std::time::Instant::now();
    let scrape = loop {
        if let Some(s) = svc.scrape().await {
            if s.value("gladly_kafka_dimension_items", &[("list", "topics")]) > 0.0
                && s.value("gladly_kafka_dimension_items", &[("list", "agents")]) > 0.0
            {
                break s;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no dimension refresh within 120 s:\n{}",
            svc.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let items = |list| scrape.value("gladly_kafka_dimension_items", &[("list", list)]);
    assert_eq!(items("agents"), agents);
    assert_eq!(
        scrape.value(
            "gladly_kafka_dimension_records_total",
            &[("list", "agents"), ("kind", "record")]
        ),
        agents
    );
    assert!(
        scrape.value(
            "gladly_kafka_dimension_refreshed_timestamp_seconds",
            &[("list", "agents")]
        ) > 0.0
    );
    let (live, _) = upserted(&w, DimensionList::Agents).await;
    assert_eq!(live, expected(&w, DimensionList::Agents));
    assert!(svc.stop(std::time::Duration::from_secs(30)).await.success());
}
