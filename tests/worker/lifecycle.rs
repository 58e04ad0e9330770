//! The promise of a job's life, attacked: requests that cross a running job in every order,
//! and the request made last winning even with the lower id. The ledger's side is `ledger`,
//! refused outcome writes `outcome_writes`, the seeded model-based test `model`.

use std::time::Duration;

use jetpack_sandbox::ScriptedReply;
use jetpack_worker::domain::{Action, RequestedBy, ServiceId, Target};
use jetpack_worker::lifecycle::RequestKind;
use sqlx::mysql::MySqlPool;

use jetpack_worker::catalogue::StatusChange;
use jetpack_worker::store::{Finish, WhmcsWrites};

use crate::helpers::{Env, until};
use crate::scenario::{ask, latest, quiescent, start};

#[sqlx::test]
async fn terminate_then_create_while_a_provision_runs_ends_provisioned(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "cross1.example", "admin", "premium")
        .await;
    let state = env.sandbox.state();
    state.script(
        "cross1.example",
        vec![ScriptedReply::Slow(Duration::from_millis(1500))],
    );
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let running = start(&env.worker());
    until(Duration::from_secs(10), "the provision call", || async {
        state.in_flight_acting_calls("cross1.example") == 1
    })
    .await;
    ask(&env, sid, RequestKind::Terminate).await;
    ask(&env, sid, RequestKind::Provision).await;
    until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
    running.stop().await;

    assert!(state.plan("cross1.example").is_some(), "the plan is live");
    assert_eq!(
        state.calls("cross1.example").cancel,
        0,
        "nothing was cancelled"
    );
    assert_eq!(env.status(sid).await, "Active");
    assert_eq!(latest(&env, sid).await, ("provision".into(), "done".into()));
    assert!(state.overlapping_acting_calls().is_empty());
}

/// A Create asked while a terminate runs: WHMCS sets the service Active for the Create, the
/// terminate's end writes Terminated, and the provision that follows makes it Active again
/// (found by the model-based test: it stayed Terminated with a live plan).
#[sqlx::test]
async fn create_while_a_terminate_runs_ends_active_with_the_plan(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "cross5.example";
    let sid = env.service(pid, "Active", site, "admin", "premium").await;
    let state = env.sandbox.state();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    state.script(site, vec![ScriptedReply::Slow(Duration::from_millis(1500))]);
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    let running = start(&env.worker());
    until(Duration::from_secs(10), "the cancel call", || async {
        state.in_flight_acting_calls(site) == 1
    })
    .await;
    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = 'Active' WHERE id = {sid}"
    ))
    .await;
    ask(&env, sid, RequestKind::Provision).await;
    until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
    running.stop().await;

    assert!(state.plan(site).is_some(), "the plan is live");
    assert_eq!(latest(&env, sid).await, ("provision".into(), "done".into()));
    assert_eq!(env.status(sid).await, "Active");
}

/// A Suspend asked while a terminate runs: WHMCS shows Suspended, and the terminate's end must
/// not write Terminated over it, since the suspend is the latest intent (found by the
/// model-based test once it drew suspends: the service ended Terminated).
#[sqlx::test]
async fn suspend_while_a_terminate_runs_ends_suspended(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption7 = 'cancel' WHERE id = {pid}"
    ))
    .await;
    let site = "cross6.example";
    let sid = env.service(pid, "Active", site, "admin", "premium").await;
    let state = env.sandbox.state();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    state.script(site, vec![ScriptedReply::Slow(Duration::from_millis(1500))]);
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    let running = start(&env.worker());
    until(Duration::from_secs(10), "the cancel call", || async {
        state.in_flight_acting_calls(site) == 1
    })
    .await;
    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = 'Suspended' WHERE id = {sid}"
    ))
    .await;
    ask(&env, sid, RequestKind::Suspend).await;
    until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
    running.stop().await;

    assert!(state.plan(site).is_none(), "the plan is cancelled");
    assert_eq!(latest(&env, sid).await, ("suspend".into(), "done".into()));
    assert_eq!(env.status(sid).await, "Suspended");
}

/// Claims the targets' due jobs and ends each as a terminate that cancelled the plan (status
/// Terminated asked), asserting each write held its lease.
async fn end_terminates(env: &Env, targets: &[ServiceId]) {
    let claimed = env
        .store
        .claim("w", 8, Duration::from_secs(30))
        .await
        .unwrap();
    for target in targets {
        let job = claimed
            .iter()
            .find(|j| j.target == Target::Service(*target))
            .unwrap();
        let whmcs = WhmcsWrites {
            status: Some(StatusChange::Terminate),
            ..WhmcsWrites::default()
        };
        let written = env
            .store
            .finish(job, &Finish::done("cancelled".into(), whmcs))
            .await
            .unwrap();
        assert!(written, "{target}");
    }
}

/// The same crossing when the Suspend is recorded by the module while the terminate runs but
/// not yet applied when it ends (the worker looks for requests once per poll): the
/// terminate's end must not write Terminated over the Suspended WHMCS set (the model found
/// it: seed 874599820050514899); the Suspend's own job decides the rest.
#[sqlx::test]
async fn a_terminate_ending_before_a_recorded_suspend_is_applied_leaves_suspended(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "cross7.example", "admin", "premium")
        .await;
    // The CLI's request, recorded before it applies it (the model found that window too:
    // seed 3228285577283031968), counts the same.
    let by_cli = env
        .service(pid, "Active", "cross9.example", "admin", "premium")
        .await;
    for (target, by) in [(sid, RequestedBy::Module), (by_cli, RequestedBy::Cli)] {
        env.store
            .enqueue(target, Action::Terminate, by)
            .await
            .unwrap();
    }
    // While the terminates run, WHMCS (or the model) sets Suspended and the Suspends are
    // recorded, not yet applied.
    for (target, by) in [(sid, RequestedBy::Module), (by_cli, RequestedBy::Cli)] {
        env.exec(&format!(
            "UPDATE tblhosting SET domainstatus = 'Suspended' WHERE id = {target}"
        ))
        .await;
        env.store
            .record_request(target, RequestKind::Suspend, by)
            .await
            .unwrap();
    }
    end_terminates(&env, &[sid, by_cli]).await;
    for target in [sid, by_cli] {
        assert_eq!(env.status(target).await, "Suspended", "{target}");
    }
    // Without a request waiting, the same end writes Terminated (the enqueue applies the
    // Suspend above too: its job is claimed beside this one and left alone).
    let other = env
        .service(pid, "Active", "cross8.example", "admin", "premium")
        .await;
    env.store
        .enqueue(other, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    end_terminates(&env, &[other]).await;
    assert_eq!(env.status(other).await, "Terminated");
}

/// A ChangePackage recorded while a terminate runs, not yet applied when it ends: WHMCS sets
/// no status for ChangePackage, so the terminate's end writes Terminated (the change is then
/// ignored: the plan is cancelled). Before, any waiting request held the status write back
/// and the service stayed Active with no plan (the model found it: seed 7311939851342663872).
#[sqlx::test]
async fn a_change_recorded_while_a_terminate_runs_does_not_hold_terminated_back(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "cross10.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Cli)
        .await
        .unwrap();
    env.store
        .record_request(sid, RequestKind::Change, RequestedBy::Module)
        .await
        .unwrap();
    end_terminates(&env, &[sid]).await;
    assert_eq!(env.status(sid).await, "Terminated");
}

#[sqlx::test]
async fn create_then_terminate_while_a_terminate_runs_ends_terminated(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "cross2.example", "admin", "premium")
        .await;
    let state = env.sandbox.state();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert!(state.plan("cross2.example").is_some());

    state.script(
        "cross2.example",
        vec![ScriptedReply::Slow(Duration::from_millis(1500))],
    );
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    let running = start(&env.worker());
    until(Duration::from_secs(10), "the cancel call", || async {
        state.in_flight_acting_calls("cross2.example") == 1
    })
    .await;
    ask(&env, sid, RequestKind::Provision).await;
    ask(&env, sid, RequestKind::Terminate).await;
    until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
    running.stop().await;

    assert!(
        state.plan("cross2.example").is_none(),
        "no plan is left live"
    );
    assert_eq!(
        state.calls("cross2.example").provision,
        1,
        "no second provision"
    );
    assert_eq!(env.status(sid).await, "Terminated");
    assert_eq!(latest(&env, sid).await, ("terminate".into(), "done".into()));
}

#[sqlx::test]
async fn crossed_requests_in_every_order_end_as_the_last_one_asks(pool: MySqlPool) {
    use RequestKind::{Provision as P, Terminate as T};
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let state = env.sandbox.state();
    let running = start(&env.worker());
    let orders: [&[RequestKind]; 6] = [&[T], &[P], &[T, P], &[P, T], &[T, P, T], &[P, T, P]];
    for (first, name) in [(Action::Provision, "p"), (Action::Terminate, "t")] {
        for (i, after) in orders.iter().enumerate() {
            let site = format!("cross-{name}{i}.example");
            let sid = env.service(pid, "Active", &site, "admin", "premium").await;
            if first == Action::Terminate {
                env.store
                    .enqueue(sid, Action::Provision, RequestedBy::Cli)
                    .await
                    .unwrap();
                until(Duration::from_secs(10), "provisioned", || {
                    quiescent(&env.db)
                })
                .await;
            }
            state.script(&site, vec![ScriptedReply::Slow(Duration::from_millis(600))]);
            env.store
                .enqueue(sid, first, RequestedBy::Cli)
                .await
                .unwrap();
            until(Duration::from_secs(10), "the first call", || async {
                state.in_flight_acting_calls(&site) == 1
            })
            .await;
            for kind in after.iter() {
                ask(&env, sid, *kind).await;
            }
            until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
            let last = after.last().copied().unwrap_or(first.into());
            let live = state.plan(&site).is_some();
            match last {
                RequestKind::Provision => {
                    assert!(live, "{name} {after:?}: the plan is live");
                    assert_eq!(latest(&env, sid).await.0, "provision", "{name} {after:?}");
                }
                _ => {
                    assert!(!live, "{name} {after:?}: no plan is left");
                    assert_eq!(env.status(sid).await, "Terminated", "{name} {after:?}");
                }
            }
        }
    }
    running.stop().await;
    assert!(state.overlapping_acting_calls().is_empty());
}

/// On a multi-primary Galera cluster ids interleave by node (`auto_increment_offset`): a
/// Terminate made on one node after a Create made on another can get the lower id. The latest
/// intent is the request made last (`created_at`, the database's clock), not the highest id.
#[sqlx::test]
async fn the_request_made_last_wins_even_with_the_lower_id(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "interleaved.example", "admin", "premium")
        .await;
    // Node 1 records the Create as id 20; a second later node 2 records the Terminate as id 10.
    env.exec(&format!(
        "INSERT INTO mod_jetpack_requests (id, service_id, action, requested_by, created_at) VALUES
           (20, {sid}, 'provision', 'module', UTC_TIMESTAMP(6) - INTERVAL 2 SECOND),
           (10, {sid}, 'terminate', 'module', UTC_TIMESTAMP(6) - INTERVAL 1 SECOND)"
    ))
    .await;
    let applied = env.store.apply_requests().await.unwrap();
    let order: Vec<u64> = applied.iter().map(|a| a.request.0).collect();
    assert_eq!(order, [20, 10], "applied in the order they were made");
    let jobs = env.jobs(sid).await;
    assert_eq!(
        jobs,
        [
            ("provision".to_owned(), "cancelled".to_owned()),
            ("terminate".to_owned(), "queued".to_owned())
        ],
        "the Terminate, made last, is the intent that stands"
    );
    env.worker().run_once().await.unwrap();
    let state = env.sandbox.state();
    assert_eq!(state.calls("interleaved.example").provision, 0);
    assert!(state.plan("interleaved.example").is_none());
}
