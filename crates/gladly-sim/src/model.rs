//! The simulated contact center: a pure function of `(seed, instant)`.
//!
//! Contacts are indexed by `(hour, j)`: hour `h` (counted from the origin) holds `n(h)`
//! contacts, created in order inside the hour. Everything about a contact (channel, agents,
//! when it ends, when its conversation ends) is derived from a hash of the seed and its index,
//! so any instant can be evaluated directly, in any order, after any restart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Milliseconds per minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds per hour.
pub const HOUR_MS: i64 = 3_600_000;

/// Id namespaces.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Kind {
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
}

/// SplitMix64 finalizer: a good 64-bit mix.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `[lo, hi)` (`lo` when empty).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Index picked by weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = (self.next_u64() % u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
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
pub struct Work {
    /// Agent index.
    pub agent: u32,
    /// When the agent accepted the contact.
    pub accepted_ms: i64,
    /// When the agent handed it on, or the contact ended.
    pub released_ms: i64,
    /// After-contact work the agent will do once the contact ends.
    pub acw_ms: i64,
}

/// A contact, complete with its future: what is visible at an instant is decided by the
/// report code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Global index `hour << 24 | j`.
    pub n: u64,
    /// Created (started).
    pub created_ms: i64,
    /// Routed to an inbox (inbound only).
    pub routed_ms: Option<i64>,
    /// Gladly channel.
    pub channel: &'static str,
    /// Inbound (customer-initiated) or outbound.
    pub inbound: bool,
    /// Inbox index (where the contact started; see [`super::conversations`] for transfers).
    pub inbox: u32,
    /// Global index of the conversation: that of its first contact.
    pub conversation: u64,
    /// When the contact ends.
    pub ended_ms: i64,
    /// When its conversation ends (after-contact and unknown time grow until then).
    pub conv_end_ms: i64,
    /// Customer index.
    pub customer: u64,
    /// Agents in acceptance order; only `work[..n_work]` are used.
    pub work: [Work; 3],
    /// How many agents work on it.
    pub n_work: usize,
    /// Hold time (phone only).
    pub hold_ms: i64,
    /// Last IVR selection (inbound phone only).
    pub ivr: &'static str,
}

impl Contact {
    /// The agents that exist at `as_of` (a prefix: agents are only ever added).
    pub fn visible_work(&self, as_of: i64) -> &[Work] {
        let k = self.work[..self.n_work]
            .iter()
            .take_while(|w| w.accepted_ms <= as_of)
            .count();
        &self.work[..k]
    }
    /// When it was queued (inbound) or initiated (outbound).
    pub fn queued_ms(&self) -> i64 {
        self.routed_ms.unwrap_or(self.created_ms)
    }
    /// Gladly direction.
    pub fn direction(&self) -> &'static str {
        if self.inbound {
            "INBOUND"
        } else {
            "OUTBOUND"
        }
    }
}

/// The generator's parameters (see [`super::SimConfig`]).
#[derive(Debug, Clone)]
pub struct Model {
    /// Seed.
    pub seed: u64,
    /// First instant of history (ms since the epoch).
    pub origin_ms: i64,
    /// Mean contacts per hour.
    pub contacts_per_hour: f64,
    /// Vary the rate over the (UTC) day.
    pub diurnal: bool,
    /// Agents.
    pub agents: u32,
    /// Inboxes.
    pub inboxes: u32,
    /// Customers.
    pub customers: u64,
    /// Share of contacts that stay open for hours.
    pub long_open_fraction: f64,
    /// Longest a contact stays open.
    pub max_open_ms: i64,
}

impl Model {
    /// The hour index holding instant `ms` (negative before the origin).
    pub fn hour_of(&self, ms: i64) -> i64 {
        (ms - self.origin_ms).div_euclid(HOUR_MS)
    }

    /// Contacts created in hour `h`.
    pub fn hour_count(&self, h: i64) -> u32 {
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
    pub fn follow_up(&self, h: i64, j: u32) -> bool {
        let n = ((h as u64) << 24) | u64::from(j);
        j > 0 && mix(self.seed ^ mix(n ^ 0xF011_0000)) % 100 < 30
    }

    /// Index of the conversation holding contact `j` of hour `h`: its run's first contact.
    pub fn conversation_of(&self, h: i64, j: u32) -> u64 {
        let mut s = j;
        while self.follow_up(h, s) {
            s -= 1;
        }
        ((h as u64) << 24) | u64::from(s)
    }

    /// Contact `j` of hour `h` (which holds `count` contacts).
    pub fn contact(&self, h: i64, j: u32, count: u32) -> Contact {
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
        let duration = duration.min(self.max_open_ms).max(1000);
        let ended_ms = created_ms + duration;
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

    /// The contact with global index `n`, if it exists.
    pub fn contact_by_index(&self, n: u64) -> Option<Contact> {
        let h = (n >> 24) as i64;
        let j = (n & 0xFF_FFFF) as u32;
        let count = self.hour_count(h);
        (j < count).then(|| self.contact(h, j, count))
    }

    /// Every contact created in `[from_ms, to_ms]`, in creation order.
    pub fn contacts_created(&self, from_ms: i64, to_ms: i64) -> impl Iterator<Item = Contact> + '_ {
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
    pub fn push_id(&self, out: &mut String, kind: Kind, n: u64) {
        let mask = self.mask(kind);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&(n ^ mask).to_be_bytes());
        bytes[8..].copy_from_slice(&mix(n ^ mask.rotate_left(17)).to_be_bytes());
        URL_SAFE_NO_PAD.encode_string(bytes, out);
    }

    /// The id of entity `n` of `kind`.
    pub fn id(&self, kind: Kind, n: u64) -> String {
        let mut s = String::with_capacity(22);
        self.push_id(&mut s, kind, n);
        s
    }

    /// The entity index behind an id of `kind`, if it is one.
    pub fn decode_id(&self, kind: Kind, id: &str) -> Option<u64> {
        let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        let mask = self.mask(kind);
        let n = u64::from_be_bytes(bytes[..8].try_into().ok()?) ^ mask;
        let check = u64::from_be_bytes(bytes[8..].try_into().ok()?);
        (check == mix(n ^ mask.rotate_left(17))).then_some(n)
    }
}

/// Appends `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (fast path for big reports).
pub fn push_ts(out: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let mut buf = [0u8; 24];
    let put = |buf: &mut [u8], v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf[0..4], y, 4);
    buf[4] = b'-';
    put(&mut buf[5..7], m, 2);
    buf[7] = b'-';
    put(&mut buf[8..10], d, 2);
    buf[10] = b'T';
    put(&mut buf[11..13], hh, 2);
    buf[13] = b':';
    put(&mut buf[14..16], mm, 2);
    buf[16] = b':';
    put(&mut buf[17..19], ss, 2);
    buf[19] = b'.';
    put(&mut buf[20..23], milli, 3);
    buf[23] = b'Z';
    out.push_str(std::str::from_utf8(&buf).expect("ascii"));
}

/// `ms` since the epoch as an RFC 3339 string with millis.
pub fn ts(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    push_ts(&mut s, ms);
    s
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
    fn timestamps_match_chrono() {
        for ms in [
            0i64,
            951_782_400_123,
            1_710_410_531_000,
            4_102_444_799_999,
            -1,
        ] {
            let want = Utc
                .timestamp_millis_opt(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(ts(ms), want);
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
