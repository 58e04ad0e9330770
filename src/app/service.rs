//! `run` and `run --once`: the worker, and the wiring of what runs beside it. SIGTERM/SIGINT
//! stop both; `run` (the service) also serves `/metrics` when asked, tells systemd it is
//! ready, feeds the watchdog and `STATUS=`, and keeps the worker's heartbeat row, handing
//! `ops` the worker's store, name and vitals (`ops` never sees the worker itself).

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use crate::ops;
use crate::worker::Worker;

/// Runs `worker` until SIGTERM/SIGINT, or with `once` until nothing is due; the service
/// serves `/metrics` on `metrics_addr` when given.
pub(super) async fn run(
    worker: &Worker,
    once: bool,
    metrics_addr: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    if once {
        return run_once(worker, shutdown).await;
    }
    if let Some(addr) = metrics_addr {
        ops::prometheus::serve(addr).await?;
    }
    ops::systemd::ready("ready: polling for jobs");
    tokio::spawn(ops::systemd::heartbeat(
        worker.store().clone(),
        worker.vitals().clone(),
        shutdown.clone(),
    ));
    serve(worker, shutdown).await
}

/// `run --once`: every job due now, then a summary line in the log.
async fn run_once(worker: &Worker, shutdown: CancellationToken) -> anyhow::Result<()> {
    let summary = worker.run_until_idle(shutdown).await?;
    tracing::info!(
        applied = summary.applied,
        adopted = summary.adopted,
        processed = summary.processed,
        lost_leases = summary.lost_leases,
        "run --once finished"
    );
    Ok(())
}

/// `run`: the service loop, with its heartbeat row kept fresh through the drain and marked
/// stopped once the drain has finished.
async fn serve(worker: &Worker, shutdown: CancellationToken) -> anyhow::Result<()> {
    let owner = &worker.settings().owner;
    let presence_stop = CancellationToken::new();
    let presence = tokio::spawn(ops::presence::keep(
        worker.store().clone(),
        owner.clone(),
        worker.vitals().clone(),
        presence_stop.clone(),
    ));
    let ran = worker.run(shutdown).await;
    presence_stop.cancel();
    if let Err(e) = presence.await {
        tracing::debug!(error = %e, "the heartbeat task ended abnormally");
    }
    if ran.is_ok() {
        ops::presence::stopped(worker.store(), owner).await;
    }
    Ok(ran?)
}

/// Cancels `shutdown` on SIGTERM (what systemd sends) or SIGINT, and tells systemd.
async fn stop_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; stop with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
    ops::systemd::stopping();
    shutdown.cancel();
}
