//! The three reports as row sources over the [`Model`]: which rows a request returns at an
//! instant, cell by cell.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::model::{push_ts, Contact, Kind, Model, MINUTE_MS};

use crate::wire::{AGENT_SUMMARY_COLUMNS, CONTACT_EXPORT_COLUMNS, WORK_SESSION_COLUMNS};

/// Agent Summary bucket sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// 30 minutes.
    HalfHourly,
    /// A local day.
    Daily,
    /// A local week starting Monday.
    Weekly,
    /// A calendar month.
    Monthly,
    /// A calendar quarter.
    Quarterly,
}

impl Level {
    /// Parses Gladly's `aggregationLevel`.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "halfHourly" => Level::HalfHourly,
            "daily" => Level::Daily,
            "weekly" => Level::Weekly,
            "monthly" => Level::Monthly,
            "quarterly" => Level::Quarterly,
            _ => return None,
        })
    }
}

/// A validated request, ready to generate.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Rows anchored in `[start_ms, end_ms + 1 min)`.
    WorkSessions {
        /// Window start.
        start_ms: i64,
        /// Window end as requested.
        end_ms: i64,
    },
    /// Contacts queued on `[start, end]` in `tz`.
    Contacts {
        /// First date.
        start: NaiveDate,
        /// Last date.
        end: NaiveDate,
        /// Timezone of the dates.
        tz: Tz,
    },
    /// Agent × bucket rows for buckets overlapping `[start, end]` in `tz`.
    AgentSummary {
        /// First date.
        start: NaiveDate,
        /// Last date.
        end: NaiveDate,
        /// Timezone.
        tz: Tz,
        /// Bucket size.
        level: Level,
    },
}

impl Plan {
    /// Column names of this report.
    pub fn columns(&self) -> &'static [&'static str] {
        match self {
            Plan::WorkSessions { .. } => &WORK_SESSION_COLUMNS,
            Plan::Contacts { .. } => &CONTACT_EXPORT_COLUMNS,
            Plan::AgentSummary { .. } => &AGENT_SUMMARY_COLUMNS,
        }
    }

    /// File name for `Content-Disposition`, in Gladly's style.
    pub fn file_name(&self) -> String {
        match self {
            Plan::WorkSessions { start_ms, end_ms } => {
                let f = |ms: i64| {
                    DateTime::<Utc>::from_timestamp_millis(ms)
                        .map(|d| d.format("%Y%m%dT%H%MZ").to_string())
                        .unwrap_or_default()
                };
                format!(
                    "WorkSessionEventsReport-{}-{}.csv",
                    f(*start_ms),
                    f(*end_ms)
                )
            }
            Plan::Contacts { start, end, .. } => format!(
                "ContactExportReportV3-{}-{}.csv",
                start.format("%Y%m%d"),
                end.format("%Y%m%d")
            ),
            Plan::AgentSummary { start, end, .. } => format!(
                "AgentSummaryV2-{}-{}.csv",
                start.format("%Y%m%d"),
                end.format("%Y%m%d")
            ),
        }
    }

    /// A row source for this plan as of `as_of_ms` (the simulated now minus the data delay).
    pub fn rows(&self, model: &Model, as_of_ms: i64) -> Box<dyn RowSource> {
        match self {
            Plan::WorkSessions { start_ms, end_ms } => Box::new(WorkSessionRows::new(
                model.clone(),
                as_of_ms,
                *start_ms,
                end_ms + MINUTE_MS,
            )),
            Plan::Contacts { start, end, tz } => {
                Box::new(ContactRows::new(model.clone(), as_of_ms, *start, *end, *tz))
            }
            Plan::AgentSummary {
                start,
                end,
                tz,
                level,
            } => Box::new(agent_summary(model, as_of_ms, *start, *end, *tz, *level)),
        }
    }
}

/// Produces a report's rows one at a time into reusable cells (canonical column order).
pub trait RowSource: Send {
    /// Fills `cells` (one per column, cleared by the caller) with the next row; returns its
    /// identity (stable across fetches, used to pick rows for the bad-cell fault) and the
    /// index of the cell that fault corrupts, or `None` at the end.
    fn next_row(&mut self, cells: &mut [String]) -> Option<(u64, usize)>;

    /// The key the records layer will use for a row, for fault bookkeeping.
    fn key(&self, cells: &[String]) -> String;
}

struct WorkSessionRows {
    model: Model,
    as_of: i64,
    from: i64,
    to: i64,
    hour: i64,
    last_hour: i64,
    j: u32,
    count: u32,
    current: Option<(Contact, usize, usize)>,
}

impl WorkSessionRows {
    fn new(model: Model, as_of: i64, from: i64, to: i64) -> Self {
        let first = model.hour_of(from - model.max_open_ms).max(0);
        let last_hour = model.hour_of(to.min(as_of));
        let count = model.hour_count(first);
        WorkSessionRows {
            model,
            as_of,
            from,
            to,
            hour: first,
            last_hour,
            j: 0,
            count,
            current: None,
        }
    }

    fn next_contact(&mut self) -> Option<Contact> {
        loop {
            if self.hour > self.last_hour {
                return None;
            }
            if self.j >= self.count {
                self.hour += 1;
                self.j = 0;
                self.count = self.model.hour_count(self.hour);
                continue;
            }
            let c = self.model.contact(self.hour, self.j, self.count);
            self.j += 1;
            if c.created_ms > self.as_of {
                // contacts come in creation order: nothing later in this hour is visible
                self.j = self.count;
                continue;
            }
            let anchor = if c.ended_ms <= self.as_of {
                c.ended_ms
            } else {
                c.created_ms
            };
            if anchor >= self.from && anchor < self.to {
                return Some(c);
            }
        }
    }
}

fn push_secs(out: &mut String, ms: i64) {
    let _ = write!(out, "{}", ms.max(0) / 1000);
}

impl RowSource for WorkSessionRows {
    fn next_row(&mut self, cells: &mut [String]) -> Option<(u64, usize)> {
        if self.current.is_none() {
            let c = self.next_contact()?;
            let rows = c.visible_work(self.as_of).len().max(1);
            self.current = Some((c, 0, rows));
        }
        let (c, k, rows) = self.current.take().expect("a current contact");
        let m = &self.model;
        let as_of = self.as_of;
        let work = c.visible_work(as_of);
        let slot = work.get(k);
        let ended = c.ended_ms <= as_of;
        if ended {
            m.push_id(
                &mut cells[0],
                Kind::WorkSession,
                c.n * 4 + slot.map_or(3, |_| k as u64),
            );
        }
        m.push_id(&mut cells[1], Kind::Contact, c.n);
        push_ts(&mut cells[2], c.created_ms);
        m.push_id(&mut cells[3], Kind::Customer, c.customer);
        m.push_id(&mut cells[4], Kind::Conversation, c.conversation);
        m.push_id(&mut cells[5], Kind::Inbox, u64::from(c.inbox));
        cells[6].push_str(c.channel);
        cells[7].push_str(c.direction());
        if let Some(w) = slot {
            push_ts(&mut cells[8], w.accepted_ms);
        }
        if let Some(r) = c.routed_ms {
            push_ts(&mut cells[9], r);
        }
        if let Some(w) = slot {
            m.push_id(&mut cells[10], Kind::Agent, u64::from(w.agent));
        }
        if let Some(first) = work.first() {
            push_ts(&mut cells[11], first.accepted_ms);
        }
        if ended {
            push_ts(&mut cells[12], c.ended_ms);
        }
        cells[13].push_str(match (ended, c.n_work) {
            (false, _) => "ACTIVE",
            (true, 0) if c.inbound => "ABANDONED",
            (true, _) => "ENDED",
        });
        if let Some(first) = work.first() {
            let wait = first.accepted_ms - c.queued_ms();
            cells[14].push_str(if wait <= MINUTE_MS { "true" } else { "false" });
        } else if ended {
            cells[14].push_str("false");
        }
        if let (Some(w), true) = (slot, ended) {
            let settled = as_of.min(c.conv_end_ms) - c.ended_ms;
            push_secs(&mut cells[15], w.released_ms - w.accepted_ms);
            push_secs(&mut cells[16], settled.min(w.acw_ms));
            push_secs(&mut cells[17], (settled - w.acw_ms).max(0) / 10);
        }
        if slot.is_some() {
            m.push_id(
                &mut cells[18],
                Kind::Inbox,
                (u64::from(c.inbox) + k as u64) % u64::from(m.inboxes.max(1)),
            );
        }
        let identity = c.n * 4 + slot.map_or(3, |_| k as u64);
        if k + 1 < rows {
            self.current = Some((c, k + 1, rows));
        }
        Some((identity, 2))
    }

    fn key(&self, cells: &[String]) -> String {
        format!("{}/{}", cells[1], cells[10])
    }
}

/// Midnight starting `date` in `tz`, as ms since the epoch.
pub fn local_midnight(tz: Tz, date: NaiveDate) -> i64 {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight");
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        // midnight skipped by a DST change: the day starts an hour later
        LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map_or_else(
                || naive.and_utc().timestamp_millis(),
                |t| t.timestamp_millis(),
            ),
    }
}

fn local_date(tz: Tz, ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("in range")
        .with_timezone(&tz)
        .date_naive()
}

struct ContactRows {
    model: Model,
    as_of: i64,
    start: NaiveDate,
    end: NaiveDate,
    tz: Tz,
    contacts: std::vec::IntoIter<Contact>,
    hour: i64,
    last_hour: i64,
}

impl ContactRows {
    fn new(model: Model, as_of: i64, start: NaiveDate, end: NaiveDate, tz: Tz) -> Self {
        let from = local_midnight(tz, start) - 60_000;
        let to = local_midnight(tz, end + Duration::days(1)).min(as_of);
        ContactRows {
            hour: model.hour_of(from).max(0),
            last_hour: model.hour_of(to),
            model,
            as_of,
            start,
            end,
            tz,
            contacts: Vec::new().into_iter(),
        }
    }

    fn next_contact(&mut self) -> Option<Contact> {
        loop {
            if let Some(c) = self.contacts.next() {
                let q = c.queued_ms();
                if q <= self.as_of {
                    let d = local_date(self.tz, q);
                    if d >= self.start && d <= self.end {
                        return Some(c);
                    }
                }
                continue;
            }
            if self.hour > self.last_hour {
                return None;
            }
            let count = self.model.hour_count(self.hour);
            let h = self.hour;
            self.contacts = (0..count)
                .map(|j| self.model.contact(h, j, count))
                .collect::<Vec<_>>()
                .into_iter();
            self.hour += 1;
        }
    }
}

impl RowSource for ContactRows {
    fn next_row(&mut self, cells: &mut [String]) -> Option<(u64, usize)> {
        let c = self.next_contact()?;
        let m = &self.model;
        let as_of = self.as_of;
        let ended = c.ended_ms <= as_of;
        push_ts(&mut cells[0], c.queued_ms());
        m.push_id(&mut cells[1], Kind::Customer, c.customer);
        m.push_id(&mut cells[2], Kind::Conversation, c.conversation);
        m.push_id(&mut cells[3], Kind::Contact, c.n);
        let link = format!(
            "https://simulated.gladly.com/agent/customer/{}/conversation/{}",
            cells[1], cells[2]
        );
        cells[4] = link;
        cells[5].push_str(c.channel);
        cells[6].push_str(c.direction());
        cells[7].push_str(if c.inbound { "Customer" } else { "Agent" });
        if c.inbound {
            let _ = match c.channel {
                "PHONE_CALL" | "SMS" | "VOICEMAIL" => write!(cells[8], "+1555010{:04}", c.inbox),
                "EMAIL" => write!(cells[8], "support+{}@example.com", c.inbox),
                "CHAT" => write!(cells[8], "Glad App {}", c.inbox),
                _ => write!(cells[8], "page-{}", c.inbox),
            };
        }
        cells[9].push_str(c.ivr);
        m.push_id(&mut cells[10], Kind::Inbox, u64::from(c.inbox));
        // the remaining columns are filled when the contact ends
        if ended {
            let work = &c.work[..c.n_work];
            if let Some(last) = work.last() {
                m.push_id(&mut cells[11], Kind::Agent, u64::from(last.agent));
            }
            if let Some(first) = work.first() {
                push_ts(&mut cells[12], first.accepted_ms);
            }
            push_ts(&mut cells[13], c.ended_ms);
            cells[14].push_str(match (c.n_work, c.inbound) {
                (0, true) => "ABANDONED",
                _ => "ENDED",
            });
            let answered = work.first().map_or(c.ended_ms, |w| w.accepted_ms);
            push_secs(&mut cells[15], answered - c.queued_ms());
            push_secs(
                &mut cells[16],
                work.iter().map(|w| w.released_ms - w.accepted_ms).sum(),
            );
            push_secs(&mut cells[17], c.hold_ms);
        }
        Some((c.n, 0))
    }

    fn key(&self, cells: &[String]) -> String {
        cells[3].clone()
    }
}

/// Bucket starts (ms) covering `[start, end]` in `tz`, plus the end of the last bucket.
pub fn buckets(tz: Tz, start: NaiveDate, end: NaiveDate, level: Level) -> Vec<i64> {
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

/// Agent `a`'s daily shift: starts at this UTC hour, lasts 8 hours.
fn shift_start_hour(a: u32) -> i64 {
    i64::from((a * 7) % 24)
}

struct Acc {
    accepted: [u64; 5],
    handle_ms: i64,
    acw_ms: i64,
}

/// Logged-in statistics of agent `a` in `[from, to)`: (logins, logouts, logged-in ms).
fn shift_stats(a: u32, from: i64, to: i64) -> (u64, u64, i64) {
    if to <= from {
        return (0, 0, 0);
    }
    let day = 86_400_000;
    let len = 8 * 3_600_000;
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

fn fmt_local(tz: Tz, ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("in range")
        .with_timezone(&tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Agent Summary rows, computed up front (agents × buckets is small).
struct AgentSummaryRows {
    rows: std::vec::IntoIter<(u64, Vec<String>)>,
}

fn agent_summary(
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
    let agents = model.agents as usize;
    let mut acc: Vec<Acc> = (0..open.len() * agents)
        .map(|_| Acc {
            accepted: [0; 5],
            handle_ms: 0,
            acw_ms: 0,
        })
        .collect();
    if let (Some(first), Some(last)) = (open.first(), open.last()) {
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
    }
    let mut rows = Vec::with_capacity(open.len() * agents);
    for (b, (bs, be)) in open.iter().enumerate() {
        for a in 0..model.agents {
            let x = &acc[b * agents + a as usize];
            let (ins, outs, logged) = shift_stats(a, *bs, (*be).min(as_of));
            let away = (logged / (2 * 3_600_000)) as u64;
            let first = FIRST_NAMES[a as usize % FIRST_NAMES.len()];
            let last = LAST_NAMES[(a as usize / FIRST_NAMES.len()) % LAST_NAMES.len()];
            let inboxes = model.inboxes.max(1);
            let cells = vec![
                fmt_local(tz, *bs),
                fmt_local(tz, *be),
                format!("{first} {last}"),
                format!(
                    "{}.{}{a}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase()
                ),
                model.id(Kind::Agent, u64::from(a)),
                "Active".to_string(),
                if a % 10 == 0 {
                    "Agent, Team Lead"
                } else {
                    "Agent"
                }
                .to_string(),
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
            ];
            let identity = super::model::mix((*bs as u64) ^ u64::from(a).rotate_left(40));
            rows.push((identity, cells));
        }
    }
    AgentSummaryRows {
        rows: rows.into_iter(),
    }
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
