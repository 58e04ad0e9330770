//! What every pooled session is set to when it connects, so that no worker session holds row
//! locks for long: READ COMMITTED (no gap locks), a lock-wait limit, and a limit on how long
//! it may sit idle inside a transaction (a worker whose host died without closing TCP, in the
//! middle of a short request-apply or finish transaction). Each server has its own variables:
//!
//! - MariaDB 10.3+: `innodb_lock_wait_timeout` and `idle_transaction_timeout` (the server
//!   ends a session idle in a transaction for longer, rolling it back).
//! - MySQL (and MariaDB before 10.3) have no idle-in-transaction limit: there the session's
//!   `wait_timeout` is set to the pool's idle timeout plus [`WAIT_TIMEOUT_MARGIN`], so a
//!   half-open session is ended then rather than after the server's default 8 hours.
//!
//! sqlx 0.9's `MySqlConnectOptions` has no TCP keepalive setting, so the worker relies on
//! these server-side limits rather than on keepalive probes.

use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use crate::defaults;

/// How long a pooled connection may stay unused before the pool closes it.
pub(super) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// On servers without an idle-in-transaction limit: how far above [`POOL_IDLE_TIMEOUT`] the
/// session's `wait_timeout` is set (so the pool, not the server, closes idle connections).
pub const WAIT_TIMEOUT_MARGIN: Duration = Duration::from_secs(60);

/// The limits every worker session gets; whole seconds, at least 1 (`config` checks them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// The longest a statement waits for a row lock (`innodb_lock_wait_timeout`).
    pub lock_wait: Duration,
    /// The longest a session may be idle inside a transaction before the server ends it.
    pub idle_in_transaction: Duration,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            lock_wait: defaults::DB_LOCK_WAIT.value,
            idle_in_transaction: defaults::DB_IDLE_IN_TRANSACTION.value,
        }
    }
}

/// Which database server a `VERSION()` names, with its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Server {
    /// MariaDB (its `VERSION()` says so); MySQL otherwise.
    pub mariadb: bool,
    /// (major, minor, patch).
    pub version: (u32, u32, u32),
}

impl Server {
    /// Reads a `SELECT VERSION()` answer (`10.11.6-MariaDB-0+deb12u1`, `8.0.36`).
    pub fn parse(version: &str) -> Server {
        let numbers: Vec<u32> = version
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| numbers.get(i).copied().unwrap_or(0);
        Server {
            mariadb: version.to_ascii_lowercase().contains("mariadb"),
            version: (at(0), at(1), at(2)),
        }
    }

    /// MariaDB 10.3+ has `idle_transaction_timeout`.
    fn has_idle_transaction_timeout(self) -> bool {
        self.mariadb && self.version >= (10, 3, 0)
    }
}

/// What a session is set to on this server, as (variable, seconds) pairs.
pub(super) fn session_variables(server: Server, limits: SessionLimits) -> [(&'static str, u64); 2] {
    let lock_wait = ("innodb_lock_wait_timeout", seconds(limits.lock_wait));
    if server.has_idle_transaction_timeout() {
        [
            lock_wait,
            (
                "idle_transaction_timeout",
                seconds(limits.idle_in_transaction),
            ),
        ]
    } else {
        [
            lock_wait,
            (
                "wait_timeout",
                seconds(POOL_IDLE_TIMEOUT + WAIT_TIMEOUT_MARGIN),
            ),
        ]
    }
}

fn seconds(d: Duration) -> u64 {
    d.as_secs().max(1)
}

/// Sets up a new pooled session: READ COMMITTED for every transaction on it, and the limits.
pub(super) async fn set_up(
    conn: &mut MySqlConnection,
    limits: SessionLimits,
) -> Result<(), sqlx::Error> {
    // READ COMMITTED for every transaction on the connection, set once: no gap locks, so the
    // worker's short writes never block WHMCS's own inserts into the tables they touch (and
    // no `SET TRANSACTION` round trip before each one).
    sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .execute(&mut *conn)
        .await?;
    let (version,): (String,) = sqlx::query_as("SELECT VERSION()")
        .fetch_one(&mut *conn)
        .await?;
    let [(first, a), (second, b)] = session_variables(Server::parse(&version), limits);
    // The names are this module's constants; the values are binds.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET SESSION {first} = ?, {second} = ?"
    )))
    .bind(a)
    .bind(b)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_server_gets_the_variables_it_has() {
        let limits = SessionLimits {
            lock_wait: Duration::from_secs(7),
            idle_in_transaction: Duration::from_secs(45),
        };
        let maria = Server::parse("10.11.19-MariaDB-0+deb12u1");
        assert_eq!(
            session_variables(maria, limits),
            [
                ("innodb_lock_wait_timeout", 7),
                ("idle_transaction_timeout", 45)
            ]
        );
        for old in ["8.0.36", "5.7.44-log", "10.2.44-MariaDB"] {
            assert_eq!(
                session_variables(Server::parse(old), limits),
                [("innodb_lock_wait_timeout", 7), ("wait_timeout", 360)],
                "{old}"
            );
        }
    }
}
