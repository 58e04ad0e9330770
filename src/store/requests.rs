//! The request inbox, `mod_jetpack_requests`: recording a request is one plain INSERT (what the
//! PHP module, the hooks and the CLI do), and applying them is the worker's: pending requests
//! in the order they were made, each turned into a job change by `lifecycle::on_request`
//! inside one short transaction per batch (applied as sets, `apply`) that also marks them
//! applied with the decision. "The order they were made" is `created_at` (every writer sets
//! it from the database's clock, `UTC_TIMESTAMP(6)`), then id: on a multi-primary Galera
//! cluster each node hands out ids by its own `auto_increment_offset`, so a request made later
//! on one node can have a lower id than an earlier one made on another, and the highest id is
//! not the latest intent.

use std::sync::atomic::Ordering;

use sqlx::mysql::MySqlRow;
use sqlx::{MySql, QueryBuilder, Row};

use super::{Result, Store, StoreError, apply, known, on_conflicts, within};
use crate::domain::{JobId, RequestedBy, Target};
use crate::lifecycle::{Decision, RequestKind};
use crate::text::fit;

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

/// What one batch applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedBatch {
    /// The requests, in the order they were made.
    pub applied: Vec<Applied>,
    /// The batch was full: more requests may be waiting.
    pub full: bool,
}

/// Requests applied per transaction: a few statements per round of a batch, so a backlog of
/// Creates costs a few hundredths of a statement each, in a transaction of a few ms.
pub const APPLY_BATCH: u32 = 500;

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
        on_conflicts("recording a request", StoreError::is_lock_conflict, || {
            insert_request(&self.pool, target, kind, by)
        })
        .await
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
        self.apply_requests_by(APPLY_BATCH).await
    }

    /// [`Store::apply_requests`] in batches of `batch` requests (the tests compare sizes).
    #[doc(hidden)]
    pub async fn apply_requests_by(&self, batch: u32) -> Result<Vec<Applied>> {
        within(self.timeout, self.warn_unknown_requests()).await?;
        let mut all = Vec::new();
        loop {
            let applied = self.apply_batch_patiently(batch.max(1)).await?;
            let full = applied.len() >= batch.max(1) as usize;
            all.extend(applied);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Applies one batch of up to `size` pending requests (at most [`APPLY_BATCH`]; what the
    /// engine does once per turn, so a backlog never holds claims back). `full` says more may
    /// be waiting.
    pub async fn apply_request_batch(&self, size: u32) -> Result<AppliedBatch> {
        let size = size.clamp(1, APPLY_BATCH);
        within(self.timeout, self.warn_unknown_requests()).await?;
        let applied = self.apply_batch_patiently(size).await?;
        Ok(AppliedBatch {
            full: applied.len() >= size as usize,
            applied,
        })
    }

    async fn apply_batch_patiently(&self, size: u32) -> Result<Vec<Applied>> {
        on_conflicts(
            "applying requests",
            |e| e.is_lock_conflict() || e.is_unique_violation(),
            || within(self.timeout, self.apply_batch(size)),
        )
        .await
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

    /// One batch, set by set, in one transaction (`apply`).
    async fn apply_batch(&self, size: u32) -> Result<Vec<Applied>> {
        let mut tx = self.begin().await?;
        let rows = batch_read("", size).build().fetch_all(&mut *tx).await?;
        let applied = apply::apply_rows(self, &mut tx, &rows).await?;
        tx.commit().await?;
        for a in &applied {
            tracing::info!(request = %a.request, target = %a.target, decision = %a.said, "request applied");
        }
        Ok(applied)
    }
}

impl Store {
    /// The EXPLAIN of the inbox's statements that read the requests or jobs (the pending
    /// lookup, the batch read, and the set statements that apply a batch), as the worker runs
    /// them: every table by an index (checked by the tests).
    pub async fn explain_inbox(&self) -> Result<Vec<(&'static str, Vec<super::PlanStep>)>> {
        let mut statements = vec![
            ("pending", pending_lookup("EXPLAIN ", 0)),
            ("batch", batch_read("EXPLAIN ", APPLY_BATCH)),
        ];
        statements.extend(apply::explained("EXPLAIN "));
        let mut plans = Vec::with_capacity(statements.len());
        for (name, mut q) in statements {
            plans.push((name, super::explain::plan(&mut q, &self.pool).await?));
        }
        Ok(plans)
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
fn batch_read(prefix: &str, size: u32) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push(
        "SELECT r.id, r.service_id, r.addon_id, r.action, r.requested_by, r.client_id, r.detail
         FROM mod_jetpack_requests r WHERE r.applied_at IS NULL AND ",
    );
    known::push_applicable(&mut q);
    q.push(" ORDER BY r.created_at, r.id LIMIT ")
        .push_bind(size)
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
