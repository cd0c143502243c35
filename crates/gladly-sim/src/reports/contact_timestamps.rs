//! The Contact Timestamps report: one row per contact event (started, each agent's accept,
//! transfers, hold, end), anchored at the event's timestamp. An event row appears once its
//! instant is past the data delay and never changes after (agent names aside, which show
//! as they are now).

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::hourly::{Hourly, HourlyRows, Row};
use super::{local_date, local_midnight, Extras};
use crate::dimensions::{agent_name, inbox_name};
use crate::model::{Contact, Kind, Model};
use crate::rng::mix;
use crate::timestamp::ts;
use crate::wire::CONTACT_TIMESTAMPS_COLUMNS;

/// The contact events of the dates `[start, end]` in `tz`, as of `as_of`.
pub(super) struct ContactTimestamps {
    model: Model,
    as_of: i64,
    start: NaiveDate,
    end: NaiveDate,
    tz: Tz,
}

/// The Contact Timestamps rows of a request.
pub(super) type ContactTimestampRows = HourlyRows<ContactTimestamps>;

impl ContactTimestampRows {
    /// The rows of the dates `[start, end]` in `tz` as of `as_of`.
    pub(super) fn new(model: Model, as_of: i64, start: NaiveDate, end: NaiveDate, tz: Tz) -> Self {
        // a contact's events run until its end, at most `max_open` after its creation
        let first = model.hour_of(local_midnight(tz, start) - model.max_open_ms);
        let last = model.hour_of((local_midnight(tz, end + Duration::days(1)) - 1).min(as_of));
        let report = ContactTimestamps {
            model,
            as_of,
            start,
            end,
            tz,
        };
        HourlyRows::over(report, first, last)
    }
}

/// One event of a contact (a row of this report, and an Events API event).
pub(crate) struct Event {
    /// When it happened.
    pub(crate) at: i64,
    /// `CONTACT/…`.
    pub(crate) kind: &'static str,
    /// `AGENT` events name their agent; others are the customer's.
    pub(crate) initiator: Option<u32>,
    /// The inbox the contact had before the event.
    pub(crate) inbox: Option<u32>,
    /// The agent the contact had before the event.
    pub(crate) agent: Option<u32>,
}

/// Every event of contact `c`, whether it has happened yet or not, in time order.
pub(crate) fn events(c: &Contact) -> Vec<Event> {
    let work = &c.work[..c.n_work];
    let mut out = vec![Event {
        at: c.created_ms,
        kind: "CONTACT/STARTED",
        initiator: (!c.inbound)
            .then(|| work.first().map(|w| w.agent))
            .flatten(),
        inbox: None,
        agent: None,
    }];
    for (k, w) in work.iter().enumerate() {
        let before = k.checked_sub(1).map(|p| work[p].agent);
        out.push(Event {
            at: w.accepted_ms,
            kind: "CONTACT/OFFER_ACCEPTED",
            initiator: Some(w.agent),
            inbox: Some(c.inbox),
            agent: before,
        });
        if k > 0 {
            out.push(Event {
                at: w.accepted_ms,
                kind: "CONTACT/TRANSFERRED",
                initiator: before,
                inbox: Some(c.inbox),
                agent: before,
            });
        }
    }
    if let (Some(w), true) = (work.first(), c.hold_ms > 0) {
        let span = w.released_ms - w.accepted_ms;
        if span > c.hold_ms {
            let from = w.accepted_ms + (span - c.hold_ms) / 2;
            for (at, kind) in [
                (from, "CONTACT/HOLD_STARTED"),
                (from + c.hold_ms, "CONTACT/HOLD_ENDED"),
            ] {
                out.push(Event {
                    at,
                    kind,
                    initiator: Some(w.agent),
                    inbox: Some(c.inbox),
                    agent: Some(w.agent),
                });
            }
        }
    }
    let last = work.last().map(|w| w.agent);
    out.push(Event {
        at: c.ended_ms,
        kind: "CONTACT/ENDED",
        initiator: last,
        inbox: Some(c.inbox),
        agent: last,
    });
    out.sort_by_key(|e| e.at);
    out
}

impl ContactTimestamps {
    fn rows(&self, c: &Contact, out: &mut Vec<Row>) {
        let m = &self.model;
        let extras = Extras::of_work(c.visible_work(self.as_of));
        let agent_id = |a: Option<u32>| a.map_or(String::new(), |a| m.id(Kind::Agent, a.into()));
        let agent_nm =
            |a: Option<u32>| a.map_or(String::new(), |a| agent_name(m, a.into(), self.as_of));
        for (seq, e) in events(c).into_iter().enumerate() {
            if e.at > self.as_of {
                break;
            }
            let d = local_date(self.tz, e.at);
            if d < self.start || d > self.end {
                continue;
            }
            let cells = vec![
                self.tz.name().to_string(),
                ts(e.at),
                e.kind.to_string(),
                m.id(Kind::Contact, c.n),
                m.id(Kind::Conversation, c.conversation),
                m.id(Kind::Customer, c.customer),
                c.channel.to_string(),
                if e.initiator.is_some() {
                    "AGENT"
                } else {
                    "CUSTOMER"
                }
                .to_string(),
                agent_id(e.initiator),
                agent_nm(e.initiator),
                e.inbox
                    .map_or(String::new(), |i| m.id(Kind::Inbox, i.into())),
                e.inbox
                    .map_or(String::new(), |i| inbox_name(i.into()).to_string()),
                agent_id(e.agent),
                agent_nm(e.agent),
            ];
            debug_assert_eq!(cells.len(), CONTACT_TIMESTAMPS_COLUMNS.len());
            out.push(Row {
                identity: mix((c.n.wrapping_mul(64) + seq as u64) ^ 0xC7_0000),
                bad: 1,
                cells,
                extras,
            });
        }
    }
}

impl Hourly for ContactTimestamps {
    fn hour(&self, h: i64, out: &mut Vec<Row>) {
        let count = self.model.hour_count(h);
        for j in 0..count {
            let c = self.model.contact(h, j, count);
            if c.created_ms > self.as_of {
                break;
            }
            self.rows(&c, out);
        }
    }

    fn key(&self, cells: &[String]) -> String {
        format!("{}/{}/{}", cells[3], cells[2], cells[1])
    }
}
