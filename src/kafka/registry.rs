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

use super::registry_error::{refused, transport};
use crate::records::{schemas, SchemaIds};
use crate::report::Report;

pub use super::registry_error::RegistryError;
pub use super::settings::RegistrySettings;

/// The Content-Type of the registry's API.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

const ACCEPT: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";

/// A Confluent-compatible schema registry client; share it (`Arc`) or clone the settings.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    auth: Option<(String, String)>,
    ca_file: Option<std::path::PathBuf>,
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
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.min(10)));
        // trusted next to the public roots (which Confluent Cloud's certificates chain to)
        for ca in settings.ca_certificates()? {
            builder = builder.add_root_certificate(ca);
        }
        let http = builder.build().map_err(|source| RegistryError::Transport {
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
            ca_file: settings.ca_file.clone(),
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
        let failed = |source| transport(method, &url, source, self.ca_file.as_deref());
        let res = req.send().await.map_err(failed)?;
        let status = res.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let user = self.auth.as_ref().map(|(u, _)| u.as_str());
            return Err(refused(method, &url, status, user));
        }
        let body = res.bytes().await.map_err(failed)?;
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
            .register(&format!("{topic}-key"), schemas::key_schema(report))
            .await?;
        let value = self
            .register(&format!("{topic}-value"), schemas::value_schema(report))
            .await?;
        Ok(SchemaIds { key, value })
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

    /// A CA certificate (its key was discarded).
    const SOME_CA: &str = "-----BEGIN CERTIFICATE-----\n\
MIIB2TCCAX+gAwIBAgIUaRJzuLtsI/fGnYFXVCEXe1R+ecswCgYIKoZIzj0EAwIw\n\
OTE3MDUGA1UEAwwuZ2xhZGx5LWthZmthIHVudHJ1c3RlZCB0ZXN0IENBIChrZXkg\n\
ZGlzY2FyZGVkKTAgFw0yNjExMjgwODQ1MTFaGA8yMTI2MTEwNDA4NDUxMVowOTE3\n\
MDUGA1UEAwwuZ2xhZGx5LWthZmthIHVudHJ1c3RlZCB0ZXN0IENBIChrZXkgZGlz\n\
Y2FyZGVkKTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMAx6u3kMVF3844LiUqL\n\
Kd/XwR2aRwYKCFL/KKzB0Y57zdTgJBaxYAtdTf5IBk0p6oLTFXU1NY62DHXq5lfw\n\
JZmjYzBhMB0GA1UdDgQWBBSNQItRx1vu5lbfmBAp5027qYW6gTAfBgNVHSMEGDAW\n\
gBSNQItRx1vu5lbfmBAp5027qYW6gTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB\n\
/wQEAwIBBjAKBggqhkjOPQQDAgNIADBFAiBD1/zQ5Wd4gxLdf1McomxwHwaxHqAQ\n\
G6016AmIYgjb/gIhAJ0UbNWqecGI+mJf0gbtGJBpvu8mP9/TXP7V02X9eQp1\n\
-----END CERTIFICATE-----\n";

    #[test]
    fn ca_file_is_read_and_checked_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let with = |url: &str, ca: std::path::PathBuf| RegistrySettings {
            url: url.into(),
            ca_file: Some(ca),
            ..RegistrySettings::default()
        };
        let good = with("https://r/apis/ccompat/v7", file("ca.pem", SOME_CA));
        good.validate().unwrap();
        assert_eq!(good.ca_certificates().unwrap().len(), 1);
        RegistryClient::new(&good).unwrap();

        let broken =
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        for (settings, says) in [
            (
                with("https://r", dir.path().join("missing.pem")),
                "cannot read",
            ),
            (
                with("https://r", file("empty.pem", "hello\n")),
                "holds no certificate",
            ),
            (
                with("https://r", file("broken.pem", broken)),
                "cannot be a CA",
            ),
            (with("http://r", file("ca2.pem", SOME_CA)), "not https://"),
        ] {
            let err = settings.validate().unwrap_err().to_string();
            assert!(err.starts_with("config key `registry.ca_file`: "), "{err}");
            assert!(err.contains(says), "{err}");
        }
    }

    #[tokio::test]
    async fn a_refused_login_names_the_key_to_fix() {
        let app = Router::new()
            .route("/locked/subjects", get(|| async { S::UNAUTHORIZED }))
            .route("/forbidden/subjects", get(|| async { S::FORBIDDEN }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let err = |url: String, login: bool| async move {
            let s = if login {
                settings(&url)
            } else {
                RegistrySettings {
                    url,
                    ..RegistrySettings::default()
                }
            };
            let e = RegistryClient::new(&s).unwrap().check().await.unwrap_err();
            assert!(matches!(e, RegistryError::Refused { .. }), "{e:?}");
            e.to_string()
        };
        let e = err(format!("http://{addr}/locked"), true).await;
        assert!(e.starts_with("config key `registry.password`: "), "{e}");
        assert!(e.contains("401") && e.contains("`key`"), "{e}");
        let e = err(format!("http://{addr}/locked"), false).await;
        assert!(e.starts_with("config key `registry.username`: "), "{e}");
        let e = err(format!("http://{addr}/forbidden"), true).await;
        assert!(
            e.starts_with("config key `registry.username`: ") && e.contains("403"),
            "{e}"
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
