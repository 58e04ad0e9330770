//! Queries on `mod_jetpack_jobs` that move a job through its life: enqueue with the
//! one-unfinished-job-per-service rule, claim (two paths), lease renewal and release. Reading
//! the table back (status report, queue depth) and maintenance (requeue, prune) live in
//! `report` (`src/store/report.rs`).

// A child of `jobs` only so `store/mod.rs` needs no change; re-exported below under the old paths.

use std::time::Duration;

use sqlx::{MySql, QueryBuilder, Row};

use super::{ClaimPath, Result, Store, StoreError};
use crate::domain::{Action, JobId, JobState, RequestedBy, ServiceId};

/// A job this worker holds a lease on.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    /// Row id.
    pub id: JobId,
    /// tblhosting.id
    pub service_id: ServiceId,
    /// What to do.
    pub action: Action,
    /// Attempts used, including this one (DNS re-checks excluded).
    pub attempts: u32,
    /// The job's own attempt budget; None = the worker's setting.
    pub max_attempts: Option<u32>,
    /// DNS re-checks so far, including this one when `waiting` is set.
    pub dns_checks: u32,
    /// How long the plan has waited on DNS, when it is waiting.
    pub waiting_for: Option<Duration>,
    /// A previous provision call may have acted without us seeing the answer.
    pub outcome_unknown: bool,
    /// The fencing token every finishing write must present.
    pub lease_token: String,
    /// Who asked for it.
    pub requested_by: String,
}

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

fn micros(d: Duration) -> i64 {
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

    /// Claims up to `limit` due jobs (queued, waiting on DNS, or running with an expired lease)
    /// for `owner`, leasing each for `lease`.
    pub async fn claim(&self, owner: &str, limit: u32, lease: Duration) -> Result<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let batch = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        // A deadlock or lock-wait timeout means "nothing claimed, try again" (it is also how
        // conflicts surface on Galera); a few quick retries, then report nothing claimed.
        for tries in 1..=5u64 {
            let claimed = match self.claim_path {
                ClaimPath::SkipLocked => self.claim_skip_locked(&batch, owner, limit, lease).await,
                ClaimPath::Update => self.claim_update(&batch, owner, limit, lease).await,
            };
            match claimed {
                Err(e) if e.is_lock_conflict() => {
                    tracing::debug!(tries, "claim hit a lock conflict; trying again");
                    tokio::time::sleep(Duration::from_millis(10 * tries + fastrand::u64(..20)))
                        .await;
                }
                Err(e) => return Err(e),
                Ok(()) => return self.claimed_rows(&batch).await,
            }
        }
        Ok(Vec::new())
    }

    async fn claim_skip_locked(
        &self,
        batch: &str,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let ids: Vec<(u64,)> = sqlx::query_as(
            "SELECT id FROM mod_jetpack_jobs WHERE due_at <= UTC_TIMESTAMP(6)
             ORDER BY due_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.rollback().await?;
            return Ok(());
        }
        let mut q = claim_update_head(batch, owner, lease);
        q.push(" WHERE id IN (");
        let mut list = q.separated(", ");
        for (id,) in &ids {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_update(
        &self,
        batch: &str,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<()> {
        let mut q = claim_update_head(batch, owner, lease);
        q.push(" WHERE due_at <= UTC_TIMESTAMP(6) ORDER BY due_at, id LIMIT ")
            .push_bind(limit);
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *conn)
            .await?;
        q.build().execute(&mut *conn).await?;
        Ok(())
    }

    async fn claimed_rows(&self, batch: &str) -> Result<Vec<ClaimedJob>> {
        let rows = sqlx::query(
            "SELECT id, service_id, action, attempts, max_attempts, dns_checks, outcome_unknown,
                    lease_token, requested_by,
                    TIMESTAMPDIFF(SECOND, waiting_since, UTC_TIMESTAMP(6)) AS waited
             FROM mod_jetpack_jobs
             WHERE lease_token LIKE CONCAT(?, ':%') AND state = 'running'",
        )
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let action: String = row.try_get("action")?;
                let waited: Option<i64> = row.try_get("waited")?;
                Ok(ClaimedJob {
                    id: JobId(row.try_get("id")?),
                    service_id: ServiceId(row.try_get("service_id")?),
                    action: Action::parse(&action).ok_or(StoreError::Corrupt(action))?,
                    attempts: row.try_get("attempts")?,
                    max_attempts: row.try_get("max_attempts")?,
                    dns_checks: row.try_get("dns_checks")?,
                    waiting_for: waited.map(|s| Duration::from_secs(s.max(0) as u64)),
                    outcome_unknown: row.try_get("outcome_unknown")?,
                    lease_token: row.try_get("lease_token")?,
                    requested_by: row.try_get("requested_by")?,
                })
            })
            .collect()
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

/// The claiming UPDATE's SET list. Order matters: MySQL assigns left to right, so everything
/// that reads the old `state` comes before `state = 'running'`.
fn claim_update_head(batch: &str, owner: &str, lease: Duration) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::new(
        "UPDATE mod_jetpack_jobs SET
           reclaims = reclaims + IF(state = 'running', 1, 0),
           outcome_unknown = IF(state = 'running' AND action = 'provision', 1, outcome_unknown),
           attempts = attempts + IF(waiting_since IS NULL, 1, 0),
           dns_checks = dns_checks + IF(waiting_since IS NULL, 0, 1),
           lease_owner = ",
    );
    q.push_bind(owner.to_owned());
    q.push(", lease_token = CONCAT(");
    q.push_bind(batch.to_owned());
    q.push(", ':', id), lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL ");
    q.push_bind(micros(lease));
    q.push(
        " MICROSECOND, run_at = lease_expires_at, updated_at = UTC_TIMESTAMP(6), state = 'running'",
    );
    q
}
