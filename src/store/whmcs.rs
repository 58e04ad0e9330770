//! Reads from the WHMCS tables: the layout this WHMCS has (the activity log's columns, 7.8
//! vs 8.x; whether it has module addons, 7.2+), one service with its product, the addons and
//! products the claim reads by id, and what the doctor inspects (tables, `jetpack` products
//! and addons with their module settings and custom field definitions). The rows are
//! decoded into the types of `rows`; only the columns needed are selected, so WHMCS's zero
//! dates are never decoded.

use std::collections::HashMap;
use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlRow};
use sqlx::{Connection, MySql, QueryBuilder, Row};

use super::rows::{
    addon_settings, field_row, field_setup, product_columns, product_row, product_setup,
    service_row,
};
use super::{FieldRow, FieldSetup, ProductRow, ProductSetup, Result, ServiceRow, Store};
use crate::domain::{AddonId, ServiceId, Target};
use crate::rules::MODULE_NAME;

/// True when `tblactivitylog` has WHMCS 8's `user_id` and `admin_id` columns.
pub(super) async fn activity_has_user_columns(pool: &MySqlPool) -> Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tblactivitylog'
           AND COLUMN_NAME IN ('user_id', 'admin_id')",
    )
    .fetch_one(pool)
    .await?;
    Ok(n == 2)
}

/// The columns addons are read by (docs/addons.md): WHMCS 7.2+ has them all; an older WHMCS
/// has no addon modules, and the worker then never reads these tables.
const ADDON_COLUMNS: [(&str, &str); 7] = [
    ("tblhostingaddons", "hostingid"),
    ("tblhostingaddons", "addonid"),
    ("tblhostingaddons", "orderid"),
    ("tblhostingaddons", "status"),
    ("tbladdons", "module"),
    ("tbladdons", "autoactivate"),
    ("tblmodule_configuration", "entity_type"),
];

/// True when WHMCS has module addons: [`ADDON_COLUMNS`] all exist.
pub(super) async fn has_addons(pool: &MySqlPool) -> Result<bool> {
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT COUNT(*) FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND (TABLE_NAME, COLUMN_NAME) IN (",
    );
    let mut list = q.separated(", ");
    for (table, column) in ADDON_COLUMNS {
        list.push("(")
            .push_bind_unseparated(table)
            .push_unseparated(", ")
            .push_bind_unseparated(column)
            .push_unseparated(")");
    }
    q.push(")");
    let (n,): (i64,) = q.build_query_as().fetch_one(pool).await?;
    Ok(n == ADDON_COLUMNS.len() as i64)
}

impl Store {
    /// Whether WHMCS 8's activity-log columns are written.
    pub fn activity_has_user_columns(&self) -> bool {
        self.activity_has_user_columns
    }

    /// Whether WHMCS has module addons (tblhostingaddons, tbladdons.module and
    /// tblmodule_configuration, WHMCS 7.2+): without them the adoption scan and the doctor
    /// leave addons out.
    pub fn has_addons(&self) -> bool {
        self.has_addons
    }

    /// The service and its product (None when the service does not exist).
    pub async fn load_service(&self, service: ServiceId) -> Result<Option<ServiceRow>> {
        let row = sqlx::query(concat!(
            "SELECT h.id AS hid, h.userid, h.packageid, CAST(h.domainstatus AS CHAR) AS status,
                    p.id AS pid, ",
            product_columns!(),
            " FROM tblhosting h LEFT JOIN tblproducts p ON p.id = h.packageid
             WHERE h.id = ?"
        ))
        .bind(service)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => service_row(&row, Target::Service(service)),
            None => Ok(None),
        }
    }
}

/// The doctor's reads: reachability, table names, `jetpack` products and addons and their
/// custom fields.
impl Store {
    /// Connects once, without the pool's retries, and returns `VERSION()`: the doctor's way to
    /// learn quickly and precisely why a database cannot be reached.
    pub async fn probe(url: &str) -> Result<String> {
        let options = MySqlConnectOptions::from_str(url)?;
        let mut conn = MySqlConnection::connect_with(&options).await?;
        let (version,): (String,) = sqlx::query_as("SELECT VERSION()")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        Ok(version)
    }

    /// WHMCS's hook cache, `tblconfiguration.ModuleHooks` (a comma list of the modules whose
    /// `hooks.php` it loads); None when the setting is absent.
    pub async fn module_hooks(&self) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT CAST(value AS CHAR) FROM tblconfiguration WHERE setting = 'ModuleHooks'
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(v,)| v.unwrap_or_default()))
    }

    /// The names of the tables in the current database.
    pub async fn table_names(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = DATABASE()",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Every product whose module is `jetpack`, by id, with the module settings the doctor
    /// checks and its setup option (`autosetup`).
    pub async fn jetpack_products(&self) -> Result<Vec<ProductSetup>> {
        let rows = sqlx::query(
            "SELECT id, name, configoption1, configoption2, configoption3, configoption6,
                    configoption7, configoption8, configoption9, configoption10, configoption11,
                    configoption12, autosetup
             FROM tblproducts WHERE servertype = ? ORDER BY id",
        )
        .bind(MODULE_NAME)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(product_setup).collect()
    }

    /// The custom field definitions of every `jetpack` product.
    pub async fn jetpack_fields(&self) -> Result<Vec<FieldSetup>> {
        let rows = sqlx::query(
            "SELECT f.relid, f.fieldname, f.fieldtype, f.fieldoptions
             FROM tblcustomfields f JOIN tblproducts p ON p.id = f.relid
             WHERE f.type = 'product' AND p.servertype = ?
             ORDER BY f.relid, f.id",
        )
        .bind(MODULE_NAME)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(field_setup).collect()
    }

    /// Every addon whose module is `jetpack` (tbladdons), by id, with its module settings
    /// (tblmodule_configuration by its unique key; a missing row reads as empty) and its setup
    /// option (`autoactivate`). Empty when
    /// WHMCS has no module addons ([`Store::has_addons`]).
    pub async fn jetpack_addons(&self) -> Result<Vec<ProductSetup>> {
        if !self.has_addons {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(concat!(
            "SELECT d.id, d.name, d.autoactivate AS autosetup, m8.value AS configoption8, ",
            addon_settings!(columns),
            " FROM tbladdons d",
            addon_settings!(joins),
            " LEFT JOIN tblmodule_configuration m8 ON m8.entity_type = 'addon'
                 AND m8.entity_id = d.id AND m8.setting_name = 'configoption8'
             WHERE d.module = ? ORDER BY d.id"
        ))
        .bind(MODULE_NAME)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(product_setup).collect()
    }

    /// The custom field definitions (type 'addon') of every `jetpack` addon; `product_id` is
    /// the tbladdons.id. Empty when WHMCS has no module addons.
    pub async fn jetpack_addon_fields(&self) -> Result<Vec<FieldSetup>> {
        if !self.has_addons {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT f.relid, f.fieldname, f.fieldtype, f.fieldoptions
             FROM tblcustomfields f JOIN tbladdons d ON d.id = f.relid
             WHERE f.type = 'addon' AND d.module = ?
             ORDER BY f.relid, f.id",
        )
        .bind(MODULE_NAME)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(field_setup).collect()
    }
}

/// The products with these ids (tblproducts by primary key), for terminates of services whose
/// tblhosting row is gone: their ledger names the product.
pub(super) async fn products_by_id(
    conn: &mut MySqlConnection,
    ids: &[u32],
) -> Result<HashMap<u32, ProductRow>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = QueryBuilder::<MySql>::new(concat!(
        "SELECT p.id, ",
        product_columns!(),
        " FROM tblproducts p WHERE p.id IN ("
    ));
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
    for row in q.build().fetch_all(&mut *conn).await? {
        let id: i32 = row.try_get("id")?;
        out.insert(u32::try_from(id).unwrap_or(0), product_row(&row)?);
    }
    Ok(out)
}

/// The addons with these ids (tblhostingaddons by primary key), each with its catalogue row
/// (tbladdons), its module settings (tblmodule_configuration by its unique key), its parent
/// service's domain, and its custom fields (type 'addon') with its own value rows. One row
/// per (addon, field, value row), grouped here; an addon whose row is gone is absent.
pub(super) async fn addons_by_id(
    conn: &mut MySqlConnection,
    ids: &[AddonId],
) -> Result<HashMap<AddonId, (ServiceRow, Vec<FieldRow>)>> {
    let mut out: HashMap<AddonId, (ServiceRow, Vec<FieldRow>)> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = QueryBuilder::<MySql>::new(ADDON_SQL);
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id.0);
    }
    q.push(")");
    for row in q.build().fetch_all(&mut *conn).await? {
        let id = AddonId(row.try_get::<i32, _>("aid")?.unsigned_abs());
        let entry = match out.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((addon_row(&row, id)?, Vec::new()))
            }
        };
        if let Some(field) = field_row(&row)? {
            entry.1.push(field);
        }
    }
    for (_, fields) in out.values_mut() {
        fields.sort_by_key(|f| (f.field_id, f.value_id));
    }
    Ok(out)
}

/// The columns of [`addons_by_id`], up to its list of ids.
const ADDON_SQL: &str = concat!(
    "SELECT a.id AS aid, a.hostingid, a.addonid, a.userid,
            CAST(a.status AS CHAR) AS status, d.id AS did, d.name, d.module AS servertype, ",
    addon_settings!(columns),
    ", h.id AS hid, h.domain, f.id AS field_id, f.fieldname, v.id AS value_id, v.value
     FROM tblhostingaddons a
     LEFT JOIN tbladdons d ON d.id = a.addonid",
    addon_settings!(joins),
    "LEFT JOIN tblhosting h ON h.id = a.hostingid
     LEFT JOIN tblcustomfields f ON f.type = 'addon' AND f.relid = a.addonid
     LEFT JOIN tblcustomfieldsvalues v ON v.fieldid = f.id AND v.relid = a.id
     WHERE a.id IN ("
);

/// One addon's columns of an [`ADDON_SQL`] row.
fn addon_row(row: &MySqlRow, addon: AddonId) -> Result<ServiceRow> {
    let did: Option<i32> = row.try_get("did")?;
    let product = match did {
        Some(_) => Some(product_row(row)?),
        None => None,
    };
    let parent: i32 = row.try_get("hostingid")?;
    let hid: Option<i32> = row.try_get("hid")?;
    let domain: Option<String> = row.try_get("domain")?;
    let client_id: i32 = row.try_get("userid")?;
    let def_id: i32 = row.try_get("addonid")?;
    Ok(ServiceRow {
        target: Target::Addon {
            addon,
            service: ServiceId(parent.unsigned_abs()),
        },
        client_id: client_id.unsigned_abs(),
        product_id: def_id.unsigned_abs(),
        status: row
            .try_get::<Option<String>, _>("status")?
            .unwrap_or_default(),
        product,
        parent_domain: hid.map(|_| domain.unwrap_or_default()),
    })
}

/// The addon catalogue rows with these ids (tbladdons by primary key) with their module
/// settings, for terminates of addons whose tblhostingaddons row is gone: their ledger names
/// the addon.
pub(super) async fn addon_defs_by_id(
    conn: &mut MySqlConnection,
    ids: &[u32],
) -> Result<HashMap<u32, ProductRow>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = QueryBuilder::<MySql>::new(concat!(
        "SELECT d.id, d.name, d.module AS servertype, ",
        addon_settings!(columns),
        " FROM tbladdons d",
        addon_settings!(joins),
        "WHERE d.id IN ("
    ));
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
    for row in q.build().fetch_all(&mut *conn).await? {
        let id: i32 = row.try_get("id")?;
        out.insert(id.unsigned_abs(), product_row(&row)?);
    }
    Ok(out)
}

impl Store {
    /// The EXPLAIN of the claim's read of addon jobs' rows (`addons_by_id`): every WHMCS
    /// table is read by key (checked by the tests).
    pub async fn explain_addon_read(&self, ids: &[AddonId]) -> Result<Vec<super::PlanStep>> {
        let mut q = QueryBuilder::<MySql>::new("EXPLAIN ");
        q.push(ADDON_SQL);
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        q.push(")");
        super::explain::plan(&mut q, &self.pool).await
    }

    /// The parent service of an addon (`tblhostingaddons.hostingid`, by primary key); None
    /// when the addon does not exist.
    pub async fn addon_parent(&self, addon: AddonId) -> Result<Option<ServiceId>> {
        let row: Option<(i32,)> =
            sqlx::query_as("SELECT hostingid FROM tblhostingaddons WHERE id = ?")
                .bind(addon)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(h,)| ServiceId(h.unsigned_abs())))
    }
}
