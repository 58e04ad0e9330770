//! The grace period on delete (issue 21, point 3): WHMCS's delete is mostly for a service added
//! to the wrong client, so a deleted service's plan is cancelled only once
//! `JETPACK_DELETE_GRACE` has passed (a day by default), and meanwhile Cancel now runs the
//! terminate at once and Keep the plan withdraws it, leaving the plan and the ledger. Each
//! test records the requests as the module does (the ServiceDelete hook's `deleted`, the queue
//! page's `cancel_now` and `keep_plan`), then runs the real worker against the sandbox.

use std::time::{Duration, Instant};

use jetpack_worker::domain::{Action, JobState, RequestedBy, ServiceId};
use jetpack_worker::store::Store;
use sqlx::Row;
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, fast_settings, until};

/// The client the services belong to (`tblhosting.userid` of the seeded services).
const CLIENT: u32 = 7;

/// A provisioned premium service on `site`, then deleted in WHMCS as an admin deletes it
/// (its row and its field values gone), and the `deleted` request the ServiceDelete hook
/// records with the client WHMCS passed.
async fn deleted_service(env: &Env, store: &Store, site: &str) -> ServiceId {
    let pid = env.product("").await;
    let sid = env.service(pid, "Active", site, "admin", "premium").await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker_with(store.clone(), fast_settings(4))
        .run_once()
        .await
        .unwrap();
    assert_eq!(plan_at(env, site).as_deref(), Some("premium"));
    env.exec(&format!(
        "DELETE FROM tblcustomfieldsvalues WHERE relid = {sid}"
    ))
    .await;
    env.exec(&format!("DELETE FROM tblhosting WHERE id = {sid}"))
        .await;
    record(env, sid, "deleted", "hook").await;
    sid
}

/// Records a request as the PHP module does (one INSERT, with the client).
async fn record(env: &Env, sid: ServiceId, kind: &str, by: &str) {
    env.exec(&format!(
        "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at, client_id)
         VALUES ({sid}, 0, '{kind}', '{by}', UTC_TIMESTAMP(6), {CLIENT})"
    ))
    .await;
}

/// A `run --once` of a fresh worker on `store` (a restart, as far as the worker knows).
async fn run(env: &Env, store: &Store) {
    env.worker_with(store.clone(), fast_settings(4))
        .run_once()
        .await
        .unwrap();
}

fn plan_at(env: &Env, site: &str) -> Option<String> {
    env.sandbox.state().plan(site).map(|p| p.slug)
}

/// (action, state, seconds until run_at, seconds until grace_until, result) of the latest job.
async fn latest(env: &Env, sid: ServiceId) -> (String, String, i64, Option<i64>, Option<String>) {
    let r = sqlx::query(
        "SELECT action, state, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), run_at) AS due_in,
                TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), grace_until) AS grace_in, result
         FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(sid)
    .fetch_one(&env.db)
    .await
    .unwrap();
    (
        r.get("action"),
        r.get("state"),
        r.get("due_in"),
        r.get("grace_in"),
        r.get("result"),
    )
}

/// The decision written on the latest request of `kind` by the module (requested by the
/// hook or an admin, not the worker's own sweep).
async fn decision(env: &Env, sid: ServiceId, kind: &str) -> String {
    sqlx::query_scalar(
        "SELECT decision FROM mod_jetpack_requests WHERE service_id = ? AND action = ?
           AND requested_by IN ('hook', 'admin')
         ORDER BY id DESC LIMIT 1",
    )
    .bind(sid)
    .bind(kind)
    .fetch_one(&env.db)
    .await
    .unwrap()
}

/// (site, plan) of each ledger row of the service.
async fn ledger(env: &Env, sid: ServiceId) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = env
        .store
        .ledger(sid)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.site, e.plan))
        .collect();
    rows.sort();
    rows
}

async fn requests(env: &Env) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM mod_jetpack_requests")
        .fetch_one(&env.db)
        .await
        .unwrap()
}

/// The reconciler looks at every watched site now: a plan waiting out its grace period (or
/// kept) is not drift to act on.
async fn reconcile_now(env: &Env, store: &Store) {
    env.exec("UPDATE mod_jetpack_watch SET next_check_at = UTC_TIMESTAMP(6)")
        .await;
    let w = env.worker_with(store.clone(), fast_settings(4));
    assert!(
        w.reconcile_once().await.unwrap() > 0,
        "a site was looked at"
    );
    // A second look (a finding is confirmed before anything is done).
    env.exec("UPDATE mod_jetpack_watch SET next_check_at = UTC_TIMESTAMP(6)")
        .await;
    w.reconcile_once().await.unwrap();
}

/// The terminate a deletion queues waits out the grace period: a worker run, a restart and the
/// reconciler meanwhile cancel nothing; once it has passed the plan is cancelled.
#[sqlx::test]
async fn a_deleted_services_plan_is_cancelled_only_after_the_grace_period(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let grace = Duration::from_secs(3);
    let store = env.store.clone().with_delete_grace(grace);
    let site = "deleted.example";
    let sid = deleted_service(&env, &store, site).await;
    let deleted_at = Instant::now();

    run(&env, &store).await;
    let (action, state, due_in, grace_in, _) = latest(&env, sid).await;
    assert_eq!((action.as_str(), state.as_str()), ("terminate", "queued"));
    assert!((1..=3).contains(&due_in), "due after the grace: {due_in}");
    assert_eq!(grace_in, Some(due_in), "in its grace period until then");
    let said = decision(&env, sid, "deleted").await;
    assert!(
        said.contains("due when the deletion grace period ends"),
        "{said}"
    );

    // A restart of the worker and the reconciler meanwhile change nothing.
    run(&env, &store).await;
    reconcile_now(&env, &store).await;
    let state = env.sandbox.state();
    assert_eq!(plan_at(&env, site).as_deref(), Some("premium"));
    assert_eq!(state.calls(site).cancel, 0);
    assert_eq!(ledger(&env, sid).await.len(), 1);
    assert_eq!(latest(&env, sid).await.1, "queued");
    // The provision, the hook's deletion and the sweep's (the safety net saw it too).
    assert_eq!(requests(&env).await, 3, "no request from the reconciler");

    until(
        Duration::from_secs(15),
        "the grace period to pass",
        || async {
            run(&env, &store).await;
            latest(&env, sid).await.1 == "done"
        },
    )
    .await;
    assert!(deleted_at.elapsed() >= grace - Duration::from_millis(500));
    assert_eq!(plan_at(&env, site), None, "cancelled after the grace");
    assert_eq!(state.calls(site).cancel_ok, 1);
    assert!(ledger(&env, sid).await.is_empty());
    let grace_in = latest(&env, sid).await.3;
    assert!(
        grace_in.unwrap_or(0) <= 0,
        "its grace period is over: {grace_in:?}"
    );
}

/// Cancel now (the queue page's `cancel_now`) runs the waiting terminate at once; the default
/// grace period is a day.
#[sqlx::test]
async fn cancel_now_cancels_a_deleted_services_plan_at_once(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let store = env.store.clone();
    let site = "cancel-now.example";
    let sid = deleted_service(&env, &store, site).await;
    run(&env, &store).await;
    let (_, state, due_in, grace_in, _) = latest(&env, sid).await;
    assert_eq!(state, "queued");
    assert!((86_390..=86_400).contains(&due_in), "a day: {due_in}");
    assert!(grace_in.is_some());

    record(&env, sid, "cancel_now", "admin").await;
    run(&env, &store).await;

    assert!(decision(&env, sid, "cancel_now").await.contains("due now"));
    assert_eq!(latest(&env, sid).await.1, "done");
    assert_eq!(plan_at(&env, site), None);
    assert_eq!(env.sandbox.state().calls(site).cancel_ok, 1);
    assert!(ledger(&env, sid).await.is_empty());
}

/// Keep the plan withdraws the terminate: the plan stays at the partner and in the ledger
/// (marked kept), the client's activity log says so, and nothing brings the cancel back: not
/// time passing, not the deleted-service sweep, not the reconciler, not a late Cancel now.
#[sqlx::test]
async fn keep_the_plan_leaves_the_plan_and_the_ledger(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let store = env.store.clone();
    let site = "keep.example";
    let sid = deleted_service(&env, &store, site).await;
    let before = ledger(&env, sid).await;
    run(&env, &store).await;

    record(&env, sid, "keep_plan", "admin").await;
    run(&env, &store).await;

    let (action, state, _, grace_in, result) = latest(&env, sid).await;
    assert_eq!(
        (action.as_str(), state.as_str()),
        ("terminate", "cancelled")
    );
    assert_eq!(grace_in, None);
    assert!(result.unwrap().starts_with("kept: "));
    assert!(
        decision(&env, sid, "keep_plan")
            .await
            .contains("the plan is kept")
    );
    assert_eq!(ledger(&env, sid).await, before, "the ledger as it was");
    let kept: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mod_jetpack_ledger WHERE service_id = ? AND kept_at IS NOT NULL",
    )
    .bind(sid)
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(kept, 1);
    let line: (String, u32) = sqlx::query_as(
        "SELECT description, userid FROM tblactivitylog WHERE description LIKE '%Keep the plan%'",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert!(
        line.0.starts_with(&format!(
            "JETPACK MODULE: Service ID: {sid} was deleted in WHMCS and an admin chose Keep the plan"
        )),
        "{}",
        line.0
    );
    assert_eq!(line.1, CLIENT, "in the client's activity log");

    // Nothing brings the cancel back: not the sweep (even one that never marked the service).
    env.exec("DELETE FROM mod_jetpack_adoption_marks").await;
    let swept = store.sweep_deleted(0, 50).await.unwrap();
    assert_eq!(swept.requested, 0, "the sweep leaves a kept plan alone");
    record(&env, sid, "cancel_now", "admin").await;
    env.make_due().await;
    run(&env, &store).await;
    assert!(
        decision(&env, sid, "cancel_now")
            .await
            .starts_with("nothing to do")
    );
    reconcile_now(&env, &store).await;
    run(&env, &store).await;
    assert_eq!(plan_at(&env, site).as_deref(), Some("premium"));
    assert_eq!(env.sandbox.state().calls(site).cancel, 0);
    assert_eq!(ledger(&env, sid).await, before);
    // The provision, the hook's and the sweep's deletions, Keep the plan and Cancel now.
    assert_eq!(
        requests(&env).await,
        5,
        "no request from the sweep or the reconciler"
    );
}

/// `JETPACK_DELETE_GRACE=0s`: a deleted service's plan is cancelled at once, as before.
#[sqlx::test]
async fn a_grace_of_zero_cancels_at_once(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let store = env.store.clone().with_delete_grace(Duration::ZERO);
    let site = "no-grace.example";
    let sid = deleted_service(&env, &store, site).await;

    run(&env, &store).await;

    assert_eq!(latest(&env, sid).await.1, "done");
    assert_eq!(plan_at(&env, site), None);
    assert!(ledger(&env, sid).await.is_empty());
}

/// The deleted-service sweep (the hook's safety net) records a `deleted` request too, and a
/// deletion seen by both the hook and the sweep queues one terminate.
#[sqlx::test]
async fn the_sweep_and_the_hook_record_one_deletion_with_its_grace_period(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let store = env.store.clone();
    let sid = deleted_service(&env, &store, "swept.example").await;
    run(&env, &store).await;

    let asked: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, requested_by, decision FROM mod_jetpack_requests
         WHERE service_id = ? AND action = 'deleted' ORDER BY id",
    )
    .bind(sid)
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[1].1, "adopt", "the sweep's");
    assert!(asked[1].2.contains("already cancels the plan"), "{asked:?}");
    let jobs = env.jobs(sid).await;
    assert_eq!(jobs.len(), 2, "the provision and one terminate: {jobs:?}");
    assert_eq!(jobs[1].1, JobState::Queued.as_str());
    assert!(latest(&env, sid).await.3.is_some(), "in its grace period");

    // The sweep alone (no hook: hooks.php not loaded yet) gives the same grace period.
    let pid = env.product("").await;
    let alone = env
        .service(pid, "Active", "alone.example", "admin", "premium")
        .await;
    env.store
        .enqueue(alone, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    run(&env, &store).await;
    env.exec(&format!("DELETE FROM tblhosting WHERE id = {alone}"))
        .await;
    run(&env, &store).await;
    let (action, state, due_in, _, _) = latest(&env, alone).await;
    assert_eq!((action.as_str(), state.as_str()), ("terminate", "queued"));
    assert!(due_in > 86_000, "{due_in}");
    assert_eq!(plan_at(&env, "alone.example").as_deref(), Some("premium"));
}

/// Another service's terminate on the same site leaves the plan a deleted service holds while
/// it waits out its grace period: the plan is not the other's to cancel early.
#[sqlx::test]
async fn a_terminate_on_the_site_leaves_a_plan_in_its_grace_period(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let store = env.store.clone();
    let site = "shared-grace.example";
    let pid = env.product("").await;
    let other = env.service(pid, "Active", site, "admin", "premium").await;
    let sid = deleted_service(&env, &store, site).await;
    env.store
        .enqueue(other, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    run(&env, &store).await;
    assert_eq!(latest(&env, sid).await.1, "queued");

    env.store
        .enqueue(other, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    run(&env, &store).await;

    assert_eq!(latest(&env, other).await.1, "done");
    assert_eq!(plan_at(&env, site).as_deref(), Some("premium"));
    assert_eq!(env.sandbox.state().calls(site).cancel, 0);
    assert_eq!(ledger(&env, sid).await.len(), 1);
}
