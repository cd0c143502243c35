//! Retry timing: exponential backoff with full jitter, and `Retry-After` parsing.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// Longest `Retry-After` honoured; anything larger is treated as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Exponential backoff with full jitter: before retry `n` (1-based) the client waits a uniform
/// random time in `[0, cap(n)]`, where `cap(n) = min(max, initial · 2^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Cap of the first retry.
    pub initial: Duration,
    /// Largest cap.
    pub max: Duration,
}

impl Backoff {
    /// The cap for retry `n` (1-based); doubles each retry up to `max`.
    pub fn cap(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A jittered wait for retry `n`: uniform in `[0, cap(n)]`.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let cap = self.cap(retry);
        cap.mul_f64(rng.gen_range(0.0..=1.0))
    }
}

/// Parses a `Retry-After` value: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`. A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn caps_double_up_to_the_max() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let caps: Vec<u128> = (1..=6).map(|n| b.cap(n).as_millis()).collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.cap(200), Duration::from_secs(1));
    }

    #[test]
    fn jittered_delays_stay_below_the_cap_and_grow_on_average() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(60),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut prev_mean = 0.0;
        for retry in 1..=6 {
            let samples: Vec<Duration> = (0..2000).map(|_| b.delay(retry, &mut rng)).collect();
            assert!(samples.iter().all(|d| *d <= b.cap(retry)));
            let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / 2000.0;
            let expected = b.cap(retry).as_secs_f64() / 2.0;
            assert!(
                (mean - expected).abs() < expected * 0.1,
                "{mean} vs {expected}"
            );
            assert!(
                mean > prev_mean * 1.5,
                "retry {retry}: {mean} after {prev_mean}"
            );
            prev_mean = mean;
        }
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
    }
}
