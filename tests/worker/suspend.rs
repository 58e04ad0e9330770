//! WHMCS's Suspend and Unsuspend, the first actions added through the catalogue: the product
//! setting *When WHMCS suspends the service* keeps the plan (the default: no call, the client
//! keeps the activation link) or cancels it and provisions it again on unsuspend; requests
//! that cross a suspension (a terminate, an unsuspend, a change of plan) end as the latest
//! intent says, and WHMCS's status follows what happened.

use jetpack_worker::domain::JobState;
use jetpack_worker::domain::{Action, RequestedBy, ServiceId};
use jetpack_worker::lifecycle::RequestKind;
use sqlx::mysql::MySqlPool;

use crate::helpers::Env;

const SITE: &str = "suspended.example.org";

/// A product (with the suspend setting `on_suspend`, '' for products saved before it existed)
/// and a provisioned premium service of it.
async fn provisioned(env: &Env, on_suspend: &str) -> (u32, ServiceId) {
    provisioned_on(env, on_suspend, SITE).await
}

async fn provisioned_on(env: &Env, on_suspend: &str, site: &str) -> (u32, ServiceId) {
    let pid = env.product("").await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption7 = '{on_suspend}' WHERE id = {pid}"
    ))
    .await;
    let sid = env.service(pid, "Active", site, "admin", "premium").await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(env.sandbox.state().plan(site).unwrap().slug, "premium");
    (pid, sid)
}

/// What WHMCS does on a module's success: the status first, then the module records.
async fn whmcs_calls(env: &Env, sid: ServiceId, status: &str, action: Action) -> String {
    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = '{status}' WHERE id = {sid}"
    ))
    .await;
    let applied = env
        .store
        .enqueue(sid, action, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    applied.said
}

async fn latest_action(env: &Env, sid: ServiceId) -> String {
    sqlx::query_scalar(
        "SELECT action FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(sid)
    .fetch_one(&env.db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_suspend_keeps_the_plan_by_default_and_calls_nothing(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (_, sid) = provisioned(&env, "").await;
    let state = env.sandbox.state();
    let link = env.details(sid).await.unwrap();
    assert!(link.starts_with("URL to Activate Jetpack: "), "{link}");

    whmcs_calls(&env, sid, "Suspended", Action::Suspend).await;
    assert_eq!(state.calls(SITE).cancel, 0, "the plan is kept");
    assert!(state.plan(SITE).is_some());
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(
        env.details(sid).await.unwrap(),
        link,
        "the client keeps the link"
    );
    assert_eq!(env.status(sid).await, "Suspended", "WHMCS's status stands");
    let activity = env.activity(sid).await;
    assert!(
        activity
            .last()
            .unwrap()
            .ends_with("suspended; the Jetpack plan is kept"),
        "{activity:?}"
    );

    whmcs_calls(&env, sid, "Active", Action::Unsuspend).await;
    let calls = state.calls(SITE);
    assert_eq!((calls.provision, calls.cancel), (1, 0), "nothing called");
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(env.details(sid).await.unwrap(), link);
    assert_eq!(env.store.ledger(sid).await.unwrap().len(), 1);
}

#[sqlx::test]
async fn a_suspend_cancels_the_plan_when_the_product_says_so_and_unsuspend_provisions_it_again(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let (_, sid) = provisioned(&env, "cancel").await;
    let state = env.sandbox.state();

    whmcs_calls(&env, sid, "Suspended", Action::Suspend).await;
    assert!(state.plan(SITE).is_none(), "the plan was cancelled");
    assert_eq!(state.calls(SITE).cancel, 1);
    assert!(env.store.ledger(sid).await.unwrap().is_empty());
    assert_eq!(env.status(sid).await, "Suspended", "not Terminated");
    let details = env.details(sid).await.unwrap();
    assert!(
        details.contains("cancelled while the service is suspended"),
        "{details}"
    );

    whmcs_calls(&env, sid, "Active", Action::Unsuspend).await;
    assert_eq!(
        state.plan(SITE).unwrap().slug,
        "premium",
        "provisioned again"
    );
    assert_eq!(state.calls(SITE).provision, 2);
    assert_eq!(env.job(sid).await.state, JobState::Done);
    let details = env.details(sid).await.unwrap();
    assert!(
        details.starts_with("URL to Activate Jetpack: "),
        "{details}"
    );
    assert_eq!(env.status(sid).await, "Active");
    assert_eq!(env.store.ledger(sid).await.unwrap().len(), 1);
}

/// A change of plan while suspended waits for the unsuspend, which provisions the plan the
/// order names then (with either setting: the kept plan is brought up to the order's).
#[sqlx::test]
async fn a_change_of_plan_while_suspended_is_provisioned_on_unsuspend(pool: MySqlPool) {
    let env = Env::new(pool).await;
    for on_suspend in ["cancel", "keep"] {
        let site = format!("{on_suspend}.example.org");
        let (_, sid) = provisioned_on(&env, on_suspend, &site).await;
        whmcs_calls(&env, sid, "Suspended", Action::Suspend).await;
        env.exec(&format!(
            "UPDATE tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
             SET v.value = 'professional' WHERE v.relid = {sid} AND f.fieldname LIKE 'Plan%'"
        ))
        .await;
        let said = whmcs_calls(&env, sid, "Suspended", Action::Change).await;
        assert!(
            said.contains("provisioned when it is unsuspended"),
            "{said}"
        );
        assert_eq!(
            latest_action(&env, sid).await,
            "suspend",
            "no job for the change"
        );

        whmcs_calls(&env, sid, "Active", Action::Unsuspend).await;
        let plan = env.sandbox.state().plan(&site).unwrap();
        assert_eq!(plan.slug, "professional", "{on_suspend}");
        let ledger = env.store.ledger(sid).await.unwrap();
        assert_eq!(ledger[0].plan, "professional", "{on_suspend}");
    }
}

/// The latest intent wins across a suspension: a Terminate after a Suspend terminates; an
/// Unsuspend recorded before the Suspend ran supersedes it (nothing is cancelled).
#[sqlx::test]
async fn requests_that_cross_a_suspension_end_as_the_latest_says(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (_, sid) = provisioned(&env, "cancel").await;
    let state = env.sandbox.state();
    for kind in [RequestKind::Suspend, RequestKind::Unsuspend] {
        env.store
            .record_request(sid, kind, RequestedBy::Module)
            .await
            .unwrap();
    }
    env.worker().run_once().await.unwrap();
    assert_eq!(state.calls(SITE).cancel, 0, "the suspend never ran");
    assert!(state.plan(SITE).is_some());
    let jobs = env.jobs(sid).await;
    assert_eq!(
        jobs[1..],
        [
            ("suspend".to_owned(), "cancelled".to_owned()),
            ("unsuspend".to_owned(), "done".to_owned())
        ]
    );

    for kind in [RequestKind::Suspend, RequestKind::Terminate] {
        env.store
            .record_request(sid, kind, RequestedBy::Module)
            .await
            .unwrap();
    }
    env.worker().run_once().await.unwrap();
    assert!(state.plan(SITE).is_none());
    assert_eq!(env.status(sid).await, "Terminated");
    assert_eq!(latest_action(&env, sid).await, "terminate");
}
