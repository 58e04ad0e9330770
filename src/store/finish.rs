//! The write that ends an attempt: the job row (fenced by the lease token) and everything
//! WHMCS shows for the outcome (details field of THIS service only, service status, activity
//! log, module log, Module Queue) in one short transaction. If the lease was lost, nothing is
//! written. This module owns the job-row side and the outcome types; the WHMCS-table side is
//! `writeback` (`src/store/writeback.rs`).

use std::time::Duration;

use backon::Retryable;
use sqlx::{MySql, Transaction};

use super::jobs::{insert_job, micros};
use super::ledger::{LedgerWrite, write_claimed_ledger};
use super::watch::note_outcome;
use super::writeback::fitted;
use super::{
    ClaimedJob, DetailsField, Result, Store, StoreError, TEXT_BYTES, parse_action, within,
};
use crate::backoff;
use crate::domain::{Action, JobState};
use crate::lifecycle::{self, AfterFinish, AttemptEnd, Event};
use crate::text::{Chain, fit};

pub use crate::catalogue::StatusChange;

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

/// One partner-API exchange for WHMCS's module log (`tblmodulelog`), already masked and
/// bounded by the API client; the store only makes it fit the columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleLogEntry {
    /// The call (`token`, `provision`, `cancel`, `status`), after the module-log action name.
    pub action: &'static str,
    /// Method, URL and form fields, secrets masked.
    pub request: String,
    /// Status line and body, secrets masked.
    pub response: String,
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
    pub module_log: Vec<ModuleLogEntry>,
    /// Module-log action name (`createaccount`, `terminateaccount`).
    pub module_log_action: &'static str,
}

/// The job row's new state after an attempt.
#[derive(Clone, Debug)]
pub struct Finish {
    /// queued (retry), waiting_dns, done or failed: from `lifecycle::after_attempt`, through
    /// the constructors only.
    pub(super) state: JobState,
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
    /// What the partner now holds (or no longer holds) for the service.
    pub ledger: Vec<LedgerWrite>,
    /// WHMCS side effects.
    pub whmcs: WhmcsWrites,
}

impl Finish {
    /// An attempt that ended as `end`: its state is the lifecycle's.
    fn ended(end: AttemptEnd, whmcs: WhmcsWrites) -> Finish {
        Finish {
            state: lifecycle::after_attempt(end),
            run_in: None,
            last_error: None,
            result: None,
            start_waiting: false,
            outcome_unknown: None,
            ledger: Vec::new(),
            whmcs,
        }
    }

    /// Done, with its result text.
    pub fn done(result: String, whmcs: WhmcsWrites) -> Finish {
        Finish {
            result: Some(result),
            ..Finish::ended(AttemptEnd::Succeeded, whmcs)
        }
    }

    /// Failed with `message` (the job row's last error); an admin's Retry runs it again.
    pub fn failed(message: String, whmcs: WhmcsWrites) -> Finish {
        Finish {
            last_error: Some(message),
            ..Finish::ended(AttemptEnd::Failed, whmcs)
        }
    }

    /// Queued again after `delay`, with the transient failure `message`.
    pub fn retry_in(delay: Duration, message: String, whmcs: WhmcsWrites) -> Finish {
        Finish {
            run_in: Some(delay),
            last_error: Some(message),
            ..Finish::ended(AttemptEnd::Retries, whmcs)
        }
    }

    /// A plan waiting on DNS, checked again after `next` (the DNS window starts now if it
    /// has not started).
    pub fn waiting_dns(next: Duration, whmcs: WhmcsWrites) -> Finish {
        Finish {
            run_in: Some(next),
            start_waiting: true,
            ..Finish::ended(AttemptEnd::WaitsOnDns, whmcs)
        }
    }

    /// The state it writes.
    pub fn state(&self) -> JobState {
        self.state
    }
}

impl Store {
    /// Applies `finish` if the lease is still ours. Returns false (and writes nothing) when the
    /// lease was lost. Retries deadlocks a few times; if it still fails the lease expires and
    /// the job runs again, so nothing is lost. A request recorded while the job ran (its
    /// `follow_up`) is honoured here, by `lifecycle::on_finish`.
    pub async fn finish(&self, job: &ClaimedJob, finish: &Finish) -> Result<bool> {
        let attempt = || within(self.timeout, self.finish_once(job, finish));
        attempt
            .retry(backoff::finish_conflicts())
            .when(StoreError::is_lock_conflict)
            .notify(|_, _| {
                tracing::debug!(job_id = %job.id, "finishing write hit a lock conflict; trying again");
            })
            .await
    }

    async fn finish_once(&self, job: &ClaimedJob, f: &Finish) -> Result<bool> {
        let mut tx = self.begin().await?;
        if !self.finish_in(&mut tx, job, f).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// One job's finish inside `tx` (its own, or a batch's): false, having written nothing,
    /// when the lease is no longer ours.
    pub(super) async fn finish_in(
        &self,
        tx: &mut Transaction<'_, MySql>,
        job: &ClaimedJob,
        f: &Finish,
    ) -> Result<bool> {
        // The usual case is one UPDATE: the lease is ours and nothing was asked for while the
        // job ran. If it matches nothing, either a request is waiting behind the job or the
        // lease was lost; reading the row under lock tells which.
        let after = if update_job(tx, job, f, None, false).await? {
            None
        } else {
            match follow_up_of(tx, job).await? {
                None => return Ok(false),
                Some(next) => Some(lifecycle::on_finish(f.state, next)),
            }
        };
        match after {
            None => {}
            Some(AfterFinish::AsIs) => {
                update_job(tx, job, f, None, true).await?;
            }
            Some(AfterFinish::ThenQueue(next)) => {
                update_job(tx, job, f, None, true).await?;
                queue_follow_up(tx, job, next).await?;
            }
            Some(AfterFinish::CancelAndQueue(next)) => {
                let why = format!("superseded: a {} was requested while it ran", next.as_str());
                update_job(tx, job, f, Some(why.as_str()), true).await?;
                queue_follow_up(tx, job, next).await?;
            }
        }
        write_claimed_ledger(tx, job, &f.ledger).await?;
        note_outcome(tx, job.target, &f.ledger, watch_soon(job, f), &self.watch).await?;
        // A request queued behind this job is the latest intent: its own outcome decides the
        // target's WHMCS status (a terminate's end must not write Terminated over the Suspended
        // or Active WHMCS set for a Suspend or Create asked meanwhile).
        let followed = matches!(
            after,
            Some(AfterFinish::ThenQueue(_) | AfterFinish::CancelAndQueue(_))
        );
        let status_left = followed.then(|| WhmcsWrites {
            status: None,
            ..f.whmcs.clone()
        });
        let whmcs = status_left.as_ref().unwrap_or(&f.whmcs);
        self.write_whmcs(tx, job.target, whmcs, job.module_debug)
            .await?;
        Ok(true)
    }

    /// The bounded end of an outcome that cannot be written (the database refused it for a
    /// reason other than being unavailable): the job fails with `cause` in one minimal fenced
    /// write, so the API is not called again for it without an admin's Retry; a request
    /// waiting behind it is queued as usual. The activity line and the Module Queue entry are
    /// then written on their own, each allowed to fail, and so is the ledger. A provision is
    /// marked as possibly acted, so a Retry asks the status endpoint first. False when the
    /// lease was lost.
    pub async fn fail_unrecordable(
        &self,
        job: &ClaimedJob,
        cause: &str,
        f: &Finish,
    ) -> Result<bool> {
        let whmcs = &f.whmcs;
        let written = within(self.timeout, self.fail_minimal(job, cause)).await?;
        if !written {
            return Ok(false);
        }
        // What the partner now holds, on its own: a terminate must still cancel it.
        let mut tx = self.begin().await?;
        match write_claimed_ledger(&mut tx, job, &f.ledger).await {
            Ok(()) => tx.commit().await?,
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %Chain(&e), "could not record what the partner holds either");
                tx.rollback().await?;
            }
        }
        let only = |activity: bool| WhmcsWrites {
            client_id: whmcs.client_id,
            activity: activity.then(|| cause.to_owned()),
            module_queue: (!activity).then(|| ModuleQueueWrite::Add {
                action: job.action,
                error: cause.to_owned(),
            }),
            module_log_action: whmcs.module_log_action,
            ..WhmcsWrites::default()
        };
        for part in [only(true), only(false)] {
            let mut tx = self.begin().await?;
            let wrote = self.write_whmcs(&mut tx, job.target, &part, false).await;
            match wrote {
                Ok(()) => tx.commit().await?,
                Err(e) => {
                    tracing::error!(job_id = %job.id, error = %Chain(&e), "could not write the failure to WHMCS either");
                    tx.rollback().await?;
                }
            }
        }
        Ok(true)
    }

    /// Gives a job back without counting the attempt (graceful shutdown). A provision that was
    /// cut off may have reached the API, so the next run asks the status endpoint first. A
    /// request waiting behind the job is honoured as for any job that would run again.
    pub async fn release(&self, job: &ClaimedJob) -> Result<bool> {
        self.give_back(job, GiveBack::In(Duration::ZERO), true)
            .await
    }

    /// Gives a job back before it made any partner-API call (its account's breaker is open, or
    /// its rate limit saturated): due again after `run_in`, its attempt (or DNS re-check) not
    /// counted, its last error and outcome flag kept. Fenced by the lease token like every
    /// finishing write; false when the lease was lost.
    pub async fn hold_back(&self, job: &ClaimedJob, run_in: Duration) -> Result<bool> {
        within(
            self.timeout,
            self.give_back(job, GiveBack::In(run_in), false),
        )
        .await
    }

    /// As [`Store::hold_back`], for a job of a partner account on hold: due again at the
    /// second boundary of `every` after next, by the database clock, so every job of the
    /// account held in one window has the same `run_at` and they are claimed again (on
    /// Resume) in the order of their ids, however the workers' give-backs interleaved.
    pub async fn hold_back_aligned(&self, job: &ClaimedJob, every: Duration) -> Result<bool> {
        within(
            self.timeout,
            self.give_back(job, GiveBack::Aligned(every), false),
        )
        .await
    }

    /// The job back to queued (or waiting on DNS) at `when`, the claim's count given
    /// back; `cut_off` marks a provision as possibly acted. A request waiting behind the job
    /// cancels it instead and is queued at once.
    async fn give_back(&self, job: &ClaimedJob, when: GiveBack, cut_off: bool) -> Result<bool> {
        let Some((mut tx, next)) = self.begin_held(job).await? else {
            return Ok(false);
        };
        if let AfterFinish::CancelAndQueue(next) | AfterFinish::ThenQueue(next) =
            lifecycle::on_finish(JobState::Queued, next)
        {
            cancel_held(&mut tx, job, next, cut_off).await?;
            queue_follow_up(&mut tx, job, next).await?;
        } else {
            requeue_held(&mut tx, job, when, cut_off).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A transaction on a job this worker still holds, with the action waiting behind it;
    /// None (and nothing held) when the lease is no longer ours.
    async fn begin_held(
        &self,
        job: &ClaimedJob,
    ) -> Result<Option<(Transaction<'static, MySql>, Option<Action>)>> {
        let mut tx = self.begin().await?;
        match follow_up_of(&mut tx, job).await? {
            Some(next) => Ok(Some((tx, next))),
            None => {
                tx.rollback().await?;
                Ok(None)
            }
        }
    }

    async fn fail_minimal(&self, job: &ClaimedJob, cause: &str) -> Result<bool> {
        let Some((mut tx, next)) = self.begin_held(job).await? else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE mod_jetpack_jobs SET state = ?, last_error = ?, in_module_queue = 1,
               outcome_unknown = IF(?, 1, outcome_unknown),
               lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
               finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
             WHERE id = ? AND lease_token = ? AND state = 'running'",
        )
        .bind(JobState::Failed.as_str())
        .bind(fit(cause, TEXT_BYTES))
        .bind(job.action.may_provide())
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&mut *tx)
        .await?;
        if let AfterFinish::ThenQueue(next) | AfterFinish::CancelAndQueue(next) =
            lifecycle::on_finish(JobState::Failed, next)
        {
            queue_follow_up(&mut tx, job, next).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// Ends a held job as cancelled because `next` was requested while it ran; `cut_off` marks
/// a provision as possibly acted.
async fn cancel_held(
    tx: &mut Transaction<'_, MySql>,
    job: &ClaimedJob,
    next: Action,
    cut_off: bool,
) -> Result<()> {
    sqlx::query(
        "UPDATE mod_jetpack_jobs SET state = ?, result = ?,
           outcome_unknown = IF(?, 1, outcome_unknown),
           lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
           finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND lease_token = ? AND state = 'running'",
    )
    .bind(JobState::Cancelled.as_str())
    .bind(format!(
        "superseded: a {} was requested while it ran",
        next.as_str()
    ))
    .bind(cut_off && job.action.may_provide())
    .bind(job.id)
    .bind(&job.lease_token)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A held job back to queued (waiting on DNS, when it was) after `run_in`, its attempt (or,
/// unless `cut_off`, its DNS re-check) not counted; `cut_off` marks a provision as possibly
/// acted.
/// When a job given back is due again.
#[derive(Clone, Copy)]
enum GiveBack {
    /// After this long.
    In(Duration),
    /// At the boundary of this period after next (whole seconds since 2000-01-01, UTC).
    Aligned(Duration),
}

async fn requeue_held(
    tx: &mut Transaction<'_, MySql>,
    job: &ClaimedJob,
    when: GiveBack,
    cut_off: bool,
) -> Result<()> {
    let (run_in, aligned) = match when {
        GiveBack::In(run_in) => (run_in, 0),
        GiveBack::Aligned(every) => (Duration::ZERO, every.as_secs().max(1)),
    };
    sqlx::query(
        "UPDATE mod_jetpack_jobs
         SET attempts = IF(waiting_since IS NULL AND attempts > 0, attempts - 1, attempts),
             dns_checks = IF(? AND waiting_since IS NOT NULL AND dns_checks > 0,
                             dns_checks - 1, dns_checks),
             outcome_unknown = IF(?, 1, outcome_unknown),
             state = IF(waiting_since IS NULL, ?, ?),
             run_at = IF(? = 0, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND,
                         TIMESTAMP('2000-01-01') + INTERVAL
                           ((FLOOR(TIMESTAMPDIFF(SECOND, '2000-01-01', UTC_TIMESTAMP(6)) / GREATEST(?, 1)) + 2)
                            * GREATEST(?, 1)) SECOND),
             lease_owner = NULL,
             lease_token = NULL, lease_expires_at = NULL, updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND lease_token = ? AND state = 'running'",
    )
    .bind(!cut_off)
    .bind(cut_off && job.action.may_provide())
    .bind(given_back(false).as_str())
    .bind(given_back(true).as_str())
    .bind(aligned)
    .bind(micros(run_in))
    .bind(aligned)
    .bind(aligned)
    .bind(job.id)
    .bind(&job.lease_token)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The state a job given back goes to (a waiting plan keeps waiting): the lifecycle's.
fn given_back(waiting: bool) -> JobState {
    let running = Some(JobState::Running);
    lifecycle::next_state(running, Event::GivenBack, waiting).unwrap_or(JobState::Queued)
}

/// Whether the watch should look soon after this outcome: the job's outcome was unknown at
/// some point.
pub(super) fn watch_soon(job: &ClaimedJob, f: &Finish) -> bool {
    job.outcome_unknown || f.outcome_unknown == Some(true)
}

/// A job row's new values after an attempt, as both the single and the batched finishing
/// UPDATE set them.
pub(super) struct JobValues {
    /// The new state.
    pub state: JobState,
    /// Due again after this many microseconds.
    pub run_in: i64,
    /// The error to record, fitted (None keeps the stored one).
    pub last_error: Option<String>,
    /// The result to record, fitted (None keeps the stored one).
    pub result: Option<String>,
    /// The text this outcome writes into the target's details field, fitted as written there
    /// (None keeps the stored one): what the module puts back after a WHMCS save wrote over it.
    pub details: Option<String>,
    /// Start the DNS window now (if it has not started).
    pub start_waiting: bool,
    /// The outcome flag (None keeps the stored one).
    pub outcome_unknown: Option<bool>,
    /// A Module Queue entry is added with this outcome.
    pub in_module_queue: bool,
}

impl JobValues {
    /// The values `f` writes; `cancelled` ends the job as cancelled with that result instead
    /// of the attempt's state.
    pub(super) fn of(f: &Finish, cancelled: Option<&str>) -> JobValues {
        let state = match cancelled {
            Some(_) => lifecycle::next_state(Some(JobState::Running), Event::Overtaken, false)
                .unwrap_or(JobState::Cancelled),
            None => f.state,
        };
        JobValues {
            state,
            run_in: micros(f.run_in.unwrap_or_default()),
            last_error: f
                .last_error
                .as_deref()
                .map(|e| fit(e, TEXT_BYTES).into_owned()),
            result: cancelled
                .or(f.result.as_deref())
                .map(|r| fit(r, TEXT_BYTES).into_owned()),
            details: f.whmcs.details.as_ref().map(|(_, text)| fitted(text)),
            start_waiting: f.start_waiting,
            outcome_unknown: f.outcome_unknown,
            in_module_queue: matches!(f.whmcs.module_queue, Some(ModuleQueueWrite::Add { .. })),
        }
    }
}

/// The fenced job-row update: true when it matched (the lease is ours, and, unless
/// `with_follow_up`, no request waits behind the job). `cancelled` ends the job as cancelled
/// with that result instead of the attempt's state.
async fn update_job(
    tx: &mut Transaction<'_, MySql>,
    job: &ClaimedJob,
    f: &Finish,
    cancelled: Option<&str>,
    with_follow_up: bool,
) -> Result<bool> {
    let v = JobValues::of(f, cancelled);
    let updated = sqlx::query(
        "UPDATE mod_jetpack_jobs SET
           state = ?, run_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND,
           last_error = COALESCE(?, last_error), result = COALESCE(?, result),
           details = COALESCE(?, details),
           waiting_since = IF(? AND waiting_since IS NULL, UTC_TIMESTAMP(6), waiting_since),
           outcome_unknown = COALESCE(?, outcome_unknown),
           in_module_queue = IF(?, 1, in_module_queue),
           lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
           finished_at = IF(?, UTC_TIMESTAMP(6), NULL), updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND lease_token = ? AND state = 'running' AND (? OR follow_up IS NULL)",
    )
    .bind(v.state.as_str())
    .bind(v.run_in)
    .bind(v.last_error)
    .bind(v.result)
    .bind(v.details)
    .bind(v.start_waiting)
    .bind(v.outcome_unknown)
    .bind(v.in_module_queue)
    .bind(v.state.is_finished())
    .bind(job.id)
    .bind(&job.lease_token)
    .bind(with_follow_up)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// The request waiting behind a job we still hold, read under lock: None when the lease is
/// no longer ours, Some(None) when nothing waits.
async fn follow_up_of(
    tx: &mut Transaction<'_, MySql>,
    job: &ClaimedJob,
) -> Result<Option<Option<Action>>> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT follow_up FROM mod_jetpack_jobs
         WHERE id = ? AND lease_token = ? AND state = 'running' FOR UPDATE",
    )
    .bind(job.id)
    .bind(&job.lease_token)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        None => Ok(None),
        Some((None,)) => Ok(Some(None)),
        Some((Some(next),)) => Ok(Some(Some(parse_action(&next)?))),
    }
}

/// Queues the action that was requested while this job was in flight, due now, for whoever
/// asked for this job (see [`insert_job`] for what it inherits from the job just ended).
async fn queue_follow_up(
    tx: &mut Transaction<'_, MySql>,
    job: &ClaimedJob,
    next: Action,
) -> Result<()> {
    insert_job(tx, job.target, next, job.requested_by).await?;
    Ok(())
}
