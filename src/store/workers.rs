//! `mod_jetpack_workers`: each `run` process's heartbeat row (one upsert every few seconds,
//! none per job), marked stopped on a clean shutdown and deleted a week after it was last
//! seen; and the list `jetpack-worker status` shows. Every statement runs within the store's
//! timeout, so a silent database never holds up the caller.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, within};
use crate::text::fit;

/// The most `last_db_error` holds (bytes; VARCHAR(500) of utf8mb4 holds at least this).
const DB_ERROR_BYTES: usize = 500;

/// Rows stopped or unseen for longer than this are deleted (seconds: 7 days).
const FORGET_AFTER_SECS: u64 = 7 * 24 * 3600;

/// A worker counts as running when it is not stopped and was seen within this many seconds.
pub const LIVE_WITHIN_SECS: i64 = 120;

/// What `status` and the WHMCS service tab say when work waits and no worker is running.
pub const NO_WORKER_WARNING: &str = "jobs are queued but no jetpack-worker is running: start it with `systemctl start jetpack-worker`";

/// Rows `status` lists, the most recently seen first.
const LISTED: u32 = 50;

/// What one heartbeat writes.
#[derive(Clone, Debug)]
pub struct Heartbeat<'a> {
    /// The worker's lease owner string (`host:pid:random`).
    pub owner: &'a str,
    /// The host name.
    pub host: &'a str,
    /// The process id.
    pub pid: u32,
    /// The binary's version.
    pub version: &'a str,
    /// Jobs in their partner-API calls now (holding a call slot).
    pub in_flight: u32,
    /// The last database error the worker saw, if any (never holds a secret).
    pub last_db_error: Option<&'a str>,
}

/// One worker as `status` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WorkerRow {
    /// The lease owner string.
    pub owner: String,
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The binary's version.
    pub version: String,
    /// When it started (UTC).
    pub started_at: DateTime<Utc>,
    /// Its latest heartbeat (UTC).
    pub last_seen_at: DateTime<Utc>,
    /// Seconds since its latest heartbeat, by the database clock.
    pub seen_secs_ago: i64,
    /// Jobs in their partner-API calls at its latest heartbeat.
    pub in_flight: u32,
    /// When it stopped cleanly (UTC); `None` while running or after a crash.
    pub stopped_at: Option<DateTime<Utc>>,
    /// The last database error it saw.
    pub last_db_error: Option<String>,
}

impl WorkerRow {
    /// Running and seen within `secs` seconds.
    pub fn is_live(&self, secs: i64) -> bool {
        self.stopped_at.is_none() && self.seen_secs_ago <= secs
    }
}

impl Store {
    /// Upserts this worker's row: started_at on the first beat, last_seen_at now, in flight,
    /// the last database error; a row marked stopped is running again.
    pub async fn worker_beat(&self, beat: &Heartbeat<'_>) -> Result<()> {
        let error = beat.last_db_error.map(|e| fit(e, DB_ERROR_BYTES));
        let query = sqlx::query(
            "INSERT INTO mod_jetpack_workers
                 (owner, host, pid, version, started_at, last_seen_at, in_flight, last_db_error)
             VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?)
             ON DUPLICATE KEY UPDATE last_seen_at = UTC_TIMESTAMP(6),
                 in_flight = VALUES(in_flight), last_db_error = VALUES(last_db_error),
                 stopped_at = NULL",
        )
        .bind(fit(beat.owner, 191))
        .bind(fit(beat.host, 255))
        .bind(beat.pid)
        .bind(fit(beat.version, 64))
        .bind(beat.in_flight)
        .bind(error)
        .execute(&self.pool);
        within(self.timeout, async { Ok(query.await.map(|_| ())?) }).await
    }

    /// Marks this worker stopped (a clean shutdown): stopped_at and last_seen_at now, nothing
    /// in flight.
    pub async fn worker_stopped(&self, owner: &str) -> Result<()> {
        let query = sqlx::query(
            "UPDATE mod_jetpack_workers SET stopped_at = UTC_TIMESTAMP(6),
                 last_seen_at = UTC_TIMESTAMP(6), in_flight = 0
             WHERE owner = ?",
        )
        .bind(fit(owner, 191))
        .execute(&self.pool);
        within(self.timeout, async { Ok(query.await.map(|_| ())?) }).await
    }

    /// Deletes the rows of workers stopped or unseen for more than 7 days (a stopped row's
    /// last_seen_at is its stop, so one range over KEY seen covers both). Returns how many.
    pub async fn forget_old_workers(&self) -> Result<u64> {
        let query = sqlx::query(
            "DELETE FROM mod_jetpack_workers
             WHERE last_seen_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND",
        )
        .bind(FORGET_AFTER_SECS)
        .execute(&self.pool);
        within(self.timeout, async { Ok(query.await?.rows_affected()) }).await
    }

    /// The workers, the most recently seen first (at most 50).
    pub async fn workers(&self) -> Result<Vec<WorkerRow>> {
        let rows = sqlx::query(
            "SELECT owner, host, pid, version, started_at, last_seen_at, in_flight, stopped_at,
                 last_db_error,
                 TIMESTAMPDIFF(SECOND, last_seen_at, UTC_TIMESTAMP(6)) AS seen_secs_ago
             FROM mod_jetpack_workers ORDER BY last_seen_at DESC LIMIT ?",
        )
        .bind(LISTED)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(worker_row).collect()
    }
}

fn worker_row(row: &sqlx::mysql::MySqlRow) -> Result<WorkerRow> {
    Ok(WorkerRow {
        owner: row.try_get("owner")?,
        host: row.try_get("host")?,
        pid: row.try_get("pid")?,
        version: row.try_get("version")?,
        started_at: row.try_get("started_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        seen_secs_ago: row.try_get("seen_secs_ago")?,
        in_flight: row.try_get("in_flight")?,
        stopped_at: row.try_get("stopped_at")?,
        last_db_error: row.try_get("last_db_error")?,
    })
}
