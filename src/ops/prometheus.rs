//! Prometheus metrics (off unless `JETPACK_METRICS_ADDR` is set): the `metrics` recorder from
//! metrics-exporter-prometheus, served at `/metrics` by a small axum server. What is recorded,
//! and under which names, is `crate::metrics`.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Errors starting the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Another recorder is installed already.
    #[error("a metrics recorder is installed already")]
    Install,
    /// The histogram buckets were refused.
    #[error("configuring the metrics recorder")]
    Build(#[source] metrics_exporter_prometheus::BuildError),
    /// The address could not be bound.
    #[error("listening on {addr} for /metrics")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Installs the global recorder and serves `/metrics` on `addr` until the process ends.
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr, MetricsError> {
    let handle = install()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the /metrics server stopped");
        }
    });
    tracing::info!(addr = %bound, "serving Prometheus metrics at /metrics");
    Ok(bound)
}

fn install() -> Result<PrometheusHandle, MetricsError> {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0])
        .map_err(MetricsError::Build)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::Install)?;
    Ok(handle)
}
