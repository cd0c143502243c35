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
use crate::kafka::registry::RegistryClient;
use crate::pipeline::conversations::{all_topic_specs, register_schemas};

/// Runs every check, printing a line each; true when all passed.
pub async fn check(config: &Config, clock: SharedClock) -> bool {
    let mut ok = true;
    let mut line = |passed: bool, what: &str, detail: String| {
        ok &= passed;
        println!("{:<5} {what}: {detail}", if passed { "ok" } else { "FAIL" });
    };

    // Gladly: one small work-session report proves host, credentials and permission.
    match gladly::Client::new(&config.gladly) {
        Err(e) => line(false, "gladly", e.to_string()),
        Ok(client) => {
            let now = crate::pipeline::window::floor_minute(clock.now());
            let req = ReportRequest::WorkSessions {
                start: now - chrono::Duration::minutes(2),
                end: now - chrono::Duration::minutes(1),
            };
            match client.report(&req).await {
                Ok(mut rows) => {
                    let mut n = 0u64;
                    let mut err = None;
                    while let Some(r) = rows.next().await {
                        match r {
                            Ok(_) => n += 1,
                            Err(e) => {
                                err = Some(e);
                                break;
                            }
                        }
                    }
                    match err {
                        None => line(
                            true,
                            "gladly",
                            format!(
                                "{} answered a work-session report ({n} rows) for {}",
                                config.gladly.host, config.gladly.email
                            ),
                        ),
                        Some(e) => line(false, "gladly", format!("reading the report failed: {e}")),
                    }
                }
                Err(e) => line(false, "gladly", e.to_string()),
            }
            // GET Conversation of an id that cannot exist: a 404 proves access to the API
            if config.conversations.enabled {
                match client.conversation("gladly-kafka-check").await {
                    Ok(_) => line(
                        true,
                        "conversations",
                        format!("{} answers GET Conversation", config.gladly.host),
                    ),
                    Err(e) => line(false, "conversations", e.to_string()),
                }
            }
        }
    }

    // Kafka: metadata from the brokers.
    let admin: Result<AdminClient<DefaultClientContext>, _> = client_config(&config.kafka).create();
    let admin = match admin {
        Err(e) => {
            line(
                false,
                "kafka",
                format!("cannot create a client: {e} (check kafka.properties)"),
            );
            None
        }
        Ok(a) => {
            let md = tokio::task::block_in_place(|| {
                a.inner().fetch_metadata(None, Duration::from_secs(15))
            });
            match md {
                Ok(md) => {
                    line(
                        true,
                        "kafka",
                        format!(
                            "{} reachable ({} broker(s))",
                            config.kafka.bootstrap_servers,
                            md.brokers().len()
                        ),
                    );
                    Some((a, md))
                }
                Err(e) => {
                    line(
                        false,
                        "kafka",
                        format!("{} not reachable: {e} (check kafka.bootstrap_servers and SASL/SSL in kafka.properties)", config.kafka.bootstrap_servers),
                    );
                    None
                }
            }
        }
    };

    // Registry: register (idempotently) every enabled report's schemas.
    match RegistryClient::new(&config.registry) {
        Err(e) => line(false, "registry", e.to_string()),
        Ok(reg) => {
            let mut all = true;
            for r in config.enabled_reports() {
                let topic = config.topics.report_topic(r);
                if let Err(e) = reg.register_report(&topic, r).await {
                    line(false, "registry", e.to_string());
                    all = false;
                    break;
                }
            }
            if all && config.conversations.enabled {
                let topic = config.topics.conversations_topic();
                if let Err(e) = register_schemas(&reg, &topic).await {
                    line(false, "registry", e.to_string());
                    all = false;
                }
            }
            if all {
                line(
                    true,
                    "registry",
                    format!(
                        "{} accepts the schemas of every enabled report",
                        config.registry.url
                    ),
                );
            }
        }
    }

    // Topics: existing ones must be compacted where the contract needs it.
    if let Some((admin, md)) = admin {
        let specs = all_topic_specs(config);
        let existing: std::collections::HashSet<&str> =
            md.topics().iter().map(|t| t.name()).collect();
        let (present, missing): (Vec<_>, Vec<_>) = specs
            .iter()
            .partition(|s| existing.contains(s.name.as_str()));
        let present: Vec<_> = present.into_iter().cloned().collect();
        let checked = if present.is_empty() {
            Ok(())
        } else {
            check_policies(&admin, &present).await
        };
        if let Err(e) = checked {
            line(false, "topics", e.to_string());
        } else {
            let missing: Vec<&str> = missing.iter().map(|s| s.name.as_str()).collect();
            line(
                true,
                "topics",
                if missing.is_empty() {
                    "every topic exists with the right cleanup.policy".to_string()
                } else {
                    format!("configs fine; will be created: {}", missing.join(", "))
                },
            );
        }
    }
    ok
}
