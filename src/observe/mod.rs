//! Observability: logs, Prometheus metrics, health.
//!
//! Logs go to stderr through `tracing`: human-readable by default, one JSON object per line
//! with `--log-format json` for log pipelines. Filter with `RUST_LOG` (default `info`). Every
//! window is a `window` span with `report`, `window`, `rows` and `duration_secs`.
//!
//! [`Metrics`] holds the counters, gauges and histograms; [`serve`] exposes them on
//! `/metrics` next to `/health/live` and `/health/ready`.
//!
//! A leaf: it knows nothing of the pipeline or the Gladly client. They hand it plain numbers
//! and report names, or observe-owned types ([`WindowCounts`], [`ApiSnapshot`]).

mod catalog;
mod health;
mod histogram;
mod logging;
mod metrics;
mod render;
mod server;
#[cfg(test)]
mod tests;

pub use histogram::{Histogram, REQUEST_BUCKETS, WINDOW_BUCKETS};
pub use logging::{init_logging, LogFormat};
pub use metrics::{
    reason_label, ApiSnapshot, ApiSource, ExtraRenderer, Metrics, Now, WindowCounts,
};
pub use server::{serve, ObserveServer};
