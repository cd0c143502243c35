//! `check`: prove, before a deploy, that the credentials, broker, registry and topics work.
//! Prints one line per check (`ok` / `FAIL` with the reason and the fix).

use std::time::Duration;

use futures::StreamExt;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::gladly::{self, ReportRequest};
use crate::kafka::admin::check_policies;
use crate::kafka::producer::client_config;
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::pipeline::connect::{all_topic_specs, probe_kafka};
use crate::pipeline::conversations::register_schemas;
use crate::pipeline::window::{DateWindow, Window};
use crate::records::schemas::dead_letter_schema;
use crate::report::Format;

/// The outcome of the checks so far; prints each line as it comes.
#[derive(Debug)]
struct Checks {
    ok: bool,
}

impl Checks {
    fn line(&mut self, passed: bool, what: &str, detail: impl std::fmt::Display) {
        self.ok &= passed;
        println!("{:<5} {what}: {detail}", if passed { "ok" } else { "FAIL" });
    }
}

/// Runs every check, printing a line each; true when all passed. The first line is the
/// request budget (a configuration over it does not load).
pub async fn check(config: &Config, clock: SharedClock) -> bool {
    let mut checks = Checks { ok: true };
    let budget = config.budget();
    checks.line(budget.check().is_ok(), "budget", budget.summary());
    check_gladly(&mut checks, config, &clock).await;
    let kafka = check_kafka(&mut checks, config).await;
    check_registry(&mut checks, config).await;
    if let Some((admin, topics)) = kafka {
        check_topics(&mut checks, config, &admin, &topics).await;
    }
    checks.ok
}

/// Gladly: one small work-session report proves host, credentials and permission; with
/// `[conversations]`, a GET Conversation of an id that cannot exist (a 404) proves access to
/// that API; with `[dimensions]`, a GET of each list.
async fn check_gladly(checks: &mut Checks, config: &Config, clock: &SharedClock) {
    let client = match gladly::Client::new(&config.gladly) {
        Err(e) => return checks.line(false, "gladly", e),
        Ok(client) => client,
    };
    let now = crate::pipeline::window::floor_minute(clock.now());
    let req = ReportRequest::WorkSessions {
        start: now - chrono::Duration::minutes(2),
        end: now - chrono::Duration::minutes(1),
    };
    match count_rows(client.report(&req).await).await {
        Ok(n) => {
            checks.line(
                true,
                "gladly",
                format!(
                    "{} answered a work-session report ({n} rows) for {}",
                    config.gladly.host, config.gladly.email
                ),
            );
            // only once Gladly answers at all: else each would fail for the same reason
            check_configured(checks, config, &client, clock).await;
        }
        Err(e) => checks.line(false, "gladly", e),
    }
    if config.conversations.enabled {
        match client.conversation("gladly-kafka-check").await {
            Ok(_) => checks.line(
                true,
                "conversations",
                format!("{} answers GET Conversation", config.gladly.host),
            ),
            Err(e) => checks.line(false, "conversations", e),
        }
    }
    check_lists(checks, config, &client).await;
    check_events(checks, config, &client, clock).await;
}

/// The rows of an answer, counted; the first error, if any.
async fn count_rows(answer: Result<gladly::RowStream, gladly::GladlyError>) -> Result<u64, String> {
    let mut rows = answer.map_err(|e| e.to_string())?;
    let mut n = 0u64;
    while let Some(r) = rows.next().await {
        r.map_err(|e| format!("reading the report failed: {e}"))?
            .map_err(|e| format!("reading the report failed: {e}"))?;
        n += 1;
    }
    Ok(n)
}

/// Reports configured by columns: today's answer proves the metric set, its filters and that
/// its header has the key and anchor columns (one report request each).
async fn check_configured(
    checks: &mut Checks,
    config: &Config,
    client: &gladly::Client,
    clock: &SharedClock,
) {
    for report in config.enabled_reports() {
        let Some(spec) = config
            .spec(report)
            .filter(|s| matches!(s.format, Format::Derived(_)))
        else {
            continue;
        };
        let today = clock.now().with_timezone(&spec.timezone).date_naive();
        let Some(day) = DateWindow::new(today, today) else {
            continue;
        };
        let req = crate::pipeline::plan::request(config, report, &Window::Dates(day));
        let what = format!("reports.{report}");
        match count_rows(
            client
                .report_with_columns(&req, &spec.required_columns())
                .await,
        )
        .await
        {
            Ok(n) => checks.line(
                true,
                &what,
                format!(
                    "{} answered ({n} rows today), with the key and anchor columns",
                    req.describe()
                ),
            ),
            Err(e) => checks.line(false, &what, e),
        }
    }
}

/// `[dimensions]`: one GET of each enabled list proves access to it (one request each).
async fn check_lists(checks: &mut Checks, config: &Config, client: &gladly::Client) {
    for list in config.dimensions.enabled_lists() {
        let what = format!("dimensions.{list}");
        match client.list(list).await {
            Ok(items) => checks.line(
                true,
                &what,
                format!("{} lists {} items", list.path(), items.len()),
            ),
            Err(e) => checks.line(false, &what, e),
        }
    }
}

/// The events feed, when enabled: one GET of the last five minutes of its entities.
async fn check_events(
    checks: &mut Checks,
    config: &Config,
    client: &gladly::Client,
    clock: &SharedClock,
) {
    if !config.events.enabled {
        return;
    }
    let end = clock.now() - chrono::Duration::seconds(config.events.settle_secs as i64);
    let start = end - chrono::Duration::minutes(5);
    match client.events(&config.events.entities(), start, end).await {
        Ok(body) => {
            let lines = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            checks.line(
                true,
                "events",
                format!(
                    "{} answers {lines} events for the last five minutes",
                    gladly::EVENTS_PATH
                ),
            )
        }
        Err(e) => checks.line(false, "events", e),
    }
}

/// Kafka: metadata from the brokers, stopping at the first refusal (credentials, mechanism,
/// TLS trust) with the key to fix; the admin client and the topic names for the topic checks.
async fn check_kafka(
    checks: &mut Checks,
    config: &Config,
) -> Option<(AdminClient<DefaultClientContext>, Vec<String>)> {
    let reached = match probe_kafka(config, Duration::from_secs(15)).await {
        Err(e) => {
            checks.line(false, "kafka", e);
            return None;
        }
        Ok(reached) => reached,
    };
    let admin: AdminClient<DefaultClientContext> = match client_config(&config.kafka).create() {
        Err(e) => {
            let why = format!("cannot create a client: {e} (check kafka.properties)");
            checks.line(false, "kafka", why);
            return None;
        }
        Ok(a) => a,
    };
    let detail = format!(
        "{} reachable ({} broker(s))",
        config.kafka.bootstrap_servers, reached.brokers
    );
    checks.line(true, "kafka", detail);
    Some((admin, reached.topics))
}

/// Registry: registers (idempotently) every schema `run` registers: each enabled report's,
/// the conversations topic's and the dimension lists' when enabled, and the dead letters'.
async fn check_registry(checks: &mut Checks, config: &Config) {
    let registry = match RegistryClient::new(&config.registry) {
        Err(e) => return checks.line(false, "registry", e),
        Ok(r) => r,
    };
    match register_all(&registry, config).await {
        Ok(()) => checks.line(
            true,
            "registry",
            format!(
                "{} accepts the schemas of every enabled report and of the dead letters",
                config.registry.url
            ),
        ),
        Err(e) => checks.line(false, "registry", e),
    }
}

async fn register_all(registry: &RegistryClient, config: &Config) -> Result<(), RegistryError> {
    for spec in config
        .enabled_reports()
        .into_iter()
        .filter_map(|r| config.spec(r))
    {
        super::connect::register_report_schemas(registry, &spec).await?;
    }
    if config.conversations.enabled {
        register_schemas(registry, &config.topics.conversations_topic()).await?;
    }
    super::dimensions::DimensionSource::connect(config, registry).await?;
    let subject = format!("{}-value", config.topics.dead_letter_topic());
    registry.register(&subject, dead_letter_schema()).await?;
    Ok(())
}

/// Topics: existing ones must have the cleanup policy the contract needs and, when keyed,
/// `topics.partitions` partitions; missing ones are named (the service creates them).
async fn check_topics(
    checks: &mut Checks,
    config: &Config,
    admin: &AdminClient<DefaultClientContext>,
    topics: &[String],
) {
    let specs = all_topic_specs(config);
    let existing: std::collections::HashSet<&str> = topics.iter().map(String::as_str).collect();
    let (present, missing): (Vec<_>, Vec<_>) = specs
        .iter()
        .partition(|s| existing.contains(s.name.as_str()));
    let present: Vec<_> = present.into_iter().cloned().collect();
    if !present.is_empty() {
        if let Err(e) = check_policies(admin, &config.kafka, &present).await {
            return checks.line(false, "topics", e);
        }
    }
    let missing: Vec<&str> = missing.iter().map(|s| s.name.as_str()).collect();
    checks.line(
        true,
        "topics",
        if missing.is_empty() {
            "every topic exists with the right cleanup.policy and partitions".to_string()
        } else {
            format!("configs fine; will be created: {}", missing.join(", "))
        },
    );
}
