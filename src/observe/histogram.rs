//! A Prometheus histogram and the bucket sets the service uses.

/// Buckets of window durations, in seconds: 50 ms to 10 min.
pub const WINDOW_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0,
];

/// Buckets of Gladly report request latencies, in seconds: 10 ms to 5 min (Gladly generates a
/// report before it answers; big windows take minutes).
pub const REQUEST_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// A Prometheus histogram: cumulative bucket counts, count and sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    buckets: &'static [f64],
    /// `cumulative[i]` = observations `<= buckets[i]`.
    cumulative: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    /// An empty histogram over `buckets` (upper bounds, ascending; `+Inf` is implied).
    pub fn new(buckets: &'static [f64]) -> Self {
        Histogram {
            buckets,
            cumulative: vec![0; buckets.len()],
            count: 0,
            sum: 0.0,
        }
    }

    /// Adds one observation.
    pub fn observe(&mut self, value: f64) {
        for (b, c) in self.buckets.iter().zip(self.cumulative.iter_mut()) {
            if value <= *b {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += value;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, observations <= bound)` per bucket, without `+Inf`.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.buckets
            .iter()
            .copied()
            .zip(self.cumulative.iter().copied())
    }
}
