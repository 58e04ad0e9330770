//! The concurrency bounds partner-API calls in flight, as the partner sees them (the sandbox
//! counts them), while the engine keeps a few jobs claimed ahead of the free call slots; a
//! stop never starts the call of a job claimed ahead: it is given back unstarted.

use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Env, fast_settings};
use crate::service::seed;

async fn count(env: &Env, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&env.db)
        .await
        .unwrap()
}

const RUNNING: &str = "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'running'";

/// The sandbox's total of provision calls.
fn provisions(env: &Env) -> u64 {
    let calls = env.sandbox.state().all_calls();
    calls.values().map(|c| c.provision).sum()
}

#[sqlx::test]
async fn calls_in_flight_never_exceed_the_concurrency_during_a_drain(pool: MySqlPool) {
    const N: usize = 120;
    let env = Env::new(pool).await;
    seed(&env, N).await;
    let state = env.sandbox.state();
    state.set_latency(Duration::from_millis(30));
    state.reset_peak_calls_in_flight();
    // Concurrency 8: 4 jobs claimed ahead, at most 8 + 4 + 3 × 8 held.
    let worker = env.worker_with(env.store.clone(), fast_settings(8));
    let drain = tokio::spawn(async move { worker.run_once().await.unwrap() });
    let mut most_running = 0;
    while !drain.is_finished() {
        most_running = most_running.max(count(&env, RUNNING).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let summary = drain.await.unwrap();
    assert_eq!(summary.processed, N as u64);
    let done = count(
        &env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'",
    )
    .await;
    assert_eq!(done, N as i64);
    assert_eq!(provisions(&env), N as u64, "one provision call per job");
    let peak = state.peak_calls_in_flight();
    assert!(
        (6..=8).contains(&peak),
        "the drain kept close to 8 calls in flight and never more: {peak}"
    );
    assert!(
        most_running <= 8 + 4 + 3 * 8,
        "held at most 8 in their calls, 4 ahead and 24 being written: {most_running}"
    );
}

#[sqlx::test]
async fn a_stop_never_starts_the_call_of_a_job_claimed_ahead(pool: MySqlPool) {
    let env = Env::new(pool).await;
    seed(&env, 20).await;
    let state = env.sandbox.state();
    // Calls of 1 s, well inside the drain timeout (5 s): the calls in flight at the stop
    // finish, and their slots come free during the drain.
    state.set_latency(Duration::from_secs(1));
    let worker = env.worker_with(env.store.clone(), fast_settings(8));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        async move { worker.run(shutdown).await.unwrap() }
    });
    // 8 in their calls and 4 claimed ahead, waiting for a slot.
    let start = Instant::now();
    while state.calls_in_flight() < 8 || count(&env, RUNNING).await < 12 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the worker did not fill its slots"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&env, RUNNING).await, 12);
    shutdown.cancel();
    run.await.unwrap();

    assert_eq!(
        provisions(&env),
        8,
        "only the calls in flight at the stop were made"
    );
    let done = count(
        &env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'",
    )
    .await;
    assert_eq!(done, 8, "the calls in flight finished within the drain");
    let given_back = count(
        &env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'queued' AND attempts = 0
         AND lease_owner IS NULL AND outcome_unknown = 0",
    )
    .await;
    assert_eq!(
        given_back, 12,
        "the 4 ahead given back unstarted, 8 never claimed"
    );
    assert_eq!(count(&env, RUNNING).await, 0);

    // The rest run once each, without a status call first (nothing was in doubt).
    state.set_latency(Duration::ZERO);
    let summary = worker.run_once().await.unwrap();
    assert_eq!(summary.processed, 12);
    assert_eq!(provisions(&env), 20);
    let statuses: u64 = state.all_calls().values().map(|c| c.status).sum();
    assert_eq!(statuses, 0);
}
