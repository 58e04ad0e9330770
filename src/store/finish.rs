//! The write that ends an attempt: the job row (fenced by the lease token) and everything
//! WHMCS shows for the outcome (details field of THIS service only, service status, activity
//! log, module log, Module Queue) in one short transaction. If the lease was lost, nothing is
//! written.

use std::time::Duration;

use sqlx::{MySql, Transaction};

use super::{ClaimedJob, Result, Store, utf8mb3_safe};
use crate::domain::{Action, JobState, ServiceId};
use crate::jetpack::Exchange;
use crate::order::{DetailsField, MODULE_NAME};

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
    pub async fn finish(
        &self,
        job: &ClaimedJob,
        finish: &Finish,
        module_debug: bool,
    ) -> Result<bool> {
        let mut tries = 0;
        loop {
            match self.finish_once(job, finish, module_debug).await {
                Err(e) if e.is_lock_conflict() && tries < 3 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                }
                other => return other,
            }
        }
    }

    async fn finish_once(&self, job: &ClaimedJob, f: &Finish, module_debug: bool) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let finished = matches!(
            f.state,
            JobState::Done | JobState::Failed | JobState::Cancelled
        );
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
             WHERE id = ? AND lease_token = ? AND state = 'running'",
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
        .bind(finished)
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // A terminate that arrived while this provision was in flight must not wait behind a
        // retry or a 14-day DNS wait: the provision is cancelled and the terminate runs next.
        let superseded = sqlx::query(
            "UPDATE mod_jetpack_jobs SET state = 'cancelled', result = 'superseded by a terminate',
               finished_at = UTC_TIMESTAMP(6)
             WHERE id = ? AND action = 'provision' AND follow_up = 'terminate'
               AND state IN ('queued', 'waiting_dns')",
        )
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
        if finished || superseded.rows_affected() == 1 {
            queue_follow_up(&mut tx, job).await?;
        }
        self.write_whmcs(&mut tx, job.service_id, &f.whmcs, module_debug)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Writes WHMCS's side of an outcome inside `tx`.
    pub(super) async fn write_whmcs(
        &self,
        tx: &mut Transaction<'_, MySql>,
        service: ServiceId,
        w: &WhmcsWrites,
        module_debug: bool,
    ) -> Result<()> {
        if let Some((field, text)) = &w.details {
            write_details(tx, service, *field, &utf8mb3_safe(text)).await?;
        }
        match w.status {
            Some(StatusChange::Activate) => {
                sqlx::query(
                    "UPDATE tblhosting SET domainstatus = 'Active' WHERE id = ? AND domainstatus = 'Pending'",
                )
                .bind(service)
                .execute(&mut **tx)
                .await?;
            }
            Some(StatusChange::BackToPending) => {
                sqlx::query(
                    "UPDATE tblhosting SET domainstatus = 'Pending' WHERE id = ? AND domainstatus = 'Active'",
                )
                .bind(service)
                .execute(&mut **tx)
                .await?;
            }
            Some(StatusChange::Terminate) => {
                sqlx::query(
                    "UPDATE tblhosting SET domainstatus = 'Terminated',
                       termination_date = IF(termination_date IN ('0000-00-00', '1970-01-01'),
                                             CURDATE(), termination_date)
                     WHERE id = ?",
                )
                .bind(service)
                .execute(&mut **tx)
                .await?;
            }
            None => {}
        }
        if let Some(line) = &w.activity {
            let sql = if self.activity_has_user_columns {
                "INSERT INTO tblactivitylog (date, description, user, userid, user_id, admin_id, ipaddr)
                 VALUES (NOW(), ?, 'System', ?, 0, 0, '')"
            } else {
                "INSERT INTO tblactivitylog (date, description, user, userid, ipaddr)
                 VALUES (NOW(), ?, 'System', ?, '')"
            };
            sqlx::query(sql)
                .bind(utf8mb3_safe(line))
                .bind(w.client_id)
                .execute(&mut **tx)
                .await?;
        }
        match &w.module_queue {
            Some(ModuleQueueWrite::Add { action, error }) => {
                add_to_module_queue(tx, service, *action, &utf8mb3_safe(error)).await?;
            }
            Some(ModuleQueueWrite::Resolve(action)) => {
                sqlx::query(
                    "UPDATE tblmodulequeue SET completed = 1, last_attempt = NOW(), updated_at = NOW()
                     WHERE service_type = 'service' AND service_id = ? AND module_name = ?
                       AND module_action = ? AND completed = 0",
                )
                .bind(service)
                .bind(MODULE_NAME)
                .bind(action.module_function())
                .execute(&mut **tx)
                .await?;
            }
            None => {}
        }
        if module_debug {
            for x in &w.module_log {
                sqlx::query(
                    "INSERT INTO tblmodulelog (date, module, action, request, response, arrdata)
                     VALUES (NOW(), ?, ?, ?, ?, '')",
                )
                .bind(MODULE_NAME)
                .bind(format!("{} {}", w.module_log_action, x.action))
                .bind(utf8mb3_safe(&cut(&x.request, 60_000)))
                .bind(utf8mb3_safe(&cut(&x.response, 60_000)))
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }
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

/// Updates this service's lowest value row of the details field, or inserts one. Never touches
/// another service's row (the original module's global UPDATE is the bug this replaces).
async fn write_details(
    tx: &mut Transaction<'_, MySql>,
    service: ServiceId,
    field: DetailsField,
    text: &str,
) -> Result<()> {
    let current: Option<(u32,)> = sqlx::query_as(
        "SELECT id FROM tblcustomfieldsvalues WHERE fieldid = ? AND relid = ?
         ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .bind(field.field_id)
    .bind(service)
    .fetch_optional(&mut **tx)
    .await?;
    match current {
        Some((id,)) => {
            sqlx::query(
                "UPDATE tblcustomfieldsvalues SET value = ?, updated_at = NOW() WHERE id = ?",
            )
            .bind(text)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
                 VALUES (?, ?, ?, NOW(), NOW())",
            )
            .bind(field.field_id)
            .bind(service)
            .bind(text)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// WHMCS's `Queue::add`: one open row per (service, module, action); a repeat failure bumps
/// `num_retries`. tblmodulequeue has no index but its primary key, so this scans it; the table
/// only ever holds failures and stays small.
async fn add_to_module_queue(
    tx: &mut Transaction<'_, MySql>,
    service: ServiceId,
    action: Action,
    error: &str,
) -> Result<()> {
    let open: Option<(u32,)> = sqlx::query_as(
        "SELECT id FROM tblmodulequeue WHERE service_type = 'service' AND service_id = ?
           AND module_name = ? AND module_action = ? AND completed = 0
         ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .bind(service)
    .bind(MODULE_NAME)
    .bind(action.module_function())
    .fetch_optional(&mut **tx)
    .await?;
    match open {
        Some((id,)) => {
            sqlx::query(
                "UPDATE tblmodulequeue SET last_attempt = NOW(), last_attempt_error = ?,
                   num_retries = num_retries + 1, updated_at = NOW() WHERE id = ?",
            )
            .bind(error)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO tblmodulequeue (service_type, service_id, module_name, module_action,
                   last_attempt, last_attempt_error, num_retries, completed, created_at, updated_at)
                 VALUES ('service', ?, ?, ?, NOW(), ?, 0, 0, NOW(), NOW())",
            )
            .bind(service)
            .bind(MODULE_NAME)
            .bind(action.module_function())
            .bind(error)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

fn cut(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [truncated]", &text[..end])
}
