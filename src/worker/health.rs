//! Whether the database is answering, as the worker sees it: the first failure of a claim, a
//! lease renewal or a finishing write starts an outage (one warning, with the cause), the next
//! success ends it (one line saying how long it lasted). Each failure is also logged where it
//! happens; this makes the outage itself visible, however it was noticed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::store::StoreError;

/// Shared outage state of one worker.
#[derive(Clone, Default)]
pub(super) struct DbHealth {
    since: Arc<Mutex<Option<Instant>>>,
}

impl DbHealth {
    /// Records a failed statement. Lock conflicts are not outages.
    pub(super) fn failed(&self, during: &str, error: &StoreError) {
        if error.is_lock_conflict() || !matches!(error, StoreError::Database(_)) {
            return;
        }
        let mut since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        if since.is_none() {
            *since = Some(Instant::now());
            tracing::warn!(during, error = %error,
                "database unreachable or failing; jobs wait (nothing is lost) until it answers again");
        }
    }

    /// Records a statement that worked; ends an outage if one was on.
    pub(super) fn ok(&self) {
        let mut since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(start) = since.take() {
            tracing::info!(
                outage_secs = format!("{:.1}", start.elapsed().as_secs_f64()),
                "database reachable again; resuming"
            );
        }
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
        health.ok();
        assert!(health.since.lock().unwrap().is_none());
    }
}
