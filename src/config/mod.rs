//! The service configuration: one TOML file plus `GLADLY_KAFKA__SECTION__KEY` environment
//! overrides (`__` separates levels, names are case-insensitive), e.g.
//! `GLADLY_KAFKA__KAFKA__BOOTSTRAP_SERVERS=broker:9092` or `GLADLY_KAFKA__GLADLY__TOKEN=…`.
//!
//! Every invalid value is reported with its key (`reports.contacts.timezone`) and what to do.
//! Secrets (the Gladly token, registry and SASL passwords) are redacted wherever they print.

mod budget;
mod events;
mod load;
mod reports;
mod reread;
mod root;
mod sections;
mod validate;

#[cfg(test)]
mod tests;

pub use crate::config_error::ConfigError;
#[cfg(test)]
pub(crate) use budget::date_windows;
pub use budget::{Budget, Demand, ReportBudget};
pub use events::{EventsSettings, COVERAGE_MARGIN_SECS};
pub use load::{load, load_from, ENV_PREFIX};
pub use reports::{DateReportSettings, ReportsConfig, WorkSessionsSettings};
pub use reread::{DateTier, InstantTier, RereadTier, TierSpan, DATE_TIERS, WORK_SESSION_TIERS};
pub use root::Config;
pub use sections::{
    ConversationsSettings, DimensionsSettings, ObserveSettings, PipelineSettings, PublishMode,
};
