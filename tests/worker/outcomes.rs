//! One test (at least) per row of the README's outcome table (How it works): what the job row,
//! the details field, the service status, the activity log and the Module Queue show afterwards.

use jetpack_sandbox::ScriptedReply;
use jetpack_worker::domain::JobState;
use jetpack_worker::domain::{Action, RequestedBy};
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, key};

fn reply(code: u16, body: &str) -> ScriptedReply {
    ScriptedReply::Status {
        code,
        body: body.to_owned(),
        retry_after: None,
    }
}

#[sqlx::test]
async fn provisioned_with_next_url_is_done_active_and_logged(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "https://Shop.example/", "admin", "Premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();

    let summary = env.worker().run_once().await.unwrap();

    assert_eq!(summary.processed, 1);
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.attempts, 1);
    let details = env.details(sid).await.unwrap();
    assert!(
        details.starts_with("URL to Activate Jetpack: https://jetpack.wordpress.com/"),
        "{details}"
    );
    assert_eq!(env.status(sid).await, "Active");
    let activity = env.activity(sid).await;
    assert_eq!(activity.len(), 1, "{activity:?}");
    assert!(
        activity[0].starts_with("JETPACK MODULE")
            && activity[0].contains("premium plan provisioned for shop.example")
    );
    let calls = env.sandbox.state().calls("shop.example");
    assert_eq!((calls.provision, calls.provision_ok), (1, 1));
    assert_eq!(
        env.sandbox.state().plan("shop.example").unwrap().slug,
        "premium"
    );
}

#[sqlx::test]
async fn empty_next_url_waits_on_dns_without_using_attempts_or_api_calls(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let state = env.sandbox.state();
    state.set_resolvable("new-domain.example", false);
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Pending", "new-domain.example", "admin", "personal")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Cli)
        .await
        .unwrap();
    let worker = env.worker();

    worker.run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::WaitingDns);
    assert!(
        job.due_in >= 250,
        "first re-check about 5 min later, got {}",
        job.due_in
    );
    assert!(
        env.details(sid)
            .await
            .unwrap()
            .contains("new-domain.example did not resolve")
    );
    assert_eq!(env.status(sid).await, "Active");
    assert_eq!(env.activity(sid).await.len(), 1);

    // Re-checks while DNS still fails: no API call, no attempt used, no new activity line.
    for _ in 0..3 {
        env.make_due().await;
        worker.run_once().await.unwrap();
    }
    let job = env.job(sid).await;
    assert_eq!(
        (job.state, job.attempts, job.dns_checks),
        (JobState::WaitingDns, 1, 3)
    );
    assert_eq!(state.calls("new-domain.example").provision, 1);
    assert_eq!(env.activity(sid).await.len(), 1);

    // DNS comes up: the next re-check calls the API and gets the activation URL.
    state.set_resolvable("new-domain.example", true);
    env.make_due().await;
    worker.run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 1));
    assert!(
        env.details(sid)
            .await
            .unwrap()
            .starts_with("URL to Activate Jetpack: ")
    );
    assert_eq!(state.calls("new-domain.example").provision, 2);
}

#[sqlx::test]
async fn waiting_plan_fails_clearly_when_the_14_day_window_ends(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.sandbox.state().set_resolvable("late.example", false);
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Pending", "late.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Cli)
        .await
        .unwrap();
    let worker = env.worker();
    worker.run_once().await.unwrap();
    env.exec("UPDATE mod_jetpack_jobs SET waiting_since = UTC_TIMESTAMP(6) - INTERVAL 15 DAY, run_at = UTC_TIMESTAMP(6)")
        .await;

    worker.run_once().await.unwrap();

    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.last_error
            .unwrap()
            .contains("still did not resolve after 14 days")
    );
    let queue = env.module_queue().await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].1, "CreateAccount");
    assert_eq!(env.status(sid).await, "Pending");
}

#[sqlx::test]
async fn transient_errors_back_off_then_fail_after_the_budget(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "flaky.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let state = env.sandbox.state();
    state.script(
        "flaky.example",
        vec![
            reply(503, ""),
            reply(500, r#"{"error":"oops","message":"try later"}"#),
        ],
    );
    let worker = env.worker();

    worker.run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!((job.state, job.attempts), (JobState::Queued, 1));
    assert!(
        (20..=40).contains(&job.due_in),
        "about 30 s ± jitter, got {}",
        job.due_in
    );
    assert!(job.last_error.unwrap().contains("HTTP 503"));
    assert_eq!(
        env.details(sid).await.unwrap_or_default(),
        "",
        "details unchanged until it fails"
    );
    assert_eq!(env.status(sid).await, "Active");
    assert!(env.activity(sid).await.is_empty());

    env.exec("UPDATE mod_jetpack_jobs SET max_attempts = 2")
        .await;
    env.make_due().await;
    worker.run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!((job.state, job.attempts), (JobState::Failed, 2));
    let error = job.last_error.unwrap();
    assert!(
        error.contains("after 2 attempts") && error.contains("HTTP 500"),
        "{error}"
    );
    assert_eq!(env.details(sid).await.unwrap(), error);
    assert_eq!(env.activity(sid).await, vec![error.clone()]);
    assert_eq!(env.module_queue().await[0].2, error);
    assert_eq!(state.calls("flaky.example").provision, 2);
}

#[sqlx::test]
async fn retry_after_is_honoured(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "busy.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.sandbox.state().script(
        "busy.example",
        vec![ScriptedReply::Status {
            code: 429,
            body: "{}".into(),
            retry_after: Some("900".into()),
        }],
    );
    env.worker().run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Queued);
    assert!((890..=905).contains(&job.due_in), "{}", job.due_in);
}

#[sqlx::test]
async fn permanent_error_fails_at_once_then_a_retry_provisions_and_resolves_the_queue(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "blog.example", "nobody", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let worker = env.worker();

    worker.run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!((job.state, job.attempts), (JobState::Failed, 1));
    let error = job.last_error.unwrap();
    assert!(
        error.starts_with(&format!("JETPACK MODULE: Service ID: {sid} - ")),
        "{error}"
    );
    assert!(
        error.contains("invalid_local_user: User nobody does not exist"),
        "{error}"
    );
    assert_eq!(env.details(sid).await.unwrap(), error);
    assert_eq!(
        env.status(sid).await,
        "Pending",
        "a failed Create leaves the service Pending"
    );
    let queue = env.module_queue().await;
    assert_eq!(
        queue,
        vec![(sid.0, "CreateAccount".to_owned(), error.clone(), 0, 0)]
    );

    // The admin fixes the Local User and clicks Retry (requeue).
    env.exec(&format!(
        "UPDATE tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
         SET v.value = 'admin' WHERE v.relid = {sid} AND f.fieldname = 'Local User'"
    ))
    .await;
    assert_eq!(
        env.store.requeue(&[sid], false).await.unwrap().jobs.len(),
        1
    );
    worker.run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(env.status(sid).await, "Active");
    assert_eq!(
        env.module_queue().await[0].4,
        1,
        "the Module Queue entry is resolved"
    );
}

#[sqlx::test]
async fn api_errors_in_the_error_message_shape_are_reported(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "down.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.sandbox.state().script(
        "down.example",
        vec![reply(400, r#"{"error":"plan_downgrade_disallowed","message":"Can not automatically downgrade plans."}"#)],
    );
    env.worker().run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.last_error
            .unwrap()
            .contains("plan_downgrade_disallowed: Can not automatically downgrade plans.")
    );
}

#[sqlx::test]
async fn terminate_cancels_the_plan_and_terminates_the_service(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(
            pid,
            "Active",
            "http://shop.example/blog/",
            "admin",
            "premium",
        )
        .await;
    let worker = env.worker();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    worker.run_once().await.unwrap();
    assert!(env.sandbox.state().plan("shop.example/blog").is_some());

    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    worker.run_once().await.unwrap();

    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(env.status(sid).await, "Terminated");
    let date: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT CAST(termination_date = CURDATE() AS CHAR) FROM tblhosting WHERE id = {sid}"
    )))
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(date, "1", "termination_date set to today");
    assert_eq!(
        env.details(sid).await.unwrap(),
        "The Jetpack plan for shop.example/blog was cancelled."
    );
    assert!(
        env.activity(sid)
            .await
            .last()
            .unwrap()
            .contains("plan cancelled for shop.example/blog")
    );
    let calls = env.sandbox.state().calls(&key("shop.example/blog"));
    assert_eq!((calls.cancel, calls.cancel_ok), (1, 1));
    assert!(env.sandbox.state().plan("shop.example/blog").is_none());
}

/// A service set up under the original module (no ledger row) and edited since: its Local
/// User is empty and its Plan is one the worker does not know. A terminate needs neither (the
/// cancel sends only the site), so the plan is cancelled and the service terminated, instead
/// of a refused terminate leaving a live plan on a service WHMCS shows as Terminated.
#[sqlx::test]
async fn terminate_of_a_legacy_order_cancels_without_user_or_known_plan(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "legacy.example", "admin", "premium")
        .await;
    let worker = env.worker();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    worker.run_once().await.unwrap();
    assert!(env.sandbox.state().plan("legacy.example").is_some());
    env.exec(&format!(
        "DELETE FROM mod_jetpack_ledger WHERE service_id = {sid};
         UPDATE tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
         SET v.value = CASE f.fieldname WHEN 'Local User' THEN '' ELSE 'jetpack_business_legacy' END
         WHERE v.relid = {sid} AND f.fieldname IN ('Local User', 'Plan')"
    ))
    .await;

    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    worker.run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    assert_eq!(env.status(sid).await, "Terminated");
    assert!(env.sandbox.state().plan("legacy.example").is_none());
    assert_eq!(env.sandbox.state().calls("legacy.example").cancel, 1);
}

#[sqlx::test]
async fn terminate_with_nothing_left_to_cancel_is_done(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "gone.example", "admin", "premium")
        .await;
    env.exec(&format!(
        "UPDATE tblhosting SET termination_date = '2026-01-02' WHERE id = {sid}"
    ))
    .await;
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(env.status(sid).await, "Terminated");
    assert!(
        env.details(sid)
            .await
            .unwrap()
            .contains("No Jetpack plan was left to cancel")
    );
    let date: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT CAST(termination_date AS CHAR) FROM tblhosting WHERE id = {sid}"
    )))
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(date, "2026-01-02", "an existing termination date is kept");
}

#[sqlx::test]
async fn terminate_refused_by_the_api_fails_and_leaves_the_status(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "unknown.invalid", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(job.last_error.unwrap().contains("HTTP 404"));
    assert_eq!(env.status(sid).await, "Active");
    assert_eq!(env.module_queue().await[0].1, "TerminateAccount");
}

#[sqlx::test]
async fn bad_input_fails_at_once_without_any_api_call(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let cases = [
        ("", "admin", "premium", "Site URL '' is empty"),
        (
            "javascript:alert(1)",
            "admin",
            "premium",
            "is not a web address",
        ),
        ("site.example", " ", "premium", "Local User is empty"),
        (
            "site.example",
            "admin",
            "Gold",
            "'Gold' is not an allowed plan",
        ),
    ];
    let mut sids = Vec::new();
    for (site, user, plan, _) in cases {
        let sid = env.service(pid, "Active", site, user, plan).await;
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
        sids.push(sid);
    }
    let nocreds = env
        .product_with(
            "",
            "demo-client",
            "",
            &[
                "Site URL",
                "Local User",
                "Plan",
                "jetpack_provisioning_details",
            ],
        )
        .await;
    let sid = env
        .service(nocreds, "Active", "ok.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    sids.push(sid);
    let misnamed = env
        .product_with(
            "",
            "demo-client",
            "demo-secret",
            &[
                "Site url",
                "Local User",
                "Plan",
                "jetpack_provisioning_details",
            ],
        )
        .await;
    let sid = env
        .service(misnamed, "Active", "ok.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    sids.push(sid);
    let expects = cases.iter().map(|c| c.3).chain([
        "credentials for provisioning are not complete",
        "no custom field named 'Site URL'",
    ]);

    env.worker().run_once().await.unwrap();

    for (sid, expect) in sids.into_iter().zip(expects) {
        let job = env.job(sid).await;
        assert_eq!((job.state, job.attempts), (JobState::Failed, 1), "{expect}");
        let error = job.last_error.unwrap();
        assert!(
            error.starts_with(&format!("JETPACK MODULE: Service ID: {sid} - "))
                && error.contains(expect),
            "{error}"
        );
        assert_eq!(env.details(sid).await.as_deref(), Some(error.as_str()));
        assert_eq!(env.activity(sid).await, vec![error.clone()]);
        assert_eq!(env.status(sid).await, "Pending");
    }
    assert_eq!(
        env.sandbox.state().token_calls(),
        0,
        "no API call for input that can't be valid"
    );
    assert!(env.sandbox.state().all_calls().is_empty());
}

#[sqlx::test]
async fn bad_credentials_fail_with_a_clear_reason(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env
        .product_with(
            "",
            "demo-client",
            "wrong-secret",
            &[
                "Site URL",
                "Local User",
                "Plan",
                "jetpack_provisioning_details",
            ],
        )
        .await;
    let sid = env
        .service(pid, "Active", "a.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.last_error.unwrap();
    assert!(
        error.contains("refused the client id/secret") && error.contains("Module Settings"),
        "{error}"
    );
    assert!(!error.contains("wrong-secret"));
}

#[sqlx::test]
async fn one_token_is_shared_and_refreshed_once_when_refused(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let worker = env.worker_with(env.store.clone(), crate::helpers::fast_settings(6));
    for i in 0..6 {
        let sid = env
            .service(pid, "Active", &format!("s{i}.example"), "admin", "premium")
            .await;
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }
    worker.run_once().await.unwrap();
    assert_eq!(
        env.sandbox.state().token_calls(),
        1,
        "concurrent jobs share one token fetch"
    );

    env.sandbox.state().revoke_tokens();
    let sid = env
        .service(pid, "Active", "after-revoke.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    worker.run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(env.sandbox.state().token_calls(), 2);
    assert_eq!(
        env.sandbox.state().calls("after-revoke.example").provision,
        2,
        "refused once, then retried"
    );
}

#[sqlx::test]
async fn a_lost_answer_is_checked_with_the_status_endpoint_before_provisioning_again(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "lost.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let state = env.sandbox.state();
    state.script("lost.example", vec![ScriptedReply::ActThenReset]);
    let worker = env.worker();

    worker.run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Queued);
    env.make_due().await;
    worker.run_once().await.unwrap();

    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Done);
    let calls = state.calls("lost.example");
    assert_eq!((calls.provision_ok, calls.status), (1, 1), "{calls:?}");
    assert!(
        env.details(sid)
            .await
            .unwrap()
            .contains("plan is provisioned for lost.example")
    );
}

/// The job row keeps the exact text its outcome wrote into the target's details field (the
/// module puts it back when a WHMCS save writes a stale text over the field): a link, a DNS
/// wait, a failure, a cancel; a transient retry writes none and keeps what was there.
#[sqlx::test]
async fn the_job_keeps_the_text_it_wrote_into_the_details_field(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.sandbox.state().set_resolvable("waits.example", false);
    let pid = env.product("").await;
    let done = env
        .service(pid, "Pending", "https://done.example/", "admin", "premium")
        .await;
    let waits = env
        .service(pid, "Pending", "waits.example", "admin", "premium")
        .await;
    let bad = env
        .service(pid, "Pending", "https://bad.example/", "admin", "Gold")
        .await;
    for sid in [done, waits, bad] {
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }
    env.worker().run_once().await.unwrap();
    env.store
        .enqueue(done, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    let jobs_texts = |sid| {
        let db = env.db.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT details FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id",
            )
            .bind(sid)
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };
    let done_jobs = jobs_texts(done).await;
    assert_eq!(done_jobs.len(), 2, "provision, then terminate");
    assert!(
        done_jobs[0]
            .as_deref()
            .is_some_and(|t| t.starts_with("URL to Activate Jetpack: ")),
        "{done_jobs:?}"
    );
    assert_eq!(done_jobs[1], env.details(done).await, "the cancel's text");
    assert!(done_jobs[1] != done_jobs[0]);
    let waiting = jobs_texts(waits).await;
    assert_eq!(waiting, vec![env.details(waits).await]);
    assert!(
        waiting[0]
            .as_deref()
            .is_some_and(|t| t.contains("did not resolve"))
    );
    let failed = jobs_texts(bad).await;
    assert_eq!(failed, vec![env.details(bad).await]);
    assert!(
        failed[0]
            .as_deref()
            .is_some_and(|t| t.starts_with("JETPACK MODULE"))
    );
}
