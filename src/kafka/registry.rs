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

    /// The latest schema registered under `subject` and its id
    /// (`GET /subjects/{subject}/versions/latest`); `None` when the subject has none.
    pub async fn latest(&self, subject: &str) -> Result<Option<(u32, String)>, RegistryError> {
        #[derive(Deserialize)]
        struct Latest {
            id: u32,
            schema: String,
        }
        let url = self.url(&["subjects", subject, "versions", "latest"]);
        let (status, body) = self.send("GET", url.clone(), None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Self::status_error("GET", &url, status, &body).2);
        }
        let Latest { id, schema } = Self::parse("GET", &url, &body)?;
        Ok(Some((id, schema)))
    }

    /// Registers a built-in report's key and value schemas under `<topic>-key` and
    /// `<topic>-value`.
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
    pub async fn register_key(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
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
#[path = "registry_tests.rs"]
mod tests;
