//! The ledger, `mod_jetpack_ledger`: what each success left at the partner, per target
//! (service or addon) and site. A provision (or a status check that finds an earlier
//! provision) records the site and plan; a cancel removes the row. Read with the claim,
//! written inside the fenced finish, so only the lease holder ever changes it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{MySql, QueryBuilder, Row, Transaction};

use super::{ClaimedJob, Result, Store};
use crate::domain::{Action, JobId, Target};

/// A plan the partner holds for a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The site as it was sent to the partner API.
    pub site: String,
    /// The plan slug.
    pub plan: String,
    /// Provisioned while the site's DNS did not resolve.
    pub pending: bool,
    /// First success for this site (UTC).
    pub since: DateTime<Utc>,
    /// The service's product at the last success (tblproducts.id; None for rows older than
    /// the column): the credentials of a cancel once the service row is gone.
    pub product_id: Option<u32>,
    /// For an addon: its tbladdons.id at the last success (the credentials of a cancel once
    /// the addon row is gone).
    pub addon_def_id: Option<u32>,
}

/// A change to the ledger, written with an attempt's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerWrite {
    /// The partner now holds `plan` for `site`.
    Holds {
        /// The site as sent.
        site: String,
        /// The plan slug.
        plan: String,
        /// Waiting on DNS.
        pending: bool,
    },
    /// The plan on `site` was cancelled (or there was nothing left to cancel).
    Cancelled {
        /// The site as sent.
        site: String,
    },
}

impl Store {
    /// What the ledger holds for a service or addon, oldest first.
    pub async fn ledger(&self, target: impl Into<Target>) -> Result<Vec<LedgerEntry>> {
        let target = target.into();
        let mut conn = self.pool.acquire().await?;
        let mut all = ledger_of(&mut conn, &[target]).await?;
        Ok(all.remove(&target).unwrap_or_default())
    }
}

/// The ledger rows of these targets (one query: a service's rows by the unique index's
/// prefix, an addon's by the addon whatever service they name, since an addon moved to
/// another service is the same target), keyed by the target asked for.
pub(super) async fn ledger_of(
    conn: &mut MySqlConnection,
    targets: &[Target],
) -> Result<HashMap<Target, Vec<LedgerEntry>>> {
    let mut out: HashMap<Target, Vec<LedgerEntry>> = HashMap::new();
    if targets.is_empty() {
        return Ok(out);
    }
    let ids = |addon: bool| -> Vec<u32> {
        targets
            .iter()
            .filter(|t| matches!(t, Target::Addon { .. }) == addon)
            .map(|t| if addon { t.addon_id() } else { t.service().0 })
            .collect()
    };
    let parts = [
        ("service_id", " AND addon_id = 0", ids(false)),
        ("addon_id", "", ids(true)),
    ];
    let mut q = QueryBuilder::<MySql>::new("");
    for (n, (column, and, ids)) in parts.iter().filter(|p| !p.2.is_empty()).enumerate() {
        if n > 0 {
            q.push(" UNION ALL ");
        }
        q.push(
            "SELECT id, service_id, addon_id, site, plan, pending, since, product_id, addon_def_id
             FROM mod_jetpack_ledger WHERE ",
        );
        q.push(column).push(" IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")").push(and);
    }
    let mut rows = Vec::new();
    for row in q.build().fetch_all(&mut *conn).await? {
        let stored = Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?);
        if let Some(target) = targets.iter().find(|t| same_target(**t, stored)) {
            rows.push((row.try_get::<u64, _>("id")?, *target, entry_of(&row)?));
        }
    }
    rows.sort_by_key(|(id, ..)| *id);
    for (_, target, entry) in rows {
        out.entry(target).or_default().push(entry);
    }
    Ok(out)
}

/// Whether two keys name the same target: an addon is one target whatever its parent.
fn same_target(a: Target, b: Target) -> bool {
    match (a, b) {
        (Target::Addon { addon: x, .. }, Target::Addon { addon: y, .. }) => x == y,
        _ => a == b,
    }
}

/// One ledger row as an entry.
fn entry_of(row: &MySqlRow) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        site: row.try_get("site")?,
        plan: row.try_get("plan")?,
        pending: row.try_get("pending")?,
        since: row.try_get("since")?,
        product_id: row.try_get("product_id")?,
        addon_def_id: row.try_get("addon_def_id")?,
    })
}

/// Applies an attempt's ledger changes inside the finishing transaction. The product (addon)
/// recorded is the one read with the claim, not re-read now: a service deleted while its
/// provision was in flight keeps the credentials its plan is cancelled with.
pub(super) async fn write_claimed_ledger(
    tx: &mut Transaction<'_, MySql>,
    job: &ClaimedJob,
    writes: &[LedgerWrite],
) -> Result<()> {
    let product = job.service.as_ref().map(|s| s.product_id);
    apply(tx, (job.target, job.id, product), writes).await
}

/// Applies ledger changes made outside an attempt (the reconciler's), with the product (addon)
/// to record (None: the target's current one, read now), so a deleted service's plan is still
/// cancelled with its credentials.
pub(super) async fn write_ledger_with(
    tx: &mut Transaction<'_, MySql>,
    (target, job, product): (Target, JobId, Option<u32>),
    writes: &[LedgerWrite],
) -> Result<()> {
    apply(tx, (target, job, product), writes).await
}

/// The ledger changes of `target` by `job`, with `product` (None: the target's current
/// product, read now). An addon's rows first move to the service the job names (an addon
/// moved to another service is one target).
async fn apply(
    tx: &mut Transaction<'_, MySql>,
    (target, job, product): (Target, JobId, Option<u32>),
    writes: &[LedgerWrite],
) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    follow_addon(tx, AddonRows::Ledger, target).await?;
    for w in writes {
        match w {
            LedgerWrite::Holds {
                site,
                plan,
                pending,
            } => record_plan(tx, (target, job, product), site, plan, *pending).await?,
            LedgerWrite::Cancelled { site } => forget_site(tx, target, site).await?,
        }
    }
    Ok(())
}

/// The tables whose rows of an addon follow it to the service its job names.
#[derive(Clone, Copy)]
pub(super) enum AddonRows {
    /// `mod_jetpack_ledger`: what the partner holds.
    Ledger,
    /// `mod_jetpack_watch`: what the reconciler expects.
    Watch,
}

/// An addon's rows name the service its job names (by the table's addon index; rows that
/// would collide with one already there are left as they are). Nothing for a service.
pub(super) async fn follow_addon(
    tx: &mut Transaction<'_, MySql>,
    rows: AddonRows,
    target: Target,
) -> Result<()> {
    let Target::Addon { .. } = target else {
        return Ok(());
    };
    let sql = match rows {
        AddonRows::Ledger => {
            "UPDATE IGNORE mod_jetpack_ledger SET service_id = ?
             WHERE addon_id = ? AND service_id <> ?"
        }
        AddonRows::Watch => {
            "UPDATE IGNORE mod_jetpack_watch SET service_id = ?
             WHERE addon_id = ? AND service_id <> ?"
        }
    };
    sqlx::query(sql)
        .bind(target.service())
        .bind(target.addon_id())
        .bind(target.service())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The partner holds `plan` for the target's `site` (by this job), with `product` (the
/// product or addon read with the claim; None: the target's current one, read now): a later
/// cancel uses its credentials even once the row is gone.
async fn record_plan(
    tx: &mut Transaction<'_, MySql>,
    by: (Target, JobId, Option<u32>),
    site: &str,
    plan: &str,
    pending: bool,
) -> Result<()> {
    record_plans(tx, &[(by, site, plan, pending)]).await
}

/// Many jobs' `Holds` changes (services only, so no addon rows to move first) in one
/// multi-row upsert, with the same rule as one job's ([`write_claimed_ledger`]): for the
/// batched finish, whose jobs' ledger changes are all `Holds`.
pub(super) async fn write_claimed_holds(
    tx: &mut Transaction<'_, MySql>,
    jobs: &[(&ClaimedJob, &[LedgerWrite])],
) -> Result<()> {
    let mut rows = Vec::new();
    for (job, writes) in jobs {
        let product = job.service.as_ref().map(|s| s.product_id);
        for w in *writes {
            if let LedgerWrite::Holds {
                site,
                plan,
                pending,
            } = w
            {
                rows.push((
                    (job.target, job.id, product),
                    site.as_str(),
                    plan.as_str(),
                    *pending,
                ));
            }
        }
    }
    record_plans(tx, &rows).await
}

/// One plan recorded: by (target, job, product), site, plan, pending.
type PlanRow<'a> = ((Target, JobId, Option<u32>), &'a str, &'a str, bool);

/// [`record_plan`] for many rows in one multi-row INSERT … ON DUPLICATE KEY UPDATE (in
/// order; nothing for no rows).
async fn record_plans(tx: &mut Transaction<'_, MySql>, rows: &[PlanRow<'_>]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO mod_jetpack_ledger
           (service_id, addon_id, product_id, addon_def_id, site, plan, pending, since,
            updated_at, job_id) VALUES ",
    );
    for (n, ((target, job, product), site, plan, pending)) in rows.iter().enumerate() {
        let (product_id, addon_def_id) = match target {
            Target::Service(_) => (*product, None),
            Target::Addon { .. } => (None, *product),
        };
        q.push(if n == 0 { "(" } else { ", (" });
        q.push_bind(target.service())
            .push(", ")
            .push_bind(target.addon_id());
        q.push(", COALESCE(").push_bind(product_id);
        q.push(", (SELECT h.packageid FROM tblhosting h WHERE h.id = ")
            .push_bind(target.service());
        q.push(" AND ")
            .push_bind(target.addon_id())
            .push(" = 0)), COALESCE(");
        q.push_bind(addon_def_id);
        q.push(", (SELECT a.addonid FROM tblhostingaddons a WHERE a.id = ");
        q.push_bind(target.addon_id()).push(")), ");
        q.push_bind(*site)
            .push(", ")
            .push_bind(*plan)
            .push(", ")
            .push_bind(*pending);
        q.push(", UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ")
            .push_bind(*job)
            .push(")");
    }
    q.push(
        " ON DUPLICATE KEY UPDATE plan = VALUES(plan), pending = VALUES(pending),
           updated_at = VALUES(updated_at), job_id = VALUES(job_id),
           product_id = COALESCE(VALUES(product_id), product_id),
           addon_def_id = COALESCE(VALUES(addon_def_id), addon_def_id)",
    );
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// The plan on the target's `site` was cancelled (or nothing was left to cancel).
async fn forget_site(tx: &mut Transaction<'_, MySql>, target: Target, site: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM mod_jetpack_ledger
         WHERE service_id = ? AND addon_id = ? AND site_hash = UNHEX(SHA2(?, 256))",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .bind(site)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Another target holding a plan on a site a claimed job's ledger names (read with the claim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteHolder {
    /// The service or addon (with the parent its ledger row names).
    pub target: Target,
    /// The site as sent to the partner API.
    pub site: String,
    /// The plan slug it holds there.
    pub plan: String,
    /// Live: its WHMCS row exists and is not Terminated, Cancelled or Fraud, and its latest
    /// job is not a terminate; or it was deleted and its plan was kept (Keep the plan) or
    /// waits out the deletion grace period.
    pub live: bool,
}

/// Every ledger row on these sites (by the `site` index on the site's hash), each with
/// whether its target is live: a live WHMCS status and no terminate as its latest job, or a
/// deleted target whose plan an admin kept or that waits out its deletion grace period (its
/// plan is not another target's to cancel). One query, whatever the number of sites.
pub(super) async fn holders_on(
    conn: &mut MySqlConnection,
    sites: &[String],
) -> Result<Vec<SiteHolder>> {
    if sites.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT l.service_id, l.addon_id, l.site, l.plan,
                IF(l.addon_id = 0, CAST(h.domainstatus AS CHAR), CAST(a.status AS CHAR)) AS status,
                (SELECT j.action FROM mod_jetpack_jobs j
                 WHERE j.service_id = l.service_id AND j.addon_id = l.addon_id
                 ORDER BY j.id DESC LIMIT 1) AS latest,
                (l.kept_at IS NOT NULL
                 OR EXISTS (SELECT 1 FROM mod_jetpack_jobs g
                            WHERE g.unfinished_service_id = l.service_id AND g.addon_id = l.addon_id
                              AND g.grace_until > UTC_TIMESTAMP(6))) AS kept
         FROM mod_jetpack_ledger l
         LEFT JOIN tblhosting h ON h.id = l.service_id
         LEFT JOIN tblhostingaddons a ON a.id = l.addon_id
         WHERE l.site_hash IN (",
    );
    let mut list = q.separated(", ");
    for site in sites {
        list.push("UNHEX(SHA2(")
            .push_bind_unseparated(site.clone())
            .push_unseparated(", 256))");
    }
    q.push(")");
    let mut out = Vec::new();
    for row in q.build().fetch_all(&mut *conn).await? {
        let status: Option<String> = row.try_get("status")?;
        let latest: Option<String> = row.try_get("latest")?;
        let ended = ["Terminated", "Cancelled", "Fraud"];
        let kept: i64 = row.try_get("kept")?;
        let live = kept != 0
            || status.is_some_and(|s| !ended.iter().any(|e| s.eq_ignore_ascii_case(e)))
                && !latest
                    .as_deref()
                    .and_then(Action::parse)
                    .is_some_and(Action::removes);
        out.push(SiteHolder {
            target: Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?),
            site: row.try_get("site")?,
            plan: row.try_get("plan")?,
            live,
        });
    }
    Ok(out)
}
