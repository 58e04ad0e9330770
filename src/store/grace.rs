//! The grace period on delete (issue 21), as the store writes it: the terminate a `deleted`
//! request queued is dated the request's time plus `JETPACK_DELETE_GRACE` (`run_at` and
//! `grace_until`, by the database's clock, so a restart or another worker changes nothing),
//! and Keep the plan withdraws it: the job is cancelled with why, the target's ledger rows are
//! marked kept (`kept_at`: the deleted-target sweep leaves them, and a terminate of another
//! target on the site counts them as held) and the client's activity log says so. Cancel now
//! is an ordinary "due now" (`apply`), which also clears `grace_until`.

use std::time::Duration;

use sqlx::{MySql, Transaction};

use super::jobs::micros;
use super::requests::RequestId;
use super::{Result, Store};
use crate::domain::{JobId, JobState, Target};

/// Why a kept plan's terminate did not run (`mod_jetpack_jobs.result`).
const KEPT: &str = "kept: an admin chose Keep the plan after the target was deleted; the plan \
                    stays at the partner and in the ledger";

impl Store {
    /// The same store with another grace period for the plans of deleted services and addons
    /// (`JETPACK_DELETE_GRACE`; zero cancels at once).
    pub fn with_delete_grace(mut self, grace: Duration) -> Store {
        self.delete_grace = grace;
        self
    }
}

/// Dates the terminate `job` a deletion queued: due (and in its grace period until) the time
/// `request` was made plus `grace`. With no grace, or one already over (a worker that was
/// down), it stays due now and is not in a grace period.
pub(super) async fn date_after_grace(
    tx: &mut Transaction<'_, MySql>,
    job: JobId,
    request: RequestId,
    grace: Duration,
) -> Result<()> {
    if grace.is_zero() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE mod_jetpack_jobs j JOIN mod_jetpack_requests r ON r.id = ?
         SET j.run_at = GREATEST(j.run_at, r.created_at + INTERVAL ? MICROSECOND),
             j.grace_until = IF(r.created_at + INTERVAL ? MICROSECOND > UTC_TIMESTAMP(6),
                                r.created_at + INTERVAL ? MICROSECOND, NULL)
         WHERE j.id = ? AND j.state = ?",
    )
    .bind(request.0)
    .bind(micros(grace))
    .bind(micros(grace))
    .bind(micros(grace))
    .bind(job)
    .bind(JobState::Queued.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Keep the plan: cancels the terminate `job` of `target` waiting out its grace period, marks
/// the target's ledger rows kept and writes the client's activity line (client 0 when no
/// requester knew it).
pub(super) async fn keep(
    store: &Store,
    tx: &mut Transaction<'_, MySql>,
    job: JobId,
    target: Target,
    client: Option<u32>,
) -> Result<()> {
    let withdrawn = sqlx::query(
        "UPDATE mod_jetpack_jobs SET state = ?, result = ?, grace_until = NULL,
           finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND state = ?",
    )
    .bind(JobState::Cancelled.as_str())
    .bind(KEPT)
    .bind(job)
    .bind(JobState::Queued.as_str())
    .execute(&mut **tx)
    .await?;
    if withdrawn.rows_affected() == 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE mod_jetpack_ledger SET kept_at = UTC_TIMESTAMP(6)
         WHERE service_id = ? AND addon_id = ?",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .execute(&mut **tx)
    .await?;
    let line = format!(
        "JETPACK MODULE: {target} was deleted in WHMCS and an admin chose Keep the plan on the \
         queue page: its Jetpack plan stays at the partner and in jetpack-worker's ledger (job \
         #{job}, its cancel after the deletion grace period, was withdrawn)"
    );
    store.write_activity(tx, client.unwrap_or(0), &line).await
}
