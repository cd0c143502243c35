//! Each wrong setting stops the service at once with one line naming the key to fix, and
//! `check` reports it as its only FAIL line: librdkafka would otherwise retry a refused login
//! or an untrusted certificate forever.

use std::time::Duration;

use crate::fixture::{self, Simulator, Stack};

/// A CA certificate that signed nothing of the stack's (its key was discarded).
const UNTRUSTED_CA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/secured/untrusted-ca.pem"
);

/// Well under a librdkafka retry loop's patience; a refusal takes about a second.
const BOUND: Duration = Duration::from_secs(20);

/// Runs `run` and `check` with the correct SCRAM-SHA-512 config changed by `break_it`:
/// `run` must exit non-zero within [`BOUND`] printing exactly one line, which names `key`;
/// `check` must exit 1 with one FAIL line, on `system`, naming `key`.
fn stops_naming(key: &str, system: &str, break_it: impl FnOnce(&mut toml::Table)) {
    let stack = Stack::from_env();
    let sim = Simulator::start();
    let now = fixture::now();
    let mut table = fixture::config(&stack, "SCRAM-SHA-512", &sim.url, now);
    break_it(&mut table);

    let run = fixture::gladly_kafka(&table, now, &["run"], BOUND);
    assert!(!run.status.success(), "{run:#?}");
    let lines = fixture::lines(&run.stderr);
    assert_eq!(lines.len(), 1, "one line: {run:#?}");
    assert!(
        lines[0].starts_with(&format!("error: config key `{key}`: "))
            || lines[0].starts_with(&format!("error: schema registry: config key `{key}`: ")),
        "{run:#?}"
    );

    let check = fixture::gladly_kafka(&table, now, &["check"], BOUND);
    assert_eq!(check.status.code(), Some(1), "{check:#?}");
    let failed: Vec<&str> = fixture::lines(&check.stdout)
        .into_iter()
        .filter(|l| l.starts_with("FAIL"))
        .collect();
    assert_eq!(failed.len(), 1, "{check:#?}");
    assert!(
        failed[0].starts_with(&format!("FAIL  {system}: config key `{key}`: ")),
        "{check:#?}"
    );
}

#[test]
fn a_wrong_sasl_password_names_kafka_properties_sasl_password() {
    stops_naming("kafka.properties.sasl.password", "kafka", |t| {
        fixture::set(t, &["kafka", "properties", "sasl.password"], "wrong");
    });
}

#[test]
fn an_untrusted_broker_ca_names_kafka_properties_ssl_ca_location() {
    stops_naming("kafka.properties.ssl.ca.location", "kafka", |t| {
        fixture::set(t, &["kafka", "properties", "ssl.ca.location"], UNTRUSTED_CA);
    });
}

#[test]
fn a_mechanism_the_broker_does_not_offer_names_kafka_properties_sasl_mechanism() {
    stops_naming("kafka.properties.sasl.mechanism", "kafka", |t| {
        fixture::set(
            t,
            &["kafka", "properties", "sasl.mechanism"],
            "SCRAM-SHA-256",
        );
    });
}

#[test]
fn a_wrong_registry_password_names_registry_password() {
    stops_naming("registry.password", "registry", |t| {
        fixture::set(t, &["registry", "password"], "wrong");
    });
}

#[test]
fn an_untrusted_registry_ca_names_registry_ca_file() {
    stops_naming("registry.ca_file", "registry", |t| {
        fixture::set(t, &["registry", "ca_file"], UNTRUSTED_CA);
    });
}

#[test]
fn a_registry_ca_file_left_out_names_registry_ca_file() {
    stops_naming("registry.ca_file", "registry", |t| {
        fixture::unset(t, &["registry", "ca_file"]);
    });
}
