//! What users set for the sink: `[kafka]` (broker, delivery mode, librdkafka pass-through),
//! `[topics]` (names and creation settings) and `[registry]` (the schema registry).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use reqwest::Url;
use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::report::DimensionList;
use crate::report::{BuiltIn, Report};

/// How records and checkpoints reach Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// One Kafka transaction per window holds its records, tombstones and checkpoint: a crash
    /// leaves both or neither, and the transactional id fences a second instance. Consumers
    /// read with `isolation.level=read_committed`.
    #[default]
    ExactlyOnce,
    /// Idempotent producer; the checkpoint is written after every record of the window is
    /// acknowledged. A crash may re-publish a window (harmless: consumers upsert by key).
    /// For brokers without transactions.
    AtLeastOnce,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Delivery::ExactlyOnce => "exactly-once",
            Delivery::AtLeastOnce => "at-least-once",
        })
    }
}

/// `[kafka]`: where to publish and how.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// `bootstrap.servers`, e.g. `broker1:9092,broker2:9092`.
    pub bootstrap_servers: String,
    /// `exactly-once` (default) or `at-least-once`.
    pub delivery: Delivery,
    /// Prefix of the transactional ids (`<prefix>.<report>`; backfills add `.backfill`).
    /// Default: `gladly-kafka.<topics.prefix>`. Two instances with the same prefix fence each
    /// other: the newer one wins.
    pub transactional_id_prefix: Option<String>,
    /// Transaction timeout in seconds (`transaction.timeout.ms`): a window must be published
    /// within it. Default 900.
    pub transaction_timeout_secs: u64,
    /// Any further librdkafka property, passed through as is (SASL, SSL, `compression.type`,
    /// `linger.ms`, …). Values are never logged.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            bootstrap_servers: "127.0.0.1:9092".into(),
            delivery: Delivery::ExactlyOnce,
            transactional_id_prefix: None,
            transaction_timeout_secs: 900,
            properties: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .properties
            .keys()
            .map(|k| (k.as_str(), "***"))
            .collect();
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("delivery", &self.delivery)
            .field("transactional_id_prefix", &self.transactional_id_prefix)
            .field("transaction_timeout_secs", &self.transaction_timeout_secs)
            .field("properties", &props)
            .finish()
    }
}

/// librdkafka properties the service sets itself: users may not override them, because the
/// delivery guarantees depend on them.
const RESERVED: [&str; 5] = [
    "transactional.id",
    "enable.idempotence",
    "isolation.level",
    "enable.auto.commit",
    "bootstrap.servers",
];

impl KafkaSettings {
    /// Checks every value, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(ConfigError::invalid(
                "kafka.bootstrap_servers",
                "is empty: set it to your brokers, e.g. \"broker1:9092,broker2:9092\"",
            ));
        }
        if self.transaction_timeout_secs < 10 {
            return Err(ConfigError::invalid(
                "kafka.transaction_timeout_secs",
                "must be at least 10 (a window has to be published within it)",
            ));
        }
        for key in self.properties.keys() {
            if RESERVED.contains(&key.as_str()) {
                let fix = if key == "bootstrap.servers" {
                    "set kafka.bootstrap_servers instead"
                } else {
                    "the service sets it from kafka.delivery; remove it"
                };
                return Err(ConfigError::invalid(
                    format!("kafka.properties.{key}"),
                    format!("cannot be overridden: {fix}"),
                ));
            }
        }
        Ok(())
    }
}

/// `[topics]`: names and how missing topics are created.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicSettings {
    /// Prefix of every topic name: `<prefix>.work_sessions.v3`, `<prefix>.contacts`, ….
    pub prefix: String,
    /// Override the work-sessions topic name (a topic of key v3 keys: never one written by an
    /// older version with key v1 or v2).
    pub work_sessions: Option<String>,
    /// Override the contacts topic name.
    pub contacts: Option<String>,
    /// Override the agent-summary topic name.
    pub agent_summary: Option<String>,
    /// Override the conversations topic name.
    pub conversations: Option<String>,
    /// Override the events topic name (`[events]`).
    pub events: Option<String>,
    /// Override the agents topic name (`[dimensions]`).
    pub agents: Option<String>,
    /// Override the inboxes topic name (`[dimensions]`).
    pub inboxes: Option<String>,
    /// Override the teams topic name (`[dimensions]`).
    pub teams: Option<String>,
    /// Override the topics topic name (`[dimensions]`: Gladly's conversation topics).
    pub topics: Option<String>,
    /// Override the dead-letter topic name.
    pub dead_letter: Option<String>,
    /// Override the checkpoint topic name.
    pub checkpoints: Option<String>,
    /// Partitions of topics the service creates.
    pub partitions: i32,
    /// Replication factor of topics the service creates (`-1` = the broker's default).
    pub replication_factor: i32,
    /// Retention of the dead-letter topic in days.
    pub dead_letter_retention_days: u32,
}

impl Default for TopicSettings {
    fn default() -> Self {
        TopicSettings {
            prefix: "gladly".into(),
            work_sessions: None,
            contacts: None,
            agent_summary: None,
            conversations: None,
            events: None,
            agents: None,
            inboxes: None,
            teams: None,
            topics: None,
            dead_letter: None,
            checkpoints: None,
            partitions: 3,
            replication_factor: -1,
            dead_letter_retention_days: 30,
        }
    }
}

impl TopicSettings {
    /// The topic a report publishes to by default: the built-in report's `[topics]` name if
    /// set, else `<prefix>.<topic>` of its [`BuiltIn`] entry (`<prefix>.work_sessions.v3` for
    /// work sessions, whose key changed in v2 and v3), else `<prefix>.<report>`.
    pub fn report_topic(&self, report: Report) -> String {
        let custom = [
            ("work_sessions", &self.work_sessions),
            ("contacts", &self.contacts),
            ("agent_summary", &self.agent_summary),
        ]
        .into_iter()
        .find(|(name, _)| *name == report.name())
        .and_then(|(_, custom)| custom.clone());
        let default = BuiltIn::named(report).map_or(report.name(), |b| b.topic);
        custom.unwrap_or_else(|| format!("{}.{default}", self.prefix))
    }

    /// The compacted topic of GET Conversation answers, keyed by conversation id.
    pub fn conversations_topic(&self) -> String {
        self.conversations
            .clone()
            .unwrap_or_else(|| format!("{}.conversations", self.prefix))
    }

    /// The compacted topic of Gladly's events (`[events]`), keyed by event id: `<prefix>.events`.
    pub fn events_topic(&self) -> String {
        self.events
            .clone()
            .unwrap_or_else(|| format!("{}.events", self.prefix))
    }

    /// The compacted topic of a Gladly list (`[dimensions]`), keyed by id: `<prefix>.<list>`.
    pub fn dimension_topic(&self, list: DimensionList) -> String {
        let custom = match list {
            DimensionList::Agents => &self.agents,
            DimensionList::Inboxes => &self.inboxes,
            DimensionList::Teams => &self.teams,
            DimensionList::Topics => &self.topics,
        };
        custom
            .clone()
            .unwrap_or_else(|| format!("{}.{}", self.prefix, list.name()))
    }

    /// The dead-letter topic (delete policy).
    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}.dead_letter", self.prefix))
    }

    /// The compacted topic holding checkpoints.
    pub fn checkpoint_topic(&self) -> String {
        self.checkpoints
            .clone()
            .unwrap_or_else(|| format!("{}._checkpoints", self.prefix))
    }

    /// Checks every value, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let legal = |s: &str| {
            !s.is_empty()
                && s.len() <= 200
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !legal(&self.prefix) {
            return Err(ConfigError::invalid(
                "topics.prefix",
                format!(
                    "{:?} is not a legal topic name part: use letters, digits, '.', '_' and '-'",
                    self.prefix
                ),
            ));
        }
        for (key, v) in [
            ("work_sessions", &self.work_sessions),
            ("contacts", &self.contacts),
            ("agent_summary", &self.agent_summary),
            ("conversations", &self.conversations),
            ("events", &self.events),
            ("agents", &self.agents),
            ("inboxes", &self.inboxes),
            ("teams", &self.teams),
            ("topics", &self.topics),
            ("dead_letter", &self.dead_letter),
            ("checkpoints", &self.checkpoints),
        ] {
            if let Some(name) = v {
                if !legal(name) {
                    return Err(ConfigError::invalid(
                        format!("topics.{key}"),
                        format!("{name:?} is not a legal topic name: use letters, digits, '.', '_' and '-'"),
                    ));
                }
            }
        }
        if self.partitions < 1 {
            return Err(ConfigError::invalid(
                "topics.partitions",
                "must be at least 1",
            ));
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            return Err(ConfigError::invalid(
                "topics.replication_factor",
                "must be -1 (the broker's default) or at least 1",
            ));
        }
        Ok(())
    }
}

/// `[registry]` settings.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// Base URL of the Confluent-compatible API, including any path prefix
    /// (Apicurio: `http://host:8080/apis/ccompat/v7`).
    pub url: String,
    /// Basic-auth user (Confluent Cloud: the API key).
    pub username: Option<String>,
    /// Basic-auth password (Confluent Cloud: the API secret); never printed.
    pub password: Option<String>,
    /// Per-request timeout in seconds.
    pub timeout_secs: u64,
    /// A PEM file of CA certificates the client trusts besides the public roots: for a
    /// registry whose certificate a private CA signed.
    pub ca_file: Option<PathBuf>,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            url: String::new(),
            username: None,
            password: None,
            timeout_secs: 30,
            ca_file: None,
        }
    }
}

impl fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout_secs", &self.timeout_secs)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl RegistrySettings {
    /// Checks the settings, naming the `registry.<key>` at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.base_url()?;
        if self.ca_file.is_some() && url.scheme() != "https" {
            return Err(ConfigError::invalid(
                "registry.ca_file",
                "is set but registry.url is not https://: use the registry's https:// URL, \
                 or remove registry.ca_file",
            ));
        }
        self.ca_certificates()?;
        match (&self.username, &self.password) {
            (Some(_), None) => Err(ConfigError::invalid(
                "registry.password",
                "registry.username is set but the password is not: set both for basic auth, or neither",
            )),
            (None, Some(_)) => Err(ConfigError::invalid(
                "registry.username",
                "registry.password is set but the username is not: set both for basic auth, or neither",
            )),
            _ if self.timeout_secs == 0 => Err(ConfigError::invalid(
                "registry.timeout_secs",
                "must be at least 1 (seconds per registry request)",
            )),
            _ => Ok(()),
        }
    }

    /// The certificates of `registry.ca_file` (none when it is not set), each checked to be
    /// usable as a trust anchor.
    pub(crate) fn ca_certificates(&self) -> Result<Vec<reqwest::Certificate>, ConfigError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;

        let Some(path) = &self.ca_file else {
            return Ok(vec![]);
        };
        let invalid = |m: String| ConfigError::invalid("registry.ca_file", m);
        let pem = std::fs::read(path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        let mut certificates = vec![];
        for der in CertificateDer::pem_slice_iter(&pem) {
            let der = der.map_err(|e| {
                invalid(format!(
                    "{} is not a PEM file of certificates: {e}",
                    path.display()
                ))
            })?;
            rustls::RootCertStore::empty()
                .add(der.clone())
                .map_err(|e| {
                    invalid(format!(
                        "{} holds a certificate that cannot be a CA: {e}",
                        path.display()
                    ))
                })?;
            certificates.push(
                reqwest::Certificate::from_der(&der)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?,
            );
        }
        if certificates.is_empty() {
            return Err(invalid(format!(
                "{} holds no certificate: it must be PEM (-----BEGIN CERTIFICATE-----)",
                path.display()
            )));
        }
        Ok(certificates)
    }

    pub(crate) fn base_url(&self) -> Result<Url, ConfigError> {
        let key = "registry.url";
        if self.url.trim().is_empty() {
            return Err(ConfigError::invalid(
                key,
                "is required: the schema registry's base URL, e.g. http://localhost:8081 \
                 (Apicurio: http://host:8080/apis/ccompat/v7)",
            ));
        }
        let url = Url::parse(self.url.trim())
            .map_err(|e| ConfigError::invalid(key, format!("{:?} is not a URL: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(ConfigError::invalid(
                key,
                format!("{:?} must be an http:// or https:// URL", self.url),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::invalid(
                key,
                format!("{:?} must not have a query or fragment", self.url),
            ));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_the_prefix_unless_overridden() {
        let mut t = TopicSettings::default();
        assert_eq!(
            t.report_topic(Report::WORK_SESSIONS),
            "gladly.work_sessions.v3"
        );
        assert_eq!(t.dead_letter_topic(), "gladly.dead_letter");
        assert_eq!(t.conversations_topic(), "gladly.conversations");
        t.prefix = "acme".into();
        t.contacts = Some("cc.contacts".into());
        assert_eq!(t.report_topic(Report::AGENT_SUMMARY), "acme.agent_summary");
        assert_eq!(t.report_topic(Report::CONTACTS), "cc.contacts");
        assert_eq!(t.checkpoint_topic(), "acme._checkpoints");
    }

    #[test]
    fn reserved_properties_are_refused_by_name() {
        let mut k = KafkaSettings::default();
        k.properties
            .insert("enable.idempotence".into(), "false".into());
        let err = k.validate().unwrap_err().to_string();
        assert!(err.contains("kafka.properties.enable.idempotence"), "{err}");
        assert!(err.contains("kafka.delivery"), "{err}");
    }

    #[test]
    fn debug_hides_property_values() {
        let mut k = KafkaSettings::default();
        k.properties
            .insert("sasl.password".into(), "hunter2".into());
        let shown = format!("{k:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sasl.password"), "{shown}");
    }

    #[test]
    fn bad_topic_names_are_named() {
        let t = TopicSettings {
            prefix: "a b".into(),
            ..TopicSettings::default()
        };
        let err = t.validate().unwrap_err().to_string();
        assert!(err.contains("topics.prefix"), "{err}");
    }
}
