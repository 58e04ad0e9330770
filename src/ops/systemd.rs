//! systemd integration for `Type=notify` units: `READY=1` once the database answers and the
//! tables are current, `WATCHDOG=1` while the worker's loop makes progress (a database outage
//! is reported, not punished), `STATUS=` with live counts or the outage, `STOPPING=1` on
//! shutdown. Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::domain::JobState;
use crate::health::Vitals;
use crate::metrics as m;
use crate::store::Store;
use crate::text::Chain;

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

/// Every `interval` (half the watchdog period when systemd set one, else 15 s): pings the
/// watchdog while the worker's loop keeps its word (the [`Liveness`] of its `vitals`), whether
/// or not the database answers, and refreshes `STATUS=` and the queue gauges. A database
/// outage is reported in `STATUS=` and the log, never answered with a restart (that would cut
/// API calls in flight and lose their answers); a loop that stops turning stops the pings, so
/// systemd restarts a worker that is really stuck.
///
/// [`Liveness`]: crate::health::Liveness
pub async fn heartbeat(store: Store, vitals: Vitals, shutdown: CancellationToken) {
    let watchdog = sd_notify::watchdog_enabled();
    let interval = watchdog.map_or(Duration::from_secs(15), |d| {
        (d / 2).max(Duration::from_millis(500))
    });
    // How late the loop may be before the pings stop: the watchdog period itself, so a
    // turn blocked for longer than systemd would wait is a stuck worker.
    let grace = watchdog.unwrap_or(Duration::from_secs(120));
    let mut tick = tokio::time::interval(interval);
    let mut stuck_logged = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let alive = vitals.liveness.is_alive(grace);
        log_liveness(&vitals, alive, &mut stuck_logged);
        let status = status_line(&store, &vitals, alive, interval).await;
        let mut states = vec![NotifyState::Status(&status)];
        if alive && watchdog.is_some() {
            states.push(NotifyState::Watchdog);
        }
        notify(&states);
    }
}

/// One error line when the loop stops keeping its word, one line when it is back.
fn log_liveness(vitals: &Vitals, alive: bool, stuck_logged: &mut bool) {
    if !alive && !*stuck_logged {
        tracing::error!(
            overdue_secs = vitals.liveness.overdue().as_secs(),
            "the worker loop has stopped making progress; the watchdog is no longer fed, so systemd restarts the worker"
        );
    } else if alive && *stuck_logged {
        tracing::info!("the worker loop is making progress again; feeding the watchdog");
    }
    *stuck_logged = !alive;
}

/// `STATUS=`: the live counts, or the database outage (how long, and that nothing is lost).
/// The counts are given up after `patience`, so a silent database never holds up the pings.
async fn status_line(store: &Store, vitals: &Vitals, alive: bool, patience: Duration) -> String {
    let in_flight = vitals.in_flight.count();
    metrics::gauge!(m::IN_FLIGHT).set(in_flight as f64);
    if !alive {
        let overdue = vitals.liveness.overdue().as_secs();
        return format!("stuck: the worker loop is {overdue}s overdue; in flight {in_flight}");
    }
    let counted = tokio::time::timeout(patience, store.queue_depth()).await;
    let depth = match counted {
        Ok(Ok(depth)) => depth,
        Ok(Err(e)) => return outage_line(vitals, in_flight, &Chain(&e).to_string()),
        Err(_) => return outage_line(vitals, in_flight, "timed out"),
    };
    for (state, n) in &depth.counts {
        metrics::gauge!(m::QUEUE_DEPTH, "state" => state.as_str()).set(*n as f64);
    }
    metrics::gauge!(m::OLDEST_DUE_AGE).set(depth.oldest_due_age_secs as f64);
    counts_line(in_flight, &depth.counts)
}

/// The live counts of `STATUS=`, from the unfinished states the queue gauges count (finished
/// jobs are not counted there: counting them would read the whole table every few seconds).
fn counts_line(in_flight: usize, counts: &[(JobState, u64)]) -> String {
    let count = |s: JobState| {
        counts
            .iter()
            .find(|(st, _)| *st == s)
            .map_or(0, |(_, n)| *n)
    };
    format!(
        "in flight {in_flight}; queued {}, running {}, waiting on DNS {}, failed {}",
        count(JobState::Queued),
        count(JobState::Running),
        count(JobState::WaitingDns),
        count(JobState::Failed)
    )
}

/// `STATUS=` while the database does not answer.
fn outage_line(vitals: &Vitals, in_flight: usize, error: &str) -> String {
    tracing::debug!(%error, "the database did not answer the heartbeat");
    let secs = vitals.db.outage().map_or(0, |d| d.as_secs());
    format!(
        "database not answering ({secs}s); in flight {in_flight}; jobs wait, nothing is lost; retrying"
    )
}

#[cfg(test)]
mod tests {
    use super::counts_line;
    use crate::domain::JobState;

    #[test]
    fn the_status_line_shows_the_counts_it_has_and_no_invented_done_count() {
        let counts = vec![
            (JobState::Queued, 3),
            (JobState::Running, 2),
            (JobState::WaitingDns, 1),
            (JobState::Failed, 4),
        ];
        assert_eq!(
            counts_line(2, &counts),
            "in flight 2; queued 3, running 2, waiting on DNS 1, failed 4"
        );
        assert!(!counts_line(0, &[]).contains("done"));
    }
}
