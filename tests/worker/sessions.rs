//! Every pooled session gets a lock-wait limit and an idle-in-transaction limit, so a worker
//! whose host hangs inside a transaction (TCP left half-open) holds its row locks for about
//! the idle limit, not the server's 8-hour `wait_timeout`.

use std::time::{Duration, Instant};

use jetpack_worker::domain::{Action, RequestedBy};
use jetpack_worker::store::{ClaimPath, SessionLimits, Store};
use sqlx::mysql::MySqlPool;

use crate::helpers::Env;

/// A pool configured as production configures it, with these limits.
async fn pool_with(db: &MySqlPool, limits: SessionLimits) -> MySqlPool {
    Store::connect_with_limits((*db.connect_options()).clone(), 3, limits)
        .await
        .unwrap()
}

/// What the session has set: (lock wait, idle in transaction, isolation).
async fn session_settings(conn: &mut sqlx::MySqlConnection) -> (u64, u64, String) {
    sqlx::query_as(
        "SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.idle_transaction_timeout,
                @@SESSION.tx_isolation",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[sqlx::test]
async fn every_pooled_session_has_the_lock_wait_and_idle_in_transaction_limits(db: MySqlPool) {
    let limits = SessionLimits {
        lock_wait: Duration::from_secs(3),
        idle_in_transaction: Duration::from_secs(7),
    };
    let pool = pool_with(&db, limits).await;
    // Three sessions open at once: each is a connection of its own, set up on connect.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.acquire().await.unwrap());
    }
    for conn in &mut held {
        let got = session_settings(conn).await;
        assert_eq!(got, (3, 7, "READ-COMMITTED".to_owned()));
    }
    // The defaults (what `run` uses without settings): 10 s and 60 s.
    let default = pool_with(&db, SessionLimits::default()).await;
    let mut conn = default.acquire().await.unwrap();
    assert_eq!(
        session_settings(&mut conn).await,
        (10, 60, "READ-COMMITTED".to_owned())
    );
    // The test's own pool (no limits set) shows what the server would do otherwise.
    let mut plain = db.acquire().await.unwrap();
    let (_, idle, _) = session_settings(&mut plain).await;
    assert_eq!(
        idle, 0,
        "the server's default is no idle-in-transaction limit"
    );
}

#[sqlx::test]
async fn a_session_silent_inside_a_transaction_loses_its_locks_within_the_idle_limit(
    db: MySqlPool,
) {
    let env = Env::new(db).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "hang.example", "admin", "premium")
        .await;
    let job = env
        .store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap()
        .job
        .unwrap();
    // A worker session that locks the job row and then goes silent, connection left open.
    let hung = pool_with(
        &env.db,
        SessionLimits {
            lock_wait: Duration::from_secs(10),
            idle_in_transaction: Duration::from_secs(2),
        },
    )
    .await;
    let mut tx = hung.begin().await.unwrap();
    let locked: Option<(u64,)> =
        sqlx::query_as("SELECT id FROM mod_jetpack_jobs WHERE id = ? FOR UPDATE")
            .bind(job.0)
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
    assert!(locked.is_some());
    // Another worker's claim (the UPDATE path waits on a locked row rather than skipping it).
    let other = env.store_with(ClaimPath::Update).await;
    let started = Instant::now();
    let claimed = other
        .claim("other", 5, Duration::from_secs(30))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(claimed.len(), 1, "the other worker claims the job");
    assert_eq!(claimed[0].id, job);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "the claim waited {waited:?}: about the idle limit (2 s), not the lock wait (10 s)"
    );
    // The silent session was ended by the server, its transaction rolled back.
    assert!(sqlx::query("SELECT 1").execute(&mut *tx).await.is_err());
}
