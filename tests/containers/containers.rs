//! Kafka (KRaft, one node) and the Apicurio registry as containers, started once per test
//! process and removed when it exits. Both listen on free ports picked here: published as
//! the same port numbers on a normal Docker host, or bound on the host's loopback where the
//! engine has no bridge (`GLADLY_DOCKER_NETWORK=host`, as `scripts/docker up` exports).

use std::time::{Duration, Instant};

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, ContainerRequest, GenericImage, ImageExt};

/// The images, the same the compose file names (`docker-compose.yml`).
const KAFKA: (&str, &str) = ("apache/kafka", "4.1.2");
const REGISTRY: (&str, &str) = ("apicurio/apicurio-registry", "3.3.3");

/// The containers, removed by [`remove_at_exit`] when the process ends (statics are never
/// dropped, and the test harness ends with `exit`).
static RUNNING: std::sync::Mutex<Vec<Container<GenericImage>>> = std::sync::Mutex::new(Vec::new());

extern "C" fn remove_at_exit() {
    if let Ok(mut running) = RUNNING.lock() {
        running.clear();
    }
}

/// Starts both containers and returns (bootstrap servers, registry URL). On a thread of its
/// own: the blocking runner must not run inside the calling test's async runtime.
pub fn start() -> (String, String) {
    std::thread::spawn(start_blocking)
        .join()
        .expect("the stack's containers start")
}

/// Whether the engine has no bridge and containers share the host's network.
fn host_network() -> bool {
    std::env::var("GLADLY_DOCKER_NETWORK").is_ok_and(|n| n == "host")
}

/// `request` on the host's network, or with `ports` published under the same numbers.
fn network(
    mut request: ContainerRequest<GenericImage>,
    ports: &[u16],
) -> ContainerRequest<GenericImage> {
    if host_network() {
        return request.with_network("host");
    }
    for p in ports {
        request = request.with_mapped_port(*p, p.tcp());
    }
    request
}

fn start_blocking() -> (String, String) {
    // SAFETY: registers a plain function that takes no arguments and touches only a mutex
    let registered = unsafe { libc::atexit(remove_at_exit) };
    assert_eq!(registered, 0, "atexit");
    let started = Instant::now();
    let kafka = kafka();
    let registry = registry();
    eprintln!(
        "containers: {} and {} up in {:?} ({kafka}, {registry})",
        KAFKA.0,
        REGISTRY.0,
        started.elapsed()
    );
    (kafka, registry)
}

/// One KRaft node (broker and controller) with the test stack's settings
/// (scripts/stack/server.properties.in), configured the official image's way: KAFKA_*
/// variables.
fn kafka() -> String {
    let [port, controller] = super::support::service::free_ports();
    let host = if host_network() {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let image = GenericImage::new(KAFKA.0, KAFKA.1)
        .with_wait_for(WaitFor::message_on_either_std("Kafka Server started"));
    let mut request = image
        .with_env_var("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qg")
        .with_startup_timeout(Duration::from_secs(180));
    for (k, v) in [
        ("KAFKA_NODE_ID", "1".to_string()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".into()),
        (
            "KAFKA_LISTENERS",
            format!("PLAINTEXT://{host}:{port},CONTROLLER://127.0.0.1:{controller}"),
        ),
        (
            "KAFKA_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        ),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
        (
            "KAFKA_CONTROLLER_QUORUM_VOTERS",
            format!("1@127.0.0.1:{controller}"),
        ),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".into(),
        ),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".into()),
        ("KAFKA_NUM_PARTITIONS", "1".into()),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "1".into()),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".into()),
        ("KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS", "1".into()),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
        ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false".into()),
        ("KAFKA_LOG_CLEANER_BACKOFF_MS", "250".into()),
        ("KAFKA_LOG_CLEANER_DEDUPE_BUFFER_SIZE", "8388608".into()),
        ("KAFKA_HEAP_OPTS", "-Xms64m -Xmx512m".into()),
    ] {
        request = request.with_env_var(k, v);
    }
    let container = network(request, &[port])
        .start()
        .unwrap_or_else(|e| panic!("{}:{} starts: {e}", KAFKA.0, KAFKA.1));
    RUNNING.lock().unwrap().push(container);
    format!("127.0.0.1:{port}")
}

/// The registry on an in-memory database, deletions allowed (like scripts/stack/stack), its
/// compatibility set to BACKWARD (Confluent's default) once it answers.
fn registry() -> String {
    let [port, management] = super::support::service::free_ports();
    let host = if host_network() {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let image = GenericImage::new(REGISTRY.0, REGISTRY.1)
        .with_wait_for(WaitFor::message_on_either_std("Listening on"));
    let mut request = image.with_startup_timeout(Duration::from_secs(180));
    for (k, v) in [
        ("QUARKUS_HTTP_HOST", host.to_string()),
        ("QUARKUS_HTTP_PORT", port.to_string()),
        ("QUARKUS_MANAGEMENT_HOST", host.to_string()),
        ("QUARKUS_MANAGEMENT_PORT", management.to_string()),
        ("QUARKUS_OTEL_SDK_DISABLED", "true".into()),
        ("APICURIO_REST_DELETION_ARTIFACT_ENABLED", "true".into()),
        (
            "APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED",
            "true".into(),
        ),
        ("APICURIO_REST_DELETION_GROUP_ENABLED", "true".into()),
    ] {
        request = request.with_env_var(k, v);
    }
    let container = network(request, &[port])
        .start()
        .unwrap_or_else(|e| panic!("{}:{} starts: {e}", REGISTRY.0, REGISTRY.1));
    RUNNING.lock().unwrap().push(container);
    let url = format!("http://127.0.0.1:{port}/apis/ccompat/v7");
    backward_compatibility(&url);
    url
}

/// Waits until the registry lists subjects, then sets its compatibility to BACKWARD.
fn backward_compatibility(url: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let answer = client
                .get(format!("{url}/subjects"))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "the registry answers at {url}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let put = client
            .put(format!("{url}/config"))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(r#"{"compatibility":"BACKWARD"}"#)
            .send()
            .await
            .expect("PUT /config");
        assert!(put.status().is_success(), "PUT /config: {}", put.status());
    });
}
