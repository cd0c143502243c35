//! Parse benchmark: stream a large work-session report from the in-process simulator over
//! loopback through the real client, and report rows/s and peak RSS (VmHWM).
//!
//! `scripts/bench-parse` runs it in release for 100k and 1M rows. Under `cargo test
//! --all-targets` (no `--bench` argument) it runs a small smoke version.
//!
//! Arguments: `--rows N` (default 1,000,000 under `cargo bench`, 5,000 otherwise).

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use futures::StreamExt;
use gladly_kafka::gladly::{Client, GladlySettings, ReportRequest, Secret};
use gladly_sim::{SimConfig, Simulator};

/// A `VmHWM`/`VmRSS` line of /proc/self/status, in MB.
fn proc_status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn run(rows: usize) {
    const PER_HOUR: f64 = 100_000.0;
    let origin = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let hours = (rows as f64 / PER_HOUR).ceil() as i64 + 1;
    let cfg = SimConfig {
        contacts_per_hour: PER_HOUR,
        diurnal: false,
        long_open_fraction: 0.0,
        max_open: Duration::hours(1),
        row_cap: Some(rows),
        origin,
        ..SimConfig::default().without_limits()
    };
    let now = origin + Duration::hours(hours + 3);
    let sim = Simulator::new(cfg, move || now);
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = Client::new(&GladlySettings {
        host: server.url.clone(),
        email: "api@example.com".into(),
        token: Some(Secret::new("simulator-token")),
        requests_per_minute: 600,
        ..GladlySettings::default()
    })
    .unwrap();
    let req = ReportRequest::WorkSessions {
        start: origin,
        end: origin + Duration::hours(hours),
    };
    let rss_before = proc_status_mb("VmRSS:");
    let began = Instant::now();
    let mut stream = client.report(&req).await.expect("report");
    let (mut n, mut checksum, mut errors) = (0u64, 0usize, 0u64);
    while let Some(item) = stream.next().await {
        match item {
            Ok(Ok(row)) => {
                n += 1;
                checksum += row.get("contact_session_id").map_or(0, str::len);
            }
            Ok(Err(_)) | Err(_) => errors += 1,
        }
    }
    let secs = began.elapsed().as_secs_f64();
    assert_eq!(errors, 0, "no error items");
    assert_eq!(n as usize, rows, "every row arrived");
    assert!(checksum > 0);
    println!(
        "rows={n} seconds={secs:.3} rows_per_sec={:.0} rss_before_mb={rss_before:.1} peak_rss_mb={:.1}",
        n as f64 / secs,
        proc_status_mb("VmHWM:")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let rows = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(if bench { 1_000_000 } else { 5_000 });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(rows));
}
