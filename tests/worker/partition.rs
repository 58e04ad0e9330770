//! A worker cut off from the database in the middle of an acting call. Worker A (a real
//! `jetpack-worker run` process) reaches MariaDB through a test-owned TCP proxy; its provision
//! call takes 6 s at the sandbox; while the call is in flight the proxy stops forwarding (a
//! partition, or a half-open connection after a failover: silence, not a reset). Worker B,
//! connected directly, reclaims the job once A's lease has expired (A's claim asked for a lease
//! that outlasts the call's 8 s timeout plus margins, although `JETPACK_LEASE` is 3 s), asks the
//! status endpoint, and finishes the job without a second provision. When the partition heals,
//! A's late write is refused.

use jetpack_worker::domain::JobState;
use std::time::{Duration, Instant};

use jetpack_sandbox::ScriptedReply;
use sqlx::mysql::MySqlPool;

use crate::cli::database_url;
use crate::helpers::{Env, key, until};
use crate::proxy::{Proxy, server_addr};
use crate::reliability::{signal, spawn_worker};

#[sqlx::test]
async fn a_partitioned_worker_never_provisions_twice_and_its_late_write_is_refused(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "part.example", "admin", "premium")
        .await;
    let state = env.sandbox.state();
    state.script(
        "part.example",
        vec![ScriptedReply::Slow(Duration::from_secs(6))],
    );
    env.store
        .enqueue(
            sid,
            jetpack_worker::domain::Action::Provision,
            jetpack_worker::domain::RequestedBy::Module,
        )
        .await
        .unwrap();

    let direct = database_url(&env.db).await;
    let proxy = Proxy::start(server_addr(&env.db.connect_options()).await).await;
    let mut via_proxy = url::Url::parse(&direct).unwrap();
    via_proxy.set_host(Some("127.0.0.1")).unwrap();
    via_proxy.set_port(Some(proxy.addr().port())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    // A 3 s lease and calls that may take 8 s: A's lease must cover the call before it starts.
    let settings = [
        ("JETPACK_LEASE", "3s"),
        ("JETPACK_API_TIMEOUT", "8s"),
        ("JETPACK_CONCURRENCY", "2"),
    ];
    let mut a = spawn_worker(
        via_proxy.as_str(),
        &env.sandbox.base_url(),
        &log_a,
        &settings,
    );
    until(Duration::from_secs(20), "A's provision call", || async {
        state.in_flight_acting_calls("part.example") == 1
    })
    .await;
    proxy.pause();
    let paused = Instant::now();

    let mut b = spawn_worker(&direct, &env.sandbox.base_url(), &log_b, &settings);
    // About 14 s (A's extended lease, then B's status call). Up to 90 s: it ran past 40 s
    // twice in full runs, cause unconfirmed; a session of A's paused inside a transaction
    // may keep row locks until the server ends it (the idle-in-transaction limit, 60 s by
    // default). The logs say why if it ever takes longer.
    let waited = Instant::now();
    while env.job(sid).await.state != JobState::Done {
        assert!(
            waited.elapsed() < Duration::from_secs(90),
            "B did not finish the job; A's log:\n{}\nB's log:\n{}",
            std::fs::read_to_string(&log_a).unwrap_or_default(),
            std::fs::read_to_string(&log_b).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let finished_after = paused.elapsed();
    let calls = state.calls("part.example");
    assert_eq!(
        (calls.provision, calls.provision_ok),
        (1, 1),
        "exactly one provision reached the partner: {calls:?}"
    );
    assert!(
        calls.status >= 1,
        "B asked the status endpoint first: {calls:?}"
    );
    assert!(state.overlapping_acting_calls().is_empty());
    assert!(
        finished_after >= Duration::from_secs(5),
        "B waited for A's extended lease ({finished_after:?})"
    );
    let reclaims: u32 =
        sqlx::query_scalar("SELECT reclaims FROM mod_jetpack_jobs WHERE service_id = ?")
            .bind(sid)
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(reclaims, 1);
    let details = env.details(sid).await.unwrap_or_default();
    assert!(
        details.contains("is provisioned for part.example"),
        "{details}"
    );

    // The partition heals: A's pending write reaches the database and is refused.
    proxy.resume();
    let refused = "lease was taken over by another worker; outcome discarded";
    until(Duration::from_secs(40), "A's late write", || async {
        std::fs::read_to_string(&log_a)
            .unwrap_or_default()
            .contains(refused)
    })
    .await;
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(env.details(sid).await.unwrap_or_default(), details);
    assert_eq!(state.calls(&key("part.example")).provision, 1);
    for child in [&mut a, &mut b] {
        signal(child.id().unwrap(), libc::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("worker stops")
            .unwrap();
        assert!(status.success());
    }
    let log = std::fs::read_to_string(&log_a).unwrap();
    assert!(
        log.contains("could not renew the lease"),
        "A noticed the partition: {log}"
    );
}
