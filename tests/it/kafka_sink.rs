//! The sink against the real broker: transactions hide aborted windows, the transactional id
//! fences an older producer, at-least-once delivers everything before the checkpoint, and topic
//! admin creates compacted topics and refuses a topic that is not compacted.

use crate::support;

use gladly_kafka::kafka::admin::{ensure_topics, topic_specs};
use gladly_kafka::kafka::{headers, Delivery, KafkaSettings, Outgoing, Publisher, TopicSettings};
use gladly_kafka::report::Report;

fn settings(delivery: Delivery) -> KafkaSettings {
    KafkaSettings {
        bootstrap_servers: support::kafka_bootstrap(),
        delivery,
        transaction_timeout_secs: 30,
        ..KafkaSettings::default()
    }
}

fn send_all(p: &Publisher, topic: &str, items: &[(&str, Option<&str>)]) {
    let h = headers([("gladly.report", "test")]);
    for (k, v) in items {
        p.send(Outgoing {
            topic,
            key: Some(k.as_bytes()),
            value: v.map(str::as_bytes),
            timestamp_ms: 1_700_000_000_000,
            headers: &h,
        })
        .expect("send");
    }
}

fn checkpoint<'a>(topic: &'a str, h: &'a rdkafka::message::OwnedHeaders) -> Outgoing<'a> {
    Outgoing {
        topic,
        key: Some(b"run/test"),
        value: Some(b"{}"),
        timestamp_ms: 1_700_000_000_000,
        headers: h,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aborted_window_is_invisible_and_a_committed_one_is_whole() {
    let topic = support::unique_name("sink-eos");
    support::kafka::create_topic(&topic, 1, &[("cleanup.policy", "compact")]).await;
    let topic2 = topic.clone();
    tokio::task::spawn_blocking(move || {
        let topic = topic2;
        let p = Publisher::new(
            &settings(Delivery::ExactlyOnce),
            &support::unique_name("tx"),
        )
        .unwrap();
        p.begin().unwrap();
        send_all(
            &p,
            &topic,
            &[("a", Some("1")), ("b", Some("1")), ("c", Some("1"))],
        );
        p.abort().unwrap();

        p.begin().unwrap();
        send_all(&p, &topic, &[("a", Some("2")), ("b", None)]);
        let h = headers([]);
        p.finish(checkpoint(&topic, &h)).unwrap();

        let got: Vec<(String, Option<String>)> = support::kafka::read_all(&topic)
            .into_iter()
            .map(|r| {
                (
                    String::from_utf8(r.key.unwrap()).unwrap(),
                    r.value.map(|v| String::from_utf8(v).unwrap()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), Some("2".to_string())),
                ("b".to_string(), None),
                ("run/test".to_string(), Some("{}".to_string())),
            ],
            "read_committed sees the committed window only, tombstone included"
        );
        let first = &support::kafka::read_all(&topic)[0];
        assert_eq!(first.timestamp, Some(1_700_000_000_000), "event time kept");
        assert!(first
            .headers
            .iter()
            .any(|(k, v)| k == "gladly.report" && v.as_deref() == Some(b"test".as_slice())));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    let topic = support::unique_name("sink-fence");
    support::kafka::create_topic(&topic, 1, &[("cleanup.policy", "compact")]).await;
    tokio::task::spawn_blocking(move || {
        let id = support::unique_name("tx-fence");
        let s = settings(Delivery::ExactlyOnce);
        let old = Publisher::new(&s, &id).unwrap();
        old.begin().unwrap();
        send_all(&old, &topic, &[("a", Some("old"))]);
        let new = Publisher::new(&s, &id).unwrap(); // aborts old's open transaction
        let h = headers([]);
        let err = old
            .finish(checkpoint(&topic, &h))
            .expect_err("the old producer is fenced");
        assert!(err.is_fenced(), "{err:?}");
        assert!(err.to_string().contains(&id), "{err}");

        new.begin().unwrap();
        send_all(&new, &topic, &[("a", Some("new"))]);
        new.finish(checkpoint(&topic, &h)).unwrap();
        let values: Vec<Option<Vec<u8>>> = support::kafka::read_all(&topic)
            .into_iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(values, vec![Some(b"new".to_vec()), Some(b"{}".to_vec())]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn at_least_once_acknowledges_records_before_the_checkpoint() {
    let topic = support::unique_name("sink-alo");
    support::kafka::create_topic(&topic, 1, &[("cleanup.policy", "compact")]).await;
    tokio::task::spawn_blocking(move || {
        let p = Publisher::new(&settings(Delivery::AtLeastOnce), "unused").unwrap();
        p.begin().unwrap();
        let keys: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
        let items: Vec<(&str, Option<&str>)> =
            keys.iter().map(|k| (k.as_str(), Some("v"))).collect();
        send_all(&p, &topic, &items);
        let h = headers([]);
        p.finish(checkpoint(&topic, &h)).unwrap();
        assert_eq!(p.stats().acked(), 501);
        let all = support::kafka::read_all(&topic);
        assert_eq!(all.len(), 501);
        assert_eq!(
            all.last().unwrap().key.as_deref(),
            Some(b"run/test".as_slice()),
            "checkpoint after the records"
        );
    })
    .await
    .unwrap();
}

/// The specs of the built-in reports publishing under `topics`.
fn built_in_specs(topics: &TopicSettings) -> Vec<gladly_kafka::report::ReportSpec> {
    let config = gladly_kafka::config::Config {
        topics: topics.clone(),
        ..Default::default()
    };
    Report::BUILT_IN
        .into_iter()
        .map(|r| config.spec(r).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_are_created_compacted_and_a_delete_topic_is_refused() {
    let prefix = support::unique_name("admin");
    let topics = TopicSettings {
        prefix: prefix.clone(),
        partitions: 2,
        ..TopicSettings::default()
    };
    let kafka = settings(Delivery::ExactlyOnce);
    let specs = topic_specs(&topics, &built_in_specs(&topics));
    ensure_topics(&kafka, -1, &specs).await.expect("created");
    // twice is harmless
    ensure_topics(&kafka, -1, &specs)
        .await
        .expect("already there");

    // a pre-existing topic with the wrong policy is refused, naming the setting
    let wrong = TopicSettings {
        prefix: support::unique_name("admin-wrong"),
        ..TopicSettings::default()
    };
    support::kafka::create_topic(
        &wrong.report_topic(Report::CONTACTS),
        1,
        &[("cleanup.policy", "delete")],
    )
    .await;
    let err = ensure_topics(&kafka, -1, &topic_specs(&wrong, &built_in_specs(&wrong)))
        .await
        .expect_err("refused")
        .to_string();
    assert!(err.contains("cleanup.policy=delete"), "{err}");
    assert!(err.contains("topics.contacts"), "{err}");
}
