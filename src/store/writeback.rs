//! WHMCS's side of an attempt's outcome, written inside the finishing transaction: the
//! `jetpack_provisioning_details` custom field of THIS service (or addon) only,
//! `tblhosting.domainstatus` (`tblhostingaddons.status`), the activity log, the Module Queue
//! (`Queue::add` / `Queue::resolve`) and, in debug mode, the module log. Reached through
//! `Store::finish` (one outcome) and `Store::finish_batch` (many: each kind of write in one
//! set-based statement for all of them).

use sqlx::{AssertSqlSafe, MySql, QueryBuilder, Transaction};

use super::chunks::by_bytes;
use super::{
    DetailsField, ModuleLogEntry, ModuleQueueWrite, Result, StatusChange, Store, TEXT_BYTES,
    WhmcsWrites,
};
use crate::domain::{Action, RequestedBy, Target};
use crate::lifecycle::RequestKind;
use crate::rules::MODULE_NAME;
use crate::text::{fit, utf8mb3_safe};

/// One outcome's WHMCS side in a batch: the target, what to write, and whether Module Debug
/// Mode was on at claim time.
pub(super) type Outcome<'a> = (Target, &'a WhmcsWrites, bool);

impl Store {
    /// The EXPLAIN of every status write (services and addons, each change) for two targets:
    /// the tests check each reads its table by primary key and the waiting-request check by
    /// an index of `mod_jetpack_requests`.
    #[doc(hidden)]
    pub async fn explain_status_writes(&self) -> Result<Vec<(String, Vec<super::PlanStep>)>> {
        let changes = [
            StatusChange::Activate,
            StatusChange::BackToPending,
            StatusChange::Terminate,
        ];
        let mut plans = Vec::new();
        for addon in [false, true] {
            for change in changes {
                let sql = format!("EXPLAIN {}", status_sql(addon, change, 2));
                let mut q = QueryBuilder::<MySql>::new("");
                q.push(sql.replace("?, ?", "1, 2"));
                let name = format!(
                    "{} {}",
                    if addon { "addon" } else { "service" },
                    change.status()
                );
                plans.push((name, super::explain::plan(&mut q, &self.pool).await?));
            }
        }
        Ok(plans)
    }

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
            write_status(tx, (is_addon(target), change), &[target.entity_id()]).await?;
        }
        if let Some(line) = &w.activity {
            self.write_activity(tx, w.client_id, line).await?;
        }
        match &w.module_queue {
            Some(ModuleQueueWrite::Add { action, error }) => {
                add_to_module_queue(tx, target, *action, &fitted(error)).await?;
            }
            Some(ModuleQueueWrite::Resolve(action)) => {
                let kind = (target.module_queue_type(), *action);
                resolve_module_queue(tx, kind, &[target.entity_id()]).await?;
            }
            None => {}
        }
        if module_debug {
            write_module_log(tx, &[(w.module_log_action, &w.module_log)]).await?;
        }
        Ok(())
    }

    /// Writes WHMCS's side of many outcomes inside `tx`, each kind of write in one statement
    /// for all of them (the same rules as [`Store::write_whmcs`]): the details values in one
    /// UPDATE joined by (value id, field, relid) and one multi-row INSERT for the missing
    /// ones, one status UPDATE per table and kind of change, the activity lines and the module
    /// log in one multi-row INSERT each, one Module Queue resolve per (type, action); a
    /// Module Queue Add stays one by one. False (and the transaction must be rolled back)
    /// when a details row read with the claim is gone: the caller writes the batch one by
    /// one instead.
    pub(in crate::store) async fn write_whmcs_many(
        &self,
        tx: &mut Transaction<'_, MySql>,
        all: &[Outcome<'_>],
    ) -> Result<bool> {
        if !write_details_many(tx, all).await? {
            return Ok(false);
        }
        let status = group(
            all.iter()
                .filter_map(|(t, w, _)| w.status.map(|c| ((is_addon(*t), c), t.entity_id()))),
        );
        for (kind, ids) in status {
            write_status(tx, kind, &ids).await?;
        }
        let lines: Vec<(u32, &str)> = all
            .iter()
            .filter_map(|(_, w, _)| w.activity.as_deref().map(|l| (w.client_id, l)))
            .collect();
        self.write_activities(tx, &lines).await?;
        let resolves = group(all.iter().filter_map(|(t, w, _)| match &w.module_queue {
            Some(ModuleQueueWrite::Resolve(a)) => {
                Some(((t.module_queue_type(), *a), t.entity_id()))
            }
            _ => None,
        }));
        for (kind, ids) in resolves {
            resolve_module_queue(tx, kind, &ids).await?;
        }
        for (target, w, _) in all {
            if let Some(ModuleQueueWrite::Add { action, error }) = &w.module_queue {
                add_to_module_queue(tx, *target, *action, &fitted(error)).await?;
            }
        }
        let logs: Vec<(&str, &Vec<ModuleLogEntry>)> = all
            .iter()
            .filter(|(_, _, debug)| *debug)
            .map(|(_, w, _)| (w.module_log_action, &w.module_log))
            .collect();
        write_module_log(tx, &logs).await?;
        Ok(true)
    }

    /// One activity-log line for the client, as the System user; WHMCS 8's `user_id` and
    /// `admin_id` columns when the table has them.
    pub(super) async fn write_activity(
        &self,
        tx: &mut Transaction<'_, MySql>,
        client_id: u32,
        line: &str,
    ) -> Result<()> {
        self.write_activities(tx, &[(client_id, line)]).await
    }

    /// Activity-log lines (client, line), in order, in multi-row INSERTs (one per
    /// [`super::chunks::STATEMENT_BYTES`] of text).
    async fn write_activities(
        &self,
        tx: &mut Transaction<'_, MySql>,
        lines: &[(u32, &str)],
    ) -> Result<()> {
        let (head, tail) = if self.activity_has_user_columns {
            (
                "INSERT INTO tblactivitylog (date, description, user, userid, user_id, admin_id, ipaddr) VALUES ",
                ", 0, 0, '')",
            )
        } else {
            (
                "INSERT INTO tblactivitylog (date, description, user, userid, ipaddr) VALUES ",
                ", '')",
            )
        };
        for run in by_bytes(lines, |(_, line)| line.len()) {
            let mut q = QueryBuilder::<MySql>::new(head);
            for (n, (client_id, line)) in run.iter().enumerate() {
                q.push(if n == 0 { "(NOW(), " } else { ", (NOW(), " });
                q.push_bind(fitted(line)).push(", 'System', ");
                q.push_bind(*client_id).push(tail);
            }
            q.build().execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// Whether the target is an addon (its status lives in `tblhostingaddons`).
fn is_addon(target: Target) -> bool {
    matches!(target, Target::Addon { .. })
}

/// Ids grouped by key, keys in the order first seen.
fn group<K: PartialEq>(pairs: impl Iterator<Item = (K, u32)>) -> Vec<(K, Vec<u32>)> {
    let mut groups: Vec<(K, Vec<u32>)> = Vec::new();
    for (key, id) in pairs {
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(id),
            None => groups.push((key, vec![id])),
        }
    }
    groups
}

/// WHMCS's `Queue::resolve`: the open entries for these targets (of one type) and this
/// action are completed.
async fn resolve_module_queue(
    tx: &mut Transaction<'_, MySql>,
    (kind, action): (&'static str, Action),
    ids: &[u32],
) -> Result<()> {
    let mut q = QueryBuilder::<MySql>::new(
        "UPDATE tblmodulequeue SET completed = 1, last_attempt = NOW(), updated_at = NOW()
         WHERE service_type = ",
    );
    q.push_bind(kind).push(" AND service_id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(") AND module_name = ").push_bind(MODULE_NAME);
    q.push(" AND module_action = ")
        .push_bind(action.module_function());
    q.push(" AND completed = 0");
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Attempts' API exchanges in the module log, each named `<action> <call>` (e.g.
/// `createaccount provision`) and each side cut to fit; in order, in multi-row INSERTs.
async fn write_module_log(
    tx: &mut Transaction<'_, MySql>,
    attempts: &[(&str, &Vec<ModuleLogEntry>)],
) -> Result<()> {
    let rows: Vec<(String, String, String)> = attempts
        .iter()
        .flat_map(|(action, entries)| {
            entries.iter().map(move |x| {
                (
                    format!("{action} {}", x.action),
                    utf8mb3_safe(&fit(&x.request, 60_000)),
                    utf8mb3_safe(&fit(&x.response, 60_000)),
                )
            })
        })
        .collect();
    for run in by_bytes(&rows, |(_, req, resp)| req.len() + resp.len()) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO tblmodulelog (date, module, action, request, response, arrdata) VALUES ",
        );
        for (n, (action, request, response)) in run.iter().enumerate() {
            q.push(if n == 0 { "(NOW(), " } else { ", (NOW(), " });
            q.push_bind(MODULE_NAME)
                .push(", ")
                .push_bind(action.as_str());
            q.push(", ").push_bind(request.as_str()).push(", ");
            q.push_bind(response.as_str()).push(", '')");
        }
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The status write for services (`tblhosting.domainstatus`) or addons
/// (`tblhostingaddons.status`), by primary key: `ids` (at least one) as bound placeholders.
/// A target with a request from the PHP module or the CLI that the worker has not applied yet
/// is left as it is, when the request is of an action whose WHMCS function sets the status
/// (catalogue `whmcs_sets_status`): that newer intent is the last word (WHMCS set its status
/// itself when the module recorded it: a Suspend asked while a terminate ran, and applied
/// after it ended, keeps Suspended), and the request's own job decides the rest. A waiting
/// ChangePackage sets no status, so it holds nothing back (a change asked while a terminate
/// ran is ignored once applied, and nothing would write Terminated after it).
fn status_sql(addon: bool, change: StatusChange, ids: usize) -> String {
    let (table, column, target) = if addon {
        (
            "tblhostingaddons",
            "status",
            "r.service_id = tblhostingaddons.hostingid AND r.addon_id = tblhostingaddons.id",
        )
    } else {
        (
            "tblhosting",
            "domainstatus",
            "r.service_id = tblhosting.id AND r.addon_id = 0",
        )
    };
    let ids = vec!["?"; ids].join(", ");
    let newer = format!(
        "NOT EXISTS (SELECT 1 FROM mod_jetpack_requests r WHERE {target}
           AND r.applied_at IS NULL AND r.requested_by IN ('{}', '{}') AND r.action IN ({}))",
        RequestedBy::Module.as_str(),
        RequestedBy::Cli.as_str(),
        intent_kinds()
    );
    match change {
        StatusChange::Activate => {
            format!(
                "UPDATE {table} SET {column} = 'Active'
                 WHERE id IN ({ids}) AND {column} IN ('Pending', 'Terminated') AND {newer}"
            )
        }
        StatusChange::BackToPending => format!(
            "UPDATE {table} SET {column} = 'Pending'
             WHERE id IN ({ids}) AND {column} = 'Active' AND {newer}"
        ),
        StatusChange::Terminate => format!(
            "UPDATE {table} SET {column} = 'Terminated',
               termination_date = IF(termination_date IN ('0000-00-00', '1970-01-01'),
                                     CURDATE(), termination_date)
             WHERE id IN ({ids}) AND {newer}"
        ),
    }
}

/// The request kinds of an action whose WHMCS function sets the status, quoted for an IN
/// list: compile-time names, never input.
fn intent_kinds() -> String {
    RequestKind::ALL
        .iter()
        .filter(|k| k.action().is_some_and(|a| a.spec().whmcs_sets_status))
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One status change for these services (or addons).
async fn write_status(
    tx: &mut Transaction<'_, MySql>,
    (addon, change): (bool, StatusChange),
    ids: &[u32],
) -> Result<()> {
    let sql = status_sql(addon, change, ids.len());
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(*id);
    }
    q.execute(&mut **tx).await?;
    Ok(())
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
    insert_details(tx, &[(target, field, text.to_owned())]).await
}

/// [`write_details`] for many targets: the rows read with the claim in UPDATEs joined to a
/// derived table of (value id, field, relid, text), the missing ones in multi-row INSERTs.
/// False when the UPDATEs matched fewer rows than they name (a row deleted since the claim):
/// the batch is then written one by one, where each target inserts its own.
async fn write_details_many(tx: &mut Transaction<'_, MySql>, all: &[Outcome<'_>]) -> Result<bool> {
    let mut existing: Vec<(Target, DetailsField, u32, String)> = Vec::new();
    let mut missing: Vec<(Target, DetailsField, String)> = Vec::new();
    for (target, w, _) in all {
        if let Some((field, text)) = &w.details {
            match field.value_id {
                Some(id) => existing.push((*target, *field, id, fitted(text))),
                None => missing.push((*target, *field, fitted(text))),
            }
        }
    }
    for run in by_bytes(&existing, |row| row.3.len()) {
        let mut q = QueryBuilder::<MySql>::new("UPDATE tblcustomfieldsvalues c JOIN (");
        for (n, (target, field, id, text)) in run.iter().enumerate() {
            q.push(if n == 0 {
                "SELECT "
            } else {
                " UNION ALL SELECT "
            });
            q.push_bind(*id).push(" AS vid, ").push_bind(field.field_id);
            q.push(" AS vfield, ")
                .push_bind(target.entity_id())
                .push(" AS vrel, ");
            q.push_bind(text.as_str()).push(" AS vtext");
        }
        q.push(
            ") v ON c.id = v.vid AND c.fieldid = v.vfield AND c.relid = v.vrel
             SET c.value = v.vtext, c.updated_at = NOW()",
        );
        // Affected rows count matched rows (sqlx connects with CLIENT_FOUND_ROWS).
        let updated = q.build().execute(&mut **tx).await?;
        if updated.rows_affected() < run.len() as u64 {
            return Ok(false);
        }
    }
    insert_details(tx, &missing).await?;
    Ok(true)
}

/// New details value rows (target, field, text fitted), in multi-row INSERTs.
async fn insert_details(
    tx: &mut Transaction<'_, MySql>,
    rows: &[(Target, DetailsField, String)],
) -> Result<()> {
    for run in by_bytes(rows, |row| row.2.len()) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at) VALUES ",
        );
        for (n, (target, field, text)) in run.iter().enumerate() {
            q.push(if n == 0 { "(" } else { ", (" });
            q.push_bind(field.field_id)
                .push(", ")
                .push_bind(target.entity_id());
            q.push(", ")
                .push_bind(text.as_str())
                .push(", NOW(), NOW())");
        }
        q.build().execute(&mut **tx).await?;
    }
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
pub(super) fn fitted(text: &str) -> String {
    fit(&utf8mb3_safe(text), TEXT_BYTES).into_owned()
}
