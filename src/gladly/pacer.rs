//! Org-wide pacers. Report calls: at most `requests_per_minute`, evenly spaced (no bursts, so
//! any sliding minute holds at most the budget plus one), and at most `max_concurrent_reports`
//! in flight, where "in flight" lasts until the body is read. Other calls (GET Conversation)
//! fall under Gladly's general per-second limit and get their own pacer, built by
//! [`Pacer::per_second`].

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Paces one kind of request; shared by every clone of a [`super::Client`].
#[derive(Debug)]
pub struct Pacer {
    slots: Arc<Semaphore>,
    rate: DefaultDirectRateLimiter,
}

impl Pacer {
    /// A pacer for `per_minute` requests per minute and `concurrent` in flight (both ≥ 1).
    pub fn new(per_minute: u32, concurrent: u32) -> Self {
        Self::spaced(Duration::from_secs(60), per_minute, concurrent)
    }

    /// A pacer for `per_second` requests per second and `concurrent` in flight (both ≥ 1).
    pub fn per_second(per_second: u32, concurrent: u32) -> Self {
        Self::spaced(Duration::from_secs(1), per_second, concurrent)
    }

    /// `n` requests per `span`, one every `span / n`.
    fn spaced(span: Duration, n: u32, concurrent: u32) -> Self {
        let period = span.div_f64(f64::from(n.max(1)));
        let quota = Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(NonZeroU32::MIN);
        Pacer {
            slots: Arc::new(Semaphore::new(concurrent.max(1) as usize)),
            rate: RateLimiter::direct(quota),
        }
    }

    /// Waits for a free slot, then for the rate budget. Hold the permit until the response
    /// body is fully read or dropped.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the pacer's semaphore is never closed");
        self.rate.until_ready().await;
        permit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn requests_are_spaced_evenly() {
        let pacer = Pacer::new(1200, 4); // one per 50 ms
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..5 {
            let _p = pacer.acquire().await;
            at.push(start.elapsed());
        }
        for w in at.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(45), "{at:?}");
        }
    }

    #[tokio::test]
    async fn the_per_second_pacer_spaces_requests_by_a_fraction_of_a_second() {
        let pacer = Pacer::per_second(20, 8); // one per 50 ms
        let start = Instant::now();
        for _ in 0..5 {
            let _p = pacer.acquire().await;
        }
        // the first goes at once, the next four 50 ms apart
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn concurrency_is_bounded_by_permits() {
        let pacer = Pacer::new(60_000, 1);
        let first = pacer.acquire().await;
        let second = tokio::time::timeout(Duration::from_millis(100), pacer.acquire()).await;
        assert!(
            second.is_err(),
            "a second slot was granted while the first was held"
        );
        drop(first);
        let _third = tokio::time::timeout(Duration::from_secs(1), pacer.acquire())
            .await
            .expect("the slot is free again");
    }
}
