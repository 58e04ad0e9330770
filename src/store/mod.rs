//! All SQL lives here; nothing else in the crate builds a query. The worker's own tables:
//! requests and the jobs they make (`requests`, applied as sets by `apply`, `jobs`), claiming
//! (`claim`; a deletion's grace period and Keep the plan in `grace`), the write that ends an attempt (`finish`; many at once in `finish_batch`, cut to
//! size by `chunks`; WHMCS's side in `writeback`), the ledger (`ledger`), the adoption scan
//! (`adoption`: discovery, its trailing window, the re-check, its marks and requests and the
//! deleted-target sweep, each written once over services and addons), the licence ledger
//! (`licences`, the licence products in `licence_products`), the reconciler's watch
//! and drift rows (`watch`), worker heartbeats (`workers`), the partner accounts on hold (`holds`) and reading it all back
//! (`report`). WHMCS's tables are read in `whmcs` (and `emails`, for the doctor), into the
//! row types of `rows`; a statement's plan is read back by `explain`. No transaction is ever held across an HTTP call: callers get plain
//! data back, never a connection or a lock. The store imports only leaf modules (`domain`,
//! `lifecycle`, `drift`, `rules`, `text`). Why the queries are runtime strings, not sqlx's checked
//! macros: docs/architecture.md.
//!
//! What each table is for and one job's path through them: docs/architecture.md.

mod adoption;
mod apply;
mod chunks;
mod claim;
mod emails;
mod explain;
mod finish;
mod finish_batch;
mod grace;
mod holds;
mod jobs;
mod known;
mod ledger;
mod licence_checks;
mod licences;
mod report;
mod requests;
mod rows;
mod session;
mod watch;
mod watch_outcome;
mod watch_rows;
mod whmcs;
mod workers;
mod writeback;

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

use crate::domain::{Action, JobState, RequestedBy};

pub use adoption::{Behind, Discovered, Recheck, RecheckCursor, Rechecked, Swept};
pub use claim::ClaimedJob;
pub use emails::{ACTIVATION_TEMPLATE, EMAIL_SETTING_OFF, TemplateState};
pub use explain::PlanStep;
pub use finish::{Finish, ModuleLogEntry, ModuleQueueWrite, StatusChange, WhmcsWrites};
pub use holds::HoldRow;
pub use ledger::{LedgerEntry, LedgerWrite, SiteHolder};
pub use licence_checks::LicenceCheck;
pub use licences::{LicenceRow, LicenceWrite};
pub use report::{JobSummary, QueueDepth, StatusReport};
pub use requests::{APPLY_BATCH, Applied, AppliedBatch, RequestId, RequestRow, Requeued};
pub use rows::{DetailsField, FieldRow, FieldSetup, ProductRow, ProductSetup, ServiceRow};
pub use session::{SessionLimits, WAIT_TIMEOUT_MARGIN};
pub use watch::{CheckWrite, DriftRow, DriftWrite, SiteCheck, WatchRow, WatchSchedule};
pub use workers::{Heartbeat, LIVE_WITHIN_SECS, NO_WORKER_WARNING, WorkerRow};

/// How jobs are claimed; chosen at start from the server version or forced by a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClaimPath {
    /// `SELECT … FOR UPDATE SKIP LOCKED` in a short READ COMMITTED transaction
    /// (MySQL 8.0.1+, MariaDB 10.6+).
    SkipLocked,
    /// A single claim-by-token `UPDATE … ORDER BY … LIMIT` (older servers).
    Update,
}

impl ClaimPath {
    /// The best path a server of this `VERSION()` supports.
    pub fn for_server(version: &str) -> ClaimPath {
        let server = session::Server::parse(version);
        let supported = if server.mariadb {
            server.version >= (10, 6, 0)
        } else {
            server.version >= (8, 0, 1)
        };
        if supported {
            ClaimPath::SkipLocked
        } else {
            ClaimPath::Update
        }
    }

    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimPath::SkipLocked => "skip-locked",
            ClaimPath::Update => "update",
        }
    }
}

/// Errors at the database boundary. Each message says what failed; the cause is the error's
/// `source`, not part of the message (show both with [`crate::text::Chain`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error or could not be reached.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// TLS to the database could not be set up: the server has no TLS while `ssl-mode`
    /// requires it, or its certificate is not signed by the CA of `ssl-ca` (or does not name
    /// the host, under `verify_identity`).
    #[error(
        "TLS to the database failed; check ssl-mode and ssl-ca in DATABASE_URL and the server's TLS settings"
    )]
    Tls(#[source] sqlx::Error),
    /// Running the worker's migrations failed.
    #[error("running the worker's migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The worker's own tables are missing or older than this binary.
    #[error("the worker's tables are missing or out of date; run `jetpack-worker migrate`")]
    NotMigrated,
    /// `_sqlx_migrations` holds a migration this binary does not have: a newer worker
    /// migrated the database, and this one could misread its tables.
    #[error(
        "this database was migrated by a newer jetpack-worker; upgrade this binary (migration {0} is not one it knows)"
    )]
    NewerSchema(i64),
    /// A row held a value the worker does not understand.
    #[error("unexpected value in mod_jetpack_jobs: {0}")]
    Corrupt(String),
    /// A statement did not answer in time (a hung connection, a partition).
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match e {
            sqlx::Error::Tls(_) => StoreError::Tls(e),
            // A refused certificate comes back from the handshake as an I/O error carrying
            // the rustls error; it is a setting to fix, not an outage to wait out.
            sqlx::Error::Io(ref io) if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
                StoreError::Tls(e)
            }
            e => StoreError::Database(e),
        }
    }
}

impl StoreError {
    /// The database could not be reached or went away mid-statement (connection refused or
    /// reset, pool timeout, server shutting down, too many connections): the same statement
    /// may work once it is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::TimedOut(_) => true,
            StoreError::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_),
            ) => true,
            StoreError::Database(sqlx::Error::Database(e)) => e
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                // ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED
                .is_some_and(|m| matches!(m.number(), 1040 | 1053 | 1927)),
            _ => false,
        }
    }

    /// For a worker that is already running: the database is unavailable, or an open
    /// connection's TLS broke (a middlebox, a failover). Either way the same write may work
    /// on the next connection, so it is tried again rather than failing the job. (At start a
    /// TLS error is a setting to fix, and is not retried.)
    pub fn is_connection_trouble(&self) -> bool {
        self.is_unavailable() || matches!(self, StoreError::Tls(_))
    }

    /// A duplicate key (the one-unfinished-job index): another writer got there first.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// Deadlocks (1213) and lock-wait timeouts (1205): nothing happened, try again.
    pub fn is_lock_conflict(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| matches!(m.number(), 1205 | 1213)),
            _ => false,
        }
    }
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Handle to the WHMCS database.
#[derive(Clone)]
pub struct Store {
    pool: MySqlPool,
    claim_path: ClaimPath,
    /// `tblactivitylog` has WHMCS 8's `user_id` and `admin_id` columns.
    activity_has_user_columns: bool,
    /// WHMCS has module addons (tblhostingaddons, tbladdons with a module, their settings).
    has_addons: bool,
    /// The longest the worker waits for a claim, an outcome write or applying requests.
    timeout: Duration,
    /// When the reconciler looks at a site after a job's outcome.
    watch: WatchSchedule,
    /// How long a deleted service's or addon's plan waits before its terminate runs.
    delete_grace: Duration,
    /// The highest id of a pending request of an unknown kind this process has warned about.
    unknown_requests_seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Statements each pooled connection keeps prepared. The batched statements (claims,
/// outcomes, requests, adoption pages) have one text per batch size. The drain's sizes
/// (claims, outcomes, applied requests) and discovery's read of Pending targets are powers
/// of two, so a drain's statements fit; adopting a backlog's pages (marks, requests) has one
/// text per page size, a few per pass. An eviction costs a round trip
/// that waits on the server's delayed ACK (about 40 ms), since the client sends the close and
/// the next statement back to back. At most this many per connection on the server.
pub const STATEMENT_CACHE: usize = 256;

/// How long a claim, a finishing write or applying requests may take before the worker
/// treats the database as unavailable (a hung connection must not hold a job for ever).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

impl Store {
    /// Connects with at most `max_connections` connections (the production database is
    /// shared), each session with the default [`SessionLimits`].
    pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool> {
        Store::connect_limited(url, max_connections, SessionLimits::default()).await
    }

    /// [`Store::connect`] with the given session limits.
    pub async fn connect_limited(
        url: &str,
        max_connections: u32,
        limits: SessionLimits,
    ) -> Result<MySqlPool> {
        let options = MySqlConnectOptions::from_str(url)?;
        Store::connect_with_limits(options, max_connections, limits).await
    }

    /// [`Store::connect`] with options already parsed.
    pub async fn connect_with(
        options: MySqlConnectOptions,
        max_connections: u32,
    ) -> Result<MySqlPool> {
        Store::connect_with_limits(options, max_connections, SessionLimits::default()).await
    }

    /// [`Store::connect_with`] with the given session limits: every session of the pool is
    /// READ COMMITTED, waits at most `limits.lock_wait` for a row lock and is ended by the
    /// server when idle inside a transaction (see `store::session`).
    pub async fn connect_with_limits(
        options: MySqlConnectOptions,
        max_connections: u32,
        limits: SessionLimits,
    ) -> Result<MySqlPool> {
        // WHMCS's own tables are written in the server's local time, as WHMCS does; the
        // worker's table uses UTC_TIMESTAMP() explicitly.
        let options = options
            .timezone(None)
            .statement_cache_capacity(STATEMENT_CACHE);
        let pool = MySqlPoolOptions::new()
            .max_connections(max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            // No ping before every use: a dead connection fails its statement, which the
            // callers already treat as "try again" (claims back off, leases expire).
            .test_before_acquire(false)
            .idle_timeout(session::POOL_IDLE_TIMEOUT)
            .max_lifetime(Duration::from_secs(1800))
            .after_connect(move |conn, _meta| Box::pin(session::set_up(conn, limits)))
            .connect_with(options)
            .await?;
        Ok(pool)
    }

    /// Wraps a pool; `claim` forces a claim path, `None` picks it from the server version.
    pub async fn open(pool: MySqlPool, claim: Option<ClaimPath>) -> Result<Store> {
        let version = server_version(&pool).await?;
        let claim_path = claim.unwrap_or_else(|| ClaimPath::for_server(&version));
        let activity_has_user_columns = whmcs::activity_has_user_columns(&pool).await?;
        let has_addons = whmcs::has_addons(&pool).await?;
        Ok(Store {
            pool,
            claim_path,
            activity_has_user_columns,
            has_addons,
            timeout: STATEMENT_TIMEOUT,
            watch: WatchSchedule::default(),
            delete_grace: crate::defaults::DELETE_GRACE.value,
            unknown_requests_seen: Default::default(),
        })
    }

    /// The same store with another limit for claims, outcome writes and applying requests.
    pub fn with_timeout(mut self, timeout: Duration) -> Store {
        self.timeout = timeout;
        self
    }

    /// The same store with another schedule for the reconciler's looks after an outcome.
    pub fn with_watch(mut self, schedule: WatchSchedule) -> Store {
        self.watch = schedule;
        self
    }

    /// Begins a transaction (READ COMMITTED on pools from [`Store::connect`]).
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::MySql>> {
        Ok(self.pool.begin().await?)
    }

    /// The TLS cipher of this pool's connections (`Ssl_cipher` of the session); `None` when
    /// the connection is not encrypted.
    pub async fn tls_cipher(&self) -> Result<Option<String>> {
        let row: Option<(String, String)> = sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(_, cipher)| cipher).filter(|c| !c.is_empty()))
    }

    /// The underlying pool (for tests and the doctor).
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The claim path in use.
    pub fn claim_path(&self) -> ClaimPath {
        self.claim_path
    }

    /// Creates or updates the worker's own tables. Never touches a WHMCS table. Refuses
    /// ([`StoreError::NewerSchema`]) a database a newer worker migrated.
    pub async fn migrate(pool: &MySqlPool) -> Result<()> {
        if let Ok(applied) = applied_migrations(pool).await {
            not_newer(&applied)?;
        }
        MIGRATOR.run(pool).await?;
        Ok(())
    }

    /// Fails with [`StoreError::NewerSchema`] when a newer worker migrated the database, and
    /// with [`StoreError::NotMigrated`] unless every migration of this binary is applied.
    pub async fn ensure_migrated(&self) -> Result<()> {
        let applied = applied_migrations(&self.pool)
            .await
            .map_err(|_| StoreError::NotMigrated)?;
        not_newer(&applied)?;
        let all_applied = MIGRATOR
            .iter()
            .all(|m| applied.iter().any(|(v, ok)| *ok && *v == m.version));
        if all_applied {
            Ok(())
        } else {
            Err(StoreError::NotMigrated)
        }
    }
}

/// The versions in `_sqlx_migrations`, each with whether it ran to the end.
async fn applied_migrations(pool: &MySqlPool) -> Result<Vec<(i64, bool)>> {
    Ok(
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
            .fetch_all(pool)
            .await?,
    )
}

/// Fails with [`StoreError::NewerSchema`] when `applied` holds a migration this binary does
/// not have.
fn not_newer(applied: &[(i64, bool)]) -> Result<()> {
    let unknown = applied
        .iter()
        .map(|(v, _)| *v)
        .find(|v| !MIGRATOR.iter().any(|m| m.version == *v));
    match unknown {
        Some(v) => Err(StoreError::NewerSchema(v)),
        None => Ok(()),
    }
}

/// `SELECT VERSION()`.
pub async fn server_version(pool: &MySqlPool) -> Result<String> {
    let (v,): (String,) = sqlx::query_as("SELECT VERSION()").fetch_one(pool).await?;
    Ok(v)
}

/// A stored `action` as the enum, from the row boundary on.
pub(crate) fn parse_action(s: &str) -> Result<Action> {
    Action::parse(s).ok_or_else(|| StoreError::Corrupt(format!("action {s:?}")))
}

/// A stored `state` as the enum.
pub(crate) fn parse_state(s: &str) -> Result<JobState> {
    JobState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("state {s:?}")))
}

/// A stored `requested_by` as the enum.
pub(crate) fn parse_requested_by(s: &str) -> Result<RequestedBy> {
    RequestedBy::parse(s).ok_or_else(|| StoreError::Corrupt(format!("requested_by {s:?}")))
}

/// Runs `fut`, failing with [`StoreError::TimedOut`] when it takes longer than `limit`: the
/// worker's statements on its critical path never wait on a hung connection for ever.
pub(crate) async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(StoreError::TimedOut(limit)))
}

/// Runs `attempt` again while it fails with an error `retry` accepts (a lock conflict: how a
/// race with another worker surfaces on Galera, at COMMIT), up to [`REQUEST_CONFLICTS`] tries
/// with its pauses; `what` names the work in the debug log. The last error is returned.
///
/// [`REQUEST_CONFLICTS`]: crate::backoff::REQUEST_CONFLICTS
pub(crate) async fn on_conflicts<T, F, Fut>(
    what: &'static str,
    retry: fn(&StoreError) -> bool,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let policy = crate::backoff::REQUEST_CONFLICTS;
    let mut tries = 0u64;
    loop {
        tries += 1;
        match attempt().await {
            Err(e) if tries < policy.tries && retry(&e) => {
                tracing::debug!(tries, what, error = %crate::text::Chain(&e), "a conflict; trying again");
                tokio::time::sleep(policy.pause(tries)).await;
            }
            other => return other,
        }
    }
}

/// The most a TEXT column holds (bytes).
pub(crate) const TEXT_BYTES: usize = 65_535;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_path_by_version() {
        assert_eq!(
            ClaimPath::for_server("10.11.19-MariaDB-0+deb12u1"),
            ClaimPath::SkipLocked
        );
        assert_eq!(ClaimPath::for_server("10.5.23-MariaDB"), ClaimPath::Update);
        assert_eq!(ClaimPath::for_server("5.7.44-log"), ClaimPath::Update);
        assert_eq!(ClaimPath::for_server("8.0.36"), ClaimPath::SkipLocked);
        assert_eq!(ClaimPath::for_server("8.0.0"), ClaimPath::Update);
    }
}
