//! Worker liveness (`mod_jetpack_workers`): a running worker appears within seconds, a killed
//! one stays but ages and is reported as not seen, a cleanly stopped one is marked stopped,
//! `status` lists the workers and warns when work waits and none runs, old rows are deleted,
//! and a failing heartbeat write breaks nothing.

use std::time::Duration;

use jetpack_worker::domain::{Action, RequestedBy};
use jetpack_worker::store::{Heartbeat, NO_WORKER_WARNING};
use sqlx::Row;
use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::cli::{database_url, output, worker_command};
use crate::helpers::{Env, until};
use crate::service::{seed, sigterm, spawn_run, wait_exit};

/// The test's view of one worker row.
#[derive(Debug)]
struct Seen {
    version: String,
    in_flight: u32,
    seen_ago_ms: i64,
    last_seen: String,
    stopped: bool,
}

async fn row_of(env: &Env, pid: u32) -> Option<Seen> {
    sqlx::query(
        "SELECT version, in_flight, stopped_at IS NOT NULL AS stopped,
             CAST(last_seen_at AS CHAR) AS last_seen,
             TIMESTAMPDIFF(MICROSECOND, last_seen_at, UTC_TIMESTAMP(6)) DIV 1000 AS ago
         FROM mod_jetpack_workers WHERE pid = ?",
    )
    .bind(pid)
    .fetch_optional(&env.db)
    .await
    .unwrap()
    .map(|r| Seen {
        version: r.get("version"),
        in_flight: r.get("in_flight"),
        seen_ago_ms: r.get("ago"),
        last_seen: r.get("last_seen"),
        stopped: r.get::<i64, _>("stopped") == 1,
    })
}

pub(crate) async fn status_json(url: &str, api: &str) -> serde_json::Value {
    let mut cmd = worker_command(url, api);
    cmd.args(["status", "--json"]);
    let out = output(cmd).await;
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) async fn status_text(url: &str, api: &str) -> String {
    let mut cmd = worker_command(url, api);
    cmd.arg("status");
    let out = output(cmd).await;
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `run` worker's row appears at once with its pid, version and a fresh last_seen_at, is
/// refreshed every few seconds with the jobs in flight, and a SIGTERM marks it stopped with
/// nothing in flight; `status --json` lists it as stopped.
#[sqlx::test]
async fn a_running_worker_appears_within_seconds_and_a_clean_stop_marks_it_stopped(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let url = database_url(&env.db).await;
    let api = env.sandbox.base_url();
    seed(&env, 2).await;
    env.sandbox.state().set_latency(Duration::from_secs(30));
    let child = spawn_run(&url, &api, &[("JETPACK_DRAIN_TIMEOUT", "1s")]);
    let pid = child.id();
    until(Duration::from_secs(10), "the worker's row", || async {
        row_of(&env, pid).await.is_some()
    })
    .await;
    let row = row_of(&env, pid).await.unwrap();
    assert_eq!(row.version, env!("CARGO_PKG_VERSION"));
    assert!(!row.stopped && row.seen_ago_ms < 5_000, "{row:?}");
    // The jobs are in their 30 s calls: the next beats say so and keep the row fresh.
    until(Duration::from_secs(15), "in_flight 2", || async {
        row_of(&env, pid).await.is_some_and(|r| r.in_flight == 2)
    })
    .await;
    let first = row.last_seen;
    let row = row_of(&env, pid).await.unwrap();
    assert!(row.last_seen > first && row.seen_ago_ms < 6_000, "{row:?}");
    let report = status_json(&url, &api).await;
    assert_eq!(report["workers"][0]["pid"], pid, "{report}");
    assert_eq!(report["workers"][0]["in_flight"], 2, "{report}");
    assert!(report["workers"][0]["stopped_at"].is_null(), "{report}");
    assert!(report["no_worker"].is_null(), "a live worker: {report}");

    sigterm(&child);
    let (status, log) = wait_exit(child, Duration::from_secs(15)).await;
    assert!(status.success(), "{log}");
    let row = row_of(&env, pid).await.unwrap();
    assert!(row.stopped && row.in_flight == 0, "{row:?}");
    let report = status_json(&url, &api).await;
    let listed = &report["workers"][0];
    assert_eq!(listed["pid"], pid, "{report}");
    assert!(listed["stopped_at"].is_string(), "{report}");
    assert_eq!(
        report["no_worker"], NO_WORKER_WARNING,
        "the two jobs left to their lease wait and no worker runs: {report}"
    );
    assert!(status_text(&url, &api).await.contains(": stopped 20"));
}

/// `run --once` leaves no row; a SIGKILLed worker's row stays, is no longer refreshed, is not
/// marked stopped, and once it is older than two minutes (aged by UPDATE) `status` reports it
/// as not seen and warns that jobs wait with no worker running.
#[sqlx::test]
async fn a_killed_worker_stays_ages_and_is_reported_not_seen_after_the_threshold(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let url = database_url(&env.db).await;
    let api = env.sandbox.base_url();
    let mut once = worker_command(&url, &api);
    once.args(["run", "--once"]);
    assert!(output(once).await.status.success());
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mod_jetpack_workers")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(rows, 0, "run --once does not register");

    let mut child = spawn_run(&url, &api, &[]);
    let pid = child.id();
    until(Duration::from_secs(10), "the worker's row", || async {
        row_of(&env, pid).await.is_some()
    })
    .await;
    child.kill().unwrap();
    let _ = wait_exit(child, Duration::from_secs(5)).await;
    let killed = row_of(&env, pid).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let later = row_of(&env, pid).await.unwrap();
    assert_eq!(later.last_seen, killed.last_seen, "nobody refreshes it");
    assert!(!later.stopped && later.seen_ago_ms >= 6_000, "{later:?}");

    seed(&env, 1).await;
    let report = status_json(&url, &api).await;
    assert!(
        report["no_worker"].is_null(),
        "seen 6 s ago still counts: {report}"
    );
    env.exec("UPDATE mod_jetpack_workers SET last_seen_at = last_seen_at - INTERVAL 100 SECOND")
        .await;
    let report = status_json(&url, &api).await;
    assert!(report["no_worker"].is_null(), "about 2 minutes: {report}");
    env.exec("UPDATE mod_jetpack_workers SET last_seen_at = last_seen_at - INTERVAL 20 SECOND")
        .await;
    let report = status_json(&url, &api).await;
    assert!(report["workers"][0]["seen_secs_ago"].as_i64().unwrap() > 120);
    assert_eq!(report["workers"][0]["pid"], pid);
    assert_eq!(report["no_worker"], NO_WORKER_WARNING, "{report}");
    let text = status_text(&url, &api).await;
    assert!(
        text.starts_with(&format!("WARNING: {NO_WORKER_WARNING}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("pid {pid} ")) && text.contains("not seen for"),
        "{text}"
    );
}

/// The warning needs both: work waiting (a queued job or an unapplied request) and no live
/// worker (none, only stopped ones, or only ones older than two minutes). Finished jobs alone
/// never warn.
#[sqlx::test]
async fn the_no_worker_warning_needs_waiting_work_and_no_live_worker(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let warned = || async { env.store.status_report(10).await.unwrap().no_worker };
    assert_eq!(warned().await, None, "nothing waits");
    let sid = seed(&env, 1).await[0];
    assert_eq!(
        warned().await.as_deref(),
        Some(NO_WORKER_WARNING),
        "queued, no worker"
    );
    let beat = Heartbeat {
        owner: "h:1:ab",
        host: "h",
        pid: 1,
        version: "0.0.0",
        in_flight: 0,
        last_db_error: None,
    };
    env.store.worker_beat(&beat).await.unwrap();
    assert_eq!(warned().await, None, "a fresh worker");
    env.store.worker_stopped("h:1:ab").await.unwrap();
    assert_eq!(
        warned().await.as_deref(),
        Some(NO_WORKER_WARNING),
        "only a stopped one"
    );
    env.store.worker_beat(&beat).await.unwrap();
    assert_eq!(warned().await, None, "running again");
    env.exec(
        "UPDATE mod_jetpack_workers SET last_seen_at = UTC_TIMESTAMP(6) - INTERVAL 121 SECOND",
    )
    .await;
    assert_eq!(
        warned().await.as_deref(),
        Some(NO_WORKER_WARNING),
        "too old"
    );
    env.exec(&format!(
        "UPDATE mod_jetpack_jobs SET state = 'done', finished_at = UTC_TIMESTAMP(6) WHERE service_id = {sid}"
    ))
    .await;
    assert_eq!(warned().await, None, "only finished work");
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.exec("UPDATE mod_jetpack_requests SET applied_at = NULL")
        .await;
    env.exec("DELETE FROM mod_jetpack_jobs WHERE state = 'queued'")
        .await;
    assert_eq!(
        warned().await.as_deref(),
        Some(NO_WORKER_WARNING),
        "a request waits"
    );
}

/// Housekeeping deletes rows stopped or unseen for more than 7 days, through KEY seen, and
/// keeps the rest; long texts are cut to fit.
#[sqlx::test]
async fn rows_of_workers_gone_for_a_week_are_deleted(pool: MySqlPool) {
    let env = Env::new(pool).await;
    for (owner, error) in [
        ("old", None),
        ("old-stopped", None),
        ("fresh", Some("x".repeat(2000))),
    ] {
        let beat = Heartbeat {
            owner,
            host: "h",
            pid: 7,
            version: "1",
            in_flight: 0,
            last_db_error: error.as_deref(),
        };
        env.store.worker_beat(&beat).await.unwrap();
    }
    env.store.worker_stopped("old-stopped").await.unwrap();
    env.exec("UPDATE mod_jetpack_workers SET last_seen_at = UTC_TIMESTAMP(6) - INTERVAL 8 DAY WHERE owner LIKE 'old%'")
        .await;
    assert_eq!(env.store.forget_old_workers().await.unwrap(), 2);
    let left = env.store.workers().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].owner, "fresh");
    assert!(
        left[0]
            .last_db_error
            .as_deref()
            .unwrap()
            .ends_with(" … [cut]")
    );
    let plan = sqlx::query(
        "EXPLAIN DELETE FROM mod_jetpack_workers WHERE last_seen_at < UTC_TIMESTAMP(6) - INTERVAL 604800 SECOND",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    let key: Option<String> = plan[0].try_get("key").unwrap();
    assert_eq!(key.as_deref(), Some("seen"));
}

/// A heartbeat write that fails (here: the table is gone) breaks nothing: the task goes on,
/// keeps the error as the last database error, and the next beat after the table is back
/// writes the row with that error in it.
#[sqlx::test]
async fn a_failing_heartbeat_write_is_retried_and_reported_as_the_last_database_error(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let worker = env.worker();
    let create: String = sqlx::query("SHOW CREATE TABLE mod_jetpack_workers")
        .fetch_one(&env.db)
        .await
        .unwrap()
        .get(1);
    env.exec("DROP TABLE mod_jetpack_workers").await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(jetpack_worker::ops::presence::keep(
        worker.store().clone(),
        worker.settings().owner.clone(),
        worker.vitals().clone(),
        stop.clone(),
    ));
    until(Duration::from_secs(5), "the failed beat", || async {
        worker.health().last_error().is_some()
    })
    .await;
    env.exec(&create).await;
    until(Duration::from_secs(10), "the row", || async {
        !env.store.workers().await.unwrap().is_empty()
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let rows = env.store.workers().await.unwrap();
    let error = rows[0].last_db_error.as_deref().unwrap_or_default();
    assert!(error.contains("mod_jetpack_workers"), "{error}");
    assert!(!error.contains(crate::helpers::SECRET));
}
