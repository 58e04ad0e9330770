//! Test harness: a WHMCS database per test (real table definitions from tests/fixtures), the
//! sandbox partner API on loopback, and a worker wired to both. Seeding and assertions use the
//! test's own connections with WHMCS's `sql_mode=''`; the worker gets its own pool with the
//! server's default (strict) mode, as in production.

use jetpack_worker::domain::JobState;
use std::sync::Arc;
use std::time::Duration;

use jetpack_sandbox::{Sandbox, SandboxConfig};
use jetpack_worker::dns::FnResolver;
use jetpack_worker::domain::ServiceId;
use jetpack_worker::jetpack::{JetpackClient, Politeness, Timeouts};
use jetpack_worker::retry::RetryPolicy;
use jetpack_worker::store::{ClaimPath, Store};
use jetpack_worker::worker::{Worker, WorkerSettings};
use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, Row};

/// Which WHMCS table layout to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    V8,
    V783,
}

pub const SECRET: &str = "demo-secret";
pub const CLIENT_ID: &str = "demo-client";

pub struct Env {
    /// The test's seeding/asserting pool (sql_mode '').
    pub db: MySqlPool,
    pub sandbox: Sandbox,
    pub store: Store,
}

pub async fn exec_on(pool: &MySqlPool, sql: &str) -> u64 {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET SESSION sql_mode = ''")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"))
        .rows_affected()
}

pub async fn load_whmcs(pool: &MySqlPool, layout: Layout) {
    let file = match layout {
        Layout::V8 => include_str!("../fixtures/whmcs-8.sql"),
        Layout::V783 => include_str!("../fixtures/whmcs-7.8.3.sql"),
    };
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET SESSION sql_mode = ''")
        .execute(&mut *conn)
        .await
        .unwrap();
    for stmt in file.split(";\n") {
        let code: String = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if code.trim().is_empty() {
            continue;
        }
        sqlx::raw_sql(AssertSqlSafe(code.clone()))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{e}: {code}"));
    }
}

/// A second pool on the same database, configured as production configures it.
pub async fn worker_pool(pool: &MySqlPool, max: u32) -> MySqlPool {
    Store::connect_with((*pool.connect_options()).clone(), max)
        .await
        .unwrap()
}

pub fn fast_settings(concurrency: u32) -> WorkerSettings {
    WorkerSettings {
        concurrency,
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_secs(10),
        lease_margin: Duration::from_secs(2),
        drain_timeout: Duration::from_secs(5),
        retry: RetryPolicy::DEFAULT,
        // Tests that run the service count every request the sandbox gets.
        licence_products: jetpack_worker::worker::ProductsSettings {
            enabled: false,
            ..Default::default()
        },
        ..WorkerSettings::default()
    }
}

impl Env {
    pub async fn new(pool: MySqlPool) -> Env {
        Env::with(pool, Layout::V8, SandboxConfig::default()).await
    }

    /// For a database whose WHMCS tables and migrations are already there.
    pub async fn with_loaded(pool: MySqlPool) -> Env {
        let sandbox = Sandbox::start("127.0.0.1:0".parse().unwrap(), SandboxConfig::default())
            .await
            .unwrap();
        let store = Store::open(worker_pool(&pool, 6).await, None)
            .await
            .unwrap();
        Env {
            db: pool,
            sandbox,
            store,
        }
    }

    pub async fn with(pool: MySqlPool, layout: Layout, config: SandboxConfig) -> Env {
        load_whmcs(&pool, layout).await;
        let sandbox = Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let store = Store::open(worker_pool(&pool, 6).await, None)
            .await
            .unwrap();
        Env {
            db: pool,
            sandbox,
            store,
        }
    }

    pub async fn store_with(&self, claim: ClaimPath) -> Store {
        Store::open(worker_pool(&self.db, 6).await, Some(claim))
            .await
            .unwrap()
    }

    pub fn worker(&self) -> Worker {
        self.worker_with(self.store.clone(), fast_settings(4))
    }

    pub fn worker_with(&self, store: Store, settings: WorkerSettings) -> Worker {
        self.worker_polite(store, settings, Politeness::default())
    }

    /// A worker whose client has this rate limit and breaker policy.
    pub fn worker_polite(
        &self,
        store: Store,
        settings: WorkerSettings,
        politeness: Politeness,
    ) -> Worker {
        let api = JetpackClient::new(
            &self.sandbox.base_url(),
            Timeouts {
                connect: Duration::from_secs(2),
                request: Duration::from_secs(5),
            },
        )
        .unwrap()
        .with_politeness(politeness);
        let state = self.sandbox.state();
        let resolver = FnResolver(move |host: &str| state.is_resolvable(host));
        Worker::new(store, Arc::new(api), Arc::new(resolver), settings)
    }

    pub async fn exec(&self, sql: &str) -> u64 {
        exec_on(&self.db, sql).await
    }

    /// A jetpack product with the four custom fields; returns its id.
    pub async fn product(&self, autosetup: &str) -> u32 {
        self.product_with(
            autosetup,
            CLIENT_ID,
            SECRET,
            &[
                "Site URL|Your WordPress site",
                "Local User",
                "Plan",
                "jetpack_provisioning_details|Jetpack Provisioning Details",
            ],
        )
        .await
    }

    pub async fn product_with(
        &self,
        autosetup: &str,
        id: &str,
        secret: &str,
        fields: &[&str],
    ) -> u32 {
        let mut conn = self.db.acquire().await.unwrap();
        sqlx::query("SET SESSION sql_mode = ''")
            .execute(&mut *conn)
            .await
            .unwrap();
        let pid = sqlx::query(
            "INSERT INTO tblproducts (type, name, autosetup, servertype, configoption1, configoption2)
             VALUES ('other', 'Jetpack Premium', ?, 'jetpack', ?, ?)",
        )
        .bind(autosetup)
        .bind(id)
        .bind(secret)
        .execute(&mut *conn)
        .await
        .unwrap()
        .last_insert_id() as u32;
        for name in fields {
            sqlx::query(
                "INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly)
                 VALUES ('product', ?, ?, 'text', '')",
            )
            .bind(pid)
            .bind(name)
            .execute(&mut *conn)
            .await
            .unwrap();
        }
        pid
    }

    /// A service of `pid` with an order (status `order_status`) and the three customer values.
    pub async fn service(
        &self,
        pid: u32,
        status: &str,
        site: &str,
        user: &str,
        plan: &str,
    ) -> ServiceId {
        self.service_with_order(pid, status, "Active", 0, site, user, plan)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn service_with_order(
        &self,
        pid: u32,
        status: &str,
        order_status: &str,
        invoice: u32,
        site: &str,
        user: &str,
        plan: &str,
    ) -> ServiceId {
        let mut conn = self.db.acquire().await.unwrap();
        sqlx::query("SET SESSION sql_mode = ''")
            .execute(&mut *conn)
            .await
            .unwrap();
        let oid = sqlx::query("INSERT INTO tblorders (ordernum, userid, date, status, invoiceid) VALUES (1, 5, NOW(), ?, ?)")
            .bind(order_status)
            .bind(invoice)
            .execute(&mut *conn)
            .await
            .unwrap()
            .last_insert_id();
        let sid = sqlx::query(
            "INSERT INTO tblhosting (userid, orderid, packageid, regdate, domainstatus) VALUES (5, ?, ?, CURDATE(), ?)",
        )
        .bind(oid)
        .bind(pid)
        .bind(status)
        .execute(&mut *conn)
        .await
        .unwrap()
        .last_insert_id() as u32;
        for (key, value) in [("Site URL", site), ("Local User", user), ("Plan", plan)] {
            sqlx::query(
                "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value)
                 SELECT id, ?, ? FROM tblcustomfields
                 WHERE type = 'product' AND relid = ? AND (fieldname = ? OR fieldname LIKE CONCAT(?, '|%'))",
            )
            .bind(sid)
            .bind(value)
            .bind(pid)
            .bind(key)
            .bind(key)
            .execute(&mut *conn)
            .await
            .unwrap();
        }
        ServiceId(sid)
    }

    pub async fn details(&self, sid: ServiceId) -> Option<String> {
        sqlx::query_scalar(
            "SELECT v.value FROM tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
             WHERE v.relid = ? AND f.fieldname LIKE 'jetpack_provisioning_details%' ORDER BY v.id LIMIT 1",
        )
        .bind(sid)
        .fetch_optional(&self.db)
        .await
        .unwrap()
    }

    pub async fn status(&self, sid: ServiceId) -> String {
        sqlx::query_scalar("SELECT CAST(domainstatus AS CHAR) FROM tblhosting WHERE id = ?")
            .bind(sid)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn activity(&self, sid: ServiceId) -> Vec<String> {
        let rows = sqlx::query("SELECT description, user, userid FROM tblactivitylog ORDER BY id")
            .fetch_all(&self.db)
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                let d: String = r.get("description");
                let user: String = r.get("user");
                assert_eq!(user, "System");
                d
            })
            .filter(|d| d.contains(&format!("Service ID: {sid} ")))
            .collect()
    }

    /// (action, state) of every job of the service, oldest first.
    pub async fn jobs(&self, sid: ServiceId) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT action, state FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id",
        )
        .bind(sid)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    /// (state, attempts, last_error, dns_checks) of the service's latest job.
    pub async fn job(&self, sid: ServiceId) -> Job {
        let r = sqlx::query(
            "SELECT state, attempts, last_error, dns_checks, requested_by,
                    TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), run_at) AS due_in
             FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(sid)
        .fetch_one(&self.db)
        .await
        .unwrap();
        Job {
            state: JobState::parse(r.get::<&str, _>("state")).unwrap(),
            attempts: r.get("attempts"),
            last_error: r.get("last_error"),
            dns_checks: r.get("dns_checks"),
            requested_by: r.get("requested_by"),
            due_in: r.get("due_in"),
        }
    }

    /// Makes every unfinished job due now (time travel for retries and DNS re-checks).
    pub async fn make_due(&self) {
        self.exec("UPDATE mod_jetpack_jobs SET run_at = UTC_TIMESTAMP(6) WHERE state IN ('queued','waiting_dns')")
            .await;
    }

    /// Open (not completed) Module Queue rows: (service, action, error, retries).
    pub async fn module_queue(&self) -> Vec<(u32, String, String, u16, i8)> {
        sqlx::query_as(
            "SELECT service_id, module_action, last_attempt_error, num_retries, completed FROM tblmodulequeue ORDER BY id",
        )
        .fetch_all(&self.db)
        .await
        .unwrap()
    }
}

#[derive(Debug)]
pub struct Job {
    pub state: JobState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub dns_checks: u32,
    pub requested_by: String,
    pub due_in: i64,
}

/// The sandbox's site key for a Site URL value.
pub fn key(site: &str) -> String {
    jetpack_sandbox::site_key(site)
}

/// Polls `check` every 20 ms until it holds; panics naming `what` after `limit`.
pub async fn until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A small deterministic generator (xorshift), so a failing sequence is reproduced from its
/// seed alone (not 0).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
