//! Hold / Resume per partner account (`mod_jetpack_holds`, recorded by the queue dashboard):
//! a held account's jobs stay queued with no partner call and no attempt counted, `status`
//! lists the hold, another account's jobs run meanwhile, and on Resume the held jobs run in
//! their order.

use jetpack_worker::domain::{Action, JobState, RequestedBy};
use sqlx::mysql::MySqlPool;

use crate::helpers::{CLIENT_ID, Env, SECRET, fast_settings};

#[sqlx::test]
async fn a_held_accounts_jobs_stay_queued_without_a_call_and_run_in_order_on_resume(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let mut held = Vec::new();
    for site in ["hold-a.example", "hold-b.example", "hold-c.example"] {
        let sid = env.service(pid, "Active", site, "admin", "premium").await;
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
        held.push(sid);
    }
    env.store
        .hold(CLIENT_ID, "admin:1", "rotating credentials")
        .await
        .unwrap();
    let worker = env.worker();

    let summary = worker.run_once().await.unwrap();
    assert_eq!((summary.processed, summary.held), (0, 3), "{summary:?}");
    assert!(
        env.sandbox.state().arrivals().is_empty(),
        "a held account's jobs made a partner call"
    );
    for &sid in &held {
        let job = env.job(sid).await;
        assert_eq!((job.state, job.attempts), (JobState::Queued, 0), "{sid}");
        assert!(job.due_in > 0, "held jobs wait for the next look");
    }
    let report = env.store.status_report(10).await.unwrap();
    assert_eq!(report.holds.len(), 1);
    assert_eq!(report.holds[0].account, CLIENT_ID);
    assert_eq!(report.holds[0].reason, "rotating credentials");

    let due_order: Vec<u32> =
        sqlx::query_scalar("SELECT service_id FROM mod_jetpack_jobs ORDER BY run_at, id")
            .fetch_all(&env.db)
            .await
            .unwrap();
    let mut expected: Vec<u32> = held.iter().map(|s| s.0).collect();
    expected.sort_unstable();
    assert_eq!(due_order, expected, "held back in their order");

    assert!(env.store.resume(CLIENT_ID).await.unwrap());
    assert!(!env.store.resume(CLIENT_ID).await.unwrap(), "resumed once");
    // The worker rereads the holds on its next poll; the held jobs are due after the recheck
    // (made due now here, keeping their order).
    env.exec("UPDATE mod_jetpack_jobs SET run_at = run_at - INTERVAL 1 MINUTE")
        .await;
    // One at a time, so the order they finish in is the order they were claimed in.
    let one = env.worker_with(env.store.clone(), fast_settings(1));
    let summary = one.run_once().await.unwrap();
    assert_eq!((summary.processed, summary.held), (3, 0), "{summary:?}");
    let finished: Vec<u32> = sqlx::query_scalar(
        "SELECT service_id FROM mod_jetpack_jobs WHERE state = 'done' ORDER BY finished_at, id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(finished, expected, "resumed in their order");
    assert!(env.store.status_report(10).await.unwrap().holds.is_empty());
}

#[sqlx::test]
async fn another_accounts_jobs_run_while_one_account_is_held(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let runs_pid = env.product("").await;
    let other = "other-client";
    let held_pid = env
        .product_with(
            "",
            other,
            SECRET,
            &[
                "Site URL|Your WordPress site",
                "Local User",
                "Plan",
                "jetpack_provisioning_details|Jetpack Provisioning Details",
            ],
        )
        .await;
    let runs = env
        .service(runs_pid, "Active", "runs-acct.example", "admin", "premium")
        .await;
    let waits = env
        .service(held_pid, "Active", "held-acct.example", "admin", "premium")
        .await;
    for sid in [runs, waits] {
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }
    env.store.hold(other, "admin:1", "").await.unwrap();
    let summary = env.worker().run_once().await.unwrap();
    assert_eq!((summary.processed, summary.held), (1, 1), "{summary:?}");
    assert_eq!(env.job(runs).await.state, JobState::Done);
    let job = env.job(waits).await;
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
}

#[sqlx::test]
async fn status_lists_the_held_accounts_as_text_and_json(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (url, api) = (
        crate::cli::database_url(&env.db).await,
        env.sandbox.base_url(),
    );
    assert!(
        crate::liveness::status_text(&url, &api)
            .await
            .contains("partner accounts on hold (their jobs stay queued, no call made): 0\n")
    );
    env.store
        .hold("partner-eu-2", "admin:3", "rotating credentials")
        .await
        .unwrap();

    let text = crate::liveness::status_text(&url, &api).await;
    let json = crate::liveness::status_json(&url, &api).await;

    assert!(
        text.contains("partner accounts on hold (their jobs stay queued, no call made): 1\n  client id partner-eu-2 held 20"),
        "{text}"
    );
    assert!(
        text.contains(" by admin:3: rotating credentials\n"),
        "{text}"
    );
    assert_eq!(json["holds"][0]["account"], "partner-eu-2");
    assert_eq!(json["holds"][0]["held_by"], "admin:3");
    assert_eq!(json["holds"][0]["reason"], "rotating credentials");
}
