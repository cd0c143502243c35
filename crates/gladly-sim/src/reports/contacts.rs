//! The Contact Export report: one row per contact, anchored at the date it was queued,
//! filled at its start and completed at its end.

use std::fmt::Write as _;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::{local_date, local_midnight, push_secs, Extras, RowSource};
use crate::model::{Contact, Kind, Model};
use crate::timestamp::push_ts;

/// Which contacts a request covers.
enum Span {
    /// Queued on the dates `[start, end]` in `tz`.
    Dates {
        start: NaiveDate,
        end: NaiveDate,
        tz: Tz,
    },
    /// Queued in `[from_ms, to_ms)` (time-precise).
    Instants { from_ms: i64, to_ms: i64 },
}

impl Span {
    fn holds(&self, queued_ms: i64) -> bool {
        match self {
            Span::Dates { start, end, tz } => {
                let d = local_date(*tz, queued_ms);
                d >= *start && d <= *end
            }
            Span::Instants { from_ms, to_ms } => (*from_ms..*to_ms).contains(&queued_ms),
        }
    }
}

/// The contacts a request covers, in creation order.
pub(super) struct ContactRows {
    model: Model,
    as_of: i64,
    span: Span,
    contacts: std::vec::IntoIter<Contact>,
    hour: i64,
    last_hour: i64,
    last: Extras,
}

impl ContactRows {
    /// The rows of the dates `[start, end]` in `tz` as of `as_of`.
    pub(super) fn new(model: Model, as_of: i64, start: NaiveDate, end: NaiveDate, tz: Tz) -> Self {
        let from = local_midnight(tz, start) - 60_000;
        let to = local_midnight(tz, end + Duration::days(1)).min(as_of);
        Self::spanning(model, as_of, Span::Dates { start, end, tz }, from, to)
    }

    /// The rows of contacts queued in `[from_ms, to_ms)` as of `as_of`.
    pub(super) fn between(model: Model, as_of: i64, from_ms: i64, to_ms: i64) -> Self {
        let span = Span::Instants { from_ms, to_ms };
        Self::spanning(model, as_of, span, from_ms - 60_000, to_ms.min(as_of))
    }

    fn spanning(model: Model, as_of: i64, span: Span, from: i64, to: i64) -> Self {
        ContactRows {
            hour: model.hour_of(from).max(0),
            last_hour: model.hour_of(to),
            model,
            as_of,
            span,
            contacts: Vec::new().into_iter(),
            last: Extras::default(),
        }
    }

    fn next_contact(&mut self) -> Option<Contact> {
        loop {
            if let Some(c) = self.contacts.next() {
                let q = c.queued_ms();
                if q <= self.as_of && self.span.holds(q) {
                    return Some(c);
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
        self.last = Extras::of_work(c.visible_work(as_of));
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

    fn extras(&self) -> Extras {
        self.last
    }
}
