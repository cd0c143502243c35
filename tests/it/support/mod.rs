//! Shared fixture for the tests against the live stack: the real Kafka broker and schema
//! registry started by `scripts/stack/stack up` (`scripts/test` does that), found through
//! `KAFKA_BOOTSTRAP` and `SCHEMA_REGISTRY_URL`. Tests never skip when they are missing: the
//! first test to ask prints how to start the stack and ends the test process with a non-zero
//! status, instead of every test panicking. Each test gets its own topics via [`unique_name`].
#![allow(dead_code)]

pub mod oracle;
pub mod pipeline;
pub mod service;
pub mod sim;
pub mod warehouse;

use std::io::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The stack's addresses.
struct Stack {
    kafka: String,
    registry: String,
}

/// The stack's addresses, asked once of the binary's [`crate::stack`]: this binary's comes from
/// the environment ([`stack_from_env`]), the `containers` binary's from containers it starts.
fn stack_env() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let (kafka, registry) = crate::stack();
        Stack { kafka, registry }
    })
}

/// The stack from the environment (`KAFKA_BOOTSTRAP`, `SCHEMA_REGISTRY_URL`); without it, one
/// message and the end of the process (exit status 2), whichever test gets here first.
pub fn stack_from_env() -> (String, String) {
    match (
        std::env::var("KAFKA_BOOTSTRAP"),
        std::env::var("SCHEMA_REGISTRY_URL"),
    ) {
        (Ok(kafka), Ok(registry)) => (kafka, registry),
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
}

/// `host:port` of the stack's broker.
pub fn kafka_bootstrap() -> String {
    stack_env().kafka.clone()
}

/// Base URL of the stack's Confluent-compatible schema registry API.
pub fn schema_registry_url() -> String {
    stack_env().registry.clone()
}

#[path = "../../common/config.rs"]
pub mod config;

pub use config::unique_name;

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

/// The seed of a test's random choices: `TEST_SEED` when set (to replay a failure), else a
/// fresh one; printed either way, so a failing run can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("TEST_SEED") {
        Ok(s) => s.parse().expect("TEST_SEED is a u64"),
        Err(_) => rand::random(),
    };
    let _ = writeln!(
        std::io::stderr(),
        "{test}: seed {seed} (replay with TEST_SEED={seed})"
    );
    seed
}

#[path = "../../common/read_back.rs"]
pub mod read_back;

/// Kafka helpers over rdkafka, for tests that read back what was written.
pub mod kafka {

    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;

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

    pub use super::read_back::ReadRecord;

    /// Reads every partition of `topic` from offset 0 to its current end with
    /// `isolation.level=read_committed` (blocking; call from a blocking context).
    pub fn read_all(topic: &str) -> Vec<ReadRecord> {
        super::read_back::read_all(config(), topic)
    }
}

/// Runs `scripts/stack/stack <action>` on the test stack (`stop-broker`, `start-broker`).
pub fn stack(action: &str) {
    assert!(try_stack(action), "stack {action}");
}

/// [`stack`], saying whether it succeeded instead of panicking.
fn try_stack(action: &str) -> bool {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack/stack");
    std::process::Command::new(script)
        .arg(action)
        .status()
        .is_ok_and(|s| s.success())
}

/// The shared broker, stopped: [`BrokerStopped::start`] starts it again, and so does dropping
/// the guard, also when the test panics before it got there, so the tests after it find the
/// broker they expect. Blocking (call it from `spawn_blocking`).
#[must_use = "dropping the guard starts the broker again"]
pub struct BrokerStopped {
    started: bool,
}

impl BrokerStopped {
    /// Stops the broker (`scripts/stack/stack stop-broker`).
    pub fn stop() -> BrokerStopped {
        stack("stop-broker");
        BrokerStopped { started: false }
    }

    /// Starts it again (`start-broker`); panics if it does not start.
    pub fn start(mut self) {
        self.started = true;
        stack("start-broker");
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        // during a panic: a second panic would abort the process, so only say it failed
        if !self.started && !try_stack("start-broker") {
            let _ = writeln!(
                std::io::stderr(),
                "the broker stopped by this test did not start again: run `scripts/stack/stack start-broker`"
            );
        }
    }
}
