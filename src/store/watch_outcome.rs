//! What a job's outcome means for the watch, written inside its fenced finish: a plan recorded
//! should be there, a plan cancelled should stay away, and a provision finishing soon after
//! another target's cancel on the same site is looked at soon (the cancel may have taken it).

use sqlx::{MySql, QueryBuilder, Transaction};

use super::Result;
use super::jobs::micros;
use super::ledger::{AddonRows, LedgerWrite, follow_addon};
use crate::domain::Target;

use super::watch_rows::WatchSchedule;

/// Inside a job's fenced finish: what its ledger changes mean for the watch. A plan recorded
/// should be there (with the ledger row's product and addon); a plan cancelled should stay
/// away. `quick`: the job's outcome was unknown at some point, or it cancelled: look soon.
/// Either way the row's memory starts over (its drift count stays, so fighting stays bounded).
pub(super) async fn note_outcome(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    writes: &[LedgerWrite],
    quick: bool,
    schedule: &WatchSchedule,
) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    // An addon moved to another service is one target: its rows follow it, as the ledger's do.
    follow_addon(tx, AddonRows::Watch, target).await?;
    for w in writes {
        match w {
            LedgerWrite::Holds { site, .. } => {
                note_holds(tx, target, site, quick, schedule).await?;
            }
            LedgerWrite::Cancelled { site } => {
                note_cancelled(tx, target, site, schedule).await?;
            }
        }
    }
    Ok(())
}

async fn note_holds(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    site: &str,
    quick: bool,
    schedule: &WatchSchedule,
) -> Result<()> {
    note_holds_many(tx, &[(target, site, quick)], schedule).await
}

/// A plan each (target, site, quick) now holds, as recorded in the ledger (an addon's rows
/// have followed it first, in [`note_outcome`]): the rows in one INSERT … SELECT
/// from the ledger joined to a derived table of the rows' values, and whether another
/// target's cancel on their sites ran lately in one SELECT. One job's finish and the batched
/// finish both write through here.
pub(super) async fn note_holds_many(
    tx: &mut Transaction<'_, MySql>,
    rows: &[(Target, &str, bool)],
    schedule: &WatchSchedule,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO mod_jetpack_watch
           (service_id, addon_id, site, plan, expect, product_id, addon_def_id, next_check_at,
            quick_left, updated_at)
         SELECT l.service_id, l.addon_id, l.site, l.plan, 'holds', l.product_id, l.addon_def_id,
                UTC_TIMESTAMP(6) + INTERVAL v.v_wait MICROSECOND, v.v_quick, UTC_TIMESTAMP(6)
         FROM (",
    );
    for (n, (target, site, quick)) in rows.iter().enumerate() {
        q.push(if n == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        });
        q.push_bind(target.service()).push(" AS v_sid, ");
        q.push_bind(target.addon_id()).push(" AS v_aid, ");
        q.push_bind(*site).push(" AS v_site, ");
        q.push_bind(micros(schedule.first(*quick)))
            .push(" AS v_wait, ");
        q.push_bind(schedule.quick_left(*quick)).push(" AS v_quick");
    }
    q.push(
        ") v JOIN mod_jetpack_ledger l
           ON l.service_id = v.v_sid AND l.addon_id = v.v_aid
          AND l.site_hash = UNHEX(SHA2(v.v_site, 256))
         ON DUPLICATE KEY UPDATE plan = VALUES(plan), expect = 'holds',
           product_id = COALESCE(VALUES(product_id), mod_jetpack_watch.product_id),
           addon_def_id = COALESCE(VALUES(addon_def_id), mod_jetpack_watch.addon_def_id),
           next_check_at = VALUES(next_check_at), quick_left = VALUES(quick_left),
           seen = 'fine', seen_times = 0, restore = 0, check_token = NULL,
           updated_at = VALUES(updated_at)",
    );
    q.build().execute(&mut **tx).await?;
    for (target, site, _) in cancelled_lately(tx, rows).await? {
        // Another target's cancel on this site just ran: it may have raced this provision and
        // removed what it left. Look soon, and restore it if so.
        sqlx::query(
            "UPDATE mod_jetpack_watch SET restore = 1, quick_left = ?,
               next_check_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
             WHERE service_id = ? AND addon_id = ? AND site_hash = UNHEX(SHA2(?, 256))",
        )
        .bind(schedule.quick_left(true))
        .bind(micros(schedule.first(true)))
        .bind(target.service())
        .bind(target.addon_id())
        .bind(site)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// How long after another target's cancel on a site a provision there counts as racing it.
const RACE_WINDOW_SECS: u32 = 600;

/// The rows whose site saw another target's cancel within [`RACE_WINDOW_SECS`] (by the
/// `site` index), in one SELECT whatever the number of rows.
async fn cancelled_lately<'a>(
    tx: &mut Transaction<'_, MySql>,
    rows: &[(Target, &'a str, bool)],
) -> Result<Vec<(Target, &'a str, bool)>> {
    let mut q = QueryBuilder::<MySql>::new("SELECT DISTINCT CAST(v.v_n AS SIGNED) FROM (");
    for (n, (target, site, _)) in rows.iter().enumerate() {
        q.push(if n == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        });
        q.push_bind(n as u32).push(" AS v_n, ");
        q.push_bind(target.service()).push(" AS v_sid, ");
        q.push_bind(target.addon_id()).push(" AS v_aid, ");
        q.push_bind(*site).push(" AS v_site");
    }
    q.push(
        ") v JOIN mod_jetpack_watch w
           ON w.site_hash = UNHEX(SHA2(v.v_site, 256)) AND w.expect = 'absent'
          AND NOT (w.service_id = v.v_sid AND w.addon_id = v.v_aid)
          AND w.updated_at > UTC_TIMESTAMP(6) - INTERVAL ",
    );
    q.push_bind(RACE_WINDOW_SECS).push(" SECOND");
    let raced: Vec<(i64,)> = q.build_query_as().fetch_all(&mut **tx).await?;
    Ok(raced
        .into_iter()
        .filter_map(|(n,)| usize::try_from(n).ok().and_then(|n| rows.get(n)).copied())
        .collect())
}

async fn note_cancelled(
    tx: &mut Transaction<'_, MySql>,
    target: Target,
    site: &str,
    schedule: &WatchSchedule,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE mod_jetpack_watch SET expect = 'absent',
           next_check_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, quick_left = ?,
           seen = 'fine', seen_times = 0, check_token = NULL, updated_at = UTC_TIMESTAMP(6)
         WHERE service_id = ? AND addon_id = ? AND site_hash = UNHEX(SHA2(?, 256))",
    )
    .bind(micros(schedule.first(true)))
    .bind(schedule.quick_left(true))
    .bind(target.service())
    .bind(target.addon_id())
    .bind(site)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        // A cancel of a plan nobody watched (a service that never held one, or one from
        // before the watch): a marker, so a provision racing it on the site is looked at.
        sqlx::query(
            "INSERT IGNORE INTO mod_jetpack_watch
               (service_id, addon_id, site, plan, expect, next_check_at, updated_at)
             VALUES (?, ?, ?, '', 'absent', UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND,
                     UTC_TIMESTAMP(6))",
        )
        .bind(target.service())
        .bind(target.addon_id())
        .bind(site)
        .bind(micros(schedule.pass))
        .execute(&mut **tx)
        .await?;
    }
    // The other targets that should hold a plan on the site are looked at soon too: a cancel
    // racing another target's provision on the same site may have removed its plan.
    sqlx::query(
        "UPDATE mod_jetpack_watch SET restore = 1, quick_left = GREATEST(quick_left, ?),
           next_check_at = LEAST(next_check_at, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND),
           seen = 'fine', seen_times = 0, check_token = NULL
         WHERE site_hash = UNHEX(SHA2(?, 256)) AND expect = 'holds'
           AND NOT (service_id = ? AND addon_id = ?)",
    )
    .bind(schedule.quick_left(true))
    .bind(micros(schedule.first(true)))
    .bind(site)
    .bind(target.service())
    .bind(target.addon_id())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
