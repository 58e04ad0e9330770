//! The reconciler's rows, `mod_jetpack_watch` and `mod_jetpack_drift`: what each target should
//! have at each site (written with every ledger change inside the fenced finish), which rows are
//! due for a look at the partner (claimed by token, so two workers never ask twice), and the
//! outcome of a look: the row's memory, a confirmed drift, its activity line and the request it
//! becomes, in one short transaction. The rules are `drift`; the calls are the worker's.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{MySql, QueryBuilder, Row, Transaction};

use super::jobs::micros;
use super::ledger::{LedgerWrite, write_ledger_with};
use super::whmcs::{addon_defs_by_id, products_by_id};
use super::{Result, Store, StoreError, within};
use crate::backoff;
use crate::domain::{Action, JobId, RequestedBy, Target};
use crate::drift::{Expect, Finding, Memory};
use crate::lifecycle::RequestKind;
use crate::text::fit;
use backon::Retryable;

pub(super) use super::watch_outcome::{note_holds_many, note_outcome};
pub use super::watch_rows::{CheckWrite, DriftRow, DriftWrite, SiteCheck, WatchRow, WatchSchedule};

/// The columns of a [`WatchRow`], with whether its target has an unfinished job.
macro_rules! watch_columns {
    () => {
        "w.id, w.service_id, w.addon_id, w.site, w.plan, w.expect, w.seen,
    w.seen_times, w.drifts, w.quick_left, w.restore,
    TIMESTAMPDIFF(SECOND, w.updated_at, UTC_TIMESTAMP(6)) AS age_secs,
    (EXISTS(SELECT 1 FROM mod_jetpack_jobs j WHERE j.unfinished_service_id = w.service_id
            AND j.addon_id = w.addon_id)
     OR EXISTS(SELECT 1 FROM mod_jetpack_requests r WHERE r.service_id = w.service_id
               AND r.addon_id = w.addon_id AND r.applied_at IS NULL)) AS busy,
    (SELECT k.action FROM mod_jetpack_jobs k WHERE k.service_id = w.service_id
     AND k.addon_id = w.addon_id ORDER BY k.created_at DESC, k.id DESC LIMIT 1) AS latest_action,
    (SELECT k.state = 'failed' FROM mod_jetpack_jobs k WHERE k.service_id = w.service_id
     AND k.addon_id = w.addon_id ORDER BY k.created_at DESC, k.id DESC LIMIT 1) AS latest_failed,
    CASE WHEN w.addon_id = 0
         THEN (SELECT CAST(h.domainstatus AS CHAR) IN ('Pending', 'Active', 'Suspended')
               FROM tblhosting h WHERE h.id = w.service_id)
         ELSE (SELECT CAST(a.status AS CHAR) IN ('Pending', 'Active', 'Suspended')
               FROM tblhostingaddons a WHERE a.id = w.addon_id) END AS live,
    IF(w.addon_id = 0, w.product_id, w.addon_def_id) AS account_id"
    };
}

impl Store {
    /// Claims up to `limit` watched rows that are due, for `hold` (a worker that dies mid-look
    /// leaves them due again after it), and reads them by site with every other row watching
    /// the same sites and the partner account to ask with. When nothing is due this is one
    /// UPDATE that reads the `due` index and matches nothing.
    pub async fn due_checks(&self, limit: u32, hold: Duration) -> Result<Vec<SiteCheck>> {
        let token = format!("{:032x}", fastrand::u128(..));
        let claimed = sqlx::query(
            "UPDATE mod_jetpack_watch
             SET check_token = ?, next_check_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
             WHERE next_check_at <= UTC_TIMESTAMP(6) ORDER BY next_check_at LIMIT ?",
        )
        .bind(&token)
        .bind(micros(hold))
        .bind(limit)
        .execute(&self.pool)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        let due_rows = sqlx::query(concat!(
            "SELECT ",
            watch_columns!(),
            ", w.product_id, w.addon_def_id, UTC_TIMESTAMP(6) AS looked_at
             FROM mod_jetpack_watch w WHERE w.check_token = ?"
        ))
        .bind(&token)
        .fetch_all(&mut *conn)
        .await?;
        self.sites_of(&mut conn, &token, &due_rows).await
    }

    async fn sites_of(
        &self,
        conn: &mut MySqlConnection,
        token: &str,
        due_rows: &[MySqlRow],
    ) -> Result<Vec<SiteCheck>> {
        let mut sites: Vec<SiteCheck> = Vec::new();
        let mut accounts: Vec<(usize, Option<u32>, Option<u32>)> = Vec::new();
        for row in due_rows {
            let w = watch_row(row)?;
            let product: Option<u32> = row.try_get("product_id")?;
            let addon_def: Option<u32> = row.try_get("addon_def_id")?;
            let looked_at: chrono::NaiveDateTime = row.try_get("looked_at")?;
            let at = match sites.iter().position(|s| s.site == w.site) {
                Some(i) => i,
                None => {
                    sites.push(SiteCheck {
                        site: w.site.clone(),
                        token: token.to_owned(),
                        looked_at,
                        due: Vec::new(),
                        all: Vec::new(),
                        account: None,
                    });
                    sites.len() - 1
                }
            };
            let addon = matches!(w.target, Target::Addon { .. });
            accounts.push((at, (!addon).then_some(product).flatten(), addon_def));
            sites[at].due.push(w);
        }
        read_site_rows(conn, &mut sites).await?;
        self.read_accounts(conn, &mut sites, &accounts).await?;
        Ok(sites)
    }

    async fn read_accounts(
        &self,
        conn: &mut MySqlConnection,
        sites: &mut [SiteCheck],
        accounts: &[(usize, Option<u32>, Option<u32>)],
    ) -> Result<()> {
        let products: Vec<u32> = accounts.iter().filter_map(|a| a.1).collect();
        let defs: Vec<u32> = accounts.iter().filter_map(|a| a.2).collect();
        let products = products_by_id(conn, &products).await?;
        let defs = if self.has_addons {
            addon_defs_by_id(conn, &defs).await?
        } else {
            HashMap::new()
        };
        for (at, product, def) in accounts {
            let found = product
                .and_then(|p| products.get(&p))
                .or_else(|| def.and_then(|d| defs.get(&d)));
            if sites[*at].account.is_none() {
                sites[*at].account = found.cloned();
            }
        }
        Ok(())
    }

    /// Writes the outcome of a poll's looks at its sites: each row's memory and next look (fenced by
    /// the claim's token: a row another worker took over is left alone), and for a confirmed
    /// drift its record, activity line, ledger entry and request, in one transaction. A drift
    /// whose target got a request or a job of its own since the look is left to it: the
    /// newer intent wins, and the reconciler's request, dated at the look, sorts before any
    /// request made after it.
    pub async fn record_checks(&self, looked: &[(&SiteCheck, Vec<CheckWrite>)]) -> Result<()> {
        if looked.is_empty() {
            return Ok(());
        }
        let attempt = || within(self.timeout, self.record_checks_once(looked));
        attempt
            .retry(backoff::finish_conflicts())
            .when(StoreError::is_lock_conflict)
            .await
    }

    async fn record_checks_once(&self, looked: &[(&SiteCheck, Vec<CheckWrite>)]) -> Result<()> {
        let mut tx = self.begin().await?;
        for (check, writes) in looked {
            for w in writes {
                if !update_row(&mut tx, &check.token, w).await? {
                    continue;
                }
                if let Some(d) = &w.drift
                    && !self
                        .record_drift(&mut tx, w.target, d, check.looked_at)
                        .await?
                {
                    remember(&mut tx, w.id, w.before).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_drift(
        &self,
        tx: &mut Transaction<'_, MySql>,
        target: Target,
        d: &DriftWrite,
        looked_at: chrono::NaiveDateTime,
    ) -> Result<bool> {
        if let Some(kind) = d.request
            && !request_unless_overtaken(tx, target, kind, looked_at).await?
        {
            tracing::info!(%target, site = %d.site, "drift left alone: the target has a newer request or a job of its own");
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO mod_jetpack_drift
               (service_id, addon_id, site, expected, found, done, created_at)
             VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
        )
        .bind(target.service())
        .bind(target.addon_id())
        .bind(&d.site)
        .bind(fit(&d.expected, 255))
        .bind(fit(&d.found, 255))
        .bind(fit(&d.done, 255))
        .execute(&mut **tx)
        .await?;
        if let Some(plan) = &d.holds {
            let holds = LedgerWrite::Holds {
                site: d.site.clone(),
                plan: plan.clone(),
                pending: false,
            };
            write_ledger_with(tx, (target, JobId(0), d.account), &[holds]).await?;
        }
        let client: Option<i32> = sqlx::query_scalar("SELECT userid FROM tblhosting WHERE id = ?")
            .bind(target.service())
            .fetch_optional(&mut **tx)
            .await?;
        let client = client.map_or(0, i32::unsigned_abs);
        self.write_activity(tx, client, &d.activity).await?;
        Ok(true)
    }

    /// The latest confirmed drifts, newest first.
    pub async fn recent_drifts(&self, limit: u32) -> Result<Vec<DriftRow>> {
        let rows = sqlx::query(
            "SELECT service_id, addon_id, site, expected, found, done, created_at
             FROM mod_jetpack_drift ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DriftRow {
                    service_id: r.try_get("service_id")?,
                    addon_id: r.try_get("addon_id")?,
                    site: r.try_get("site")?,
                    expected: r.try_get("expected")?,
                    found: r.try_get("found")?,
                    done: r.try_get("done")?,
                    at: r
                        .try_get::<chrono::NaiveDateTime, _>("created_at")?
                        .and_utc(),
                })
            })
            .collect()
    }

    /// Makes every watched row due now (the CLI's `reconcile --now`, tests).
    pub async fn watch_all_due(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE mod_jetpack_watch SET next_check_at = UTC_TIMESTAMP(6), check_token = NULL",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Records the reconciler's request, dated `at`, unless the target has had a request made
/// since then or has an unfinished job (its intent moved on). False when it did not.
async fn request_unless_overtaken(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    kind: RequestKind,
    at: chrono::NaiveDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
         SELECT ?, ?, ?, ?, ? FROM DUAL
         WHERE NOT EXISTS (SELECT 1 FROM mod_jetpack_requests r
                           WHERE r.service_id = ? AND r.addon_id = ?
                             AND (r.created_at >= ? OR r.applied_at IS NULL))
           AND NOT EXISTS (SELECT 1 FROM mod_jetpack_jobs j
                           WHERE j.unfinished_service_id = ? AND j.addon_id = ?)",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .bind(kind.as_str())
    .bind(RequestedBy::Reconcile.as_str())
    .bind(at)
    .bind(target.service())
    .bind(target.addon_id())
    .bind(at)
    .bind(target.service())
    .bind(target.addon_id())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts a row's memory back (a drift whose request was overtaken was not acted on).
async fn remember(tx: &mut Transaction<'_, MySql>, id: u64, m: Memory) -> Result<()> {
    sqlx::query("UPDATE mod_jetpack_watch SET seen = ?, seen_times = ?, drifts = ? WHERE id = ?")
        .bind(m.seen.as_str())
        .bind(m.times)
        .bind(m.drifts)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every row watching the sites (by the `site` index), due ones included.
async fn read_site_rows(conn: &mut MySqlConnection, sites: &mut [SiteCheck]) -> Result<()> {
    if sites.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new(concat!(
        "SELECT ",
        watch_columns!(),
        " FROM mod_jetpack_watch w WHERE w.site_hash IN ("
    ));
    let mut list = q.separated(", ");
    for s in sites.iter() {
        list.push("UNHEX(SHA2(");
        list.push_bind_unseparated(s.site.clone());
        list.push_unseparated(", 256))");
    }
    q.push(")");
    for row in q.build().fetch_all(&mut *conn).await? {
        let w = watch_row(&row)?;
        if let Some(s) = sites.iter_mut().find(|s| s.site == w.site) {
            s.all.push(w);
        }
    }
    Ok(())
}

fn watch_row(row: &MySqlRow) -> Result<WatchRow> {
    let expect: String = row.try_get("expect")?;
    let seen: String = row.try_get("seen")?;
    let busy: i64 = row.try_get("busy")?;
    Ok(WatchRow {
        id: row.try_get("id")?,
        target: Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?),
        site: row.try_get("site")?,
        plan: row.try_get("plan")?,
        expect: Expect::parse(&expect)
            .ok_or_else(|| super::StoreError::Corrupt(format!("watch expect {expect:?}")))?,
        memory: Memory {
            seen: Finding::parse(&seen),
            times: row.try_get("seen_times")?,
            drifts: row.try_get("drifts")?,
        },
        quick_left: row.try_get("quick_left")?,
        busy: busy != 0,
        restore: row.try_get::<i8, _>("restore")? != 0,
        live: row.try_get::<Option<i64>, _>("live")?.map(|l| l != 0),
        account: row.try_get("account_id")?,
        latest: row
            .try_get::<Option<String>, _>("latest_action")?
            .as_deref()
            .and_then(Action::parse),
        latest_failed: row.try_get::<Option<i64>, _>("latest_failed")? == Some(1),
        age_secs: row.try_get::<Option<i64>, _>("age_secs")?.unwrap_or(0),
    })
}

/// One row's memory and next look, fenced by the claim's token. False when another worker
/// holds the row now.
async fn update_row(tx: &mut Transaction<'_, MySql>, token: &str, w: &CheckWrite) -> Result<bool> {
    if w.forget {
        let gone = sqlx::query("DELETE FROM mod_jetpack_watch WHERE id = ? AND check_token = ?")
            .bind(w.id)
            .bind(token)
            .execute(&mut **tx)
            .await?;
        return Ok(gone.rows_affected() == 1);
    }
    if w.settled {
        record_gone(tx, token, w).await?;
    }
    let done = sqlx::query(
        "UPDATE mod_jetpack_watch SET seen = ?, seen_times = ?, drifts = ?,
           found = COALESCE(?, found), checked_at = IF(? IS NULL, checked_at, UTC_TIMESTAMP(6)),
           quick_left = ?, restore = IF(? = 0, 0, restore),
           next_check_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, check_token = NULL
         WHERE id = ? AND check_token = ?",
    )
    .bind(w.memory.seen.as_str())
    .bind(w.memory.times)
    .bind(w.memory.drifts)
    .bind(w.found.as_deref().map(|f| fit(f, 255)))
    .bind(w.found.as_deref())
    .bind(w.quick_left)
    .bind(w.quick_left)
    .bind(micros(w.next_in))
    .bind(w.id)
    .bind(token)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A target whose failed terminate (or cancelling suspend) the partner shows done anyway: its ledger row for the
/// watched site is deleted and the row expects the plan absent (fenced by the claim's token).
async fn record_gone(tx: &mut Transaction<'_, MySql>, token: &str, w: &CheckWrite) -> Result<()> {
    let gone = sqlx::query(
        "UPDATE mod_jetpack_watch SET expect = 'absent', restore = 0
         WHERE id = ? AND check_token = ?",
    )
    .bind(w.id)
    .bind(token)
    .execute(&mut **tx)
    .await?;
    if gone.rows_affected() == 1 {
        sqlx::query(
            "DELETE l FROM mod_jetpack_ledger l JOIN mod_jetpack_watch k
               ON k.service_id = l.service_id AND k.addon_id = l.addon_id
              AND k.site_hash = l.site_hash
             WHERE k.id = ?",
        )
        .bind(w.id)
        .execute(&mut **tx)
        .await?;
        tracing::info!(target = %w.target,
            "the partner no longer holds the plan this target's failed terminate or suspend was to cancel; recorded as gone");
    }
    Ok(())
}
