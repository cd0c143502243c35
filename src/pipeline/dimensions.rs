//! The dimension topics (`[dimensions] enabled = true`): Gladly's agents, inboxes, teams and
//! topics lists, refreshed on `dimensions.cadence_secs` into compacted topics keyed by id.
//!
//! A refresh of one list is one GET (paced with GET Conversation under
//! `gladly.requests_per_second`) and one transaction: the records of the items whose value
//! changed since the last refresh, a tombstone for every id no longer listed, and the list's
//! record in the checkpoint topic (key `dimension/<list>`, a JSON [`ListCheckpoint`]). That
//! record holds every id published with its value's fingerprint, so a restarted service
//! publishes only what changed while it was down, tombstones included.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use rdkafka::message::OwnedHeaders;

use super::checkpoint::DIMENSION_KEY_PREFIX;
use super::context::Context;
use super::engine::{Engine, Transaction};
use super::error::{DimensionError, Failure};
use super::internal_events::ListRefreshed;
use super::job::read_json;
use super::source::{drive, Cursored, Source, Written};
use super::summary::Summary;
use crate::config::Config;
use crate::kafka::admin::TopicSpec;
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::kafka::{headers, Outgoing, OwnedOutgoing};
use crate::records::dimensions::item_id;
use crate::records::{schemas, DimensionEncoder, Record, SchemaIds};
use crate::report::DimensionList;
use crate::VERSION;

/// The key of a list's record in the checkpoint topic: `dimension/<list>`.
pub fn checkpoint_key(list: DimensionList) -> String {
    format!("{DIMENSION_KEY_PREFIX}{list}")
}

/// A list's record in the checkpoint topic, written in the refresh's transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListCheckpoint {
    /// The list.
    pub list: DimensionList,
    /// When the list was fetched (service clock).
    pub refreshed_at: DateTime<Utc>,
    /// The run that wrote it.
    pub run_id: String,
    /// Service version that wrote it.
    pub service_version: String,
    /// Every id the topic holds a value for, with that value's fingerprint (without
    /// `fetched_at`): what the next refresh compares with.
    pub ids: BTreeMap<String, u64>,
}

/// The compacted topics of the enabled lists.
pub fn topic_specs(config: &Config) -> Vec<TopicSpec> {
    config
        .dimensions
        .enabled_lists()
        .into_iter()
        .map(|list| TopicSpec {
            name: config.topics.dimension_topic(list),
            setting: format!("topics.{list}"),
            compact: true,
            partitions: config.topics.partitions,
            exact_partitions: true,
            configs: vec![],
        })
        .collect()
}

/// What one list's refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSummary {
    /// The list.
    pub list: DimensionList,
    /// Items Gladly listed.
    pub items: u64,
    /// Records published (changed or new items), tombstones not included.
    pub records: u64,
    /// Tombstones published (ids no longer listed).
    pub tombstones: u64,
    /// Items without an id (logged, not published).
    pub skipped: u64,
}

/// The dimension lists of a [`Pipeline`]: encoders and topics.
pub(crate) struct DimensionSource {
    lists: Vec<(DimensionList, DimensionEncoder, String)>,
}

impl DimensionSource {
    /// The source for `config` (`None` when `[dimensions]` is disabled); registers each
    /// enabled list's schemas.
    pub(crate) async fn connect(
        config: &Config,
        registry: &RegistryClient,
    ) -> Result<Option<DimensionSource>, RegistryError> {
        let enabled = config.dimensions.enabled_lists();
        if enabled.is_empty() {
            return Ok(None);
        }
        let mut lists = Vec::new();
        for list in enabled {
            let topic = config.topics.dimension_topic(list);
            let key = registry
                .register(&format!("{topic}-key"), schemas::dimension_key_schema(list))
                .await?;
            let value = registry
                .register(
                    &format!("{topic}-value"),
                    schemas::dimension_value_schema(list),
                )
                .await?;
            let ids = SchemaIds { key, value };
            lists.push((list, DimensionEncoder::new(list, ids), topic));
        }
        Ok(Some(DimensionSource { lists }))
    }
}

impl DimensionSource {
    /// Refreshes the enabled lists that are due (`due_only`: not refreshed within
    /// `dimensions.cadence_secs`), or all of them, each in its own transaction through the
    /// engine's driver (retried like a report window); the first list that cannot be
    /// refreshed stops the refresh (the lists before it stay published).
    pub(crate) async fn refresh(
        &self,
        ctx: &Context,
        due_only: bool,
    ) -> Result<Vec<ListSummary>, DimensionError> {
        let cfg = &ctx.config;
        let mut refresh = ListRefresh {
            ctx,
            source: self,
            last: read_list_checkpoints(cfg).await?,
            due_only,
            done: Vec::new(),
        };
        let due = refresh.plan();
        let Some(first) = due.first().copied() else {
            return Ok(Vec::new());
        };
        let txid = format!("{}.dimensions", cfg.transactional_id_prefix());
        let engine = Engine::open(&cfg.kafka, txid, "dimensions", ctx.metrics.clone())
            .await
            .map_err(|source| DimensionError::Sink {
                list: first,
                source,
            })?;
        drive(ctx, &engine, &mut refresh, due, None).await?;
        Ok(refresh.done)
    }

    /// The next instant a list is due (now when one is due or never refreshed).
    pub(crate) async fn next_due(&self, ctx: &Context) -> Result<DateTime<Utc>, DimensionError> {
        let last = read_list_checkpoints(&ctx.config).await?;
        let now = ctx.clock.now();
        Ok(self
            .lists
            .iter()
            .map(|(list, _, _)| due_at(ctx, &last, *list, now))
            .min()
            .unwrap_or(now))
    }
}

/// When `list` is due: `dimensions.cadence_secs` after its last refresh, or `now` if never.
fn due_at(
    ctx: &Context,
    last: &BTreeMap<DimensionList, ListCheckpoint>,
    list: DimensionList,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let cadence = chrono::Duration::seconds(ctx.config.dimensions.cadence_secs as i64);
    last.get(&list).map_or(now, |c| c.refreshed_at + cadence)
}

/// A refresh of the due lists, as a source: a unit is one list; its cursor is the list's
/// record in the checkpoint topic.
struct ListRefresh<'a> {
    ctx: &'a Context,
    source: &'a DimensionSource,
    /// Every list's last record.
    last: BTreeMap<DimensionList, ListCheckpoint>,
    /// Only the lists not refreshed within `dimensions.cadence_secs` are due (else all).
    due_only: bool,
    /// The lists refreshed so far.
    done: Vec<ListSummary>,
}

/// A written list, until it is committed.
struct ListDone {
    summary: ListSummary,
    checkpoint: ListCheckpoint,
    headers: OwnedHeaders,
}

impl Source for ListRefresh<'_> {
    type Unit = DimensionList;
    type Done = ListDone;

    fn label(&self) -> &str {
        "dimensions"
    }

    /// GETs the list, then sends what changed since the list's last record and a tombstone
    /// for every id no longer listed.
    async fn write(
        &mut self,
        list: &DimensionList,
        tx: &mut Transaction,
    ) -> Result<Written<ListDone>, Failure> {
        let list = *list;
        let (_, encoder, topic) = self
            .source
            .lists
            .iter()
            .find(|(l, _, _)| *l == list)
            .expect("a unit is an enabled list");
        let items = self.ctx.gladly.list(list).await.map_err(Failure::Gladly)?;
        let fetched_at = self.ctx.clock.now();
        let previous = self
            .last
            .get(&list)
            .map(|c| c.ids.clone())
            .unwrap_or_default();
        let mut summary = ListSummary {
            list,
            items: items.len() as u64,
            records: 0,
            tombstones: 0,
            skipped: 0,
        };
        let mut current: BTreeMap<String, Record> = BTreeMap::new();
        for item in &items {
            match (item_id(item), encoder.record(item, fetched_at)) {
                (Some(id), Some(r)) => {
                    current.insert(id.to_string(), r);
                }
                _ => {
                    summary.skipped += 1;
                    tracing::warn!(list = %list, item = %serde_json::Value::Object(item.clone()), "list item without an id: not published");
                }
            }
        }
        let changed: Vec<&Record> = current
            .iter()
            .filter(|(id, r)| previous.get(*id) != Some(&r.fingerprint))
            .map(|(_, r)| r)
            .collect();
        let gone: Vec<Record> = previous
            .keys()
            .filter(|id| !current.contains_key(*id))
            .map(|id| encoder.tombstone(id, fetched_at))
            .collect();
        summary.records = changed.len() as u64;
        summary.tombstones = gone.len() as u64;
        let fetched = fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let headers = headers([
            ("gladly.list", list.name()),
            ("gladly.fetched_at", fetched.as_str()),
            ("gladly.run_id", self.ctx.run_id.as_str()),
            ("gladly.service_version", VERSION),
        ]);
        for r in changed.into_iter().chain(gone.iter()) {
            tx.send(Outgoing {
                topic,
                key: Some(&r.key),
                value: r.value.as_deref(),
                timestamp_ms: r.timestamp_ms,
                headers: &headers,
            })
            .await
            .map_err(Failure::Sink)?;
        }
        let checkpoint = ListCheckpoint {
            list,
            refreshed_at: fetched_at,
            run_id: self.ctx.run_id.clone(),
            service_version: VERSION.to_string(),
            ids: current
                .iter()
                .map(|(id, r)| (id.clone(), r.fingerprint))
                .collect(),
        };
        Ok(Written::Complete(ListDone {
            summary,
            checkpoint,
            headers,
        }))
    }
}

impl Cursored for ListRefresh<'_> {
    fn kind(&self) -> &'static str {
        "list"
    }

    /// The enabled lists, or those not refreshed within `dimensions.cadence_secs`.
    fn plan(&self) -> Vec<DimensionList> {
        let now = self.ctx.clock.now();
        self.source
            .lists
            .iter()
            .map(|(list, _, _)| *list)
            .filter(|list| !self.due_only || due_at(self.ctx, &self.last, *list, now) <= now)
            .collect()
    }

    fn cursor(&self, list: &DimensionList, done: &ListDone) -> OwnedOutgoing {
        OwnedOutgoing {
            topic: self.ctx.config.topics.checkpoint_topic(),
            key: checkpoint_key(*list).into_bytes(),
            value: serde_json::to_vec(&done.checkpoint).expect("a list checkpoint serialises"),
            // wall-clock time, like the reports' checkpoints
            timestamp_ms: Utc::now().timestamp_millis(),
            headers: done.headers.clone(),
        }
    }

    fn committed(&mut self, _list: &DimensionList, done: ListDone) -> Summary {
        let s = &done.summary;
        ListRefreshed {
            list: s.list.name(),
            items: s.items,
            records: s.records,
            tombstones: s.tombstones,
            at: done.checkpoint.refreshed_at,
            metrics: &self.ctx.metrics,
        }
        .emit();
        self.last.insert(s.list, done.checkpoint);
        let summary = Summary {
            windows: 1,
            records: s.records + s.tombstones,
            tombstones: s.tombstones,
            ..Summary::default()
        };
        self.done.push(done.summary);
        summary
    }
}

/// The latest record of every list in the checkpoint topic; unreadable ones are logged and
/// skipped (the list is then refreshed as if new).
async fn read_list_checkpoints(
    cfg: &Config,
) -> Result<BTreeMap<DimensionList, ListCheckpoint>, DimensionError> {
    let records = read_json::<ListCheckpoint>(cfg, |k| k.starts_with(DIMENSION_KEY_PREFIX)).await?;
    Ok(records.into_values().map(|c| (c.list, c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_checkpoint_round_trips_under_its_key() {
        let c = ListCheckpoint {
            list: DimensionList::Teams,
            refreshed_at: "2024-03-14T10:00:00Z".parse().unwrap(),
            run_id: "r".into(),
            service_version: "0.1.0".into(),
            ids: [("t1".to_string(), u64::MAX), ("t2".to_string(), 7)].into(),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""list":"teams""#), "{json}");
        assert_eq!(serde_json::from_str::<ListCheckpoint>(&json).unwrap(), c);
        assert_eq!(checkpoint_key(DimensionList::Teams), "dimension/teams");
    }

    #[test]
    fn only_enabled_lists_get_compacted_topics() {
        let mut c = Config::default();
        assert!(topic_specs(&c).is_empty());
        c.dimensions.enabled = true;
        c.dimensions.lists = vec![DimensionList::Agents, DimensionList::Topics];
        let specs = topic_specs(&c);
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["gladly.agents", "gladly.topics"]);
        assert!(specs.iter().all(|s| s.compact));
        assert_eq!(specs[1].setting, "topics.topics");
    }
}
