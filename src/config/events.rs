//! `[events]`: Gladly's Events API polled every `cadence_secs` into `<prefix>.events`.

use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::report::EventEntity;

/// How far inside the Events API's 24 hours the feed stays: a range starting earlier would be
/// refused, and clocks differ.
pub const COVERAGE_MARGIN_SECS: u64 = 15 * 60;

/// `[events]`: Gladly's Events API (JSON lines of the last 24 hours) polled every
/// `cadence_secs` into the compacted `<prefix>.events` topic, keyed by event id. Paced under
/// `gladly.requests_per_second` with the other GETs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSettings {
    /// Publish the events topic (default false).
    pub enabled: bool,
    /// Seconds between polls (default 60).
    pub cadence_secs: u64,
    /// Which entities (default `AGENT_AVAILABILITY`, `AGENT_STATUS`, `CONTACT`,
    /// `CONVERSATION`). From the environment: a TOML array or names separated by commas.
    #[serde(deserialize_with = "deserialize_entities")]
    pub entities: Vec<EventEntity>,
    /// A poll ends this many seconds before now (default 60): Gladly's events are up to 15 s
    /// behind real time, so a range ending nearer now could still gain events.
    pub settle_secs: u64,
    /// A poll re-reads this many seconds before where the last one ended (default 300), for
    /// events later than Gladly documents; the re-read ones are not published again.
    pub overlap_secs: u64,
    /// Longest range one request asks for, in minutes (default 15): a first start or a
    /// catch-up after an outage is cut into ranges this long, each its own transaction.
    pub max_range_minutes: u64,
}

impl Default for EventsSettings {
    fn default() -> Self {
        EventsSettings {
            enabled: false,
            cadence_secs: 60,
            entities: EventEntity::DEFAULT.to_vec(),
            settle_secs: 60,
            overlap_secs: 300,
            max_range_minutes: 15,
        }
    }
}

/// `events.entities`: an array, or (from the environment) its TOML text or comma-separated
/// names.
fn deserialize_entities<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<EventEntity>, D::Error> {
    use serde::de::Error;
    let value = match toml::Value::deserialize(d)? {
        toml::Value::String(text) => match format!("entities = {text}").parse::<toml::Table>() {
            Ok(mut t) => t.remove("entities").expect("just parsed"),
            Err(_) => toml::Value::Array(
                text.split(',')
                    .map(|n| toml::Value::String(n.trim().to_string()))
                    .collect(),
            ),
        },
        v => v,
    };
    Vec::<EventEntity>::deserialize(value).map_err(|e| {
        let names: Vec<String> = EventEntity::ALL
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect();
        D::Error::custom(format!("{}: use some of {}", e.message(), names.join(", ")))
    })
}

impl EventsSettings {
    /// The entities asked for, in a stable order, each once.
    pub fn entities(&self) -> Vec<EventEntity> {
        EventEntity::ALL
            .into_iter()
            .filter(|e| self.entities.contains(e))
            .collect()
    }

    /// Checks every value, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cadence_secs < 10 {
            return Err(ConfigError::invalid(
                "events.cadence_secs",
                "must be at least 10 (60 is the default; Gladly's events are up to 15 s late anyway)",
            ));
        }
        if self.settle_secs < 15 {
            return Err(ConfigError::invalid(
                "events.settle_secs",
                "must be at least 15: Gladly's events are up to 15 s behind real time, so a range \
                 ending nearer now could still gain events",
            ));
        }
        let coverage = 24 * 3600 - COVERAGE_MARGIN_SECS;
        if self.overlap_secs + self.settle_secs + self.cadence_secs >= coverage {
            return Err(ConfigError::invalid(
                "events.overlap_secs",
                "with events.settle_secs and events.cadence_secs, reaches past the 24 hours the \
                 Events API serves: keep their sum under 23 h (the defaults are 300, 60 and 60)",
            ));
        }
        if self.max_range_minutes == 0 || self.max_range_minutes > 24 * 60 {
            return Err(ConfigError::invalid(
                "events.max_range_minutes",
                "must be between 1 and 1440 (15 is the default)",
            ));
        }
        if self.enabled && self.entities.is_empty() {
            return Err(ConfigError::invalid(
                "events.entities",
                "is empty: list some of \"CONTACT\", \"CONVERSATION\", \"AGENT_STATUS\", …, or set \
                 events.enabled = false",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_valid() {
        let e = EventsSettings::default();
        assert!(!e.enabled);
        assert_eq!(e.cadence_secs, 60);
        assert_eq!(e.entities().len(), 4);
        e.validate().unwrap();
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let bad = |f: fn(&mut EventsSettings)| {
            let mut e = EventsSettings {
                enabled: true,
                ..EventsSettings::default()
            };
            f(&mut e);
            e.validate().unwrap_err().to_string()
        };
        assert!(bad(|e| e.cadence_secs = 5).contains("events.cadence_secs"));
        assert!(bad(|e| e.settle_secs = 5).contains("events.settle_secs"));
        assert!(bad(|e| e.overlap_secs = 24 * 3600).contains("events.overlap_secs"));
        assert!(bad(|e| e.max_range_minutes = 0).contains("events.max_range_minutes"));
        assert!(bad(|e| e.entities.clear()).contains("events.entities"));
    }

    #[test]
    fn entities_read_from_an_array_or_comma_separated_names() {
        #[derive(Deserialize)]
        struct T {
            events: EventsSettings,
        }
        let t: T = toml::from_str("[events]\nentities = [\"CONTACT\", \"TASK\"]").unwrap();
        assert_eq!(
            t.events.entities(),
            [EventEntity::Contact, EventEntity::Task]
        );
        let t: T = toml::from_str("[events]\nentities = \"CONTACT, AGENT_STATUS\"").unwrap();
        assert_eq!(
            t.events.entities(),
            [EventEntity::AgentStatus, EventEntity::Contact]
        );
        let err = toml::from_str::<T>("[events]\nentities = [\"CALLS\"]")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("CONTACT") && err.contains("CALLS"), "{err}");
    }
}
