//! `status`: the queue by state, the oldest due job, jobs waiting on DNS, recent failures and
//! the workers, as JSON or as text.

use super::named;
use crate::domain::Target;
use crate::store::{HoldRow, LIVE_WITHIN_SECS, StatusReport, Store, WorkerRow};

/// How many recent failures the report lists.
const RECENT_FAILURES: u32 = 10;

/// Prints the report: JSON with `json`, else text.
pub(super) async fn print(store: &Store, json: bool) -> anyhow::Result<()> {
    let report = store.status_report(RECENT_FAILURES).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_status(&report));
    }
    Ok(())
}

/// The text form of `status`.
fn render_status(r: &StatusReport) -> String {
    let mut out = String::new();
    if let Some(warning) = &r.no_worker {
        out.push_str(&format!("WARNING: {warning}\n"));
    }
    out.push_str(&format!(
        "requests not yet applied: {}\n",
        r.requests_pending
    ));
    if r.unknown_action_jobs > 0 {
        out.push_str(&format!(
            "{} jobs of an action this worker does not know (left for a newer jetpack-worker)\n",
            r.unknown_action_jobs
        ));
    }
    out.push_str("jobs by state:\n");
    for (state, n) in &r.counts {
        out.push_str(&format!("  {state:<12} {n}\n"));
    }
    match (&r.oldest_due, r.oldest_due_age_secs) {
        (Some(j), Some(age)) => out.push_str(&format!(
            "oldest due job: {} ({}, {}) due for {age}s\n",
            j.id,
            named(Target::from_ids(j.service_id, j.addon_id)),
            j.action
        )),
        _ => out.push_str("oldest due job: none\n"),
    }
    out.push_str(&format!("waiting on DNS: {}\n", r.waiting_dns.len()));
    for j in &r.waiting_dns {
        out.push_str(&format!(
            "  {} next check {}\n",
            named(Target::from_ids(j.service_id, j.addon_id)),
            j.run_at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    out.push_str(&format!("recent failures: {}\n", r.recent_failures.len()));
    for j in &r.recent_failures {
        out.push_str(&format!(
            "  {} {} ({}): {}\n",
            named(Target::from_ids(j.service_id, j.addon_id)),
            j.action,
            j.updated_at.format("%Y-%m-%d %H:%M UTC"),
            j.last_error.as_deref().unwrap_or("")
        ));
    }
    out.push_str(&format!(
        "drift found by the reconciler: {}\n",
        r.drifts.len()
    ));
    for d in &r.drifts {
        out.push_str(&format!(
            "  {} {} ({}): expected {}, found {}: {}\n",
            named(Target::from_ids(d.service_id, d.addon_id)),
            d.site,
            d.at.format("%Y-%m-%d %H:%M UTC"),
            d.expected,
            d.found,
            d.done
        ));
    }
    out.push_str(&render_holds(&r.holds));
    out.push_str(&render_workers(&r.workers));
    out
}

/// The held partner accounts: one line each (their jobs stay queued until resumed).
fn render_holds(holds: &[HoldRow]) -> String {
    let mut out = format!(
        "partner accounts on hold (their jobs stay queued, no call made): {}\n",
        holds.len()
    );
    for h in holds {
        out.push_str(&format!(
            "  client id {} held {} by {}{}\n",
            h.account,
            h.held_at.format("%Y-%m-%d %H:%M UTC"),
            h.held_by,
            if h.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", h.reason)
            }
        ));
    }
    out
}

/// The workers part of `status`: one line each, then its last database error, if any.
fn render_workers(workers: &[WorkerRow]) -> String {
    let mut out = format!("workers: {}\n", workers.len());
    for w in workers {
        let state = match (w.stopped_at, w.is_live(LIVE_WITHIN_SECS)) {
            (Some(at), _) => format!("stopped {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            (None, true) => "running".to_owned(),
            (None, false) => format!("not seen for {}s (killed or cut off?)", w.seen_secs_ago),
        };
        out.push_str(&format!(
            "  {} host {} pid {} version {} started {} last seen {}s ago, in flight {}: {state}\n",
            w.owner,
            w.host,
            w.pid,
            w.version,
            w.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            w.seen_secs_ago,
            w.in_flight
        ));
        if let Some(e) = &w.last_db_error {
            out.push_str(&format!("    last database error: {e}\n"));
        }
    }
    out
}
