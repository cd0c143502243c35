//! The simulated contact center: a pure function of `(seed, instant)`.
//!
//! Contacts are indexed by `(hour, j)`: hour `h` (counted from the origin) holds `n(h)`
//! contacts, created in order inside the hour. Everything about a contact (channel, agents,
//! when it ends, when its conversation ends) is derived from a hash of the seed and its index,
//! so any instant can be evaluated directly, in any order, after any restart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::rng::{mix, Rng};

/// Milliseconds per minute.
pub(crate) const MINUTE_MS: i64 = 60_000;
/// Milliseconds per hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Id namespaces.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub(crate) enum Kind {
    /// A contact (`contact_session_id`, `Contact ID`).
    Contact = 1,
    /// A conversation.
    Conversation = 2,
    /// A customer.
    Customer = 3,
    /// An agent.
    Agent = 4,
    /// An inbox.
    Inbox = 5,
    /// A work session (`id`).
    WorkSession = 6,
    /// A topic.
    Topic = 7,
    /// A conversation custom attribute.
    Attribute = 8,
    /// A team.
    Team = 9,
    /// An Events API event (`id`).
    Event = 10,
    /// An agent status reason (`activeReason.id`).
    Reason = 11,
}

/// Channels, with their share of contacts.
const CHANNELS: [(&str, u32); 8] = [
    ("PHONE_CALL", 30),
    ("CHAT", 25),
    ("EMAIL", 20),
    ("SMS", 10),
    ("WHATSAPP", 5),
    ("FB_MESSENGER", 4),
    ("INSTAGRAM_DIRECT", 3),
    ("VOICEMAIL", 3),
];

/// IVR menu paths, some with commas, quotes and newlines (as free text in Gladly can).
const IVR: [&str; 5] = [
    "Billing",
    "Sales, new order",
    "Support\nTechnical, \"urgent\"",
    "Operator",
    "",
];

/// One agent's part of a contact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Work {
    /// Agent index.
    pub(crate) agent: u32,
    /// When the agent accepted the contact.
    pub(crate) accepted_ms: i64,
    /// When the agent handed it on, or the contact ended.
    pub(crate) released_ms: i64,
    /// After-contact work the agent will do once the contact ends.
    pub(crate) acw_ms: i64,
}

/// A contact, complete with its future: what is visible at an instant is decided by the
/// report code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contact {
    /// Global index `hour << 24 | j`.
    pub(crate) n: u64,
    /// Created (started).
    pub(crate) created_ms: i64,
    /// Routed to an inbox (inbound only).
    pub(crate) routed_ms: Option<i64>,
    /// Gladly channel.
    pub(crate) channel: &'static str,
    /// Inbound (customer-initiated) or outbound.
    pub(crate) inbound: bool,
    /// Inbox index (where the contact started; see `conversations` for transfers).
    pub(crate) inbox: u32,
    /// Global index of the conversation: that of its first contact.
    pub(crate) conversation: u64,
    /// When the contact ends.
    pub(crate) ended_ms: i64,
    /// When its conversation ends (after-contact and unknown time grow until then).
    pub(crate) conv_end_ms: i64,
    /// Customer index.
    pub(crate) customer: u64,
    /// Agents in acceptance order; only `work[..n_work]` are used.
    pub(crate) work: [Work; 3],
    /// How many agents work on it.
    pub(crate) n_work: usize,
    /// Hold time (phone only).
    pub(crate) hold_ms: i64,
    /// Last IVR selection (inbound phone only).
    pub(crate) ivr: &'static str,
}

impl Contact {
    /// The agents that exist at `as_of` (a prefix: agents are only ever added).
    pub(crate) fn visible_work(&self, as_of: i64) -> &[Work] {
        let k = self.work[..self.n_work]
            .iter()
            .take_while(|w| w.accepted_ms <= as_of)
            .count();
        &self.work[..k]
    }
    /// When it was queued (inbound) or initiated (outbound).
    pub(crate) fn queued_ms(&self) -> i64 {
        self.routed_ms.unwrap_or(self.created_ms)
    }
    /// Gladly direction.
    pub(crate) fn direction(&self) -> &'static str {
        if self.inbound {
            "INBOUND"
        } else {
            "OUTBOUND"
        }
    }
}

/// The generator's parameters (see [`crate::SimConfig`]).
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// Seed.
    pub(crate) seed: u64,
    /// First instant of history (ms since the epoch).
    pub(crate) origin_ms: i64,
    /// Mean contacts per hour.
    pub(crate) contacts_per_hour: f64,
    /// Vary the rate over the (UTC) day.
    pub(crate) diurnal: bool,
    /// Agents.
    pub(crate) agents: u32,
    /// Inboxes.
    pub(crate) inboxes: u32,
    /// Customers.
    pub(crate) customers: u64,
    /// Share of contacts that stay open for hours.
    pub(crate) long_open_fraction: f64,
    /// Longest a contact stays open.
    pub(crate) max_open_ms: i64,
}

impl Model {
    /// The hour index holding instant `ms` (negative before the origin).
    pub(crate) fn hour_of(&self, ms: i64) -> i64 {
        (ms - self.origin_ms).div_euclid(HOUR_MS)
    }

    /// Contacts created in hour `h`.
    pub(crate) fn hour_count(&self, h: i64) -> u32 {
        if h < 0 {
            return 0;
        }
        let mut r = Rng::new(mix(self.seed
            ^ 0x4855_5253
            ^ (h as u64).wrapping_mul(0x1000_0001)));
        let factor = if self.diurnal {
            let hod = (self.origin_ms + h * HOUR_MS)
                .div_euclid(HOUR_MS)
                .rem_euclid(24) as f64;
            let daily = 1.0 + 0.6 * (std::f64::consts::TAU * (hod - 9.0) / 24.0).sin();
            daily * (0.9 + 0.2 * r.f64())
        } else {
            1.0
        };
        let n = (self.contacts_per_hour * factor + r.f64()).floor();
        n.clamp(0.0, f64::from((1u32 << 24) - 1)) as u32
    }

    /// True when contact `j` of hour `h` joins the conversation of contact `j − 1` (a customer
    /// getting back in touch: about 30% of contacts). The first contact of an hour never does.
    pub(crate) fn follow_up(&self, h: i64, j: u32) -> bool {
        let n = ((h as u64) << 24) | u64::from(j);
        j > 0 && mix(self.seed ^ mix(n ^ 0xF011_0000)) % 100 < 30
    }

    /// Index of the conversation holding contact `j` of hour `h`: its run's first contact.
    pub(crate) fn conversation_of(&self, h: i64, j: u32) -> u64 {
        let mut s = j;
        while self.follow_up(h, s) {
            s -= 1;
        }
        ((h as u64) << 24) | u64::from(s)
    }

    /// Contact `j` of hour `h` (which holds `count` contacts).
    pub(crate) fn contact(&self, h: i64, j: u32, count: u32) -> Contact {
        let n = ((h as u64) << 24) | u64::from(j);
        let mut r = Rng::new(mix(self.seed ^ mix(n ^ 0xC0FF_EE00)));
        let hour_start = self.origin_ms + h * HOUR_MS;
        let created_ms = hour_start
            + ((f64::from(j) + r.f64()) / f64::from(count.max(1)) * HOUR_MS as f64) as i64;
        let channel = CHANNELS[r.weighted(&CHANNELS.map(|c| c.1))].0;
        let inbound = match channel {
            "PHONE_CALL" | "EMAIL" | "SMS" => r.f64() >= 0.15,
            _ => true,
        };
        let inbox = r.below(u64::from(self.inboxes)) as u32;
        let routed_ms = inbound.then(|| created_ms + r.range(0, 20_000));
        let ended_ms = created_ms + self.duration(&mut r, channel);
        let (work, n_work) = self.work(&mut r, inbound, routed_ms, created_ms, ended_ms);
        let conv_end_ms = ended_ms + r.range(0, 3 * HOUR_MS);
        let _ = r.below(self.customers); // keeps the draws below as they were
        let conversation = self.conversation_of(h, j);
        // every contact of a conversation belongs to its customer
        let customer = mix(self.seed ^ mix(conversation ^ 0xC057_0000)) % self.customers.max(1);
        let hold_ms = if channel == "PHONE_CALL" && n_work > 0 {
            r.range(0, 120_000)
        } else {
            0
        };
        let ivr = if channel == "PHONE_CALL" && inbound {
            IVR[r.below(IVR.len() as u64) as usize]
        } else {
            ""
        };
        Contact {
            n,
            created_ms,
            routed_ms,
            channel,
            inbound,
            inbox,
            conversation,
            ended_ms,
            conv_end_ms,
            customer,
            work,
            n_work,
            hold_ms,
            ivr,
        }
    }

    /// How long a contact on `channel` stays open (the draws after its routing).
    fn duration(&self, r: &mut Rng, channel: &str) -> i64 {
        let (lo, hi) = match channel {
            "PHONE_CALL" => (2, 25),
            "CHAT" => (5, 45),
            "EMAIL" => (1, 120),
            _ => (3, 60),
        };
        let mut duration = r.range(lo * 60_000, hi * 60_000);
        if r.f64() < self.long_open_fraction {
            duration = r.range(2 * HOUR_MS, self.max_open_ms.max(2 * HOUR_MS + 1));
        }
        duration.min(self.max_open_ms).max(1000)
    }

    /// The agents of a contact in acceptance order (the draws after its duration): each
    /// accepts after the one before, until the contact ends.
    fn work(
        &self,
        r: &mut Rng,
        inbound: bool,
        routed_ms: Option<i64>,
        created_ms: i64,
        ended_ms: i64,
    ) -> ([Work; 3], usize) {
        let wanted = if inbound {
            r.weighted(&[12, 70, 13, 5])
        } else {
            1
        };
        let mut work = [Work::default(); 3];
        let mut n_work = 0;
        let mut accept = match routed_ms {
            Some(routed) => routed + (r.f64().powi(2) * 600_000.0) as i64,
            None => created_ms,
        };
        while n_work < wanted && n_work < self.agents as usize && accept < ended_ms {
            let mut agent = r.below(u64::from(self.agents)) as u32;
            while work[..n_work].iter().any(|w| w.agent == agent) {
                agent = (agent + 1) % self.agents;
            }
            work[n_work] = Work {
                agent,
                accepted_ms: accept,
                released_ms: ended_ms,
                acw_ms: r.range(0, 240_000),
            };
            if n_work > 0 {
                work[n_work - 1].released_ms = accept;
            }
            n_work += 1;
            accept += r.range(30_000, (ended_ms - accept).max(30_001));
        }
        (work, n_work)
    }

    /// Every contact created in `[from_ms, to_ms]`, in creation order.
    pub(crate) fn contacts_created(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Iterator<Item = Contact> + '_ {
        let first = self.hour_of(from_ms).max(0);
        let last = self.hour_of(to_ms);
        (first..=last).flat_map(move |h| {
            let count = self.hour_count(h);
            (0..count)
                .map(move |j| self.contact(h, j, count))
                .filter(move |c| c.created_ms >= from_ms && c.created_ms <= to_ms)
        })
    }

    fn mask(&self, kind: Kind) -> u64 {
        mix(self.seed ^ (kind as u64).wrapping_mul(0xA076_1D64_78BD_642F))
    }

    /// Appends the 22-character id of entity `n` of `kind` (reversible with [`Model::decode_id`]).
    pub(crate) fn push_id(&self, out: &mut String, kind: Kind, n: u64) {
        let mask = self.mask(kind);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&(n ^ mask).to_be_bytes());
        bytes[8..].copy_from_slice(&mix(n ^ mask.rotate_left(17)).to_be_bytes());
        URL_SAFE_NO_PAD.encode_string(bytes, out);
    }

    /// The id of entity `n` of `kind`.
    pub(crate) fn id(&self, kind: Kind, n: u64) -> String {
        let mut s = String::with_capacity(22);
        self.push_id(&mut s, kind, n);
        s
    }

    /// The entity index behind an id of `kind`, if it is one.
    pub(crate) fn decode_id(&self, kind: Kind, id: &str) -> Option<u64> {
        let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        let mask = self.mask(kind);
        let n = u64::from_be_bytes(bytes[..8].try_into().ok()?) ^ mask;
        let check = u64::from_be_bytes(bytes[8..].try_into().ok()?);
        (check == mix(n ^ mask.rotate_left(17))).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn model() -> Model {
        Model {
            seed: 42,
            origin_ms: Utc
                .with_ymd_and_hms(2024, 3, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis(),
            contacts_per_hour: 120.0,
            diurnal: true,
            agents: 20,
            inboxes: 4,
            customers: 5000,
            long_open_fraction: 0.05,
            max_open_ms: 8 * HOUR_MS,
        }
    }

    #[test]
    fn ids_round_trip_and_differ_by_kind() {
        let m = model();
        let id = m.id(Kind::Conversation, 12345);
        assert_eq!(id.len(), 22);
        assert_eq!(m.decode_id(Kind::Conversation, &id), Some(12345));
        assert_eq!(m.decode_id(Kind::Contact, &id), None);
        assert_ne!(m.id(Kind::Contact, 12345), id);
    }

    #[test]
    fn contacts_are_deterministic_and_well_formed() {
        let m = model();
        let mut prev = i64::MIN;
        let mut with_agents = [0usize; 4];
        for h in 0..48 {
            let count = m.hour_count(h);
            for j in 0..count {
                let c = m.contact(h, j, count);
                assert_eq!(c, m.contact(h, j, count));
                assert!(c.created_ms >= prev, "created in order");
                prev = c.created_ms;
                assert!(c.ended_ms > c.created_ms && c.ended_ms - c.created_ms <= m.max_open_ms);
                assert!(c.conv_end_ms >= c.ended_ms);
                let w = &c.work[..c.n_work];
                assert!(w.windows(2).all(|p| p[0].accepted_ms < p[1].accepted_ms));
                assert!(w.iter().all(|x| x.accepted_ms < c.ended_ms));
                with_agents[c.n_work] += 1;
            }
        }
        assert!(with_agents.iter().all(|n| *n > 0), "{with_agents:?}");
    }
}
