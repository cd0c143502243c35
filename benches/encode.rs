//! Rows → encoded records (key + value bytes, Confluent wire format) per second on one core,
//! per report. Rows are built up front (CSV parsing is the source's cost, not ours); each
//! iteration converts a whole window response: `push` every row, then `finish`.
//!
//! Run: `cargo bench --bench encode` (or `scripts/bench-encode`). Target: ≥ 1,000,000
//! work-session rows/s.

use std::hint::black_box;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gladly_kafka::records::derived::DerivedSchema;
use gladly_kafka::records::{ConvertSettings, Converter, Output, SchemaIds, WindowMeta};
use gladly_kafka::report::{DerivedFormat, Header, Report, Row};

const ROWS: usize = 50_000;
const IDS: SchemaIds = SchemaIds {
    key: 101,
    value: 102,
};

/// A Gladly-looking 22-character id.
fn id(prefix: char, n: usize) -> String {
    let mut s = format!("{prefix}{n:x}");
    while s.len() < 22 {
        s.push(char::from(b'A' + (s.len() * 7 + n) as u8 % 26));
    }
    s
}

fn ts(minute: i64, millis: i64) -> String {
    (Utc.with_ymd_and_hms(2024, 3, 14, 0, 0, 0).unwrap()
        + Duration::minutes(minute)
        + Duration::milliseconds(millis))
    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
    .to_string()
}

/// Writes the rows as a CSV body and reads them back with the csv crate, as the source does,
/// so the rows lie in memory the way a streaming reader leaves them.
fn rows(header: &[&str], cells: impl Iterator<Item = Vec<String>>) -> Vec<Row> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).unwrap();
    for c in cells {
        w.write_record(&c).unwrap();
    }
    let body = w.into_inner().unwrap();
    let mut r = csv::Reader::from_reader(body.as_slice());
    let header = Arc::new(Header::new(r.headers().unwrap().iter()));
    r.records()
        .enumerate()
        .map(|(i, rec)| Row::new(Arc::clone(&header), rec.unwrap(), i as u64 + 2))
        .collect()
}

/// Work-session rows: contacts with 1–3 agents, three in four ended (final rows with ids,
/// handle times), the rest open (provisional rows); one unknown column.
fn work_sessions() -> Vec<Row> {
    let mut header = gladly_kafka::report::WORK_SESSION_COLUMNS.to_vec();
    header.push("new_column");
    let mut out = Vec::with_capacity(ROWS);
    let mut c = 0;
    while out.len() < ROWS {
        let ended = c % 4 != 0;
        let created = (c % 1400) as i64;
        for a in 0..(c % 3 + 1) {
            out.push(vec![
                if ended {
                    id('W', c * 4 + a)
                } else {
                    String::new()
                },
                id('C', c),
                ts(created, 123),
                id('U', c / 2),
                id('V', c / 2),
                id('I', c % 7),
                ["CHAT", "PHONE_CALL", "EMAIL", "SMS"][c % 4].to_string(),
                "INBOUND".to_string(),
                ts(created + 1, 456),
                ts(created, 789),
                id('A', (c + a) % 50),
                ts(created + 1, 0),
                if ended {
                    ts(created + 20, 5)
                } else {
                    String::new()
                },
                if ended {
                    "ENDED".to_string()
                } else {
                    String::new()
                },
                ["true", "false"][c % 2].to_string(),
                if ended {
                    format!("{}.{}", 100 + c % 900, c % 10)
                } else {
                    String::new()
                },
                format!("{}", c % 120),
                "0".to_string(),
                id('I', c % 5),
                String::new(),
            ]);
        }
        c += 1;
    }
    out.truncate(ROWS);
    rows(&header, out.into_iter())
}

fn contacts() -> Vec<Row> {
    let header = [
        "Queued At",
        "Customer ID",
        "Conversation ID",
        "Contact ID",
        "Link",
        "Channel",
        "Direction",
        "Contact Initiator",
        "Entry Point",
        "Final IVR Selection",
        "Hold Time",
        "Handle Time",
        "Ended At",
    ];
    rows(
        &header,
        (0..ROWS).map(|c| {
            vec![
                ts((c % 1400) as i64, 0)
                    .replace('T', " ")
                    .replace(".000Z", ""),
                id('U', c),
                id('V', c),
                id('C', c),
                format!("https://acme.gladly.com/customer/{}", id('U', c)),
                "EMAIL".into(),
                "INBOUND".into(),
                "Customer".into(),
                "support@acme.com".into(),
                String::new(),
                "12".into(),
                "345.5".into(),
                ts((c % 1400) as i64 + 30, 0),
            ]
        }),
    )
}

fn agent_summary() -> Vec<Row> {
    let header = [
        "Bucket Beginning",
        "Bucket End",
        "Name",
        "Email",
        "Agent ID",
        "User Status",
        "Role(s)",
        "Inbox(es)",
        "Team(s)",
        "Logged In",
        "Logged Out",
        "Logged In Time in seconds",
        "Went Away",
        "Returned from Away",
        "Changed Active Reason",
        "Active Time in seconds",
        "Contact Accepted - Phone Call",
        "Contact Accepted - Chat",
        "Message Sent",
    ];
    rows(
        &header,
        (0..ROWS).map(|c| {
            vec![
                format!("2024-03-{:02}", 1 + c % 28),
                format!("2024-03-{:02}", 2 + c % 28),
                format!("Agent {c}"),
                format!("agent{c}@acme.com"),
                id('A', c),
                "Active".into(),
                "Agent".into(),
                "Support, Sales".into(),
                "Blue".into(),
                "3".into(),
                "2".into(),
                "28800.5".into(),
                "4".into(),
                "4".into(),
                "1".into(),
                "25000".into(),
                "17".into(),
                "9".into(),
                "120".into(),
            ]
        }),
    )
}

fn bench(c: &mut Criterion) {
    let meta = WindowMeta {
        window_start: Utc.with_ymd_and_hms(2024, 3, 14, 0, 0, 0).unwrap(),
        window_end: Utc.with_ymd_and_hms(2024, 3, 15, 0, 0, 0).unwrap(),
        fetched_at: Utc.with_ymd_and_hms(2024, 3, 15, 1, 0, 0).unwrap(),
    };
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(20);
    for (report, rows, tz) in [
        (Report::WORK_SESSIONS, work_sessions(), chrono_tz::UTC),
        (Report::CONTACTS, contacts(), chrono_tz::America::New_York),
        (
            Report::AGENT_SUMMARY,
            agent_summary(),
            chrono_tz::America::New_York,
        ),
    ] {
        let conv = Converter::new(
            report,
            ConvertSettings {
                timezone: tz,
                aggregation_level: Some("daily".into()),
            },
            IDS,
        );
        // Sanity: every row converts.
        let mut out = Vec::new();
        let mut w = conv.window(meta);
        rows.iter().for_each(|r| w.push(r, &mut out));
        w.finish(&mut out);
        assert!(
            !out.iter().any(|o| matches!(o, Output::DeadLetter(_))),
            "{report}: dead letters"
        );

        let mut out = Vec::with_capacity(ROWS * 3);
        group.bench_function(report.name(), |b| {
            b.iter(|| {
                out.clear();
                let mut w = conv.window(meta);
                for r in &rows {
                    w.push(r, &mut out);
                }
                w.finish(&mut out);
                black_box(out.len())
            })
        });
    }
    // the contact rows again, as a report configured by columns (key `Contact ID`, anchor
    // `Queued At`): the derived conversion against the hand-written one above
    let rows = contacts();
    let report = Report::named("contacts_by_columns").unwrap();
    let schema = DerivedSchema::new(report)
        .extended(rows[0].header())
        .expect("columns");
    let conv = Converter::derived(
        report,
        DerivedFormat {
            key: vec!["Contact ID".into()],
            anchor: "Queued At".into(),
        },
        Arc::new(schema),
        chrono_tz::America::New_York,
        IDS,
    );
    let mut out = Vec::with_capacity(ROWS);
    group.bench_function(report.name(), |b| {
        b.iter(|| {
            out.clear();
            let mut w = conv.window(meta);
            for r in &rows {
                w.push(r, &mut out);
            }
            w.finish(&mut out);
            black_box(out.len())
        })
    });
    assert!(
        !out.iter().any(|o| matches!(o, Output::DeadLetter(_))),
        "{report}: dead letters"
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
