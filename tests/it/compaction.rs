//! The test stack's broker is real Kafka: transactions commit, `read_committed` hides nothing
//! committed, and the log cleaner compacts a `cleanup.policy=compact` topic down to one record
//! per key (the broker's cleaner settings: `scripts/stack/server.properties.in`).

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use support::kafka::{config, create_topic, read_all};

#[tokio::test]
async fn transactional_writes_are_compacted_to_the_last_value_per_key() {
    let topic = support::unique_name("compaction");
    create_topic(
        &topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "0"),
            ("delete.retention.ms", "100"),
        ],
    )
    .await;

    let producer: FutureProducer = config()
        .set("transactional.id", support::unique_name("txn"))
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    producer
        .init_transactions(Timeout::After(Duration::from_secs(30)))
        .expect("init_transactions");

    let writes = [
        ("k1", "a"),
        ("k1", "b"),
        ("k2", "a"),
        ("k2", "b"),
        ("k3", "x"),
        ("k1", "c"),
    ];
    producer.begin_transaction().expect("begin");
    for (k, v) in writes {
        producer
            .send(
                FutureRecord::to(&topic).key(k).payload(v),
                Duration::from_secs(10),
            )
            .await
            .expect("delivery");
    }
    producer
        .commit_transaction(Timeout::After(Duration::from_secs(30)))
        .expect("commit");

    // Everything committed is visible before compaction.
    let before = read_all(&topic);
    assert_eq!(
        before.len(),
        writes.len(),
        "all committed records are readable"
    );

    // Roll the segment: wait past segment.ms, then append a sentinel with an unused key.
    tokio::time::sleep(Duration::from_millis(300)).await;
    producer.begin_transaction().expect("begin");
    producer
        .send(
            FutureRecord::to(&topic).key("__roll__").payload("roll"),
            Duration::from_secs(10),
        )
        .await
        .expect("sentinel delivery");
    producer
        .commit_transaction(Timeout::After(Duration::from_secs(30)))
        .expect("commit");

    let expected: HashMap<&str, &str> = [("k1", "c"), ("k2", "b"), ("k3", "x")].into();
    let topic2 = topic.clone();
    let compacted = tokio::task::spawn_blocking(move || {
        support::eventually(
            Duration::from_secs(60),
            "the log cleaner to compact",
            || {
                let records = read_all(&topic2);
                let tested: Vec<_> = records
                    .iter()
                    .filter(|r| r.key.as_deref() != Some(b"__roll__".as_slice()))
                    .collect();
                (tested.len() == 3).then(|| {
                    tested
                        .iter()
                        .map(|r| {
                            (
                                String::from_utf8(r.key.clone().unwrap()).unwrap(),
                                String::from_utf8(r.value.clone().unwrap()).unwrap(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            },
        )
    })
    .await
    .unwrap();

    let got: HashMap<&str, &str> = compacted
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, expected, "one record per key, with its last value");
    assert_eq!(compacted.len(), 3, "each key exactly once: {compacted:?}");
}
