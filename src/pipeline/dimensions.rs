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
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::checkpoint::{read_latest, CheckpointError, DIMENSION_KEY_PREFIX};
use super::connect::Pipeline;
use super::job::{block, new_publisher};
use crate::config::Config;
use crate::gladly::GladlyError;
use crate::kafka::admin::TopicSpec;
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::kafka::{headers, Outgoing, Publisher, SinkError};
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

/// Why a list could not be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum DimensionError {
    /// Gladly failed past the retries, refused the credentials, or answered something else than
    /// a list.
    #[error("{list}: GET failed: {source}")]
    Gladly {
        /// The list.
        list: DimensionList,
        /// Gladly's answer.
        source: GladlyError,
    },
    /// Kafka refused or could not be reached; the refresh's transaction was aborted.
    #[error("{list}: publishing failed: {source}")]
    Sink {
        /// The list.
        list: DimensionList,
        /// The producer's error.
        source: SinkError,
    },
    /// The checkpoint topic could not be read.
    #[error(transparent)]
    Checkpoints(#[from] CheckpointError),
    /// A task panicked.
    #[error("the {0} task panicked")]
    Panicked(&'static str),
}

impl DimensionError {
    /// True when retrying cannot help: refused credentials, or another instance holds the
    /// transactional id.
    pub fn is_fatal(&self) -> bool {
        match self {
            DimensionError::Gladly { source, .. } => source.is_credentials(),
            DimensionError::Sink { source, .. } => source.is_fenced(),
            _ => false,
        }
    }
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

impl Pipeline {
    /// Refreshes the enabled lists that are due (`due_only`: not refreshed within
    /// `dimensions.cadence_secs`), or all of them. Each list is its own transaction; the first
    /// failure stops the refresh (the lists before it stay published).
    pub async fn refresh_dimensions(
        &self,
        due_only: bool,
    ) -> Result<Vec<ListSummary>, DimensionError> {
        let Some(source) = self.inner.dimensions.as_ref() else {
            return Ok(Vec::new());
        };
        let cfg = self.config();
        let last = read_list_checkpoints(cfg).await?;
        let now = self.clock().now();
        let cadence = chrono::Duration::seconds(cfg.dimensions.cadence_secs as i64);
        let due: Vec<_> = source
            .lists
            .iter()
            .filter(|(list, _, _)| {
                !due_only
                    || last
                        .get(list)
                        .is_none_or(|c| c.refreshed_at + cadence <= now)
            })
            .collect();
        let mut out = Vec::new();
        if due.is_empty() {
            return Ok(out);
        }
        let first = due[0].0;
        let txid = format!("{}.dimensions", cfg.transactional_id_prefix());
        let publisher = new_publisher(cfg, &txid)
            .await
            .map_err(|source| DimensionError::Sink {
                list: first,
                source,
            })?;
        for (list, encoder, topic) in due {
            let previous = last.get(list).map(|c| c.ids.clone()).unwrap_or_default();
            let s = self
                .refresh_list(&publisher, *list, encoder, topic, previous)
                .await?;
            tracing::info!(list = %list, items = s.items, records = s.records, tombstones = s.tombstones, "dimension list refreshed");
            out.push(s);
        }
        Ok(out)
    }

    /// The next instant a list is due (now when one is due or never refreshed).
    pub async fn dimensions_next_due(&self) -> Result<DateTime<Utc>, DimensionError> {
        let cfg = self.config();
        let last = read_list_checkpoints(cfg).await?;
        let cadence = chrono::Duration::seconds(cfg.dimensions.cadence_secs as i64);
        let now = self.clock().now();
        Ok(cfg
            .dimensions
            .enabled_lists()
            .iter()
            .map(|l| last.get(l).map_or(now, |c| c.refreshed_at + cadence))
            .min()
            .unwrap_or(now + cadence))
    }

    /// One list: GET it, then publish what changed, the tombstones and the list's checkpoint
    /// record in one transaction.
    async fn refresh_list(
        &self,
        publisher: &Publisher,
        list: DimensionList,
        encoder: &DimensionEncoder,
        topic: &str,
        previous: BTreeMap<String, u64>,
    ) -> Result<ListSummary, DimensionError> {
        let items = self
            .gladly()
            .list(list)
            .await
            .map_err(|source| DimensionError::Gladly { list, source })?;
        let fetched_at = self.clock().now();
        let mut s = ListSummary {
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
                    s.skipped += 1;
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
        s.records = changed.len() as u64;
        s.tombstones = gone.len() as u64;
        let checkpoint = ListCheckpoint {
            list,
            refreshed_at: fetched_at,
            run_id: self.run_id().to_string(),
            service_version: VERSION.to_string(),
            ids: current
                .iter()
                .map(|(id, r)| (id.clone(), r.fingerprint))
                .collect(),
        };
        let records = changed.into_iter().chain(gone.iter());
        let sent = block(|| self.publish_list(publisher, list, topic, records, &checkpoint));
        if let Err(source) = sent {
            let _ = block(|| publisher.abort());
            return Err(DimensionError::Sink { list, source });
        }
        self.list_refreshed(&s, fetched_at);
        Ok(s)
    }

    /// The transaction of one refresh: its records, then the checkpoint record, committed.
    fn publish_list<'a>(
        &self,
        publisher: &Publisher,
        list: DimensionList,
        topic: &str,
        records: impl Iterator<Item = &'a Record>,
        checkpoint: &ListCheckpoint,
    ) -> Result<(), SinkError> {
        let fetched = checkpoint
            .refreshed_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let h = headers([
            ("gladly.list", list.name()),
            ("gladly.fetched_at", fetched.as_str()),
            ("gladly.run_id", self.run_id()),
            ("gladly.service_version", VERSION),
        ]);
        publisher.begin()?;
        for r in records {
            publisher.send(Outgoing {
                topic,
                key: Some(&r.key),
                value: r.value.as_deref(),
                timestamp_ms: r.timestamp_ms,
                headers: &h,
            })?;
        }
        let key = checkpoint_key(list);
        let value = serde_json::to_vec(checkpoint).expect("a list checkpoint serialises");
        publisher.finish(Outgoing {
            topic: &self.config().topics.checkpoint_topic(),
            key: Some(key.as_bytes()),
            value: Some(&value),
            // wall-clock time, like the reports' checkpoints
            timestamp_ms: Utc::now().timestamp_millis(),
            headers: &h,
        })
    }

    /// Counts a committed refresh.
    fn list_refreshed(&self, s: &ListSummary, at: DateTime<Utc>) {
        let m = self.metrics();
        let list = s.list.name();
        for (kind, n) in [("record", s.records), ("tombstone", s.tombstones)] {
            m.count(
                "gladly_kafka_dimension_records_total",
                &[("list", list), ("kind", kind)],
                n as f64,
            );
        }
        m.gauge(
            "gladly_kafka_dimension_items",
            &[("list", list)],
            s.items as f64,
        );
        m.gauge(
            "gladly_kafka_dimension_refreshed_timestamp_seconds",
            &[("list", list)],
            at.timestamp_millis() as f64 / 1000.0,
        );
    }
}

/// The latest record of every list in the checkpoint topic; unreadable ones are logged and
/// skipped (the list is then refreshed as if new).
async fn read_list_checkpoints(
    cfg: &Config,
) -> Result<BTreeMap<DimensionList, ListCheckpoint>, DimensionError> {
    let kafka = cfg.kafka.clone();
    let topic = cfg.topics.checkpoint_topic();
    let raw = tokio::task::spawn_blocking(move || {
        read_latest(&kafka, &topic, Duration::from_secs(60), |k| {
            k.starts_with(DIMENSION_KEY_PREFIX)
        })
    })
    .await
    .map_err(|_| DimensionError::Panicked("checkpoint reader"))??;
    let mut out = BTreeMap::new();
    for (key, v) in raw {
        match serde_json::from_slice::<ListCheckpoint>(&v) {
            Ok(c) => {
                out.insert(c.list, c);
            }
            Err(e) => tracing::warn!(key, error = %e, "skipping an unreadable list checkpoint"),
        }
    }
    Ok(out)
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
