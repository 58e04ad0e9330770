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
use super::ledger::{AddonRows, LedgerWrite, follow_addon, write_ledger_with};
use super::whmcs::{addon_defs_by_id, products_by_id};
use super::{ProductRow, Result, Store, StoreError, within};
use crate::backoff;
use crate::domain::{Action, JobId, RequestedBy, Target};
use crate::drift::{Expect, Finding, Memory};
use crate::lifecycle::RequestKind;
use crate::text::fit;
use backon::Retryable;

/// When a target's site is looked at after its job ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSchedule {
    /// After an outcome-unknown call or a cancel: looks at these times after the outcome.
    pub quick: Vec<Duration>,
    /// The slow rolling pass: every watched site once per this period, spread.
    pub pass: Duration,
}

impl Default for WatchSchedule {
    fn default() -> Self {
        WatchSchedule {
            quick: [60, 600, 3600].map(Duration::from_secs).to_vec(),
            pass: Duration::from_secs(86_400),
        }
    }
}

impl WatchSchedule {
    /// The wait before the first look: the first quick step, or a random point of the pass.
    fn first(&self, quick: bool) -> Duration {
        match self.quick.first() {
            Some(first) if quick => *first,
            _ => self.pass.mul_f64(fastrand::f64()),
        }
    }

    /// Quick looks still to come after the first.
    fn quick_left(&self, quick: bool) -> u8 {
        if quick {
            u8::try_from(self.quick.len().saturating_sub(1)).unwrap_or(u8::MAX)
        } else {
            0
        }
    }
}

/// One target's expectation at one site, with what the reconciler remembers of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRow {
    /// mod_jetpack_watch.id
    pub id: u64,
    /// The service or addon.
    pub target: Target,
    /// The site as sent to the partner API.
    pub site: String,
    /// The plan provisioned (or cancelled).
    pub plan: String,
    /// Holds or absent.
    pub expect: Expect,
    /// What earlier looks found.
    pub memory: Memory,
    /// Quick looks still to come.
    pub quick_left: u8,
    /// The target has an unfinished job or a request not yet applied: its intent is still
    /// moving, so it is not judged.
    pub busy: bool,
    /// A cancel of ours touched the site since this row's outcome (another target's
    /// terminate): a plan missing now was removed by us, and is provisioned again.
    pub restore: bool,
    /// The action of the target's latest job (its latest intent); None when it has none
    /// (pruned) or one this binary does not know.
    pub latest: Option<Action>,
    /// Whether WHMCS says the target is live now (Pending, Active or Suspended); None when its
    /// service (addon) row is gone.
    pub live: Option<bool>,
    /// The product (addon) whose partner account the row was written with.
    pub account: Option<u32>,
    /// Seconds since the expectation was last written by a job.
    pub age_secs: i64,
}

/// A site to look at: the rows due (claimed for this worker), every row watching the site, and
/// the partner account to ask with (the product or addon of a due row).
#[derive(Debug)]
pub struct SiteCheck {
    /// The site as sent to the partner API.
    pub site: String,
    /// The claim's token: the writes of this look are fenced by it.
    pub token: String,
    /// When the rows were claimed (the database's clock): a request this look records is
    /// dated then, and only recorded if the target has none of its own since.
    pub looked_at: chrono::NaiveDateTime,
    /// The rows due now.
    pub due: Vec<WatchRow>,
    /// Every row on the site (due ones included).
    pub all: Vec<WatchRow>,
    /// Whose credentials to ask with; None when no due row's product (addon) is left.
    pub account: Option<ProductRow>,
}

/// The outcome of one look for one row.
#[derive(Clone, Debug)]
pub struct CheckWrite {
    /// mod_jetpack_watch.id
    pub id: u64,
    /// The row's target, for the drift list and the activity log.
    pub target: Target,
    /// What the row now remembers.
    pub memory: Memory,
    /// What it remembered before this look (kept when a drift's request is overtaken).
    pub before: Memory,
    /// The products of ours the answer listed (None: no answer; keep the last).
    pub found: Option<String>,
    /// When to look again.
    pub next_in: Duration,
    /// Quick looks still to come.
    pub quick_left: u8,
    /// A confirmed drift to record.
    pub drift: Option<DriftWrite>,
    /// The row is done with (a cancelled plan that stayed away long enough): delete it.
    pub forget: bool,
    /// The partner already shows what the target's failed terminate asked for: its ledger row
    /// for the site goes and the row expects the plan absent (`drift::settled_by_partner`).
    pub settled: bool,
}

/// A confirmed drift: shown in the drift list and the activity log, and maybe a request.
#[derive(Clone, Debug)]
pub struct DriftWrite {
    /// The site.
    pub site: String,
    /// What WHMCS intends, in words.
    pub expected: String,
    /// What the partner reported, in words.
    pub found: String,
    /// What the reconciler did, in words.
    pub done: String,
    /// The activity-log line (starts with `JETPACK MODULE`).
    pub activity: String,
    /// The request recorded for the target, if any.
    pub request: Option<RequestKind>,
    /// Before a cancel request: the plan the partner holds, recorded in the ledger so the
    /// terminate cancels exactly it.
    pub holds: Option<String>,
    /// The product (addon) to record with it: its credentials cancel it even once the
    /// target's row is gone.
    pub account: Option<u32>,
}

/// A recorded drift, for `status` and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DriftRow {
    /// tblhosting.id (an addon's parent).
    pub service_id: u32,
    /// tblhostingaddons.id; 0 for the service itself.
    pub addon_id: u32,
    /// The site.
    pub site: String,
    /// What WHMCS intended.
    pub expected: String,
    /// What the partner reported.
    pub found: String,
    /// What was done.
    pub done: String,
    /// When (UTC).
    pub at: chrono::DateTime<chrono::Utc>,
}

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

/// A target whose failed terminate the partner shows done anyway: its ledger row for the
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
            "the partner no longer holds the plan this target's failed terminate was to cancel; recorded as gone");
    }
    Ok(())
}

/// Inside a job's fenced finish: what its ledger changes mean for the watch. A plan recorded
/// should be there (with the ledger row's product and addon); a plan cancelled should stay
/// away. `quick`: the job's outcome was unknown at some point, or it cancelled: look soon.
/// Either way the row's memory starts over (its drift count stays, so fighting stays bounded).
pub(super) async fn note_outcome(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    writes: &[LedgerWrite],
    quick: bool,
    schedule: &WatchSchedule,
) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    // An addon moved to another service is one target: its rows follow it, as the ledger's do.
    follow_addon(tx, AddonRows::Watch, target).await?;
    for w in writes {
        match w {
            LedgerWrite::Holds { site, .. } => {
                note_holds(tx, target, site, quick, schedule).await?;
            }
            LedgerWrite::Cancelled { site } => {
                note_cancelled(tx, target, site, schedule).await?;
            }
        }
    }
    Ok(())
}

async fn note_holds(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    site: &str,
    quick: bool,
    schedule: &WatchSchedule,
) -> Result<()> {
    note_holds_many(tx, &[(target, site, quick)], schedule).await
}

/// A plan each (target, site, quick) now holds, as recorded in the ledger (an addon's rows
/// have followed it first, in [`note_outcome`]): the rows in one INSERT … SELECT
/// from the ledger joined to a derived table of the rows' values, and whether another
/// target's cancel on their sites ran lately in one SELECT. One job's finish and the batched
/// finish both write through here.
pub(super) async fn note_holds_many(
    tx: &mut Transaction<'_, MySql>,
    rows: &[(Target, &str, bool)],
    schedule: &WatchSchedule,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO mod_jetpack_watch
           (service_id, addon_id, site, plan, expect, product_id, addon_def_id, next_check_at,
            quick_left, updated_at)
         SELECT l.service_id, l.addon_id, l.site, l.plan, 'holds', l.product_id, l.addon_def_id,
                UTC_TIMESTAMP(6) + INTERVAL v.v_wait MICROSECOND, v.v_quick, UTC_TIMESTAMP(6)
         FROM (",
    );
    for (n, (target, site, quick)) in rows.iter().enumerate() {
        q.push(if n == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        });
        q.push_bind(target.service()).push(" AS v_sid, ");
        q.push_bind(target.addon_id()).push(" AS v_aid, ");
        q.push_bind(*site).push(" AS v_site, ");
        q.push_bind(micros(schedule.first(*quick)))
            .push(" AS v_wait, ");
        q.push_bind(schedule.quick_left(*quick)).push(" AS v_quick");
    }
    q.push(
        ") v JOIN mod_jetpack_ledger l
           ON l.service_id = v.v_sid AND l.addon_id = v.v_aid
          AND l.site_hash = UNHEX(SHA2(v.v_site, 256))
         ON DUPLICATE KEY UPDATE plan = VALUES(plan), expect = 'holds',
           product_id = COALESCE(VALUES(product_id), mod_jetpack_watch.product_id),
           addon_def_id = COALESCE(VALUES(addon_def_id), mod_jetpack_watch.addon_def_id),
           next_check_at = VALUES(next_check_at), quick_left = VALUES(quick_left),
           seen = 'fine', seen_times = 0, restore = 0, check_token = NULL,
           updated_at = VALUES(updated_at)",
    );
    q.build().execute(&mut **tx).await?;
    for (target, site, _) in cancelled_lately(tx, rows).await? {
        // Another target's cancel on this site just ran: it may have raced this provision and
        // removed what it left. Look soon, and restore it if so.
        sqlx::query(
            "UPDATE mod_jetpack_watch SET restore = 1, quick_left = ?,
               next_check_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
             WHERE service_id = ? AND addon_id = ? AND site_hash = UNHEX(SHA2(?, 256))",
        )
        .bind(schedule.quick_left(true))
        .bind(micros(schedule.first(true)))
        .bind(target.service())
        .bind(target.addon_id())
        .bind(site)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// How long after another target's cancel on a site a provision there counts as racing it.
const RACE_WINDOW_SECS: u32 = 600;

/// The rows whose site saw another target's cancel within [`RACE_WINDOW_SECS`] (by the
/// `site` index), in one SELECT whatever the number of rows.
async fn cancelled_lately<'a>(
    tx: &mut Transaction<'_, MySql>,
    rows: &[(Target, &'a str, bool)],
) -> Result<Vec<(Target, &'a str, bool)>> {
    let mut q = QueryBuilder::<MySql>::new("SELECT DISTINCT CAST(v.v_n AS SIGNED) FROM (");
    for (n, (target, site, _)) in rows.iter().enumerate() {
        q.push(if n == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        });
        q.push_bind(n as u32).push(" AS v_n, ");
        q.push_bind(target.service()).push(" AS v_sid, ");
        q.push_bind(target.addon_id()).push(" AS v_aid, ");
        q.push_bind(*site).push(" AS v_site");
    }
    q.push(
        ") v JOIN mod_jetpack_watch w
           ON w.site_hash = UNHEX(SHA2(v.v_site, 256)) AND w.expect = 'absent'
          AND NOT (w.service_id = v.v_sid AND w.addon_id = v.v_aid)
          AND w.updated_at > UTC_TIMESTAMP(6) - INTERVAL ",
    );
    q.push_bind(RACE_WINDOW_SECS).push(" SECOND");
    let raced: Vec<(i64,)> = q.build_query_as().fetch_all(&mut **tx).await?;
    Ok(raced
        .into_iter()
        .filter_map(|(n,)| usize::try_from(n).ok().and_then(|n| rows.get(n)).copied())
        .collect())
}

async fn note_cancelled(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    site: &str,
    schedule: &WatchSchedule,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE mod_jetpack_watch SET expect = 'absent',
           next_check_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, quick_left = ?,
           seen = 'fine', seen_times = 0, check_token = NULL, updated_at = UTC_TIMESTAMP(6)
         WHERE service_id = ? AND addon_id = ? AND site_hash = UNHEX(SHA2(?, 256))",
    )
    .bind(micros(schedule.first(true)))
    .bind(schedule.quick_left(true))
    .bind(target.service())
    .bind(target.addon_id())
    .bind(site)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        // A cancel of a plan nobody watched (a service that never held one, or one from
        // before the watch): a marker, so a provision racing it on the site is looked at.
        sqlx::query(
            "INSERT IGNORE INTO mod_jetpack_watch
               (service_id, addon_id, site, plan, expect, next_check_at, updated_at)
             VALUES (?, ?, ?, '', 'absent', UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND,
                     UTC_TIMESTAMP(6))",
        )
        .bind(target.service())
        .bind(target.addon_id())
        .bind(site)
        .bind(micros(schedule.pass))
        .execute(&mut **tx)
        .await?;
    }
    // The other targets that should hold a plan on the site are looked at soon too: a cancel
    // racing another target's provision on the same site may have removed its plan.
    sqlx::query(
        "UPDATE mod_jetpack_watch SET restore = 1, quick_left = GREATEST(quick_left, ?),
           next_check_at = LEAST(next_check_at, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND),
           seen = 'fine', seen_times = 0, check_token = NULL
         WHERE site_hash = UNHEX(SHA2(?, 256)) AND expect = 'holds'
           AND NOT (service_id = ? AND addon_id = ?)",
    )
    .bind(schedule.quick_left(true))
    .bind(micros(schedule.first(true)))
    .bind(site)
    .bind(target.service())
    .bind(target.addon_id())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
