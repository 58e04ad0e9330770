//! What the doctor reads about the client's activation email, which the WHMCS module sends
//! from WHMCS's cron (`whmcs/modules/servers/jetpack/lib/Email.php`): whether its product
//! template exists and is enabled, and each `jetpack` product's setting (configoption5).

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
        rows.iter()
            .map(|row| {
                let id: i32 = row.try_get("id")?;
                let setting: String = row.try_get("setting")?;
                Ok((
                    u32::try_from(id).unwrap_or(0),
                    setting.trim() != EMAIL_SETTING_OFF,
                ))
            })
            .collect()
    }
}
