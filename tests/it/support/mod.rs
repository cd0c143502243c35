//! Shared fixture for the tests against the live stack: the real Kafka broker and schema
//! registry started by `scripts/stack/stack up` (`scripts/test` does that), found through
//! `KAFKA_BOOTSTRAP` and `SCHEMA_REGISTRY_URL`. Tests never skip when they are missing: the
//! first test to ask prints how to start the stack and ends the test process with a non-zero
//! status, instead of every test panicking. Each test gets its own topics via [`unique_name`].
#![allow(dead_code)]

pub mod pipeline;
pub mod service;
pub mod sim;

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The stack's addresses.
struct Stack {
    kafka: String,
    registry: String,
}

/// The stack from the environment; without it, one message and the end of the process
/// (exit status 2), whichever test gets here first.
fn stack_env() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        match (
            std::env::var("KAFKA_BOOTSTRAP"),
            std::env::var("SCHEMA_REGISTRY_URL"),
        ) {
            (Ok(kafka), Ok(registry)) => Stack { kafka, registry },
            _ => {
                // straight to stderr: the test harness would swallow eprintln! with the process
                let _ = writeln!(
                    std::io::stderr(),
                    "\nThese tests need the local Kafka broker and schema registry, found through \
                     KAFKA_BOOTSTRAP and SCHEMA_REGISTRY_URL, and at least one is not set.\n\
                     Run every test with `scripts/test`, or start the stack first:\n    \
                     eval \"$(scripts/stack/stack up)\"\n"
                );
                std::process::exit(2);
            }
        }
    })
}

/// `host:port` of the stack's broker.
pub fn kafka_bootstrap() -> String {
    stack_env().kafka.clone()
}

/// Base URL of the stack's Confluent-compatible schema registry API.
pub fn schema_registry_url() -> String {
    stack_env().registry.clone()
}

/// A name no other test (or earlier run against the same stack) uses: `<prefix>-<pid>-<n>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Like [`eventually`], without blocking the async runtime.
pub async fn eventually_async<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kafka helpers over rdkafka, for tests that read back what was written.
pub mod kafka {
    use std::time::Duration;

    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::{BorrowedMessage, Message};
    use rdkafka::{Offset, TopicPartitionList};

    /// A client config pointed at the stack's broker.
    pub fn config() -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", super::kafka_bootstrap());
        c
    }

    /// Creates `topic` with `partitions` partitions and the given topic configs.
    pub async fn create_topic(topic: &str, partitions: i32, configs: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = config().create().expect("admin client");
        let mut t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (k, v) in configs {
            t = t.set(k, v);
        }
        let res = admin
            .create_topics([&t], &AdminOptions::new())
            .await
            .expect("create_topics");
        for r in res {
            r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
        }
    }

    /// One record as read back: key, value (`None` = tombstone), partition, offset, headers.
    #[derive(Debug, Clone)]
    pub struct ReadRecord {
        pub key: Option<Vec<u8>>,
        pub value: Option<Vec<u8>>,
        pub partition: i32,
        pub offset: i64,
        pub timestamp: Option<i64>,
        pub headers: Vec<(String, Option<Vec<u8>>)>,
    }

    impl ReadRecord {
        fn from_message(m: &BorrowedMessage<'_>) -> Self {
            use rdkafka::message::Headers;
            let headers = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            ReadRecord {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                partition: m.partition(),
                offset: m.offset(),
                timestamp: m.timestamp().to_millis(),
                headers,
            }
        }
    }

    /// Reads every partition of `topic` from offset 0 to its current end with
    /// `isolation.level=read_committed` (blocking; call from a blocking context).
    pub fn read_all(topic: &str) -> Vec<ReadRecord> {
        let consumer: BaseConsumer = config()
            .set("group.id", super::unique_name("reader"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
        assert!(!partitions.is_empty(), "topic {topic} has no partitions");
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let mut at_end = std::collections::HashSet::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while at_end.len() < partitions.len() {
            assert!(
                std::time::Instant::now() < deadline,
                "reading {topic} took over 60 s"
            );
            match consumer.poll(Duration::from_millis(500)) {
                None => {}
                Some(Ok(m)) => out.push(ReadRecord::from_message(&m)),
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
            }
        }
        out
    }
}

/// Runs `scripts/stack/stack <action>` on the test stack (`stop-broker`, `start-broker`).
pub fn stack(action: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack/stack");
    let status = std::process::Command::new(script)
        .arg(action)
        .status()
        .expect("the stack script runs");
    assert!(status.success(), "stack {action}");
}
