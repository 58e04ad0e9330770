//! The licence ledger, `mod_jetpack_licences`: one row per licence the worker issued or tried
//! to issue, per target. The intent of an issue is committed before the call, fenced by the
//! job's lease (only the holder of a job may start an issue); what the worker then learns
//! about a licence (its key, an attach, a revoke, a lost answer) is written at once, guarded
//! by the row's state rather than by the lease: a key we learnt is the truth even if the
//! lease ran out meanwhile. Also the admin's decisions about a lost answer (applied with the
//! request inbox) and the reads of the claim and the reconciler.

use std::collections::HashMap;

use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{MySql, QueryBuilder, Row, Transaction};

use super::jobs::push_targets;
use super::{ClaimedJob, RequestId, Result, Store, StoreError};
use crate::catalogue::LicenceState;
use crate::domain::{RequestedBy, Target};
use crate::lifecycle::RequestKind;
use crate::text::fit;

/// One row of the licence ledger, as the worker reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenceRow {
    /// Its id.
    pub id: u64,
    /// The target it was issued for.
    pub target: Target,
    /// The licence product slug.
    pub product: String,
    /// The key, once known.
    pub key: Option<String>,
    /// Its state.
    pub state: LicenceState,
    /// When the intent was committed (UTC, `HH:MM:SS` for messages).
    pub intent_time: Option<String>,
    /// The same, `YYYY-MM-DD HH:MM:SS` (UTC), to compare with the API's `issued_at`.
    pub intent_at: Option<String>,
    /// How long ago the intent was committed, by the database clock (seconds).
    pub intent_age: Option<i64>,
    /// The site it is (or was last) attached to.
    pub attached_site: Option<String>,
    /// The product (addon definition) whose token issued it.
    pub product_id: Option<u32>,
}

/// What the worker learnt about a licence row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LicenceWrite {
    /// Its key (from the answer, a lookup, or an admin): `issuing`, `unknown` or
    /// `failed` → `issued`.
    Issued {
        /// The key.
        key: String,
        /// `issued_at` as the API said, `YYYY-MM-DD HH:MM:SS` (None: now).
        issued_at: Option<String>,
        /// How we learnt it.
        note: String,
    },
    /// Attached to `site`: `issued` or `attached` → `attached`.
    Attached {
        /// The site, as sent.
        site: String,
    },
    /// Detached (a suspend): `attached` → `issued`, the site kept as the last one.
    Detached,
    /// Revoked: `issued` or `attached` → `revoked`; `outside` when the reconciler found it so.
    Revoked {
        /// Revoked behind our back.
        outside: bool,
        /// What happened.
        note: String,
    },
    /// The answer was lost and it could not be looked up: `issuing` → `unknown`.
    Unknown {
        /// Why.
        note: String,
    },
    /// No licence was issued: `issuing` → `failed`.
    NotIssued {
        /// Why.
        note: String,
    },
    /// The reconciler looked at it (GET /license) and it is still live.
    Checked,
}

/// The columns every read of a licence row selects.
macro_rules! licence_columns {
    () => {
        "id, service_id, addon_id, product, license_key, state, product_id,
         CAST(DATE_FORMAT(issue_started_at, '%H:%i:%s') AS CHAR) AS intent_time,
         CAST(DATE_FORMAT(issue_started_at, '%Y-%m-%d %H:%i:%s') AS CHAR) AS intent_at,
         TIMESTAMPDIFF(SECOND, issue_started_at, UTC_TIMESTAMP(6)) AS intent_age, attached_site"
    };
}

pub(super) fn licence_row(row: &MySqlRow) -> Result<LicenceRow> {
    let state: String = row.try_get("state")?;
    Ok(LicenceRow {
        id: row.try_get("id")?,
        target: Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?),
        product: row.try_get("product")?,
        key: row.try_get("license_key")?,
        state: LicenceState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("licence state {state:?}")))?,
        intent_time: row.try_get("intent_time")?,
        intent_at: row.try_get("intent_at")?,
        intent_age: row.try_get("intent_age")?,
        attached_site: row.try_get("attached_site")?,
        product_id: row.try_get("product_id")?,
    })
}

/// Every licence row of these targets, oldest first (the claim's read, by the target index).
pub(super) async fn licences_of(
    conn: &mut MySqlConnection,
    targets: &[Target],
) -> Result<HashMap<Target, Vec<LicenceRow>>> {
    let mut by_target: HashMap<Target, Vec<LicenceRow>> = HashMap::new();
    if targets.is_empty() {
        return Ok(by_target);
    }
    let mut q = QueryBuilder::<MySql>::new(concat!(
        "SELECT ",
        licence_columns!(),
        " FROM mod_jetpack_licences WHERE "
    ));
    push_targets(&mut q, "service_id", "addon_id", targets);
    q.push(" ORDER BY service_id, addon_id, id");
    for row in q.build().fetch_all(&mut *conn).await? {
        let row = licence_row(&row)?;
        by_target.entry(row.target).or_default().push(row);
    }
    Ok(by_target)
}

impl Store {
    /// Commits the intent to issue a licence of `product` for the job's target, before the
    /// call: a row `issuing`, fenced by the job's lease (None, and nothing written, when the
    /// lease is no longer ours).
    pub async fn licence_intent(
        &self,
        job: &ClaimedJob,
        product: &str,
        product_id: u32,
    ) -> Result<Option<LicenceRow>> {
        let inserted = sqlx::query(
            "INSERT INTO mod_jetpack_licences
               (service_id, addon_id, product, product_id, state, issue_started_at, job_id,
                note, updated_at)
             SELECT j.service_id, j.addon_id, ?, ?, ?, UTC_TIMESTAMP(6), j.id, ?, UTC_TIMESTAMP(6)
             FROM mod_jetpack_jobs j WHERE j.id = ? AND j.lease_token = ? AND j.state = 'running'",
        )
        .bind(product)
        .bind(product_id)
        .bind(LicenceState::Issuing.as_str())
        .bind("intent recorded; POST /license follows")
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        self.licence(inserted.last_insert_id()).await
    }

    /// One licence row.
    pub async fn licence(&self, id: u64) -> Result<Option<LicenceRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            licence_columns!(),
            " FROM mod_jetpack_licences WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(licence_row).transpose()
    }

    /// Every licence row of a target, oldest first (the CLI's `licence list`, tests).
    pub async fn licences_of(&self, target: Target) -> Result<Vec<LicenceRow>> {
        let mut conn = self.pool.acquire().await?;
        Ok(licences_of(&mut conn, &[target])
            .await?
            .remove(&target)
            .unwrap_or_default())
    }

    /// Writes what the worker learnt about licence `id` (by job `job`, when a job did), if
    /// the row is in a state the change applies to; false when it was not (another worker
    /// or an admin got there first).
    pub async fn licence_write(&self, id: u64, job: Option<u64>, w: &LicenceWrite) -> Result<bool> {
        let mut q = QueryBuilder::<MySql>::new("UPDATE mod_jetpack_licences SET ");
        let from: &[LicenceState] = match w {
            LicenceWrite::Issued {
                key,
                issued_at,
                note,
            } => {
                q.push("state = 'issued', license_key = ")
                    .push_bind(key.clone());
                q.push(", issued_at = COALESCE(")
                    .push_bind(issued_at.clone());
                q.push(", UTC_TIMESTAMP(6)), checked_at = UTC_TIMESTAMP(6), note = ");
                q.push_bind(fit(note, 255).into_owned());
                &[
                    LicenceState::Issuing,
                    LicenceState::Unknown,
                    LicenceState::Failed,
                ]
            }
            LicenceWrite::Attached { site } => {
                q.push("state = 'attached', attached_at = UTC_TIMESTAMP(6), attached_site = ");
                q.push_bind(fit(site, 255).into_owned());
                &[LicenceState::Issued, LicenceState::Attached]
            }
            LicenceWrite::Detached => {
                q.push("state = 'issued', attached_at = NULL");
                &[LicenceState::Attached]
            }
            LicenceWrite::Revoked { outside, note } => {
                q.push("state = 'revoked', revoked_at = UTC_TIMESTAMP(6), revoked_outside = ");
                q.push_bind(*outside).push(", note = ");
                q.push_bind(fit(note, 255).into_owned());
                &[LicenceState::Issued, LicenceState::Attached]
            }
            LicenceWrite::Unknown { note } => {
                q.push("state = 'unknown', note = ")
                    .push_bind(fit(note, 255).into_owned());
                &[LicenceState::Issuing]
            }
            LicenceWrite::NotIssued { note } => {
                q.push("state = 'failed', note = ")
                    .push_bind(fit(note, 255).into_owned());
                &[LicenceState::Issuing]
            }
            LicenceWrite::Checked => {
                q.push("checked_at = UTC_TIMESTAMP(6)");
                &[LicenceState::Issued, LicenceState::Attached]
            }
        };
        q.push(", job_id = COALESCE(")
            .push_bind(job)
            .push(", job_id)");
        if *w != LicenceWrite::Checked {
            q.push(", updated_at = UTC_TIMESTAMP(6)");
        }
        q.push(" WHERE id = ").push_bind(id).push(" AND state IN (");
        let mut states = q.separated(", ");
        for s in from {
            states.push_bind(s.as_str());
        }
        q.push(")");
        Ok(q.build().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Records an admin's decision about a licence whose issue answer was lost
    /// (`licence_record` with the key found in the portal, or `licence_reissue`): one INSERT
    /// into the request inbox, applied by the worker like any request.
    pub async fn record_licence_request(
        &self,
        target: Target,
        kind: RequestKind,
        key: Option<&str>,
        by: RequestedBy,
    ) -> Result<RequestId> {
        let done = sqlx::query(
            "INSERT INTO mod_jetpack_requests
               (service_id, addon_id, action, requested_by, created_at, detail)
             VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6), ?)",
        )
        .bind(target.service())
        .bind(target.addon_id())
        .bind(kind.as_str())
        .bind(by.as_str())
        .bind(key.map(|k| fit(k.trim(), 191).into_owned()))
        .execute(&self.pool)
        .await?;
        Ok(RequestId(done.last_insert_id()))
    }

    /// Whether another licence row holds `key` (a key is one licence).
    pub async fn licence_key_held(&self, key: &str, except: u64) -> Result<bool> {
        let found: Option<(u64,)> = sqlx::query_as(
            "SELECT id FROM mod_jetpack_licences WHERE license_key = ? AND id <> ? LIMIT 1",
        )
        .bind(key)
        .bind(except)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}

/// What an admin's licence decision did to the target's `unknown` row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decided {
    /// The row changed (recorded, or abandoned for a reissue).
    Changed,
    /// The target has no `unknown` row.
    NoneInDoubt,
    /// The key was refused (why).
    KeyRefused(&'static str),
}

/// Applies an admin's decision (`licence_record` with `key`, or `licence_reissue`) to the
/// target's latest `unknown` row, inside the inbox's transaction.
pub(super) async fn decide(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    kind: RequestKind,
    key: Option<&str>,
) -> Result<Decided> {
    let row: Option<(u64, String)> = sqlx::query_as(
        "SELECT id, product FROM mod_jetpack_licences
         WHERE service_id = ? AND addon_id = ? AND state = 'unknown'
         ORDER BY id DESC LIMIT 1 FOR UPDATE",
    )
    .bind(target.service())
    .bind(target.addon_id())
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id, product)) = row else {
        return Ok(Decided::NoneInDoubt);
    };
    if kind == RequestKind::LicenceReissue {
        sqlx::query(
            "UPDATE mod_jetpack_licences SET state = 'abandoned', updated_at = UTC_TIMESTAMP(6),
               note = 'an admin chose to issue another licence (licence_reissue)' WHERE id = ?",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
        return Ok(Decided::Changed);
    }
    let key = key.map(str::trim).unwrap_or_default();
    if let Some(refused) = refused_key(tx, key, &product).await? {
        return Ok(Decided::KeyRefused(refused));
    }
    sqlx::query(
        "UPDATE mod_jetpack_licences SET state = 'issued', license_key = ?,
           issued_at = issue_started_at, updated_at = UTC_TIMESTAMP(6),
           note = 'recorded by an admin (licence_record)' WHERE id = ?",
    )
    .bind(key)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(Decided::Changed)
}

/// Why a recorded key is refused: empty, too long, not of the product, or held already.
async fn refused_key(
    tx: &mut Transaction<'_, MySql>,
    key: &str,
    product: &str,
) -> Result<Option<&'static str>> {
    if key.is_empty() {
        return Ok(Some("no licence key was given"));
    }
    if key.len() > 191 || key.chars().any(char::is_whitespace) {
        return Ok(Some("that is not a licence key"));
    }
    if !key.starts_with(product) {
        return Ok(Some(
            "the key is not one of the licence's product (it starts with the product's slug)",
        ));
    }
    let held: Option<(u64,)> =
        sqlx::query_as("SELECT id FROM mod_jetpack_licences WHERE license_key = ? LIMIT 1")
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(held.map(|_| "another licence row already holds this key"))
}
