//! Mixed versions during a rolling upgrade: a worker refuses a database a newer worker
//! migrated, and leaves the requests and jobs it cannot read untouched for one that can.

use jetpack_worker::domain::JobState;
use jetpack_worker::domain::RequestedBy;
use jetpack_worker::lifecycle::RequestKind;
use sqlx::mysql::MySqlPool;

use crate::cli::{database_url, output, worker_command};
use crate::helpers::Env;

const NEWER: &str = "this database was migrated by a newer jetpack-worker; upgrade this binary";
const UNKNOWN_KIND_WARNING: &str = "a request of a kind this worker does not know";

/// A row of `table` as text, every column in order (NULL spelled out).
async fn row_text(db: &MySqlPool, table: &str, id: u64) -> String {
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(db)
    .await
    .unwrap();
    let expr: Vec<String> = cols
        .iter()
        .map(|c| format!("IFNULL(CAST(`{c}` AS CHAR), 'NULL')"))
        .collect();
    let sql = format!(
        "SELECT CONCAT_WS('|', {}) FROM {table} WHERE id = ?",
        expr.join(", ")
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn pending(db: &MySqlPool, id: u64) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT applied_at IS NULL FROM mod_jetpack_requests WHERE id = ?",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_worker_refuses_a_database_migrated_by_a_newer_worker(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let url = database_url(&env.db).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (29991231000000, 'from a newer worker', 1, X'00', 1)",
    )
    .execute(&env.db)
    .await
    .unwrap();
    for args in [&["run", "--once"][..], &["run"], &["migrate"], &["status"]] {
        let mut cmd = worker_command(&url, &env.sandbox.base_url());
        cmd.args(args);
        let out = output(cmd).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(NEWER), "{args:?}: {err}");
    }
}

#[sqlx::test]
async fn requests_and_jobs_this_worker_cannot_read_are_left_untouched(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let held = env
        .service(pid, "Active", "held.example", "admin", "premium")
        .await;
    let newer = env
        .service(pid, "Active", "newer.example", "admin", "premium")
        .await;
    let other = env
        .service(pid, "Active", "other.example", "admin", "premium")
        .await;
    // A newer worker's request kind, and its job action (due now).
    let hibernate = env
        .exec(&format!(
            "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
             VALUES ({held}, 0, 'hibernate', 'module', UTC_TIMESTAMP(6))"
        ))
        .await;
    assert_eq!(hibernate, 1);
    let hibernate: u64 = sqlx::query_scalar("SELECT MAX(id) FROM mod_jetpack_requests")
        .fetch_one(&env.db)
        .await
        .unwrap();
    env.exec(&format!(
        "INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at,
           outcome_unknown, requested_by, created_at, updated_at)
         VALUES ({newer}, 0, 'hibernate', 'queued', UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE, 0,
           'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
    ))
    .await;
    let job: u64 = sqlx::query_scalar("SELECT MAX(id) FROM mod_jetpack_jobs")
        .fetch_one(&env.db)
        .await
        .unwrap();
    // A known kind from a requester only a newer worker knows.
    let stranger = env
        .service(pid, "Active", "stranger.example", "admin", "premium")
        .await;
    env.exec(&format!(
        "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
         VALUES ({stranger}, 0, 'provision', 'portal-sync', UTC_TIMESTAMP(6))"
    ))
    .await;
    let from_stranger: u64 = sqlx::query_scalar("SELECT MAX(id) FROM mod_jetpack_requests")
        .fetch_one(&env.db)
        .await
        .unwrap();
    // Behind them: a request for another target, and one for the same target.
    let later_other = env
        .store
        .record_request(other, RequestKind::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let later_same = env
        .store
        .record_request(held, RequestKind::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    let behind_job = env
        .store
        .record_request(newer, RequestKind::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    let (request_before, job_before) = (
        row_text(&env.db, "mod_jetpack_requests", hibernate).await,
        row_text(&env.db, "mod_jetpack_jobs", job).await,
    );

    let url = database_url(&env.db).await;
    let mut cmd = worker_command(&url, &env.sandbox.base_url());
    cmd.args(["run", "--once"]);
    let out = output(cmd).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");

    assert_eq!(
        row_text(&env.db, "mod_jetpack_requests", hibernate).await,
        request_before
    );
    assert_eq!(row_text(&env.db, "mod_jetpack_jobs", job).await, job_before);
    assert!(
        !pending(&env.db, later_other.0).await,
        "another target's request was applied"
    );
    assert_eq!(env.job(other).await.state, JobState::Done);
    assert!(
        pending(&env.db, later_same.0).await,
        "the same target's request waits behind"
    );
    assert!(
        pending(&env.db, behind_job.0).await,
        "a request behind an unknown job waits"
    );
    assert!(
        pending(&env.db, from_stranger).await,
        "a request from an unknown requester is not consumed"
    );
    assert_eq!(
        log.matches(UNKNOWN_KIND_WARNING).count(),
        2,
        "one warning for each unknown request: {log}"
    );
    assert!(log.contains("hibernate"), "{log}");

    // Nothing left this worker can apply: the inbox is not applied again at every poll.
    assert!(
        env.store.has_pending_requests().await.unwrap(),
        "not warned yet"
    );
    assert!(env.store.apply_requests().await.unwrap().is_empty());
    assert!(!env.store.has_pending_requests().await.unwrap());
    assert!(
        env.store
            .claim("w", 5, std::time::Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );

    let mut cmd = worker_command(&url, &env.sandbox.base_url());
    cmd.args(["status"]);
    let out = output(cmd).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("1 jobs of an action this worker does not know"),
        "{text}"
    );
}
