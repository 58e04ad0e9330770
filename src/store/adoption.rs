//! The adoption scan, incremental and index-driven (issue 11): its cost follows the Jetpack
//! work, not the size of the WHMCS database.
//!
//! - *Discovery*: per Jetpack product, the services above that product's watermark
//!   (`mod_jetpack_adoption_watermarks`), read through tblhosting's `packageid` index; the
//!   Pending ones become candidates (`mod_jetpack_adoption_candidates`). Addons
//!   (docs/addons.md): tblhostingaddons has no index on `addonid`, so one page of its rows
//!   above the addon watermark (`mod_jetpack_adoption_addon_watermark`) is read by primary
//!   key, each row once whatever its module; the Pending ones of a `jetpack` addon (its
//!   tbladdons row by primary key) become candidates (`mod_jetpack_adoption_addon_candidates`).
//!   A Pending row whose order is paid already (the re-check's rule, one copy: its product,
//!   order and invoice by primary key, read for the Pending rows only) is due at once; any
//!   other is first due within a tenth of its order's age (spread, at most an hour).
//! - *Re-check*: a page of candidates joined by primary key to their service, product, order
//!   and invoice (an addon: its tblhostingaddons row, tbladdons row, parent service, order and
//!   invoice). A
//!   candidate that qualifies (Pending, "Do not automatically setup" — an addon's
//!   `autoactivate` empty —, order accepted or invoice paid) is marked in
//!   `mod_jetpack_adoption_marks` (`mod_jetpack_adoption_addon_marks`; primary key: once,
//!   across workers, never pruned) and gets a provision request for its target unless the
//!   target already had a job or a request; a candidate no longer Pending (or gone) is dropped.
//!   A page's qualifying candidates are recorded together, in one transaction
//!   (`adoption_marks`).
//! - *Deleted services and addons*: a page of the ledger joined by primary key to tblhosting
//!   (and tblhostingaddons for addon rows); a plan whose service (addon) row is gone gets one
//!   terminate request (marked the same way), unless its product (addon) keeps the plan.
//!
//! Every read of a WHMCS table is a plain (non-locking) read by index; writes touch only the
//! worker's own tables. Without module addons (WHMCS before 7.2, [`Store::has_addons`]) the
//! addon steps are skipped.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AssertSqlSafe, MySql, QueryBuilder, Row};

use super::{Result, Store, within};
use crate::domain::{AddonId, ServiceId, Target};
use crate::rules::MODULE_NAME;

/// An order accepted or its invoice paid (orders `o`, invoices `i`), not Fraud nor Cancelled:
/// with the product's (addon's) "Do not automatically setup", what makes a Pending target
/// qualify. One copy for the re-check and discovery (a paid order's candidate is due at once).
macro_rules! order_paid {
    () => {
        "o.status NOT IN ('Fraud', 'Cancelled') AND (o.status = 'Active' OR i.status = 'Paid')"
    };
}

/// A service qualifies: its product `p` is set to "Do not automatically setup" and its order
/// is paid (0 without a product or an order).
macro_rules! service_qualifies {
    () => {
        concat!("COALESCE(p.autosetup = '' AND ", order_paid!(), ", 0)")
    };
}

/// An addon qualifies: its addon `d` is set to "Do not automatically setup" and its order is
/// paid (0 without an addon or an order).
macro_rules! addon_qualifies {
    () => {
        concat!("COALESCE(d.autoactivate = '' AND ", order_paid!(), ", 0)")
    };
}

/// The re-check of a page of candidates (module name, then the page's condition).
const RECHECK_SQL: &str = concat!(
    "SELECT c.service_id,
                    COALESCE(h.domainstatus = 'Pending' AND p.servertype = ?, 0) AS waiting,
                    ",
    service_qualifies!(),
    " AS qualifies,
                    EXISTS (SELECT 1 FROM mod_jetpack_adoption_marks m
                            WHERE m.service_id = c.service_id AND m.action = 'provision') AS marked
             FROM mod_jetpack_adoption_candidates c
             LEFT JOIN tblhosting h ON h.id = c.service_id
             LEFT JOIN tblproducts p ON p.id = h.packageid
             LEFT JOIN tblorders o ON o.id = h.orderid
             LEFT JOIN tblinvoices i ON i.id = o.invoiceid AND o.invoiceid <> 0 "
);

/// The due candidates, the longest overdue first (page size).
const DUE_PAGE: &str = "WHERE c.next_check_at <= UTC_TIMESTAMP(6)
             ORDER BY c.next_check_at LIMIT ?";

/// The due candidates of the most recent orders first (page size): a fresh order is seen at
/// once however many old ones are overdue.
const FRESH_PAGE: &str = "WHERE c.next_check_at <= UTC_TIMESTAMP(6)
             ORDER BY c.found_at DESC LIMIT ?";

/// Every candidate, in id order (after, page size): `run --once` goes through them all.
const ALL_PAGE: &str = "WHERE c.service_id > ? ORDER BY c.service_id LIMIT ?";

/// A candidate that is still waiting is checked again after a tenth of its age, at most an
/// hour later, spread over the second half of that (so the old ones do not fall due
/// together); ids bound after.
const POSTPONE_SQL: &str = "UPDATE mod_jetpack_adoption_candidates
     SET next_check_at = UTC_TIMESTAMP(6) + INTERVAL FLOOR(
         LEAST(3600, TIMESTAMPDIFF(SECOND, found_at, UTC_TIMESTAMP(6)) DIV 10)
         * (0.5 + RAND() / 2) * 1000000) MICROSECOND
     WHERE service_id IN (";

/// One addon discovery page (module name three times, watermark, page size):
/// tblhostingaddons by primary key above the watermark, each row's catalogue row (tbladdons)
/// by primary key, and for the Pending `jetpack` ones how long they have waited and whether
/// they qualify already (their order and invoice by primary key).
const ADDON_DISCOVERY_SQL: &str = concat!(
    "SELECT a.id, a.hostingid,
            COALESCE(a.status = 'Pending' AND d.module = ?, 0) AS pending,
            IF(a.status = 'Pending' AND d.module = ?,
               (SELECT TIMESTAMPDIFF(SECOND, o.date, NOW()) FROM tblorders o
                WHERE o.id = a.orderid), NULL) AS waited,
            IF(a.status = 'Pending' AND d.module = ?,
               (SELECT ",
    addon_qualifies!(),
    " FROM tblorders o
                LEFT JOIN tblinvoices i ON i.id = o.invoiceid AND o.invoiceid <> 0
                WHERE o.id = a.orderid), NULL) AS paid
     FROM tblhostingaddons a
     LEFT JOIN tbladdons d ON d.id = a.addonid
     WHERE a.id > ? ORDER BY a.id LIMIT ?"
);

/// The re-check of a page of addon candidates (module name, then the page's condition; the
/// pages of services apply, but for [`ADDON_ALL_PAGE`]). An addon whose parent service is gone
/// no longer waits (as the AddonActivation hook, it needs its service).
const ADDON_RECHECK_SQL: &str = concat!(
    "SELECT c.addon_id, c.service_id, a.hostingid,
                    COALESCE(a.status = 'Pending' AND d.module = ? AND h.id IS NOT NULL, 0)
                        AS waiting,
                    ",
    addon_qualifies!(),
    " AS qualifies,
                    EXISTS (SELECT 1 FROM mod_jetpack_adoption_addon_marks m
                            WHERE m.addon_id = c.addon_id AND m.action = 'provision') AS marked
             FROM mod_jetpack_adoption_addon_candidates c
             LEFT JOIN tblhostingaddons a ON a.id = c.addon_id
             LEFT JOIN tbladdons d ON d.id = a.addonid
             LEFT JOIN tblhosting h ON h.id = a.hostingid
             LEFT JOIN tblorders o ON o.id = a.orderid
             LEFT JOIN tblinvoices i ON i.id = o.invoiceid AND o.invoiceid <> 0 "
);

/// Every addon candidate, in id order (after, page size).
const ADDON_ALL_PAGE: &str = "WHERE c.addon_id > ? ORDER BY c.addon_id LIMIT ?";

/// [`POSTPONE_SQL`] for addon candidates; ids bound after.
const ADDON_POSTPONE_SQL: &str = "UPDATE mod_jetpack_adoption_addon_candidates
     SET next_check_at = UTC_TIMESTAMP(6) + INTERVAL FLOOR(
         LEAST(3600, TIMESTAMPDIFF(SECOND, found_at, UTC_TIMESTAMP(6)) DIV 10)
         * (0.5 + RAND() / 2) * 1000000) MICROSECOND
     WHERE addon_id IN (";

/// Which candidates a re-check reads. `Due` and `Fresh` read a page of services and a page of
/// addons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// Those due now, the longest overdue first (`run`).
    Due,
    /// Those due now, the most recent orders first (`run`, beside `Due`).
    Fresh,
    /// Every candidate after this one, due or not (`run --once`): the services in id order,
    /// then the addons.
    After(RecheckCursor),
}

/// Where a re-check of every candidate resumes: the services' candidates in id order, then
/// the addons'. The default is the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecheckCursor {
    /// After this service candidate (`ServiceId(0)`: from the start).
    Service(ServiceId),
    /// After this addon candidate (every service candidate has been read).
    Addon(AddonId),
}

impl Default for RecheckCursor {
    fn default() -> RecheckCursor {
        RecheckCursor::Service(ServiceId(0))
    }
}

impl From<ServiceId> for RecheckCursor {
    fn from(after: ServiceId) -> RecheckCursor {
        RecheckCursor::Service(after)
    }
}

/// The deleted-service sweep's page (after, page size).
/// A service is gone when its tblhosting row is; its plan is kept when the product (the one
/// the ledger recorded) has "Keep the Jetpack plan when a service is deleted" ticked
/// (configoption4, a WHMCS yes/no: anything but '' and '0' is yes, as lib/Hooks.php reads it).
const SWEEP_SQL: &str = "SELECT l.id, l.service_id, l.addon_id,
            h.id IS NULL AND COALESCE(p.configoption4 IN ('', '0'), 1) AS gone
     FROM mod_jetpack_ledger l
     LEFT JOIN tblhosting h ON h.id = l.service_id
     LEFT JOIN tblproducts p ON p.id = l.product_id
     WHERE l.id > ? AND l.addon_id = 0 ORDER BY l.id LIMIT ?";

/// The sweep's page where WHMCS has module addons: the ledger's addon rows too. An addon is
/// gone when its tblhostingaddons row is (WHMCS deletes a service's addons with it); its plan
/// is kept when its addon (the tbladdons row the ledger recorded) has "Keep the Jetpack plan"
/// ticked (its configoption4 in tblmodule_configuration, by the unique key).
const SWEEP_WITH_ADDONS_SQL: &str = "SELECT l.id, l.service_id, l.addon_id,
            IF(l.addon_id = 0,
               h.id IS NULL AND COALESCE(p.configoption4 IN ('', '0'), 1),
               ha.id IS NULL AND COALESCE(k.value IN ('', '0'), 1)) AS gone
     FROM mod_jetpack_ledger l
     LEFT JOIN tblhosting h ON h.id = l.service_id
     LEFT JOIN tblproducts p ON p.id = l.product_id
     LEFT JOIN tblhostingaddons ha ON ha.id = l.addon_id
     LEFT JOIN tblmodule_configuration k ON k.entity_type = 'addon' AND k.entity_id = l.addon_def_id
          AND k.setting_name = 'configoption4'
     WHERE l.id > ? ORDER BY l.id LIMIT ?";

/// One line of an EXPLAIN: the table, the access type and the key used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanStep {
    /// The table (alias) as EXPLAIN names it.
    pub table: String,
    /// The access type (`ALL` is a full scan).
    pub access: String,
    /// The index used, if any.
    pub key: Option<String>,
}

/// What one discovery page found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Services examined (above the watermarks).
    pub examined: u64,
    /// Pending services recorded as candidates.
    pub candidates: u64,
    /// Addons examined (tblhostingaddons rows above the addon watermark, any module).
    pub addons_examined: u64,
    /// Pending addons of `jetpack` addons recorded as candidates.
    pub addon_candidates: u64,
    /// A product had more services, or tblhostingaddons more rows, than one page: call again.
    pub more: bool,
}

/// What one re-check page did (services and addons together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rechecked {
    /// Candidates read.
    pub examined: u64,
    /// Provision requests recorded.
    pub adopted: u64,
    /// Candidates that qualified but already had a job or request (marked, not queued).
    pub already: u64,
    /// Candidates dropped (no longer Pending, gone, or marked before).
    pub dropped: u64,
    /// Of `adopted`, the addons.
    pub adopted_addons: u64,
    /// Where the next page starts (None: the end was reached). `Due` and `Fresh`: Some when a
    /// page was full.
    pub next: Option<RecheckCursor>,
}

impl Rechecked {
    /// Candidates the page settled (adopted, marked as already requested, or dropped): they
    /// are no longer candidates. A page that settled some may be followed by another at once.
    pub fn settled(&self) -> u64 {
        self.adopted + self.already + self.dropped
    }

    fn add(&mut self, other: &Rechecked) {
        self.examined += other.examined;
        self.adopted += other.adopted;
        self.already += other.already;
        self.dropped += other.dropped;
        self.adopted_addons += other.adopted_addons;
    }
}

/// What one page of the deleted-service sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Ledger rows read.
    pub examined: u64,
    /// Terminate requests recorded.
    pub requested: u64,
    /// The last ledger id read: the next page starts after it (None: the end was reached).
    pub next: Option<u64>,
}

/// A new candidate as discovery (or the window) found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Found {
    /// Seconds since its order was placed (0 without an order).
    pub(super) waited: i64,
    /// Its order is accepted or its invoice paid already (it qualifies): due at once.
    pub(super) paid: bool,
}

impl Found {
    /// From a discovery row's `waited` and `paid` columns.
    fn read(row: &sqlx::mysql::MySqlRow) -> Result<Found> {
        Ok(Found {
            waited: row.try_get::<Option<i64>, _>("waited")?.unwrap_or(0).max(0),
            paid: row.try_get::<Option<i64>, _>("paid")? == Some(1),
        })
    }

    /// The candidate row's `found_at` and `next_check_at` values.
    fn push_times(&self, b: &mut sqlx::query_builder::Separated<'_, MySql, &'static str>) {
        b.push("UTC_TIMESTAMP(6) - INTERVAL ")
            .push_bind_unseparated(self.waited)
            .push_unseparated(" SECOND");
        if self.paid {
            b.push("UTC_TIMESTAMP(6)");
        } else {
            b.push("UTC_TIMESTAMP(6) + INTERVAL FLOOR(LEAST(3600, ")
                .push_bind_unseparated(self.waited)
                .push_unseparated(" DIV 10) * RAND() * 1000000) MICROSECOND");
        }
    }
}

/// One candidate as the re-check sees it.
struct Candidate {
    /// The service, or the addon with its parent (as tblhostingaddons names it now).
    target: Target,
    waiting: bool,
    qualifies: bool,
    marked: bool,
}

/// Which of the two kinds of candidate (and mark) a statement is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Services: `mod_jetpack_adoption_candidates`, `mod_jetpack_adoption_marks`.
    Service,
    /// Addons: `mod_jetpack_adoption_addon_candidates`, `mod_jetpack_adoption_addon_marks`.
    Addon,
}

impl Kind {
    /// The candidates' table.
    pub(super) fn candidates(self) -> &'static str {
        match self {
            Kind::Service => "mod_jetpack_adoption_candidates",
            Kind::Addon => "mod_jetpack_adoption_addon_candidates",
        }
    }

    /// The candidates' (and marks') id column.
    pub(super) fn id_column(self) -> &'static str {
        match self {
            Kind::Service => "service_id",
            Kind::Addon => "addon_id",
        }
    }
}

impl Store {
    /// The ids of every `jetpack` product (tblproducts is small and has no index on its
    /// module; callers cache the answer).
    pub async fn adoption_products(&self) -> Result<Vec<u32>> {
        let query = sqlx::query_as("SELECT id FROM tblproducts WHERE servertype = ? ORDER BY id")
            .bind(MODULE_NAME)
            .fetch_all(&self.pool);
        let rows: Vec<(i32,)> = within(self.timeout, async { Ok(query.await?) }).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id,)| u32::try_from(id).ok())
            .collect())
    }

    /// The EXPLAIN of every statement of the scan that reads a WHMCS table, and of those
    /// adopting a page that read the worker's jobs and requests (`adopt …`), by name, with
    /// the current watermarks (for tests and the benchmark); the addon statements (named
    /// `addons …`) when WHMCS has module addons.
    pub async fn explain_adoption(
        &self,
        products: &[u32],
    ) -> Result<Vec<(&'static str, Vec<PlanStep>)>> {
        let marks = self.watermarks().await?;
        let mut out = Vec::new();
        let mut q =
            QueryBuilder::<MySql>::new("EXPLAIN SELECT id FROM tblproducts WHERE servertype = ");
        q.push_bind(MODULE_NAME);
        out.push(("products", plan(&mut q, &self.pool).await?));
        if !products.is_empty() {
            let mut q = discovery_query(products, &marks, 500, "EXPLAIN ");
            out.push(("discover", plan(&mut q, &self.pool).await?));
        }
        let recheck = RECHECK_SQL.replacen('?', "'jetpack'", 1);
        for (name, page) in [
            ("recheck due", DUE_PAGE.replacen('?', "25", 1)),
            ("recheck fresh", FRESH_PAGE.replacen('?', "5", 1)),
            (
                "recheck all",
                ALL_PAGE.replacen('?', "0", 1).replacen('?', "25", 1),
            ),
        ] {
            out.push((name, self.explain(&format!("{recheck}{page}")).await?));
        }
        out.push((
            "postpone",
            self.explain(&(POSTPONE_SQL.to_owned() + "1, 2, 3)"))
                .await?,
        ));
        out.push((
            "sweep",
            self.explain(
                &self
                    .sweep_sql()
                    .replacen('?', "0", 1)
                    .replacen('?', "50", 1),
            )
            .await?,
        ));
        out.extend(self.explain_adopting(Kind::Service).await?);
        if self.has_addons {
            out.extend(self.explain_addon_adoption().await?);
            out.extend(self.explain_adopting(Kind::Addon).await?);
        }
        out.extend(self.explain_window(products).await?);
        Ok(out)
    }

    /// The EXPLAIN of one statement given as SQL text (its values written in).
    pub(super) async fn explain(&self, sql: &str) -> Result<Vec<PlanStep>> {
        let mut q = QueryBuilder::<MySql>::new("EXPLAIN ");
        q.push(sql);
        plan(&mut q, &self.pool).await
    }

    /// The EXPLAIN of the addon statements of the scan (`addons …`).
    async fn explain_addon_adoption(&self) -> Result<Vec<(&'static str, Vec<PlanStep>)>> {
        let mut out = Vec::new();
        let after = self.addon_watermark().await?.to_string();
        let discover = ADDON_DISCOVERY_SQL
            .replacen('?', "'jetpack'", 3)
            .replacen('?', &after, 1)
            .replacen('?', "500", 1);
        out.push(("addons discover", self.explain(&discover).await?));
        let recheck = ADDON_RECHECK_SQL.replacen('?', "'jetpack'", 1);
        for (name, page) in [
            ("addons recheck due", DUE_PAGE.replacen('?', "25", 1)),
            ("addons recheck fresh", FRESH_PAGE.replacen('?', "5", 1)),
            (
                "addons recheck all",
                ADDON_ALL_PAGE.replacen('?', "0", 1).replacen('?', "25", 1),
            ),
        ] {
            out.push((name, self.explain(&format!("{recheck}{page}")).await?));
        }
        out.push((
            "addons postpone",
            self.explain(&(ADDON_POSTPONE_SQL.to_owned() + "1, 2, 3)"))
                .await?,
        ));
        Ok(out)
    }

    /// One discovery page: up to `page` services per product above its watermark, through
    /// the `packageid` index, and up to `page` tblhostingaddons rows above the addon
    /// watermark, by primary key; records the Pending ones (of `jetpack` products and addons)
    /// as candidates, then moves the watermarks (a crash in between only examines them again).
    pub async fn discover_candidates(&self, products: &[u32], page: u32) -> Result<Discovered> {
        within(self.timeout, async {
            let mut found = if products.is_empty() {
                Discovered::default()
            } else {
                self.discover(products, page).await?
            };
            if self.has_addons {
                let addons = self.discover_addons(page).await?;
                found.addons_examined = addons.addons_examined;
                found.addon_candidates = addons.addon_candidates;
                found.more |= addons.more;
            }
            Ok(found)
        })
        .await
    }

    async fn discover(&self, products: &[u32], page: u32) -> Result<Discovered> {
        let marks = self.watermarks().await?;
        let mut q = discovery_query(products, &marks, page, "");
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut top: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
        let mut pending = Vec::new();
        for row in &rows {
            let id = u32::try_from(row.try_get::<i32, _>("id")?).unwrap_or(0);
            let product = u32::try_from(row.try_get::<i32, _>("packageid")?).unwrap_or(0);
            let seen = top.entry(product).or_insert((0, 0));
            *seen = (seen.0.max(id), seen.1 + 1);
            if row.try_get::<Option<i64>, _>("pending")? == Some(1) {
                pending.push((ServiceId(id), Found::read(row)?));
            }
        }
        self.add_candidates(&pending).await?;
        self.move_watermarks(&top).await?;
        Ok(Discovered {
            examined: rows.len() as u64,
            candidates: pending.len() as u64,
            more: top.values().any(|(_, n)| *n >= page),
            ..Discovered::default()
        })
    }

    /// One page of tblhostingaddons above the addon watermark; the Pending addons of `jetpack`
    /// addons become candidates, then the watermark moves to the page's last row.
    async fn discover_addons(&self, page: u32) -> Result<Discovered> {
        let after = self.addon_watermark().await?;
        let rows = sqlx::query(ADDON_DISCOVERY_SQL)
            .bind(MODULE_NAME)
            .bind(MODULE_NAME)
            .bind(MODULE_NAME)
            .bind(after)
            .bind(page)
            .fetch_all(&self.pool)
            .await?;
        let mut last = after;
        let mut pending = Vec::new();
        for row in &rows {
            let id = row.try_get::<i32, _>("id")?.unsigned_abs();
            last = last.max(id);
            if row.try_get::<i64, _>("pending")? == 1 {
                let parent = ServiceId(row.try_get::<i32, _>("hostingid")?.unsigned_abs());
                pending.push((AddonId(id), parent, Found::read(row)?));
            }
        }
        self.add_addon_candidates(&pending).await?;
        if last > after {
            sqlx::query(
                "INSERT INTO mod_jetpack_adoption_addon_watermark (id, last_addon_id, updated_at)
                 VALUES (1, ?, UTC_TIMESTAMP(6))
                 ON DUPLICATE KEY UPDATE
                   last_addon_id = GREATEST(last_addon_id, VALUES(last_addon_id)),
                   updated_at = VALUES(updated_at)",
            )
            .bind(last)
            .execute(&self.pool)
            .await?;
        }
        Ok(Discovered {
            addons_examined: rows.len() as u64,
            addon_candidates: pending.len() as u64,
            more: rows.len() as u64 >= u64::from(page),
            ..Discovered::default()
        })
    }

    async fn watermarks(&self) -> Result<BTreeMap<u32, u32>> {
        let rows: Vec<(u32, u32)> = sqlx::query_as(
            "SELECT product_id, last_service_id FROM mod_jetpack_adoption_watermarks",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// The highest tblhostingaddons.id examined (0 before the first page).
    async fn addon_watermark(&self) -> Result<u32> {
        let row: Option<(u32,)> = sqlx::query_as(
            "SELECT last_addon_id FROM mod_jetpack_adoption_addon_watermark WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or(0, |(last,)| last))
    }

    /// New candidates, each as it was found: a paid order's is due at once; any other is
    /// first due at a random moment within a tenth of its order's age (at most an hour; at
    /// once for a fresh order), so a first scan over years of abandoned orders is spread out,
    /// not a burst; then re-checked after a tenth of their age.
    pub(super) async fn add_candidates(&self, services: &[(ServiceId, Found)]) -> Result<()> {
        if services.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT IGNORE INTO mod_jetpack_adoption_candidates (service_id, found_at, next_check_at) ",
        );
        q.push_values(services, |mut b, (s, found)| {
            b.push_bind(*s);
            found.push_times(&mut b);
        });
        q.build().execute(&self.pool).await?;
        Ok(())
    }

    /// New addon candidates (addon, parent, as found), due as [`Store::add_candidates`] makes
    /// them.
    pub(super) async fn add_addon_candidates(
        &self,
        addons: &[(AddonId, ServiceId, Found)],
    ) -> Result<()> {
        if addons.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT IGNORE INTO mod_jetpack_adoption_addon_candidates
               (addon_id, service_id, found_at, next_check_at) ",
        );
        q.push_values(addons, |mut b, (a, s, found)| {
            b.push_bind(*a).push_bind(*s);
            found.push_times(&mut b);
        });
        q.build().execute(&self.pool).await?;
        Ok(())
    }

    async fn move_watermarks(&self, top: &BTreeMap<u32, (u32, u32)>) -> Result<()> {
        if top.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO mod_jetpack_adoption_watermarks (product_id, last_service_id, updated_at) ",
        );
        q.push_values(top, |mut b, (product, (last, _))| {
            b.push_bind(*product)
                .push_bind(*last)
                .push("UTC_TIMESTAMP(6)");
        });
        q.push(
            " ON DUPLICATE KEY UPDATE
               last_service_id = GREATEST(last_service_id, VALUES(last_service_id)),
               updated_at = VALUES(updated_at)",
        );
        q.build().execute(&self.pool).await?;
        Ok(())
    }

    /// Re-checks a page of candidates (by primary key joins to their service or addon,
    /// product or addon definition, order and invoice): qualifying ones are marked and
    /// requested, those no longer waiting are dropped. `Due` and `Fresh` read up to `page`
    /// services and up to `page` addons; `After` up to `page` of the one kind its cursor is
    /// in (and, when the services end on a short page, the first page of addons).
    pub async fn recheck_candidates(&self, which: Recheck, page: u32) -> Result<Rechecked> {
        within(self.timeout, self.recheck(which, page)).await
    }

    async fn recheck(&self, which: Recheck, page: u32) -> Result<Rechecked> {
        let addons = self.has_addons;
        match which {
            Recheck::Due | Recheck::Fresh => {
                let mut out = self.recheck_page(Kind::Service, which, page).await?;
                if addons {
                    let more = self.recheck_page(Kind::Addon, which, page).await?;
                    out.add(&more);
                    out.next = out.next.or(more.next);
                }
                Ok(out)
            }
            Recheck::After(RecheckCursor::Service(_)) => {
                let mut out = self.recheck_page(Kind::Service, which, page).await?;
                if out.next.is_none() && addons {
                    let from = Recheck::After(RecheckCursor::Addon(AddonId(0)));
                    let more = self.recheck_page(Kind::Addon, from, page).await?;
                    out.add(&more);
                    out.next = more.next;
                }
                Ok(out)
            }
            Recheck::After(RecheckCursor::Addon(_)) if addons => {
                self.recheck_page(Kind::Addon, which, page).await
            }
            Recheck::After(RecheckCursor::Addon(_)) => Ok(Rechecked::default()),
        }
    }

    /// The candidates of one kind a re-check reads.
    async fn recheck_rows(
        &self,
        kind: Kind,
        which: Recheck,
        page: u32,
    ) -> Result<Vec<sqlx::mysql::MySqlRow>> {
        let select = match kind {
            Kind::Service => RECHECK_SQL,
            Kind::Addon => ADDON_RECHECK_SQL,
        };
        let (condition, after) = match (kind, which) {
            (_, Recheck::Due) => (DUE_PAGE, None),
            (_, Recheck::Fresh) => (FRESH_PAGE, None),
            (Kind::Service, Recheck::After(cursor)) => (
                ALL_PAGE,
                Some(match cursor {
                    RecheckCursor::Service(s) => s.0,
                    RecheckCursor::Addon(_) => u32::MAX,
                }),
            ),
            (Kind::Addon, Recheck::After(cursor)) => (
                ADDON_ALL_PAGE,
                Some(match cursor {
                    RecheckCursor::Service(_) => 0,
                    RecheckCursor::Addon(a) => a.0,
                }),
            ),
        };
        let sql = format!("{select}{condition}");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(MODULE_NAME);
        if let Some(after) = after {
            q = q.bind(after);
        }
        Ok(q.bind(page).fetch_all(&self.pool).await?)
    }

    /// Re-checks one page of one kind of candidate; `next` names where the next page of
    /// that kind starts (None: the page was not full).
    async fn recheck_page(&self, kind: Kind, which: Recheck, page: u32) -> Result<Rechecked> {
        let rows = self.recheck_rows(kind, which, page).await?;
        let candidates = rows
            .iter()
            .map(|row| candidate(kind, row))
            .collect::<Result<Vec<_>>>()?;
        let full = candidates.len() as u64 >= u64::from(page);
        let mut out = Rechecked {
            examined: candidates.len() as u64,
            next: candidates.last().filter(|_| full).map(|c| match c.target {
                Target::Service(s) => RecheckCursor::Service(s),
                Target::Addon { addon, .. } => RecheckCursor::Addon(addon),
            }),
            ..Rechecked::default()
        };
        let (mut adopt, mut drop, mut later) = (Vec::new(), Vec::new(), Vec::new());
        for c in &candidates {
            if !c.waiting || c.marked {
                drop.push(c.target.entity_id());
            } else if c.qualifies {
                adopt.push(c.target);
            } else {
                later.push(c.target.entity_id());
            }
        }
        let adopted = self.adopt_candidates(kind, &adopt, &drop).await?;
        out.adopted = adopted.requested;
        out.already = adopted.already;
        if kind == Kind::Addon {
            out.adopted_addons = out.adopted;
        }
        out.dropped = drop.len() as u64;
        self.postpone_candidates(kind, &later).await?;
        Ok(out)
    }

    /// Candidates still waiting (service or addon ids): due again after a tenth of their age
    /// (at most an hour).
    async fn postpone_candidates(&self, kind: Kind, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<MySql>::new(match kind {
            Kind::Service => POSTPONE_SQL,
            Kind::Addon => ADDON_POSTPONE_SQL,
        });
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&self.pool).await?;
        Ok(())
    }

    /// One page of the deleted-service sweep: up to `page` ledger rows after ledger id
    /// `after`, each joined by primary key to tblhosting (an addon's to tblhostingaddons); a
    /// service or addon whose row is gone gets one terminate request, ever (marked like
    /// adoption).
    pub async fn sweep_deleted(&self, after: u64, page: u32) -> Result<Swept> {
        within(self.timeout, self.sweep(after, page)).await
    }

    /// The sweep's statement for this WHMCS: with its addons when it has module addons.
    fn sweep_sql(&self) -> &'static str {
        if self.has_addons {
            SWEEP_WITH_ADDONS_SQL
        } else {
            SWEEP_SQL
        }
    }

    async fn sweep(&self, after: u64, page: u32) -> Result<Swept> {
        let rows: Vec<(u64, u32, u32, i64)> = sqlx::query_as(self.sweep_sql())
            .bind(after)
            .bind(page)
            .fetch_all(&self.pool)
            .await?;
        let gone: BTreeSet<Target> = rows
            .iter()
            .filter(|(_, _, _, gone)| *gone == 1)
            .map(|(_, s, a, _)| Target::from_ids(*s, *a))
            .collect();
        let mut out = Swept {
            examined: rows.len() as u64,
            next: (rows.len() as u64 >= u64::from(page))
                .then(|| rows.last().map(|(id, ..)| *id))
                .flatten(),
            ..Swept::default()
        };
        for target in gone {
            if self.terminate_gone(target).await? {
                out.requested += 1;
            }
        }
        Ok(out)
    }
}

/// One row of a re-check page ([`RECHECK_SQL`] or [`ADDON_RECHECK_SQL`]) as a candidate.
fn candidate(kind: Kind, row: &sqlx::mysql::MySqlRow) -> Result<Candidate> {
    let target = match kind {
        Kind::Service => Target::Service(row.try_get("service_id")?),
        Kind::Addon => {
            let found: ServiceId = row.try_get("service_id")?;
            let parent: Option<i32> = row.try_get("hostingid")?;
            Target::Addon {
                addon: row.try_get("addon_id")?,
                service: parent.map_or(found, |p| ServiceId(p.unsigned_abs())),
            }
        }
    };
    Ok(Candidate {
        target,
        waiting: row.try_get::<i64, _>("waiting")? == 1,
        qualifies: row.try_get::<i64, _>("qualifies")? == 1,
        marked: row.try_get::<i64, _>("marked")? == 1,
    })
}

/// The start of one product's discovery part ([`discovery_query`] binds the product, its
/// watermark and the page after it).
const DISCOVERY_PART: &str = concat!(
    "(SELECT id, packageid, domainstatus = 'Pending' AS pending,
             IF(domainstatus = 'Pending',
                (SELECT TIMESTAMPDIFF(SECOND, o.date, NOW()) FROM tblorders o
                 WHERE o.id = tblhosting.orderid), NULL) AS waited,
             IF(domainstatus = 'Pending',
                (SELECT ",
    service_qualifies!(),
    " FROM tblproducts p JOIN tblorders o ON o.id = tblhosting.orderid
                 LEFT JOIN tblinvoices i ON i.id = o.invoiceid AND o.invoiceid <> 0
                 WHERE p.id = tblhosting.packageid), NULL) AS paid
      FROM tblhosting FORCE INDEX (productid) WHERE packageid = "
);

/// Per product, its services above its watermark through the `packageid` index (`productid`
/// in every WHMCS layout). The index is forced: with `ORDER BY id LIMIT` the optimizer may
/// otherwise pick a primary-key range from the watermark, which reads every later service of
/// every product.
fn discovery_query(
    products: &[u32],
    marks: &BTreeMap<u32, u32>,
    page: u32,
    prefix: &str,
) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::<MySql>::new(prefix);
    for (n, p) in products.iter().enumerate() {
        if n > 0 {
            q.push(" UNION ALL ");
        }
        // How long a Pending service has waited (since its order, by the server's clock, as
        // WHMCS writes it) and whether it qualifies already: its product, order and invoice
        // read by primary key, for the Pending rows only.
        q.push(DISCOVERY_PART);
        q.push_bind(*p);
        q.push(" AND id > ");
        q.push_bind(marks.get(p).copied().unwrap_or(0));
        q.push(" ORDER BY id LIMIT ");
        q.push_bind(page);
        q.push(")");
    }
    q
}

/// The EXPLAIN of a statement as (table, type, key) lines.
pub(super) async fn plan(
    q: &mut QueryBuilder<MySql>,
    pool: &sqlx::MySqlPool,
) -> Result<Vec<PlanStep>> {
    let rows = q.build().fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(PlanStep {
                table: row
                    .try_get::<Option<String>, _>("table")?
                    .unwrap_or_default(),
                access: row
                    .try_get::<Option<String>, _>("type")?
                    .unwrap_or_default(),
                key: row.try_get("key")?,
            })
        })
        .collect()
}
