//! Loading a checked [`Config`]: the file and environment layers, then every section's
//! checks, the report topics, and the request budget.

use std::path::Path;

use super::load::load;
use super::root::Config;
use crate::config_error::ConfigError;

impl Config {
    /// Loads from an optional file plus the process environment, and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let c: Config = load(path)?;
        c.validate()?;
        Ok(c)
    }

    /// Checks every section, naming the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.gladly.validate()?;
        self.kafka.validate()?;
        self.registry.validate()?;
        self.topics.validate()?;
        self.reports.validate()?;
        self.pipeline.validate()?;
        self.dimensions.validate()?;
        self.events.validate()?;
        if self.enabled_reports().is_empty() {
            return Err(ConfigError::invalid(
                "reports",
                "every report is disabled: set reports.<name>.enabled = true for at least one",
            ));
        }
        let mut topics = std::collections::BTreeMap::new();
        for r in self.enabled_reports() {
            if let Some(other) = topics.insert(self.report_topic(r), r) {
                return Err(ConfigError::invalid(
                    format!("reports.{r}.topic"),
                    format!(
                        "{r} and {other} would both publish to {}: give one its own topic",
                        self.report_topic(r)
                    ),
                ));
            }
        }
        if self.conversations.enabled && !self.reports.work_sessions.enabled {
            return Err(ConfigError::invalid(
                "conversations.enabled",
                "needs reports.work_sessions.enabled = true: conversations are fetched for the \
                 contacts that end in work-session windows",
            ));
        }
        self.budget().check()
    }
}
