//! Running as a service: the systemd unit verifies, SIGTERM mid-drain loses and repeats
//! nothing, /metrics after a drain, housekeeping, and the least-privilege database user.

use jetpack_worker::domain::JobState;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use jetpack_worker::domain::{Action, RequestedBy};
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlPool;

use crate::cli::{database_url, output, worker_command};
use crate::helpers::{Env, Layout, load_whmcs};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn sigterm(child: &Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits (off the runtime thread) for the child to exit; panics after `limit`.
pub(crate) async fn wait_exit(
    mut child: Child,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut log = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut log)
                    .unwrap();
                return (status, log);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                panic!("worker did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap()
}

async fn count(env: &Env, sql: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
        .fetch_one(&env.db)
        .await
        .unwrap()
}

async fn until(env: &Env, sql: &str, want: i64, limit: Duration) {
    let start = Instant::now();
    while count(env, sql).await < want {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {sql} >= {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Until a job is claimed and a provision call of one of the first 12 sites `seed` made is in
/// flight: a job only claimed (ahead of its call slot) is given back without a call on
/// SIGTERM, which a loaded machine can make every claimed job; and any other call (the token
/// request) may be in flight with no job in its acting call yet.
async fn in_a_call(env: &Env) {
    until(
        env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'running'",
        1,
        Duration::from_secs(20),
    )
    .await;
    // An acting (provision) call of one of `seed`'s sites: the token request or the
    // reconciler's and licence products' reads are calls too, but not a job's.
    crate::helpers::until(
        Duration::from_secs(20),
        "a provision call in flight",
        || async {
            let state = env.sandbox.state();
            (0..12).any(|i| state.in_flight_acting_calls(&format!("drain{i}.example")) > 0)
        },
    )
    .await;
}

#[test]
fn the_systemd_unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/jetpack-worker.service"
    ))
    .unwrap();
    assert!(
        unit.contains("Type=notify")
            && unit.contains("WatchdogSec=")
            && unit.contains("CapabilityBoundingSet=")
    );
    let local = unit
        .replace(
            "/usr/local/bin/jetpack-worker",
            env!("CARGO_BIN_EXE_jetpack-worker"),
        )
        .replace("EnvironmentFile=/etc/", "EnvironmentFile=-/etc/");
    let path = dir.path().join("jetpack-worker.service");
    std::fs::write(&path, local).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd) is needed; scripts/test installs it");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !said.contains("jetpack-worker.service:"),
        "{said}"
    );
}

pub(crate) async fn seed(env: &Env, n: usize) -> Vec<jetpack_worker::domain::ServiceId> {
    let pid = env.product("").await;
    let mut sids = Vec::new();
    for i in 0..n {
        let sid = env
            .service(
                pid,
                "Active",
                &format!("drain{i}.example"),
                "admin",
                "premium",
            )
            .await;
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
        sids.push(sid);
    }
    sids
}

pub(crate) fn spawn_run(url: &str, api: &str, extra: &[(&str, &str)]) -> Child {
    let mut cmd = worker_command(url, api);
    cmd.arg("run")
        .env("JETPACK_CONCURRENCY", "4")
        .env("JETPACK_LEASE", "30s")
        .env("JETPACK_ADOPT", "false");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[sqlx::test]
async fn sigterm_mid_drain_finishes_or_releases_every_job_and_repeats_none(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let url = database_url(&env.db).await;
    let api = env.sandbox.base_url();
    let sids = seed(&env, 12).await;

    // Phase 1: in-flight calls take 700 ms, the drain allows 5 s: in-flight jobs finish.
    env.sandbox.state().set_latency(Duration::from_millis(700));
    let child = spawn_run(&url, &api, &[("JETPACK_DRAIN_TIMEOUT", "5s")]);
    in_a_call(&env).await;
    sigterm(&child);
    let (status, log) = wait_exit(child, Duration::from_secs(15)).await;
    assert!(status.success(), "exit 0 after a drain: {log}");
    assert!(
        log.contains("SIGTERM received") && log.contains("worker stopped"),
        "{log}"
    );
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'running'"
        )
        .await,
        0
    );
    let done_after_first = count(
        &env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'",
    )
    .await;
    assert!(
        (1..12).contains(&done_after_first),
        "some but not all done: {done_after_first}"
    );

    // Phase 2: calls take 20 s, the drain allows 1 s. The in-flight jobs are in the middle of a
    // provision call, which may still reach the partner: they are not released (another worker
    // would call again at once) but left to their lease, which covers the call.
    env.sandbox.state().set_latency(Duration::from_secs(20));
    let child = spawn_run(&url, &api, &[("JETPACK_DRAIN_TIMEOUT", "1s")]);
    in_a_call(&env).await;
    sigterm(&child);
    let (status, log) = wait_exit(child, Duration::from_secs(10)).await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("stopped during a partner-API call; left to its lease rather than released"),
        "{log}"
    );
    assert!(!log.contains("released for another run"), "{log}");
    let running = count(
        &env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'running' AND lease_expires_at > UTC_TIMESTAMP(6) + INTERVAL 20 SECOND",
    )
    .await;
    assert!(
        running >= 1,
        "the jobs stopped mid-call keep a lease that covers the call"
    );
    // Time travel to the end of those leases.
    env.exec("UPDATE mod_jetpack_jobs SET lease_expires_at = UTC_TIMESTAMP(6), run_at = UTC_TIMESTAMP(6) WHERE state = 'running'")
        .await;

    // Finish the rest: every job done exactly once, none lost.
    env.sandbox.state().set_latency(Duration::ZERO);
    let out = output({
        let mut c = worker_command(&url, &api);
        c.args(["run", "--once"]);
        c
    })
    .await;
    assert!(out.status.success());
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'"
        )
        .await,
        12
    );
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM mod_jetpack_jobs").await,
        12,
        "no job duplicated or lost"
    );
    for sid in sids {
        let lines = env.activity(sid).await;
        assert_eq!(
            lines.iter().filter(|l| l.contains("provisioned")).count(),
            1,
            "{sid}: {lines:?}"
        );
    }
}

/// The end of a drain is one short claim per batch of outcomes written, not one per call
/// slot given back or per job: 64 jobs at a concurrency of 16 in 20 ms calls. Before, every
/// slot given back and every job reaped one at a time made a claim once nothing was due:
/// 31-36 empty claims here, 10-12 after. At most one per reap once the queue is empty (the
/// concurrency and the jobs ahead, 24, were in flight then) and one per intake step or poll.
#[sqlx::test]
async fn the_end_of_a_drain_is_not_a_run_of_empty_claims(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let url = database_url(&env.db).await;
    env.sandbox.state().set_latency(Duration::from_millis(20));
    seed(&env, 64).await;
    let addr = format!("127.0.0.1:{}", free_port());
    let child = spawn_run(
        &url,
        &env.sandbox.base_url(),
        &[
            ("JETPACK_METRICS_ADDR", &addr),
            ("JETPACK_CONCURRENCY", "16"),
        ],
    );
    until(
        &env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'",
        64,
        Duration::from_secs(30),
    )
    .await;
    let body = scrape_until(&addr, r#"jetpack_jobs_done_total{action="provision"} 64"#).await;
    sigterm(&child);
    let (status, _) = wait_exit(child, Duration::from_secs(10)).await;
    assert!(status.success());
    let claims = |got: &str| -> u64 {
        let name = format!(r#"jetpack_claims_total{{got="{got}"}} "#);
        body.lines()
            .find_map(|l| l.strip_prefix(name.as_str()))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    assert!(
        claims("none") + claims("fewer") <= 28,
        "short claims: {} none, {} fewer; {body}",
        claims("none"),
        claims("fewer")
    );
    assert!(claims("all") >= 4, "{body}");
}

/// The metrics page once it contains `want` (the counters move right after the outcome is
/// written), or the last page read after 5 s.
async fn scrape_until(addr: &str, want: &str) -> String {
    let mut body = String::new();
    for _ in 0..50 {
        body = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.contains(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    body
}

#[sqlx::test]
async fn metrics_are_served_and_count_a_drain(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let url = database_url(&env.db).await;
    seed(&env, 5).await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = spawn_run(
        &url,
        &env.sandbox.base_url(),
        &[("JETPACK_METRICS_ADDR", &addr)],
    );
    until(
        &env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'",
        5,
        Duration::from_secs(20),
    )
    .await;
    let body = scrape_until(&addr, r#"jetpack_jobs_done_total{action="provision"} 5"#).await;
    sigterm(&child);
    let (status, _) = wait_exit(child, Duration::from_secs(10)).await;
    assert!(status.success());
    assert!(
        body.contains(r#"jetpack_jobs_done_total{action="provision"} 5"#),
        "{body}"
    );
    assert!(
        body.contains(r#"jetpack_jobs_claimed_total{action="provision"} 5"#),
        "{body}"
    );
    assert!(
        body.contains(
            r#"jetpack_api_request_duration_seconds_count{endpoint="provision",outcome="ok"} 5"#
        ),
        "{body}"
    );
    assert!(
        body.contains("jetpack_api_request_duration_seconds_bucket"),
        "{body}"
    );
    assert!(
        body.contains(r#"jetpack_queue_depth{state="queued"}"#),
        "{body}"
    );
    assert!(
        body.contains("jetpack_oldest_due_job_age_seconds"),
        "{body}"
    );
}

#[sqlx::test]
async fn housekeeping_prunes_only_old_finished_jobs(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let sids = seed(&env, 4).await;
    env.worker().run_once().await.unwrap();
    // Two old finished jobs, one recent, and one old but unfinished (requeued).
    env.exec(&format!(
        "UPDATE mod_jetpack_jobs SET finished_at = UTC_TIMESTAMP(6) - INTERVAL 100 DAY WHERE service_id IN ({}, {})",
        sids[0], sids[1]
    ))
    .await;
    env.exec(&format!(
        "UPDATE mod_jetpack_jobs SET state = 'queued', finished_at = NULL,
           created_at = UTC_TIMESTAMP(6) - INTERVAL 200 DAY, run_at = UTC_TIMESTAMP(6) + INTERVAL 1 DAY
         WHERE service_id = {}",
        sids[3]
    ))
    .await;
    let pruned = env.worker().prune(Duration::from_secs(90 * 86400)).await;
    assert_eq!(pruned, 2);
    let left: Vec<(u32, String)> =
        sqlx::query_as("SELECT service_id, state FROM mod_jetpack_jobs ORDER BY service_id")
            .fetch_all(&env.db)
            .await
            .unwrap();
    assert_eq!(
        left,
        vec![
            (sids[2].0, "done".to_owned()),
            (sids[3].0, "queued".to_owned())
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn the_least_privilege_user_can_migrate_and_provision(pool: MySqlPool) {
    load_whmcs(&pool, Layout::V8).await;
    let db: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let user = format!("jpw_{}", &db[db.len() - 10..])
        .to_lowercase()
        .replace('-', "_");
    let grants = include_str!("../../docs/database-user.sql")
        .replace("`whmcs`", &format!("`{db}`"))
        .replace(
            "'jetpack_worker'@'localhost'",
            &format!("'{user}'@'127.0.0.1'"),
        )
        .replace("CHANGE-ME", "least-privilege-pw");
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(grants))
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let mut url = url::Url::parse(&database_url(&pool).await).unwrap();
    url.set_username(&user).unwrap();
    url.set_password(Some("least-privilege-pw")).unwrap();
    let url = url.to_string();

    let out = output({
        let mut c = worker_command(&url, "http://127.0.0.1:9");
        c.arg("migrate");
        c
    })
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let env = Env::with_loaded(pool.clone()).await;
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
        .await;
    let pid = env.product("").await;
    let good = env
        .service(pid, "Pending", "lp.example", "admin", "premium")
        .await;
    let bad = env
        .service(pid, "Active", "lp-bad.example", "nobody", "premium")
        .await;
    let gone = env
        .service(pid, "Active", "lp-gone.example", "admin", "premium")
        .await;
    let adopted = env
        .service_with_order(
            pid,
            "Pending",
            "Active",
            0,
            "lp-adopt.example",
            "admin",
            "premium",
        )
        .await;
    env.store
        .enqueue(good, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.store
        .enqueue(bad, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.store
        .enqueue(gone, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();

    let out = output({
        let mut c = worker_command(&url, &env.sandbox.base_url());
        c.args(["run", "--once"]);
        c
    })
    .await;
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("denied"), "{log}");
    assert_eq!(env.job(good).await.state, JobState::Done);
    assert_eq!(env.job(adopted).await.state, JobState::Done);
    assert_eq!(env.status(good).await, "Active");
    assert_eq!(env.job(bad).await.state, JobState::Failed);
    assert_eq!(env.module_queue().await.len(), 1);
    assert_eq!(env.status(gone).await, "Terminated");
    let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(logged > 0);

    // What the user must not do.
    let limited = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let denied = sqlx::query("UPDATE tblhosting SET amount = 0")
        .execute(&limited)
        .await;
    assert!(denied.is_err(), "the worker's user cannot change prices");
    let denied = sqlx::query("SELECT password FROM tblclients")
        .execute(&limited)
        .await;
    assert!(denied.is_err(), "the worker's user cannot read clients");
    limited.close().await;
    sqlx::query(AssertSqlSafe(format!("DROP USER '{user}'@'127.0.0.1'")))
        .execute(&pool)
        .await
        .unwrap();
}

/// What the worker told systemd, as a test-owned `NOTIFY_SOCKET` received it.
struct Notifications {
    got: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Notifications {
    fn listen() -> Notifications {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), text));
            }
        });
        Notifications {
            got,
            _dir: dir,
            path,
        }
    }

    /// Watchdog pings received in `[from, to]`.
    fn pings_between(&self, from: Instant, to: Instant) -> usize {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(at, m)| *at >= from && *at <= to && m.lines().any(|l| l == "WATCHDOG=1"))
            .count()
    }

    /// Every `STATUS=` text received since `from`.
    fn statuses_since(&self, from: Instant) -> Vec<String> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(at, _)| *at >= from)
            .flat_map(|(_, m)| {
                m.lines()
                    .filter_map(|l| l.strip_prefix("STATUS=").map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The watchdog is fed from the worker's own progress, not from the database answering: a
/// database that is down for four watchdog periods leaves the worker running and pinging,
/// with the outage in `STATUS=`, and the job recorded meanwhile is provisioned once it is
/// back. A loop that really stops (every statement hangs on a silent connection for longer
/// than the watchdog period) stops the pings, so systemd would restart it; they come back
/// when the loop does.
#[sqlx::test]
async fn the_watchdog_outlives_a_database_outage_and_stops_for_a_stuck_loop(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let opts = (*env.db.connect_options()).clone();
    let proxy = crate::proxy::Proxy::start(crate::proxy::server_addr(&opts).await).await;
    let mut via = url::Url::parse(&database_url(&env.db).await).unwrap();
    via.set_host(Some("127.0.0.1")).unwrap();
    via.set_port(Some(proxy.addr().port())).unwrap();
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "watchdog.example", "admin", "premium")
        .await;
    let notes = Notifications::listen();
    let period = Duration::from_secs(2);
    let socket = notes.path.to_string_lossy().into_owned();
    let usec = period.as_micros().to_string();
    let mut child = spawn_run(
        via.as_str(),
        &env.sandbox.base_url(),
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", &usec)],
    );
    crate::helpers::until(
        Duration::from_secs(20),
        "the first watchdog ping",
        || async {
            notes.pings_between(Instant::now() - Duration::from_secs(60), Instant::now()) > 0
        },
    )
    .await;

    // The database goes away for four watchdog periods.
    proxy.down();
    let down_at = Instant::now();
    tokio::time::sleep(4 * period).await;
    let outage_end = Instant::now();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the worker exited during the outage"
    );
    let pings = notes.pings_between(down_at + period, outage_end);
    assert!(
        pings >= 3,
        "the watchdog went unfed during a database outage: {pings} pings in {:?}",
        outage_end - down_at - period
    );
    let statuses = notes.statuses_since(down_at);
    assert!(
        statuses
            .iter()
            .any(|s| s.contains("database not answering")),
        "the outage is in STATUS=: {statuses:?}"
    );
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    proxy.up();
    until(
        &env,
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'",
        1,
        Duration::from_secs(40),
    )
    .await;
    assert_eq!(env.sandbox.state().calls("watchdog.example").provision, 1);

    // Every statement now hangs (the connection is silent, not closed): the loop is stuck.
    proxy.pause();
    let paused_at = Instant::now();
    tokio::time::sleep(4 * period).await;
    let silent = notes.pings_between(paused_at + 2 * period, Instant::now());
    assert_eq!(silent, 0, "a stuck loop kept feeding the watchdog");
    let statuses = notes.statuses_since(paused_at);
    assert!(
        statuses.iter().any(|s| s.starts_with("stuck")),
        "STATUS= says it is stuck: {statuses:?}"
    );
    proxy.resume();
    let resumed_at = Instant::now();
    crate::helpers::until(
        Duration::from_secs(40),
        "pings after the loop is back",
        || async { notes.pings_between(resumed_at, Instant::now()) > 0 },
    )
    .await;
    sigterm(&child);
    let (status, log) = wait_exit(child, Duration::from_secs(30)).await;
    assert!(status.success(), "{log}");
    assert!(log.contains("stopped making progress"), "{log}");
}
