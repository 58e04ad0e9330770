//! The adoption scan's trailing window (issue 18, "discovery that cannot skip").
//!
//! InnoDB allocates an auto-increment id at INSERT time, so a service (addon) inserted by a
//! transaction that commits after a higher id was discovered lies below the watermark, where
//! discovery never looks again. After each complete discovery pass, the window re-reads the
//! ids above a *trail*: the top of tblhosting (tblhostingaddons) as it stood at least one
//! window length ago (`mod_jetpack_adoption_window`, one row; each top is a `MAX(id)` read
//! from the primary key's end). Every id allocated within the window lies above
//! it, so a row committed late is read by the first pass after its commit, as long as its
//! transaction was open for less than about one window.
//!
//! The reads are the discovery's own indexes: per Jetpack product, tblhosting through
//! `productid` above the trail; tblhostingaddons by primary key between the addon trail and
//! its top. Only Pending rows that are neither candidates nor marked are returned (a
//! row seen twice is recorded once); they become candidates, re-checked by the same scan. Once nothing new
//! was added for a window, the trails reach the tops and the reads are skipped: the
//! idle cost is one read of the window row per pass.
//!
//! The first pass that finds no window row starts the window at the tables' tops (there is
//! no earlier position to go back to); the guarantee holds from then on.

use std::time::Duration;

use sqlx::{MySql, QueryBuilder, Row};

use super::discover::Found;
use super::kind::{Kind, waited, whmcs_id};
use super::parts::{Bind, union_of};
use crate::domain::ServiceId;
use crate::rules::MODULE_NAME;
use crate::store::explain::{PlanStep, plan};
use crate::store::{Result, Store, within};

/// The window row, if any, and the tops of tblhosting and tblhostingaddons (their highest
/// committed ids, read from the primary key's end: no row is examined), the window length in
/// microseconds.
const STATE_SQL: &str = "SELECT w.service_trail, w.service_mid, w.addon_trail, w.addon_mid,
            COALESCE(w.mid_at <= UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND, 0) AS aged,
            CAST(COALESCE((SELECT MAX(id) FROM tblhosting), 0) AS SIGNED) AS service_top,
            CAST(COALESCE((SELECT MAX(id) FROM tblhostingaddons), 0) AS SIGNED) AS addon_top
     FROM (SELECT 1 AS one) x LEFT JOIN mod_jetpack_adoption_window w ON w.id = 1";

/// A window's first row: every trail and mid at the tops (service top twice, addon top
/// twice).
const START_SQL: &str = "INSERT IGNORE INTO mod_jetpack_adoption_window
       (id, service_trail, service_mid, addon_trail, addon_mid, mid_at)
     VALUES (1, ?, ?, ?, ?, UTC_TIMESTAMP(6))";

/// The mids noted a window ago become the trails, the tops the new mids (service top,
/// addon top, window length twice). Assignments run left to right: each trail takes its mid
/// before the mid moves. The condition keeps two workers from moving it twice.
const AGE_SQL: &str = "UPDATE mod_jetpack_adoption_window
     SET service_trail = service_mid, service_mid = GREATEST(service_mid, ?),
         addon_trail = addon_mid, addon_mid = GREATEST(addon_mid, ?),
         mid_at = UTC_TIMESTAMP(6)
     WHERE id = 1 AND mid_at <= UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND";

/// One product's part of the services' window read (product, trail, top, page): its Pending
/// services above the trail through the `productid` index (forced, as discovery's), each not
/// yet a candidate nor marked (primary keys, in the select list: a `NOT EXISTS` in the WHERE
/// becomes a materialised scan of those tables), with how long its order has waited.
fn service_part() -> String {
    format!(
        "(SELECT h.id, 0 AS parent, {waited} AS waited, {known} AS known
     FROM tblhosting h FORCE INDEX (productid)
     WHERE h.packageid = ? AND h.id > ? AND h.id <= ? AND h.domainstatus = 'Pending'
     HAVING known = 0 ORDER BY h.id LIMIT ?)",
        waited = waited("h.orderid"),
        known = Kind::Service.known("h.id"),
    )
}

/// The addons' window read (trail, top, module name, page): tblhostingaddons by primary key
/// between the trail and the top (forced: the `status` index would read every Pending addon),
/// each row's addon by primary key; the Pending ones of `jetpack` addons not yet candidates
/// nor marked.
fn addon_part() -> String {
    format!(
        "SELECT a.id, a.hostingid AS parent, {waited} AS waited, {known} AS known
     FROM tblhostingaddons a FORCE INDEX (PRIMARY) STRAIGHT_JOIN tbladdons d ON d.id = a.addonid
     WHERE a.id > ? AND a.id <= ? AND a.status = 'Pending' AND d.module = ?
     HAVING known = 0 ORDER BY a.id LIMIT ?",
        waited = waited("a.orderid"),
        known = Kind::Addon.known("a.id"),
    )
}

/// The window read of one kind between its trail and its top: a part per scope.
fn window_query(
    kind: Kind,
    scopes: &[u32],
    [trail, top]: [u32; 2],
    page: u32,
    prefix: &str,
) -> QueryBuilder<MySql> {
    let (trail, top, page) = (Bind::Id(trail), Bind::Id(top), Bind::Id(page));
    match kind {
        Kind::Service => union_of(prefix, &service_part(), scopes, |p| {
            vec![Bind::Id(p), trail, top, page]
        }),
        Kind::Addon => union_of(prefix, &addon_part(), scopes, |_| {
            vec![trail, top, Bind::Text(MODULE_NAME), page]
        }),
    }
}

/// What one pass over the trailing window found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Behind {
    /// Pending services found below the watermark and recorded as candidates.
    pub candidates: u64,
    /// Pending addons found below the addon watermark and recorded as candidates.
    pub addon_candidates: u64,
    /// The window was read (false: the trails were at the tops, or it just started).
    pub read: bool,
}

/// The window row (trails None: no window yet) with the tables' tops.
#[derive(Clone, Copy, Debug)]
struct WindowState {
    trails: Option<Positions>,
    mids: Positions,
    tops: Positions,
    aged: bool,
}

/// A (services, addons) pair of positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Positions {
    service: u32,
    addon: u32,
}

impl Positions {
    /// The position of one kind.
    fn of(self, kind: Kind) -> u32 {
        kind.pick([self.service, self.addon])
    }
}

impl Store {
    /// One pass over the trailing window, after a complete discovery pass: the Pending
    /// services (of `products`) and addons above the trails that are neither candidates nor
    /// marked become candidates (up to `page` per product and `page` addons; the rest on the
    /// next pass); then, when the mids are at least `window` old, they become the trails and
    /// the tables' tops the new mids. Without a window row, it starts one at the tops.
    pub async fn rescan_window(
        &self,
        products: &[u32],
        page: u32,
        window: Duration,
    ) -> Result<Behind> {
        within(self.timeout, self.window_pass(products, page, window)).await
    }

    async fn window_pass(&self, products: &[u32], page: u32, window: Duration) -> Result<Behind> {
        let micros = window_micros(window);
        let state = self.window_state(micros).await?;
        let tops = state.tops;
        let Some(trails) = state.trails else {
            sqlx::query(START_SQL)
                .bind(tops.service)
                .bind(tops.service)
                .bind(tops.addon)
                .bind(tops.addon)
                .execute(&self.pool)
                .await?;
            return Ok(Behind::default());
        };
        let mut out = Behind::default();
        for kind in self.kinds() {
            let (trail, top) = (trails.of(kind), tops.of(kind));
            let scopes = kind.scopes(products);
            if trail < top && !scopes.is_empty() {
                out.read = true;
                let found = self.window_read(kind, &scopes, [trail, top], page).await?;
                *kind.pick([&mut out.candidates, &mut out.addon_candidates]) = found;
            }
        }
        let settled = trails == state.mids && state.mids == tops;
        if state.aged && !settled {
            sqlx::query(AGE_SQL)
                .bind(tops.service)
                .bind(tops.addon)
                .bind(micros)
                .execute(&self.pool)
                .await?;
        }
        Ok(out)
    }

    async fn window_state(&self, micros: u64) -> Result<WindowState> {
        let row = sqlx::query(STATE_SQL)
            .bind(micros)
            .fetch_one(&self.pool)
            .await?;
        let trail: Option<u32> = row.try_get("service_trail")?;
        let addon_trail: Option<u32> = row.try_get("addon_trail")?;
        Ok(WindowState {
            trails: trail
                .zip(addon_trail)
                .map(|(service, addon)| Positions { service, addon }),
            mids: Positions {
                service: row.try_get::<Option<u32>, _>("service_mid")?.unwrap_or(0),
                addon: row.try_get::<Option<u32>, _>("addon_mid")?.unwrap_or(0),
            },
            tops: Positions {
                service: top(&row, "service_top")?,
                addon: top(&row, "addon_top")?,
            },
            aged: row.try_get::<i64, _>("aged")? == 1,
        })
    }

    /// One kind's window read between its trail and its top; records what it found as
    /// candidates, due as unpaid ones are (a late commit's order is seconds old: due within a
    /// scan or two).
    async fn window_read(
        &self,
        kind: Kind,
        scopes: &[u32],
        range: [u32; 2],
        page: u32,
    ) -> Result<u64> {
        let mut q = window_query(kind, scopes, range, page, "");
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let parent = ServiceId(whmcs_id(row.try_get("parent")?));
            let target = kind.target(whmcs_id(row.try_get("id")?), parent);
            found.push((target, Found::read(row, false)?));
        }
        self.add_candidates(kind, &found).await?;
        Ok(found.len() as u64)
    }

    /// The EXPLAIN of the window reads over the whole id range (`window`, and `addons
    /// window` when WHMCS has module addons).
    pub(super) async fn explain_window(
        &self,
        products: &[u32],
    ) -> Result<Vec<(&'static str, Vec<PlanStep>)>> {
        let mut out = Vec::new();
        for kind in self.kinds() {
            let scopes = kind.scopes(products);
            if !scopes.is_empty() {
                let mut q = window_query(kind, &scopes, [0, u32::MAX], 500, "EXPLAIN ");
                let name = kind.pick(["window", "addons window"]);
                out.push((name, plan(&mut q, &self.pool).await?));
            }
        }
        Ok(out)
    }
}

/// A table's top as the state row reads it (0 for an empty table).
fn top(row: &sqlx::mysql::MySqlRow, name: &str) -> Result<u32> {
    let value: i64 = row.try_get(name)?;
    Ok(u32::try_from(value).unwrap_or(0))
}

/// The window length in microseconds, as the SQL intervals take it.
fn window_micros(window: Duration) -> u64 {
    u64::try_from(window.as_micros()).unwrap_or(u64::MAX)
}
