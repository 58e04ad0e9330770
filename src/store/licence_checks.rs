//! The reconciler's look at the licences the targets hold, and the licence products list.
//! A held key (issued or attached) is due for a look once per slow pass (`checked_at`); a look
//! is taken by moving `checked_at` first, so two workers never look twice. A licence found
//! revoked behind our back is recorded (`revoked_outside`), reported in the drift list and
//! the client's activity log, in one transaction.

use std::time::Duration;

use secrecy::SecretString;
use sqlx::{MySql, QueryBuilder, Row};

use super::jobs::micros;
use super::licences::LicenceRow;
use super::{Result, Store, WhmcsWrites};
use crate::catalogue::LicenceState;
use crate::text::fit;

/// A held licence due for a look, with what the look needs.
#[derive(Clone, Debug)]
pub struct LicenceCheck {
    /// The row.
    pub row: LicenceRow,
    /// The Licensing API token of the product (addon) that issued it; never printed.
    pub token: SecretString,
    /// The WHMCS client (for the activity line); 0 when the target is gone.
    pub client_id: u32,
}

impl Store {
    /// Takes up to `limit` held licences due for a look (not looked at within `pass`): each
    /// one's `checked_at` is moved to now first, so no other worker looks at it.
    pub async fn due_licence_checks(
        &self,
        limit: u32,
        pass: Duration,
    ) -> Result<Vec<LicenceCheck>> {
        let rows = sqlx::query(concat!(
            "SELECT l.id, l.service_id, l.addon_id, l.product, l.license_key, l.state, l.product_id,
                    NULL AS intent_time, NULL AS intent_at, NULL AS intent_age, l.attached_site,
                    COALESCE(IF(l.addon_id = 0, p.configoption10, m.value), '') AS token,
                    COALESCE(IF(l.addon_id = 0, h.userid, a.userid), 0) AS client_id
             FROM mod_jetpack_licences l
             LEFT JOIN tblproducts p ON l.addon_id = 0 AND p.id = l.product_id
             LEFT JOIN tblhosting h ON l.addon_id = 0 AND h.id = l.service_id
             LEFT JOIN tblmodule_configuration m ON l.addon_id <> 0 AND m.entity_type = 'addon'
                  AND m.entity_id = l.product_id AND m.setting_name = 'configoption10'
             LEFT JOIN tblhostingaddons a ON l.addon_id <> 0 AND a.id = l.addon_id
             WHERE l.state IN ('issued', 'attached')
               AND (l.checked_at IS NULL OR l.checked_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND)
             ORDER BY l.checked_at LIMIT ?"
        ))
        .bind(micros(pass))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let check = LicenceCheck {
                row: super::licences::licence_row(row)?,
                token: SecretString::from(row.try_get::<String, _>("token")?),
                client_id: u32::try_from(row.try_get::<i64, _>("client_id")?).unwrap_or(0),
            };
            let taken = sqlx::query(
                "UPDATE mod_jetpack_licences SET checked_at = UTC_TIMESTAMP(6)
                 WHERE id = ? AND state IN ('issued', 'attached')
                   AND (checked_at IS NULL OR checked_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND)",
            )
            .bind(check.row.id)
            .bind(micros(pass))
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 1 {
                due.push(check);
            }
        }
        Ok(due)
    }

    /// A held licence the Licensing API reports revoked: recorded (`revoked_outside`), a
    /// drift row, and the activity line, in one transaction. False when the row had moved on.
    pub async fn licence_revoked_outside(
        &self,
        row: &LicenceRow,
        client_id: u32,
        activity: &str,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE mod_jetpack_licences SET state = ?, revoked_outside = 1,
               revoked_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6),
               note = 'revoked outside WHMCS: the reconciler found it revoked'
             WHERE id = ? AND state IN ('issued', 'attached')",
        )
        .bind(LicenceState::Revoked.as_str())
        .bind(row.id)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let key = row.key.as_deref().unwrap_or_default();
        let site = row
            .attached_site
            .clone()
            .unwrap_or_else(|| format!("(licence {key})"));
        sqlx::query(
            "INSERT INTO mod_jetpack_drift (service_id, addon_id, site, expected, found, done, created_at)
             VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
        )
        .bind(row.target.service())
        .bind(row.target.addon_id())
        .bind(site)
        .bind(fit(&format!("licence {key} ({}) live", row.product), 255).into_owned())
        .bind("revoked outside WHMCS")
        .bind("reported")
        .execute(&mut *tx)
        .await?;
        if client_id != 0 {
            let line = WhmcsWrites {
                client_id,
                activity: Some(activity.to_owned()),
                ..WhmcsWrites::default()
            };
            self.write_whmcs(&mut tx, row.target, &line, false).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces the licence products with `products` (slug, name, family): one transaction;
    /// a product no longer listed goes.
    pub async fn replace_licence_products(
        &self,
        products: &[(String, String, String)],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        for (slug, name, family) in products {
            sqlx::query(
                "INSERT INTO mod_jetpack_licence_products (slug, name, family, fetched_at)
                 VALUES (?, ?, ?, UTC_TIMESTAMP(6))
                 ON DUPLICATE KEY UPDATE name = VALUES(name), family = VALUES(family),
                   fetched_at = VALUES(fetched_at)",
            )
            .bind(fit(slug, 64).into_owned())
            .bind(fit(name, 191).into_owned())
            .bind(fit(family, 191).into_owned())
            .execute(&mut *tx)
            .await?;
        }
        let mut gone = QueryBuilder::<MySql>::new(
            "DELETE FROM mod_jetpack_licence_products WHERE slug NOT IN (",
        );
        let mut list = gone.separated(", ");
        for (slug, _, _) in products {
            list.push_bind(fit(slug, 64).into_owned());
        }
        gone.push(")");
        gone.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The licence products stored (slug, name), by slug.
    pub async fn licence_products(&self) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT slug, name FROM mod_jetpack_licence_products ORDER BY slug")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
