//! The Agent Summary report: one row per agent × bucket, with shift statistics and the
//! contacts each agent accepted in the bucket.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{local_midnight, Level, RowSource};
use crate::model::{Kind, Model, MINUTE_MS};
use crate::rng::mix;

/// Bucket starts (ms) covering `[start, end]` in `tz`, plus the end of the last bucket.
pub(crate) fn buckets(tz: Tz, start: NaiveDate, end: NaiveDate, level: Level) -> Vec<i64> {
    let stop = local_midnight(tz, end + Duration::days(1));
    let mut edges = Vec::new();
    match level {
        Level::HalfHourly => {
            let mut t = local_midnight(tz, start);
            while t < stop {
                edges.push(t);
                t += 30 * MINUTE_MS;
            }
            edges.push(t);
        }
        _ => {
            let first = match level {
                Level::Daily => start,
                Level::Weekly => {
                    start - Duration::days(i64::from(start.weekday().num_days_from_monday()))
                }
                Level::Monthly => start.with_day(1).expect("day 1"),
                _ => NaiveDate::from_ymd_opt(start.year(), (start.month0() / 3) * 3 + 1, 1)
                    .expect("quarter start"),
            };
            let mut d = first;
            loop {
                let t = local_midnight(tz, d);
                edges.push(t);
                if t >= stop {
                    break;
                }
                d = match level {
                    Level::Daily => d + Duration::days(1),
                    Level::Weekly => d + Duration::days(7),
                    Level::Monthly => d.checked_add_months(chrono::Months::new(1)).expect("month"),
                    _ => d
                        .checked_add_months(chrono::Months::new(3))
                        .expect("quarter"),
                };
            }
        }
    }
    edges
}

const FIRST_NAMES: [&str; 12] = [
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lena",
];
const LAST_NAMES: [&str; 8] = [
    "Okafor", "Nguyen", "Silva", "Kowalski", "Haddad", "Ito", "Moreau", "Brown",
];

/// How long an agent's daily shift lasts (from its login to its logout).
pub(crate) const SHIFT_MS: i64 = 8 * 3_600_000;

/// Agent `a`'s daily shift: starts at this UTC hour, lasts [`SHIFT_MS`].
pub(crate) fn shift_start_hour(a: u32) -> i64 {
    i64::from((a * 7) % 24)
}

/// Logged-in statistics of agent `a` in `[from, to)`: (logins, logouts, logged-in ms).
fn shift_stats(a: u32, from: i64, to: i64) -> (u64, u64, i64) {
    if to <= from {
        return (0, 0, 0);
    }
    let day = 86_400_000;
    let len = SHIFT_MS;
    let (mut ins, mut outs, mut time) = (0, 0, 0);
    let mut d = from.div_euclid(day) - 1;
    while d * day < to {
        let s = d * day + shift_start_hour(a) * 3_600_000;
        let e = s + len;
        if s >= from && s < to {
            ins += 1;
        }
        if e >= from && e < to {
            outs += 1;
        }
        time += (e.min(to) - s.max(from)).max(0);
        d += 1;
    }
    (ins, outs, time)
}

/// `ms` as RFC 3339 with millis in `tz`.
fn fmt_local(tz: Tz, ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("in range")
        .with_timezone(&tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Agent Summary rows, computed up front (agents × buckets is small).
pub(super) struct AgentSummaryRows {
    rows: std::vec::IntoIter<(u64, Vec<String>)>,
}

/// What one agent did in one bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    /// Contacts accepted: all, phone, chat, email, other channels.
    accepted: [u64; 5],
    handle_ms: i64,
    acw_ms: i64,
}

/// The rows of every agent for the buckets covering `[start, end]` in `tz` that have begun
/// by `as_of`.
pub(super) fn agent_summary(
    model: &Model,
    as_of: i64,
    start: NaiveDate,
    end: NaiveDate,
    tz: Tz,
    level: Level,
) -> AgentSummaryRows {
    let edges = buckets(tz, start, end, level);
    let open: Vec<(i64, i64)> = edges
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(s, _)| *s <= as_of)
        .collect();
    let acc = accumulate(model, as_of, &open);
    let agents = model.agents as usize;
    let mut rows = Vec::with_capacity(open.len() * agents);
    for (b, &bucket) in open.iter().enumerate() {
        for a in 0..model.agents {
            let cells = agent_row(model, tz, as_of, bucket, a, &acc[b * agents + a as usize]);
            let identity = mix((bucket.0 as u64) ^ u64::from(a).rotate_left(40));
            rows.push((identity, cells));
        }
    }
    AgentSummaryRows {
        rows: rows.into_iter(),
    }
}

/// What each agent did in each of the `open` buckets (index `bucket * agents + agent`),
/// from the contacts that could have been worked in them.
fn accumulate(model: &Model, as_of: i64, open: &[(i64, i64)]) -> Vec<Acc> {
    let agents = model.agents as usize;
    let mut acc = vec![Acc::default(); open.len() * agents];
    let (Some(first), Some(last)) = (open.first(), open.last()) else {
        return acc;
    };
    for c in model.contacts_created(first.0 - model.max_open_ms, last.1.min(as_of)) {
        let ended = c.ended_ms <= as_of;
        for w in c.visible_work(as_of) {
            let b = open.partition_point(|(s, _)| *s <= w.accepted_ms);
            if b == 0 || w.accepted_ms >= open[b - 1].1 {
                continue;
            }
            let a = &mut acc[(b - 1) * agents + w.agent as usize];
            a.accepted[0] += 1;
            a.accepted[match c.channel {
                "PHONE_CALL" => 1,
                "CHAT" => 2,
                "EMAIL" => 3,
                _ => 4,
            }] += 1;
            if ended {
                a.handle_ms += w.released_ms - w.accepted_ms;
                a.acw_ms += (as_of.min(c.conv_end_ms) - c.ended_ms).min(w.acw_ms);
            }
        }
    }
    acc
}

/// The cells of agent `a` in the bucket `[bs, be)`.
fn agent_row(
    model: &Model,
    tz: Tz,
    as_of: i64,
    (bs, be): (i64, i64),
    a: u32,
    x: &Acc,
) -> Vec<String> {
    let (ins, outs, logged) = shift_stats(a, bs, be.min(as_of));
    let away = (logged / (2 * 3_600_000)) as u64;
    let first = FIRST_NAMES[a as usize % FIRST_NAMES.len()];
    let last = LAST_NAMES[(a as usize / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let inboxes = model.inboxes.max(1);
    let roles = if a % 10 == 0 {
        "Agent, Team Lead"
    } else {
        "Agent"
    };
    vec![
        fmt_local(tz, bs),
        fmt_local(tz, be),
        format!("{first} {last}"),
        format!(
            "{}.{}{a}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        model.id(Kind::Agent, u64::from(a)),
        "Active".to_string(),
        roles.to_string(),
        format!("Inbox {}, Inbox {}", a % inboxes, (a + 1) % inboxes),
        format!("Team {}", ["North", "South", "East"][a as usize % 3]),
        ins.to_string(),
        outs.to_string(),
        (logged / 1000).to_string(),
        away.to_string(),
        away.to_string(),
        away.to_string(),
        (logged / 1000 * 85 / 100).to_string(),
        x.accepted[0].to_string(),
        x.accepted[1].to_string(),
        x.accepted[2].to_string(),
        x.accepted[3].to_string(),
        x.accepted[4].to_string(),
        (x.handle_ms / 1000).to_string(),
        (x.acw_ms / 1000).to_string(),
    ]
}

impl RowSource for AgentSummaryRows {
    fn next_row(&mut self, cells: &mut [String]) -> Option<(u64, usize)> {
        let (identity, row) = self.rows.next()?;
        for (cell, v) in cells.iter_mut().zip(row) {
            *cell = v;
        }
        Some((identity, 11))
    }

    fn key(&self, cells: &[String]) -> String {
        format!("{}/{}", cells[4], cells[0])
    }
}
