//! Jetpack licences (issue 22) end to end: requests → worker → the sandbox's Licensing API.
//! Create issues exactly once even when its answer is lost (looked up with a listing token;
//! left `unknown` for an admin with a token that may not list, where a plain Retry issues
//! nothing and `licence_record` / `licence_reissue` are the way out), a worker killed
//! mid-issue, Terminate revokes, ChangePackage issues before it revokes, Suspend detaches or
//! is refused, the reconciler reports a licence revoked behind our back.

use std::time::Duration;

use jetpack_sandbox::{LISTING_TOKEN, PLAIN_TOKEN, ScriptedReply};
use jetpack_worker::domain::{Action, JobState, RequestedBy, ServiceId, Target};
use jetpack_worker::lifecycle::RequestKind;
use jetpack_worker::store::LicenceRow;
use jetpack_worker::worker::Worker;
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, fast_settings};

const PRODUCT: &str = "jetpack-backup-daily";
const SITE: &str = "licensed.example.org";

/// A licence product (token, product slug, attach setting, suspend setting) with a Site URL
/// and the details field; returns its id.
pub async fn licence_product(env: &Env, token: &str, product: &str, attach: &str) -> u32 {
    let pid = env
        .product_with(
            "",
            "",
            "",
            &["Site URL|Your site", "jetpack_provisioning_details|Licence"],
        )
        .await;
    sqlx::query(
        "UPDATE tblproducts SET configoption9 = 'licence', configoption10 = ?,
           configoption11 = ?, configoption12 = ? WHERE id = ?",
    )
    .bind(token)
    .bind(product)
    .bind(attach)
    .bind(pid)
    .execute(&env.db)
    .await
    .unwrap();
    pid
}

/// A worker that looks a lost answer up at once (no settle wait).
pub fn worker(env: &Env) -> Worker {
    let mut settings = fast_settings(4);
    settings.reconcile.settle = Duration::ZERO;
    env.worker_with(env.store.clone(), settings)
}

/// Records `kind` for `sid` as the module would, then runs the worker until idle.
async fn ask(env: &Env, sid: ServiceId, action: Action) -> String {
    let said = env
        .store
        .enqueue(sid, action, RequestedBy::Module)
        .await
        .unwrap()
        .said;
    worker(env).run_once().await.unwrap();
    said
}

async fn rows(env: &Env, sid: ServiceId) -> Vec<LicenceRow> {
    env.store.licences_of(Target::Service(sid)).await.unwrap()
}

fn states(rows: &[LicenceRow]) -> Vec<&'static str> {
    rows.iter().map(|r| r.state.as_str()).collect()
}

/// The sandbox's licences (every token).
fn issued(env: &Env) -> Vec<jetpack_sandbox::IssuedLicence> {
    env.sandbox.state().licences()
}

async fn licensed(env: &Env, token: &str, attach: &str) -> (u32, ServiceId) {
    let pid = licence_product(env, token, PRODUCT, attach).await;
    let sid = env.service(pid, "Pending", SITE, "", "").await;
    (pid, sid)
}

#[sqlx::test]
async fn a_licence_is_issued_attached_and_revoked_through_the_queue(pool: MySqlPool) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .try_init();
    let env = Env::new(pool).await;
    let (_, sid) = licensed(&env, LISTING_TOKEN, "on").await;
    ask(&env, sid, Action::Provision).await;
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    let licences = issued(&env);
    assert_eq!(licences.len(), 1);
    let key = licences[0].key.clone();
    assert!(key.starts_with(PRODUCT), "{key}");
    assert_eq!(licences[0].site.as_deref(), Some(SITE), "attach is on");
    let details = env.details(sid).await.unwrap();
    assert_eq!(
        details,
        format!("Jetpack licence key: {key} (attached to {SITE})")
    );
    assert_eq!(env.status(sid).await, "Active");
    let held = rows(&env, sid).await;
    assert_eq!(states(&held), ["attached"]);
    assert_eq!(held[0].key.as_deref(), Some(key.as_str()));

    // A second Create issues nothing: the target holds its licence.
    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = 'Active' WHERE id = {sid}"
    ))
    .await;
    ask(&env, sid, Action::Provision).await;
    assert_eq!(
        issued(&env).len(),
        1,
        "never a second licence for one target"
    );

    ask(&env, sid, Action::Terminate).await;
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert!(issued(&env)[0].revoked_at.is_some(), "revoked at the API");
    assert_eq!(states(&rows(&env, sid).await), ["revoked"]);
    assert_eq!(env.status(sid).await, "Terminated");
    assert_eq!(
        env.details(sid).await.unwrap(),
        format!("The Jetpack licence {key} was revoked.")
    );
    let activity = env.activity(sid).await.join("\n");
    assert!(
        activity.contains("licence for jetpack-backup-daily is issued"),
        "{activity}"
    );
    assert!(
        !activity.contains(&key),
        "the key stays out of the activity log"
    );
}

#[sqlx::test]
async fn a_lost_issue_answer_is_found_with_a_listing_token_and_not_issued_twice(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (_, sid) = licensed(&env, LISTING_TOKEN, "").await;
    let state = env.sandbox.state();
    state.script(
        &format!("licence:{PRODUCT}"),
        vec![ScriptedReply::ActThenReset],
    );
    ask(&env, sid, Action::Provision).await;
    assert_eq!(
        issued(&env).len(),
        1,
        "the licence was issued; its answer was lost"
    );
    assert_eq!(
        env.job(sid).await.state,
        JobState::Queued,
        "tried again later"
    );
    assert_eq!(states(&rows(&env, sid).await), ["issuing"]);

    env.make_due().await;
    worker(&env).run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    assert_eq!(issued(&env).len(), 1, "found, not issued again");
    assert_eq!(state.licence_calls().issue, 1);
    assert_eq!(state.licence_calls().list, 1);
    let key = issued(&env)[0].key.clone();
    assert_eq!(
        env.details(sid).await.unwrap(),
        format!("Jetpack licence key: {key}")
    );
    assert_eq!(states(&rows(&env, sid).await), ["issued"]);
}

#[sqlx::test]
async fn a_lost_answer_with_a_plain_token_waits_for_an_admin_and_a_retry_issues_nothing(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let (pid, sid) = licensed(&env, PLAIN_TOKEN, "").await;
    let state = env.sandbox.state();
    state.script(
        &format!("licence:{PRODUCT}"),
        vec![ScriptedReply::ActThenReset],
    );
    ask(&env, sid, Action::Provision).await;
    env.make_due().await;
    worker(&env).run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    let at = rows(&env, sid).await[0].intent_time.clone().unwrap();
    let message = format!(
        "JETPACK MODULE: Service ID: {sid} - a licence for {PRODUCT} may have been issued at {at} \
         UTC and its answer was lost; find it in the partner portal and record it, or Retry to \
         issue another"
    );
    assert_eq!(job.last_error.as_deref(), Some(message.as_str()));
    assert_eq!(env.details(sid).await.as_deref(), Some(message.as_str()));
    assert_eq!(states(&rows(&env, sid).await), ["unknown"]);
    assert!(
        env.module_queue()
            .await
            .iter()
            .any(|q| q.0 == sid.0 && q.1 == "CreateAccount" && q.4 == 0)
    );

    // A plain Retry (and a new Create) looks again and issues nothing.
    env.store.requeue(&[sid], false).await.unwrap();
    worker(&env).run_once().await.unwrap();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    worker(&env).run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Failed);
    assert_eq!(issued(&env).len(), 1);
    assert_eq!(state.licence_calls().issue, 1, "no second POST /license");

    // A wrong key is refused; the one from the portal is recorded and the job ends with it.
    let key = issued(&env)[0].key.clone();
    let record = |k: String| {
        let store = env.store.clone();
        async move {
            let by = RequestedBy::Admin;
            let kind = RequestKind::LicenceRecord;
            let id = store
                .record_licence_request(Target::Service(sid), kind, Some(&k), by)
                .await
                .unwrap();
            let applied = store.apply_requests().await.unwrap();
            applied.into_iter().find(|a| a.request == id).unwrap().said
        }
    };
    let said = record("jetpack-scan_notthisone".into()).await;
    assert!(said.contains("not recorded"), "{said}");
    assert_eq!(states(&rows(&env, sid).await), ["unknown"]);
    let said = record(key.clone()).await;
    assert!(said.contains("queued again"), "{said}");
    worker(&env).run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    assert_eq!(
        env.details(sid).await.unwrap(),
        format!("Jetpack licence key: {key}")
    );
    assert_eq!(issued(&env).len(), 1, "recording issues nothing");
    assert!(
        !env.module_queue()
            .await
            .iter()
            .any(|q| q.0 == sid.0 && q.4 == 0),
        "the Module Queue entry is resolved"
    );

    // Another service, another lost answer: the admin reissues: exactly one more.
    let other = env
        .service(pid, "Pending", "other.example.org", "", "")
        .await;
    state.script(
        &format!("licence:{PRODUCT}"),
        vec![ScriptedReply::ActThenReset],
    );
    ask(&env, other, Action::Provision).await;
    env.make_due().await;
    worker(&env).run_once().await.unwrap();
    assert_eq!(env.job(other).await.state, JobState::Failed);
    assert_eq!(issued(&env).len(), 2);
    let kind = RequestKind::LicenceReissue;
    let target = Target::Service(other);
    env.store
        .record_licence_request(target, kind, None, RequestedBy::Admin)
        .await
        .unwrap();
    worker(&env).run_once().await.unwrap();
    assert_eq!(env.job(other).await.state, JobState::Done);
    assert_eq!(
        issued(&env).len(),
        3,
        "exactly one more, chosen by the admin"
    );
    assert_eq!(states(&rows(&env, other).await), ["abandoned", "issued"]);
    let said = env
        .store
        .record_licence_request(target, kind, None, RequestedBy::Admin)
        .await
        .unwrap();
    let applied = env.store.apply_requests().await.unwrap();
    let said = &applied.iter().find(|a| a.request == said).unwrap().said;
    assert!(said.contains("nothing to decide"), "{said}");
}

/// A worker "killed" mid-issue (its run dropped while the call is in flight: no outcome, the
/// lease left to expire), the licence landing after; the reclaimer settles it: found with a
/// listing token, `unknown` with a plain one; never a second licence.
#[sqlx::test]
async fn a_worker_killed_mid_issue_is_settled_by_the_reclaimer(pool: MySqlPool) {
    let env = Env::new(pool).await;
    for (token, site, found) in [
        (LISTING_TOKEN, "killed-a.example.org", true),
        (PLAIN_TOKEN, "killed-b.example.org", false),
    ] {
        let pid = licence_product(&env, token, PRODUCT, "").await;
        let sid = env.service(pid, "Pending", site, "", "").await;
        let state = env.sandbox.state();
        let before = issued(&env).len();
        let late = ScriptedReply::LandsLate(Duration::from_millis(300));
        state.script(&format!("licence:{PRODUCT}"), vec![late]);
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
        let run = tokio::spawn({
            let w = worker(&env);
            async move { w.run_once().await }
        });
        crate::helpers::until(Duration::from_secs(10), "the issue call", || {
            let n = state.licence_calls().issue;
            async move { n as usize > before }
        })
        .await;
        run.abort();
        let _ = run.await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            issued(&env).len(),
            before + 1,
            "the licence landed after the kill"
        );
        assert_eq!(states(&rows(&env, sid).await), ["issuing"]);
        env.exec(&format!(
            "UPDATE mod_jetpack_jobs SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND,
               run_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND
             WHERE service_id = {sid} AND state = 'running'"
        ))
        .await;
        worker(&env).run_once().await.unwrap();
        let job = env.job(sid).await;
        assert_eq!(issued(&env).len(), before + 1, "never a second licence");
        if found {
            assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
            assert_eq!(states(&rows(&env, sid).await), ["issued"]);
        } else {
            assert_eq!(job.state, JobState::Failed);
            assert!(job.last_error.unwrap().contains("its answer was lost"));
            assert_eq!(states(&rows(&env, sid).await), ["unknown"]);
        }
    }
}

#[sqlx::test]
async fn a_refused_or_answered_failure_issues_nothing_and_is_tried_again(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (_, sid) = licensed(&env, LISTING_TOKEN, "").await;
    let state = env.sandbox.state();
    let busy = ScriptedReply::Status {
        code: 429,
        body: r#"{"code":"rate_limit","message":"slow down"}"#.into(),
        retry_after: Some("1".into()),
    };
    state.script(&format!("licence:{PRODUCT}"), vec![busy]);
    ask(&env, sid, Action::Provision).await;
    assert_eq!(env.job(sid).await.state, JobState::Queued);
    assert_eq!(
        states(&rows(&env, sid).await),
        ["failed"],
        "a 429 issued nothing"
    );
    env.make_due().await;
    worker(&env).run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(states(&rows(&env, sid).await), ["failed", "issued"]);
    assert_eq!(issued(&env).len(), 1);
    assert_eq!(state.licence_calls().list, 0, "nothing was in doubt");

    // A disabled token: a Terminate fails clearly and revokes nothing.
    state.set_licence_token_enabled(LISTING_TOKEN, false);
    ask(&env, sid, Action::Terminate).await;
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(job.last_error.unwrap().contains("HTTP 403"));
    assert!(issued(&env)[0].revoked_at.is_none());
}

#[sqlx::test]
async fn change_package_issues_the_new_licence_before_it_revokes_the_old(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (_, sid) = licensed(&env, LISTING_TOKEN, "").await;
    ask(&env, sid, Action::Provision).await;
    let old = issued(&env)[0].key.clone();
    let scan = licence_product(&env, LISTING_TOKEN, "jetpack-scan", "").await;
    // WHMCS moves the service and carries the values of fields of the same name over.
    env.exec(&format!(
        "UPDATE tblhosting SET packageid = {scan} WHERE id = {sid};
         UPDATE tblcustomfieldsvalues v JOIN tblcustomfields o ON o.id = v.fieldid
           JOIN tblcustomfields n ON n.relid = {scan} AND n.type = 'product'
             AND n.fieldname = o.fieldname
         SET v.fieldid = n.id WHERE v.relid = {sid}"
    ))
    .await;
    let state = env.sandbox.state();

    // The new licence cannot be issued: the old one stays.
    let down = ScriptedReply::Status {
        code: 503,
        body: "{}".into(),
        retry_after: None,
    };
    state.script("licence:jetpack-scan", vec![down]);
    ask(&env, sid, Action::Change).await;
    assert_eq!(env.job(sid).await.state, JobState::Queued);
    assert!(
        issued(&env)[0].revoked_at.is_none(),
        "the old licence stays until the new one is recorded"
    );
    // A 503 may have acted: the issue is in doubt, looked up before anything else.
    env.make_due().await;

    // The new one is issued and recorded; revoking the old one fails: tried again.
    let refuse = ScriptedReply::Status {
        code: 500,
        body: "{}".into(),
        retry_after: None,
    };
    state.script(&format!("licence:{old}"), vec![refuse]);
    worker(&env).run_once().await.unwrap();
    let now = rows(&env, sid).await;
    assert_eq!(
        states(&now),
        ["issued", "failed", "issued"],
        "the new licence recorded while the old one still is"
    );
    assert_eq!(env.job(sid).await.state, JobState::Queued);
    env.make_due().await;
    worker(&env).run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(
        states(&rows(&env, sid).await),
        ["revoked", "failed", "issued"]
    );
    let licences = issued(&env);
    assert_eq!(licences.len(), 2, "one new licence");
    assert!(licences[0].revoked_at.is_some() && licences[1].revoked_at.is_none());
    assert!(licences[1].key.starts_with("jetpack-scan_"));
    assert_eq!(
        env.details(sid).await.unwrap(),
        format!("Jetpack licence key: {}", licences[1].key)
    );
}

#[sqlx::test]
async fn a_suspend_detaches_with_attach_on_and_is_refused_with_attach_off(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (pid, sid) = licensed(&env, LISTING_TOKEN, "on").await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption7 = 'cancel' WHERE id = {pid}"
    ))
    .await;
    ask(&env, sid, Action::Provision).await;
    let key = issued(&env)[0].key.clone();
    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = 'Suspended' WHERE id = {sid}"
    ))
    .await;
    ask(&env, sid, Action::Suspend).await;
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(issued(&env)[0].site, None, "detached");
    assert!(
        issued(&env)[0].revoked_at.is_none(),
        "never revoked by a suspend"
    );
    assert_eq!(states(&rows(&env, sid).await), ["issued"]);
    assert!(env.details(sid).await.unwrap().contains("detached from"));
    assert_eq!(env.status(sid).await, "Suspended");

    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = 'Active' WHERE id = {sid}"
    ))
    .await;
    ask(&env, sid, Action::Unsuspend).await;
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(
        issued(&env)[0].site.as_deref(),
        Some(SITE),
        "attached again"
    );
    assert_eq!(issued(&env).len(), 1);
    assert_eq!(
        env.details(sid).await.unwrap(),
        format!("Jetpack licence key: {key} (attached to {SITE})")
    );

    // Attach off: a suspend that would cancel is refused, the licence untouched.
    env.exec(&format!(
        "UPDATE tblproducts SET configoption12 = '' WHERE id = {pid}"
    ))
    .await;
    ask(&env, sid, Action::Suspend).await;
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.last_error.unwrap();
    assert!(
        error.contains("cannot be cancelled and given back"),
        "{error}"
    );
    assert!(error.contains(&key), "{error}");
    assert!(issued(&env)[0].revoked_at.is_none());
    assert!(
        env.module_queue()
            .await
            .iter()
            .any(|q| q.1 == "SuspendAccount" && q.4 == 0),
        "in the Module Queue as SuspendAccount"
    );
}

#[sqlx::test]
async fn a_licence_revoked_behind_our_back_is_reported(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (_, sid) = licensed(&env, LISTING_TOKEN, "").await;
    ask(&env, sid, Action::Provision).await;
    let key = issued(&env)[0].key.clone();
    let w = worker(&env);
    assert_eq!(
        w.check_licences_once().await.unwrap(),
        0,
        "not due before the pass"
    );
    env.exec("UPDATE mod_jetpack_licences SET checked_at = UTC_TIMESTAMP(6) - INTERVAL 2 DAY")
        .await;
    assert_eq!(w.check_licences_once().await.unwrap(), 1);
    assert_eq!(states(&rows(&env, sid).await), ["issued"], "still live");

    assert!(env.sandbox.state().revoke_licence(&key));
    env.exec("UPDATE mod_jetpack_licences SET checked_at = UTC_TIMESTAMP(6) - INTERVAL 2 DAY")
        .await;
    w.reconcile_once().await.unwrap();
    let (state, outside): (String, i8) = sqlx::query_as(
        "SELECT state, revoked_outside FROM mod_jetpack_licences WHERE service_id = ?",
    )
    .bind(sid)
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!((state.as_str(), outside), ("revoked", 1));
    let drift: (String, String) =
        sqlx::query_as("SELECT found, done FROM mod_jetpack_drift WHERE service_id = ?")
            .bind(sid)
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(drift, ("revoked outside WHMCS".into(), "reported".into()));
    let activity = env.activity(sid).await.join("\n");
    assert!(activity.contains("was revoked outside WHMCS"), "{activity}");
    assert_eq!(issued(&env).len(), 1, "nothing issued on its own");
}

#[sqlx::test]
async fn the_worker_keeps_the_product_list(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let w = worker(&env);
    assert!(w.refresh_licence_products().await.unwrap() >= 7);
    let products = env.store.licence_products().await.unwrap();
    assert!(
        products.iter().any(|(slug, _)| slug == PRODUCT),
        "{products:?}"
    );
    env.exec(
        "INSERT INTO mod_jetpack_licence_products VALUES ('gone', 'Gone', '', UTC_TIMESTAMP(6))",
    )
    .await;
    w.refresh_licence_products().await.unwrap();
    let products = env.store.licence_products().await.unwrap();
    assert!(
        !products.iter().any(|(slug, _)| slug == "gone"),
        "a product no longer sold goes"
    );
}

#[sqlx::test]
async fn a_licence_product_without_its_settings_fails_with_what_to_fix(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = licence_product(&env, "", PRODUCT, "").await;
    let sid = env.service(pid, "Pending", SITE, "", "").await;
    ask(&env, sid, Action::Provision).await;
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.last_error.unwrap();
    assert!(error.starts_with("JETPACK MODULE: Service ID:"), "{error}");
    assert!(error.contains("has no Licensing API token"), "{error}");
    env.exec(&format!(
        "UPDATE tblproducts SET configoption10 = 'x', configoption11 = 'Backup Daily' WHERE id = {pid}"
    ))
    .await;
    env.store.requeue(&[sid], false).await.unwrap();
    worker(&env).run_once().await.unwrap();
    let error = env.job(sid).await.last_error.unwrap();
    assert!(
        error.contains("licence product 'Backup Daily' is not one"),
        "{error}"
    );
    assert!(issued(&env).is_empty());
}
