//! Outcomes the database refuses: an oversized answer fits its columns and fails bounded, a
//! write refused by a trigger fails the job once with the real cause.

use jetpack_worker::domain::JobState;
use std::time::Duration;

use jetpack_sandbox::ScriptedReply;
use jetpack_worker::domain::{Action, RequestedBy};
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, fast_settings};

#[sqlx::test]
async fn an_oversized_answer_fits_its_columns_and_fails_bounded(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
        .await;
    let pid = env.product("").await;
    let html = format!(
        "<html><body>{}</body></html>",
        "Bad gateway. ".repeat(25_000)
    );
    let huge = "x".repeat(300_000);
    let mut settings = fast_settings(2);
    settings.retry.max_attempts = 2;
    settings.retry.base = Duration::from_millis(10);
    let worker = env.worker_with(env.store.clone(), settings);
    let state = env.sandbox.state();
    for (site, reply) in [
        (
            "html502.example",
            ScriptedReply::Raw {
                code: 502,
                content_type: "text/html".into(),
                body: html.clone(),
            },
        ),
        (
            "json502.example",
            ScriptedReply::Status {
                code: 502,
                body: serde_json::json!({"error": "bad_gateway", "message": huge}).to_string(),
                retry_after: None,
            },
        ),
    ] {
        let sid = env.service(pid, "Active", site, "admin", "premium").await;
        state.script(site, vec![reply.clone(), reply]);
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
        for _ in 0..4 {
            worker.run_once().await.unwrap();
            env.make_due().await;
        }
        let job = env.job(sid).await;
        assert_eq!(job.state, JobState::Failed, "{site}");
        let error = job.last_error.unwrap();
        assert!(
            error.contains("HTTP 502") && error.len() < 2_000,
            "{site}: {} bytes",
            error.len()
        );
        assert_eq!(
            state.calls(site).provision,
            2,
            "{site}: the budget bounds the calls"
        );
        let queue = env.module_queue().await;
        assert!(
            queue
                .iter()
                .any(|q| q.0 == sid.0 && q.2.contains("HTTP 502")),
            "{queue:?}"
        );
    }
    let longest: i64 = sqlx::query_scalar("SELECT MAX(LENGTH(response)) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(longest > 0 && longest <= 8 * 1024, "bounded: {longest}");
}

#[sqlx::test]
async fn a_refused_outcome_write_fails_the_job_once_with_the_real_cause(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "trigger.example", "admin", "premium")
        .await;
    for when in ["UPDATE", "INSERT"] {
        env.exec(&format!(
            "CREATE TRIGGER refuse_details_{when} BEFORE {when} ON tblcustomfieldsvalues
             FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'details locked by test'"
        ))
        .await;
    }
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let worker = env.worker();
    worker.run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.last_error.unwrap();
    assert!(error.starts_with("JETPACK MODULE: Service ID: "), "{error}");
    assert!(error.contains("details locked by test"), "{error}");
    let activity = env.activity(sid).await;
    assert!(
        activity
            .iter()
            .any(|a| a.contains("details locked by test")),
        "{activity:?}"
    );
    assert!(env.module_queue().await.iter().any(|q| q.0 == sid.0));
    // Nothing calls the partner again for it without an admin's Retry.
    for _ in 0..3 {
        env.make_due().await;
        worker.run_once().await.unwrap();
    }
    let calls = env.sandbox.state().calls("trigger.example");
    assert_eq!((calls.provision, calls.provision_ok), (1, 1), "{calls:?}");
}

// ---------------------------------------------------------------------------------------------
// The model-based test.
