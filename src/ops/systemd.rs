//! systemd integration for `Type=notify` units: `READY=1` once the database answers and the
//! tables are current, `WATCHDOG=1` from a task that proves the database still answers,
//! `STATUS=` with live counts, `STOPPING=1` on shutdown. Outside systemd (no `NOTIFY_SOCKET`)
//! every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::ops::metrics as m;
use crate::store::Store;
use crate::worker::Worker;

/// Tells systemd the service is up.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the service is stopping (drain in progress).
pub fn stopping() {
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: draining in-flight jobs"),
    ]);
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "systemd notification not sent");
    }
}

/// Every `interval` (half the watchdog period when systemd set one, else 15 s): checks that
/// the database answers, then pings the watchdog, refreshes `STATUS=` and the queue gauges.
/// A database that does not answer means no ping, so systemd restarts a wedged worker.
pub async fn heartbeat(store: Store, worker: Worker, shutdown: CancellationToken) {
    let watchdog = sd_notify::watchdog_enabled();
    let interval = watchdog.map_or(Duration::from_secs(15), |d| {
        (d / 2).max(Duration::from_secs(1))
    });
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.queue_depth().await {
            Ok(depth) => {
                for (state, n) in &depth.counts {
                    metrics::gauge!(m::QUEUE_DEPTH, "state" => state.clone()).set(*n as f64);
                }
                metrics::gauge!(m::OLDEST_DUE_AGE).set(depth.oldest_due_age_secs as f64);
                let in_flight = worker.in_flight();
                metrics::gauge!(m::IN_FLIGHT).set(in_flight as f64);
                let count = |s: &str| {
                    depth
                        .counts
                        .iter()
                        .find(|(st, _)| st == s)
                        .map_or(0, |(_, n)| *n)
                };
                let status = format!(
                    "in flight {in_flight}; queued {}, waiting on DNS {}, failed {}, done {}",
                    count("queued"),
                    count("waiting_dns"),
                    count("failed"),
                    count("done")
                );
                let mut states = vec![NotifyState::Status(&status)];
                if watchdog.is_some() {
                    states.push(NotifyState::Watchdog);
                }
                notify(&states);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the database did not answer the heartbeat; watchdog not fed");
                notify(&[NotifyState::Status("database not answering; retrying")]);
            }
        }
    }
}
