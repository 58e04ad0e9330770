//! Queries on `mod_jetpack_jobs` that move a job through its life: enqueue with the
//! one-unfinished-job-per-service rule, lease renewal and release. Claiming is `claim`
//! (`src/store/claim.rs`). Reading the table back (status report, queue depth) and
//! maintenance (requeue, prune) live in `report` (`src/store/report.rs`).

use std::time::Duration;

use sqlx::{MySql, Row};

use super::{ClaimedJob, Result, Store, StoreError};
use crate::domain::{Action, JobId, JobState, RequestedBy, ServiceId};

/// What `enqueue` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// A new job was queued.
    Queued(JobId),
    /// The same action was already unfinished for the service (a queued one is now due).
    AlreadyPending(JobId),
    /// A provision that was not in flight was cancelled for this terminate.
    Superseded {
        /// The cancelled provision.
        cancelled: JobId,
        /// The new terminate.
        queued: JobId,
    },
    /// Another action is in flight; this one runs right after it.
    FollowUp(JobId),
}

/// A duration in whole microseconds, for `INTERVAL ? MICROSECOND`.
pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Store {
    /// Queues `action` for a service. At most one unfinished job per service is enforced by the
    /// UNIQUE index. A terminate replaces a provision that is not in flight (queued, or waiting
    /// on DNS); anything else waits behind the job in flight as its follow-up, so a terminate is
    /// never lost.
    pub async fn enqueue(
        &self,
        service: ServiceId,
        action: Action,
        by: RequestedBy,
    ) -> Result<EnqueueOutcome> {
        // Two requests for the same service at once: the loser's insert hits the UNIQUE index;
        // one more try then sees the winner's job.
        match self.enqueue_once(service, action, by).await {
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                self.enqueue_once(service, action, by).await
            }
            other => other,
        }
    }

    async fn enqueue_once(
        &self,
        service: ServiceId,
        action: Action,
        by: RequestedBy,
    ) -> Result<EnqueueOutcome> {
        let mut tx = self.begin().await?;
        let existing = sqlx::query(
            "SELECT id, action, state FROM mod_jetpack_jobs
             WHERE unfinished_service_id = ? FOR UPDATE",
        )
        .bind(service)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match existing {
            None => EnqueueOutcome::Queued(insert_job(&mut tx, service, action, by).await?),
            Some(row) => {
                let id = JobId(row.try_get("id")?);
                let their_action: String = row.try_get("action")?;
                let state: String = row.try_get("state")?;
                if their_action == action.as_str() {
                    // Asked again (a Module Queue Retry, a double click): a job waiting out a
                    // retry delay becomes due now; one in flight or waiting on DNS is left alone.
                    sqlx::query(
                        "UPDATE mod_jetpack_jobs SET run_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
                         WHERE id = ? AND state = 'queued' AND run_at > UTC_TIMESTAMP(6)",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    EnqueueOutcome::AlreadyPending(id)
                } else if action == Action::Terminate && state != JobState::Running.as_str() {
                    // A provision that is not in flight: the terminate replaces it (and cancels
                    // whatever it may already have provisioned).
                    sqlx::query(
                        "UPDATE mod_jetpack_jobs SET state = 'cancelled',
                           result = 'superseded by a terminate',
                           finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
                         WHERE id = ?",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    let queued = insert_job(&mut tx, service, action, by).await?;
                    EnqueueOutcome::Superseded {
                        cancelled: id,
                        queued,
                    }
                } else {
                    sqlx::query(
                        "UPDATE mod_jetpack_jobs SET follow_up = ?, updated_at = UTC_TIMESTAMP(6)
                         WHERE id = ?",
                    )
                    .bind(action.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    EnqueueOutcome::FollowUp(id)
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Extends a held lease; false when the lease was lost (expired and taken over).
    pub async fn renew_lease(&self, job: &ClaimedJob, lease: Duration) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mod_jetpack_jobs
             SET lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND,
                 run_at = lease_expires_at, updated_at = UTC_TIMESTAMP(6)
             WHERE id = ? AND lease_token = ? AND state = 'running'",
        )
        .bind(micros(lease))
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a job back without counting the attempt (graceful shutdown). A provision that was
    /// cut off may have reached the API, so the next run asks the status endpoint first.
    pub async fn release(&self, job: &ClaimedJob) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mod_jetpack_jobs
             SET attempts = IF(waiting_since IS NULL AND attempts > 0, attempts - 1, attempts),
                 outcome_unknown = IF(action = 'provision', 1, outcome_unknown),
                 state = IF(waiting_since IS NULL, 'queued', 'waiting_dns'),
                 run_at = UTC_TIMESTAMP(6), lease_owner = NULL, lease_token = NULL,
                 lease_expires_at = NULL, updated_at = UTC_TIMESTAMP(6)
             WHERE id = ? AND lease_token = ? AND state = 'running'",
        )
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

async fn insert_job(
    tx: &mut sqlx::Transaction<'_, MySql>,
    service: ServiceId,
    action: Action,
    by: RequestedBy,
) -> Result<JobId> {
    let done = sqlx::query(
        "INSERT INTO mod_jetpack_jobs
           (service_id, action, state, run_at, requested_by, created_at, updated_at)
         VALUES (?, ?, 'queued', UTC_TIMESTAMP(6), ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
    )
    .bind(service)
    .bind(action.as_str())
    .bind(by.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(JobId(done.last_insert_id()))
}
