//! The Conversation Export report: one row per conversation, anchored at its creation (its
//! first contact), restated as the conversation gains contacts, agents, closes, reopens and
//! is merged away.

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::hourly::{Hourly, HourlyRows, Row};
use super::{local_date, local_midnight, push_secs, Extras};
use crate::conversations::{closes_and_reopens, inbox_at, merged_at, run, Fate};
use crate::dimensions::{agent_name, inbox_name, topic_name};
use crate::model::{Contact, Kind, Model, Work};
use crate::rng::mix;
use crate::timestamp::ts;
use crate::wire::CONVERSATION_EXPORT_COLUMNS;

/// The conversations created on the dates `[start, end]` in `tz`, as of `as_of`.
pub(super) struct ConversationExport {
    model: Model,
    as_of: i64,
    start: NaiveDate,
    end: NaiveDate,
    tz: Tz,
}

/// The Conversation Export rows of a request.
pub(super) type ConversationExportRows = HourlyRows<ConversationExport>;

impl ConversationExportRows {
    /// The rows of the dates `[start, end]` in `tz` as of `as_of`.
    pub(super) fn new(model: Model, as_of: i64, start: NaiveDate, end: NaiveDate, tz: Tz) -> Self {
        let first = model.hour_of(local_midnight(tz, start));
        let last = model.hour_of((local_midnight(tz, end + Duration::days(1)) - 1).min(as_of));
        let report = ConversationExport {
            model,
            as_of,
            start,
            end,
            tz,
        };
        HourlyRows::over(report, first, last)
    }
}

/// The agents of the contacts `visible` at `as_of`, each with its contact, in acceptance order.
pub(crate) fn assignments<'a>(visible: &[&'a Contact], as_of: i64) -> Vec<(&'a Contact, Work)> {
    let mut out: Vec<(&Contact, Work)> = visible
        .iter()
        .flat_map(|c| c.visible_work(as_of).iter().map(move |w| (*c, *w)))
        .collect();
    out.sort_by_key(|(_, w)| w.accepted_ms);
    out
}

/// The agent who accepted last before `at`, if any.
pub(crate) fn agent_before(assigned: &[(&Contact, Work)], at: i64) -> Option<u32> {
    assigned
        .iter()
        .rev()
        .find(|(_, w)| w.accepted_ms < at)
        .map(|(_, w)| w.agent)
}

/// The conversation's inbox at `at`: that of its latest contact created by then.
pub(crate) fn inbox_then(m: &Model, visible: &[&Contact], at: i64) -> Option<u64> {
    visible
        .iter()
        .rev()
        .find(|c| c.created_ms <= at)
        .map(|c| inbox_at(m, c, at))
}

/// The second topic of conversation `n` (added when it closes), when it differs from the
/// first (added when an agent accepts), as in [`crate::conversations`].
pub(super) fn closing_topic(n: u64) -> Option<u64> {
    ((n / 7) % 7 != n % 7).then_some((n / 7) % 7)
}

impl ConversationExport {
    /// The row of conversation `n` (contacts `all`, of an hour of `count` contacts).
    fn row(&self, n: u64, all: &[Contact], count: u32) -> Row {
        let merged_in = self.merged_into(n, all, count);
        let f = Facts::gather(&self.model, n, all, self.as_of, merged_in);
        let mut cells = Cells {
            m: &self.model,
            as_of: self.as_of,
            out: Vec::with_capacity(CONVERSATION_EXPORT_COLUMNS.len()),
        };
        cells.current(&f, self.tz);
        cells.created(&f);
        cells.last_closed(&f);
        cells.topics_and_channels(&f);
        cells.times_and_fcr(&f);
        cells.counts(&f);
        debug_assert_eq!(cells.out.len(), CONVERSATION_EXPORT_COLUMNS.len());
        Row {
            identity: mix(n ^ 0xC0_4E45_0000),
            bad: 2,
            cells: cells.out,
            extras: conversation_extras(&f.visible, self.as_of),
        }
    }

    /// The conversation merged into `n` by now, if any: the one right after it in its hour.
    fn merged_into(&self, n: u64, all: &[Contact], count: u32) -> Option<u64> {
        let m = &self.model;
        let next = (n & 0xFF_FFFF) as u32 + all.len() as u32;
        if next >= count {
            return None;
        }
        let other = (n & !0xFF_FFFF) | u64::from(next);
        if crate::conversations::fate(m, other) != Fate::Merged {
            return None;
        }
        merged_at(m, other, &run(m, other))
            .filter(|(at, into)| *into == n && *at <= self.as_of)
            .map(|_| other)
    }
}

/// What a conversation's Conversation Export row states, gathered once from its contacts.
struct Facts<'a> {
    /// The conversation's global index.
    n: u64,
    /// Its contacts created by `as_of`, first to latest (never empty).
    visible: Vec<&'a Contact>,
    /// When it closed by `as_of`.
    closes: Vec<i64>,
    /// When it reopened by `as_of`.
    reopens: Vec<i64>,
    /// Closed now: closed more often than reopened.
    closed: bool,
    /// Merged away by `as_of`.
    merged: bool,
    /// The conversation merged into it by `as_of`, if any.
    merged_in: Option<u64>,
    /// The agent assigned last (its current assignee), if any.
    current: Option<u32>,
    /// The agent who started it: the first agent of an outbound first contact.
    creator: Option<u32>,
    /// The agent assigned when it last closed; `None` when the system closed it (or it never
    /// closed).
    closer: Option<u32>,
    /// Its inbox now.
    inbox_now: u64,
    /// Its inbox when it last closed.
    inbox_closed: Option<u64>,
    /// Its topics now, in the order they were added.
    topics: Vec<u64>,
    /// It gains a second topic on each close (and loses it on each reopen).
    has_closing_topic: bool,
    /// Its contacts' distinct channels, in order of first use.
    channels: Vec<&'static str>,
    /// How many distinct agents were assigned to it.
    agents: usize,
    /// How many distinct inboxes it has been in.
    inboxes: usize,
    /// The work time on its ended contacts.
    handle_ms: i64,
}

impl<'a> Facts<'a> {
    /// The facts of conversation `n` (contacts `all`) as of `as_of`, `merged_in` being the
    /// conversation merged into it ([`ConversationExport::merged_into`]).
    fn gather(m: &Model, n: u64, all: &'a [Contact], as_of: i64, merged_in: Option<u64>) -> Self {
        let visible: Vec<&Contact> = all.iter().filter(|c| c.created_ms <= as_of).collect();
        let first = visible[0];
        let (closes, reopens) = closes_and_reopens(all, as_of);
        let closed = closes.len() > reopens.len();
        let assigned = assignments(&visible, as_of);
        let current = assigned.last().map(|(_, w)| w.agent);
        let last_closed = closes.last().copied();
        let inbox_now = inbox_at(m, visible[visible.len() - 1], as_of);
        let mut agents: Vec<u32> = assigned.iter().map(|(_, w)| w.agent).collect();
        agents.sort_unstable();
        agents.dedup();
        let mut inboxes: Vec<u64> = visible.iter().map(|c| u64::from(c.inbox)).collect();
        inboxes.push(inbox_now);
        inboxes.sort_unstable();
        inboxes.dedup();
        Facts {
            n,
            merged: merged_at(m, n, all).is_some_and(|(at, _)| at <= as_of),
            merged_in,
            current,
            creator: (!first.inbound)
                .then(|| first.visible_work(as_of).first().map(|w| w.agent))
                .flatten(),
            closer: last_closed.and_then(|at| agent_before(&assigned, at + 1)),
            inbox_now,
            inbox_closed: last_closed.and_then(|at| inbox_then(m, &visible, at)),
            topics: current_topics(n, current.is_some(), closed),
            has_closing_topic: closing_topic(n).is_some(),
            channels: channels(&visible),
            agents: agents.len(),
            inboxes: inboxes.len(),
            handle_ms: handle_ms(&visible, as_of),
            closed,
            closes,
            reopens,
            visible,
        }
    }

    /// Its first contact, the one that created it.
    fn first(&self) -> &'a Contact {
        self.visible[0]
    }

    /// When it last closed, if it did.
    fn last_closed(&self) -> Option<i64> {
        self.closes.last().copied()
    }
}

/// The topics on conversation `n` now: the first once an agent was assigned, the second
/// while it is closed.
fn current_topics(n: u64, assigned: bool, closed: bool) -> Vec<u64> {
    let mut topics = Vec::new();
    if assigned {
        topics.push(n % 7);
    }
    if let (true, Some(t)) = (closed, closing_topic(n)) {
        topics.push(t);
    }
    topics
}

/// The distinct channels of `visible`, in order of first use.
fn channels(visible: &[&Contact]) -> Vec<&'static str> {
    let mut channels: Vec<&str> = Vec::new();
    for c in visible {
        if !channels.contains(&c.channel) {
            channels.push(c.channel);
        }
    }
    channels
}

/// The work time, accepted to released, on those of `visible` ended by `as_of`.
fn handle_ms(visible: &[&Contact], as_of: i64) -> i64 {
    visible
        .iter()
        .filter(|c| c.ended_ms <= as_of)
        .flat_map(|c| c.visible_work(as_of))
        .map(|w| w.released_ms - w.accepted_ms)
        .sum()
}

/// A Conversation Export row's cells as they are written, naming agents as of `as_of`.
struct Cells<'m> {
    m: &'m Model,
    as_of: i64,
    out: Vec<String>,
}

impl Cells<'_> {
    /// One cell.
    fn push(&mut self, cell: impl Into<String>) {
        self.out.push(cell.into());
    }

    /// An agent's ID and name cells, both empty for none.
    fn agent(&mut self, a: Option<u32>) {
        let (m, as_of) = (self.m, self.as_of);
        self.push(a.map_or(String::new(), |a| m.id(Kind::Agent, a.into())));
        self.push(a.map_or(String::new(), |a| agent_name(m, a.into(), as_of)));
    }

    /// An inbox's ID and name cells.
    fn inbox(&mut self, i: Option<u64>) {
        let m = self.m;
        self.push(i.map_or(String::new(), |i| m.id(Kind::Inbox, i)));
        self.push(i.map_or("", inbox_name));
    }

    /// A duration in whole seconds, empty for none.
    fn secs(&mut self, ms: Option<i64>) {
        let mut s = String::new();
        if let Some(ms) = ms {
            push_secs(&mut s, ms);
        }
        self.push(s);
    }

    /// "Timezone Filter" to "Last Closed At": the conversation as it stands.
    fn current(&mut self, f: &Facts, tz: Tz) {
        let m = self.m;
        let customer = m.id(Kind::Customer, f.first().customer);
        let conversation = m.id(Kind::Conversation, f.n);
        let link = format!(
            "https://simulated.gladly.com/agent/customer/{customer}/conversation/{conversation}"
        );
        let status = if f.merged {
            "MERGED"
        } else if f.closed {
            "CLOSED"
        } else {
            "OPEN"
        };
        self.push(tz.name());
        self.push("");
        self.push(ts(f.first().created_ms));
        self.push(conversation);
        self.push(customer);
        self.push(link);
        self.push(status);
        self.agent(f.current);
        self.inbox(Some(f.inbox_now));
        self.push(f.closes.first().map_or(String::new(), |t| ts(*t)));
        self.push(f.last_closed().map_or(String::new(), ts));
    }

    /// "Initiator Type - Created" to "Assigned Agent Name - Created".
    fn created(&mut self, f: &Facts) {
        let first = f.first();
        self.push(if first.inbound { "Customer" } else { "Agent" });
        self.agent(f.creator);
        self.inbox(Some(first.inbox.into()));
        self.agent(f.creator);
    }

    /// "Initiator Type - Last Closed" to "Assigned Agent Name - Last Closed".
    fn last_closed(&mut self, f: &Facts) {
        self.push(match (f.last_closed(), f.closer) {
            (None, _) => "",
            (Some(_), Some(_)) => "Agent",
            (Some(_), None) => "System",
        });
        self.agent(f.closer);
        self.push("");
        self.inbox(f.inbox_closed);
        self.agent(f.closer);
    }

    /// "Topics" to "Last Channel".
    fn topics_and_channels(&mut self, f: &Facts) {
        let names: Vec<&str> = f.topics.iter().map(|t| topic_name(*t)).collect();
        let with_hierarchy: Vec<String> = f
            .topics
            .iter()
            .map(|t| match t {
                2 => format!("{} > {}", topic_name(1), topic_name(2)),
                t => topic_name(*t).to_string(),
            })
            .collect();
        self.push(names.join(", "));
        self.push(with_hierarchy.join(", "));
        self.push(self.m.id(Kind::Contact, f.first().n));
        for k in 0..3 {
            self.push(f.channels.get(k).copied().unwrap_or_default());
        }
        self.push(f.visible[f.visible.len() - 1].channel);
    }

    /// "Created-to-First Closed Time in seconds" to "Merged Conversations".
    fn times_and_fcr(&mut self, f: &Facts) {
        let created = f.first().created_ms;
        let eligible = f.first().inbound;
        let success = eligible && f.closed && f.reopens.is_empty() && f.visible.len() == 1;
        self.secs(f.closes.first().map(|t| t - created));
        self.secs(f.last_closed().map(|t| t - created));
        self.secs(Some(f.handle_ms));
        self.push(eligible.to_string());
        self.push(success.to_string());
        let m = self.m;
        self.push(
            f.merged_in
                .map_or(String::new(), |x| m.id(Kind::Conversation, x)),
        );
    }

    /// "Count of Contacts" to "Payment Amount - Declined USD".
    fn counts(&mut self, f: &Facts) {
        let (closing_adds, closing_removes) = if f.has_closing_topic {
            (f.closes.len(), f.reopens.len())
        } else {
            (0, 0)
        };
        self.push(f.visible.len().to_string());
        self.push(f.channels.len().to_string());
        self.push("0");
        self.push(f.agents.to_string());
        self.push(f.inboxes.to_string());
        self.push("0");
        self.push(f.closes.len().to_string());
        self.push(f.reopens.len().to_string());
        self.push((usize::from(f.current.is_some()) + closing_adds).to_string());
        self.push(closing_removes.to_string());
        for zero in ["0", "0", "0.00", "0.00"] {
            self.push(zero);
        }
    }
}

/// What a conversation's row says for a column added mid-run.
pub(super) fn conversation_extras(visible: &[&Contact], as_of: i64) -> Extras {
    let assigned = assignments(visible, as_of);
    Extras {
        transfers: visible
            .iter()
            .map(|c| c.visible_work(as_of).len().saturating_sub(1) as u32)
            .sum(),
        last_agent: assigned.last().map(|(_, w)| w.agent),
    }
}

impl Hourly for ConversationExport {
    fn hour(&self, h: i64, out: &mut Vec<Row>) {
        let m = &self.model;
        let count = m.hour_count(h);
        for j in 0..count {
            if m.follow_up(h, j) {
                continue;
            }
            let n = ((h as u64) << 24) | u64::from(j);
            let all = run(m, n);
            let created = all[0].created_ms;
            if created > self.as_of {
                break;
            }
            let d = local_date(self.tz, created);
            if d >= self.start && d <= self.end {
                out.push(self.row(n, &all, count));
            }
        }
    }

    fn key(&self, cells: &[String]) -> String {
        cells[3].clone()
    }
}
