//! WHMCS's side of an attempt's outcome, written inside the finishing transaction: the
//! `jetpack_provisioning_details` custom field of THIS service (or addon) only,
//! `tblhosting.domainstatus` (`tblhostingaddons.status`), the activity log, the Module Queue
//! (`Queue::add` / `Queue::resolve`) and, in debug mode, the module log. Reached through
//! `Store::finish`.

use sqlx::{AssertSqlSafe, MySql, Transaction};

use super::{
    DetailsField, ModuleLogEntry, ModuleQueueWrite, Result, StatusChange, Store, TEXT_BYTES,
    WhmcsWrites,
};
use crate::domain::{Action, Target};
use crate::rules::MODULE_NAME;
use crate::text::{fit, utf8mb3_safe};

impl Store {
    /// Writes WHMCS's side of an outcome inside `tx`; the module log only when WHMCS's Module
    /// Debug Mode was on at claim time.
    pub(in crate::store) async fn write_whmcs(
        &self,
        tx: &mut Transaction<'_, MySql>,
        target: Target,
        w: &WhmcsWrites,
        module_debug: bool,
    ) -> Result<()> {
        if let Some((field, text)) = &w.details {
            write_details(tx, target, *field, &fitted(text)).await?;
        }
        if let Some(change) = w.status {
            sqlx::query(AssertSqlSafe(status_sql(target, change)))
                .bind(target.entity_id())
                .execute(&mut **tx)
                .await?;
        }
        if let Some(line) = &w.activity {
            self.write_activity(tx, w.client_id, line).await?;
        }
        match &w.module_queue {
            Some(ModuleQueueWrite::Add { action, error }) => {
                add_to_module_queue(tx, target, *action, &fitted(error)).await?;
            }
            Some(ModuleQueueWrite::Resolve(action)) => {
                resolve_module_queue(tx, target, *action).await?;
            }
            None => {}
        }
        if module_debug {
            write_module_log(tx, w.module_log_action, &w.module_log).await?;
        }
        Ok(())
    }

    /// One activity-log line for the client, as the System user; WHMCS 8's `user_id` and
    /// `admin_id` columns when the table has them.
    pub(super) async fn write_activity(
        &self,
        tx: &mut Transaction<'_, MySql>,
        client_id: u32,
        line: &str,
    ) -> Result<()> {
        let sql = if self.activity_has_user_columns {
            "INSERT INTO tblactivitylog (date, description, user, userid, user_id, admin_id, ipaddr)
             VALUES (NOW(), ?, 'System', ?, 0, 0, '')"
        } else {
            "INSERT INTO tblactivitylog (date, description, user, userid, ipaddr)
             VALUES (NOW(), ?, 'System', ?, '')"
        };
        sqlx::query(sql)
            .bind(fitted(line))
            .bind(client_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// WHMCS's `Queue::resolve`: the open entries for this target and action are completed.
async fn resolve_module_queue(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    action: Action,
) -> Result<()> {
    sqlx::query(
        "UPDATE tblmodulequeue SET completed = 1, last_attempt = NOW(), updated_at = NOW()
         WHERE service_type = ? AND service_id = ? AND module_name = ?
           AND module_action = ? AND completed = 0",
    )
    .bind(target.module_queue_type())
    .bind(target.entity_id())
    .bind(MODULE_NAME)
    .bind(action.module_function())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The attempt's API exchanges in the module log, each named `<action> <call>` (e.g.
/// `createaccount provision`) and each side cut to fit.
async fn write_module_log(
    tx: &mut Transaction<'_, MySql>,
    action: &str,
    entries: &[ModuleLogEntry],
) -> Result<()> {
    for x in entries {
        sqlx::query(
            "INSERT INTO tblmodulelog (date, module, action, request, response, arrdata)
             VALUES (NOW(), ?, ?, ?, ?, '')",
        )
        .bind(MODULE_NAME)
        .bind(format!("{action} {}", x.action))
        .bind(utf8mb3_safe(&fit(&x.request, 60_000)))
        .bind(utf8mb3_safe(&fit(&x.response, 60_000)))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The status write for a service (`tblhosting.domainstatus`) or an addon
/// (`tblhostingaddons.status`), by primary key (bound).
fn status_sql(target: Target, change: StatusChange) -> String {
    let (table, column) = match target {
        Target::Service(_) => ("tblhosting", "domainstatus"),
        Target::Addon { .. } => ("tblhostingaddons", "status"),
    };
    match change {
        StatusChange::Activate => {
            format!(
                "UPDATE {table} SET {column} = 'Active'
                 WHERE id = ? AND {column} IN ('Pending', 'Terminated')"
            )
        }
        StatusChange::BackToPending => {
            format!("UPDATE {table} SET {column} = 'Pending' WHERE id = ? AND {column} = 'Active'")
        }
        StatusChange::Terminate => format!(
            "UPDATE {table} SET {column} = 'Terminated',
               termination_date = IF(termination_date IN ('0000-00-00', '1970-01-01'),
                                     CURDATE(), termination_date)
             WHERE id = ?"
        ),
    }
}

/// Updates the details value row read with the claim (this service's or addon's lowest one),
/// or inserts one when there is none (or it was deleted since). Never touches another
/// service's row (the original module's global UPDATE is the bug this replaces): the UPDATE is
/// keyed by the row id *and* this target's field and relid (tblhosting.id or
/// tblhostingaddons.id, as WHMCS keys product and addon field values).
async fn write_details(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    field: DetailsField,
    text: &str,
) -> Result<()> {
    if let Some(value_id) = field.value_id {
        // Affected rows count matched rows (sqlx connects with CLIENT_FOUND_ROWS).
        let updated = sqlx::query(
            "UPDATE tblcustomfieldsvalues SET value = ?, updated_at = NOW()
             WHERE id = ? AND fieldid = ? AND relid = ?",
        )
        .bind(text)
        .bind(value_id)
        .bind(field.field_id)
        .bind(target.entity_id())
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() > 0 {
            return Ok(());
        }
    }
    sqlx::query(
        "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
         VALUES (?, ?, ?, NOW(), NOW())",
    )
    .bind(field.field_id)
    .bind(target.entity_id())
    .bind(text)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// WHMCS's `Queue::add`: one open row per (service or addon, module, action); a repeat
/// failure bumps `num_retries`. tblmodulequeue has no index but its primary key, so this scans
/// it; the table only ever holds failures and stays small.
async fn add_to_module_queue(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    action: Action,
    error: &str,
) -> Result<()> {
    let open: Option<(u32,)> = sqlx::query_as(
        "SELECT id FROM tblmodulequeue WHERE service_type = ? AND service_id = ?
           AND module_name = ? AND module_action = ? AND completed = 0
         ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .bind(target.module_queue_type())
    .bind(target.entity_id())
    .bind(MODULE_NAME)
    .bind(action.module_function())
    .fetch_optional(&mut **tx)
    .await?;
    match open {
        Some((id,)) => {
            sqlx::query(
                "UPDATE tblmodulequeue SET last_attempt = NOW(), last_attempt_error = ?,
                   num_retries = num_retries + 1, updated_at = NOW() WHERE id = ?",
            )
            .bind(error)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO tblmodulequeue (service_type, service_id, module_name, module_action,
                   last_attempt, last_attempt_error, num_retries, completed, created_at, updated_at)
                 VALUES (?, ?, ?, ?, NOW(), ?, 0, 0, NOW(), NOW())",
            )
            .bind(target.module_queue_type())
            .bind(target.entity_id())
            .bind(MODULE_NAME)
            .bind(action.module_function())
            .bind(error)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// A text for one of WHMCS's utf8mb3 TEXT columns: no 4-byte characters, at most 64 KiB.
fn fitted(text: &str) -> String {
    fit(&utf8mb3_safe(text), TEXT_BYTES).into_owned()
}
