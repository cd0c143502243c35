//! Named crash points for the crash tests (`tests/it/pipeline_crash.rs`). With the cargo
//! feature `fault-points` (test builds get it through `stack-tests`; release builds never
//! have it), `GLADLY_KAFKA_CRASH_AT=<point>@<n>` aborts the process the `n`-th time it reaches
//! `<point>` (one of [`POINTS`]), as a crash would: no destructor, no flush, no abort of the
//! open transaction. Without the feature [`crash_point`] is empty and the variable is never
//! read.

/// The environment variable naming the point and the hit: `before-commit@3`.
pub const CRASH_AT: &str = "GLADLY_KAFKA_CRASH_AT";

/// The named points, in the order a window reaches them:
/// - `after-begin`: the window's transaction (exactly-once) has begun, nothing is sent;
/// - `after-record`: one more record of a window was handed to the producer (the `n`-th
///   record of the process, so `after-record@n` stops after `n` records were produced);
/// - `before-commit`: every record is sent; exactly-once: the checkpoint is in the
///   transaction, which is not committed; at-least-once: every record is acknowledged and the
///   checkpoint is not written;
/// - `after-commit`: the window and its checkpoint are committed (acknowledged).
pub const POINTS: [&str; 4] = [
    "after-begin",
    "after-record",
    "before-commit",
    "after-commit",
];

/// Aborts the process if [`CRASH_AT`] names `point` and this is its `n`-th hit.
#[cfg(feature = "fault-points")]
pub fn crash_point(point: &str) {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let plan = PLAN.get_or_init(|| {
        let spec = std::env::var(CRASH_AT).ok()?;
        let (name, n) = spec.split_once('@').unwrap_or((spec.as_str(), "1"));
        assert!(
            POINTS.contains(&name),
            "{CRASH_AT}: no point `{name}` ({POINTS:?})"
        );
        let n = n
            .parse()
            .unwrap_or_else(|_| panic!("{CRASH_AT}: `{n}` is not a hit count"));
        Some((name.to_string(), n))
    });
    let Some((name, n)) = plan else {
        return;
    };
    if name == point && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
        let _ = writeln!(std::io::stderr(), "crash point {point}@{n}: aborting");
        std::process::abort();
    }
}

/// Without the `fault-points` feature: nothing.
#[cfg(not(feature = "fault-points"))]
#[inline(always)]
pub fn crash_point(_point: &str) {}
