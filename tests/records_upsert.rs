//! The upsert contract (`docs/design.md`, "The upsert contract"), as properties: apply the
//! records a sequence of report polls produces — upsert by key bytes, delete on tombstone —
//! and the result equals Gladly's report content.
//!
//! Work sessions are modelled as Gladly describes them (`docs/gladly-api.md`): contacts open,
//! gain agents, end (their rows move to the end time and gain work-session ids), and some
//! columns keep changing after the end; any window may be polled at any time, rows come in
//! any order. The final polls cover the whole timeline, split into windows polled in random
//! order, after which the store must equal the last snapshot exactly. After every poll, each
//! contact in the polled window must already be exactly its snapshot rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use apache_avro::types::Value;
use apache_avro::{from_avro_datum, Schema};
use chrono::{DateTime, Duration, TimeZone, Utc};
use gladly_kafka::records::changes::{key_id, published_fingerprint, Pending, Published};
use gladly_kafka::records::{schemas, ConvertSettings, Converter, Output, SchemaIds, WindowMeta};
use gladly_kafka::report::{Header, Report, Row};
use proptest::prelude::*;

const IDS: SchemaIds = SchemaIds { key: 1, value: 2 };

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 14, 0, 0, 0).unwrap()
}

fn at(minute: u32) -> DateTime<Utc> {
    base() + Duration::minutes(i64::from(minute))
}

fn text(minute: u32) -> String {
    at(minute).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Kafka as a consumer that keeps the last value per key sees it.
#[derive(Default)]
struct Store(HashMap<Vec<u8>, Vec<u8>>);

impl Store {
    fn apply(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Record(r) => match r.value {
                    Some(v) => {
                        self.0.insert(r.key, v);
                    }
                    None => {
                        self.0.remove(&r.key);
                    }
                },
                Output::DeadLetter(d) => panic!("unexpected dead letter: {d:?}"),
            }
        }
    }
}

fn schema(report: Report, key: bool) -> &'static Schema {
    static S: OnceLock<BTreeMap<(Report, bool), Schema>> = OnceLock::new();
    &S.get_or_init(|| {
        let mut m = BTreeMap::new();
        for r in Report::BUILT_IN {
            m.insert(
                (r, true),
                Schema::parse_str(schemas::key_schema(r)).unwrap(),
            );
            m.insert(
                (r, false),
                Schema::parse_str(schemas::value_schema(r)).unwrap(),
            );
        }
        m
    })[&(report, key)]
}

/// Decodes wire-format bytes into `field -> value`, unions unwrapped (apache-avro's reader).
fn decode(report: Report, key: bool, bytes: &[u8]) -> BTreeMap<String, Value> {
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, if key { 1 } else { 2 }]);
    let mut r = &bytes[5..];
    let Value::Record(fields) = from_avro_datum(schema(report, key), &mut r, None).unwrap() else {
        panic!("not a record")
    };
    assert!(r.is_empty());
    fields
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Union(_, inner) => *inner,
                v => v,
            };
            (k, v)
        })
        .collect()
}

fn opt(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => panic!("not a string: {other:?}"),
    }
}

// --- the work-session model ----------------------------------------------------------------

const WS_COLUMNS: [&str; 19] = gladly_kafka::report::WORK_SESSION_COLUMNS;

#[derive(Debug, Clone)]
struct Contact {
    id: String,
    created: u32,
    ended: Option<u32>,
    agents: Vec<String>,
    /// A column that keeps changing (after-contact time): later rows must win.
    after_contact: u32,
    /// Gladly variants: keeps the agent-less row while agents work the contact; fills
    /// `agent_id` only at the end; lists an agent-less final row too; gives an agent-less
    /// ended contact no work-session id.
    keeps_agentless_row: bool,
    agent_known_at_end_only: bool,
    agentless_final_row: bool,
    no_id_without_agent: bool,
}

/// One report row: (work-session id, agent id) and the cells that vary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct WsRow {
    contact: String,
    id: Option<String>,
    agent: Option<String>,
    created: u32,
    ended: Option<u32>,
    after_contact: u32,
}

impl Contact {
    fn anchor(&self) -> u32 {
        self.ended.unwrap_or(self.created)
    }

    fn rows(&self) -> Vec<WsRow> {
        let row = |id: Option<String>, agent: Option<String>| WsRow {
            contact: self.id.clone(),
            id,
            agent,
            created: self.created,
            ended: self.ended,
            after_contact: self.after_contact,
        };
        let mut rows = Vec::new();
        match self.ended {
            None => {
                if self.agents.is_empty() || self.agent_known_at_end_only {
                    rows.push(row(None, None));
                } else {
                    rows.extend(self.agents.iter().map(|a| row(None, Some(a.clone()))));
                    if self.keeps_agentless_row {
                        rows.push(row(None, None));
                    }
                }
            }
            Some(_) => {
                for a in &self.agents {
                    rows.push(row(Some(format!("w-{}-{a}", self.id)), Some(a.clone())));
                }
                if self.agents.is_empty() {
                    let id = (!self.no_id_without_agent).then(|| format!("w-{}-none", self.id));
                    rows.push(row(id, None));
                } else if self.agentless_final_row {
                    rows.push(row(Some(format!("w-{}-x", self.id)), None));
                }
            }
        }
        rows
    }
}

fn csv_row(header: &Arc<Header>, r: &WsRow, line: u64) -> Row {
    let after = r.after_contact.to_string();
    let cells: Vec<String> = WS_COLUMNS
        .iter()
        .map(|c| match *c {
            "id" => r.id.clone().unwrap_or_default(),
            "contact_session_id" => r.contact.clone(),
            "contact_session_created_at" => text(r.created),
            "agent_id" => r.agent.clone().unwrap_or_default(),
            "contact_session_ended_at" => r.ended.map(text).unwrap_or_default(),
            "work_session_after_contact_time_sec" => after.clone(),
            "channel" => "CHAT".into(),
            _ => String::new(),
        })
        .collect();
    Row::new(Arc::clone(header), csv::StringRecord::from(cells), line)
}

/// Gladly plus the service: polls a window at the current time and applies the records.
struct World {
    now: u32,
    contacts: Vec<Contact>,
    converter: Converter,
    header: Arc<Header>,
    store: Store,
    /// The same outputs through the changelog memory (`pipeline.publish = "changes"`, known
    /// from the start): what a changelog consumer upserts must not differ.
    changes: Store,
    published: Published,
    rng: u64,
}

impl World {
    fn new(seed: u64) -> World {
        World {
            now: 0,
            contacts: Vec::new(),
            converter: Converter::new(Report::WORK_SESSIONS, ConvertSettings::default(), IDS),
            header: Arc::new(Header::new(WS_COLUMNS)),
            store: Store::default(),
            changes: Store::default(),
            published: {
                let mut p = Published::default();
                p.known_from(i64::MIN);
                p
            },
            rng: seed | 1,
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Gladly's rows whose anchor lies in `[start, end]`, shuffled (same-contact rows apart).
    fn report(&mut self, start: u32, end: u32) -> Vec<WsRow> {
        let mut rows: Vec<WsRow> = self
            .contacts
            .iter()
            .filter(|c| (start..=end).contains(&c.anchor()))
            .flat_map(Contact::rows)
            .collect();
        for i in (1..rows.len()).rev() {
            let j = (self.next_rand() % (i as u64 + 1)) as usize;
            rows.swap(i, j);
        }
        rows
    }

    fn poll(&mut self, start: u32, end: u32) {
        let rows = self.report(start, end);
        let mut w = self.converter.window(WindowMeta {
            window_start: at(start),
            window_end: at(end),
            fetched_at: at(self.now),
        });
        let mut out = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            w.push(&csv_row(&self.header, r, i as u64 + 2), &mut out);
        }
        w.finish(&mut out);
        let mut pending = Pending::default();
        let changed: Vec<Output> = out
            .iter()
            .filter(|o| match o {
                Output::Record(r) => {
                    let key = key_id(&r.key);
                    let wanted = self.published.wants(key, r.fingerprint, r.since_ms);
                    if wanted {
                        pending.push(key, r.fingerprint, r.timestamp_ms);
                    }
                    wanted
                }
                Output::DeadLetter(_) => true,
            })
            .cloned()
            .collect();
        self.published.apply(pending);
        self.store.apply(out);
        self.changes.apply(changed);
        // the same keys with the same values but for when they were read
        let fingerprints = |store: &Store| -> BTreeMap<Vec<u8>, Option<u64>> {
            store
                .0
                .iter()
                .map(|(k, v)| (k.clone(), published_fingerprint(v)))
                .collect()
        };
        assert_eq!(
            fingerprints(&self.changes),
            fingerprints(&self.store),
            "publishing only changes upserts to the same state"
        );
        // Every contact in the window is now exactly its snapshot rows.
        let polled: BTreeSet<&str> = rows.iter().map(|r| r.contact.as_str()).collect();
        let actual = self.store_rows();
        for c in polled {
            let got: Vec<&WsRow> = actual.iter().filter(|r| r.contact == c).collect();
            let mut want: Vec<WsRow> = self.contacts.iter().find(|x| x.id == c).unwrap().rows();
            want.sort();
            let want: Vec<&WsRow> = want.iter().collect();
            assert_eq!(
                got, want,
                "contact {c} after polling [{start}, {end}] at {}",
                self.now
            );
        }
    }

    /// The store decoded back into rows (sorted), checking each key matches its value.
    fn store_rows(&self) -> Vec<WsRow> {
        let mut rows: Vec<WsRow> = self
            .store
            .0
            .iter()
            .map(|(k, v)| {
                let key = decode(Report::WORK_SESSIONS, true, k);
                let val = decode(Report::WORK_SESSIONS, false, v);
                let millis = |v: &Value| match v {
                    Value::TimestampMillis(ms) => {
                        u32::try_from((ms - base().timestamp_millis()) / 60_000).unwrap()
                    }
                    other => panic!("not a timestamp: {other:?}"),
                };
                let row = WsRow {
                    contact: opt(&val["contact_session_id"]).unwrap(),
                    id: opt(&val["id"]),
                    agent: opt(&val["agent_id"]),
                    created: millis(&val["contact_session_created_at"]),
                    ended: match &val["contact_session_ended_at"] {
                        Value::Null => None,
                        v => Some(millis(v)),
                    },
                    after_contact: match val["work_session_after_contact_time_sec"] {
                        Value::Double(d) => d as u32,
                        ref other => panic!("{other:?}"),
                    },
                };
                // key v3: the agent-less row's key agent_id is "", its value's is null
                assert_eq!(
                    (opt(&key["contact_session_id"]), opt(&key["agent_id"])),
                    (
                        Some(row.contact.clone()),
                        Some(row.agent.clone().unwrap_or_default())
                    ),
                    "key matches value"
                );
                row
            })
            .collect();
        rows.sort();
        rows
    }

    fn snapshot(&self) -> Vec<WsRow> {
        let mut rows: Vec<WsRow> = self.contacts.iter().flat_map(Contact::rows).collect();
        rows.sort();
        rows
    }

    fn open_indices(&self) -> Vec<usize> {
        (0..self.contacts.len())
            .filter(|&i| self.contacts[i].ended.is_none())
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Open { flags: u8 },
    AddAgent { contact: u8, agent: u8 },
    End { contact: u8 },
    Grow { contact: u8 },
    Poll { back: u16, len: u16 },
    Wait { minutes: u8 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => any::<u8>().prop_map(|flags| Step::Open { flags }),
        3 => (any::<u8>(), 0u8..4).prop_map(|(contact, agent)| Step::AddAgent { contact, agent }),
        2 => any::<u8>().prop_map(|contact| Step::End { contact }),
        1 => any::<u8>().prop_map(|contact| Step::Grow { contact }),
        3 => (0u16..300, 0u16..200).prop_map(|(back, len)| Step::Poll { back, len }),
        2 => (1u8..60).prop_map(|minutes| Step::Wait { minutes }),
    ]
}

fn run(steps: &[Step], cuts: &[u16], seed: u64) {
    let mut w = World::new(seed);
    for s in steps {
        match *s {
            Step::Open { flags } => {
                let n = w.contacts.len();
                w.contacts.push(Contact {
                    id: format!("C{n}"),
                    created: w.now,
                    ended: None,
                    agents: Vec::new(),
                    after_contact: 0,
                    keeps_agentless_row: flags & 1 != 0,
                    agent_known_at_end_only: flags & 2 != 0,
                    agentless_final_row: flags & 4 != 0,
                    no_id_without_agent: flags & 8 != 0,
                });
            }
            Step::AddAgent { contact, agent } => {
                let open = w.open_indices();
                if !open.is_empty() {
                    let c = &mut w.contacts[open[contact as usize % open.len()]];
                    let a = format!("A{agent}");
                    if !c.agents.contains(&a) {
                        c.agents.push(a);
                    }
                }
            }
            Step::End { contact } => {
                let open = w.open_indices();
                if !open.is_empty() {
                    let now = w.now;
                    w.contacts[open[contact as usize % open.len()]].ended = Some(now);
                }
            }
            Step::Grow { contact } => {
                if !w.contacts.is_empty() {
                    let n = w.contacts.len();
                    w.contacts[contact as usize % n].after_contact += 1;
                }
            }
            Step::Poll { back, len } => {
                let start = w.now.saturating_sub(u32::from(back));
                let end = (start + u32::from(len)).min(w.now);
                w.poll(start, end);
            }
            Step::Wait { minutes } => w.now += u32::from(minutes),
        }
    }
    // Catch up: cover [0, now] with windows cut at `cuts`, polled in a random order.
    let mut edges: Vec<u32> = cuts.iter().map(|c| u32::from(*c) % (w.now + 1)).collect();
    edges.push(0);
    edges.push(w.now + 1);
    edges.sort();
    edges.dedup();
    let mut windows: Vec<(u32, u32)> = edges.windows(2).map(|p| (p[0], p[1] - 1)).collect();
    for i in (1..windows.len()).rev() {
        let j = (w.next_rand() % (i as u64 + 1)) as usize;
        windows.swap(i, j);
    }
    for (s, e) in windows {
        w.poll(s, e);
    }
    assert_eq!(
        w.store_rows(),
        w.snapshot(),
        "store equals the last snapshot"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn work_sessions_converge_on_the_last_snapshot(
        steps in prop::collection::vec(step(), 0..60),
        cuts in prop::collection::vec(any::<u16>(), 0..5),
        seed in any::<u64>(),
    ) {
        run(&steps, &cuts, seed);
    }
}

/// Gladly's worked example (tutorial "Ingest Contact Center Performance Data"): a contact
/// starts 11:02 and is still open at 13:00, so a 13:05 pull for 11:00–12:00 includes it; it
/// ends at 13:05, so a 17:00 pull for 11:00–12:00 no longer does; the pull covering 13:05 has
/// its final rows, and the provisional rows are gone.
#[test]
fn gladly_worked_example() {
    let h = |hh: u32, mm: u32| hh * 60 + mm;
    let mut w = World::new(7);
    w.now = h(11, 2);
    w.contacts.push(Contact {
        id: "C".into(),
        created: w.now,
        ended: None,
        agents: vec![],
        after_contact: 0,
        keeps_agentless_row: false,
        agent_known_at_end_only: false,
        agentless_final_row: false,
        no_id_without_agent: false,
    });
    w.now = h(11, 30);
    w.poll(h(11, 0), h(12, 0));
    assert_eq!(
        w.store_rows().len(),
        1,
        "open, no agent yet: one provisional row"
    );
    w.contacts[0].agents.push("A1".into());
    w.contacts[0].agents.push("A2".into());
    w.now = h(13, 5);
    w.poll(h(11, 0), h(12, 0));
    let rows = w.store_rows();
    assert_eq!(
        rows.len(),
        2,
        "two agents: their provisional rows replace the agent-less one"
    );
    assert!(rows.iter().all(|r| r.id.is_none()));

    w.contacts[0].ended = Some(h(13, 5));
    w.now = h(17, 0);
    assert!(
        w.report(h(11, 0), h(12, 0)).is_empty(),
        "moved to its end time"
    );
    w.poll(h(11, 0), h(12, 0));
    assert_eq!(
        w.store_rows().len(),
        2,
        "nothing changes without the final rows"
    );
    w.poll(h(13, 0), h(14, 0));
    let rows = w.store_rows();
    assert_eq!(rows, w.snapshot());
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.id.is_some() && r.ended == Some(h(13, 5))));
}

// --- contacts and agent summary ------------------------------------------------------------

fn window(day: i64) -> WindowMeta {
    WindowMeta {
        window_start: base() + Duration::days(day),
        window_end: base() + Duration::days(day + 1),
        fetched_at: base() + Duration::days(day + 1),
    }
}

proptest! {
    /// Contact Export rows re-pulled in any order of windows: the last version of each contact
    /// wins, one record per contact.
    #[test]
    fn contacts_keep_the_last_version(pulls in prop::collection::vec(prop::collection::vec((0u8..8, 0u8..3, any::<u16>()), 0..12), 0..8)) {
        let conv = Converter::new(Report::CONTACTS, ConvertSettings::default(), IDS);
        let header = Arc::new(Header::new(["Queued At", "Contact ID", "Channel", "Hold Time"]));
        let mut store = Store::default();
        let mut expected: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (day, pull) in pulls.iter().enumerate() {
            let mut w = conv.window(window(day as i64));
            let mut out = Vec::new();
            for (line, (contact, channel, hold)) in pull.iter().enumerate() {
                let id = format!("K{contact}");
                let channel = ["CHAT", "EMAIL", "SMS"][*channel as usize].to_string();
                let cells = vec![text(u32::from(*contact) * 7), id.clone(), channel.clone(), hold.to_string()];
                w.push(&Row::new(Arc::clone(&header), csv::StringRecord::from(cells), line as u64 + 2), &mut out);
                expected.insert(id, (channel, hold.to_string()));
            }
            w.finish(&mut out);
            store.apply(out);
        }
        let actual: BTreeMap<String, (String, String)> = store.0.iter().map(|(k, v)| {
            let key = decode(Report::CONTACTS, true, k);
            let val = decode(Report::CONTACTS, false, v);
            let Value::Map(extra) = &val["extra"] else { panic!("map") };
            prop_assert_eq!(&key["contact_id"], &val["contact_id"]);
            Ok((opt(&val["contact_id"]).unwrap(), (opt(&val["channel"]).unwrap(), opt(&extra["Hold Time"]).unwrap())))
        }).collect::<Result<_, TestCaseError>>()?;
        prop_assert_eq!(actual, expected);
    }

    /// Agent Summary buckets re-pulled as they grow: one record per agent × bucket × level,
    /// holding the last pull's numbers; levels never overwrite each other.
    #[test]
    fn agent_summary_keeps_the_last_bucket_values(pulls in prop::collection::vec((0u8..2, prop::collection::vec((0u8..4, 0u8..3, any::<u32>()), 0..12)), 0..8)) {
        let levels = ["daily", "halfHourly"];
        let header = Arc::new(Header::new(["Bucket Beginning", "Agent ID", "Logged In"]));
        let mut store = Store::default();
        let mut expected: BTreeMap<(String, i64, String), i64> = BTreeMap::new();
        for (n, (level, pull)) in pulls.iter().enumerate() {
            let level = levels[*level as usize];
            let conv = Converter::new(
                Report::AGENT_SUMMARY,
                ConvertSettings { timezone: chrono_tz::Europe::Paris, aggregation_level: Some(level.into()) },
                IDS,
            );
            let mut w = conv.window(window(n as i64));
            let mut out = Vec::new();
            for (line, (agent, day, count)) in pull.iter().enumerate() {
                let date = (base() + Duration::days(i64::from(*day))).format("%Y-%m-%d").to_string();
                let cells = vec![date.clone(), format!("A{agent}"), count.to_string()];
                w.push(&Row::new(Arc::clone(&header), csv::StringRecord::from(cells), line as u64 + 2), &mut out);
                let midnight = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap();
                let start = midnight.and_local_timezone(chrono_tz::Europe::Paris).unwrap().timestamp_millis();
                expected.insert((format!("A{agent}"), start, level.to_string()), i64::from(*count));
            }
            w.finish(&mut out);
            store.apply(out);
        }
        let actual: BTreeMap<(String, i64, String), i64> = store.0.iter().map(|(k, v)| {
            let key = decode(Report::AGENT_SUMMARY, true, k);
            let val = decode(Report::AGENT_SUMMARY, false, v);
            let Value::TimestampMillis(start) = key["bucket_start"] else { panic!("ts") };
            prop_assert_eq!(&key["bucket_start"], &val["bucket_start"]);
            let Value::Long(count) = val["logged_in"] else { panic!("long") };
            Ok(((opt(&key["agent_id"]).unwrap(), start, opt(&key["aggregation_level"]).unwrap()), count))
        }).collect::<Result<_, TestCaseError>>()?;
        prop_assert_eq!(actual, expected);
    }
}
