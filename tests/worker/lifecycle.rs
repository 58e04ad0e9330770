//! The promise of a job's life, attacked: requests that cross a running job in every order,
//! the ledger after an edited Site URL, outcomes the database refuses (an oversized answer, a
//! trigger), and a seeded model-based test that mixes requests from PHP and the CLI, requeues,
//! several workers, killed workers, cut database connections and every API outcome, then
//! checks the invariants after each step and at quiescence.

use std::time::{Duration, Instant};

use jetpack_worker::domain::{Action, RequestedBy, ServiceId};
use jetpack_worker::lifecycle::RequestKind;
use jetpack_worker::sandbox::ScriptedReply;
use jetpack_worker::store::RequestId;
use jetpack_worker::worker::Worker;
use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Env, fast_settings};

/// A `run` (service loop) in the background; stopped with [`Running::stop`].
struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(worker: &Worker) -> Running {
    let stop = CancellationToken::new();
    let (w, t) = (worker.clone(), stop.clone());
    let task = tokio::spawn(async move { w.run(t).await.unwrap() });
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

async fn until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// No unfinished job and no request waiting.
async fn quiescent(db: &MySqlPool) -> bool {
    let (jobs, requests): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state IN ('queued','running','waiting_dns')),
                (SELECT COUNT(*) FROM mod_jetpack_requests WHERE applied_at IS NULL)",
    )
    .fetch_one(db)
    .await
    .unwrap();
    jobs == 0 && requests == 0
}

async fn applied(env: &Env, id: RequestId) -> bool {
    env.store
        .request(id)
        .await
        .unwrap()
        .is_some_and(|r| r.applied)
}

/// Records a request the way the PHP module does and waits until a worker applied it.
async fn ask(env: &Env, sid: ServiceId, kind: RequestKind) {
    let id = env
        .store
        .record_request(sid, kind, RequestedBy::Module)
        .await
        .unwrap();
    until(Duration::from_secs(10), "the request to be applied", || {
        applied(env, id)
    })
    .await;
}

/// (action, state) of the service's latest job.
async fn latest(env: &Env, sid: ServiceId) -> (String, String) {
    sqlx::query_as(
        "SELECT action, state FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(sid)
    .fetch_one(&env.db)
    .await
    .unwrap()
}

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

#[sqlx::test]
async fn a_terminate_cancels_what_the_ledger_holds_after_the_site_url_was_edited(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "keep.example.org", "admin", "premium")
        .await;
    let state = env.sandbox.state();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    let ledger = env.store.ledger(sid).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].site.as_str(), ledger[0].plan.as_str()),
        ("keep.example.org", "premium")
    );

    env.exec(&format!(
        "UPDATE tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
         SET v.value = 'renamed-site.example.org'
         WHERE v.relid = {sid} AND f.fieldname LIKE 'Site URL%'"
    ))
    .await;
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    assert!(
        state.plan("keep.example.org").is_none(),
        "the provisioned plan was cancelled"
    );
    assert_eq!(state.calls("keep.example.org").cancel, 1);
    assert_eq!(state.calls("renamed-site.example.org").cancel, 0);
    assert!(
        env.store.ledger(sid).await.unwrap().is_empty(),
        "the ledger is cleared"
    );
    assert_eq!(env.status(sid).await, "Terminated");
    let activity = env.activity(sid).await;
    let line = activity.last().unwrap();
    assert!(
        line.contains("now reads 'renamed-site.example.org'") && line.contains("keep.example.org"),
        "{line}"
    );
}

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
        assert_eq!(job.state, "failed", "{site}");
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
    assert!(longest > 10_000 && longest <= 65_535, "{longest}");
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
    assert_eq!(job.state, "failed");
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
