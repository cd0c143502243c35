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
pub(super) fn assignments<'a>(visible: &[&'a Contact], as_of: i64) -> Vec<(&'a Contact, Work)> {
    let mut out: Vec<(&Contact, Work)> = visible
        .iter()
        .flat_map(|c| c.visible_work(as_of).iter().map(move |w| (*c, *w)))
        .collect();
    out.sort_by_key(|(_, w)| w.accepted_ms);
    out
}

/// The agent who accepted last before `at`, if any.
pub(super) fn agent_before(assigned: &[(&Contact, Work)], at: i64) -> Option<u32> {
    assigned
        .iter()
        .rev()
        .find(|(_, w)| w.accepted_ms < at)
        .map(|(_, w)| w.agent)
}

/// The conversation's inbox at `at`: that of its latest contact created by then.
pub(super) fn inbox_then(m: &Model, visible: &[&Contact], at: i64) -> Option<u64> {
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
    fn row(&self, n: u64, all: &[Contact], count: u32) -> Row {
        let m = &self.model;
        let as_of = self.as_of;
        let visible: Vec<&Contact> = all.iter().filter(|c| c.created_ms <= as_of).collect();
        let first = visible[0];
        let latest = visible[visible.len() - 1];
        let (closes, reopens) = closes_and_reopens(all, as_of);
        let closed = closes.len() > reopens.len();
        let merged = merged_at(m, n, all).is_some_and(|(at, _)| at <= as_of);
        let assigned = assignments(&visible, as_of);
        let current = assigned.last().map(|(_, w)| w.agent);
        let agent_id = |a: Option<u32>| a.map_or(String::new(), |a| m.id(Kind::Agent, a.into()));
        let agent_nm = |a: Option<u32>| a.map_or(String::new(), |a| agent_name(m, a.into(), as_of));
        let inbox_id = |i: Option<u64>| i.map_or(String::new(), |i| m.id(Kind::Inbox, i));
        let inbox_nm = |i: Option<u64>| i.map_or(String::new(), |i| inbox_name(i).to_string());
        let mut topics = Vec::new();
        if current.is_some() {
            topics.push(n % 7);
        }
        let closing = closing_topic(n);
        if let (true, Some(t)) = (closed, closing) {
            topics.push(t);
        }
        let topic_names: Vec<&str> = topics.iter().map(|t| topic_name(*t)).collect();
        let with_hierarchy: Vec<String> = topics
            .iter()
            .map(|t| match t {
                2 => format!("{} > {}", topic_name(1), topic_name(2)),
                t => topic_name(*t).to_string(),
            })
            .collect();
        let mut channels: Vec<&str> = Vec::new();
        for c in &visible {
            if !channels.contains(&c.channel) {
                channels.push(c.channel);
            }
        }
        let outbound_agent = (!first.inbound)
            .then(|| first.visible_work(as_of).first().map(|w| w.agent))
            .flatten();
        let last_closed = closes.last().copied();
        let closer = last_closed.and_then(|at| agent_before(&assigned, at + 1));
        let handle: i64 = visible
            .iter()
            .filter(|c| c.ended_ms <= as_of)
            .flat_map(|c| c.visible_work(as_of))
            .map(|w| w.released_ms - w.accepted_ms)
            .sum();
        let mut agents: Vec<u32> = assigned.iter().map(|(_, w)| w.agent).collect();
        agents.sort_unstable();
        agents.dedup();
        let mut inboxes: Vec<u64> = visible.iter().map(|c| u64::from(c.inbox)).collect();
        inboxes.push(inbox_at(m, latest, as_of));
        inboxes.sort_unstable();
        inboxes.dedup();
        let merged_in = self.merged_into(n, all, count);
        let customer = m.id(Kind::Customer, first.customer);
        let conversation = m.id(Kind::Conversation, n);
        let status = if merged {
            "MERGED"
        } else if closed {
            "CLOSED"
        } else {
            "OPEN"
        };
        let secs = |ms: i64| {
            let mut s = String::new();
            push_secs(&mut s, ms);
            s
        };
        let eligible = first.inbound;
        let success = eligible && closed && reopens.is_empty() && visible.len() == 1;
        let closing_adds = closing.map_or(0, |_| closes.len());
        let closing_removes = closing.map_or(0, |_| reopens.len());
        let cells = vec![
            self.tz.name().to_string(),
            String::new(),
            ts(first.created_ms),
            conversation.clone(),
            customer.clone(),
            format!("https://simulated.gladly.com/agent/customer/{customer}/conversation/{conversation}"),
            status.to_string(),
            agent_id(current),
            agent_nm(current),
            inbox_id(Some(inbox_at(m, latest, as_of))),
            inbox_nm(Some(inbox_at(m, latest, as_of))),
            closes.first().map_or(String::new(), |t| ts(*t)),
            last_closed.map_or(String::new(), ts),
            if first.inbound { "Customer" } else { "Agent" }.to_string(),
            agent_id(outbound_agent),
            agent_nm(outbound_agent),
            inbox_id(Some(first.inbox.into())),
            inbox_nm(Some(first.inbox.into())),
            agent_id(outbound_agent),
            agent_nm(outbound_agent),
            match (last_closed, closer) {
                (None, _) => "",
                (Some(_), Some(_)) => "Agent",
                (Some(_), None) => "System",
            }
            .to_string(),
            agent_id(closer),
            agent_nm(closer),
            String::new(),
            inbox_id(last_closed.and_then(|at| inbox_then(m, &visible, at))),
            inbox_nm(last_closed.and_then(|at| inbox_then(m, &visible, at))),
            agent_id(closer),
            agent_nm(closer),
            topic_names.join(", "),
            with_hierarchy.join(", "),
            m.id(Kind::Contact, first.n),
            channels.first().copied().unwrap_or_default().to_string(),
            channels.get(1).copied().unwrap_or_default().to_string(),
            channels.get(2).copied().unwrap_or_default().to_string(),
            latest.channel.to_string(),
            closes.first().map_or(String::new(), |t| secs(t - first.created_ms)),
            last_closed.map_or(String::new(), |t| secs(t - first.created_ms)),
            secs(handle),
            eligible.to_string(),
            success.to_string(),
            merged_in.map_or(String::new(), |x| m.id(Kind::Conversation, x)),
            visible.len().to_string(),
            channels.len().to_string(),
            "0".to_string(),
            agents.len().to_string(),
            inboxes.len().to_string(),
            "0".to_string(),
            closes.len().to_string(),
            reopens.len().to_string(),
            (usize::from(current.is_some()) + closing_adds).to_string(),
            closing_removes.to_string(),
            "0".to_string(),
            "0".to_string(),
            "0.00".to_string(),
            "0.00".to_string(),
        ];
        debug_assert_eq!(cells.len(), CONVERSATION_EXPORT_COLUMNS.len());
        Row {
            identity: mix(n ^ 0xC0_4E45_0000),
            bad: 2,
            cells,
            extras: conversation_extras(&visible, as_of),
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
