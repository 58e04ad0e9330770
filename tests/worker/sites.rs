//! Site-level safety and identity that survives edits (issue 18, points 3 and 4): several
//! targets (services, addons) holding plans on one site, a service deleted while its provision
//! is in flight, and an addon moved to another service, through real WHMCS rows, the worker
//! and the sandbox.

use std::time::Duration;

use jetpack_sandbox::ScriptedReply;
use jetpack_worker::domain::{Action, RequestedBy, ServiceId, Target};
use jetpack_worker::lifecycle::RequestKind;
use sqlx::mysql::MySqlPool;

use crate::addons::{addon, addon_def, addon_details, addon_status, hosting};
use crate::helpers::{CLIENT_ID, Env, SECRET, key, until};

/// Addon settings: credentials, plan premium, Local User default `admin`.
const ADDON_PREMIUM: &[(u8, &str)] = &[(1, CLIENT_ID), (2, SECRET), (3, "premium"), (6, "admin")];

async fn run(env: &Env) {
    env.worker().run_once().await.unwrap();
}

async fn enqueue(env: &Env, target: impl Into<Target>, kind: impl Into<RequestKind>) {
    env.store
        .enqueue(target, kind, RequestedBy::Module)
        .await
        .unwrap();
}

/// (action, state, last_error) of the target's latest job.
async fn latest(env: &Env, target: impl Into<Target>) -> (String, String, Option<String>) {
    let j = env
        .store
        .latest_job(target.into())
        .await
        .unwrap()
        .expect("a job");
    (j.action.to_string(), j.state.to_string(), j.last_error)
}

async fn plan_at(env: &Env, site: &str) -> Option<String> {
    env.sandbox.state().plan(site).map(|p| p.slug)
}

async fn set_plan_field(env: &Env, sid: ServiceId, plan: &str) {
    env.exec(&format!(
        "UPDATE tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid \
         SET v.value = '{plan}' WHERE v.relid = {sid} AND f.type = 'product' AND f.fieldname = 'Plan'"
    ))
    .await;
}

/// Two services hold premium on one site: terminating the first leaves the plan (no cancel
/// call), drops only its own ledger row and says who still holds it; a third whose service
/// was Cancelled in WHMCS does not count as a holder, so terminating the second cancels.
#[sqlx::test]
async fn terminating_one_of_two_services_on_a_site_leaves_the_plan_the_other_holds(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "shared.example";
    let first = env.service(pid, "Active", site, "admin", "premium").await;
    let second = env.service(pid, "Active", site, "admin", "premium").await;
    for sid in [first, second] {
        enqueue(&env, sid, Action::Provision).await;
        run(&env).await;
    }
    assert_eq!(plan_at(&env, site).await.as_deref(), Some("premium"));

    enqueue(&env, first, Action::Terminate).await;
    run(&env).await;

    assert_eq!(latest(&env, first).await.1, "done");
    assert_eq!(env.status(first).await, "Terminated");
    assert_eq!(env.sandbox.state().calls(site).cancel, 0);
    assert_eq!(plan_at(&env, site).await.as_deref(), Some("premium"));
    assert!(env.store.ledger(first).await.unwrap().is_empty());
    assert_eq!(env.store.ledger(second).await.unwrap().len(), 1);
    let said = format!(
        "left the Jetpack plan on {site} in place: Service ID: {second} still holds premium"
    );
    let details = env.details(first).await.unwrap();
    assert!(details.contains(&said), "{details}");
    let lines = env.activity(first).await;
    assert!(lines.last().unwrap().contains(&said), "{lines:?}");

    // A third service on the site, Cancelled in WHMCS with its ledger row still there: not
    // a live holder, so the second's terminate cancels the site's plan.
    let third = env.service(pid, "Active", site, "admin", "premium").await;
    enqueue(&env, third, Action::Provision).await;
    run(&env).await;
    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = 'Cancelled' WHERE id = {third}"
    ))
    .await;
    enqueue(&env, second, Action::Terminate).await;
    run(&env).await;
    assert_eq!(latest(&env, second).await.1, "done");
    assert_eq!(env.sandbox.state().calls(site).cancel_ok, 1);
    assert_eq!(plan_at(&env, site).await, None);
    let details = env.details(second).await.unwrap();
    assert_eq!(
        details,
        format!("The Jetpack plan for {site} was cancelled.")
    );
}

/// A service with personal and an addon with premium on the same site: the service's
/// terminate leaves the plan the addon holds (same family), and says the addon holds it.
#[sqlx::test]
async fn a_family_plan_an_addon_holds_survives_the_services_terminate(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "family.example";
    let sid = env.service(pid, "Active", site, "admin", "personal").await;
    let parent = hosting(&env, site).await;
    let def = addon_def(&env, "", ADDON_PREMIUM, &["jetpack_provisioning_details"]).await;
    let extra = addon(&env, def, parent, "Active", &[]).await;
    enqueue(&env, sid, Action::Provision).await;
    run(&env).await;
    enqueue(&env, extra, Action::Provision).await;
    run(&env).await;
    assert_eq!(plan_at(&env, site).await.as_deref(), Some("premium"));

    enqueue(&env, sid, Action::Terminate).await;
    run(&env).await;

    assert_eq!(env.status(sid).await, "Terminated");
    assert_eq!(env.sandbox.state().calls(site).cancel, 0);
    assert_eq!(plan_at(&env, site).await.as_deref(), Some("premium"));
    let details = env.details(sid).await.unwrap();
    let holder = format!("Addon ID: {} (Service ID: {parent})", extra.entity_id());
    assert!(
        details.contains(&format!("in place: {holder} still holds premium")),
        "{details}"
    );
    assert_eq!(env.store.ledger(extra).await.unwrap().len(), 1);
}

/// A change of plan down to personal while another service holds professional on the site:
/// no call (the partner refuses downgrades), done, and the details say the site keeps the
/// higher plan the other service holds.
#[sqlx::test]
async fn a_change_down_keeps_the_higher_plan_another_target_holds(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "higher.example";
    let mine = env.service(pid, "Active", site, "admin", "premium").await;
    let other = env
        .service(pid, "Active", site, "admin", "professional")
        .await;
    for sid in [mine, other] {
        enqueue(&env, sid, Action::Provision).await;
        run(&env).await;
    }
    set_plan_field(&env, mine, "personal").await;
    let calls_before = env.sandbox.state().calls(site).provision;

    enqueue(&env, mine, RequestKind::Change).await;
    run(&env).await;

    assert_eq!(
        latest(&env, mine).await,
        ("change".into(), "done".into(), None)
    );
    assert_eq!(env.sandbox.state().calls(site).provision, calls_before);
    assert_eq!(plan_at(&env, site).await.as_deref(), Some("professional"));
    let details = env.details(mine).await.unwrap();
    assert!(
        details.contains(&format!(
            "keeps the higher plan professional that Service ID: {other} holds"
        )),
        "{details}"
    );
    let held = env.store.ledger(mine).await.unwrap();
    assert_eq!(held[0].plan, "personal");
}

/// A service deleted from tblhosting while its provision call is in flight: the ledger row
/// keeps the product read with the claim, so the terminate the deletion records (as the
/// ServiceDelete hook does) cancels the plan with that product's credentials.
#[sqlx::test]
async fn a_service_deleted_mid_provision_is_still_cancelled(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "deleted.example";
    let sid = env.service(pid, "Pending", site, "admin", "premium").await;
    let state = env.sandbox.state();
    state.script(
        &key(site),
        vec![ScriptedReply::Slow(Duration::from_millis(1500))],
    );
    enqueue(&env, sid, Action::Provision).await;
    let worker = env.worker();
    let running = tokio::spawn(async move { worker.run_once().await.unwrap() });
    let watched = state.clone();
    until(Duration::from_secs(10), "the provision in flight", || {
        let watched = watched.clone();
        async move { watched.in_flight_acting_calls(&key(site)) == 1 }
    })
    .await;
    env.exec(&format!("DELETE FROM tblhosting WHERE id = {sid}"))
        .await;
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Hook)
        .await
        .unwrap();
    // The same run queues the terminate behind the provision and carries it out.
    running.await.unwrap();
    run(&env).await;

    assert_eq!(
        latest(&env, sid).await,
        ("terminate".into(), "done".into(), None)
    );
    assert_eq!(plan_at(&env, site).await, None);
    assert_eq!(state.calls(site).provision_ok, 1);
    assert_eq!(state.calls(site).cancel_ok, 1);
    assert!(env.store.ledger(sid).await.unwrap().is_empty());
}

/// An addon provisioned on one service and moved to another (tblhostingaddons.hostingid
/// edited): the addon's ledger is found by the addon, so a Terminate recorded under its new
/// parent cancels the old site's plan and never touches the new parent's domain.
#[sqlx::test]
async fn a_moved_addons_terminate_cancels_the_site_its_ledger_holds(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (old, new) = moved_addon(&env).await;
    let moved = Target::Addon {
        addon: addon_of(old),
        service: new,
    };

    enqueue(&env, moved, Action::Terminate).await;
    run(&env).await;

    assert_eq!(latest(&env, moved).await.1, "done");
    assert_eq!(addon_status(&env, moved).await.0, "Terminated");
    assert_eq!(plan_at(&env, "old.example").await, None);
    assert_eq!(env.sandbox.state().calls("new.example").cancel, 0);
    assert!(env.store.ledger(moved).await.unwrap().is_empty());
    assert!(env.store.ledger(old).await.unwrap().is_empty());
}

/// The moved addon's plan follows its new parent: a provision recorded under it cancels the
/// old site's plan first, then provisions the new parent's domain, and says so.
#[sqlx::test]
async fn a_moved_addons_plan_follows_its_new_parent(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (old, new) = moved_addon(&env).await;
    let moved = Target::Addon {
        addon: addon_of(old),
        service: new,
    };

    enqueue(&env, moved, Action::Provision).await;
    run(&env).await;

    assert_eq!(latest(&env, moved).await.1, "done");
    assert_eq!(plan_at(&env, "old.example").await, None);
    assert_eq!(
        plan_at(&env, "new.example").await.as_deref(),
        Some("premium")
    );
    let held = env.store.ledger(moved).await.unwrap();
    let sites: Vec<&str> = held.iter().map(|e| e.site.as_str()).collect();
    assert_eq!(sites, vec!["new.example"]);
    let details = addon_details(&env, moved).await.unwrap();
    assert!(
        details.contains("The Jetpack plan on old.example was cancelled"),
        "{details}"
    );
}

fn addon_of(t: Target) -> jetpack_worker::domain::AddonId {
    match t {
        Target::Addon { addon, .. } => addon,
        Target::Service(_) => unreachable!("an addon"),
    }
}

/// An addon provisioned for old.example (its parent's domain), then moved to a service for
/// new.example: (the addon under its old parent, the new parent).
async fn moved_addon(env: &Env) -> (Target, ServiceId) {
    let first = hosting(env, "old.example").await;
    let second = hosting(env, "new.example").await;
    let def = addon_def(env, "", ADDON_PREMIUM, &["jetpack_provisioning_details"]).await;
    let a = addon(env, def, first, "Active", &[]).await;
    enqueue(env, a, Action::Provision).await;
    run(env).await;
    assert_eq!(
        plan_at(env, "old.example").await.as_deref(),
        Some("premium")
    );
    env.exec(&format!(
        "UPDATE tblhostingaddons SET hostingid = {second} WHERE id = {}",
        a.entity_id()
    ))
    .await;
    (a, second)
}

/// A service that never held a plan (a duplicate order, terminated before its provision):
/// its terminate falls back to its Site URL, where another service holds the plan, and
/// leaves it in place (found by the model-based test: it cancelled the other's plan).
#[sqlx::test]
async fn terminating_a_service_that_never_held_a_plan_leaves_the_others_plan(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "duplicate.example";
    let holder = env.service(pid, "Active", site, "admin", "premium").await;
    let duplicate = env.service(pid, "Active", site, "admin", "premium").await;
    enqueue(&env, holder, Action::Provision).await;
    run(&env).await;
    assert!(env.store.ledger(duplicate).await.unwrap().is_empty());

    enqueue(&env, duplicate, Action::Terminate).await;
    run(&env).await;

    assert_eq!(latest(&env, duplicate).await.1, "done");
    assert_eq!(env.status(duplicate).await, "Terminated");
    assert_eq!(env.sandbox.state().calls(site).cancel, 0);
    assert_eq!(plan_at(&env, site).await.as_deref(), Some("premium"));
    assert_eq!(env.store.ledger(holder).await.unwrap().len(), 1);
}
