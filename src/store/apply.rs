//! Applying one batch of pending requests as sets, inside one short transaction. The batch
//! (oldest first, read and locked by `requests`) is grouped by target and applied in rounds:
//! round k takes the k-th request of each target, so a target's requests keep their order and
//! a batch of distinct targets is one round. Each round costs a few statements for the whole
//! set: the unfinished jobs of its targets in one locking read (the one-unfinished-job index),
//! the latest jobs of the targets a Retry or a change needs them for, the rare decisions other
//! than an insert one statement each, and the new jobs in one multi-row INSERT
//! (`jobs::insert_jobs`). Before the rounds, the adoption and reconciler checks read their
//! requests' targets once; after them, one UPDATE marks the whole batch applied. What each
//! request does is `lifecycle::on_request`'s, word for word as when requests were applied one
//! at a time.

use std::collections::HashMap;

use sqlx::mysql::MySqlRow;
use sqlx::{MySql, QueryBuilder, Row, Transaction};

use super::jobs::{NewJob, insert_jobs, latest_provisions, push_targets, unfinished_ids};
use super::licences::{Decided, decide};
use super::requests::{Applied, RequestId};
use super::{Result, StoreError, parse_action, parse_state};
use crate::domain::{Action, AddonId, JobId, JobState, RequestedBy, ServiceId, Target};
use crate::lifecycle::{self, Decision, Latest, NothingReason, RequestKind, Unfinished};
use crate::text::fit;

/// Why an adoption's provision request changes nothing.
const ADOPTION_OVERTAKEN: &str =
    "ignored: the service was already requested (adoption is only a safety net)";
/// Why a reconciler's request changes nothing.
const RECONCILE_OVERTAKEN: &str =
    "ignored: a newer request for it came in after the reconciler looked";

/// A request of the batch that the rules decide on.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Its place in the batch.
    at: usize,
    request: RequestId,
    target: Target,
    kind: RequestKind,
    by: RequestedBy,
}

/// Applies the batch `rows` (oldest first, locked) and marks every one applied; returns what
/// became of each, in the batch's order.
pub(super) async fn apply_rows(
    tx: &mut Transaction<'_, MySql>,
    rows: &[MySqlRow],
) -> Result<Vec<Applied>> {
    let mut done: Vec<Option<Applied>> = vec![None; rows.len()];
    let mut pending = Vec::with_capacity(rows.len());
    let mut details = HashMap::new();
    for (at, row) in rows.iter().enumerate() {
        if let Some(detail) = row.try_get::<Option<String>, _>("detail")? {
            details.insert(RequestId(row.try_get("id")?), detail);
        }
        match read_row(at, row)? {
            Ok(p) => pending.push(p),
            Err(ignored) => done[at] = Some(ignored),
        }
    }
    for (p, said) in overtaken(tx, &pending).await? {
        done[p.at] = Some(ignored(p.request, p.target, Some(p.kind), said.to_owned()));
    }
    let pending: Vec<Pending> = pending
        .into_iter()
        .filter(|p| done[p.at].is_none())
        .collect();
    for round in rounds(&pending) {
        for (p, applied) in round.iter().zip(apply_round(tx, &round, &details).await?) {
            done[p.at] = Some(applied);
        }
    }
    let applied: Vec<Applied> = done.into_iter().flatten().collect();
    mark_applied(tx, &applied).await?;
    Ok(applied)
}

/// A batch row as a request the rules decide on, or (Err) one applied as "ignored": from a
/// requester the worker does not know. The batch holds only kinds the worker knows.
fn read_row(at: usize, row: &MySqlRow) -> Result<std::result::Result<Pending, Applied>> {
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
        return Ok(Err(ignored(request, target, Some(kind), said)));
    };
    Ok(Ok(Pending {
        at,
        request,
        target,
        kind,
        by,
    }))
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

/// The batch's requests by round: round k holds the k-th request of each target, in the
/// batch's order.
fn rounds(pending: &[Pending]) -> Vec<Vec<Pending>> {
    let mut seen: HashMap<Target, usize> = HashMap::new();
    let mut rounds: Vec<Vec<Pending>> = Vec::new();
    for p in pending {
        let k = seen.entry(p.target).or_insert(0);
        if rounds.len() == *k {
            rounds.push(Vec::new());
        }
        rounds[*k].push(*p);
        *k += 1;
    }
    rounds
}

/// The requests that change nothing because a newer or other intent overtook them: an
/// adoption's provision for a target that has another request or a job (a hook or the module
/// recorded one while the scan looked, so a target is provisioned once whether the hook, the
/// scan or both saw it), and a reconciler's request (dated at its look) for a target that got
/// a request made after it (the newer intent wins, even if it was applied first). Neither
/// depends on what the batch writes: every job the batch inserts for a target comes from
/// another request of that target.
async fn overtaken(
    tx: &mut Transaction<'_, MySql>,
    pending: &[Pending],
) -> Result<Vec<(Pending, &'static str)>> {
    let adopt: Vec<RequestId> = pending
        .iter()
        .filter(|p| p.by == RequestedBy::Adopt && p.kind == RequestKind::Provision)
        .map(|p| p.request)
        .collect();
    let reconcile: Vec<RequestId> = pending
        .iter()
        .filter(|p| p.by == RequestedBy::Reconcile)
        .map(|p| p.request)
        .collect();
    let mut hit: HashMap<RequestId, &'static str> = HashMap::new();
    for (ids, build, said) in [
        (
            adopt,
            adoption_overtaken as fn(&str, &[RequestId]) -> _,
            ADOPTION_OVERTAKEN,
        ),
        (reconcile, reconcile_overtaken, RECONCILE_OVERTAKEN),
    ] {
        if ids.is_empty() {
            continue;
        }
        let found: Vec<(u64,)> = build("", &ids)
            .build_query_as()
            .fetch_all(&mut **tx)
            .await?;
        hit.extend(found.into_iter().map(|(id,)| (RequestId(id), said)));
    }
    Ok(pending
        .iter()
        .filter_map(|p| hit.get(&p.request).map(|said| (*p, *said)))
        .collect())
}

/// Of these adoption requests, those whose target has a job or another request.
pub(super) fn adoption_overtaken(prefix: &str, ids: &[RequestId]) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push("SELECT r.id FROM mod_jetpack_requests r WHERE r.id IN ");
    push_ids(&mut q, ids);
    q.push(
        " AND (EXISTS (SELECT 1 FROM mod_jetpack_jobs j
                       WHERE j.service_id = r.service_id AND j.addon_id = r.addon_id)
               OR EXISTS (SELECT 1 FROM mod_jetpack_requests o
                          WHERE o.service_id = r.service_id AND o.addon_id = r.addon_id
                            AND o.id <> r.id))",
    );
    q
}

/// Of these reconciler requests, those whose target has a request made at or after it.
pub(super) fn reconcile_overtaken(prefix: &str, ids: &[RequestId]) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push("SELECT r.id FROM mod_jetpack_requests r WHERE r.id IN ");
    push_ids(&mut q, ids);
    q.push(
        " AND EXISTS (SELECT 1 FROM mod_jetpack_requests o
                      WHERE o.service_id = r.service_id AND o.addon_id = r.addon_id
                        AND o.id <> r.id AND o.created_at >= r.created_at)",
    );
    q
}

fn push_ids(q: &mut QueryBuilder<MySql>, ids: &[RequestId]) {
    q.push("(");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id.0);
    }
    list.push_unseparated(")");
}

/// One round (one request per target): reads the targets' jobs under lock, asks the rules,
/// and carries out the decisions. Returns what became of each request, in order. An admin's
/// licence decision (`details`: the key recorded) changes the target's licence row first.
async fn apply_round(
    tx: &mut Transaction<'_, MySql>,
    round: &[Pending],
    details: &HashMap<RequestId, String>,
) -> Result<Vec<Applied>> {
    let targets: Vec<Target> = round.iter().map(|p| p.target).collect();
    let unfinished = unfinished_jobs(tx, &targets).await?;
    let need_latest: Vec<Target> = round
        .iter()
        .filter(|p| {
            matches!(p.kind, RequestKind::Retry | RequestKind::Change) || p.kind.decides_licence()
        })
        .filter(|p| !unfinished.contains_key(&p.target))
        .map(|p| p.target)
        .collect();
    let latest = latest_jobs(tx, &need_latest).await?;
    let mut decisions = Vec::with_capacity(round.len());
    for p in round {
        let j = unfinished.get(&p.target).copied();
        let l = latest.get(&p.target).copied();
        if !p.kind.decides_licence() {
            decisions.push(lifecycle::on_request(p.kind, j, l));
            continue;
        }
        let key = details.get(&p.request).map(String::as_str);
        decisions.push(match decide(tx, p.target, p.kind, key).await? {
            Decided::Changed => lifecycle::on_licence_request(p.kind, true, j, l),
            Decided::NoneInDoubt => lifecycle::on_licence_request(p.kind, false, j, l),
            Decided::KeyRefused(why) => Decision::Nothing(NothingReason::LicenceKeyRefused(why)),
        });
    }
    let mut new = Vec::new();
    for (p, decision) in round.iter().zip(&decisions) {
        if let Some(action) = carry_out(tx, *decision).await? {
            new.push(NewJob {
                target: p.target,
                action,
                by: p.by,
            });
        }
    }
    let ids: HashMap<Target, JobId> = new
        .iter()
        .map(|j| j.target)
        .zip(insert_jobs(tx, &new).await?)
        .collect();
    Ok(round
        .iter()
        .zip(decisions)
        .map(|(p, decision)| {
            let new_job = ids.get(&p.target).copied();
            Applied {
                request: p.request,
                target: p.target,
                kind: Some(p.kind),
                decision: Some(decision),
                job: new_job.or_else(|| concerned(decision)),
                said: lifecycle::describe(decision, new_job),
            }
        })
        .collect())
}

/// The existing job a decision concerns (one it does not create).
fn concerned(decision: Decision) -> Option<JobId> {
    match decision {
        Decision::DueNow(id) | Decision::SetNext(id, _) | Decision::Requeue(id) => Some(id),
        Decision::Insert(_) | Decision::Supersede { .. } | Decision::Nothing(_) => None,
    }
}

/// The targets' unfinished jobs, locked, by the one-unfinished-job index.
async fn unfinished_jobs(
    tx: &mut Transaction<'_, MySql>,
    targets: &[Target],
) -> Result<HashMap<Target, Unfinished>> {
    let rows = unfinished_read("", targets)
        .build()
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|row| {
            let next: Option<String> = row.try_get("follow_up")?;
            let job = Unfinished {
                id: JobId(row.try_get("id")?),
                action: parse_action(&row.try_get::<String, _>("action")?)?,
                state: parse_state(&row.try_get::<String, _>("state")?)?,
                next: next.as_deref().map(parse_action).transpose()?,
            };
            Ok((target_of(row)?, job))
        })
        .collect()
}

/// The locking read of the targets' unfinished jobs.
pub(super) fn unfinished_read(prefix: &str, targets: &[Target]) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push(
        "SELECT id, service_id, addon_id, action, state, follow_up FROM mod_jetpack_jobs
         WHERE ",
    );
    push_targets(&mut q, "unfinished_service_id", "addon_id", targets);
    q.push(" FOR UPDATE");
    q
}

/// The targets' latest jobs, locked (none read when `targets` is empty).
async fn latest_jobs(
    tx: &mut Transaction<'_, MySql>,
    targets: &[Target],
) -> Result<HashMap<Target, Latest>> {
    if targets.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = latest_read("", targets)
        .build()
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|row| {
            let job = Latest {
                id: JobId(row.try_get("id")?),
                action: parse_action(&row.try_get::<String, _>("action")?)?,
                state: parse_state(&row.try_get::<String, _>("state")?)?,
            };
            Ok((target_of(row)?, job))
        })
        .collect()
}

/// The locking read of each target's latest job (the highest id: a target's jobs are made
/// one after the other, by the workers applying its requests in order).
pub(super) fn latest_read(prefix: &str, targets: &[Target]) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push(
        "SELECT j.id, j.service_id, j.addon_id, j.action, j.state FROM mod_jetpack_jobs j
         JOIN (SELECT MAX(k.id) AS id FROM mod_jetpack_jobs k WHERE ",
    );
    push_targets(&mut q, "k.service_id", "k.addon_id", targets);
    q.push(" GROUP BY k.service_id, k.addon_id) m ON m.id = j.id FOR UPDATE");
    q
}

fn target_of(row: &MySqlRow) -> Result<Target> {
    Ok(Target::from_ids(
        row.try_get("service_id")?,
        row.try_get("addon_id")?,
    ))
}

/// Writes a decision other than the new job itself (one statement when there is one);
/// returns the action of the job to queue, if the decision queues one.
async fn carry_out(tx: &mut Transaction<'_, MySql>, decision: Decision) -> Result<Option<Action>> {
    match decision {
        Decision::Insert(action) => return Ok(Some(action)),
        Decision::Supersede { cancel, then } => {
            cancel_superseded(tx, cancel, then).await?;
            return Ok(Some(then));
        }
        Decision::DueNow(id) => make_due_now(tx, id).await?,
        Decision::SetNext(id, next) => set_follow_up(tx, id, next).await?,
        Decision::Requeue(id) => requeue_failed(tx, id).await?,
        Decision::Nothing(_) => {}
    }
    Ok(None)
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

/// Marks the requests applied, each with the job it concerned and the decision in words: one
/// UPDATE joined to the values (MariaDB and MySQL alike).
async fn mark_applied(tx: &mut Transaction<'_, MySql>, applied: &[Applied]) -> Result<()> {
    if applied.is_empty() {
        return Ok(());
    }
    mark_read("", applied).build().execute(&mut **tx).await?;
    Ok(())
}

/// The UPDATE that marks requests applied.
pub(super) fn mark_read(prefix: &str, applied: &[Applied]) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    q.push("UPDATE mod_jetpack_requests r JOIN (");
    for (i, a) in applied.iter().enumerate() {
        q.push(if i == 0 {
            "SELECT CAST("
        } else {
            " UNION ALL SELECT CAST("
        });
        q.push_bind(a.request.0)
            .push(" AS UNSIGNED) AS id, CAST(")
            .push_bind(a.job.map(|j| j.0))
            .push(" AS UNSIGNED) AS job, ")
            .push_bind(fit(&a.said, 255))
            .push(" AS said");
    }
    q.push(
        ") v ON v.id = r.id
         SET r.applied_at = UTC_TIMESTAMP(6), r.job_id = v.job, r.decision = v.said",
    );
    q
}

/// The set statements that read requests or jobs, with sample values, prefixed (`EXPLAIN `).
pub(super) fn explained(prefix: &str) -> Vec<(&'static str, QueryBuilder<MySql>)> {
    let targets = [
        Target::Service(ServiceId(7)),
        Target::Addon {
            addon: AddonId(3),
            service: ServiceId(8),
        },
    ];
    let ids = [RequestId(1), RequestId(2)];
    let applied: Vec<Applied> = ids
        .iter()
        .zip(targets)
        .map(|(id, t)| ignored(*id, t, None, "ignored".to_owned()))
        .collect();
    vec![
        ("adoption overtaken", adoption_overtaken(prefix, &ids)),
        ("reconcile overtaken", reconcile_overtaken(prefix, &ids)),
        ("unfinished", unfinished_read(prefix, &targets)),
        ("latest", latest_read(prefix, &targets)),
        ("provision unknown", latest_provisions(prefix, &targets)),
        ("new ids", unfinished_ids(prefix, &targets)),
        ("mark applied", mark_read(prefix, &applied)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn req(at: usize, service: u32, kind: RequestKind) -> Pending {
        Pending {
            at,
            request: RequestId(at as u64 + 1),
            target: Target::Service(ServiceId(service)),
            kind,
            by: RequestedBy::Module,
        }
    }

    #[test]
    fn rounds_keep_each_targets_order_and_name_a_target_once() {
        use RequestKind::{Provision as P, Terminate as T};
        let batch = [
            req(0, 1, P),
            req(1, 1, T),
            req(2, 2, P),
            req(3, 1, P),
            req(4, 3, T),
        ];
        let rounds = rounds(&batch);
        let ats: Vec<Vec<usize>> = rounds
            .iter()
            .map(|r| r.iter().map(|p| p.at).collect())
            .collect();
        assert_eq!(ats, [vec![0, 2, 4], vec![1], vec![3]]);
        for r in &rounds {
            let targets: HashSet<Target> = r.iter().map(|p| p.target).collect();
            assert_eq!(targets.len(), r.len());
        }
    }
}
