//! Discovery: per kind, the targets above its watermarks, read by index, each row once; the
//! Pending ones whose order is paid already are adopted at once (marked and requested, as a
//! re-check would), the other Pending ones become candidates, then the watermarks move past
//! what was read (a crash in between only examines them again: their marks keep them from
//! being requested twice).
//!
//! Services: per Jetpack product, its services above that product's watermark
//! (`mod_jetpack_adoption_watermarks`), through tblhosting's `packageid` index. Addons:
//! tblhostingaddons has no index on `addonid`, so one page of its rows above the addon
//! watermark (`mod_jetpack_adoption_addon_watermark`) is read by primary key, each row once
//! whatever its module, with its addon (tbladdons) by primary key. The page reads ids and
//! whether each is Pending, nothing more (an idle scan's page reads no row and stays cheap);
//! the Pending ones it found are then read by primary key with how long each has waited and
//! whether its order is paid already ([`Kind::qualifies`]: its product or addon, order and
//! invoice by primary key; an addon's also needs its parent service). A paid one is adopted
//! from the page that found it, with no candidate row; any other is first due within a tenth
//! of its order's age (spread, at most an hour).

use std::collections::BTreeMap;

use sqlx::{MySql, QueryBuilder, Row};

use super::adopt::Adopted;
use super::kind::{Kind, waited, whmcs_id};
use super::parts::{Bind, push_template, union_of};
use crate::domain::{ServiceId, Target};
use crate::rules::MODULE_NAME;
use crate::store::{Result, Store, within};

/// Pending targets read per statement of [`pending_query`] (a power of two; a page of many
/// products may find more).
const PENDING_READ: usize = 512;

/// What one discovery page found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Services examined (above the watermarks).
    pub examined: u64,
    /// Pending services recorded as candidates (their orders do not qualify yet).
    pub candidates: u64,
    /// Addons examined (tblhostingaddons rows above the addon watermark, any module).
    pub addons_examined: u64,
    /// Pending addons of `jetpack` addons recorded as candidates.
    pub addon_candidates: u64,
    /// Provision requests recorded for the Pending services and addons whose order qualifies
    /// already (adopted from the page, never candidates).
    pub adopted: u64,
    /// Of those that qualified, the ones whose target had a job or a request already (marked,
    /// not requested again).
    pub already: u64,
    /// A product had more services, or tblhostingaddons more rows, than one page: call again.
    pub more: bool,
}

/// What one kind's discovery page found.
#[derive(Clone, Copy, Debug, Default)]
struct Page {
    examined: u64,
    candidates: u64,
    adopted: Adopted,
    more: bool,
}

impl Discovered {
    /// Adds one kind's page.
    fn add(&mut self, kind: Kind, page: Page) {
        let (examined, candidates) = match kind {
            Kind::Service => (&mut self.examined, &mut self.candidates),
            Kind::Addon => (&mut self.addons_examined, &mut self.addon_candidates),
        };
        *examined += page.examined;
        *candidates += page.candidates;
        self.adopted += page.adopted.requested;
        self.already += page.adopted.already;
        self.more |= page.more;
    }
}

/// A new candidate as discovery (or the window) found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Found {
    /// Seconds since its order was placed (0 without an order).
    pub(super) waited: i64,
    /// Its order is accepted or its invoice paid already (it qualifies): adopted from the page,
    /// never a candidate.
    pub(super) paid: bool,
}

impl Found {
    /// From a row's `waited` and (when `paid`) `paid` columns.
    pub(super) fn read(row: &sqlx::mysql::MySqlRow, paid: bool) -> Result<Found> {
        Ok(Found {
            waited: row.try_get::<Option<i64>, _>("waited")?.unwrap_or(0).max(0),
            paid: paid && row.try_get::<Option<i64>, _>("paid")? == Some(1),
        })
    }

    /// The candidate row's `found_at` and `next_check_at` values (first due at a random
    /// moment within a tenth of its order's age, at most an hour: at once for a fresh order).
    fn push_times(&self, b: &mut sqlx::query_builder::Separated<'_, MySql, &'static str>) {
        b.push("UTC_TIMESTAMP(6) - INTERVAL ")
            .push_bind_unseparated(self.waited)
            .push_unseparated(" SECOND");
        b.push("UTC_TIMESTAMP(6) + INTERVAL FLOOR(LEAST(3600, ")
            .push_bind_unseparated(self.waited)
            .push_unseparated(" DIV 10) * RAND() * 1000000) MICROSECOND");
    }
}

/// One product's part of the services' discovery page (product, watermark, page): its
/// services above the watermark through the `packageid` index (`productid` in every WHMCS
/// layout), forced: with `ORDER BY id LIMIT` the optimizer may otherwise pick a primary-key
/// range from the watermark, which reads every later service of every product. Only the ids
/// and whether each is Pending: an idle scan reads no row, and subqueries here would cost
/// their optimization every time (a page of 20 products took twice as long with them).
const SERVICE_PART: &str =
    "(SELECT id, packageid AS scope, 0 AS parent, domainstatus = 'Pending' AS pending
      FROM tblhosting FORCE INDEX (productid) WHERE packageid = ? AND id > ?
      ORDER BY id LIMIT ?)";

/// The addons' discovery page (module name, watermark, page): tblhostingaddons by primary key
/// above the watermark, each row's addon (tbladdons) by primary key, whether it is a Pending
/// `jetpack` addon.
fn addon_part() -> String {
    format!(
        "SELECT a.id, {scope} AS scope, a.hostingid AS parent,
            COALESCE(a.status = 'Pending' AND d.module = ?, 0) AS pending
     FROM tblhostingaddons a
     LEFT JOIN tbladdons d ON d.id = a.addonid
     WHERE a.id > ? ORDER BY a.id LIMIT ?",
        scope = super::kind::ADDON_SCOPE,
    )
}

/// The discovery page of one kind: a part per scope above that scope's watermark.
pub(super) fn discovery_query(
    kind: Kind,
    scopes: &[u32],
    marks: &BTreeMap<u32, u32>,
    page: u32,
    prefix: &str,
) -> QueryBuilder<MySql> {
    let after = |scope: u32| Bind::Id(marks.get(&scope).copied().unwrap_or(0));
    match kind {
        Kind::Service => union_of(prefix, SERVICE_PART, scopes, |p| {
            vec![Bind::Id(p), after(p), Bind::Id(page)]
        }),
        Kind::Addon => union_of(prefix, &addon_part(), scopes, |s| {
            vec![Bind::Text(MODULE_NAME), after(s), Bind::Id(page)]
        }),
    }
}

/// The Pending targets a page found, by primary key, forced (the optimizer may otherwise read
/// every Pending row through the status index; module name first, then the ids): each one's
/// parent as it is now, how long it has waited and whether its order qualifies already
/// ([`Kind::qualifies`]: a service's product read again, as the list of products is cached for
/// a minute, so a service whose product left the module reads as unpaid, a candidate the
/// re-check drops; an addon's needs its parent service). A target no longer Pending, or an
/// addon no longer `jetpack`'s, is not returned. `ids` is padded to a power of two (the last
/// id repeated), so the statement has few texts.
pub(super) fn pending_query(kind: Kind, ids: &[u32], prefix: &str) -> QueryBuilder<MySql> {
    let head = match kind {
        Kind::Service => format!(
            "{prefix}SELECT h.id, 0 AS parent, {waited} AS waited,
                (SELECT {qualifies} FROM tblproducts p JOIN tblorders o ON o.id = h.orderid
                 LEFT JOIN tblinvoices i ON i.id = o.invoiceid AND o.invoiceid <> 0
                 WHERE p.id = h.packageid AND p.servertype = ?) AS paid
             FROM tblhosting h FORCE INDEX (PRIMARY)
             WHERE h.domainstatus = 'Pending' AND h.id IN (",
            waited = waited("h.orderid"),
            qualifies = Kind::Service.qualifies(),
        ),
        Kind::Addon => format!(
            "{prefix}SELECT a.id, a.hostingid AS parent, {waited} AS waited,
                (SELECT {qualifies} FROM tblorders o
                 JOIN tblhosting h ON h.id = a.hostingid
                 LEFT JOIN tblinvoices i ON i.id = o.invoiceid AND o.invoiceid <> 0
                 WHERE o.id = a.orderid) AS paid
             FROM tblhostingaddons a FORCE INDEX (PRIMARY)
             STRAIGHT_JOIN tbladdons d ON d.id = a.addonid
             WHERE a.status = 'Pending' AND d.module = ? AND a.id IN (",
            waited = waited("a.orderid"),
            qualifies = Kind::Addon.qualifies(),
        ),
    };
    let mut q = QueryBuilder::<MySql>::new("");
    push_template(&mut q, &head, &[Bind::Text(MODULE_NAME)]);
    let padded = ids.len().next_power_of_two();
    let last = ids.last().copied().unwrap_or(0);
    let mut list = q.separated(", ");
    for n in 0..padded {
        list.push_bind(ids.get(n).copied().unwrap_or(last));
    }
    q.push(")");
    q
}

impl Store {
    /// One discovery page: up to `page` services per product above its watermark, through
    /// the `packageid` index, and up to `page` tblhostingaddons rows above the addon
    /// watermark, by primary key; adopts the Pending ones (of `jetpack` products and addons)
    /// whose order qualifies already, records the other Pending ones as candidates, then moves
    /// the watermarks (a crash in between only examines them again).
    pub async fn discover_candidates(&self, products: &[u32], page: u32) -> Result<Discovered> {
        within(self.timeout, async {
            let mut found = Discovered::default();
            for kind in self.kinds() {
                let scopes = kind.scopes(products);
                if !scopes.is_empty() {
                    found.add(kind, self.discover(kind, &scopes, page).await?);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn discover(&self, kind: Kind, scopes: &[u32], page: u32) -> Result<Page> {
        let marks = self.watermarks(kind).await?;
        let mut q = discovery_query(kind, scopes, &marks, page, "");
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut top: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
        let mut pending = Vec::new();
        for row in &rows {
            let id = whmcs_id(row.try_get("id")?);
            let seen = top.entry(whmcs_id(row.try_get("scope")?)).or_insert((0, 0));
            *seen = (seen.0.max(id), seen.1 + 1);
            if row.try_get::<Option<i64>, _>("pending")? == Some(1) {
                pending.push(id);
            }
        }
        let (mut paid, mut unpaid) = (Vec::new(), Vec::new());
        for (target, found) in self.pending_found(kind, &pending).await? {
            if found.paid {
                paid.push(target);
            } else {
                unpaid.push((target, found));
            }
        }
        let mut adopted = Adopted::default();
        // A transaction per page of a product's worth, so no statement outgrows its
        // placeholders however many Jetpack products a page spans.
        for chunk in paid.chunks(page.max(1) as usize) {
            let done = self.adopt_found(kind, chunk).await?;
            adopted.requested += done.requested;
            adopted.already += done.already;
        }
        self.add_candidates(kind, &unpaid).await?;
        self.move_watermarks(kind, &top).await?;
        Ok(Page {
            examined: rows.len() as u64,
            candidates: unpaid.len() as u64,
            adopted,
            more: top.values().any(|(_, n)| *n >= page),
        })
    }

    /// The Pending targets of a page (by id) still Pending, each with its parent as it is now,
    /// how long it has waited and whether it qualifies already: one read by primary key per
    /// [`PENDING_READ`] ids, none when the page found no Pending target.
    async fn pending_found(&self, kind: Kind, ids: &[u32]) -> Result<Vec<(Target, Found)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PENDING_READ) {
            let rows = pending_query(kind, chunk, "")
                .build()
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                let parent = ServiceId(whmcs_id(row.try_get("parent")?));
                let target = kind.target(whmcs_id(row.try_get("id")?), parent);
                out.push((target, Found::read(row, true)?));
            }
        }
        Ok(out)
    }

    /// The kind's watermarks: the highest id examined per scope (none before the first page).
    pub(super) async fn watermarks(&self, kind: Kind) -> Result<BTreeMap<u32, u32>> {
        let [table, scope, last] = kind.watermarks();
        let rows: Vec<(u32, u32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {scope}, {last} FROM {table}"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Moves the kind's watermarks to the highest id read per scope (never back).
    async fn move_watermarks(&self, kind: Kind, top: &BTreeMap<u32, (u32, u32)>) -> Result<()> {
        if top.is_empty() {
            return Ok(());
        }
        let [table, scope, last] = kind.watermarks();
        let mut q = QueryBuilder::<MySql>::new(format!(
            "INSERT INTO {table} ({scope}, {last}, updated_at) "
        ));
        q.push_values(top, |mut b, (scope, (last, _))| {
            b.push_bind(*scope)
                .push_bind(*last)
                .push("UTC_TIMESTAMP(6)");
        });
        q.push(format!(
            " ON DUPLICATE KEY UPDATE
               {last} = GREATEST({last}, VALUES({last})),
               updated_at = VALUES(updated_at)"
        ));
        q.build().execute(&self.pool).await?;
        Ok(())
    }

    /// New candidates (orders not paid yet when found), each first due at a random moment
    /// within a tenth of its order's age (at most an hour; at once for a fresh order), so a
    /// first scan over years of abandoned orders is spread out, not a burst; then re-checked
    /// after a tenth of their age.
    pub(super) async fn add_candidates(&self, kind: Kind, found: &[(Target, Found)]) -> Result<()> {
        if found.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<MySql>::new(format!(
            "INSERT IGNORE INTO {} ({}, found_at, next_check_at) ",
            kind.candidates(),
            kind.target_columns()
        ));
        q.push_values(found, |mut b, (target, found)| {
            kind.push_target(&mut b, *target);
            found.push_times(&mut b);
        });
        q.build().execute(&self.pool).await?;
        Ok(())
    }
}
