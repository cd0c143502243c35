//! [`RegistryError`]: what went wrong talking to the schema registry. A refused login and an
//! untrusted certificate name the `registry.*` key to fix; a transport failure says its root
//! cause (reqwest's own message stops at "error sending request").

use std::path::Path;

use reqwest::StatusCode;

use crate::config_error::ConfigError;

/// What went wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The subject holds another key schema: the topic was written with another key.
    #[error("{subject} holds another key schema than this version writes: keys of different schemas never compact together, so this version needs a new topic (the work-session key changed in v2 and again in v3; leave topics.work_sessions unset for the default gladly.work_sessions.v3, or point it at a new topic; a report configured by columns whose key columns changed needs reports.<name>.topic set to a new topic)")]
    KeyChanged {
        /// The key subject, e.g. `gladly.work_sessions-key`.
        subject: String,
    },
    /// The registry refused a schema as incompatible with the subject's earlier versions (409).
    #[error("schema for {subject} is not backward compatible: {reason}")]
    Incompatible {
        /// The subject, e.g. `gladly.work_sessions-value`.
        subject: String,
        /// The registry's explanation.
        reason: String,
    },
    /// The registry refused the login (401) or what the user asked (403).
    #[error("config key `{key}`: {problem}")]
    Refused {
        /// `registry.password` (a refused login) or `registry.username` (no login, or a user
        /// without the rights).
        key: &'static str,
        /// HTTP status.
        status: u16,
        /// What happened and what to set.
        problem: String,
    },
    /// The registry's TLS certificate is not trusted (or not valid for its host).
    #[error("config key `{key}`: {problem}")]
    Untrusted {
        /// `registry.ca_file`, or `registry.url` when the certificate names another host.
        key: &'static str,
        /// What happened and what to set.
        problem: String,
    },
    /// Any other error status, with the registry's `error_code` and `message` when it sent them.
    #[error("schema registry answered {status} to {method} {url}{}: {message}", error_code.map(|c| format!(" (error code {c})")).unwrap_or_default())]
    Status {
        /// HTTP method.
        method: &'static str,
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The registry's `error_code`, if any.
        error_code: Option<i64>,
        /// The registry's `message` (or the body text).
        message: String,
    },
    /// The request did not complete (connection, TLS, timeout).
    #[error("schema registry request {method} {url} failed: {}", causes(source))]
    Transport {
        /// HTTP method.
        method: &'static str,
        /// Request URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// A 2xx response whose body is not what the API promises.
    #[error("schema registry sent an unexpected response to {method} {url}: {detail}")]
    Response {
        /// HTTP method.
        method: &'static str,
        /// Request URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The settings are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// An error and its causes as one text, each cause once ("error sending request for url (…):
/// client error (Connect): Connection refused (os error 111)").
pub(crate) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![];
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The rustls certificate error somewhere in `e`'s causes. hyper gets it inside an
/// `io::Error` inside another `io::Error`, and an `io::Error`'s `source` skips what it wraps,
/// so wrapped errors are unwrapped too.
fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<rustls::CertificateError> {
    let mut next = Some(e);
    while let Some(e) = next {
        let mut wrapped = Some(e);
        while let Some(w) = wrapped {
            if let Some(rustls::Error::InvalidCertificate(c)) = w.downcast_ref() {
                return Some(c.clone());
            }
            wrapped = w
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|i| i as &(dyn std::error::Error + 'static));
        }
        next = e.source();
    }
    None
}

/// A request that did not complete: an untrusted certificate names the key to fix, anything
/// else is a [`RegistryError::Transport`].
pub(crate) fn transport(
    method: &'static str,
    url: &reqwest::Url,
    source: reqwest::Error,
    ca_file: Option<&Path>,
) -> RegistryError {
    let Some(cert) = certificate_error(&source) else {
        return RegistryError::Transport {
            method,
            url: url.to_string(),
            source,
        };
    };
    let host = url.host_str().unwrap_or_default();
    let at = format!(
        "the schema registry at {}",
        url.origin().ascii_serialization()
    );
    match cert {
        rustls::CertificateError::NotValidForName
        | rustls::CertificateError::NotValidForNameContext { .. } => RegistryError::Untrusted {
            key: "registry.url",
            problem: format!(
                "{at} presented a TLS certificate that is not valid for `{host}` ({cert:?}): \
                 use a host name the certificate names"
            ),
        },
        other => {
            let trusted = match ca_file {
                Some(p) => format!(
                    "the CA in registry.ca_file ({}) or a public root",
                    p.display()
                ),
                None => "a public root (registry.ca_file is not set)".to_string(),
            };
            RegistryError::Untrusted {
                key: "registry.ca_file",
                problem: format!(
                    "{at} presented a TLS certificate not signed by {trusted} ({other:?}): set \
                     registry.ca_file to the PEM file of the CA that signed the registry's \
                     certificate"
                ),
            }
        }
    }
}

/// A 401 or 403: the key to fix, given the user the client logged in as (if any).
pub(crate) fn refused(
    method: &'static str,
    url: &reqwest::Url,
    status: StatusCode,
    user: Option<&str>,
) -> RegistryError {
    let answered = format!(
        "the schema registry at {} answered {status} to {method} {}",
        url.origin().ascii_serialization(),
        url.path()
    );
    let (key, problem) = match (status, user) {
        (StatusCode::UNAUTHORIZED, Some(user)) => (
            "registry.password",
            format!(
                "{answered}: it refused the login of user `{user}`: set the user's password \
                 (and check registry.username)"
            ),
        ),
        (StatusCode::UNAUTHORIZED, None) => (
            "registry.username",
            format!("{answered}: it wants a login: set registry.username and registry.password"),
        ),
        (_, user) => (
            "registry.username",
            format!(
                "{answered}: user `{}` may not do that: grant it write access to the \
                 subjects, or use a user that has it",
                user.unwrap_or("(anonymous)")
            ),
        ),
    };
    RegistryError::Refused {
        key,
        status: status.as_u16(),
        problem,
    }
}
