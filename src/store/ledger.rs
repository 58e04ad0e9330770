//! The ledger, `mod_jetpack_ledger`: what each success left at the partner, per target
//! (service or addon) and site. A provision (or a status check that finds an earlier
//! provision) records the site and plan; a cancel removes the row. Read with the claim,
//! written inside the fenced finish, so only the lease holder ever changes it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlConnection;
use sqlx::{MySql, QueryBuilder, Row, Transaction};

use super::{Result, Store};
use crate::domain::{JobId, Target};

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

/// The ledger rows of these targets (one query, by the unique index's prefix: the services,
/// then each row's addon kept when asked for).
pub(super) async fn ledger_of(
    conn: &mut MySqlConnection,
    targets: &[Target],
) -> Result<HashMap<Target, Vec<LedgerEntry>>> {
    let mut out: HashMap<Target, Vec<LedgerEntry>> = HashMap::new();
    if targets.is_empty() {
        return Ok(out);
    }
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT service_id, addon_id, site, plan, pending, since, product_id, addon_def_id
         FROM mod_jetpack_ledger WHERE service_id IN (",
    );
    let mut list = q.separated(", ");
    for t in targets {
        list.push_bind(t.service());
    }
    q.push(") ORDER BY id");
    for row in q.build().fetch_all(&mut *conn).await? {
        let target = Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?);
        if !targets.contains(&target) {
            continue;
        }
        out.entry(target).or_default().push(LedgerEntry {
            site: row.try_get("site")?,
            plan: row.try_get("plan")?,
            pending: row.try_get("pending")?,
            since: row.try_get("since")?,
            product_id: row.try_get("product_id")?,
            addon_def_id: row.try_get("addon_def_id")?,
        });
    }
    Ok(out)
}

/// Applies an attempt's ledger changes inside the finishing transaction.
pub(super) async fn write_ledger(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    job: JobId,
    writes: &[LedgerWrite],
) -> Result<()> {
    for w in writes {
        match w {
            LedgerWrite::Holds {
                site,
                plan,
                pending,
            } => record_plan(tx, target, job, site, plan, *pending).await?,
            LedgerWrite::Cancelled { site } => forget_site(tx, target, site).await?,
        }
    }
    Ok(())
}

/// The partner holds `plan` for the target's `site` (by this job), with the product (addon)
/// the target has now: a later cancel uses its credentials even once the row is gone.
async fn record_plan(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    job: JobId,
    site: &str,
    plan: &str,
    pending: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mod_jetpack_ledger
           (service_id, addon_id, product_id, addon_def_id, site, plan, pending, since,
            updated_at, job_id)
         VALUES (?, ?, (SELECT h.packageid FROM tblhosting h WHERE h.id = ? AND ? = 0),
                 (SELECT a.addonid FROM tblhostingaddons a WHERE a.id = ?), ?, ?, ?,
                 UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?)
         ON DUPLICATE KEY UPDATE plan = VALUES(plan), pending = VALUES(pending),
           updated_at = VALUES(updated_at), job_id = VALUES(job_id),
           product_id = COALESCE(VALUES(product_id), product_id),
           addon_def_id = COALESCE(VALUES(addon_def_id), addon_def_id)",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .bind(target.service())
    .bind(target.addon_id())
    .bind(target.addon_id())
    .bind(site)
    .bind(plan)
    .bind(pending)
    .bind(job)
    .execute(&mut **tx)
    .await?;
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
