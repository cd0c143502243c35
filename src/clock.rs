//! Time as a dependency: the pipeline and the Gladly client's pacer ask a [`Clock`] for "now"
//! (and tests hand the simulator a closure over the same clock), so tests can play days of
//! contact-center life in seconds.
//!
//! - [`SystemClock`]: the wall clock (production).
//! - [`ManualClock`]: a clock tests set and advance by hand; clones share the same time.
//! - [`ScaledClock`]: starts at a chosen instant and runs `speed` times faster than real time
//!   (the demo and the simulator's accelerated mode).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock {
            micros: Arc::new(AtomicI64::new(at.timestamp_micros())),
        }
    }

    /// Moves the clock to `at` (backwards too: tests decide).
    pub fn set(&self, at: DateTime<Utc>) {
        self.micros.store(at.timestamp_micros(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.micros.fetch_add(
            by.num_microseconds().expect("advance within ±292k years"),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.micros.load(Ordering::SeqCst))
            .single()
            .expect("a representable instant")
    }
}

/// A clock that starts at `origin` and runs `speed` times as fast as real time.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    origin: DateTime<Utc>,
    started: Instant,
    speed: f64,
}

impl ScaledClock {
    /// Starts now, reading `origin`, advancing `speed` simulated seconds per real second.
    pub fn new(origin: DateTime<Utc>, speed: f64) -> Self {
        assert!(
            speed.is_finite() && speed > 0.0,
            "clock speed must be positive"
        );
        ScaledClock {
            origin,
            started: Instant::now(),
            speed,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.started.elapsed().as_secs_f64();
        self.origin + Duration::microseconds((real * self.speed * 1e6) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_between_clones() {
        let t0 = Utc.with_ymd_and_hms(2024, 3, 14, 11, 0, 0).unwrap();
        let a = ManualClock::new(t0);
        let b = a.clone();
        a.advance(Duration::minutes(5));
        assert_eq!(b.now(), t0 + Duration::minutes(5));
        b.set(t0);
        assert_eq!(a.now(), t0);
    }

    #[test]
    fn scaled_clock_runs_faster() {
        let t0 = Utc.with_ymd_and_hms(2024, 3, 14, 11, 0, 0).unwrap();
        let c = ScaledClock::new(t0, 3600.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let moved = c.now() - t0;
        assert!(moved >= Duration::seconds(60), "{moved}");
    }
}
