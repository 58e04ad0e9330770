//! Prometheus metrics (off unless `JETPACK_METRICS_ADDR` is set): the `metrics` recorder from
//! metrics-exporter-prometheus, served at `/metrics` by a small axum server, and the names the
//! rest of the crate records under. Recording is a no-op when no recorder is installed.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Counter: jobs claimed (label `action`).
pub const JOBS_CLAIMED: &str = "jetpack_jobs_claimed_total";
/// Counter: jobs finished done (label `action`).
pub const JOBS_DONE: &str = "jetpack_jobs_done_total";
/// Counter: jobs finished failed (label `action`).
pub const JOBS_FAILED: &str = "jetpack_jobs_failed_total";
/// Counter: attempts that failed transiently and were queued again.
pub const JOBS_RETRIED: &str = "jetpack_jobs_retried_total";
/// Counter: attempts that left a plan waiting on DNS (first wait and re-checks).
pub const JOBS_WAITING_DNS: &str = "jetpack_jobs_waiting_dns_total";
/// Counter: jobs released unfinished at shutdown.
pub const JOBS_RELEASED: &str = "jetpack_jobs_released_total";
/// Counter: attempts stopped before an acting call because the lease could not be confirmed.
pub const JOBS_ABANDONED: &str = "jetpack_jobs_abandoned_total";
/// Counter: jobs given back to the queue without a partner-API call, because their account's
/// breaker was open or its rate limit saturated (label `by`: `breaker`, `rate_limit`).
pub const API_CALLS_HELD: &str = "jetpack_api_calls_held_total";
/// Counter: requests applied (Create, Terminate, Retry from any source).
pub const REQUESTS_APPLIED: &str = "jetpack_requests_applied_total";
/// Gauge: jobs by state (label `state`).
pub const QUEUE_DEPTH: &str = "jetpack_queue_depth";
/// Gauge: seconds the oldest due, unclaimed job has waited.
pub const OLDEST_DUE_AGE: &str = "jetpack_oldest_due_job_age_seconds";
/// Gauge: jobs in flight in this process.
pub const IN_FLIGHT: &str = "jetpack_jobs_in_flight";
/// Histogram: partner API call duration (labels `endpoint`, `outcome`).
pub const API_LATENCY: &str = "jetpack_api_request_duration_seconds";
/// Counter: finished jobs pruned by housekeeping.
pub const JOBS_PRUNED: &str = "jetpack_jobs_pruned_total";

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
