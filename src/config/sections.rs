//! The small sections: `[conversations]`, `[dimensions]`, `[pipeline]`, `[observe]`.

use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::report::DimensionList;

/// `[conversations]`: for every conversation with a contact that ended in a work-session
/// window, GET its current state and publish it to `<prefix>.conversations`, in the window's
/// transaction. Paced by `gladly.requests_per_second`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversationsSettings {
    /// Publish the conversations topic (default false: one GET per conversation per window).
    pub enabled: bool,
}

/// `[dimensions]`: Gladly's lists (agents, inboxes, teams, topics) refreshed on a cadence into
/// compacted topics keyed by id (`<prefix>.agents`, …): only changed items are published, and
/// a tombstone when an id leaves its list. One GET per list per refresh, paced by
/// `gladly.requests_per_second` with the conversations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DimensionsSettings {
    /// Publish the dimension topics (default false).
    pub enabled: bool,
    /// Seconds between refreshes of each list (default 3600).
    pub cadence_secs: u64,
    /// Which lists (default all four). From the environment: a TOML array
    /// (`'["agents", "teams"]'`) or names separated by commas (`agents,teams`).
    #[serde(deserialize_with = "deserialize_lists")]
    pub lists: Vec<DimensionList>,
}

/// `dimensions.lists`: an array, or (from the environment) its TOML text or comma-separated
/// names.
fn deserialize_lists<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<DimensionList>, D::Error> {
    use serde::de::Error;
    let value = match toml::Value::deserialize(d)? {
        toml::Value::String(text) => match format!("lists = {text}").parse::<toml::Table>() {
            Ok(mut t) => t.remove("lists").expect("just parsed"),
            Err(_) => toml::Value::Array(
                text.split(',')
                    .map(|n| toml::Value::String(n.trim().to_string()))
                    .collect(),
            ),
        },
        v => v,
    };
    Vec::<DimensionList>::deserialize(value).map_err(|e| {
        D::Error::custom(format!(
            "{}: use some of \"agents\", \"inboxes\", \"teams\", \"topics\"",
            e.message()
        ))
    })
}

impl Default for DimensionsSettings {
    fn default() -> Self {
        DimensionsSettings {
            enabled: false,
            cadence_secs: 3600,
            lists: DimensionList::ALL.to_vec(),
        }
    }
}

impl DimensionsSettings {
    /// The lists refreshed: none when disabled.
    pub fn enabled_lists(&self) -> Vec<DimensionList> {
        if !self.enabled {
            return Vec::new();
        }
        DimensionList::ALL
            .into_iter()
            .filter(|l| self.lists.contains(l))
            .collect()
    }

    /// Checks every value, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cadence_secs < 60 {
            return Err(ConfigError::invalid(
                "dimensions.cadence_secs",
                "must be at least 60 (the lists change rarely; 3600 is the default)",
            ));
        }
        if self.enabled && self.lists.is_empty() {
            return Err(ConfigError::invalid(
                "dimensions.lists",
                "is empty: list some of \"agents\", \"inboxes\", \"teams\", \"topics\", or set \
                 dimensions.enabled = false",
            ));
        }
        Ok(())
    }
}

/// `[pipeline]`: how windows are fetched and retried.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSettings {
    /// A response with this many rows is taken as truncated by Gladly's row cap: the window is
    /// split in two and both halves fetched. Gladly is said to cap at about 100,000.
    pub row_cap: u64,
    /// Attempts per window (a cut body, a broker outage) before the cycle fails.
    pub window_attempts: u32,
    /// First backoff between window attempts, in ms (doubles, full jitter, ≤ 60 s).
    pub retry_backoff_ms: u64,
    /// On SIGTERM/SIGINT the open window is aborted at once; if the service has not stopped
    /// this many seconds later (a blocked call), it exits anyway, with status 3.
    pub shutdown_grace_secs: u64,
    /// Which re-read rows are published: only those whose value changed (default), or every
    /// row read.
    pub publish: PublishMode,
}

/// `pipeline.publish`: what a window publishes of the rows it re-reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishMode {
    /// A changelog: a row is published when its key is new or its value changed since the
    /// last record of the key, a tombstone when the key may exist. A restarted service does
    /// not remember, so its first pass over the re-read horizon republishes once.
    #[default]
    Changes,
    /// Every row of every window, as read (consumers deduplicate).
    EveryRead,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            row_cap: 100_000,
            window_attempts: 8,
            retry_backoff_ms: 1000,
            shutdown_grace_secs: 20,
            publish: PublishMode::Changes,
        }
    }
}

impl PipelineSettings {
    /// Checks every value, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.row_cap < 2 {
            return Err(ConfigError::invalid(
                "pipeline.row_cap",
                "must be at least 2 (Gladly is said to cap responses at about 100000 rows)",
            ));
        }
        if self.window_attempts == 0 {
            return Err(ConfigError::invalid(
                "pipeline.window_attempts",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `[observe]`: metrics, health and logs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObserveSettings {
    /// Where `/metrics`, `/health/live` and `/health/ready` listen; empty to disable.
    pub listen: String,
    /// `human` (default) or `json`.
    pub log_format: crate::observe::LogFormat,
}

impl Default for ObserveSettings {
    fn default() -> Self {
        ObserveSettings {
            listen: "127.0.0.1:9464".into(),
            log_format: crate::observe::LogFormat::Human,
        }
    }
}
