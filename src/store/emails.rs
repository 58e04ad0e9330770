//! What the doctor reads about the client's activation email, which the WHMCS module sends
//! from WHMCS's cron (`whmcs/modules/servers/jetpack/lib/Email.php`): whether its product
//! template exists and is enabled, and each `jetpack` product's and addon's setting
//! (configoption5: tblproducts, or tblmodule_configuration for an addon).

use sqlx::Row;

use super::{Result, Store};
use crate::rules::MODULE_NAME;

/// The name of the product email template the module creates (`tblemailtemplates.name`).
pub const ACTIVATION_TEMPLATE: &str = "Jetpack Activation";

/// The value of configoption5 that switches the email off ('' and 'send' send it).
pub const EMAIL_SETTING_OFF: &str = "off";

/// The master "Jetpack Activation" template as the doctor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateState {
    /// Master rows (`type = 'product'`, `language = ''`) with the name: 1 when healthy.
    pub copies: u32,
    /// Whether the lowest of them is disabled.
    pub disabled: bool,
}

impl Store {
    /// The master activation template: how many copies exist and whether the one WHMCS uses
    /// (the lowest id) is disabled. Uses KEY `name` (`name`(64)).
    pub async fn activation_template(&self) -> Result<TemplateState> {
        let rows = sqlx::query(
            "SELECT disabled FROM tblemailtemplates
             WHERE name = ? AND type = 'product' AND language = '' ORDER BY id",
        )
        .bind(ACTIVATION_TEMPLATE)
        .fetch_all(&self.pool)
        .await?;
        let disabled = match rows.first() {
            Some(row) => row.try_get::<i8, _>("disabled")? != 0,
            None => false,
        };
        Ok(TemplateState {
            copies: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            disabled,
        })
    }

    /// Every `jetpack` product's id and whether it sends the activation email.
    pub async fn email_settings(&self) -> Result<Vec<(u32, bool)>> {
        let rows = sqlx::query(
            "SELECT id, CAST(configoption5 AS CHAR) AS setting FROM tblproducts
             WHERE servertype = ? ORDER BY id",
        )
        .bind(MODULE_NAME)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(email_setting).collect()
    }

    /// Every `jetpack` addon's id (tbladdons) and whether it sends the activation email (its
    /// configoption5 in tblmodule_configuration, by the unique key; a missing row sends, as
    /// `lib/Email.php` reads it). Empty when WHMCS has no module addons.
    pub async fn addon_email_settings(&self) -> Result<Vec<(u32, bool)>> {
        if !self.has_addons {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT d.id, CAST(COALESCE(m.value, '') AS CHAR) AS setting FROM tbladdons d
             LEFT JOIN tblmodule_configuration m ON m.entity_type = 'addon' AND m.entity_id = d.id
                  AND m.setting_name = 'configoption5'
             WHERE d.module = ? ORDER BY d.id",
        )
        .bind(MODULE_NAME)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(email_setting).collect()
    }
}

/// A row of `id` and `setting` (configoption5) as (id, sends the email).
fn email_setting(row: &sqlx::mysql::MySqlRow) -> Result<(u32, bool)> {
    let id: i32 = row.try_get("id")?;
    let setting: String = row.try_get("setting")?;
    Ok((
        u32::try_from(id).unwrap_or(0),
        setting.trim() != EMAIL_SETTING_OFF,
    ))
}
