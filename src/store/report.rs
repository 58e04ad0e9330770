//! Reading `mod_jetpack_jobs` back and looking after it: the status report behind
//! `jetpack-worker status` (with the workers of `workers`), the queue gauges for the heartbeat
//! and metrics, a target's latest job, and maintenance (pruning finished jobs and applied
//! requests).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{MySql, QueryBuilder, Row};

use super::{
    LIVE_WITHIN_SECS, NO_WORKER_WARNING, Result, Store, WorkerRow, known, parse_action,
    parse_state, within,
};
use crate::domain::{Action, JobState, Target};

/// The states the queue gauges count: every unfinished one, and failed (the large `done`
/// and `cancelled` sets are not counted, so a heartbeat never reads the whole table).
const GAUGED: [JobState; 4] = [
    JobState::Queued,
    JobState::Running,
    JobState::WaitingDns,
    JobState::Failed,
];

/// Queue gauges for the heartbeat and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// Jobs per state: queued, running, waiting_dns, failed (zeros included).
    pub counts: Vec<(JobState, u64)>,
    /// Seconds the oldest due queued job has waited (0 when none).
    pub oldest_due_age_secs: i64,
}

/// One row of the status report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobSummary {
    /// The job (`mod_jetpack_jobs.id`).
    pub id: u64,
    /// tblhosting.id (an addon's parent service)
    pub service_id: u32,
    /// tblhostingaddons.id for an addon's job; 0 for the service's own.
    pub addon_id: u32,
    /// What it does (shown as stored: provision, terminate, change).
    pub action: Action,
    /// Where it is (shown as stored: queued, running, …).
    pub state: JobState,
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
    pub counts: Vec<(JobState, u64)>,
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
    /// Unfinished jobs of an action this worker does not know (a newer worker's): it never
    /// claims them, and they are not in the lists above.
    pub unknown_action_jobs: u64,
    /// The workers (`mod_jetpack_workers`), the most recently seen first.
    pub workers: Vec<WorkerRow>,
    /// The latest drifts the reconciler confirmed between WHMCS's intent and the partner.
    pub drifts: Vec<super::DriftRow>,
    /// The partner accounts on hold (`mod_jetpack_holds`): their jobs stay queued, no call made.
    pub holds: Vec<super::HoldRow>,
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
        action: parse_action(row.try_get("action")?)?,
        state: parse_state(row.try_get("state")?)?,
        attempts: row.try_get("attempts")?,
        run_at: row.try_get("run_at")?,
        last_error: row.try_get("last_error")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The warning when work waits (jobs queued, running or waiting on DNS, or requests not yet
/// applied) and no worker is running.
fn no_worker(counts: &[(JobState, u64)], pending: u64, workers: &[WorkerRow]) -> Option<String> {
    let waiting = pending
        + counts
            .iter()
            .filter(|(s, _)| !s.is_finished())
            .map(|(_, n)| n)
            .sum::<u64>();
    let live = workers.iter().any(|w| w.is_live(LIVE_WITHIN_SECS));
    (waiting > 0 && !live).then(|| NO_WORKER_WARNING.to_owned())
}

/// Counts by state as `GROUP BY state` answered them, one per state of `states`, in that
/// order (zeros included; a state the worker does not know is not counted).
fn per_state(counted: &[(String, i64)], states: &[JobState]) -> Vec<(JobState, u64)> {
    states
        .iter()
        .map(|&state| {
            let n = counted
                .iter()
                .find(|(st, _)| JobState::parse(st) == Some(state))
                .map_or(0, |(_, n)| *n);
            (state, n.max(0).unsigned_abs())
        })
        .collect()
}

impl Store {
    /// Counts by state, the oldest due job, plans waiting on DNS and the last failures.
    pub async fn status_report(&self, limit: u32) -> Result<StatusReport> {
        let counted: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM mod_jetpack_jobs GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let counts = per_state(&counted, &JobState::ALL);
        let (oldest_due, oldest_due_age_secs) = self.oldest_due().await?;
        let waiting_dns = self
            .jobs_in(JobState::WaitingDns, "run_at, id", limit)
            .await?;
        let recent_failures = self
            .jobs_in(JobState::Failed, "run_at DESC, id DESC", limit)
            .await?;
        let requests_pending = self.requests_pending().await?;
        let unknown_action_jobs = self.unknown_action_jobs().await?;
        let workers = self.workers().await?;
        let no_worker = no_worker(&counts, requests_pending, &workers);
        let drifts = self.recent_drifts(limit).await?;
        let holds = self.holds().await?;
        Ok(StatusReport {
            drifts,
            holds,
            requests_pending,
            unknown_action_jobs,
            workers,
            no_worker,
            counts,
            oldest_due,
            oldest_due_age_secs,
            waiting_dns,
            recent_failures,
        })
    }

    /// The oldest queued job that is due now, with how long it has been due.
    async fn oldest_due(&self) -> Result<(Option<JobSummary>, Option<i64>)> {
        let mut q = QueryBuilder::<MySql>::new(format!(
            "SELECT {SUMMARY_COLUMNS}, TIMESTAMPDIFF(SECOND, run_at, UTC_TIMESTAMP(6)) AS age
             FROM mod_jetpack_jobs WHERE state = "
        ));
        q.push_bind(JobState::Queued.as_str())
            .push(" AND due_at <= UTC_TIMESTAMP(6) AND action IN ");
        known::push_list(&mut q, &known::actions());
        q.push(" ORDER BY due_at, id LIMIT 1");
        let oldest = q.build().fetch_optional(&self.pool).await?;
        match oldest {
            Some(row) => Ok((Some(summary(&row)?), row.try_get("age")?)),
            None => Ok((None, None)),
        }
    }

    /// Up to `limit` jobs in `state`, in `order` (a fixed ORDER BY list).
    async fn jobs_in(
        &self,
        state: JobState,
        order: &'static str,
        limit: u32,
    ) -> Result<Vec<JobSummary>> {
        let mut q = QueryBuilder::<MySql>::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM mod_jetpack_jobs WHERE state = "
        ));
        q.push_bind(state.as_str()).push(" AND action IN ");
        known::push_list(&mut q, &known::actions());
        q.push(format!(" ORDER BY {order} LIMIT ")).push_bind(limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(summary).collect()
    }

    /// Unfinished jobs of an action this worker does not know (by the one-unfinished-job
    /// index: only unfinished rows are read).
    async fn unknown_action_jobs(&self) -> Result<u64> {
        let mut q = QueryBuilder::<MySql>::new(
            "SELECT COUNT(*) FROM mod_jetpack_jobs
             WHERE unfinished_service_id IS NOT NULL AND action NOT IN ",
        );
        known::push_list(&mut q, &known::actions());
        let (n,): (i64,) = q.build_query_as().fetch_one(&self.pool).await?;
        Ok(n.max(0).unsigned_abs())
    }

    /// Requests recorded that no worker has applied yet.
    async fn requests_pending(&self) -> Result<u64> {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM mod_jetpack_requests WHERE applied_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(pending.max(0).unsigned_abs())
    }

    /// The gauged states' counts (unfinished jobs, and failed ones) and how long the oldest due
    /// queued job has waited; cheap enough for a 15 s heartbeat.
    pub async fn queue_depth(&self) -> Result<QueueDepth> {
        let mut count = QueryBuilder::<MySql>::new(
            "SELECT state, COUNT(*) FROM mod_jetpack_jobs WHERE state IN (",
        );
        let mut list = count.separated(", ");
        for state in GAUGED {
            list.push_bind(state.as_str());
        }
        count.push(") GROUP BY state");
        let counted: Vec<(String, i64)> = count.build_query_as().fetch_all(&self.pool).await?;
        let (age,): (Option<i64>,) = sqlx::query_as(
            "SELECT TIMESTAMPDIFF(SECOND, MIN(run_at), UTC_TIMESTAMP(6)) FROM mod_jetpack_jobs
             WHERE state = ? AND run_at <= UTC_TIMESTAMP(6)",
        )
        .bind(JobState::Queued.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueDepth {
            counts: per_state(&counted, &GAUGED),
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
