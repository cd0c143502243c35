//! A small client for the Confluent schema registry REST API, which Confluent, Apicurio (its
//! `ccompat` API, e.g. `http://host:8080/apis/ccompat/v7`) and Karapace all speak: register
//! `<topic>-key` / `<topic>-value` at startup, fetch a schema by id. Ids are cached, so
//! registering the same schema again costs no request. Records carry the ids in the Confluent
//! wire format (see [`crate::records::avro::header`]).

use std::collections::HashMap;

use std::sync::Mutex;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::records::{schemas, SchemaIds};
use crate::report::Report;

pub use super::settings::RegistrySettings;

/// The Content-Type of the registry's API.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

const ACCEPT: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";

/// What went wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The subject holds another key schema: the topic was written with another key.
    #[error("{subject} holds another key schema than this version writes: keys of different schemas never compact together, so this version needs a new topic (the work-session key changed in v2; leave topics.work_sessions unset for the default gladly.work_sessions.v2, or point it at a new topic)")]
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
    #[error("schema registry request {method} {url} failed: {source}")]
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

/// A Confluent-compatible schema registry client; share it (`Arc`) or clone the settings.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    auth: Option<(String, String)>,
    ids: Mutex<HashMap<(String, String), u32>>,
    schemas: Mutex<HashMap<u32, String>>,
}

#[derive(Deserialize)]
struct IdBody {
    id: i64,
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<i64>,
    message: Option<String>,
}

impl RegistryClient {
    /// A client for the registry at `settings.url` (validated here).
    pub fn new(settings: &RegistrySettings) -> Result<Self, RegistryError> {
        settings.validate()?;
        let base = settings.base_url()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.min(10)))
            .build()
            .map_err(|source| RegistryError::Transport {
                method: "-",
                url: base.to_string(),
                source,
            })?;
        let auth = match (&settings.username, &settings.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        };
        Ok(RegistryClient {
            http,
            base,
            auth,
            ids: Mutex::new(HashMap::new()),
            schemas: Mutex::new(HashMap::new()),
        })
    }

    /// `base` + path segments (each percent-encoded), keeping any path prefix of `base`.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("validated as a base URL")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn send(
        &self,
        method: &'static str,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, bytes::Bytes), RegistryError> {
        let mut req = match body {
            Some(b) => self
                .http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(b.to_string()),
            None => self.http.get(url.clone()),
        }
        .header(reqwest::header::ACCEPT, ACCEPT);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        let transport = |source| RegistryError::Transport {
            method,
            url: url.to_string(),
            source,
        };
        let res = req.send().await.map_err(transport)?;
        let status = res.status();
        let body = res.bytes().await.map_err(transport)?;
        Ok((status, body))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        method: &'static str,
        url: &Url,
        body: &[u8],
    ) -> Result<T, RegistryError> {
        serde_json::from_slice(body).map_err(|e| RegistryError::Response {
            method,
            url: url.to_string(),
            detail: format!("{e}: {}", String::from_utf8_lossy(body)),
        })
    }

    fn status_error(
        method: &'static str,
        url: &Url,
        status: StatusCode,
        body: &[u8],
    ) -> (Option<i64>, String, RegistryError) {
        let (error_code, message) = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody {
                error_code,
                message: Some(m),
            }) => (error_code, m),
            Ok(ErrorBody { error_code, .. }) => (error_code, String::from_utf8_lossy(body).into()),
            Err(_) => (None, String::from_utf8_lossy(body).trim().to_string()),
        };
        let err = RegistryError::Status {
            method,
            url: url.to_string(),
            status: status.as_u16(),
            error_code,
            message: message.clone(),
        };
        (error_code, message, err)
    }

    /// Registers `schema` (Avro JSON) under `subject` (`POST /subjects/{subject}/versions`)
    /// and returns its id; the same id when it is already registered. Cached per
    /// (subject, schema). A 409 is [`RegistryError::Incompatible`].
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let cache_key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.lock().expect("cache lock").get(&cache_key) {
            return Ok(*id);
        }
        let url = self.url(&["subjects", subject, "versions"]);
        let (status, body) = self
            .send(
                "POST",
                url.clone(),
                Some(serde_json::json!({ "schema": schema })),
            )
            .await?;
        if status == StatusCode::CONFLICT {
            let (_, message, _) = Self::status_error("POST", &url, status, &body);
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                reason: message,
            });
        }
        if !status.is_success() {
            return Err(Self::status_error("POST", &url, status, &body).2);
        }
        let IdBody { id } = Self::parse("POST", &url, &body)?;
        let id = u32::try_from(id).map_err(|_| RegistryError::Response {
            method: "POST",
            url: url.to_string(),
            detail: format!("schema id {id} does not fit the wire format's 4 bytes"),
        })?;
        self.ids.lock().expect("cache lock").insert(cache_key, id);
        Ok(id)
    }

    /// The schema registered with `id` (`GET /schemas/ids/{id}`), as the registry stores it.
    /// Cached after the first fetch (a registered id never changes its schema).
    pub async fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        if let Some(schema) = self.schemas.lock().expect("cache lock").get(&id) {
            return Ok(schema.clone());
        }
        let url = self.url(&["schemas", "ids", &id.to_string()]);
        let (status, body) = self.send("GET", url.clone(), None).await?;
        if !status.is_success() {
            return Err(Self::status_error("GET", &url, status, &body).2);
        }
        let SchemaBody { schema } = Self::parse("GET", &url, &body)?;
        self.schemas
            .lock()
            .expect("cache lock")
            .insert(id, schema.clone());
        Ok(schema)
    }

    /// Registers a report's key and value schemas under `<topic>-key` and `<topic>-value`.
    pub async fn register_report(
        &self,
        topic: &str,
        report: Report,
    ) -> Result<SchemaIds, RegistryError> {
        let key = self
            .register_key(&format!("{topic}-key"), schemas::key_schema(report))
            .await?;
        let value = self
            .register(&format!("{topic}-value"), schemas::value_schema(report))
            .await?;
        Ok(SchemaIds { key, value })
    }

    /// Registers a key schema, refusing a subject whose latest key schema is another one
    /// (`GET /subjects/{subject}/versions/latest`): a registry would accept a compatible
    /// change, but keys of different schemas never compact together, so the topic would keep
    /// both forever. A new key comes with a new topic.
    async fn register_key(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = self.url(&["subjects", subject, "versions", "latest"]);
        let (status, body) = self.send("GET", url.clone(), None).await?;
        if status.is_success() {
            let SchemaBody { schema: latest } = Self::parse("GET", &url, &body)?;
            if canonical(&latest) != canonical(schema) {
                return Err(RegistryError::KeyChanged {
                    subject: subject.to_string(),
                });
            }
        }
        self.register(subject, schema).await
    }

    /// Proves the registry answers (`GET /subjects`), for `check`.
    pub async fn check(&self) -> Result<(), RegistryError> {
        let url = self.url(&["subjects"]);
        let (status, body) = self.send("GET", url.clone(), None).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Self::status_error("GET", &url, status, &body).2)
        }
    }
}

/// A schema's canonical form, or its text when it does not parse (then they differ).
fn canonical(schema: &str) -> String {
    apache_avro::Schema::parse_str(schema)
        .map(|s| s.canonical_form())
        .unwrap_or_else(|_| schema.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode as S};
    use axum::routing::{get, post};
    use axum::{Json, Router};

    /// (subject, Authorization, Content-Type) of a registration.
    type Request = (String, Option<String>, Option<String>);

    /// A fake registry behind a path prefix, recording what it was sent.
    #[derive(Default)]
    struct Seen {
        requests: Mutex<Vec<Request>>,
    }

    async fn fake() -> (String, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        async fn register(
            State(seen): State<Arc<Seen>>,
            Path(subject): Path<String>,
            headers: HeaderMap,
            body: String,
        ) -> (S, Json<serde_json::Value>) {
            let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_string());
            seen.requests.lock().unwrap().push((
                subject.clone(),
                h("authorization"),
                h("content-type"),
            ));
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(body["schema"].is_string());
            match subject.as_str() {
                "bad-value" => (
                    S::CONFLICT,
                    Json(
                        serde_json::json!({"error_code": 409, "message": "field x has no default"}),
                    ),
                ),
                "broken-value" => (
                    S::UNPROCESSABLE_ENTITY,
                    Json(serde_json::json!({"error_code": 42201, "message": "Invalid schema"})),
                ),
                _ => (S::OK, Json(serde_json::json!({"id": 5}))),
            }
        }
        let app = Router::new()
            .route("/prefix/v7/subjects/{subject}/versions", post(register))
            .route(
                "/prefix/v7/schemas/ids/{id}",
                get(|Path(id): Path<u32>| async move {
                    if id == 5 {
                        (S::OK, Json(serde_json::json!({"schema": "\"string\""})))
                    } else {
                        (S::NOT_FOUND, Json(serde_json::json!({"error_code": 40403, "message": "Schema not found"})))
                    }
                }),
            )
            .with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/prefix/v7/"), seen)
    }

    fn settings(url: &str) -> RegistrySettings {
        RegistrySettings {
            url: url.into(),
            username: Some("key".into()),
            password: Some("s3cret".into()),
            ..RegistrySettings::default()
        }
    }

    #[tokio::test]
    async fn registers_under_a_path_prefix_with_basic_auth_and_caches_ids() {
        let (url, seen) = fake().await;
        let client = RegistryClient::new(&settings(&url)).unwrap();
        assert_eq!(
            client
                .register("gladly.x-value", "\"string\"")
                .await
                .unwrap(),
            5
        );
        assert_eq!(
            client
                .register("gladly.x-value", "\"string\"")
                .await
                .unwrap(),
            5
        );
        let requests = seen.requests.lock().unwrap().clone();
        assert_eq!(requests.len(), 1, "the second registration is cached");
        let (subject, auth, ct) = &requests[0];
        assert_eq!(subject, "gladly.x-value");
        assert_eq!(
            auth.as_deref(),
            Some("Basic a2V5OnMzY3JldA=="),
            "key:s3cret"
        );
        assert_eq!(ct.as_deref(), Some(CONTENT_TYPE));
        assert_eq!(client.schema_by_id(5).await.unwrap(), "\"string\"");
    }

    #[tokio::test]
    async fn errors_carry_the_registrys_reason() {
        let (url, _) = fake().await;
        let client = RegistryClient::new(&settings(&url)).unwrap();
        let e = client
            .register("bad-value", "\"string\"")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "schema for bad-value is not backward compatible: field x has no default"
        );
        let e = client
            .register("broken-value", "\"string\"")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                RegistryError::Status {
                    status: 422,
                    error_code: Some(42201),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("Invalid schema"), "{e}");
        let e = client.schema_by_id(9).await.unwrap_err();
        assert!(
            e.to_string().contains("404") && e.to_string().contains("Schema not found"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn unreachable_registry_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let client = RegistryClient::new(&RegistrySettings {
            url: url.clone(),
            ..RegistrySettings::default()
        })
        .unwrap();
        let e = client.check().await.unwrap_err();
        assert!(matches!(e, RegistryError::Transport { .. }), "{e:?}");
        assert!(e.to_string().contains(&url), "{e}");
    }

    #[test]
    fn settings_validate_with_key_names_and_redact_the_password() {
        let err = |s: RegistrySettings| s.validate().unwrap_err().to_string();
        assert!(err(RegistrySettings::default()).starts_with("config key `registry.url`"));
        assert!(err(settings("ftp://x")).starts_with("config key `registry.url`"));
        assert!(err(settings("not a url")).starts_with("config key `registry.url`"));
        assert!(err(RegistrySettings {
            password: None,
            ..settings("http://x")
        })
        .starts_with("config key `registry.password`"));
        assert!(err(RegistrySettings {
            username: None,
            ..settings("http://x")
        })
        .starts_with("config key `registry.username`"));
        settings("http://x:8080/apis/ccompat/v7")
            .validate()
            .unwrap();
        let debug = format!("{:?}", settings("http://x"));
        assert!(
            !debug.contains("s3cret") && debug.contains("<redacted>"),
            "{debug}"
        );
    }

    #[test]
    fn settings_deserialize_strictly() {
        let s: RegistrySettings =
            toml::from_str("url = \"http://r:8081\"\nusername = \"u\"\npassword = \"p\"").unwrap();
        assert_eq!(s.url, "http://r:8081");
        assert_eq!(s.timeout_secs, 30);
        assert!(toml::from_str::<RegistrySettings>("uri = \"x\"").is_err());
    }

    #[test]
    fn urls_keep_the_prefix_and_encode_subjects() {
        let c = RegistryClient::new(&RegistrySettings {
            url: "http://r/apis/ccompat/v7".into(),
            ..RegistrySettings::default()
        })
        .unwrap();
        assert_eq!(
            c.url(&["subjects", "a/b c-value", "versions"]).as_str(),
            "http://r/apis/ccompat/v7/subjects/a%2Fb%20c-value/versions"
        );
    }
}
