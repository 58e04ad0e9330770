//! Leases and claiming: concurrent workers on both claim paths never process a job twice, an
//! expired lease is reclaimed and the stale holder's write refused, the unique index and the
//! enqueue rules, and releasing held jobs on shutdown.

use jetpack_worker::domain::JobState;
use std::time::Duration;

use jetpack_worker::domain::{Action, RequestedBy};
use jetpack_worker::lifecycle::Decision;
use jetpack_worker::store::{ClaimPath, Finish, WhmcsWrites};
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, fast_settings};

async fn two_workers_share_a_queue(pool: MySqlPool, path: ClaimPath) {
    let env = Env::new(pool).await;
    env.sandbox.state().set_latency(Duration::from_millis(20));
    let pid = env.product("").await;
    let mut sids = Vec::new();
    for i in 0..40 {
        let sid = env
            .service(pid, "Active", &format!("w{i}.example"), "admin", "premium")
            .await;
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
        sids.push(sid);
    }
    let a = env.worker_with(env.store_with(path).await, fast_settings(4));
    let b = env.worker_with(env.store_with(path).await, fast_settings(4));
    assert_eq!(a.store().claim_path(), path);

    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    let (ra, rb) = (ra.expect("worker a"), rb.expect("worker b"));

    assert_eq!(ra.processed + rb.processed, 40, "{ra:?} {rb:?}");
    assert!(
        ra.processed > 0 && rb.processed > 0,
        "both workers took part: {ra:?} {rb:?}"
    );
    for (i, sid) in sids.iter().enumerate() {
        assert_eq!(env.job(*sid).await.state, JobState::Done);
        let calls = env.sandbox.state().calls(&format!("w{i}.example"));
        assert_eq!(calls.provision, 1, "site w{i} provisioned exactly once");
    }
    let activity: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tblactivitylog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(activity, 40);
}

#[sqlx::test]
async fn two_workers_never_process_a_job_twice_with_skip_locked(pool: MySqlPool) {
    two_workers_share_a_queue(pool, ClaimPath::SkipLocked).await;
}

#[sqlx::test]
async fn two_workers_never_process_a_job_twice_with_update_claims(pool: MySqlPool) {
    two_workers_share_a_queue(pool, ClaimPath::Update).await;
}

#[sqlx::test]
async fn an_expired_lease_is_reclaimed_and_the_stale_write_refused(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "stale.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let held = env
        .store
        .claim("dead-worker", 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert!(
        env.store
            .claim("other", 1, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty(),
        "leased jobs are not claimable"
    );

    // The holder dies; its lease runs out.
    env.exec("UPDATE mod_jetpack_jobs SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND, run_at = lease_expires_at").await;
    env.worker().run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!((job.state, job.attempts), (JobState::Done, 2));
    let reclaims: u32 = sqlx::query_scalar("SELECT reclaims FROM mod_jetpack_jobs")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(reclaims, 1);
    // The reclaimed provision first asked the status endpoint (the dead worker may have acted).
    assert_eq!(env.sandbox.state().calls("stale.example").status, 1);

    // The stale holder wakes up and tries to write: refused, nothing changes.
    let stale = Finish::failed(
        "stale".into(),
        WhmcsWrites {
            activity: Some("JETPACK MODULE: stale".into()),
            ..WhmcsWrites::default()
        },
    );
    assert!(!env.store.finish(&held[0], &stale).await.unwrap());
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert!(
        !env.store
            .renew_lease(&held[0], Duration::from_secs(60), Duration::from_secs(5))
            .await
            .unwrap()
    );
    let stale_lines: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tblactivitylog WHERE description = 'JETPACK MODULE: stale'",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(stale_lines, 0);
}

/// A job reclaimed from a dead worker may have acted: every action that may call the
/// partner's provision endpoint (`Action::may_provide`: provision, change, an unsuspend that
/// restores the plan) comes back with its outcome unknown, so its next attempt asks the status
/// endpoint first; the others do not (the claim binds that list from the catalogue: before,
/// it spelled out provision and change).
#[sqlx::test]
async fn a_reclaimed_job_has_an_unknown_outcome_exactly_when_its_action_may_provide(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    for (n, action) in Action::ALL.into_iter().enumerate() {
        let site = format!("reclaimed-{n}.example");
        let sid = env.service(pid, "Active", &site, "admin", "premium").await;
        sqlx::query(
            "INSERT INTO mod_jetpack_jobs (service_id, action, run_at, requested_by, created_at,
                                           updated_at)
             VALUES (?, ?, UTC_TIMESTAMP(6), 'cli', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
        )
        .bind(sid)
        .bind(action.as_str())
        .execute(&env.db)
        .await
        .unwrap();
    }
    let lease = Duration::from_secs(60);
    let held = env.store.claim("dead-worker", 10, lease).await.unwrap();
    assert_eq!(held.len(), Action::ALL.len());
    assert!(held.iter().all(|j| !j.outcome_unknown), "{held:?}");
    env.exec("UPDATE mod_jetpack_jobs SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND, run_at = lease_expires_at").await;
    let reclaimed = env.store.claim("other", 10, lease).await.unwrap();
    assert_eq!(reclaimed.len(), Action::ALL.len());
    for job in &reclaimed {
        assert_eq!(
            job.outcome_unknown,
            job.action.may_provide(),
            "{}",
            job.action
        );
    }
    assert!(reclaimed.iter().any(|j| j.action == Action::Unsuspend));
}

#[sqlx::test]
async fn the_unique_index_allows_one_unfinished_job_per_service(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "u.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let dup = sqlx::query(
        "INSERT INTO mod_jetpack_jobs (service_id, action, run_at, requested_by, created_at, updated_at)
         VALUES (?, 'provision', UTC_TIMESTAMP(6), 'cli', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
    )
    .bind(sid)
    .execute(&env.db)
    .await;
    match dup {
        Err(sqlx::Error::Database(e)) => assert!(e.is_unique_violation()),
        other => panic!("second unfinished job accepted: {other:?}"),
    }
    assert!(matches!(
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap()
            .decision,
        Some(Decision::DueNow(_) | Decision::Nothing(_))
    ));
    // Once finished, a new job for the service goes in.
    env.worker().run_once().await.unwrap();
    assert!(matches!(
        env.store
            .enqueue(sid, Action::Terminate, RequestedBy::Module)
            .await
            .unwrap()
            .decision,
        Some(Decision::Insert(_))
    ));
}

#[sqlx::test]
async fn a_terminate_supersedes_a_queued_provision_and_follows_a_running_one(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let queued = env
        .service(pid, "Active", "q.example", "admin", "premium")
        .await;
    env.store
        .enqueue(queued, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let out = env
        .store
        .enqueue(queued, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    assert!(
        matches!(out.decision, Some(Decision::Supersede { .. })),
        "{out:?}"
    );
    let states: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT action, state FROM mod_jetpack_jobs WHERE service_id = {queued} ORDER BY id"
    )))
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(
        states,
        vec![
            ("provision".into(), "cancelled".into()),
            ("terminate".into(), "queued".into())
        ]
    );

    // A provision in flight: the terminate waits and runs right after it.
    let running = env
        .service(pid, "Active", "r.example", "admin", "premium")
        .await;
    env.exec("UPDATE mod_jetpack_jobs SET run_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR")
        .await;
    env.store
        .enqueue(running, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let held = env
        .store
        .claim("w", 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(held[0].target, running.into());
    assert!(matches!(
        env.store
            .enqueue(running, Action::Terminate, RequestedBy::Module)
            .await
            .unwrap()
            .decision,
        Some(Decision::SetNext(_, Some(_)))
    ));
    let done = Finish::done("ok".into(), WhmcsWrites::default());
    assert!(env.store.finish(&held[0], &done).await.unwrap());
    let job = env.job(running).await;
    assert_eq!(job.state, JobState::Queued);
    let action: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT action FROM mod_jetpack_jobs WHERE service_id = {running} ORDER BY id DESC LIMIT 1"
    )))
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(action, "terminate");
}

/// A worker stopping releases a provision that had a terminate asked behind it: the terminate
/// must not wait for the provision to run again (latest intent wins on release too).
#[sqlx::test]
async fn a_released_job_with_a_request_behind_it_gives_way_to_that_request(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "relf.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let held = env
        .store
        .claim("w", 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        env.store
            .enqueue(sid, Action::Terminate, RequestedBy::Module)
            .await
            .unwrap()
            .decision,
        Some(Decision::SetNext(_, Some(Action::Terminate)))
    ));
    assert!(env.store.release(&held[0]).await.unwrap());
    let rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT action, state FROM mod_jetpack_jobs WHERE service_id = {sid} ORDER BY id"
    )))
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("provision".into(), "cancelled".into()),
            ("terminate".into(), "queued".into())
        ]
    );
}

#[sqlx::test]
async fn released_jobs_are_queued_again_without_using_an_attempt(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "rel.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let held = env
        .store
        .claim("w", 5, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(env.job(sid).await.attempts, 1);
    assert!(env.store.release(&held[0]).await.unwrap());
    let job = env.job(sid).await;
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
    assert!(job.due_in <= 0);
}

#[sqlx::test]
async fn the_claim_query_uses_its_index(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let plan: Vec<sqlx::mysql::MySqlRow> = sqlx::query(
        "EXPLAIN SELECT id FROM mod_jetpack_jobs WHERE due_at <= UTC_TIMESTAMP(6)
         AND action IN ('provision', 'terminate', 'change') ORDER BY due_at, id LIMIT 8",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    use sqlx::Row;
    let key: Option<String> = plan[0].try_get("key").unwrap();
    let extra: Option<String> = plan[0].try_get("Extra").unwrap();
    assert_eq!(key.as_deref(), Some("claim"));
    assert!(!extra.unwrap_or_default().contains("filesort"));
}

#[sqlx::test]
async fn a_terminate_during_a_provision_that_ends_waiting_on_dns_runs_right_after(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.sandbox.state().set_resolvable("slowdns.example", false);
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "slowdns.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let held = env
        .store
        .claim("w", 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        env.store
            .enqueue(sid, Action::Terminate, RequestedBy::Module)
            .await
            .unwrap()
            .decision,
        Some(Decision::SetNext(_, Some(_)))
    ));
    let waiting = Finish::waiting_dns(Duration::from_secs(300), WhmcsWrites::default());
    assert!(env.store.finish(&held[0], &waiting).await.unwrap());
    let rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT action, state FROM mod_jetpack_jobs WHERE service_id = {sid} ORDER BY id"
    )))
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("provision".into(), "cancelled".into()),
            ("terminate".into(), "queued".into())
        ]
    );
    let job = env.job(sid).await;
    assert!(job.due_in <= 0, "the terminate is due now");
}

#[sqlx::test]
async fn asking_again_makes_a_job_in_retry_backoff_due_now(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "again.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.exec(
        "UPDATE mod_jetpack_jobs SET run_at = UTC_TIMESTAMP(6) + INTERVAL 30 MINUTE, attempts = 3",
    )
    .await;
    assert!(env.job(sid).await.due_in > 1000);
    assert!(matches!(
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap()
            .decision,
        Some(Decision::DueNow(_) | Decision::Nothing(_))
    ));
    assert!(env.job(sid).await.due_in <= 0);
}

#[sqlx::test]
async fn the_worker_pool_runs_every_transaction_read_committed(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let mut conn = env.store.pool().acquire().await.unwrap();
    let (level,): (String,) = sqlx::query_as("SELECT @@tx_isolation")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(level, "READ-COMMITTED");
}

#[sqlx::test]
async fn a_claim_reads_every_claimed_jobs_order_with_it(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let plain = env
        .service(pid, "Active", "one.example", "admin", "premium")
        .await;
    let failed_before = env
        .service(pid, "Pending", "two.example", "editor", "security")
        .await;
    let gone = env
        .service(pid, "Active", "three.example", "admin", "premium")
        .await;
    env.exec(&format!("DELETE FROM tblhosting WHERE id = {gone}"))
        .await;
    env.exec(&format!(
        "INSERT INTO mod_jetpack_jobs (service_id, action, state, run_at, requested_by,
           created_at, updated_at, finished_at)
         VALUES ({failed_before}, 'provision', 'failed', UTC_TIMESTAMP(6), 'module',
           UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
    ))
    .await;
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
        .await;
    for sid in [plain, failed_before, gone] {
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }
    let held = env
        .store
        .claim("w", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(held.len(), 3);
    let by_service = |sid: jetpack_worker::domain::ServiceId| {
        held.iter().find(|j| j.target == sid.into()).unwrap()
    };

    let job = by_service(plain);
    let service = job
        .service
        .as_ref()
        .expect("the service is read with the claim");
    assert_eq!(
        (service.product_id, service.status.as_str()),
        (pid, "Active")
    );
    // Four fields; the details field has no value row yet.
    assert_eq!(job.fields.len(), 4);
    let site = job
        .fields
        .iter()
        .find(|f| f.field_name.starts_with("Site URL"))
        .unwrap();
    assert_eq!(site.value.as_deref(), Some("one.example"));
    assert!(!job.had_failure);
    assert!(job.module_debug);

    let job = by_service(failed_before);
    assert_eq!(job.service.as_ref().unwrap().status, "Pending");
    let plan = job.fields.iter().find(|f| f.field_name == "Plan").unwrap();
    assert_eq!(plan.value.as_deref(), Some("security"));
    assert!(
        job.had_failure,
        "an earlier failed job is seen with the claim"
    );

    let job = by_service(gone);
    assert!(job.service.is_none());
    assert!(job.fields.is_empty());
}
