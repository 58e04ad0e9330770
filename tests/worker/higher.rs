//! A provision onto a site that already holds a higher plan of the family (the partner refuses
//! to move a site down): the outcome is the same whichever order the targets' jobs run in,
//! and a higher plan that is not this partner's still refuses the order.

use std::time::Duration;

use jetpack_sandbox::ScriptedReply;
use jetpack_worker::domain::{Action, JobState, RequestedBy, ServiceId};
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, key, until};

async fn provision(env: &Env, sid: ServiceId) {
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
}

/// The plan the target's ledger holds on the site.
async fn held(env: &Env, sid: ServiceId) -> Vec<(String, String)> {
    let rows = env.store.ledger(sid).await.unwrap();
    rows.into_iter().map(|e| (e.site, e.plan)).collect()
}

/// Professional provisioned first, then premium for another service on the same site: the
/// premium provision is done without a call (the site keeps professional, which covers it),
/// and its ledger records premium, as when premium had gone first and professional over it.
/// (It failed before: the partner refused the premium provision as a downgrade.)
#[sqlx::test]
async fn a_provision_below_the_plan_another_target_holds_is_done_without_a_call(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "order.example";
    let high = env
        .service(pid, "Pending", site, "admin", "professional")
        .await;
    let low = env.service(pid, "Pending", site, "admin", "premium").await;
    provision(&env, high).await;
    env.worker().run_once().await.unwrap();
    let calls_before = env.sandbox.state().calls(site).provision;

    provision(&env, low).await;
    env.worker().run_once().await.unwrap();

    let job = env.job(low).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    assert_eq!(env.sandbox.state().calls(site).provision, calls_before);
    let plan = env.sandbox.state().plan(site).map(|p| p.slug);
    assert_eq!(plan.as_deref(), Some("professional"));
    assert_eq!(held(&env, low).await, [(site.into(), "premium".into())]);
    let details = env.details(low).await.unwrap();
    assert!(
        details.contains(&format!(
            "keeps the higher plan professional that Service ID: {high} holds"
        )),
        "{details}"
    );
    assert_eq!(env.status(low).await, "Active");
}

/// The same two provisions side by side, the premium one's call slow so the professional one
/// lands first (neither was in the ledger when the other was claimed): the partner refuses
/// premium, the status shows this partner's professional there, and the premium provision is
/// done as in the sequential order. (It failed before: failed with the partner's refusal.)
#[sqlx::test]
async fn a_lower_provision_overtaken_by_a_higher_one_on_its_site_is_done(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "race.example";
    let low = env.service(pid, "Pending", site, "admin", "premium").await;
    let high = env
        .service(pid, "Pending", site, "admin", "professional")
        .await;
    let state = env.sandbox.state();
    state.script(
        &key(site),
        vec![ScriptedReply::Slow(Duration::from_millis(3500))],
    );
    provision(&env, low).await;
    let worker = env.worker();
    let slow = tokio::spawn(async move { worker.run_once().await.unwrap() });
    let watched = state.clone();
    until(
        Duration::from_secs(10),
        "the premium call in flight",
        || {
            let watched = watched.clone();
            async move { watched.in_flight_acting_calls(&key(site)) == 1 }
        },
    )
    .await;
    // Either worker may take it: the first one goes on claiming while premium is in its call.
    provision(&env, high).await;
    env.worker().run_once().await.unwrap();
    until(
        Duration::from_secs(10),
        "the professional provision done",
        || async { env.job(high).await.state == JobState::Done },
    )
    .await;
    assert_eq!(
        state.in_flight_acting_calls(&key(site)),
        1,
        "premium still in its call (the order this test needs)"
    );
    slow.await.unwrap();

    let job = env.job(low).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    let plan = env.sandbox.state().plan(site).map(|p| p.slug);
    assert_eq!(plan.as_deref(), Some("professional"));
    assert_eq!(held(&env, low).await, [(site.into(), "premium".into())]);
    assert_eq!(
        held(&env, high).await,
        [(site.into(), "professional".into())]
    );
    let details = env.details(low).await.unwrap();
    assert!(
        details.contains("already holds the higher plan professional"),
        "{details}"
    );
    assert_eq!(env.status(low).await, "Active");
}

/// A higher plan on the site that is not this partner's (the customer's own purchase): the
/// refusal stands, as the partner API documents it (failed, with the partner's words).
#[sqlx::test]
async fn a_higher_plan_that_is_not_ours_still_refuses_a_provision(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "theirs.example";
    let sid = env.service(pid, "Pending", site, "admin", "premium").await;
    env.sandbox.state().portal_add(site, "professional", false);

    provision(&env, sid).await;
    env.worker().run_once().await.unwrap();

    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("plan_downgrade_disallowed"),
        "{:?}",
        job.last_error
    );
    assert!(held(&env, sid).await.is_empty());
}
