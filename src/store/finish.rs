//! The write that ends an attempt: the job row (fenced by the lease token) and everything
//! WHMCS shows for the outcome (details field of THIS service only, service status, activity
//! log, module log, Module Queue) in one short transaction. If the lease was lost, nothing is
//! written. This module owns the job-row side and the outcome types; the WHMCS-table side is
//! `writeback` (`src/store/writeback.rs`).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sqlx::{MySql, Transaction};

use super::{ClaimedJob, Result, Store, StoreError};
use crate::domain::{Action, JobState};
use crate::jetpack::Exchange;
use crate::order::DetailsField;

/// How the service's `domainstatus` changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// Pending → Active (provisioned, or waiting on DNS).
    Activate,
    /// Active → Pending (a provision failed, as WHMCS leaves a failed Create).
    BackToPending,
    /// → Terminated, with `termination_date` set to today when it is empty.
    Terminate,
}

/// A WHMCS Module Queue entry to add or resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleQueueWrite {
    /// Record a failure, as WHMCS's `Queue::add` does.
    Add {
        /// CreateAccount or TerminateAccount.
        action: Action,
        /// The error shown in the queue.
        error: String,
    },
    /// Mark open entries for this action completed, as `Queue::resolve` does.
    Resolve(Action),
}

/// What WHMCS should show after this attempt.
#[derive(Clone, Debug, Default)]
pub struct WhmcsWrites {
    /// tblhosting.userid, for the activity log.
    pub client_id: u32,
    /// New `jetpack_provisioning_details` text and where it lives.
    pub details: Option<(DetailsField, String)>,
    /// Service status change.
    pub status: Option<StatusChange>,
    /// An activity-log line (must start with `JETPACK MODULE`).
    pub activity: Option<String>,
    /// Module Queue entry.
    pub module_queue: Option<ModuleQueueWrite>,
    /// API exchanges for the module log (written only when ModuleDebugMode is on).
    pub module_log: Vec<Exchange>,
    /// Module-log action name (`createaccount`, `terminateaccount`).
    pub module_log_action: &'static str,
}

/// The job row's new state after an attempt.
#[derive(Clone, Debug)]
pub struct Finish {
    /// queued (retry), waiting_dns, done or failed.
    pub state: JobState,
    /// For queued / waiting_dns: when to run again.
    pub run_in: Option<Duration>,
    /// Error to record (kept when None).
    pub last_error: Option<String>,
    /// Result text for done jobs.
    pub result: Option<String>,
    /// Start the 14-day DNS window now (if it has not started).
    pub start_waiting: bool,
    /// Whether a provision may have acted unseen (None keeps the stored flag).
    pub outcome_unknown: Option<bool>,
    /// WHMCS side effects.
    pub whmcs: WhmcsWrites,
}

impl Store {
    /// Applies `finish` if the lease is still ours. Returns false (and writes nothing) when the
    /// lease was lost. Retries deadlocks a few times; if it still fails the lease expires and
    /// the job runs again, so nothing is lost.
    pub async fn finish(&self, job: &ClaimedJob, finish: &Finish) -> Result<bool> {
        let quick = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_millis(200))
            .with_max_times(8)
            .with_jitter();
        (|| self.finish_once(job, finish))
            .retry(quick)
            .when(StoreError::is_lock_conflict)
            .notify(|_, _| {
                tracing::debug!(job_id = %job.id, "finishing write hit a lock conflict; trying again");
            })
            .await
    }

    async fn finish_once(&self, job: &ClaimedJob, f: &Finish) -> Result<bool> {
        let mut tx = self.begin().await?;
        // The usual case is one UPDATE: the lease is ours and nothing was asked for while the
        // job ran. If it matches nothing, either a follow-up was requested meanwhile or the
        // lease was lost; the second UPDATE tells which.
        let follow_up = if update_job(&mut tx, job, f, false).await? {
            false
        } else if update_job(&mut tx, job, f, true).await? {
            true
        } else {
            tx.rollback().await?;
            return Ok(false);
        };
        if follow_up {
            // A terminate that arrived while this provision was in flight must not wait behind
            // a retry or a 14-day DNS wait: the provision is cancelled and the terminate runs
            // next. (A finished job has nothing to supersede.)
            let superseded = !f.state.is_finished()
                && sqlx::query(
                    "UPDATE mod_jetpack_jobs SET state = 'cancelled',
                       result = 'superseded by a terminate',
                       finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
                     WHERE id = ? AND action = 'provision' AND follow_up = 'terminate'
                       AND state IN ('queued', 'waiting_dns')",
                )
                .bind(job.id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            if f.state.is_finished() || superseded {
                queue_follow_up(&mut tx, job).await?;
            }
        }
        self.write_whmcs(&mut tx, job.service_id, &f.whmcs, job.module_debug)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The fenced job-row update: true when it matched (the lease is ours, and, unless
/// `with_follow_up`, no follow-up was requested while the job ran).
async fn update_job(
    tx: &mut Transaction<'_, MySql>,
    job: &ClaimedJob,
    f: &Finish,
    with_follow_up: bool,
) -> Result<bool> {
    let run_in = f.run_in.unwrap_or_default();
    let updated = sqlx::query(
        "UPDATE mod_jetpack_jobs SET
           state = ?, run_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND,
           last_error = COALESCE(?, last_error), result = COALESCE(?, result),
           waiting_since = IF(? AND waiting_since IS NULL, UTC_TIMESTAMP(6), waiting_since),
           outcome_unknown = COALESCE(?, outcome_unknown),
           in_module_queue = IF(?, 1, in_module_queue),
           lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
           finished_at = IF(?, UTC_TIMESTAMP(6), NULL), updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND lease_token = ? AND state = 'running' AND (? OR follow_up IS NULL)",
    )
    .bind(f.state.as_str())
    .bind(i64::try_from(run_in.as_micros()).unwrap_or(i64::MAX))
    .bind(f.last_error.as_deref())
    .bind(f.result.as_deref())
    .bind(f.start_waiting)
    .bind(f.outcome_unknown)
    .bind(matches!(
        f.whmcs.module_queue,
        Some(ModuleQueueWrite::Add { .. })
    ))
    .bind(f.state.is_finished())
    .bind(job.id)
    .bind(&job.lease_token)
    .bind(with_follow_up)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Queues the action that was requested while this job was in flight.
async fn queue_follow_up(tx: &mut Transaction<'_, MySql>, job: &ClaimedJob) -> Result<()> {
    sqlx::query(
        "INSERT INTO mod_jetpack_jobs
           (service_id, action, state, run_at, requested_by, created_at, updated_at)
         SELECT service_id, follow_up, 'queued', UTC_TIMESTAMP(6), requested_by,
                UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)
         FROM mod_jetpack_jobs WHERE id = ? AND follow_up IS NOT NULL",
    )
    .bind(job.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
