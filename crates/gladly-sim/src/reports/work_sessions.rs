//! The Work Session report: one row per contact × agent (one agent-less row while no agent
//! has accepted), anchored at the contact's end, else its creation.

use super::{push_secs, Extras, RowSource};
use crate::model::{Contact, Kind, Model, MINUTE_MS};
use crate::timestamp::push_ts;

/// The rows of a window, contact by contact in creation order, each contact's agents in turn.
pub(super) struct WorkSessionRows {
    model: Model,
    as_of: i64,
    from: i64,
    to: i64,
    hour: i64,
    last_hour: i64,
    j: u32,
    count: u32,
    current: Option<(Contact, usize, usize)>,
    last: Extras,
}

impl WorkSessionRows {
    /// Rows anchored in `[from, to)` as of `as_of`.
    pub(super) fn new(model: Model, as_of: i64, from: i64, to: i64) -> Self {
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
            last: Extras::default(),
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
        self.last = Extras::of_work(work);
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

    fn extras(&self) -> Extras {
        self.last
    }
}
