//! Reading a topic back with `isolation.level=read_committed`: every partition from the
//! beginning (or its end), up to where it stood when reading began, or on for ever
//! (`follow`). Blocking: call from a blocking context.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::producer::client_config;
use super::settings::KafkaSettings;

/// Consumer context that does not log reaching the end of a partition as an error (the reader
/// asks for exactly that).
#[derive(Debug, Clone, Copy)]
pub struct QuietEof;

impl rdkafka::ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::PartitionEOF);
        if !eof {
            tracing::warn!(target: "librdkafka", error = %error, "{reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

/// Where reading starts in every partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The earliest record still kept.
    Beginning,
    /// After the last record: only what is committed from now on.
    End,
    /// The first record with a timestamp at or after this instant (epoch ms): every record
    /// stamped since then is at or after it.
    Since(i64),
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers, values as text (lossy).
    pub headers: Vec<(String, String)>,
}

/// Reading a topic failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Kafka could not be read.
    #[error("cannot read topic `{topic}`: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// Why.
        source: KafkaError,
    },
    /// The topic does not exist (or has no partitions).
    #[error("topic `{0}` does not exist")]
    NoTopic(String),
    /// Reading did not reach the end in time.
    #[error("reading topic `{topic}` did not reach its end within {secs} s (is the broker reachable, or a transaction stuck open?)")]
    Timeout {
        /// The topic.
        topic: String,
        /// Seconds waited.
        secs: u64,
    },
}

/// A `read_committed` reader of every partition of one topic.
pub struct TopicReader {
    consumer: BaseConsumer<QuietEof>,
    topic: String,
    /// Partitions not yet read to their end (unused when following).
    pending: HashSet<i32>,
    follow: bool,
    /// When reading must have reached the end (unused when following).
    deadline: Instant,
    timeout: Duration,
}

impl std::fmt::Debug for TopicReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicReader")
            .field("topic", &self.topic)
            .field("pending", &self.pending)
            .field("follow", &self.follow)
            .finish_non_exhaustive()
    }
}

impl TopicReader {
    /// Assigns every partition of `topic` at `start`. Without `follow`, [`TopicReader::next_record`]
    /// returns `None` once every partition is read to the end it had when reading began, and
    /// fails if that takes longer than `timeout` (also the bound of each metadata request).
    pub fn open(
        kafka: &KafkaSettings,
        topic: &str,
        start: Start,
        follow: bool,
        timeout: Duration,
    ) -> Result<TopicReader, ReadError> {
        let err = |source| ReadError::Kafka {
            topic: topic.to_string(),
            source,
        };
        let consumer: BaseConsumer<QuietEof> = client_config(kafka)
            .set(
                "group.id",
                format!("gladly-kafka-reader-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .create_with_context(QuietEof)
            .map_err(err)?;
        let md = consumer.fetch_metadata(Some(topic), timeout).map_err(err)?;
        let partitions: Vec<i32> = md
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if partitions.is_empty() {
            return Err(ReadError::NoTopic(topic.to_string()));
        }
        let mut tpl = start_offsets(&consumer, topic, &partitions, start, timeout).map_err(err)?;
        let mut pending = HashSet::new();
        let deadline = Instant::now() + timeout;
        for p in tpl.clone().elements() {
            let (low, high) = watermarks(&consumer, topic, p.partition(), deadline).map_err(err)?;
            let from = match p.offset() {
                Offset::Offset(o) => o,
                Offset::Beginning => low,
                // the end as it stands now, not as it will when the first fetch resolves it:
                // what is committed after `open` returns is read
                _ => {
                    tpl.set_partition_offset(topic, p.partition(), Offset::Offset(high))
                        .map_err(err)?;
                    high
                }
            };
            if from < high {
                pending.insert(p.partition());
            }
        }
        consumer.assign(&tpl).map_err(err)?;
        Ok(TopicReader {
            consumer,
            topic: topic.to_string(),
            pending,
            follow,
            deadline: Instant::now() + timeout,
            timeout,
        })
    }

    /// The next record; `None` at the end (never when following).
    pub fn next_record(&mut self) -> Result<Option<ReadRecord>, ReadError> {
        loop {
            if !self.follow && self.pending.is_empty() {
                return Ok(None);
            }
            if !self.follow && Instant::now() > self.deadline {
                return Err(ReadError::Timeout {
                    topic: self.topic.clone(),
                    secs: self.timeout.as_secs(),
                });
            }
            match self.consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Ok(m)) => return Ok(Some(record(&m))),
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    self.pending.remove(&p);
                }
                Some(Err(e)) => tracing::warn!(topic = %self.topic, error = %e, "while reading"),
            }
        }
    }
}

/// A partition's low and high watermarks, asked again until `deadline` while the broker does
/// not know the partition's leader yet: right after the topic was created, ListOffsets can
/// answer NotLeaderForPartition for a moment.
fn watermarks(
    consumer: &BaseConsumer<QuietEof>,
    topic: &str,
    partition: i32,
    deadline: Instant,
) -> Result<(i64, i64), KafkaError> {
    use rdkafka::error::RDKafkaErrorCode::{
        LeaderNotAvailable, NotLeaderForPartition, UnknownTopicOrPartition,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.fetch_watermarks(topic, partition, left) {
            Err(KafkaError::MetadataFetch(
                NotLeaderForPartition | LeaderNotAvailable | UnknownTopicOrPartition,
            )) if left > Duration::from_millis(100) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            done => return done,
        }
    }
}

/// Where each partition starts: its beginning, its end, or the first offset stamped at or
/// after an instant (its end when there is none).
fn start_offsets(
    consumer: &BaseConsumer<QuietEof>,
    topic: &str,
    partitions: &[i32],
    start: Start,
    timeout: Duration,
) -> Result<TopicPartitionList, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let offset = match start {
            Start::Beginning => Offset::Beginning,
            Start::End => Offset::End,
            Start::Since(ms) => Offset::Offset(ms),
        };
        tpl.add_partition_offset(topic, *p, offset)?;
    }
    if let Start::Since(_) = start {
        tpl = consumer.offsets_for_times(tpl, timeout)?;
        for e in tpl.clone().elements() {
            if !matches!(e.offset(), Offset::Offset(_)) {
                tpl.set_partition_offset(topic, e.partition(), Offset::End)?;
            }
        }
    }
    Ok(tpl)
}

fn record(m: &rdkafka::message::BorrowedMessage<'_>) -> ReadRecord {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let v = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                    (h.key.to_string(), v.into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    ReadRecord {
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}
