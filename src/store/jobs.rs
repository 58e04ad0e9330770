//! Writing `mod_jetpack_jobs` rows outside a claim or a finish: the one INSERT that creates a
//! job (for a request, `requests`, or for the request that waited behind a finishing job,
//! `finish`), and lease renewal (which may also extend a lease to cover an acting call).
//! Claiming is `claim`, finishing and giving back are `finish`; reading the table back and
//! maintenance live in `report`.

use std::time::Duration;

use sqlx::{MySql, Transaction};

use super::{ClaimedJob, Result, Store, within};
use crate::domain::{Action, JobId, JobState, RequestedBy, Target};

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

/// Queues a job for `target`, due now. A new provision (or change) inherits "may have acted
/// unseen" from the target's latest provision that did not finish done (a lost answer, a
/// release, a superseded retry, or the job just ended in the same transaction), so it asks
/// the status endpoint before trusting the ledger or calling.
pub(super) async fn insert_job(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    action: Action,
    by: RequestedBy,
) -> Result<JobId> {
    let unknown = action.provisions() && earlier_provision_unknown(tx, target).await?;
    let done = sqlx::query(
        "INSERT INTO mod_jetpack_jobs
           (service_id, addon_id, action, state, run_at, outcome_unknown, requested_by, created_at,
            updated_at)
         VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6), ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .bind(action.as_str())
    .bind(JobState::Queued.as_str())
    .bind(unknown)
    .bind(by.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(JobId(done.last_insert_id()))
}

/// Whether the target's latest provision (or change) job ended other than done with its
/// outcome unknown.
async fn earlier_provision_unknown(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
) -> Result<bool> {
    let row: Option<(String, bool)> = sqlx::query_as(
        "SELECT state, outcome_unknown FROM mod_jetpack_jobs
         WHERE service_id = ? AND addon_id = ? AND action IN ('provision', 'change')
         ORDER BY id DESC LIMIT 1",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row
        .is_some_and(|(state, unknown)| unknown && JobState::parse(&state) != Some(JobState::Done)))
}
