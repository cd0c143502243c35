//! The `gladly-kafka` command line: a thin shell over the library (`anyhow` at the edge).

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use tokio::sync::watch;

use gladly_kafka::clock::{ManualClock, SharedClock, SystemClock};
use gladly_kafka::config::Config;
use gladly_kafka::observe::{self, LogFormat, Metrics};
use gladly_kafka::pipeline::service;
use gladly_kafka::pipeline::{BackfillBound, Pipeline, PipelineError};
use gladly_kafka::report::Report;
use gladly_kafka::tail::{KeyFilter, TailOptions};

/// jemalloc for Rust and, unprefixed, for librdkafka's C allocations too: every record's
/// message and headers are allocated on the calling thread and freed on librdkafka's threads,
/// which glibc's per-thread arenas serve with lock contention.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's built-in options (`MALLOC_CONF` in the environment still overrides them): one
/// arena, as the service's memory is mostly records handed between a few threads, and more
/// arenas only hold more memory (measured with `scripts/bench-pipeline`).
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);
// SAFETY: a pointer to an immutable, 'static, NUL-terminated string.
unsafe impl Sync for MallocConf {}
#[export_name = "malloc_conf"]
static MALLOC_CONF: MallocConf = MallocConf(c"narenas:1".as_ptr());

/// Streams Gladly contact-center reports (Work Sessions, Contact Export, Agent Summary) into
/// compacted Kafka topics as keyed Avro records, so any consumer that upserts by key converges
/// on Gladly's current report content.
///
/// Configuration: a TOML file (--config, or GLADLY_KAFKA_CONFIG) plus environment overrides
/// GLADLY_KAFKA__SECTION__KEY (e.g. GLADLY_KAFKA__GLADLY__TOKEN). Every key is documented in
/// the book (docs/configuration.md) and in config/example.toml.
#[derive(Debug, Parser)]
#[command(name = "gladly-kafka", version, about, long_about = None)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, short, global = true, env = "GLADLY_KAFKA_CONFIG")]
    config: Option<PathBuf>,

    /// Log format: human (default) or json. Overrides observe.log_format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,

    /// Pretend it is this instant (RFC 3339) instead of reading the clock: for reproducible
    /// runs and tests.
    #[arg(long, global = true, hide = true)]
    now: Option<DateTime<Utc>>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poll every enabled report forever, each on its cadence (and refresh the [dimensions]
    /// lists as they come due). SIGTERM/SIGINT aborts the open window (nothing half-written)
    /// and exits 0.
    Run,
    /// Run one cycle of every enabled report (without --report, also refresh the [dimensions]
    /// lists that are due) and exit: for cron or a Kubernetes CronJob. Exits non-zero if any
    /// report or list failed.
    Once {
        /// Only this report (work_sessions, contacts, agent_summary).
        #[arg(long)]
        report: Option<Report>,
    },
    /// Publish a historical range of one report through the same path as `run`. Resumable:
    /// run the same command again after an interruption and it continues where it stopped.
    Backfill {
        /// work_sessions, contacts or agent_summary.
        #[arg(long)]
        report: Report,
        /// First day (2024-01-01) or instant (2024-01-01T00:00:00Z).
        #[arg(long)]
        from: String,
        /// Last day, inclusive (2024-01-31), or instant.
        #[arg(long)]
        to: String,
    },
    /// Print every checkpoint (poll loop and backfills) with its lag.
    Status,
    /// Move a report's poll checkpoint; the next poll starts there (minus the lookback).
    /// Fences a running instance of the same config: restart it afterwards.
    Reset {
        /// work_sessions, contacts or agent_summary.
        #[arg(long)]
        report: Report,
        /// The new position: a day (2024-03-01) or an instant (2024-03-01T00:00:00Z).
        #[arg(long)]
        to: String,
    },
    /// Print a topic as JSON lines, read_committed, Avro decoded through the schema registry:
    /// one line per record (partition, offset, timestamp, key, value, headers), or with
    /// --upserted what a warehouse upserting by key holds (tombstoned keys dropped). Needs only
    /// [kafka], [registry] and [topics] of the configuration.
    Tail {
        /// The report whose topic to read (work_sessions, contacts, agent_summary).
        #[arg(long, conflicts_with = "topic", required_unless_present = "topic")]
        report: Option<Report>,
        /// Any topic instead (dead letters, checkpoints, conversations).
        #[arg(long)]
        topic: Option<String>,
        /// Start at the earliest record kept (default: only records committed from now on).
        #[arg(long)]
        from_beginning: bool,
        /// Keep waiting for new records (default: stop at the end).
        #[arg(long)]
        follow: bool,
        /// Only records whose key has these fields ('{"contact_session_id":"c1"}') or equals
        /// this text (or has a field equal to it).
        #[arg(long)]
        key: Option<String>,
        /// Print the last value per key, tombstoned keys dropped, once the end is reached.
        #[arg(long, conflicts_with = "follow")]
        upserted: bool,
    },
    /// Check the configuration, Gladly credentials, the broker, the schema registry and the
    /// topics' configs; exits non-zero with the reason. Run it before a deploy.
    Check,
    /// Serve the built-in Gladly simulator (same endpoints, CSV, limits) for trying things out.
    Simulate(cli::demo::SimulateArgs),
    /// Run the pipeline against the built-in simulator and the configured Kafka and registry,
    /// then print what was published.
    Demo(cli::demo::DemoArgs),
    /// Print SQL tables over the topics, derived from their Avro schemas: for Flink SQL
    /// (--dialect flink: an upsert-kafka table per topic, key fields as primary key, formats
    /// avro-confluent on [registry] url, broker [kafka] bootstrap_servers, topic names from
    /// [topics]) or PostgreSQL (--dialect postgres: the tables a JDBC sink upserting by key
    /// holds). Needs only the configuration; connects to nothing. See docs/flink.md.
    Sql(cli::sql::SqlArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command.
async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let clock: SharedClock = match cli.now {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(SystemClock),
    };
    let path = cli.config.as_deref();
    match cli.command {
        Command::Simulate(args) => {
            observe::init_logging(cli.log_format.unwrap_or_default());
            cli::demo::simulate(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            observe::init_logging(cli.log_format.unwrap_or_default());
            // the demo starts the simulator, so it needs no Gladly credentials: no validation
            let config = gladly_kafka::config::load(path)?;
            cli::demo::demo(config, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sql(args) => {
            let config: Config = gladly_kafka::config::load(path)?;
            config.kafka.validate()?;
            config.registry.validate()?;
            config.topics.validate()?;
            cli::sql::print(&config, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail {
            report,
            topic,
            from_beginning,
            follow,
            key,
            upserted,
        } => {
            observe::init_logging(cli.log_format.unwrap_or_default());
            let config: Config = gladly_kafka::config::load(path)?;
            config.kafka.validate()?;
            config.registry.validate()?;
            config.topics.validate()?;
            let topic = match (topic, report) {
                (Some(t), _) => t,
                (None, Some(r)) => config.report_topic(r),
                (None, None) => anyhow::bail!("name the topic with --report or --topic"),
            };
            let opts = TailOptions {
                topic,
                from_beginning,
                follow,
                key: key.as_deref().map(KeyFilter::parse),
                upserted,
            };
            tail(&config, &opts).await
        }
        Command::Status => status(&load(path, cli.log_format)?, clock).await,
        Command::Check => check(&load(path, cli.log_format)?, clock).await,
        Command::Run => run(connect(load(path, cli.log_format)?, clock).await?).await,
        Command::Once { report } => {
            once(connect(load(path, cli.log_format)?, clock).await?, report).await
        }
        Command::Backfill { report, from, to } => {
            let from = BackfillBound::parse(&from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
            let to = BackfillBound::parse(&to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
            let service = connect(load(path, cli.log_format)?, clock).await?;
            backfill(service, report, from, to).await
        }
        Command::Reset { report, to } => {
            let to = BackfillBound::parse(&to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
            reset(
                connect(load(path, cli.log_format)?, clock).await?,
                report,
                to,
            )
            .await
        }
    }
}

/// Loads and validates the configuration, then starts logging as it says (or as
/// `--log-format` overrides).
fn load(path: Option<&Path>, log_format: Option<LogFormat>) -> anyhow::Result<Config> {
    let config = Config::load(path).context("invalid configuration")?;
    observe::init_logging(log_format.unwrap_or(config.observe.log_format));
    // secrets print as *** (their Debug impls redact them)
    tracing::debug!(?config, "configuration");
    Ok(config)
}

/// A connected pipeline with its metrics listener and the shutdown signal it watches.
struct Service {
    pipeline: Pipeline,
    stop: watch::Receiver<bool>,
    _server: Option<observe::ObserveServer>,
}

/// Starts the metrics listener and the signal handler, and connects the pipeline.
async fn connect(config: Config, clock: SharedClock) -> anyhow::Result<Service> {
    let metrics = Arc::new(Metrics::default());
    let server = observe::serve(&config.observe.listen, metrics.clone())
        .await
        .with_context(|| {
            format!(
                "cannot listen on observe.listen = {:?}",
                config.observe.listen
            )
        })?;
    let (stop_tx, stop) = watch::channel(false);
    spawn_signal_handler(stop_tx, config.pipeline.shutdown_grace_secs);
    let pipeline = Pipeline::connect(config, clock, stop.clone(), metrics).await?;
    Ok(Service {
        pipeline,
        stop,
        _server: server,
    })
}

/// `status`: every checkpoint with its lag.
async fn status(config: &Config, clock: SharedClock) -> anyhow::Result<ExitCode> {
    let lines = tokio::task::spawn_blocking({
        let config = config.clone();
        let now = clock.now();
        move || service::status(&config, now)
    })
    .await??;
    println!("budget: {}", config.budget().summary());
    if lines.is_empty() {
        println!(
            "no checkpoints yet in topic {}",
            config.topics.checkpoint_topic()
        );
    }
    for l in lines {
        let c = &l.checkpoint;
        let updated = c
            .updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if let Some(tier) = &l.reread {
            println!("{:<48} {}", l.key, tier_line(tier, &l, c));
            continue;
        }
        println!(
            "{:<48} position {:<22} lag {:>8} updated {updated} by run {}{}",
            l.key,
            c.position.to_string(),
            format_lag(l.lag),
            c.run_id,
            if c.complete { " (complete)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A re-read tier's `status`: its last complete pass, a pass under way, when it is due.
fn tier_line(
    tier: &service::TierStatus,
    l: &service::StatusLine,
    c: &gladly_kafka::pipeline::checkpoint::Checkpoint,
) -> String {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut line = match tier.progress.last {
        Some(last) => format!(
            "last pass began {} ({} ago), took {}",
            at(last.started_at),
            format_lag(l.lag),
            format_lag(last.finished_at - last.started_at)
        ),
        None => "no complete pass yet".to_string(),
    };
    if let Some(open) = tier.progress.open {
        line.push_str(&format!(
            "; pass under way since {}: at {} of {}..{}",
            at(open.started_at),
            c.position,
            open.from,
            open.to
        ));
    }
    match tier.next_due {
        Some(due) => line.push_str(&format!("; next due {}", at(due))),
        None => line.push_str("; tier no longer configured"),
    }
    line
}

/// `tail`: the topic as JSON lines on stdout.
async fn tail(config: &Config, opts: &TailOptions) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout();
    gladly_kafka::tail::tail(&config.kafka, &config.registry, opts, &mut out).await?;
    Ok(ExitCode::SUCCESS)
}

/// `check`: exits 1 when anything is wrong (each problem is printed with its fix).
async fn check(config: &Config, clock: SharedClock) -> anyhow::Result<ExitCode> {
    let ok = gladly_kafka::pipeline::check::check(config, clock).await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `run`: polls until a signal (exit 0) or an error retrying cannot fix (exit 1).
async fn run(s: Service) -> anyhow::Result<ExitCode> {
    match service::run(s.pipeline, s.stop).await {
        Ok(()) => {
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            tracing::error!(error = %e, "stopping");
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `once`: one cycle of every enabled report (or one), then (without a report named) the
/// dimension lists that are due; exit 1 if any failed.
async fn once(s: Service, report: Option<Report>) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let lists_too = report.is_none();
    for (report, res) in service::once(&s.pipeline, report).await {
        match res {
            Ok(s) => println!(
                "{report}: {} windows, {} rows, {} records ({} tombstones), {} dead letters; \
                 re-read: {} of the windows, {} passes complete",
                s.windows,
                s.rows,
                s.records,
                s.tombstones,
                s.dead_letters,
                s.reread_windows,
                s.reread_passes
            ),
            Err(PipelineError::Shutdown) => println!("{report}: interrupted"),
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    match service::once_events(&s.pipeline, lists_too).await {
        Ok(Some(e)) => println!(
            "events: {} ranges, {} published, {} read again, {} dead letters{}",
            e.ranges,
            e.records,
            e.suppressed,
            e.dead_letters,
            if e.lost_secs > 0 {
                format!(", {} s LOST (outage past the API's 24 hours)", e.lost_secs)
            } else {
                String::new()
            }
        ),
        Ok(None) => {}
        Err(e) => {
            failed = true;
            eprintln!("error: {e}");
        }
    }
    match service::once_dimensions(&s.pipeline, lists_too).await {
        Ok(lists) => {
            for l in lists {
                println!(
                    "{}: {} items, {} records, {} tombstones, {} without an id",
                    l.list, l.items, l.records, l.tombstones, l.skipped
                );
            }
        }
        Err(e) => {
            failed = true;
            eprintln!("error: {e}");
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `backfill`: publishes a range; an interrupted one resumes when run again.
async fn backfill(
    s: Service,
    report: Report,
    from: BackfillBound,
    to: BackfillBound,
) -> anyhow::Result<ExitCode> {
    match service::backfill(&s.pipeline, report, from, to).await {
        Ok(s) => {
            println!(
                "backfill {report} done: {} windows, {} rows, {} records, {} dead letters",
                s.windows, s.rows, s.records, s.dead_letters
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(PipelineError::Shutdown) => {
            println!("backfill {report} interrupted; run the same command again to resume");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `reset`: moves the report's poll checkpoint.
async fn reset(s: Service, report: Report, to: BackfillBound) -> anyhow::Result<ExitCode> {
    let p = service::reset(&s.pipeline, report, to).await?;
    println!("{report}: checkpoint moved to {p}");
    Ok(ExitCode::SUCCESS)
}

/// Exit status when the process did not stop within `pipeline.shutdown_grace_secs` of a
/// signal: not a clean stop, so cron and orchestrators must not take it for success.
const FORCED_EXIT: i32 = 3;

/// On SIGTERM/SIGINT: tells every task to stop (open windows are aborted, waits end);
/// if the process is still alive `grace_secs` later, exits with [`FORCED_EXIT`].
fn spawn_signal_handler(stop: watch::Sender<bool>, grace_secs: u64) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            grace_secs,
            "signal received: aborting the open window and stopping"
        );
        let _ = stop.send(true);
        tokio::time::sleep(std::time::Duration::from_secs(grace_secs)).await;
        tracing::error!(
            grace_secs,
            exit_code = FORCED_EXIT,
            "did not stop within pipeline.shutdown_grace_secs of the signal; exiting anyway \
             (the broker aborts any open transaction, the checkpoint is where the last committed window left it)"
        );
        eprintln!("error: did not stop within pipeline.shutdown_grace_secs ({grace_secs} s) of the signal; forced exit");
        std::process::exit(FORCED_EXIT);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn format_lag(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s >= 86_400 {
        format!("{}d{}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}
