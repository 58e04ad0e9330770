//! Reading `mod_jetpack_jobs` back and looking after it: the status report behind
//! `jetpack-worker status` (with the workers of `workers`), the queue gauges for the heartbeat and metrics, a service's latest
//! job and failure history, and maintenance (pruning finished jobs and applied requests).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::domain::{JobState, ServiceId, Target};
use crate::store::{LIVE_WITHIN_SECS, NO_WORKER_WARNING, Result, Store, WorkerRow, within};

/// Queue gauges for the heartbeat and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// Jobs per state: queued, running, waiting_dns, failed.
    pub counts: Vec<(String, u64)>,
    /// Seconds the oldest due queued job has waited (0 when none).
    pub oldest_due_age_secs: i64,
}

/// One row of the status report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobSummary {
    /// Row id.
    pub id: u64,
    /// tblhosting.id (an addon's parent service)
    pub service_id: u32,
    /// tblhostingaddons.id for an addon's job; 0 for the service's own.
    pub addon_id: u32,
    /// provision | terminate | change
    pub action: String,
    /// Current state.
    pub state: String,
    /// Attempts used.
    pub attempts: u32,
    /// Next run (UTC).
    pub run_at: DateTime<Utc>,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Last change (UTC).
    pub updated_at: DateTime<Utc>,
}

/// What `jetpack-worker status` prints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StatusReport {
    /// Jobs per state (every state listed, zeros included).
    pub counts: Vec<(String, u64)>,
    /// The oldest job that is due now and not running.
    pub oldest_due: Option<JobSummary>,
    /// Seconds the oldest due job has been due.
    pub oldest_due_age_secs: Option<i64>,
    /// Plans waiting on DNS.
    pub waiting_dns: Vec<JobSummary>,
    /// The most recent failures with their reasons.
    pub recent_failures: Vec<JobSummary>,
    /// Requests recorded (by the module, hooks or the CLI) that no worker has applied yet.
    pub requests_pending: u64,
    /// The workers (`mod_jetpack_workers`), the most recently seen first.
    pub workers: Vec<WorkerRow>,
    /// [`NO_WORKER_WARNING`] when jobs or requests wait and no worker is running (none seen
    /// within [`LIVE_WITHIN_SECS`] and not stopped); `None` otherwise.
    pub no_worker: Option<String>,
}

const SUMMARY_COLUMNS: &str =
    "id, service_id, addon_id, action, state, attempts, run_at, last_error, updated_at";

fn summary(row: &sqlx::mysql::MySqlRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: row.try_get("id")?,
        service_id: row.try_get("service_id")?,
        addon_id: row.try_get("addon_id")?,
        action: row.try_get("action")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        run_at: row.try_get("run_at")?,
        last_error: row.try_get("last_error")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The warning when work waits (jobs queued, running or waiting on DNS, or requests not yet
/// applied) and no worker is running.
fn no_worker(counts: &[(String, u64)], pending: u64, workers: &[WorkerRow]) -> Option<String> {
    let waiting = pending
        + counts
            .iter()
            .filter(|(s, _)| matches!(s.as_str(), "queued" | "running" | "waiting_dns"))
            .map(|(_, n)| n)
            .sum::<u64>();
    let live = workers.iter().any(|w| w.is_live(LIVE_WITHIN_SECS));
    (waiting > 0 && !live).then(|| NO_WORKER_WARNING.to_owned())
}

impl Store {
    /// Counts by state, the oldest due job, plans waiting on DNS and the last failures.
    pub async fn status_report(&self, limit: u32) -> Result<StatusReport> {
        let counted: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM mod_jetpack_jobs GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let counts: Vec<(String, u64)> = JobState::ALL
            .iter()
            .map(|s| {
                let n = counted
                    .iter()
                    .find(|(st, _)| st == s.as_str())
                    .map_or(0, |(_, n)| *n as u64);
                (s.as_str().to_owned(), n)
            })
            .collect();
        let oldest = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUMMARY_COLUMNS}, TIMESTAMPDIFF(SECOND, run_at, UTC_TIMESTAMP(6)) AS age
             FROM mod_jetpack_jobs WHERE state = 'queued' AND due_at <= UTC_TIMESTAMP(6)
             ORDER BY due_at, id LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await?;
        let (oldest_due, oldest_due_age_secs) = match oldest {
            Some(row) => (Some(summary(&row)?), row.try_get("age")?),
            None => (None, None),
        };
        let listed = |state: &'static str, order: &'static str| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SUMMARY_COLUMNS} FROM mod_jetpack_jobs WHERE state = '{state}'
                 ORDER BY {order} LIMIT {limit}"
            )))
        };
        let waiting = listed("waiting_dns", "run_at, id")
            .fetch_all(&self.pool)
            .await?;
        let failed = listed("failed", "run_at DESC, id DESC")
            .fetch_all(&self.pool)
            .await?;
        let (pending,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM mod_jetpack_requests WHERE applied_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        let workers = self.workers().await?;
        let requests_pending = pending.max(0).unsigned_abs();
        let no_worker = no_worker(&counts, requests_pending, &workers);
        Ok(StatusReport {
            requests_pending,
            workers,
            no_worker,
            counts,
            oldest_due,
            oldest_due_age_secs,
            waiting_dns: waiting.iter().map(summary).collect::<Result<_>>()?,
            recent_failures: failed.iter().map(summary).collect::<Result<_>>()?,
        })
    }

    /// Unfinished and failed jobs by state (the large `done` set is not counted) and how long
    /// the oldest due queued job has waited; cheap enough for a 15 s heartbeat.
    pub async fn queue_depth(&self) -> Result<QueueDepth> {
        let counted: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM mod_jetpack_jobs
             WHERE state IN ('queued', 'running', 'waiting_dns', 'failed') GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        let (age,): (Option<i64>,) = sqlx::query_as(
            "SELECT TIMESTAMPDIFF(SECOND, MIN(run_at), UTC_TIMESTAMP(6)) FROM mod_jetpack_jobs
             WHERE state = 'queued' AND run_at <= UTC_TIMESTAMP(6)",
        )
        .fetch_one(&self.pool)
        .await?;
        let counts = ["queued", "running", "waiting_dns", "failed"]
            .iter()
            .map(|s| {
                let n = counted
                    .iter()
                    .find(|(st, _)| st == s)
                    .map_or(0, |(_, n)| *n);
                ((*s).to_owned(), n.max(0) as u64)
            })
            .collect();
        Ok(QueueDepth {
            counts,
            oldest_due_age_secs: age.unwrap_or(0).max(0),
        })
    }

    /// Deletes up to `batch` finished jobs (done, failed, cancelled) that finished more than
    /// `older_than` ago, oldest first, and up to `batch` requests applied that long ago;
    /// unfinished jobs and pending requests are never touched. Returns the larger count (the
    /// caller goes on while a batch was full).
    pub async fn prune_finished(&self, older_than: Duration, batch: u32) -> Result<u64> {
        within(self.timeout, self.prune_batch(older_than, batch)).await
    }

    async fn prune_batch(&self, older_than: Duration, batch: u32) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM mod_jetpack_jobs
             WHERE finished_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND
               AND state IN ('done', 'failed', 'cancelled')
             ORDER BY finished_at LIMIT ?",
        )
        .bind(older_than.as_secs())
        .bind(batch)
        .execute(&self.pool)
        .await?;
        let requests = sqlx::query(
            "DELETE FROM mod_jetpack_requests
             WHERE applied_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND
             ORDER BY applied_at LIMIT ?",
        )
        .bind(older_than.as_secs())
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected().max(requests.rows_affected()))
    }

    /// Whether a failure of this service was put in WHMCS's Module Queue (a failed job, or one
    /// requeued since), so a success should resolve the entry.
    pub async fn had_failure(&self, service: ServiceId) -> Result<bool> {
        let (found,): (bool,) = sqlx::query_as(
            "SELECT EXISTS(SELECT 1 FROM mod_jetpack_jobs
             WHERE service_id = ? AND addon_id = 0 AND (state = 'failed' OR in_module_queue = 1))",
        )
        .bind(service)
        .fetch_one(&self.pool)
        .await?;
        Ok(found)
    }

    /// The latest job of a service or addon (for the CLI and tests).
    pub async fn latest_job(&self, target: impl Into<Target>) -> Result<Option<JobSummary>> {
        let target = target.into();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUMMARY_COLUMNS} FROM mod_jetpack_jobs WHERE service_id = ? AND addon_id = ?
             ORDER BY id DESC LIMIT 1"
        )))
        .bind(target.service())
        .bind(target.addon_id())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(summary).transpose()
    }
}
