//! Queries on `mod_jetpack_jobs` that keep a claimed job's lease: renewal (which may also
//! extend it to cover an acting call). Release on shutdown is in `finish`. Claiming is `claim`, creating
//! jobs from requests is `requests`, finishing is `finish`; reading the table back and
//! maintenance live in `report`.

use std::time::Duration;

use super::{ClaimedJob, Result, Store, within};

/// A duration in whole microseconds, for `INTERVAL ? MICROSECOND`.
pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Store {
    /// Makes a held lease last at least `at_least` from now (never shortens it); false when
    /// the lease was lost (expired and taken over). Gives up after `timeout`, so a hung
    /// connection cannot hold the renewal.
    pub async fn renew_lease(
        &self,
        job: &ClaimedJob,
        at_least: Duration,
        timeout: Duration,
    ) -> Result<bool> {
        let renewal = async {
            let done = sqlx::query(
                "UPDATE mod_jetpack_jobs
                 SET lease_expires_at = GREATEST(lease_expires_at,
                                                 UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND),
                     run_at = lease_expires_at, updated_at = UTC_TIMESTAMP(6)
                 WHERE id = ? AND lease_token = ? AND state = 'running'",
            )
            .bind(micros(at_least))
            .bind(job.id)
            .bind(&job.lease_token)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        };
        within(timeout, renewal).await
    }
}
