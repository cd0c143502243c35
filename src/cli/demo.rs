//! `simulate` (serve the built-in Gladly simulator) and `demo` (run the real pipeline against
//! it and print what landed in Kafka).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, DurationRound, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use tokio::sync::watch;

use gladly_kafka::clock::{Clock, ManualClock, ScaledClock, SharedClock, SystemClock};
use gladly_kafka::config::{Config, DateReportSettings};
use gladly_kafka::gladly::Secret;
use gladly_kafka::kafka::producer::client_config;
use gladly_kafka::kafka::registry::RegistryClient;
use gladly_kafka::kafka::KafkaSettings;
use gladly_kafka::observe::Metrics;
use gladly_kafka::pipeline::checkpoint::QuietEof;
use gladly_kafka::pipeline::service;
use gladly_kafka::pipeline::Pipeline;
use gladly_kafka::records::schemas;
use gladly_kafka::report::{BuiltIn, Report};
use gladly_sim::{SimConfig, Simulator};

/// `gladly-kafka simulate`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub(crate) listen: SocketAddr,
    /// Seed of the generated contact center.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Simulated seconds per real second (1 = real time; 3600 = an hour a second).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) speed: f64,
    /// Days of history before now.
    #[arg(long, default_value_t = 7)]
    pub(crate) history_days: i64,
    /// Where history starts (RFC 3339), instead of --history-days before now: with a fixed
    /// origin and seed, every past report has the same content on every run (benchmarks).
    #[arg(long, conflicts_with = "history_days")]
    pub(crate) origin: Option<DateTime<Utc>>,
    /// Mean contacts per hour.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) contacts_per_hour: f64,
    /// Basic-auth user the simulator accepts.
    #[arg(long, default_value = "api@example.com")]
    pub(crate) email: String,
    /// Basic-auth token the simulator accepts.
    #[arg(long, default_value = "simulator-token")]
    pub(crate) token: String,
    /// Turn Gladly's report limits (10/min, 2 concurrent) off.
    #[arg(long)]
    pub(crate) no_limits: bool,
}

/// Serves the simulator until Ctrl-C.
pub(crate) async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let now = Utc::now();
    let clock: SharedClock = if (args.speed - 1.0).abs() < f64::EPSILON {
        Arc::new(SystemClock)
    } else {
        Arc::new(ScaledClock::new(now, args.speed))
    };
    let mut cfg = SimConfig {
        seed: args.seed,
        origin: args
            .origin
            .unwrap_or(now - chrono::Duration::days(args.history_days)),
        contacts_per_hour: args.contacts_per_hour,
        email: args.email.clone(),
        token: args.token.clone(),
        ..SimConfig::default()
    };
    if args.no_limits {
        cfg = cfg.without_limits();
    }
    let sim = Simulator::new(cfg, move || clock.now());
    let server = sim
        .serve(args.listen)
        .await
        .context("starting the simulator")?;
    println!("Gladly simulator on {}", server.url);
    println!(
        "  [gladly]\n  host = \"{}\"\n  email = \"{}\"\n  token = \"{}\"",
        server.url, args.email, args.token
    );
    tokio::signal::ctrl_c().await.ok();
    server.shutdown().await;
    Ok(())
}

/// `gladly-kafka demo`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DemoArgs {
    /// Hours of simulated history to publish.
    #[arg(long, default_value_t = 24)]
    pub(crate) hours: i64,
    /// Poll cycles after the first one, each two simulated hours later.
    #[arg(long, default_value_t = 2)]
    pub(crate) cycles: u32,
    /// Seed of the simulated contact center.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}

/// Starts the simulator, points the pipeline at it and the configured Kafka and registry, runs
/// a few poll cycles over simulated time, and prints what each topic holds.
pub(crate) async fn demo(mut config: Config, args: DemoArgs) -> anyhow::Result<()> {
    // the last cycle lands on the present hour: brokers refuse record timestamps from the future
    let now = Utc::now()
        .duration_trunc(chrono::Duration::hours(1))
        .expect("an hour boundary")
        - chrono::Duration::hours(2 * i64::from(args.cycles));
    let clock = ManualClock::new(now);
    let sim_cfg = SimConfig {
        seed: args.seed,
        origin: now - chrono::Duration::hours(args.hours + 48),
        contacts_per_hour: 40.0,
        ..SimConfig::default()
    }
    .without_limits();
    let sim = Simulator::new(sim_cfg.clone(), {
        let clock = clock.clone();
        move || clock.now()
    });
    let server = sim
        .serve("127.0.0.1:0".parse().expect("an address"))
        .await
        .context("starting the simulator")?;
    println!("simulator: {} (simulated now {now})", server.url);

    aim_at_simulator(&mut config, &sim_cfg, &server.url, now, args.hours)?;

    let (_stop_tx, stop_rx) = watch::channel(false);
    let pipeline = Pipeline::connect(
        config.clone(),
        Arc::new(clock.clone()),
        stop_rx,
        Arc::new(Metrics::default()),
    )
    .await
    .context("connecting to Kafka and the schema registry")?;
    run_cycles(&pipeline, &clock, args.cycles, config.dimensions.enabled).await?;
    server.shutdown().await;

    print_topics(&config).await
}

/// The value schema a report's topic is written with: a built-in report's, or the registry's
/// latest version of a report configured by columns.
async fn value_schema(config: &Config, report: Report) -> anyhow::Result<String> {
    if BuiltIn::named(report).is_some() {
        return Ok(schemas::value_schema(report).to_string());
    }
    let subject = format!("{}-value", config.report_topic(report));
    let registry = RegistryClient::new(&config.registry)?;
    Ok(registry
        .latest(&subject)
        .await?
        .map(|(_, text)| text)
        .unwrap_or_default())
}

/// Points `config` at the simulator at `url`: its credentials, generous pacing, the reports'
/// first positions `hours` before `now`, conversations with work sessions, a report configured
/// by columns (the Conversation Export preset) unless the config has one, no listener.
fn aim_at_simulator(
    config: &mut Config,
    sim_cfg: &SimConfig,
    url: &str,
    now: chrono::DateTime<Utc>,
    hours: i64,
) -> anyhow::Result<()> {
    config.gladly.host = url.to_string();
    config.gladly.email = sim_cfg.email.clone();
    config.gladly.token = Some(Secret::new(sim_cfg.token.clone()));
    config.gladly.token_file = None;
    config.gladly.requests_per_minute = 600;
    config.gladly.requests_per_second = 500;
    config.conversations.enabled = config.reports.work_sessions.enabled;
    config.reports.work_sessions.start = Some(now - chrono::Duration::hours(hours));
    let first_day = (now - chrono::Duration::hours(hours)).date_naive();
    config.reports.contacts.start = Some(first_day);
    config.reports.agent_summary.start = Some(first_day);
    if config.reports.configured.is_empty() {
        config.reports.configured.insert(
            "conversation_export".into(),
            DateReportSettings {
                preset: Some("conversation_export".into()),
                ..DateReportSettings::default()
            },
        );
    }
    for s in config.reports.configured.values_mut() {
        s.start = Some(first_day);
    }
    config.observe.listen = String::new();
    config
        .validate()
        .context("the demo configuration (kafka.bootstrap_servers, registry.url)")?;

    Ok(())
}

/// One poll of every report per cycle, each two simulated hours after the previous one, and a
/// refresh of the dimension lists when they are enabled.
async fn run_cycles(
    pipeline: &Pipeline,
    clock: &ManualClock,
    cycles: u32,
    dimensions: bool,
) -> anyhow::Result<()> {
    for cycle in 0..=cycles {
        if cycle > 0 {
            clock.advance(chrono::Duration::hours(2));
        }
        println!("\ncycle {cycle} at simulated {}", clock_now(clock));
        for (report, res) in service::once(pipeline, None).await {
            match res {
                Ok(s) => println!(
                    "  {report:<20} {:>3} windows {:>6} rows -> {:>6} records ({} tombstones), {} dead letters",
                    s.windows, s.rows, s.records, s.tombstones, s.dead_letters
                ),
                Err(e) => anyhow::bail!("{report}: {e}"),
            }
        }
        let lists = service::once_dimensions(pipeline, dimensions)
            .await
            .context("refreshing the dimension lists")?;
        for l in lists {
            println!(
                "  {:<20} {:>6} items -> {:>6} records ({} tombstones)",
                l.list.name(),
                l.items,
                l.records,
                l.tombstones
            );
        }
    }
    Ok(())
}

/// What each topic holds (read_committed, last value per key), with a decoded sample.
async fn print_topics(config: &Config) -> anyhow::Result<()> {
    println!("\nwhat the topics hold (read_committed, last value per key):");
    let mut topics: Vec<(String, String)> = Vec::new();
    for r in config.enabled_reports() {
        topics.push((config.report_topic(r), value_schema(config, r).await?));
    }
    if config.conversations.enabled {
        topics.push((
            config.topics.conversations_topic(),
            schemas::conversation_value_schema().to_string(),
        ));
    }
    for (topic, schema) in topics {
        let kafka = config.kafka.clone();
        let t = topic.clone();
        let (count, keys, sample) =
            tokio::task::spawn_blocking(move || summarize_topic(&kafka, &t, &schema)).await??;
        println!("  {topic:<28} {count:>6} records, {keys:>6} live keys");
        if let Some(s) = sample {
            println!("    e.g. {s}");
        }
    }
    println!(
        "\nread them back as JSON with `gladly-kafka tail --report work_sessions --upserted`, or with any Avro consumer (schemas in {}), e.g. kafka-avro-console-consumer --topic {}",
        config.registry.url,
        config.report_topic(Report::WORK_SESSIONS)
    );
    Ok(())
}

fn clock_now(c: &ManualClock) -> String {
    c.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Records, live keys and one decoded value of a topic.
fn summarize_topic(
    kafka: &KafkaSettings,
    topic: &str,
    value_schema: &str,
) -> anyhow::Result<(u64, usize, Option<String>)> {
    let consumer: BaseConsumer<QuietEof> = client_config(kafka)
        .set(
            "group.id",
            format!("gladly-kafka-demo-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create_with_context(QuietEof)?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let parts = md
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    consumer.subscribe(&[topic])?;
    let mut eof = std::collections::HashSet::new();
    let mut last: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>> = Default::default();
    let mut count = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while eof.len() < parts && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                count += 1;
                last.insert(
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().map(<[u8]>::to_vec),
                );
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            _ => {}
        }
    }
    let live: Vec<&Vec<u8>> = last.values().flatten().collect();
    let sample = live.first().and_then(|v| {
        let schema = apache_avro::Schema::parse_str(value_schema).ok()?;
        let value = apache_avro::from_avro_datum(&schema, &mut &v[5..], None).ok()?;
        let json: serde_json::Value = value.try_into().ok()?;
        let mut s = json.to_string();
        if s.len() > 400 {
            s.truncate(400);
            s.push('…');
        }
        Some(s)
    });
    Ok((count, live.len(), sample))
}
