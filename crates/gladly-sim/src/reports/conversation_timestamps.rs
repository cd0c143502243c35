//! The Conversation Timestamps report: one row per conversation event (created, each agent
//! assignment, topics added and removed, closed, reopened), anchored at the event's
//! timestamp. An event row appears once its instant is past the data delay and never
//! changes after (agent names aside, which show as they are now).

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::conversation_export::{
    agent_before, assignments, closing_topic, conversation_extras, inbox_then,
};
use super::hourly::{Hourly, HourlyRows, Row};
use super::{local_date, local_midnight};
use crate::conversations::{closes_and_reopens, run};
use crate::dimensions::{agent_name, inbox_name, topic_name};
use crate::model::{Contact, Kind, Model, Work, HOUR_MS};
use crate::rng::mix;
use crate::timestamp::ts;
use crate::wire::CONVERSATION_TIMESTAMPS_COLUMNS;

/// The conversation events of the dates `[start, end]` in `tz`, as of `as_of`.
pub(super) struct ConversationTimestamps {
    model: Model,
    as_of: i64,
    start: NaiveDate,
    end: NaiveDate,
    tz: Tz,
}

/// The Conversation Timestamps rows of a request.
pub(super) type ConversationTimestampRows = HourlyRows<ConversationTimestamps>;

impl ConversationTimestampRows {
    /// The rows of the dates `[start, end]` in `tz` as of `as_of`.
    pub(super) fn new(model: Model, as_of: i64, start: NaiveDate, end: NaiveDate, tz: Tz) -> Self {
        // a conversation's contacts start within its first hour; each ends at most
        // `max_open` later and its conversation end comes at most 3 hours after that
        let lookback = model.max_open_ms + 4 * HOUR_MS;
        let first = model.hour_of(local_midnight(tz, start) - lookback);
        let last = model.hour_of((local_midnight(tz, end + Duration::days(1)) - 1).min(as_of));
        let report = ConversationTimestamps {
            model,
            as_of,
            start,
            end,
            tz,
        };
        HourlyRows::over(report, first, last)
    }
}

/// One event of a conversation (a row of this report, and an Events API event).
#[derive(Default)]
pub(crate) struct Event {
    /// When it happened.
    pub(crate) at: i64,
    /// `CONVERSATION/…` or `CONVERSATION_ASSIGNEE/UPDATED`.
    pub(crate) kind: &'static str,
    /// The agent who did it (`AGENT`), else `system` says `SYSTEM` or `CUSTOMER`.
    pub(crate) initiator: Option<u32>,
    /// Done by the system (when no agent did it).
    pub(crate) system: bool,
    /// The topic added or removed.
    pub(crate) topic: Option<u64>,
    /// The inbox assigned.
    pub(crate) new_inbox: Option<u64>,
    /// The agent assigned.
    pub(crate) new_agent: Option<u32>,
    /// Why it was assigned (`ROUTED`, `ASSIGNED`, `TRANSFERRED`).
    pub(crate) reason: &'static str,
}

/// Every event of conversation `n` (contacts `all`, of which `visible` exist) up to `as_of`,
/// in time order.
pub(crate) fn events(n: u64, all: &[Contact], visible: &[&Contact], as_of: i64) -> Vec<Event> {
    let assigned = assignments(visible, as_of);
    let (closes, reopens) = closes_and_reopens(all, as_of);
    let closing = closing_topic(n);
    let mut out = vec![created_event(visible[0], as_of)];
    assignment_events(n, &assigned, &mut out);
    close_events(&closes, closing, &assigned, &mut out);
    reopen_events(&reopens, closing, &mut out);
    out.sort_by_key(|e| e.at);
    out
}

impl ConversationTimestamps {
    fn rows(&self, n: u64, all: &[Contact], out: &mut Vec<Row>) {
        let m = &self.model;
        let as_of = self.as_of;
        let visible: Vec<&Contact> = all.iter().filter(|c| c.created_ms <= as_of).collect();
        let extras = conversation_extras(&visible, as_of);
        let assigned = assignments(&visible, as_of);
        let agent_id = |a: Option<u32>| a.map_or(String::new(), |a| m.id(Kind::Agent, a.into()));
        let agent_nm = |a: Option<u32>| a.map_or(String::new(), |a| agent_name(m, a.into(), as_of));
        let inbox_id = |i: Option<u64>| i.map_or(String::new(), |i| m.id(Kind::Inbox, i));
        let inbox_nm = |i: Option<u64>| i.map_or(String::new(), |i| inbox_name(i).to_string());
        for (seq, e) in events(n, all, &visible, as_of).into_iter().enumerate() {
            let d = local_date(self.tz, e.at);
            if d < self.start || d > self.end {
                continue;
            }
            let created = e.kind == "CONVERSATION/CREATED";
            let inbox = (!created)
                .then(|| inbox_then(m, &visible, e.at - 1))
                .flatten();
            let agent = agent_before(&assigned, e.at);
            let initiator_type = match (e.initiator, e.system) {
                (Some(_), _) => "AGENT",
                (None, true) => "SYSTEM",
                (None, false) => "CUSTOMER",
            };
            let cells = vec![
                self.tz.name().to_string(),
                ts(e.at),
                e.kind.to_string(),
                m.id(Kind::Conversation, n),
                m.id(Kind::Customer, visible[0].customer),
                initiator_type.to_string(),
                agent_id(e.initiator),
                agent_nm(e.initiator),
                inbox_id(inbox),
                inbox_nm(inbox),
                agent_id(agent),
                agent_nm(agent),
                e.topic.map_or(String::new(), |t| m.id(Kind::Topic, t)),
                e.topic.map_or(String::new(), |t| topic_name(t).to_string()),
                inbox_id(e.new_inbox),
                inbox_nm(e.new_inbox),
                agent_id(e.new_agent),
                agent_nm(e.new_agent),
                e.reason.to_string(),
                String::new(),
                String::new(),
            ];
            debug_assert_eq!(cells.len(), CONVERSATION_TIMESTAMPS_COLUMNS.len());
            out.push(Row {
                identity: mix((n.wrapping_mul(256) + seq as u64) ^ 0xC0_7500_0000),
                bad: 1,
                cells,
                extras,
            });
        }
    }
}

/// The creation of a conversation whose first contact is `first`: by its first agent when
/// outbound, else by the customer.
fn created_event(first: &Contact, as_of: i64) -> Event {
    Event {
        at: first.created_ms,
        kind: "CONVERSATION/CREATED",
        initiator: (!first.inbound)
            .then(|| first.visible_work(as_of).first().map(|w| w.agent))
            .flatten(),
        ..Event::default()
    }
}

/// Into `out`, an assignee update for each of the `assigned` agents (routed, assigned or
/// transferred), then the first topic, added by the first agent.
fn assignment_events(n: u64, assigned: &[(&Contact, Work)], out: &mut Vec<Event>) {
    for (c, w) in assigned {
        let k = c.work[..c.n_work]
            .iter()
            .position(|x| x == w)
            .unwrap_or_default();
        let (initiator, system, reason) = match (k, c.inbound) {
            (0, true) => (None, true, "ROUTED"),
            (0, false) => (Some(w.agent), false, "ASSIGNED"),
            _ => (Some(c.work[k - 1].agent), false, "TRANSFERRED"),
        };
        out.push(Event {
            at: w.accepted_ms,
            kind: "CONVERSATION_ASSIGNEE/UPDATED",
            initiator,
            system,
            new_inbox: Some(c.inbox.into()),
            new_agent: Some(w.agent),
            reason,
            ..Event::default()
        });
    }
    if let Some((_, w)) = assigned.first() {
        out.push(Event {
            at: w.accepted_ms,
            kind: "CONVERSATION/TOPIC_ADDED",
            initiator: Some(w.agent),
            topic: Some(n % 7),
            ..Event::default()
        });
    }
}

/// Into `out`, each close at `closes`, by the agent then assigned (else the system), with
/// the `closing` topic it adds.
fn close_events(
    closes: &[i64],
    closing: Option<u64>,
    assigned: &[(&Contact, Work)],
    out: &mut Vec<Event>,
) {
    for &at in closes {
        let closer = agent_before(assigned, at + 1);
        out.push(Event {
            at,
            kind: "CONVERSATION/CLOSED",
            initiator: closer,
            system: closer.is_none(),
            ..Event::default()
        });
        if let Some(t) = closing {
            out.push(Event {
                at,
                kind: "CONVERSATION/TOPIC_ADDED",
                initiator: closer,
                system: closer.is_none(),
                topic: Some(t),
                ..Event::default()
            });
        }
    }
}

/// Into `out`, each reopen at `reopens` (by the customer), with the system removing the
/// `closing` topic.
fn reopen_events(reopens: &[i64], closing: Option<u64>, out: &mut Vec<Event>) {
    for &at in reopens {
        out.push(Event {
            at,
            kind: "CONVERSATION/REOPENED",
            ..Event::default()
        });
        if let Some(t) = closing {
            out.push(Event {
                at,
                kind: "CONVERSATION/TOPIC_REMOVED",
                system: true,
                topic: Some(t),
                ..Event::default()
            });
        }
    }
}

impl Hourly for ConversationTimestamps {
    fn hour(&self, h: i64, out: &mut Vec<Row>) {
        let m = &self.model;
        for j in 0..m.hour_count(h) {
            if m.follow_up(h, j) {
                continue;
            }
            let n = ((h as u64) << 24) | u64::from(j);
            let all = run(m, n);
            if all[0].created_ms > self.as_of {
                break;
            }
            self.rows(n, &all, out);
        }
    }

    fn key(&self, cells: &[String]) -> String {
        format!("{}/{}/{}", cells[3], cells[2], cells[1])
    }
}
