//! The HTTP listener: `/metrics`, `/health/live`, `/health/ready`.

use std::time::Instant;

use super::metrics::Metrics;

/// A running `/metrics` + health listener; stops when dropped.
#[derive(Debug)]
pub struct ObserveServer {
    /// The bound address.
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ObserveServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `GET /metrics` (Prometheus text), `GET /health/live` (always 200 while the process
/// runs) and `GET /health/ready` (200 when [`Metrics::is_ready`], else 503 naming the reports
/// that are not and why) on `listen`. An empty `listen` disables it.
pub async fn serve(
    listen: &str,
    metrics: std::sync::Arc<Metrics>,
) -> std::io::Result<Option<ObserveServer>> {
    use axum::http::StatusCode;
    use axum::routing::get;
    if listen.trim().is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let m1 = metrics.clone();
    let m2 = metrics;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m1.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route("/health/live", get(|| async { "live" }))
        .route(
            "/health/ready",
            get(move || {
                let m = m2.clone();
                async move {
                    match m.readiness_at(Instant::now()) {
                        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready\n{why}\n"),
                        ),
                    }
                }
            }),
        );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    tracing::info!(%addr, "metrics and health on http://{addr}/metrics");
    Ok(Some(ObserveServer { addr, task }))
}
