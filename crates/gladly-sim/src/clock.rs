//! The simulator's notion of "now": anything that says what instant it is. A test shares
//! one clock between the simulator and the code under test by passing a closure over it.

use chrono::{DateTime, Utc};

/// A source of the current (simulated) instant.
///
/// Any `Fn() -> DateTime<Utc> + Send + Sync` is one: `Utc::now` for real time, or a closure
/// over a test's manual clock.
pub trait SimClock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

impl<F> SimClock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}
