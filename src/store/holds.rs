//! `mod_jetpack_holds`: the partner accounts (Client IDs) an admin put on hold. The worker
//! reads the held accounts once per poll ([`Store::held_accounts`]); `status` lists them
//! ([`Store::holds`]); the queue dashboard records and removes them (and so may
//! [`Store::hold`] and [`Store::resume`]). One small table read by its primary key.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, within};
use crate::text::fit;

/// Holds `status` lists at most.
const LISTED: u32 = 100;

/// One held partner account as `status` shows it.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct HoldRow {
    /// The partner Client ID whose jobs are held.
    pub account: String,
    /// When it was held (UTC).
    pub held_at: DateTime<Utc>,
    /// Who held it (`admin:<id>` from the dashboard).
    pub held_by: String,
    /// Why, as written when holding it (may be empty).
    pub reason: String,
}

impl Store {
    /// The held accounts' Client IDs (the whole small table, by its primary key).
    pub async fn held_accounts(&self) -> Result<Vec<String>> {
        let query = sqlx::query_scalar("SELECT account FROM mod_jetpack_holds ORDER BY account")
            .fetch_all(&self.pool);
        within(self.timeout, async { Ok(query.await?) }).await
    }

    /// The holds, oldest first (at most 100).
    pub async fn holds(&self) -> Result<Vec<HoldRow>> {
        let query = sqlx::query(
            "SELECT account, held_at, held_by, reason FROM mod_jetpack_holds
             ORDER BY held_at, account LIMIT ?",
        )
        .bind(LISTED)
        .fetch_all(&self.pool);
        let rows = within(self.timeout, async { Ok(query.await?) }).await?;
        rows.iter()
            .map(|r| {
                Ok(HoldRow {
                    account: r.try_get("account")?,
                    held_at: r.try_get("held_at")?,
                    held_by: r.try_get("held_by")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Holds `account` (a repeated hold keeps the first one's time, updates who and why).
    pub async fn hold(&self, account: &str, by: &str, reason: &str) -> Result<()> {
        let query = sqlx::query(
            "INSERT INTO mod_jetpack_holds (account, held_at, held_by, reason)
             VALUES (?, UTC_TIMESTAMP(6), ?, ?)
             ON DUPLICATE KEY UPDATE held_by = VALUES(held_by), reason = VALUES(reason)",
        )
        .bind(fit(account, 191))
        .bind(fit(by, 191))
        .bind(fit(reason, 500))
        .execute(&self.pool);
        within(self.timeout, async { Ok(query.await.map(|_| ())?) }).await
    }

    /// Resumes `account`: its hold is removed. True when there was one.
    pub async fn resume(&self, account: &str) -> Result<bool> {
        let query = sqlx::query("DELETE FROM mod_jetpack_holds WHERE account = ?")
            .bind(fit(account, 191))
            .execute(&self.pool);
        within(self.timeout, async { Ok(query.await?.rows_affected() > 0) }).await
    }
}
