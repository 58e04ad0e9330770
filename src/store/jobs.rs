//! Writing `mod_jetpack_jobs` rows outside a claim or a finish: the one INSERT that creates
//! jobs (for requests, `apply`, one row or a set, or for the request that waited behind a
//! finishing job, `finish`), and lease renewal (which may also extend a lease to cover an acting call).
//! Claiming is `claim`, finishing and giving back are `finish`; reading the table back and
//! maintenance live in `report`.

use std::time::Duration;

use std::collections::{HashMap, HashSet};

use sqlx::query_builder::Separated;
use sqlx::{MySql, QueryBuilder, Transaction};

use super::known::push_list;
use super::{ClaimedJob, Result, Store, StoreError, within};
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

/// The columns of a new job; [`push_new_job`] pushes one row of values for them.
const INSERT_JOBS: &str = "INSERT INTO mod_jetpack_jobs
   (service_id, addon_id, action, state, run_at, outcome_unknown, requested_by, created_at,
    updated_at) ";

/// A job to queue: for whom, what, and who asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NewJob {
    /// The service or addon.
    pub target: Target,
    /// What it does.
    pub action: Action,
    /// Who asked (copied from the request).
    pub by: RequestedBy,
}

/// Pushes one new job's values: queued, due now, "may have acted unseen" as `unknown`.
fn push_new_job(mut row: Separated<'_, MySql, &'static str>, job: &NewJob, unknown: bool) {
    row.push_bind(job.target.service())
        .push_bind(job.target.addon_id())
        .push_bind(job.action.as_str())
        .push_bind(JobState::Queued.as_str())
        .push("UTC_TIMESTAMP(6)")
        .push_bind(unknown)
        .push_bind(job.by.as_str())
        .push("UTC_TIMESTAMP(6)")
        .push("UTC_TIMESTAMP(6)");
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
    let job = NewJob { target, action, by };
    let unknown = action.may_provide() && !provisions_unknown(tx, &[target]).await?.is_empty();
    let mut q = QueryBuilder::<MySql>::new(INSERT_JOBS);
    q.push_values([job], |row, job| push_new_job(row, &job, unknown));
    let done = q.build().execute(&mut **tx).await?;
    Ok(JobId(done.last_insert_id()))
}

/// [`insert_job`] for a set of jobs, at most one per target (each becomes its target's one
/// unfinished job): the inheritance read for all of them, ONE multi-row INSERT, and their ids
/// read back through the one-unfinished-job index (on Galera, `innodb_autoinc_lock_mode=2`
/// does not hand a multi-row INSERT consecutive ids). The ids come in the order of `jobs`.
pub(super) async fn insert_jobs(
    tx: &mut Transaction<'_, MySql>,
    jobs: &[NewJob],
) -> Result<Vec<JobId>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let provisioning: Vec<Target> = jobs
        .iter()
        .filter(|j| j.action.may_provide())
        .map(|j| j.target)
        .collect();
    let unknown = provisions_unknown(tx, &provisioning).await?;
    let mut q = QueryBuilder::<MySql>::new(INSERT_JOBS);
    q.push_values(jobs, |row, job| {
        let inherits = job.action.may_provide() && unknown.contains(&job.target);
        push_new_job(row, job, inherits);
    });
    q.build().execute(&mut **tx).await?;
    let targets: Vec<Target> = jobs.iter().map(|j| j.target).collect();
    let ids = unfinished_ids("", &targets)
        .build_query_as::<(u64, u32, u32)>()
        .fetch_all(&mut **tx)
        .await?;
    let by_target: HashMap<Target, JobId> = ids
        .into_iter()
        .map(|(id, service, addon)| (Target::from_ids(service, addon), JobId(id)))
        .collect();
    targets
        .iter()
        .map(|t| {
            by_target
                .get(t)
                .copied()
                .ok_or_else(|| StoreError::Corrupt(format!("the job just queued for {t} is gone")))
        })
        .collect()
}

/// Pushes `((s = ? AND a = ?) OR …)`: the rows of these targets by the columns named.
pub(super) fn push_targets(
    q: &mut QueryBuilder<MySql>,
    service: &str,
    addon: &str,
    targets: &[Target],
) {
    q.push("(");
    for (i, t) in targets.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push(format_args!("({service} = "))
            .push_bind(t.service())
            .push(format_args!(" AND {addon} = "))
            .push_bind(t.addon_id())
            .push(")");
    }
    q.push(")");
}

/// The ids of these targets' unfinished jobs, by the one-unfinished-job index.
pub(super) fn unfinished_ids(prefix: &str, targets: &[Target]) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push("SELECT id, service_id, addon_id FROM mod_jetpack_jobs WHERE ");
    push_targets(&mut q, "unfinished_service_id", "addon_id", targets);
    q
}

/// Of these targets, those whose latest provision (or change) job ended other than done with
/// its outcome unknown.
async fn provisions_unknown(
    tx: &mut Transaction<'_, MySql>,
    targets: &[Target],
) -> Result<HashSet<Target>> {
    if targets.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<(u32, u32, String, bool)> = latest_provisions("", targets)
        .build_query_as()
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, state, unknown)| *unknown && JobState::parse(state) != Some(JobState::Done))
        .map(|(service, addon, _, _)| Target::from_ids(service, addon))
        .collect())
}

/// Each target's latest provision (or change) job: its state and whether its outcome is
/// unknown.
pub(super) fn latest_provisions(prefix: &str, targets: &[Target]) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push(
        "SELECT j.service_id, j.addon_id, j.state, j.outcome_unknown FROM mod_jetpack_jobs j
         JOIN (SELECT MAX(k.id) AS id FROM mod_jetpack_jobs k
               WHERE k.action IN ",
    );
    push_list(&mut q, &Action::names_where(Action::may_provide));
    q.push(" AND ");
    push_targets(&mut q, "k.service_id", "k.addon_id", targets);
    q.push(" GROUP BY k.service_id, k.addon_id) m ON m.id = j.id");
    q
}
