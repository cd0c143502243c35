//! Topic admin: create the service's topics if missing, and refuse to run on topics whose
//! configuration would break the upsert contract.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer};

use super::producer::client_config;
use super::settings::{KafkaSettings, TopicSettings};
use crate::report::{BuiltIn, ReportSpec};

/// What a topic must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// The config key that names this topic (for error messages), e.g. `topics.contacts`.
    pub setting: String,
    /// `cleanup.policy=compact` (report and checkpoint topics) or `delete` (dead letters).
    pub compact: bool,
    /// Partitions when created.
    pub partitions: i32,
    /// An existing topic must have `partitions` partitions (keyed topics whose count is a
    /// setting: a key's partition depends on the count).
    pub exact_partitions: bool,
    /// Extra topic configs when created.
    pub configs: Vec<(String, String)>,
}

/// A topic problem, naming the topic, the setting and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The topic exists with a cleanup policy that breaks the contract.
    #[error("topic `{topic}` has cleanup.policy={found}, but the upsert contract needs `compact` (it keeps the last record per key): fix it with `kafka-configs.sh --alter --entity-type topics --entity-name {topic} --add-config cleanup.policy=compact`, or point `{setting}` at another topic")]
    NotCompacted {
        /// Topic.
        topic: String,
        /// Its cleanup.policy.
        found: String,
        /// The config key naming it.
        setting: String,
    },
    /// The topic exists with another partition count than the setting.
    #[error("topic `{topic}` has {found} partition(s), but topics.partitions = {wanted}: a key's partition depends on the count, so a topic whose count changed after records were written holds some keys on two partitions, and compaction keeps both. If the topic was made with {found} on purpose, set topics.partitions = {found}; otherwise point `{setting}` at a new topic and backfill it")]
    Partitions {
        /// Topic.
        topic: String,
        /// Its partition count.
        found: usize,
        /// `topics.partitions`.
        wanted: i32,
        /// The config key naming it.
        setting: String,
    },
    /// The broker refused or could not be reached.
    #[error("topic admin on `{topic}` failed: {message}")]
    Admin {
        /// Topic.
        topic: String,
        /// What the broker or client said.
        message: String,
    },
}

/// The report topics of `reports`, the dead-letter topic and the checkpoint topic. The
/// conversations topic, when enabled, is added by
/// the pipeline (`all_topic_specs`), which the service and `check` use.
pub fn topic_specs(topics: &TopicSettings, reports: &[ReportSpec]) -> Vec<TopicSpec> {
    let mut specs: Vec<TopicSpec> = reports
        .iter()
        .map(|r| TopicSpec {
            name: r.topic.clone(),
            setting: match BuiltIn::named(r.report) {
                Some(_) => format!("topics.{}", r.report),
                None => format!("reports.{}.topic", r.report),
            },
            compact: true,
            partitions: topics.partitions,
            exact_partitions: true,
            configs: vec![],
        })
        .collect();
    specs.push(TopicSpec {
        name: topics.dead_letter_topic(),
        setting: "topics.dead_letter".into(),
        compact: false,
        partitions: 1,
        exact_partitions: false,
        configs: vec![(
            "retention.ms".into(),
            (u64::from(topics.dead_letter_retention_days) * 86_400_000).to_string(),
        )],
    });
    specs.push(TopicSpec {
        name: topics.checkpoint_topic(),
        setting: "topics.checkpoints".into(),
        compact: true,
        partitions: 1,
        exact_partitions: false,
        configs: vec![],
    });
    specs
}

/// Creates missing topics and checks the cleanup policy and partition count of every one.
pub async fn ensure_topics(
    kafka: &KafkaSettings,
    replication_factor: i32,
    specs: &[TopicSpec],
) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(kafka)
            .create()
            .map_err(|e| TopicError::Admin {
                topic: "*".into(),
                message: e.to_string(),
            })?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let policies: Vec<String> = specs
        .iter()
        .map(|s| if s.compact { "compact" } else { "delete" }.to_string())
        .collect();
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&policies)
        .map(|(s, policy)| {
            let rf = if replication_factor < 0 {
                TopicReplication::Fixed(-1)
            } else {
                TopicReplication::Fixed(replication_factor)
            };
            let mut t = NewTopic::new(&s.name, s.partitions, rf).set("cleanup.policy", policy);
            for (k, v) in &s.configs {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    let results = admin
        .create_topics(new_topics.iter(), &opts)
        .await
        .map_err(|e| TopicError::Admin {
            topic: "*".into(),
            message: e.to_string(),
        })?;
    let mut created = std::collections::HashSet::new();
    for r in results {
        match r {
            Ok(name) => {
                tracing::info!(topic = %name, "created topic");
                created.insert(name);
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(TopicError::Admin {
                    topic,
                    message: format!("create failed: {code}"),
                })
            }
        }
    }
    // topics created just now have the policy we gave them (and a describe right after the
    // create may not see their configs yet): check the ones that were already there
    let existing: Vec<TopicSpec> = specs
        .iter()
        .filter(|s| !created.contains(&s.name))
        .cloned()
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    check_policies(&admin, kafka, &existing).await
}

/// Checks that every compacted topic of `specs` exists with `cleanup.policy` containing
/// `compact`, and every one with `exact_partitions` with `partitions` partitions.
pub async fn check_policies(
    admin: &AdminClient<DefaultClientContext>,
    kafka: &KafkaSettings,
    specs: &[TopicSpec],
) -> Result<(), TopicError> {
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let resources: Vec<ResourceSpecifier<'_>> = specs
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    let described = admin
        .describe_configs(resources.iter(), &opts)
        .await
        .map_err(|e| TopicError::Admin {
            topic: "*".into(),
            message: e.to_string(),
        })?;
    for (spec, res) in specs.iter().zip(described) {
        let resource = res.map_err(|code: RDKafkaErrorCode| TopicError::Admin {
            topic: spec.name.clone(),
            message: format!("describe configs failed: {code}"),
        })?;
        let policy = resource
            .get("cleanup.policy")
            .and_then(|e| e.value.clone())
            .unwrap_or_else(|| "delete".into());
        if spec.compact && !policy.split(',').any(|p| p.trim() == "compact") {
            return Err(TopicError::NotCompacted {
                topic: spec.name.clone(),
                found: policy,
                setting: spec.setting.clone(),
            });
        }
    }
    check_partitions(kafka, specs).await
}

/// Checks the partition count of every topic of `specs` with `exact_partitions`.
async fn check_partitions(kafka: &KafkaSettings, specs: &[TopicSpec]) -> Result<(), TopicError> {
    let admin_error = |e: rdkafka::error::KafkaError| TopicError::Admin {
        topic: "*".into(),
        message: e.to_string(),
    };
    let config = client_config(kafka);
    let counts = tokio::task::spawn_blocking(move || {
        let client: BaseProducer = config.create().map_err(admin_error)?;
        let metadata = client
            .client()
            .fetch_metadata(None, Duration::from_secs(30))
            .map_err(admin_error)?;
        Ok::<_, TopicError>(
            metadata
                .topics()
                .iter()
                .map(|t| (t.name().to_string(), t.partitions().len()))
                .collect::<std::collections::HashMap<_, _>>(),
        )
    })
    .await
    .map_err(|e| TopicError::Admin {
        topic: "*".into(),
        message: e.to_string(),
    })??;
    for spec in specs.iter().filter(|s| s.exact_partitions) {
        match counts.get(&spec.name) {
            Some(&found) if found != spec.partitions as usize => {
                return Err(TopicError::Partitions {
                    topic: spec.name.clone(),
                    found,
                    wanted: spec.partitions,
                    setting: spec.setting.clone(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// An admin client for `check` and `status`.
pub fn admin_client(
    kafka: &KafkaSettings,
) -> Result<AdminClient<DefaultClientContext>, rdkafka::error::KafkaError> {
    client_config(kafka).create()
}
