//! Three workers on a three-node multi-primary Galera cluster, one node killed mid-drain. The
//! test starts its own cluster of private `mariadbd` processes on loopback (SQL ports
//! 3441-3443, group communication 3444-3446, rsync state transfer 3447-3448, incremental
//! state transfer 3449 for the joiners one after the other), with `galera-4`'s provider and
//! `wsrep_sst_method=rsync`: node 1 bootstraps the cluster, nodes 2 and 3 join it. It loads
//! the WHMCS tables and the worker's migrations through node 1, records 60 provisions the way
//! the PHP module does, each on the next node (so request ids interleave by
//! `auto_increment_offset`), runs one real `jetpack-worker run` per node, kills node 2's
//! `mariadbd` with SIGKILL mid-drain, and checks that every order ends done with exactly one
//! provision at the sandbox and no two acting calls for a site overlapping.
//!
//! `scripts/test` installs `galera-4` and `rsync`; the test installs nothing and fails with
//! that hint when they are missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jetpack_sandbox::SandboxConfig;
use jetpack_worker::domain::{RequestedBy, ServiceId};
use jetpack_worker::lifecycle::RequestKind;
use jetpack_worker::store::Store;
use sqlx::AssertSqlSafe;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};

use crate::helpers::{Env, Layout};
use crate::reliability::{
    assert_drained, is_root, seed_services, signal, spawn_worker, until_done,
};

const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";
const NODES: u16 = 3;
const ORDERS: u32 = 60;

/// node `n` (1-based): its SQL port.
fn sql_port(n: u16) -> u16 {
    3440 + n
}

/// node `n`: its group-communication port.
fn gcomm_port(n: u16) -> u16 {
    3443 + n
}

/// The prerequisites, or a panic saying how to get them.
fn require_galera() {
    let missing: Vec<&str> = [
        (PROVIDER, "galera-4"),
        ("/usr/bin/wsrep_sst_rsync", "mariadb-server"),
        ("/usr/bin/rsync", "rsync"),
    ]
    .into_iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|(_, package)| package)
    .collect();
    assert!(
        missing.is_empty(),
        "the Galera test needs the Debian packages {missing:?} (scripts/test installs them: \
         apt-get install -y galera-4 rsync)"
    );
}

/// A cluster of private servers in one temporary directory; dropping it kills every node.
struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
}

impl Cluster {
    /// Installs node 1's data directory once and copies it for nodes 2 and 3 (they receive
    /// node 1's state by rsync anyway). Blocking.
    fn install() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-galera-")
            .tempdir()
            .unwrap();
        let first = dir.path().join("n1");
        std::fs::create_dir_all(first.join("data")).unwrap();
        std::fs::create_dir_all(first.join("tmp")).unwrap();
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", first.join("data").display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--innodb-log-file-size=16M")
            .arg(format!("--tmpdir={}", first.join("tmp").display()))
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for n in 2..=NODES {
            let copied = Command::new("cp")
                .arg("-a")
                .arg(&first)
                .arg(dir.path().join(format!("n{n}")))
                .status()
                .unwrap();
            assert!(copied.success(), "copy node 1's data directory");
        }
        if is_root() {
            // mariadbd refuses to run as root; the mysql account needs the directories.
            let ok = Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown mysql {}", dir.path().display());
        }
        Cluster {
            dir,
            nodes: (0..NODES).map(|_| None).collect(),
        }
    }

    fn node_dir(&self, n: u16) -> PathBuf {
        self.dir.path().join(format!("n{n}"))
    }

    /// Starts node `n` (node 1 bootstraps a new cluster) and waits until it is Synced.
    async fn start(&mut self, n: u16) {
        let d = self.node_dir(n);
        let peers: Vec<String> = (1..=NODES)
            .map(|m| format!("127.0.0.1:{}", gcomm_port(m)))
            .collect();
        let options = format!(
            "gmcast.listen_addr=tcp://127.0.0.1:{};ist.recv_addr=127.0.0.1:3449;\
             evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;\
             gcache.size=32M",
            gcomm_port(n)
        );
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--port={}", sql_port(n)))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=16M",
                "--binlog-format=ROW",
                "--default-storage-engine=InnoDB",
                "--innodb-autoinc-lock-mode=2",
                "--wsrep-on=ON",
                "--wsrep-cluster-name=jetpack-test",
                "--wsrep-sst-method=rsync",
            ])
            .arg(format!("--wsrep-provider={PROVIDER}"))
            .arg(format!(
                "--wsrep-cluster-address=gcomm://{}",
                peers.join(",")
            ))
            .arg(format!("--wsrep-node-address=127.0.0.1:{}", gcomm_port(n)))
            .arg(format!("--wsrep-node-name=node{n}"))
            .arg(format!("--wsrep-provider-options={options}"))
            .arg(format!(
                "--wsrep-sst-receive-address=127.0.0.1:{}",
                3445 + n
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if n == 1 {
            cmd.arg("--wsrep-new-cluster");
        }
        if is_root() {
            cmd.arg("--user=mysql");
        }
        self.nodes[usize::from(n - 1)] = Some(cmd.spawn().expect("start mariadbd"));
        self.until_synced(n).await;
    }

    /// Waits until node `n` answers and reports itself Synced with the cluster.
    async fn until_synced(&mut self, n: u16) {
        let start = Instant::now();
        let log = self.node_dir(n).join("error.log");
        loop {
            if synced(&root_url(n)).await {
                return;
            }
            let node = self.nodes[usize::from(n - 1)].as_mut().unwrap();
            if let Some(status) = node.try_wait().unwrap() {
                panic!("node {n} exited ({status}): {}", tail(&log, 30));
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "node {n} was not Synced within 60 s: {}",
                tail(&log, 30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL to node `n`'s mariadbd, and waits for it to be gone.
    fn kill(&mut self, n: u16) {
        let mut node = self.nodes[usize::from(n - 1)].take().expect("running");
        signal(node.id(), libc::SIGKILL);
        node.wait().unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            let mut node = node;
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

fn root_url(n: u16) -> String {
    format!("mysql://root@127.0.0.1:{}/mysql", sql_port(n))
}

fn whmcs_url(n: u16) -> String {
    format!(
        "mysql://whmcs:pw-for-the-test@127.0.0.1:{}/whmcs",
        sql_port(n)
    )
}

/// Whether the server at `url` answers and is Synced with its cluster.
async fn synced(url: &str) -> bool {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::MySqlConnection::connect(url).await else {
        return false;
    };
    let state: Option<(String, String)> =
        sqlx::query_as("SHOW STATUS LIKE 'wsrep_local_state_comment'")
            .fetch_optional(&mut conn)
            .await
            .ok()
            .flatten();
    let _ = conn.close().await;
    state.is_some_and(|(_, value)| value == "Synced")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Statements run as root on node 1 (replicated to the others).
async fn as_root(statements: &[&str]) {
    let root = MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&root_url(1))
        .await
        .unwrap();
    for sql in statements {
        sqlx::raw_sql(AssertSqlSafe(*sql))
            .execute(&root)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
    root.close().await;
}

/// Records a Create on `node` through the worker's store (one INSERT, tried again after a
/// lock conflict, as the PHP module does: on Galera a replicated write applied meanwhile can
/// abort even a plain INSERT).
async fn record_provision(node: &Store, sid: u32) {
    node.record_request(ServiceId(sid), RequestKind::Provision, RequestedBy::Module)
        .await
        .unwrap();
}

/// The cluster, its WHMCS database through node 1 (migrated by the binary), a pool per node.
async fn cluster_with_whmcs() -> (Cluster, Env, Vec<MySqlPool>) {
    let mut cluster = tokio::task::spawn_blocking(Cluster::install).await.unwrap();
    for n in 1..=NODES {
        cluster.start(n).await;
    }
    as_root(&[
        "CREATE DATABASE whmcs",
        "CREATE USER 'whmcs'@'127.0.0.1' IDENTIFIED BY 'pw-for-the-test'",
        "GRANT ALL PRIVILEGES ON whmcs.* TO 'whmcs'@'127.0.0.1'",
    ])
    .await;
    let mut pools = Vec::new();
    for n in 1..=NODES {
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .connect(&whmcs_url(n))
            .await
            .unwrap();
        pools.push(pool);
    }
    let config = SandboxConfig {
        latency: Duration::from_millis(150),
        ..SandboxConfig::default()
    };
    let env = Env::with(pools[0].clone(), Layout::V8, config).await;
    let migrate = Command::new(env!("CARGO_BIN_EXE_jetpack-worker"))
        .env_clear()
        .env("DATABASE_URL", whmcs_url(1))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    (cluster, env, pools)
}

/// 60 Creates recorded round-robin on three Galera nodes, a `jetpack-worker run` per node,
/// node 2's mariadbd killed mid-drain: every order is done, each site provisioned exactly
/// once, no two acting calls for a site overlapping, and the two workers left stop cleanly.
#[tokio::test]
async fn three_workers_on_three_galera_nodes_survive_a_killed_node() {
    require_galera();
    let started = Instant::now();
    let (mut cluster, env, pools) = cluster_with_whmcs().await;
    let (_, sids) = seed_services(&env, ORDERS, "g").await;
    let mut stores = Vec::new();
    for pool in &pools {
        stores.push(Store::open(pool.clone(), None).await.unwrap());
    }
    for (i, &sid) in sids.iter().enumerate() {
        record_provision(&stores[i % stores.len()], sid).await;
    }
    let residues: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT id % 3) FROM mod_jetpack_requests")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(residues, 3, "each node handed out ids by its own offset");
    let ready = started.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<PathBuf> = (1..=NODES)
        .map(|n| dir.path().join(format!("worker{n}.log")))
        .collect();
    let settings = [
        ("JETPACK_CONCURRENCY", "4"),
        ("JETPACK_LEASE", "4s"),
        ("JETPACK_API_TIMEOUT", "2s"),
    ];
    let api = env.sandbox.base_url();
    let mut workers: Vec<_> = (1..=NODES)
        .map(|n| spawn_worker(&whmcs_url(n), &api, &logs[usize::from(n - 1)], &settings))
        .collect();
    until_done(&env.db, 15, Duration::from_secs(60), &logs).await;
    cluster.kill(2);
    let killed = Instant::now();
    until_done(&env.db, ORDERS.into(), Duration::from_secs(60), &logs).await;
    let drained_after_kill = killed.elapsed();

    assert_drained(&env, &sids, "g").await;
    let state = env.sandbox.state();
    let repeated: Vec<u32> = sids
        .iter()
        .copied()
        .filter(|sid| state.calls(&format!("g{sid}.example")).provision != 1)
        .collect();
    assert!(
        repeated.is_empty(),
        "one provision call per site: {repeated:?}"
    );
    assert!(state.overlapping_acting_calls().is_empty());
    // Node 2's worker held jobs when its database died: they were reclaimed through the
    // surviving nodes once their leases ran out, each after a status call.
    let reclaimed: Vec<(u32, u32)> = sqlx::query_as(
        "SELECT service_id, reclaims FROM mod_jetpack_jobs WHERE reclaims > 0 ORDER BY service_id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    // The concurrency (4) bounds each worker's calls in flight; a worker holds at most 4 in
    // their calls, 2 claimed ahead and 3 × 4 being written.
    assert!(
        !reclaimed.is_empty() && reclaimed.len() <= 4 + 2 + 3 * 4,
        "node 2's worker held 1 to its holding bound of jobs at the kill: {reclaimed:?}"
    );
    let peak = state.peak_calls_in_flight();
    assert!(
        peak <= 3 * 4,
        "three workers, at most `concurrency` calls in flight each: {peak}"
    );
    for &(sid, times) in &reclaimed {
        let c = state.calls(&format!("g{sid}.example"));
        assert_eq!(times, 1, "g{sid} reclaimed once");
        assert!(c.status >= 1, "g{sid}: the reclaimer asked first: {c:?}");
    }
    for i in [0, 2] {
        signal(workers[i].id().unwrap(), libc::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(20), workers[i].wait())
            .await
            .expect("the worker stops")
            .unwrap();
        assert!(status.success(), "{}", tail(&logs[i], 30));
        let log = std::fs::read_to_string(&logs[i]).unwrap();
        assert!(!log.contains("panicked"), "{log}");
    }
    let _ = workers[1].kill().await;
    println!(
        "galera: cluster and seed ready in {ready:.1?}, drained {drained_after_kill:.1?} after \
         node 2 was killed ({} jobs reclaimed), {:.1?} in all",
        reclaimed.len(),
        started.elapsed()
    );
}
