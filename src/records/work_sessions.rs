//! Work Session report rows (`POST /api/v1/reports/work-session-events`, V2).
//!
//! Key `{contact_session_id, agent_id}` (v3): Gladly defines a work session as the unique
//! combination of the contact and the agent who worked it (`""` when no agent handled the
//! contact, as the CSV's empty cell: no key field is nullable, so a table sink or a stream
//! processor can make both its primary key). An open contact's rows and its final rows share
//! that key, so the final row simply replaces the provisional one; the work-session `id`,
//! generated when the contact ends, is a value field. The one key a contact can stop having is
//! `{C, ""}`: its row from before an agent accepted. When a window holds a contact's agent rows
//! and no agent-less row, [`State::finish`] tombstones `{C, ""}` (the pipeline's changelog
//! memory drops the
//! tombstone when that key was never published). It assumes Gladly only adds work sessions to
//! a contact, never removes one. All rows of a contact share one time anchor, so a window has
//! all of them or none; they need not be adjacent, hence the per-window state.

use std::hash::Hasher;

use super::columns::{Field, Kind, Layout, Val};
use super::record::{Output, Record};
use super::row_ctx::Ctx;
use super::{avro, changes, parse};
use crate::report::Row;

/// The report's documented columns, in `work_sessions-value.avsc` order.
pub(crate) const FIELDS: &[Field] = &[
    f("id", &["id"], Kind::Str),
    f("contact_session_id", &["contact_session_id"], Kind::Id),
    f(
        "contact_session_created_at",
        &["contact_session_created_at"],
        Kind::Ts,
    ),
    f("customer_id", &["customer_id"], Kind::Str),
    f("conversation_id", &["conversation_id"], Kind::Str),
    f("inbox_id", &["inbox_id"], Kind::Str),
    f("channel", &["channel"], Kind::Str),
    f("direction", &["direction"], Kind::Str),
    f("agent_accepted_at", &["agent_accepted_at"], Kind::Ts),
    f(
        "contact_session_routed_at",
        &["contact_session_routed_at"],
        Kind::Ts,
    ),
    f("agent_id", &["agent_id"], Kind::Str),
    f("sla_fulfilled_at", &["sla_fulfilled_at"], Kind::Ts),
    f(
        "contact_session_ended_at",
        &["contact_session_ended_at"],
        Kind::Ts,
    ),
    f("status", &["status"], Kind::Str),
    f("within_sla", &["within_sla"], Kind::Bool),
    f(
        "work_session_handle_time_sec",
        &["work_session_handle_time_sec", "work_session_handle_time"],
        Kind::Seconds,
    ),
    f(
        "work_session_after_contact_time_sec",
        &["work_session_after_contact_time_sec"],
        Kind::Seconds,
    ),
    f(
        "work_session_unknown_time_sec",
        &["work_session_unknown_time_sec"],
        Kind::Seconds,
    ),
    f("accepted_inbox_id", &["accepted_inbox_id"], Kind::Str),
];

const fn f(name: &'static str, columns: &'static [&'static str], kind: Kind) -> Field {
    Field {
        name,
        columns,
        kind,
    }
}

const CONTACT: usize = 1;
const CREATED_AT: usize = 2;
const AGENT: usize = 10;
const ENDED_AT: usize = 12;

/// An id cell as a key part: trimmed, empty = none.
fn key_part<'a>(v: Val<'a>) -> Option<&'a str> {
    v.as_str().map(parse::trim).filter(|s| !s.is_empty())
}

/// The key's `agent_id` of a contact's agent-less row (key v3): the CSV's empty cell. Gladly's
/// agent ids are never empty, so it cannot be a real agent.
pub(crate) const NO_AGENT: &str = "";

/// Writes a work-session key (v3): `agent` `None` is written as [`NO_AGENT`].
pub(crate) fn encode_key(key: &mut Vec<u8>, contact: &str, agent: Option<&str>) {
    avro::string(key, contact);
    avro::string(key, agent.unwrap_or(NO_AGENT));
}

pub(crate) fn convert(ctx: &Ctx<'_>, row: &Row, vals: &[Val<'_>]) -> Result<Record, String> {
    let created = vals[CREATED_AT].as_long();
    let anchor = vals[ENDED_AT].as_long().or(created).ok_or_else(|| {
        "no time anchor: contact_session_ended_at and contact_session_created_at are both \
         empty or missing"
            .to_string()
    })?;
    let contact = vals[CONTACT].as_str().expect("required field");
    let mut key = ctx.key_start();
    encode_key(&mut key, contact, key_part(vals[AGENT]));
    let mut value = ctx.value_start(row, &vals[..FIELDS.len()]);
    avro::long(&mut value, anchor);
    let fingerprint = ctx.value_end(&mut value, row);
    Ok(Record {
        key,
        value: Some(value),
        timestamp_ms: anchor,
        since_ms: created.unwrap_or(anchor).min(anchor),
        fingerprint,
    })
}

/// Per-window state: each contact seen (in first-seen order), whether it has agent rows and
/// an agent-less row. Ids live in one arena string and contacts are found through a small
/// open-addressing table, so a contact costs no allocation of its own; a cleared state is
/// reused by the next window of the same converter.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Contact ids, back to back.
    names: String,
    contacts: Vec<Contact>,
    /// Open addressing: `contacts` index + 1, 0 = empty; length a power of two (or 0).
    table: Vec<u32>,
}

#[derive(Debug)]
struct Contact {
    name: (u32, u32),
    hash: u64,
    anchor_ms: i64,
    /// The contact's creation (its agent-less row's earliest anchor).
    created_ms: i64,
    /// A row of this contact became a dead letter: its keys are unknown, so no tombstone.
    poisoned: bool,
    /// The window has a row of the contact with an agent.
    has_agent: bool,
    /// The window wrote `{C, ""}`.
    wrote_agentless: bool,
}

fn hash(s: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(s.as_bytes());
    // Fx leaves the low bits weak; fold the high ones in for the power-of-two table.
    h.finish() ^ (h.finish() >> 29)
}

impl State {
    fn name(&self, (start, len): (u32, u32)) -> &str {
        &self.names[start as usize..(start + len) as usize]
    }

    fn intern(&mut self, s: &str) -> (u32, u32) {
        let start = self.names.len();
        self.names.push_str(s);
        (
            u32::try_from(start).expect("window under 4 GiB of ids"),
            s.len() as u32,
        )
    }

    fn grow(&mut self) {
        let len = (self.table.len() * 2).max(64);
        self.table.clear();
        self.table.resize(len, 0);
        let mask = len - 1;
        for (i, c) in self.contacts.iter().enumerate() {
            let mut slot = c.hash as usize & mask;
            while self.table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.table[slot] = i as u32 + 1;
        }
    }

    /// Index of contact `id`, added if new.
    fn contact(&mut self, id: &str, anchor_ms: i64, created_ms: i64) -> usize {
        if (self.contacts.len() + 1) * 2 > self.table.len() {
            self.grow();
        }
        let h = hash(id);
        let mask = self.table.len() - 1;
        let mut slot = h as usize & mask;
        loop {
            match self.table[slot] {
                0 => break,
                i => {
                    let c = &self.contacts[i as usize - 1];
                    if c.hash == h && self.name(c.name) == id {
                        return i as usize - 1;
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
        let name = self.intern(id);
        self.contacts.push(Contact {
            name,
            hash: h,
            anchor_ms,
            created_ms,
            poisoned: false,
            has_agent: false,
            wrote_agentless: false,
        });
        self.table[slot] = self.contacts.len() as u32;
        self.contacts.len() - 1
    }

    /// Notes a converted row.
    pub(crate) fn seen(&mut self, vals: &[Val<'_>], record: &Record) {
        let contact = vals[CONTACT].as_str().expect("required field");
        let c = self.contact(contact, record.timestamp_ms, record.since_ms);
        let c = &mut self.contacts[c];
        c.created_ms = c.created_ms.min(record.since_ms);
        match key_part(vals[AGENT]) {
            Some(_) => c.has_agent = true,
            None => c.wrote_agentless = true,
        }
    }

    /// Notes a row that became a dead letter: its contact gets no tombstone this window.
    pub(crate) fn poison(&mut self, layout: &Layout, row: &Row) {
        let contact = layout.pos[CONTACT]
            .and_then(|p| row.field(p))
            .map(parse::trim)
            .filter(|s| !s.is_empty());
        if let Some(contact) = contact {
            let c = self.contact(contact, 0, 0);
            self.contacts[c].poisoned = true;
        }
    }

    /// Appends the tombstones of `{C, ""}` for the contacts whose agent rows superseded
    /// their agent-less row, then clears the state for reuse.
    pub(crate) fn finish(&mut self, key_schema_id: u32, out: &mut Vec<Output>) {
        for c in &self.contacts {
            if c.poisoned || !c.has_agent || c.wrote_agentless {
                continue;
            }
            let contact = self.name(c.name);
            let mut key = Vec::with_capacity(8 + contact.len() + 2);
            avro::header(&mut key, key_schema_id);
            encode_key(&mut key, contact, None);
            out.push(Output::Record(Record {
                key,
                value: None,
                timestamp_ms: c.anchor_ms,
                since_ms: c.created_ms,
                fingerprint: changes::TOMBSTONE,
            }));
        }
        self.names.clear();
        self.contacts.clear();
        self.table.fill(0);
    }
}

/// The Fx hash (rustc's): several times faster than SipHash on short ids. Contact ids come
/// from Gladly, not from an adversary, so HashDoS resistance is not needed here.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod hash_tests {
    use super::*;
    use std::collections::HashSet;

    /// The contact table probes linearly, so it stays fast only if ids spread over its low
    /// bits (correctness does not depend on it: a probe compares the whole id).
    #[test]
    fn contact_ids_spread_over_the_tables_low_bits() {
        let ids: Vec<String> = (0..1000).map(|i| format!("c{i:05}-LnGqvY8rT0")).collect();
        let full: HashSet<u64> = ids.iter().map(|id| hash(id)).collect();
        assert_eq!(full.len(), ids.len(), "no two ids share a hash");
        let low: HashSet<u64> = ids.iter().map(|id| hash(id) & 2047).collect();
        assert!(low.len() > 500, "{} of 2,048 slots used", low.len());
        // every byte counts: the tail after the last 8-byte chunk, single writes
        assert_ne!(hash("abcdefgh-1"), hash("abcdefgh-2"));
        let one = |f: &dyn Fn(&mut FxHasher)| {
            let mut h = FxHasher::default();
            f(&mut h);
            h.finish()
        };
        assert_ne!(one(&|h| h.write_u8(1)), one(&|h| h.write_u8(2)));
        assert_ne!(one(&|h| h.write_usize(1)), one(&|h| h.write_usize(2)));
    }
}
