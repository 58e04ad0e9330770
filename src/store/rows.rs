//! The rows the store reads from WHMCS's tables and hands out, and how each is decoded from
//! its columns: a service (or addon) with its product and custom fields, for the claim and
//! `order`, which interprets them; and the product and field definitions the doctor checks.
//! Only the columns needed are selected, so WHMCS's zero dates are never decoded; NULL
//! settings read as empty.

use secrecy::SecretString;
use sqlx::Row;
use sqlx::mysql::MySqlRow;

use super::Result;
use crate::domain::Target;

/// `tblhosting` joined with its `tblproducts` row (if the product still exists), or
/// `tblhostingaddons` joined with its `tbladdons` row, module settings and parent service.
#[derive(Clone, Debug)]
pub struct ServiceRow {
    /// The service or addon.
    pub target: Target,
    /// tblhosting.userid / tblhostingaddons.userid (the WHMCS client).
    pub client_id: u32,
    /// tblhosting.packageid, or tblhostingaddons.addonid (the tbladdons.id) for an addon.
    pub product_id: u32,
    /// tblhosting.domainstatus / tblhostingaddons.status
    pub status: String,
    /// The product (or the addon's catalogue row with its module settings), when it exists.
    pub product: Option<ProductRow>,
    /// For an addon: its parent service's `tblhosting.domain`, None when that service is gone.
    pub parent_domain: Option<String>,
}

/// The product's (or addon's) name, module and module settings.
#[derive(Clone, Default)]
pub struct ProductRow {
    /// tblproducts.name / tbladdons.name
    pub name: String,
    /// tblproducts.servertype / tbladdons.module
    pub server_type: String,
    /// configoption1: partner client id.
    pub partner_client_id: String,
    /// configoption2: partner client secret.
    pub partner_client_secret: String,
    /// configoption3: the plan, when the product names it as a module setting.
    pub plan_setting: String,
    /// configoption6: the Local User when the order's Local User field is missing or empty.
    pub default_local_user: String,
    /// configoption7: what a WHMCS suspend does to the plan (`order::OnSuspend` reads it).
    pub suspend_setting: String,
    /// configoption9: which Jetpack API it sells through (`catalogue::Api::parse` reads it).
    pub api_setting: String,
    /// configoption10: the Licensing API token (licence products); never printed.
    pub licence_token: String,
    /// configoption11: the licence product slug (licence products).
    pub licence_product: String,
    /// configoption12: *Attach to the site* (`on` attaches; licence products).
    pub licence_attach: String,
}

impl ProductRow {
    /// Which Jetpack API the product sells through.
    pub fn api(&self) -> crate::catalogue::Api {
        crate::catalogue::Api::parse(&self.api_setting)
    }
}

impl std::fmt::Debug for ProductRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductRow")
            .field("name", &self.name)
            .field("server_type", &self.server_type)
            .finish_non_exhaustive()
    }
}

/// One product custom field and (if any) one of this service's value rows for it.
#[derive(Clone, Debug)]
pub struct FieldRow {
    /// tblcustomfields.id
    pub field_id: u32,
    /// tblcustomfields.fieldname (may be `key|Friendly Name`).
    pub field_name: String,
    /// tblcustomfieldsvalues.id for this service, if a value row exists.
    pub value_id: Option<u32>,
    /// tblcustomfieldsvalues.value
    pub value: Option<String>,
}

/// Where this service's `jetpack_provisioning_details` lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetailsField {
    /// tblcustomfields.id of the product's field.
    pub field_id: u32,
    /// The lowest tblcustomfieldsvalues.id for this service, or None to insert one.
    pub value_id: Option<u32>,
}

/// A `jetpack` product (`tblproducts`) or addon (`tbladdons`, its module settings from
/// `tblmodule_configuration`) as the doctor sees it. Its `Debug` hides the secret.
#[derive(Clone, Debug)]
pub struct ProductSetup {
    /// tblproducts.id / tbladdons.id
    pub id: u32,
    /// tblproducts.name / tbladdons.name
    pub name: String,
    /// configoption1: partner client id.
    pub client_id: String,
    /// configoption2: partner client secret; never printed.
    pub client_secret: SecretString,
    /// configoption3: the module setting Plan (empty: the Plan custom field names the plan).
    pub plan_setting: String,
    /// configoption6: the module setting Default Local User.
    pub default_local_user: String,
    /// configoption7: the module setting When WHMCS suspends the service.
    pub suspend_setting: String,
    /// configoption8: the module setting When to provision a manual-setup order
    /// (`manual_setup::ManualSetup` reads it).
    pub manual_setup: String,
    /// tblproducts.autosetup / tbladdons.autoactivate: when WHMCS sets it up itself (empty: "Do
    /// not automatically setup", so the setting above applies).
    pub autosetup: String,
    /// configoption9: the module setting Jetpack API (`plan` or `licence`).
    pub api_setting: String,
    /// configoption10: the Licensing API token; never printed.
    pub licence_token: SecretString,
    /// configoption11: the licence product slug.
    pub licence_product: String,
    /// configoption12: Attach to the site.
    pub licence_attach: String,
}

/// A product's or addon's custom field definition (`tblcustomfields`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSetup {
    /// tblcustomfields.relid: the product (type 'product') or addon (type 'addon').
    pub product_id: u32,
    /// tblcustomfields.fieldname (may be `key|Friendly Name`).
    pub name: String,
    /// tblcustomfields.fieldtype (`text`, `dropdown`, `password`, …).
    pub field_type: String,
    /// tblcustomfields.fieldoptions: a drop-down's comma-separated `value|Label` options.
    pub options: String,
}

/// The columns of a product (`tblproducts p`) that [`product_row`] decodes: one list for every
/// read of a product, so a module setting added here is read everywhere.
macro_rules! product_columns {
    () => {
        "p.name, p.servertype, p.configoption1, p.configoption2, p.configoption3,
         p.configoption6, p.configoption7, p.configoption9, p.configoption10, p.configoption11,
         p.configoption12"
    };
}
pub(super) use product_columns;

/// The module settings of the addon aliased `d` (tbladdons) that the worker reads, as the
/// columns `product_row` decodes: one join per setting, by tblmodule_configuration's unique key
/// (a missing row reads as NULL, then empty).
macro_rules! addon_settings {
    (columns) => {
        "m1.value AS configoption1, m2.value AS configoption2, m3.value AS configoption3,
         m6.value AS configoption6, m7.value AS configoption7, m9.value AS configoption9,
         m10.value AS configoption10, m11.value AS configoption11, m12.value AS configoption12"
    };
    (joins) => {
        " LEFT JOIN tblmodule_configuration m1 ON m1.entity_type = 'addon' AND m1.entity_id = d.id
              AND m1.setting_name = 'configoption1'
          LEFT JOIN tblmodule_configuration m2 ON m2.entity_type = 'addon' AND m2.entity_id = d.id
              AND m2.setting_name = 'configoption2'
          LEFT JOIN tblmodule_configuration m3 ON m3.entity_type = 'addon' AND m3.entity_id = d.id
              AND m3.setting_name = 'configoption3'
          LEFT JOIN tblmodule_configuration m6 ON m6.entity_type = 'addon' AND m6.entity_id = d.id
              AND m6.setting_name = 'configoption6'
          LEFT JOIN tblmodule_configuration m7 ON m7.entity_type = 'addon' AND m7.entity_id = d.id
              AND m7.setting_name = 'configoption7'
          LEFT JOIN tblmodule_configuration m9 ON m9.entity_type = 'addon' AND m9.entity_id = d.id
              AND m9.setting_name = 'configoption9'
          LEFT JOIN tblmodule_configuration m10 ON m10.entity_type = 'addon' AND m10.entity_id = d.id
              AND m10.setting_name = 'configoption10'
          LEFT JOIN tblmodule_configuration m11 ON m11.entity_type = 'addon' AND m11.entity_id = d.id
              AND m11.setting_name = 'configoption11'
          LEFT JOIN tblmodule_configuration m12 ON m12.entity_type = 'addon' AND m12.entity_id = d.id
              AND m12.setting_name = 'configoption12' "
    };
}
pub(super) use addon_settings;

/// The name, module and module settings of a product (or addon) row selected as `name`,
/// `servertype`, `configoption1`, `configoption2`, `configoption3`, `configoption6`, `configoption7`,
/// `configoption9` to `configoption12` (NULL
/// settings, an addon's missing tblmodule_configuration rows, read as empty).
pub(super) fn product_row(row: &MySqlRow) -> Result<ProductRow> {
    let setting = |name: &str| -> Result<String> {
        Ok(row.try_get::<Option<String>, _>(name)?.unwrap_or_default())
    };
    Ok(ProductRow {
        name: setting("name")?,
        server_type: setting("servertype")?,
        partner_client_id: setting("configoption1")?,
        partner_client_secret: setting("configoption2")?,
        plan_setting: setting("configoption3")?,
        default_local_user: setting("configoption6")?,
        suspend_setting: setting("configoption7")?,
        api_setting: setting("configoption9")?,
        licence_token: setting("configoption10")?,
        licence_product: setting("configoption11")?,
        licence_attach: setting("configoption12")?,
    })
}

/// The service and product columns of a row selected with the aliases of `load_service`
/// (`hid`, `userid`, `packageid`, `status`, `pid`, and those of [`product_row`]); None when
/// `hid` is NULL (the service does not exist).
pub(super) fn service_row(row: &MySqlRow, target: Target) -> Result<Option<ServiceRow>> {
    let hid: Option<i32> = row.try_get("hid")?;
    if hid.is_none() {
        return Ok(None);
    }
    let pid: Option<i32> = row.try_get("pid")?;
    let product = match pid {
        Some(_) => Some(product_row(row)?),
        None => None,
    };
    let client_id: Option<i32> = row.try_get("userid")?;
    let product_id: Option<i32> = row.try_get("packageid")?;
    Ok(Some(ServiceRow {
        target,
        client_id: client_id.and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
        product_id: product_id.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        status: row
            .try_get::<Option<String>, _>("status")?
            .unwrap_or_default(),
        product,
        parent_domain: None,
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

/// A product or addon row of the doctor's reads (`id`, `name`, `configoption1`, `2`, `3`, `6`,
/// `7`, `8`, `autosetup`; NULL reads as empty).
pub(super) fn product_setup(row: &MySqlRow) -> Result<ProductSetup> {
    let setting = |name: &str| -> Result<String> {
        Ok(row.try_get::<Option<String>, _>(name)?.unwrap_or_default())
    };
    let id: i32 = row.try_get("id")?;
    Ok(ProductSetup {
        id: u32::try_from(id).unwrap_or(0),
        name: setting("name")?,
        client_id: setting("configoption1")?,
        client_secret: setting("configoption2")?.into(),
        plan_setting: setting("configoption3")?,
        default_local_user: setting("configoption6")?,
        suspend_setting: setting("configoption7")?,
        manual_setup: setting("configoption8")?,
        autosetup: setting("autosetup")?,
        api_setting: setting("configoption9")?,
        licence_token: setting("configoption10")?.into(),
        licence_product: setting("configoption11")?,
        licence_attach: setting("configoption12")?,
    })
}

/// A custom field definition row of the doctor's reads.
pub(super) fn field_setup(row: &MySqlRow) -> Result<FieldSetup> {
    let relid: i32 = row.try_get("relid")?;
    Ok(FieldSetup {
        product_id: u32::try_from(relid).unwrap_or(0),
        name: row.try_get("fieldname")?,
        field_type: row.try_get("fieldtype")?,
        options: row.try_get("fieldoptions")?,
    })
}
