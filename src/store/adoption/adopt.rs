//! Recording what the adoption scan decided: its marks (`mod_jetpack_adoption_marks`,
//! `mod_jetpack_adoption_addon_marks`; primary key: once, across workers, never pruned) and
//! the requests behind them (`requested_by = adopt`).
//!
//! A re-check page's qualifying candidates (and a discovery page's qualifying targets, which
//! never become candidates) are adopted together, in one short transaction
//! of a handful of statements whatever the page's size ([`Store::adopt_candidates`]): which
//! targets already have a job or a request (one SELECT), their marks (one multi-row
//! `INSERT IGNORE`), the provision requests of the others (one multi-row INSERT), the marks'
//! `request_id` (one UPDATE joining the requests just made: a multi-row INSERT's ids are not
//! consecutive on Galera, so none is computed), and (for candidates) one DELETE of the page's
//! candidates.
//! When another worker marked one of them first (the INSERT IGNORE inserted fewer rows), or
//! the transaction meets a lock conflict, it is rolled back and the page is adopted one
//! candidate at a time ([`Store::adopt_one`]), which is correct under any race: the mark's
//! primary key serialises the workers.

use std::collections::BTreeSet;

use sqlx::{MySql, QueryBuilder, Row, Transaction};

use super::kind::Kind;
use crate::domain::{Action, RequestedBy, Target};
use crate::lifecycle::RequestKind;
use crate::store::explain::{PlanStep, plan};
use crate::store::requests::{insert_request, insert_requests};
use crate::store::{Result, Store, StoreError, on_conflicts};

/// What adopting a page's qualifying candidates did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Adopted {
    /// Provision requests recorded.
    pub(super) requested: u64,
    /// Targets that already had a job or a request: marked `requested`, not requested again.
    pub(super) already: u64,
}

impl Store {
    /// Adopts a page's qualifying candidates (all of `kind`): each is marked and, unless its
    /// target already had a job or a request (the same service and addon id: a service's
    /// addons have their own), gets a provision request; their candidates and those in
    /// `drop` (ids of `kind`) are deleted. One transaction for the page; one per candidate
    /// when another worker marked one of them first.
    pub(super) async fn adopt_candidates(
        &self,
        kind: Kind,
        targets: &[Target],
        drop: &[u32],
    ) -> Result<Adopted> {
        self.adopt(kind, targets, Some(drop)).await
    }

    /// Adopts the qualifying Pending targets a discovery page found (all of `kind`), as
    /// [`Store::adopt_candidates`] but with no candidate rows to delete: they never became
    /// candidates.
    pub(super) async fn adopt_found(&self, kind: Kind, targets: &[Target]) -> Result<Adopted> {
        self.adopt(kind, targets, None).await
    }

    /// Adopts the targets; with `Some(drop)` they were candidates, deleted with those in
    /// `drop`.
    async fn adopt(&self, kind: Kind, targets: &[Target], drop: Option<&[u32]>) -> Result<Adopted> {
        let mut targets = targets.to_vec();
        // One lock order for every worker: marks by id.
        targets.sort_by_key(|t| t.entity_id());
        let drop_ids = drop.unwrap_or_default();
        if targets.is_empty() {
            self.drop_candidates(kind, drop_ids).await?;
            return Ok(Adopted::default());
        }
        match self.adopt_together(kind, &targets, drop).await {
            Ok(Some(done)) => return Ok(done),
            Ok(None) => {}
            Err(e) if e.is_lock_conflict() => {
                tracing::debug!(error = %crate::text::Chain(&e),
                    "adopting a page together hit a lock conflict; one at a time instead");
            }
            Err(e) => return Err(e),
        }
        let mut out = Adopted::default();
        for target in targets {
            // Tried again after a lock conflict (how a race with another worker surfaces on
            // Galera, at COMMIT).
            let adopted = on_conflicts("adopting a target", StoreError::is_lock_conflict, || {
                self.adopt_one(target)
            });
            match adopted.await? {
                Some(true) => out.requested += 1,
                Some(false) => out.already += 1,
                None => {}
            }
        }
        self.drop_candidates(kind, drop_ids).await?;
        Ok(out)
    }

    /// The page in one transaction (deleting the candidates with `Some(drop)`); None (rolled
    /// back) when another worker had marked one of the targets.
    async fn adopt_together(
        &self,
        kind: Kind,
        targets: &[Target],
        drop: Option<&[u32]>,
    ) -> Result<Option<Adopted>> {
        let mut tx = self.begin().await?;
        let handled = handled(&mut tx, targets).await?;
        let marked = mark_all(&mut tx, kind, targets, &handled).await?;
        if marked != targets.len() as u64 {
            tx.rollback().await?;
            return Ok(None);
        }
        let fresh: Vec<Target> = targets
            .iter()
            .filter(|t| !handled.contains(t))
            .copied()
            .collect();
        if !fresh.is_empty() {
            let first = insert_requests(
                &mut *tx,
                &fresh,
                Action::Provision.into(),
                RequestedBy::Adopt,
            )
            .await?;
            note_query("", kind, first.0, &fresh)
                .build()
                .execute(&mut *tx)
                .await?;
        }
        if let Some(drop) = drop {
            let mut q = delete_candidates(kind);
            push_ids(
                &mut q,
                targets
                    .iter()
                    .map(|t| t.entity_id())
                    .chain(drop.iter().copied()),
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Some(Adopted {
            requested: fresh.len() as u64,
            already: (targets.len() - fresh.len()) as u64,
        }))
    }

    /// Marks a qualifying candidate and records its provision request unless its target
    /// already had a job or a request; drops the candidate. The mark's primary key serialises
    /// workers: the second one waits for the first to commit and then inserts nothing.
    /// Some(true): requested; Some(false): already requested by someone else; None: another
    /// worker marked it first.
    pub(super) async fn adopt_one(&self, target: Target) -> Result<Option<bool>> {
        let mut tx = self.begin().await?;
        let handled = !handled(&mut tx, &[target]).await?.is_empty();
        let outcome = if handled { "requested" } else { "adopted" };
        let marked = mark(&mut tx, target, Action::Provision, outcome).await?;
        let result = match (marked, handled) {
            (false, _) => None,
            (true, true) => Some(false),
            (true, false) => {
                request(&mut tx, target, Action::Provision).await?;
                Some(true)
            }
        };
        let mut q = delete_candidates(Kind::of(target));
        push_ids(&mut q, [target.entity_id()]);
        q.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Deletes candidates (service or addon ids) no longer waiting.
    pub(super) async fn drop_candidates(&self, kind: Kind, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut q = delete_candidates(kind);
        push_ids(&mut q, ids.iter().copied());
        q.build().execute(&self.pool).await?;
        Ok(())
    }

    /// Marks a gone service (or addon) and records its `deleted` request (a terminate after
    /// the deletion grace period), once: true when this call recorded it.
    pub(super) async fn terminate_gone(&self, target: Target) -> Result<bool> {
        let mut tx = self.begin().await?;
        let marked = mark(&mut tx, target, Action::Terminate, "adopted").await?;
        if marked {
            request(&mut tx, target, Action::Terminate).await?;
        }
        tx.commit().await?;
        Ok(marked)
    }

    /// The EXPLAIN of the statements adopting a page that read the worker's big tables (its
    /// jobs and requests), for `kind`, with the ids written in: `handled` and `note`.
    pub(super) async fn explain_adopting(
        &self,
        kind: Kind,
    ) -> Result<Vec<(&'static str, Vec<PlanStep>)>> {
        let targets: Vec<Target> = (1..=3)
            .map(|n| match kind {
                Kind::Service => Target::from_ids(n, 0),
                Kind::Addon => Target::from_ids(n, n),
            })
            .collect();
        let mut q = handled_query("EXPLAIN ", &targets);
        let handled = plan(&mut q, &self.pool).await?;
        let mut q = note_query("EXPLAIN ", kind, 1, &targets);
        let note = plan(&mut q, &self.pool).await?;
        let [handled_name, note_name] = kind.pick([
            ["adopt handled", "adopt note"],
            ["addons adopt handled", "addons adopt note"],
        ]);
        Ok(vec![(handled_name, handled), (note_name, note)])
    }
}

/// `DELETE FROM <candidates> WHERE <id> IN (`; the ids and `)` pushed by [`push_ids`].
fn delete_candidates(kind: Kind) -> QueryBuilder<MySql> {
    QueryBuilder::new(format!(
        "DELETE FROM {} WHERE {} IN (",
        kind.candidates(),
        kind.id_column()
    ))
}

/// The UPDATE noting on the targets' marks (all of `kind`, for their provision) the requests
/// made from request id `first` on: each mark's own (the same service and addon id).
fn note_query(prefix: &str, kind: Kind, first: u64, targets: &[Target]) -> QueryBuilder<MySql> {
    let provision = Action::Provision.as_str();
    let mut q = QueryBuilder::<MySql>::new(format!(
        "{prefix}UPDATE {marks} m
         JOIN mod_jetpack_requests r ON r.service_id = m.service_id AND r.addon_id = {addon}
              AND r.action = ",
        marks = kind.marks(),
        addon = kind.request_addon_of_mark(),
    ));
    q.push_bind(provision)
        .push(" AND r.requested_by = ")
        .push_bind(RequestedBy::Adopt.as_str())
        .push(" AND r.id >= ")
        .push_bind(first)
        .push(" SET m.request_id = r.id WHERE m.action = ")
        .push_bind(provision)
        .push(format!(" AND m.{} IN (", kind.id_column()));
    push_ids(&mut q, targets.iter().map(|t| t.entity_id()));
    q
}

/// Binds the ids as a list and closes the parenthesis.
fn push_ids(q: &mut QueryBuilder<MySql>, ids: impl IntoIterator<Item = u32>) {
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    q.push(")");
}

/// The targets (among those asked about; not empty) that have a job or a request: each
/// table by its (service, …) index. The service and addon lists select a superset of the
/// pairs; the caller keeps the exact ones.
fn handled_query(prefix: &str, targets: &[Target]) -> QueryBuilder<MySql> {
    let services: BTreeSet<u32> = targets.iter().map(|t| t.service().0).collect();
    let addons: BTreeSet<u32> = targets.iter().map(|t| t.addon_id()).collect();
    let mut q = QueryBuilder::<MySql>::new(prefix);
    for (n, table) in ["mod_jetpack_jobs", "mod_jetpack_requests"]
        .iter()
        .enumerate()
    {
        if n > 0 {
            q.push(" UNION ");
        }
        q.push(format!(
            "SELECT service_id, addon_id FROM {table} WHERE service_id IN ("
        ));
        push_ids(&mut q, services.iter().copied());
        q.push(" AND addon_id IN (");
        push_ids(&mut q, addons.iter().copied());
    }
    q
}

/// Which of the targets already have a job or a request (one SELECT, no lock).
async fn handled(tx: &mut Transaction<'_, MySql>, targets: &[Target]) -> Result<BTreeSet<Target>> {
    let rows = handled_query("", targets)
        .build()
        .fetch_all(&mut **tx)
        .await?;
    let mut found = BTreeSet::new();
    for row in &rows {
        let target = Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?);
        if targets.contains(&target) {
            found.insert(target);
        }
    }
    Ok(found)
}

/// Marks every target of the page for its provision (`requested` if handled, `adopted`
/// otherwise): how many marks were inserted (fewer than the targets: another worker marked
/// some first; the insert waited for its commit).
async fn mark_all(
    tx: &mut Transaction<'_, MySql>,
    kind: Kind,
    targets: &[Target],
    handled: &BTreeSet<Target>,
) -> Result<u64> {
    let marks: Vec<(Target, &str)> = targets
        .iter()
        .map(|t| {
            (
                *t,
                if handled.contains(t) {
                    "requested"
                } else {
                    "adopted"
                },
            )
        })
        .collect();
    insert_marks(tx, kind, Action::Provision, &marks).await
}

/// Inserts the scan's mark for (target, action); false when it was there already (the
/// insert waits for a concurrent worker's uncommitted mark, then inserts nothing).
async fn mark(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    action: Action,
    outcome: &str,
) -> Result<bool> {
    Ok(insert_marks(tx, Kind::of(target), action, &[(target, outcome)]).await? == 1)
}

/// The scan's marks for `action`, each target with its outcome, in one `INSERT IGNORE`: a
/// service's in `mod_jetpack_adoption_marks`, an addon's in `mod_jetpack_adoption_addon_marks`
/// (the primary key marks a target once, across workers). Returns how many were inserted.
async fn insert_marks(
    tx: &mut Transaction<'_, MySql>,
    kind: Kind,
    action: Action,
    marks: &[(Target, &str)],
) -> Result<u64> {
    let mut q = QueryBuilder::<MySql>::new(format!(
        "INSERT IGNORE INTO {} ({}, action, outcome, marked_at) ",
        kind.marks(),
        kind.target_columns()
    ));
    q.push_values(marks, |mut b, (target, outcome)| {
        kind.push_target(&mut b, *target);
        b.push_bind(action.as_str())
            .push_bind(*outcome)
            .push("UTC_TIMESTAMP(6)");
    });
    Ok(q.build().execute(&mut **tx).await?.rows_affected())
}

/// Records the scan's request for the target and notes its id on the mark (of `action`): a
/// provision, or, for a deleted target's terminate, a `deleted` request (its plan is
/// cancelled after the deletion grace period).
async fn request(tx: &mut Transaction<'_, MySql>, target: Target, action: Action) -> Result<()> {
    let asked = if action.removes() {
        RequestKind::Deleted
    } else {
        action.into()
    };
    let id = insert_request(&mut **tx, target, asked, RequestedBy::Adopt).await?;
    let kind = Kind::of(target);
    let note = format!(
        "UPDATE {} SET request_id = ? WHERE {} = ? AND action = ?",
        kind.marks(),
        kind.id_column()
    );
    sqlx::query(sqlx::AssertSqlSafe(note))
        .bind(id.0)
        .bind(target.entity_id())
        .bind(action.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
