//! Readiness: where each report stands for `/health/ready`.

use std::time::Instant;

/// Where a report stands for `/health/ready`.
#[derive(Debug, Clone)]
pub(super) enum Health {
    /// No cycle finished yet; ready until `deadline` (the end of its first cadence).
    Starting { deadline: Instant },
    /// The last cycle succeeded and no window has failed since.
    Ok,
    /// The last cycle failed, or a window of the current one did: why.
    Failed(String),
}

/// Why a report in state `h` is not ready at `now`, if it is not.
pub(super) fn health_problem(h: &Health, now: Instant) -> Option<String> {
    match h {
        Health::Ok => None,
        Health::Starting { deadline } if now < *deadline => None,
        Health::Starting { .. } => Some("no cycle finished within its first cadence".into()),
        Health::Failed(why) => Some(why.clone()),
    }
}
