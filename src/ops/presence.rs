//! The worker's row in `mod_jetpack_workers`, so WHMCS (the service tab, the queue dashboard)
//! and `jetpack-worker status` can tell whether a worker is running: one small upsert every
//! [`EVERY`] (owner, host, pid, version, jobs in flight, the last database error), none per
//! job; `stopped_at` on a clean shutdown; rows unseen for a week deleted hourly. A database
//! outage costs nothing but a missed beat: each write is bounded by the store's timeout, its
//! failure is kept as the last database error and the next tick tries again. `run --once`
//! does not register (it is not a service that WHMCS could rely on).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::health::Vitals;
use crate::store::{Heartbeat, Store};
use crate::text::Chain;

/// How often the row is refreshed.
pub const EVERY: Duration = Duration::from_secs(5);

/// How often rows of workers gone for a week are deleted.
const FORGET_EVERY: Duration = Duration::from_secs(3600);

/// Refreshes the row of the worker named `owner` (with what its `vitals` say) every [`EVERY`]
/// until `stop` is cancelled. Cancel it once the worker's drain has finished, then call
/// [`stopped`].
pub async fn keep(store: Store, owner: String, vitals: Vitals, stop: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut forgot: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        beat(&store, &owner, &vitals).await;
        if forgot.is_none_or(|at| at.elapsed() >= FORGET_EVERY) {
            forgot = Some(Instant::now());
            forget(&store).await;
        }
    }
}

/// One upsert of this worker's row.
async fn beat(store: &Store, owner: &str, vitals: &Vitals) {
    let last_db_error = vitals.db.last_error();
    let beat = Heartbeat {
        owner,
        host: owner_host(owner),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION"),
        in_flight: u32::try_from(vitals.in_flight.count()).unwrap_or(u32::MAX),
        last_db_error: last_db_error.as_deref(),
    };
    if let Err(e) = store.worker_beat(&beat).await {
        tracing::debug!(error = %Chain(&e), "the worker's heartbeat row was not written; next tick tries again");
        vitals.db.noted(&e);
    }
}

/// Deletes the rows of workers stopped or unseen for more than a week.
async fn forget(store: &Store) {
    match store.forget_old_workers().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "forgot workers unseen for more than 7 days"),
        Err(e) => {
            tracing::debug!(error = %Chain(&e), "old worker rows not deleted; next hour tries again")
        }
    }
}

/// Marks the worker named `owner` stopped (after a clean shutdown's drain). A failure is only
/// logged: the row then ages like a crashed worker's.
pub async fn stopped(store: &Store, owner: &str) {
    if let Err(e) = store.worker_stopped(owner).await {
        tracing::warn!(error = %Chain(&e), "could not mark this worker stopped in mod_jetpack_workers");
    }
}

/// The host part of an owner string (`host:pid:random`).
fn owner_host(owner: &str) -> &str {
    owner.rsplitn(3, ':').last().unwrap_or(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_owner_without_pid_and_random() {
        assert_eq!(owner_host("web-1:4242:0a1b2c3d"), "web-1");
        assert_eq!(owner_host("odd:name:1:ff"), "odd:name");
        assert_eq!(owner_host("plain"), "plain");
    }
}
