//! Reads from the WHMCS tables: one service with its product (and the row decoding the claim
//! shares, `src/store/claim.rs`), the activity-log layout (7.8 vs 8.x), and what the doctor
//! inspects (tables, `jetpack` products and their
//! custom field definitions). Only the columns needed are selected, so WHMCS's zero dates are
//! never decoded.

use std::collections::HashMap;
use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlRow};
use sqlx::{Connection, MySql, QueryBuilder, Row};

use super::{Result, Store};
use crate::doctor::{FieldSetup, ProductSetup};
use crate::domain::ServiceId;
use crate::order::{FieldRow, MODULE_NAME, ProductRow, ServiceRow};

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

impl Store {
    /// Whether WHMCS 8's activity-log columns are written.
    pub fn activity_has_user_columns(&self) -> bool {
        self.activity_has_user_columns
    }

    /// The service and its product (None when the service does not exist).
    pub async fn load_service(&self, service: ServiceId) -> Result<Option<ServiceRow>> {
        let row = sqlx::query(
            "SELECT h.id AS hid, h.userid, h.packageid, CAST(h.domainstatus AS CHAR) AS status,
                    p.id AS pid, p.name, p.servertype, p.configoption1, p.configoption2
             FROM tblhosting h LEFT JOIN tblproducts p ON p.id = h.packageid
             WHERE h.id = ?",
        )
        .bind(service)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => service_row(&row, service),
            None => Ok(None),
        }
    }

    /// Service ids with the product and status, for the demo and tests.
    pub async fn service_status(&self, service: ServiceId) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT CAST(domainstatus AS CHAR) AS s FROM tblhosting WHERE id = ?")
                .bind(service)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| r.try_get("s")).transpose().map_err(Into::into)
    }
}

/// The doctor's reads: reachability, table names, `jetpack` products and their custom fields.
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

    /// Every product whose module is `jetpack`, by id.
    pub async fn jetpack_products(&self) -> Result<Vec<ProductSetup>> {
        let rows = sqlx::query(
            "SELECT id, name, configoption1, configoption2 FROM tblproducts
             WHERE servertype = ? ORDER BY id",
        )
        .bind(MODULE_NAME)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: i32 = row.try_get("id")?;
                let secret: String = row.try_get("configoption2")?;
                Ok(ProductSetup {
                    id: u32::try_from(id).unwrap_or(0),
                    name: row.try_get("name")?,
                    client_id: row.try_get("configoption1")?,
                    client_secret: secret.into(),
                })
            })
            .collect()
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
        rows.iter()
            .map(|row| {
                let relid: i32 = row.try_get("relid")?;
                Ok(FieldSetup {
                    product_id: u32::try_from(relid).unwrap_or(0),
                    name: row.try_get("fieldname")?,
                    field_type: row.try_get("fieldtype")?,
                    options: row.try_get("fieldoptions")?,
                })
            })
            .collect()
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
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT id, name, servertype, configoption1, configoption2 FROM tblproducts WHERE id IN (",
    );
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
    for row in q.build().fetch_all(&mut *conn).await? {
        let id: i32 = row.try_get("id")?;
        out.insert(
            u32::try_from(id).unwrap_or(0),
            ProductRow {
                name: row.try_get("name")?,
                server_type: row.try_get("servertype")?,
                partner_client_id: row.try_get("configoption1")?,
                partner_client_secret: row.try_get("configoption2")?,
            },
        );
    }
    Ok(out)
}

/// The service and product columns of a row selected with the aliases of `load_service`
/// (`hid`, `userid`, `packageid`, `status`, `pid`, `name`, `servertype`, `configoption1/2`);
/// None when `hid` is NULL (the service does not exist).
pub(super) fn service_row(row: &MySqlRow, service: ServiceId) -> Result<Option<ServiceRow>> {
    let hid: Option<i32> = row.try_get("hid")?;
    if hid.is_none() {
        return Ok(None);
    }
    let pid: Option<i32> = row.try_get("pid")?;
    let product = match pid {
        Some(_) => Some(ProductRow {
            name: row.try_get("name")?,
            server_type: row.try_get("servertype")?,
            partner_client_id: row.try_get("configoption1")?,
            partner_client_secret: row.try_get("configoption2")?,
        }),
        None => None,
    };
    let client_id: Option<i32> = row.try_get("userid")?;
    let product_id: Option<i32> = row.try_get("packageid")?;
    Ok(Some(ServiceRow {
        service_id: service,
        client_id: client_id.and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
        product_id: product_id.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        status: row
            .try_get::<Option<String>, _>("status")?
            .unwrap_or_default(),
        product,
    }))
}

/// One custom field with one of the service's value rows (`field_id`, `fieldname`,
/// `value_id`, `value`); None when the row has no field (a product without custom fields).
pub(super) fn field_row(row: &MySqlRow) -> Result<Option<FieldRow>> {
    let field_id: Option<i32> = row.try_get("field_id")?;
    let Some(field_id) = field_id else {
        return Ok(None);
    };
    Ok(Some(FieldRow {
        field_id: u32::try_from(field_id).unwrap_or(0),
        field_name: row.try_get("fieldname")?,
        value_id: row.try_get("value_id")?,
        value: row.try_get("value")?,
    }))
}
