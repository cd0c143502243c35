//! Proves the brokers accept this client before the service relies on them: metadata within a
//! bound, or one error naming the key to fix.
//!
//! librdkafka treats a refused SASL login or an untrusted broker certificate like any broken
//! connection: it logs, backs off and tries again, forever. A wrong `kafka.properties` would
//! then look like a slow broker (every call waits out its timeout). The probe listens to
//! librdkafka's error events instead and stops at the first authentication or TLS failure,
//! naming the `kafka.properties` key behind it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::producer::client_config;
use super::settings::KafkaSettings;

/// Why the brokers could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A `kafka.*` key is wrong: librdkafka refused its value, or the broker refused what it
    /// configures (SASL credentials or mechanism, TLS trust).
    #[error("config key `{key}`: {problem}")]
    Misconfigured {
        /// The dotted key to fix, e.g. `kafka.properties.sasl.password`.
        key: String,
        /// What is wrong and what to set, with librdkafka's own words.
        problem: String,
    },
    /// No broker answered in time (and none refused this client).
    #[error("no broker of kafka.bootstrap_servers = {bootstrap} answered within {secs} s{}{hint}", last.as_ref().map(|l| format!(" (last error: {l})")).unwrap_or_default())]
    Unreachable {
        /// `kafka.bootstrap_servers`.
        bootstrap: String,
        /// Seconds waited.
        secs: u64,
        /// The last error librdkafka reported, if any.
        last: Option<String>,
        /// What to check.
        hint: &'static str,
    },
}

/// What the probe saw of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// Brokers in the cluster's metadata.
    pub brokers: usize,
    /// Names of the topics this client may see.
    pub topics: Vec<String>,
}

/// Fetches the cluster's metadata with the service's client settings, waiting at most
/// `timeout` for a broker to answer but stopping at the first authentication or TLS failure
/// librdkafka reports. Blocking.
pub fn probe(settings: &KafkaSettings, timeout: Duration) -> Result<Reached, AccessError> {
    let producer: BaseProducer<Watch> = client_config(settings)
        .create_with_context(Watch::default())
        .map_err(|e| creation_error(&e, &settings.properties))?;
    let deadline = Instant::now() + timeout;
    let mut failed = None;
    loop {
        // serves librdkafka's error events to Watch::error
        producer.poll(Duration::from_millis(50));
        let seen = producer.context().take();
        if let Some(e) = seen
            .iter()
            .find_map(|(c, r)| refused(*c, r, &settings.properties))
        {
            return Err(e);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let last = producer.context().last().or(failed);
            return Err(unreachable(settings, timeout, last));
        }
        match producer
            .client()
            .fetch_metadata(None, left.min(Duration::from_millis(500)))
        {
            Ok(md) => {
                return Ok(Reached {
                    brokers: md.brokers().len(),
                    topics: md.topics().iter().map(|t| t.name().to_string()).collect(),
                })
            }
            Err(e) => failed = Some(e.to_string()),
        }
    }
}

/// The error of a deadline passed without a refusal, with a hint when the connections broke
/// the way a protocol mismatch breaks them (a plaintext client on a TLS listener is hung up on
/// during its first request; a TLS client without SASL on a SASL_SSL listener, right after).
fn unreachable(settings: &KafkaSettings, waited: Duration, last: Option<String>) -> AccessError {
    let protocol = last.as_deref().is_some_and(|l| {
        [
            "security.protocol",
            "PLAINTEXT broker",
            "APIVERSION_QUERY",
            "SSL connection closed",
        ]
        .iter()
        .any(|s| l.contains(s))
    });
    AccessError::Unreachable {
        bootstrap: settings.bootstrap_servers.clone(),
        secs: waited.as_secs(),
        last,
        hint: if protocol {
            ": check kafka.properties.security.protocol against the listener's (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
        } else {
            ": check kafka.bootstrap_servers, and that kafka.properties.security.protocol matches the listener"
        },
    }
}

/// A client librdkafka would not create: the property it names, when the user set it.
fn creation_error(e: &KafkaError, props: &BTreeMap<String, String>) -> AccessError {
    match e {
        KafkaError::ClientConfig(_, desc, key, _) => AccessError::Misconfigured {
            key: format!("kafka.properties.{key}"),
            problem: desc.clone(),
        },
        other => {
            let text = match other {
                KafkaError::ClientCreation(s) => s.clone(),
                e => e.to_string(),
            };
            // the longest property the user set that librdkafka's message names
            let named = props
                .keys()
                .filter(|k| text.contains(k.as_str()))
                .max_by_key(|k| k.len());
            AccessError::Misconfigured {
                key: named.map_or("kafka.properties".into(), |k| {
                    format!("kafka.properties.{k}")
                }),
                problem: format!("librdkafka cannot create a client: {text}"),
            }
        }
    }
}

/// The key behind an error event that retrying cannot fix, if it is one: SASL credentials or
/// mechanism, or TLS trust. Transport errors (a broker away, a restart) are not.
fn refused(
    code: RDKafkaErrorCode,
    reason: &str,
    props: &BTreeMap<String, String>,
) -> Option<AccessError> {
    let set = |keys: &[&str]| {
        let key = keys
            .iter()
            .find(|k| props.contains_key(**k))
            .unwrap_or(&keys[0]);
        format!("kafka.properties.{key}")
    };
    let (key, problem) = match code {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
            if reason.contains("mechanism handshake failed") {
                let key = set(&["sasl.mechanism", "sasl.mechanisms"]);
                let name = props.get(&key["kafka.properties.".len()..]);
                let what = format!(
                    "the broker does not offer SASL mechanism `{}`",
                    name.map_or("GSSAPI", String::as_str)
                );
                let fix = "set it to one the broker supports";
                (key, format!("{what} ({reason}): {fix}"))
            } else {
                let user = props.get("sasl.username").map_or("(none)", String::as_str);
                let fix = "set the user's password (and check kafka.properties.sasl.username)";
                let what = format!("the broker refused the SASL login of user `{user}`");
                (
                    "kafka.properties.sasl.password".into(),
                    format!("{what} ({reason}): {fix}"),
                )
            }
        }
        RDKafkaErrorCode::SSL => {
            if reason.contains("could not be verified") || reason.contains("verify failed") {
                let ca = set(&["ssl.ca.location", "ssl.ca.pem", "ssl.ca.certificate.stores"]);
                let fix = "set it to the PEM file of the CA that signed the broker's certificate";
                let what = "the broker's TLS certificate is not signed by a CA this client trusts";
                (ca, format!("{what} ({reason}): {fix}"))
            } else if reason.contains("client SSL authentication might be required") {
                let fix = "the broker wants a client certificate: set it (PEM) and kafka.properties.ssl.key.location";
                let key = set(&["ssl.certificate.location", "ssl.certificate.pem"]);
                (key, format!("{reason}: {fix}"))
            } else {
                let fix = "check kafka.properties.security.protocol and the ssl.* properties";
                (
                    "kafka.properties.security.protocol".into(),
                    format!("TLS with the broker failed ({reason}): {fix}"),
                )
            }
        }
        _ => return None,
    };
    Some(AccessError::Misconfigured { key, problem })
}

/// The probe's librdkafka context: keeps the error events (the probe reports them once), and
/// logs librdkafka's own lines at debug only, so a refused login is not also a flood of
/// retry warnings.
#[derive(Debug, Default)]
struct Watch {
    /// Error events not yet looked at by the probe.
    errors: Mutex<Vec<(RDKafkaErrorCode, String)>>,
    /// The latest error event's reason, else the first connection failure logged.
    last: Mutex<Option<String>>,
}

impl Watch {
    fn take(&self) -> Vec<(RDKafkaErrorCode, String)> {
        std::mem::take(&mut *self.errors.lock().expect("not poisoned"))
    }

    fn last(&self) -> Option<String> {
        self.last.lock().expect("not poisoned").clone()
    }
}

impl ClientContext for Watch {
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(target: "librdkafka", "{fac}: {message}");
        // librdkafka reports some broken connections (hung up on by the broker) only here
        if fac == "FAIL" {
            let mut last = self.last.lock().expect("not poisoned");
            if last.is_none() {
                *last = Some(message.to_string());
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", error = %error, "{reason}");
        if let Some(code) = error.rdkafka_error_code() {
            self.errors
                .lock()
                .expect("not poisoned")
                .push((code, reason.to_string()));
        }
        *self.last.lock().expect("not poisoned") = Some(reason.to_string());
    }
}

impl ProducerContext for Watch {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn key_of(e: Option<AccessError>) -> String {
        match e {
            Some(AccessError::Misconfigured { key, .. }) => key,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_name_the_key_the_user_set() {
        let p = props(&[
            ("sasl.username", "svc"),
            ("sasl.mechanisms", "SCRAM-SHA-256"),
        ]);
        let login = "SASL authentication error: Authentication failed during authentication \
                     due to invalid credentials with SASL mechanism SCRAM-SHA-512";
        let e = refused(RDKafkaErrorCode::Authentication, login, &p).unwrap();
        assert!(e.to_string().contains("`svc`"), "{e}");
        assert_eq!(key_of(Some(e)), "kafka.properties.sasl.password");
        let mech = "SASL SCRAM-SHA-256 mechanism handshake failed: Broker: Request not valid in \
                    current SASL state: broker's supported mechanisms: SCRAM-SHA-512,PLAIN";
        let e = refused(RDKafkaErrorCode::Authentication, mech, &p);
        assert_eq!(key_of(e), "kafka.properties.sasl.mechanisms");
        let tls = "SSL handshake failed: error:0A000086:SSL routines::certificate verify \
                   failed: broker certificate could not be verified, verify that \
                   ssl.ca.location is correctly configured";
        let e = refused(RDKafkaErrorCode::SSL, tls, &props(&[]));
        assert_eq!(key_of(e), "kafka.properties.ssl.ca.location");
        let e = refused(RDKafkaErrorCode::SSL, tls, &props(&[("ssl.ca.pem", "…")]));
        assert_eq!(key_of(e), "kafka.properties.ssl.ca.pem");
    }

    #[test]
    fn transport_errors_are_not_refusals() {
        let p = props(&[]);
        for code in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
        ] {
            assert!(refused(code, "Connection refused", &p).is_none());
        }
    }

    #[test]
    fn creation_errors_name_the_property() {
        let p = props(&[("ssl.ca.location", "/nowhere.pem"), ("linger.ms", "5")]);
        let e = KafkaError::ClientCreation(
            "ssl.ca.location failed: error:80000002:system library::No such file or directory"
                .into(),
        );
        let err = creation_error(&e, &p);
        assert!(
            err.to_string()
                .starts_with("config key `kafka.properties.ssl.ca.location`: "),
            "{err}"
        );
    }

    #[test]
    fn a_property_librdkafka_does_not_know_is_named() {
        let s = KafkaSettings {
            properties: props(&[("sasl.mechanismz", "PLAIN")]),
            ..KafkaSettings::default()
        };
        let err = probe(&s, Duration::from_secs(1)).unwrap_err().to_string();
        assert!(
            err.starts_with("config key `kafka.properties.sasl.mechanismz`"),
            "{err}"
        );
    }
}
