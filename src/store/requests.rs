//! The request inbox, `mod_jetpack_requests`: recording a request is one plain INSERT (what the
//! PHP module, the hooks and the CLI do), and applying them is the worker's: pending requests
//! in the order they were made, each turned into a job change by `lifecycle::on_request`
//! inside one short transaction that also marks them applied with the decision. "The order
//! they were made" is `created_at` (every writer sets it from the database's clock,
//! `UTC_TIMESTAMP(6)`), then id: on a multi-primary Galera cluster each node hands out ids
//! by its own `auto_increment_offset`, so a request made later on one node can have a lower
//! id than an earlier one made on another, and the highest id is not the latest intent.

use std::sync::atomic::Ordering;

use sqlx::mysql::MySqlRow;
use sqlx::{MySql, QueryBuilder, Row, Transaction};

use super::jobs::insert_job;
use super::{Result, Store, StoreError, known, parse_action, parse_state, within};
use crate::backoff;
use crate::domain::{Action, JobId, JobState, RequestedBy, Target};
use crate::lifecycle::{self, Decision, Latest, RequestKind, Unfinished};
use crate::text::{Chain, fit};

/// A request id (`mod_jetpack_requests.id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One request the worker applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The request.
    pub request: RequestId,
    /// Its service or addon.
    pub target: Target,
    /// What was asked; None when the stored action was not understood.
    pub kind: Option<RequestKind>,
    /// What the rules decided.
    pub decision: Option<Decision>,
    /// The job it created or concerned.
    pub job: Option<JobId>,
    /// The decision, in words.
    pub said: String,
}

/// A request as recorded, with what the worker made of it once applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    /// The request.
    pub id: RequestId,
    /// The service or addon.
    pub target: Target,
    /// What was asked; None when the stored action is not one the worker knows (it is
    /// applied as "ignored").
    pub kind: Option<RequestKind>,
    /// Applied yet?
    pub applied: bool,
    /// The job it created or concerned.
    pub job: Option<JobId>,
    /// The decision, in words.
    pub decision: Option<String>,
}

/// What `requeue` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requeued {
    /// The failed jobs queued again with a fresh attempt budget.
    pub jobs: Vec<JobId>,
    /// Each named service (addon) with what became of its retry, in words.
    pub named: Vec<(Target, String)>,
}

/// Requests applied per transaction.
const APPLY_BATCH: u32 = 50;

impl Store {
    /// Records a request: one INSERT, no locking read. Tried again after a lock conflict, as
    /// the PHP module does: on Galera even a plain INSERT can lose one (a replicated write
    /// being applied on this node aborts a local transaction whose locks it needs).
    pub async fn record_request(
        &self,
        target: impl Into<Target>,
        kind: RequestKind,
        by: RequestedBy,
    ) -> Result<RequestId> {
        let target = target.into();
        let mut tries = 0u64;
        loop {
            tries += 1;
            match insert_request(&self.pool, target, kind, by).await {
                Err(e) if tries < backoff::REQUEST_CONFLICTS.tries && e.is_lock_conflict() => {
                    tracing::debug!(tries, error = %Chain(&e), "recording a request hit a lock conflict; trying again");
                    tokio::time::sleep(backoff::REQUEST_CONFLICTS.pause(tries)).await;
                }
                other => return other,
            }
        }
    }

    /// Records a request and applies the inbox at once (what `jetpack-worker enqueue` does);
    /// returns what was decided for this request (`decision` is None when a worker applied
    /// it first; `said` then comes from its row).
    pub async fn enqueue(
        &self,
        target: impl Into<Target>,
        kind: impl Into<RequestKind>,
        by: RequestedBy,
    ) -> Result<Applied> {
        let (target, kind) = (target.into(), kind.into());
        let id = self.record_request(target, kind, by).await?;
        let applied = self.apply_requests().await?;
        if let Some(mine) = applied.into_iter().find(|a| a.request == id) {
            return Ok(mine);
        }
        let row = self.request(id).await?;
        Ok(Applied {
            request: id,
            target,
            kind: Some(kind),
            decision: None,
            job: row.as_ref().and_then(|r| r.job),
            said: row.and_then(|r| r.decision).unwrap_or_default(),
        })
    }

    /// Records a retry for the given services (or every service whose latest job failed) and
    /// applies the inbox: the failed jobs queued again, and what became of each named service
    /// (read back from its request row when another worker applied it first).
    pub async fn requeue<T: Into<Target> + Copy>(
        &self,
        targets: &[T],
        all_failed: bool,
    ) -> Result<Requeued> {
        let mut mine = Vec::new();
        for s in targets {
            let target: Target = (*s).into();
            let id = self
                .record_request(target, RequestKind::Retry, RequestedBy::Cli)
                .await?;
            mine.push((target, id));
        }
        if all_failed {
            self.record_retry_all_failed(RequestedBy::Cli).await?;
        }
        let applied = self.apply_requests().await?;
        let jobs = applied
            .iter()
            .filter(|a| all_failed || mine.iter().any(|(_, id)| *id == a.request))
            .filter_map(|a| match a.decision {
                Some(Decision::Requeue(id)) => Some(id),
                _ => None,
            })
            .collect();
        let mut named = Vec::new();
        for (service, id) in mine {
            let said = match applied.iter().find(|a| a.request == id) {
                Some(a) => a.said.clone(),
                None => self
                    .request(id)
                    .await?
                    .and_then(|r| r.decision)
                    .unwrap_or_else(|| "not applied yet".to_owned()),
            };
            named.push((service, said));
        }
        Ok(Requeued { jobs, named })
    }

    /// Records a retry for every service or addon whose latest job failed; returns how many.
    pub async fn record_retry_all_failed(&self, by: RequestedBy) -> Result<u64> {
        let done = sqlx::query(
            "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
             SELECT j.service_id, j.addon_id, ?, ?, UTC_TIMESTAMP(6) FROM mod_jetpack_jobs j
             WHERE j.state = 'failed'
               AND j.id = (SELECT MAX(k.id) FROM mod_jetpack_jobs k
                           WHERE k.service_id = j.service_id AND k.addon_id = j.addon_id)",
        )
        .bind(RequestKind::Retry.as_str())
        .bind(by.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// A request with the worker's decision (None when there is no such request).
    pub async fn request(&self, id: RequestId) -> Result<Option<RequestRow>> {
        let row = sqlx::query(
            "SELECT id, service_id, addon_id, action, applied_at IS NOT NULL AS applied, job_id,
                    decision
             FROM mod_jetpack_requests WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    /// Whether any request waits that this worker can apply (or one of a kind it does not
    /// know that it has not warned about yet): one index lookup, no lock.
    pub async fn has_pending_requests(&self) -> Result<bool> {
        let lookup = async {
            let seen = self.unknown_requests_seen.load(Ordering::Relaxed);
            let mut q = pending_lookup("", seen);
            let found: Option<(u64,)> = q.build_query_as().fetch_optional(&self.pool).await?;
            Ok(found.is_some())
        };
        within(self.timeout, lookup).await
    }

    /// Applies every pending request this worker can, oldest first (`created_at`, then id), in
    /// batches. Lock conflicts and a race on the one-unfinished-job index roll the batch back
    /// and try it again. A request of a kind it does not know stays pending (with one warning
    /// per request and process), and so do the requests of its target behind it.
    pub async fn apply_requests(&self) -> Result<Vec<Applied>> {
        within(self.timeout, self.warn_unknown_requests()).await?;
        let mut all = Vec::new();
        loop {
            let batch = self.apply_batch_patiently().await?;
            let n = batch.len();
            all.extend(batch);
            if n < APPLY_BATCH as usize {
                return Ok(all);
            }
        }
    }

    async fn apply_batch_patiently(&self) -> Result<Vec<Applied>> {
        let mut tries = 0u64;
        loop {
            tries += 1;
            match within(self.timeout, self.apply_batch()).await {
                Err(e)
                    if tries < backoff::REQUEST_CONFLICTS.tries
                        && (e.is_lock_conflict() || e.is_unique_violation()) =>
                {
                    tracing::debug!(tries, error = %Chain(&e), "applying requests hit a conflict; trying again");
                    tokio::time::sleep(backoff::REQUEST_CONFLICTS.pause(tries)).await;
                }
                other => return other,
            }
        }
    }

    /// Warns once per process about each pending request of a kind this worker does not
    /// know (a newer worker's): it is left for a worker that can read it.
    async fn warn_unknown_requests(&self) -> Result<()> {
        let seen = &self.unknown_requests_seen;
        let mut q = QueryBuilder::<MySql>::new(
            "SELECT id, service_id, addon_id, action FROM mod_jetpack_requests
             WHERE applied_at IS NULL AND id > ",
        );
        q.push_bind(seen.load(Ordering::Relaxed)).push(" AND ");
        known::push_unknown(&mut q, "");
        q.push(" ORDER BY id LIMIT 100");
        let rows: Vec<(u64, u32, u32, String)> = q.build_query_as().fetch_all(&self.pool).await?;
        for (id, service, addon, kind) in rows {
            let target = Target::from_ids(service, addon);
            tracing::warn!(request = id, %target, kind = %fit(&kind, 40),
                "a request of a kind this worker does not know, or from a requester it does not know (written by a newer jetpack-worker?), is left pending, and the later requests of its target wait behind it; upgrade this worker");
            seen.fetch_max(id, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn apply_batch(&self) -> Result<Vec<Applied>> {
        let mut tx = self.begin().await?;
        let rows = batch_read("").build().fetch_all(&mut *tx).await?;
        let mut applied = Vec::with_capacity(rows.len());
        for row in &rows {
            let one = apply_row(&mut tx, row).await?;
            mark_applied(&mut tx, &one).await?;
            applied.push(one);
        }
        tx.commit().await?;
        for a in &applied {
            tracing::info!(request = %a.request, target = %a.target, decision = %a.said, "request applied");
        }
        Ok(applied)
    }
}

impl Store {
    /// The EXPLAIN of the inbox's two reads (the pending lookup and the batch read), as the
    /// worker runs them: every table by an index (checked by the tests).
    pub async fn explain_inbox(&self) -> Result<Vec<(&'static str, Vec<super::PlanStep>)>> {
        let mut lookup = pending_lookup("EXPLAIN ", 0);
        let mut batch = batch_read("EXPLAIN ");
        Ok(vec![
            (
                "pending",
                super::adoption::plan(&mut lookup, &self.pool).await?,
            ),
            (
                "batch",
                super::adoption::plan(&mut batch, &self.pool).await?,
            ),
        ])
    }
}

/// Whether a request waits that this worker can apply, or one it cannot that it has not
/// warned about (id above `seen`).
fn pending_lookup(prefix: &str, seen: u64) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push("SELECT r.id FROM mod_jetpack_requests r WHERE r.applied_at IS NULL AND ((");
    known::push_applicable(&mut q);
    q.push(") OR (");
    known::push_unknown(&mut q, "r.");
    q.push(" AND r.id > ").push_bind(seen).push(")) LIMIT 1");
    q
}

/// The next batch of requests this worker can apply, oldest first, locked.
fn batch_read(prefix: &str) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push(
        "SELECT r.id, r.service_id, r.addon_id, r.action, r.requested_by
         FROM mod_jetpack_requests r WHERE r.applied_at IS NULL AND ",
    );
    known::push_applicable(&mut q);
    q.push(" ORDER BY r.created_at, r.id LIMIT ")
        .push_bind(APPLY_BATCH)
        .push(" FOR UPDATE");
    q
}

/// Records a request: one INSERT, no locking read (on the pool, or inside a transaction).
pub(super) async fn insert_request<'c>(
    db: impl sqlx::Executor<'c, Database = MySql>,
    target: Target,
    kind: RequestKind,
    by: RequestedBy,
) -> Result<RequestId> {
    insert_requests(db, &[target], kind, by).await
}

/// Records one request per target, all of the same kind and requester: one multi-row
/// INSERT, no locking read. Returns the first row's id (the only one a multi-row INSERT
/// tells): every row's id is at least that, but the others are not consecutive (Galera's
/// `innodb_autoinc_lock_mode = 2` and its per-node offsets), so never compute them from it.
/// `targets` must not be empty.
pub(super) async fn insert_requests<'c>(
    db: impl sqlx::Executor<'c, Database = MySql>,
    targets: &[Target],
    kind: RequestKind,
    by: RequestedBy,
) -> Result<RequestId> {
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at) ",
    );
    q.push_values(targets, |mut b, target| {
        b.push_bind(target.service())
            .push_bind(target.addon_id())
            .push_bind(kind.as_str())
            .push_bind(by.as_str())
            .push("UTC_TIMESTAMP(6)");
    });
    let done = q.build().execute(db).await?;
    Ok(RequestId(done.last_insert_id()))
}

/// Applies one pending request row inside the batch's transaction (the batch holds only
/// requests of a kind the worker knows). A request whose requester the worker does not know
/// changes nothing and is applied as "ignored".
async fn apply_row(tx: &mut Transaction<'_, MySql>, row: &MySqlRow) -> Result<Applied> {
    let request = RequestId(row.try_get("id")?);
    let target = Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?);
    let action: &str = row.try_get("action")?;
    let by: &str = row.try_get("requested_by")?;
    let Some(kind) = RequestKind::parse(action) else {
        return Err(StoreError::Corrupt(format!("request kind {action:?}")));
    };
    let Some(by) = RequestedBy::parse(by) else {
        let said = format!(
            "ignored: {} is not a requester the worker knows",
            fit(by, 40)
        );
        return Ok(ignored(request, target, Some(kind), said));
    };
    if adoption_overtaken(tx, request, target, kind, by).await? {
        let said = "ignored: the service was already requested (adoption is only a safety net)";
        return Ok(ignored(request, target, Some(kind), said.to_owned()));
    }
    if reconcile_overtaken(tx, request, target, by).await? {
        let said = "ignored: a newer request for it came in after the reconciler looked";
        return Ok(ignored(request, target, Some(kind), said.to_owned()));
    }
    apply_one(tx, request, target, kind, by).await
}

/// A request that changes nothing, with why.
fn ignored(request: RequestId, target: Target, kind: Option<RequestKind>, said: String) -> Applied {
    Applied {
        request,
        target,
        kind,
        decision: None,
        job: None,
        said,
    }
}

/// Marks a request applied, with the job it concerned and the decision in words.
async fn mark_applied(tx: &mut Transaction<'_, MySql>, applied: &Applied) -> Result<()> {
    sqlx::query(
        "UPDATE mod_jetpack_requests SET applied_at = UTC_TIMESTAMP(6), job_id = ?, decision = ?
         WHERE id = ?",
    )
    .bind(applied.job.map(|j| j.0))
    .bind(fit(&applied.said, 255))
    .bind(applied.request.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn request_row(row: &MySqlRow) -> Result<RequestRow> {
    let applied: i64 = row.try_get("applied")?;
    let job: Option<u64> = row.try_get("job_id")?;
    Ok(RequestRow {
        id: RequestId(row.try_get("id")?),
        target: Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?),
        kind: RequestKind::parse(row.try_get("action")?),
        applied: applied != 0,
        job: job.map(JobId),
        decision: row.try_get("decision")?,
    })
}

/// Whether this is an adoption's provision request for a target that has another request
/// or a job (a hook or the module recorded one while the scan looked): it then changes
/// nothing, so a target is provisioned once whether the hook, the scan or both saw it.
async fn adoption_overtaken(
    tx: &mut Transaction<'_, MySql>,
    request: RequestId,
    target: Target,
    kind: RequestKind,
    by: RequestedBy,
) -> Result<bool> {
    if by != RequestedBy::Adopt || kind != RequestKind::Provision {
        return Ok(false);
    }
    let (other,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM mod_jetpack_jobs WHERE service_id = ? AND addon_id = ?)
             OR EXISTS (SELECT 1 FROM mod_jetpack_requests
                        WHERE service_id = ? AND addon_id = ? AND id <> ?)",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .bind(target.service())
    .bind(target.addon_id())
    .bind(request.0)
    .fetch_one(&mut **tx)
    .await?;
    Ok(other)
}

/// A reconciler's request (dated at its look) when the target got a request made after it:
/// the newer intent wins, even if it was applied first.
async fn reconcile_overtaken(
    tx: &mut Transaction<'_, MySql>,
    request: RequestId,
    target: Target,
    by: RequestedBy,
) -> Result<bool> {
    if by != RequestedBy::Reconcile {
        return Ok(false);
    }
    let (newer,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM mod_jetpack_requests r
                        WHERE r.service_id = ? AND r.addon_id = ? AND r.id <> ?
                          AND r.created_at >= (SELECT created_at FROM mod_jetpack_requests
                                               WHERE id = ?))",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .bind(request.0)
    .bind(request.0)
    .fetch_one(&mut **tx)
    .await?;
    Ok(newer)
}

/// Reads the target's jobs under lock, asks the rules, and carries out the decision.
async fn apply_one(
    tx: &mut Transaction<'_, MySql>,
    request: RequestId,
    target: Target,
    kind: RequestKind,
    by: RequestedBy,
) -> Result<Applied> {
    let unfinished = unfinished_job(tx, target).await?;
    let latest = match (kind, unfinished) {
        (RequestKind::Retry | RequestKind::Change, None) => latest_job(tx, target).await?,
        _ => None,
    };
    let decision = lifecycle::on_request(kind, unfinished, latest);
    let (job, new_job) = carry_out(tx, target, decision, by).await?;
    Ok(Applied {
        request,
        target,
        kind: Some(kind),
        decision: Some(decision),
        job,
        said: lifecycle::describe(decision, new_job),
    })
}

async fn unfinished_job(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
) -> Result<Option<Unfinished>> {
    let row = sqlx::query(
        "SELECT id, action, state, follow_up FROM mod_jetpack_jobs
         WHERE unfinished_service_id = ? AND addon_id = ? FOR UPDATE",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let next: Option<String> = row.try_get("follow_up")?;
    Ok(Some(Unfinished {
        id: JobId(row.try_get("id")?),
        action: parse_action(&row.try_get::<String, _>("action")?)?,
        state: parse_state(&row.try_get::<String, _>("state")?)?,
        next: next.as_deref().map(parse_action).transpose()?,
    }))
}

async fn latest_job(tx: &mut Transaction<'_, MySql>, target: Target) -> Result<Option<Latest>> {
    let row = sqlx::query(
        "SELECT id, action, state FROM mod_jetpack_jobs WHERE service_id = ? AND addon_id = ?
         ORDER BY id DESC LIMIT 1 FOR UPDATE",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|row| {
        Ok(Latest {
            id: JobId(row.try_get("id")?),
            action: parse_action(&row.try_get::<String, _>("action")?)?,
            state: parse_state(&row.try_get::<String, _>("state")?)?,
        })
    })
    .transpose()
}

/// Writes a decision. Returns (the job it concerns, the job it created).
async fn carry_out(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    decision: Decision,
    by: RequestedBy,
) -> Result<(Option<JobId>, Option<JobId>)> {
    match decision {
        Decision::Insert(action) => {
            let id = insert_job(tx, target, action, by).await?;
            Ok((Some(id), Some(id)))
        }
        Decision::Supersede { cancel, then } => {
            cancel_superseded(tx, cancel, then).await?;
            let id = insert_job(tx, target, then, by).await?;
            Ok((Some(id), Some(id)))
        }
        Decision::DueNow(id) => {
            make_due_now(tx, id).await?;
            Ok((Some(id), None))
        }
        Decision::SetNext(id, next) => {
            set_follow_up(tx, id, next).await?;
            Ok((Some(id), None))
        }
        Decision::Requeue(id) => {
            requeue_failed(tx, id).await?;
            Ok((Some(id), None))
        }
        Decision::Nothing(_) => Ok((None, None)),
    }
}

/// Cancels a job that has not started, because `then` was asked for before it ran.
async fn cancel_superseded(
    tx: &mut Transaction<'_, MySql>,
    job: JobId,
    then: Action,
) -> Result<()> {
    sqlx::query(
        "UPDATE mod_jetpack_jobs SET state = ?, result = ?,
           finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND state IN ('queued', 'waiting_dns')",
    )
    .bind(JobState::Cancelled.as_str())
    .bind(format!(
        "superseded: a {} was requested before it ran",
        then.as_str()
    ))
    .bind(job)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes a job that waits (a retry delay, a DNS re-check) due now.
async fn make_due_now(tx: &mut Transaction<'_, MySql>, job: JobId) -> Result<()> {
    sqlx::query(
        "UPDATE mod_jetpack_jobs SET run_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND state IN ('queued', 'waiting_dns') AND run_at > UTC_TIMESTAMP(6)",
    )
    .bind(job)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets (or, with None, clears) the action a running job is followed by.
async fn set_follow_up(
    tx: &mut Transaction<'_, MySql>,
    job: JobId,
    next: Option<Action>,
) -> Result<()> {
    sqlx::query(
        "UPDATE mod_jetpack_jobs SET follow_up = ?, updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND state = 'running'",
    )
    .bind(next.map(Action::as_str))
    .bind(job)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Puts a failed job back to queued, due now, with a fresh attempt budget.
async fn requeue_failed(tx: &mut Transaction<'_, MySql>, job: JobId) -> Result<()> {
    sqlx::query(
        "UPDATE mod_jetpack_jobs
         SET state = ?, attempts = 0, dns_checks = 0, waiting_since = NULL,
             run_at = UTC_TIMESTAMP(6), finished_at = NULL, lease_owner = NULL,
             lease_token = NULL, lease_expires_at = NULL, follow_up = NULL,
             updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND state = 'failed'",
    )
    .bind(JobState::Queued.as_str())
    .bind(job)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
