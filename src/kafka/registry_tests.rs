//! The registry client against fake registries: paths, basic auth, caching, error reasons,
//! refused logins, and `registry.ca_file`.

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
                Json(serde_json::json!({"error_code": 409, "message": "field x has no default"})),
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
                    (
                        S::NOT_FOUND,
                        Json(
                            serde_json::json!({"error_code": 40403, "message": "Schema not found"}),
                        ),
                    )
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
