//! How the worker is doing, as the worker sees it: its [`Vitals`], written by the worker and
//! read by the reporters in `ops` (systemd's status and watchdog, the heartbeat row), which
//! the entry point (`app`) hands them, so `ops` never needs the worker itself.
//!
//! - Whether the database is answering: the first failure of a claim, a lease renewal or a
//!   finishing write starts an outage (one warning, with the cause), the next success ends it
//!   (one line saying how long it lasted). Each failure is also logged where it happens; this
//!   makes the outage itself visible, however it was noticed, and the systemd status line
//!   reports it.
//! - Whether its loop makes progress ([`Liveness`]): the loop says, at every turn and before
//!   every wait, by when it will be back; the systemd watchdog is fed only while it keeps
//!   that word. A database outage does not stop the loop (it backs off and turns again), so
//!   it never gets the worker restarted in the middle of API calls; a loop that hangs does.
//! - How many jobs are in their partner-API calls ([`InFlight`]: each holds a call slot).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::store::StoreError;
use crate::text::Chain;

/// The worker's vital signs, shared (cheap to clone: every part is behind an `Arc`).
#[derive(Clone, Default)]
pub struct Vitals {
    /// Whether the database is answering.
    pub db: DbHealth,
    /// Whether the loop makes progress.
    pub liveness: Liveness,
    /// Jobs in their partner-API calls in this process.
    pub in_flight: InFlight,
}

/// Jobs in their partner-API calls in this process (each holds a call slot): each counted
/// while the guard `start` returns for it lives.
#[derive(Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// How many jobs are in their calls right now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one more job in its calls until the guard is dropped.
    pub(crate) fn start(&self) -> Counted {
        self.0.fetch_add(1, Ordering::Relaxed);
        Counted(self.0.clone())
    }
}

/// Counts a job in its calls for as long as it lives.
pub(crate) struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Shared outage state of one worker.
#[derive(Clone, Default)]
pub struct DbHealth {
    since: Arc<Mutex<Option<Instant>>>,
    /// The text of the last database error seen (kept after the outage ends: the heartbeat
    /// row shows it).
    last_error: Arc<Mutex<Option<String>>>,
}

impl DbHealth {
    /// Records a failed statement. Lock conflicts are not outages.
    pub(crate) fn failed(&self, during: &str, error: &StoreError) {
        let outage =
            error.is_unavailable() || matches!(error, StoreError::Database(_) | StoreError::Tls(_));
        if error.is_lock_conflict() || !outage {
            return;
        }
        self.noted(error);
        let mut since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        if since.is_none() {
            *since = Some(Instant::now());
            tracing::warn!(during, error = %Chain(error),
                "database unreachable or failing; jobs wait (nothing is lost) until it answers again");
        }
    }

    /// Keeps `error`'s text as the last database error, without starting an outage (the
    /// heartbeat's own failed writes).
    pub fn noted(&self, error: &StoreError) {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *last = Some(Chain(error).to_string());
    }

    /// The text of the last database error seen, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How long the database has been failing, when it is.
    pub fn outage(&self) -> Option<Duration> {
        let since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        since.map(|start| start.elapsed())
    }

    /// Records a statement that worked; ends an outage if one was on.
    pub(crate) fn ok(&self) {
        let mut since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(start) = since.take() {
            tracing::info!(
                outage_secs = format!("{:.1}", start.elapsed().as_secs_f64()),
                "database reachable again; resuming"
            );
        }
    }
}

/// The loop's word on when it will turn again, on the monotonic clock.
#[derive(Clone)]
pub struct Liveness {
    beat: Arc<Mutex<Beat>>,
}

#[derive(Clone, Copy)]
struct Beat {
    at: Instant,
    back_within: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            beat: Arc::new(Mutex::new(Beat {
                at: Instant::now(),
                back_within: Duration::ZERO,
            })),
        }
    }
}

impl Liveness {
    /// The loop is here now, and will be back within `back_within` (zero while it works
    /// through a turn; the wait before the next turn when it sleeps).
    pub(crate) fn beat(&self, back_within: Duration) {
        let mut beat = self.beat.lock().unwrap_or_else(PoisonError::into_inner);
        *beat = Beat {
            at: Instant::now(),
            back_within,
        };
    }

    /// How far the loop is behind its word (zero when it is on time).
    pub fn overdue(&self) -> Duration {
        let beat = *self.beat.lock().unwrap_or_else(PoisonError::into_inner);
        beat.at.elapsed().saturating_sub(beat.back_within)
    }

    /// Whether the loop kept its word, give or take `grace`.
    pub fn is_alive(&self, grace: Duration) -> bool {
        self.overdue() <= grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_starts_on_a_database_error_and_ends_on_the_next_success() {
        let health = DbHealth::default();
        health.failed("claim", &StoreError::NotMigrated);
        assert!(
            health.since.lock().unwrap().is_none(),
            "not a database error"
        );
        health.failed("claim", &StoreError::Database(sqlx::Error::PoolTimedOut));
        let first = *health.since.lock().unwrap();
        assert!(first.is_some());
        health.failed("finish", &StoreError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(*health.since.lock().unwrap(), first, "one outage, not two");
        assert!(health.outage().is_some());
        assert_eq!(
            health.last_error().as_deref(),
            Some("database error: pool timed out while waiting for an open connection")
        );
        health.ok();
        assert!(health.since.lock().unwrap().is_none());
        assert!(health.outage().is_none());
        assert!(health.last_error().is_some(), "kept for the heartbeat row");
    }

    #[test]
    fn a_loop_is_alive_while_it_keeps_its_word_and_overdue_after() {
        let live = Liveness::default();
        live.beat(Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(live.overdue(), Duration::ZERO, "sleeping as announced");
        assert!(live.is_alive(Duration::ZERO));
        live.beat(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(60));
        assert!(live.overdue() >= Duration::from_millis(60));
        assert!(
            !live.is_alive(Duration::from_millis(30)),
            "a turn that hangs"
        );
        assert!(live.is_alive(Duration::from_secs(10)), "within the grace");
        live.beat(Duration::ZERO);
        assert!(live.is_alive(Duration::from_millis(30)), "back on time");
    }
}
