//! Finishing many attempts in one transaction: the completer's write (`worker::completer`).
//! The fences of every job are read in one `SELECT … FOR UPDATE`; a job whose lease was lost
//! gets `false` and nothing of it is written. The jobs whose fence held with nothing waiting
//! behind them and a plain outcome (a service, ledger changes only `Holds`, no Module Queue
//! Add) are written set-based: their job rows in one UPDATE joined to a derived table of
//! values (each still fenced by its token in the statement), the ledger, the watch and
//! WHMCS's side each in one statement for all of them. Every other held job goes through
//! one job's finish (`Store::finish_in`) inside the same transaction. If the transaction
//! fails for any reason it is rolled back and each job is written on its own with
//! `Store::finish`, so an error keeps its per-job meaning (an outage, a refused value, a
//! lock conflict).

use std::collections::HashMap;

use sqlx::{MySql, QueryBuilder, Transaction};
use tokio::task::JoinSet;

use super::chunks::by_bytes;
use super::finish::{JobValues, watch_soon};
use super::ledger::write_claimed_holds;
use super::watch::note_holds_many;
use super::{ClaimedJob, Finish, LedgerWrite, ModuleQueueWrite, Result, Store, within};
use crate::domain::{JobId, Target};
use crate::text::Chain;

/// A job's row as the batch's fence read it: whether the lease is still ours, and whether a
/// request waits behind it.
struct Fence {
    held: bool,
    follow_up: bool,
}

impl Store {
    /// Applies each (job, finish) whose lease is still ours, all in one short transaction.
    /// Per job, in order: true when written, false when its lease was lost (nothing of it
    /// written), or the error of writing it on its own after the batch's transaction failed
    /// (see the module's documentation).
    pub async fn finish_batch(&self, batch: &[(ClaimedJob, Finish)]) -> Vec<Result<bool>> {
        match batch {
            [] => return Vec::new(),
            // One job alone: its own finish is fewer statements (its fenced UPDATE first,
            // no separate read of the fence).
            [(job, f)] => return vec![self.finish(job, f).await],
            _ => {}
        }
        match within(self.timeout, self.finish_batch_once(batch)).await {
            Ok(Some(written)) => return written.into_iter().map(Ok).collect(),
            Ok(None) => {
                tracing::debug!(
                    jobs = batch.len(),
                    "a details row read with the claim is gone; finishing the batch one by one"
                );
            }
            // An outage or a lock conflict is each job's own to ride out; any other refusal
            // of the batched statements is said, so a cause that only batches meet is seen.
            Err(e) if e.is_connection_trouble() || e.is_lock_conflict() => {
                tracing::debug!(jobs = batch.len(), error = %Chain(&e), "the batch's finishing write failed; finishing its jobs one by one");
            }
            Err(e) => {
                tracing::warn!(jobs = batch.len(), error = %Chain(&e), "the database refused a batch of outcomes; finishing its jobs one by one");
            }
        }
        self.finish_each(batch).await
    }

    /// Each job written on its own with [`Store::finish`], at once (each on its own pooled
    /// connection, so an outage costs one timeout, not one per job).
    async fn finish_each(&self, batch: &[(ClaimedJob, Finish)]) -> Vec<Result<bool>> {
        let mut tasks = JoinSet::new();
        for (n, (job, f)) in batch.iter().enumerate() {
            let (store, job, f) = (self.clone(), job.clone(), f.clone());
            tasks.spawn(async move { (n, store.finish(&job, &f).await) });
        }
        let mut out: Vec<Option<Result<bool>>> = batch.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((n, written)) = joined {
                out[n] = Some(written);
            }
        }
        // A task that panicked wrote nothing we know of: its lease expires and the job is
        // reclaimed, as for any outcome that could not be written.
        out.into_iter()
            .map(|r| {
                r.unwrap_or(Err(super::StoreError::Corrupt(
                    "finishing task panicked".into(),
                )))
            })
            .collect()
    }

    /// The batch in one transaction; None (rolled back) when it must be written one by one.
    async fn finish_batch_once(&self, batch: &[(ClaimedJob, Finish)]) -> Result<Option<Vec<bool>>> {
        let mut tx = self.begin().await?;
        let fences = read_fences(&mut tx, batch).await?;
        let mut written = vec![false; batch.len()];
        let mut plain = Vec::new();
        for (n, (job, f)) in batch.iter().enumerate() {
            match fences.get(&job.id) {
                Some(Fence {
                    held: true,
                    follow_up: false,
                }) if is_plain(job, f) => plain.push(n),
                Some(Fence { held: true, .. }) => {
                    written[n] = self.finish_in(&mut tx, job, f).await?
                }
                _ => {}
            }
        }
        let jobs: Vec<(&ClaimedJob, &Finish)> =
            plain.iter().map(|&n| (&batch[n].0, &batch[n].1)).collect();
        if !self.finish_plain(&mut tx, &jobs).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        for n in plain {
            written[n] = true;
        }
        tx.commit().await?;
        Ok(Some(written))
    }

    /// The plain outcomes, set-based; false when the batch must be written one by one.
    async fn finish_plain(
        &self,
        tx: &mut Transaction<'_, MySql>,
        jobs: &[(&ClaimedJob, &Finish)],
    ) -> Result<bool> {
        if jobs.is_empty() {
            return Ok(true);
        }
        if update_jobs(tx, jobs).await? < jobs.len() as u64 {
            return Ok(false);
        }
        let ledger: Vec<(&ClaimedJob, &[LedgerWrite])> = jobs
            .iter()
            .map(|(j, f)| (*j, f.ledger.as_slice()))
            .collect();
        write_claimed_holds(tx, &ledger).await?;
        let watch: Vec<(Target, &str, bool)> = jobs
            .iter()
            .flat_map(|(j, f)| {
                let soon = watch_soon(j, f);
                f.ledger.iter().filter_map(move |w| match w {
                    LedgerWrite::Holds { site, .. } => Some((j.target, site.as_str(), soon)),
                    LedgerWrite::Cancelled { .. } => None,
                })
            })
            .collect();
        note_holds_many(tx, &watch, &self.watch).await?;
        let whmcs: Vec<_> = jobs
            .iter()
            .map(|(j, f)| (j.target, &f.whmcs, j.module_debug))
            .collect();
        self.write_whmcs_many(tx, &whmcs).await
    }
}

/// Whether an outcome is written set-based: a service's, whose ledger changes are all
/// `Holds` and which adds no Module Queue entry. (Cancels, Module Queue Adds and addons go
/// through one job's finish.)
fn is_plain(job: &ClaimedJob, f: &Finish) -> bool {
    matches!(job.target, Target::Service(_))
        && f.ledger
            .iter()
            .all(|w| matches!(w, LedgerWrite::Holds { .. }))
        && !matches!(f.whmcs.module_queue, Some(ModuleQueueWrite::Add { .. }))
}

/// Every job's row, locked, in one `SELECT … WHERE id IN (…) FOR UPDATE` (by the primary
/// key): whether its lease is still the one the job holds, and whether a request waits.
async fn read_fences(
    tx: &mut Transaction<'_, MySql>,
    batch: &[(ClaimedJob, Finish)],
) -> Result<HashMap<JobId, Fence>> {
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT id, lease_token, state, follow_up FROM mod_jetpack_jobs WHERE id IN (",
    );
    let mut list = q.separated(", ");
    for (job, _) in batch {
        list.push_bind(job.id);
    }
    q.push(") FOR UPDATE");
    let rows: Vec<(u64, Option<String>, String, Option<String>)> =
        q.build_query_as().fetch_all(&mut **tx).await?;
    let tokens: HashMap<JobId, &str> = batch
        .iter()
        .map(|(j, _)| (j.id, j.lease_token.as_str()))
        .collect();
    Ok(rows
        .into_iter()
        .map(|(id, token, state, follow_up)| {
            let id = JobId(id);
            let held = state == "running" && token.as_deref() == tokens.get(&id).copied();
            let fence = Fence {
                held,
                follow_up: follow_up.is_some(),
            };
            (id, fence)
        })
        .collect())
}

/// The plain jobs' rows in UPDATEs joined to a derived table of their values (the same
/// values one job's finish sets, `JobValues`), each row still fenced in the statement by its
/// token, `running` and nothing waiting behind it. Returns the rows matched.
async fn update_jobs(
    tx: &mut Transaction<'_, MySql>,
    jobs: &[(&ClaimedJob, &Finish)],
) -> Result<u64> {
    let values: Vec<(&ClaimedJob, JobValues)> = jobs
        .iter()
        .map(|(j, f)| (*j, JobValues::of(f, None)))
        .collect();
    let size = |(_, v): &(&ClaimedJob, JobValues)| {
        v.last_error.as_ref().map_or(0, String::len)
            + v.result.as_ref().map_or(0, String::len)
            + v.details.as_ref().map_or(0, String::len)
    };
    let mut matched = 0;
    for run in by_bytes(&values, size) {
        let mut q = QueryBuilder::<MySql>::new("UPDATE mod_jetpack_jobs j JOIN (");
        for (n, (job, v)) in run.iter().enumerate() {
            q.push(if n == 0 {
                "SELECT "
            } else {
                " UNION ALL SELECT "
            });
            q.push_bind(job.id).push(" AS v_id, ");
            q.push_bind(job.lease_token.as_str()).push(" AS v_token, ");
            q.push_bind(v.state.as_str()).push(" AS v_state, ");
            q.push_bind(v.run_in).push(" AS v_run_in, ");
            q.push_bind(v.last_error.as_deref()).push(" AS v_error, ");
            q.push_bind(v.result.as_deref()).push(" AS v_result, ");
            q.push_bind(v.details.as_deref()).push(" AS v_details, ");
            q.push_bind(v.start_waiting).push(" AS v_wait, ");
            q.push_bind(v.outcome_unknown).push(" AS v_unknown, ");
            q.push_bind(v.in_module_queue).push(" AS v_queue, ");
            q.push_bind(v.state.is_finished()).push(" AS v_finished");
        }
        q.push(
            ") v ON j.id = v.v_id
             SET j.state = v.v_state, j.run_at = UTC_TIMESTAMP(6) + INTERVAL v.v_run_in MICROSECOND,
               j.last_error = COALESCE(v.v_error, j.last_error),
               j.result = COALESCE(v.v_result, j.result),
               j.details = COALESCE(v.v_details, j.details),
               j.waiting_since = IF(v.v_wait AND j.waiting_since IS NULL, UTC_TIMESTAMP(6),
                                    j.waiting_since),
               j.outcome_unknown = COALESCE(v.v_unknown, j.outcome_unknown),
               j.in_module_queue = IF(v.v_queue, 1, j.in_module_queue),
               j.lease_owner = NULL, j.lease_token = NULL, j.lease_expires_at = NULL,
               j.finished_at = IF(v.v_finished, UTC_TIMESTAMP(6), NULL),
               j.updated_at = UTC_TIMESTAMP(6)
             WHERE CAST(j.lease_token AS BINARY) = CAST(v.v_token AS BINARY)
               AND j.state = 'running' AND j.follow_up IS NULL",
        );
        // Affected rows count matched rows (sqlx connects with CLIENT_FOUND_ROWS).
        matched += q.build().execute(&mut **tx).await?.rows_affected();
    }
    Ok(matched)
}
