//! The checked settings the commands run with (ripgrep's "high args", zero2prod's settings):
//! [`Config::try_from`] turns the raw command line ([`Cli`]) into typed values once, at start,
//! so a setting that clap cannot check (a missing or odd `DATABASE_URL`, a bad
//! `JETPACK_API_BASE`) fails before anything runs (exit 2). The database URL, which holds the
//! password, is a secret from here on; the partner API client is built here, once, and
//! shared by whoever needs it (the worker, the doctor).

use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::SecretString;

use crate::cli::{ClaimSetting, Cli, Command};
use crate::jetpack::{JetpackClient, Politeness, Timeouts};
use crate::retry::RetryPolicy;
use crate::store::{ClaimPath, SessionLimits, WatchSchedule};
use crate::telemetry::LogFormat;
use crate::worker::{ProductsSettings, ReconcileSettings, WorkerSettings, lease_margin};

/// A setting that is wrong before anything runs (exit 2); its message is one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `DATABASE_URL` is unset or blank.
    #[error("DATABASE_URL is required (mysql://user:pass@host:3306/whmcs)")]
    NoDatabaseUrl,
    /// `DATABASE_URL` is not a MySQL/MariaDB URL.
    #[error("DATABASE_URL must start with mysql://")]
    NotMysql,
    /// `JETPACK_API_BASE` is not an http(s) URL (or the HTTP client cannot be built).
    #[error("JETPACK_API_BASE: {0}")]
    ApiBase(crate::jetpack::ClientError),
}

/// Everything a command needs, checked.
#[derive(Debug)]
pub struct Config {
    /// The command to run, with its own arguments.
    pub command: Command,
    /// The process-log format.
    pub log_format: LogFormat,
    /// How to reach the WHMCS database.
    pub database: DatabaseConfig,
    /// The partner API client (its request timeout and per-account rate limit set).
    pub jetpack: Arc<JetpackClient>,
    /// How `run` behaves.
    pub worker: WorkerSettings,
    /// Where `run` serves Prometheus `/metrics`, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
}

/// The WHMCS database.
#[derive(Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` as given (`mysql://` or `mariadb://`); it holds the password.
    pub url: SecretString,
    /// `JETPACK_CLAIM`: the claim path, or `None` to pick it by server version.
    pub claim: Option<ClaimPath>,
    /// The pool size: room for the jobs in flight, their lease renewals and the loop.
    pub max_connections: u32,
    /// The lock-wait and idle-in-transaction limits of every session.
    pub sessions: SessionLimits,
}

impl TryFrom<Cli> for Config {
    type Error = ConfigError;

    fn try_from(cli: Cli) -> Result<Config, ConfigError> {
        let database = DatabaseConfig::try_from(&cli)?;
        let jetpack = jetpack_client(&cli)?;
        Ok(Config {
            worker: worker_settings(&cli),
            log_format: cli.log_format,
            metrics_addr: cli.metrics_addr,
            command: cli.command,
            database,
            jetpack: Arc::new(jetpack),
        })
    }
}

impl TryFrom<&Cli> for DatabaseConfig {
    type Error = ConfigError;

    fn try_from(cli: &Cli) -> Result<DatabaseConfig, ConfigError> {
        let given = cli.database_url.as_deref().unwrap_or("");
        let url = given.trim();
        if url.is_empty() {
            return Err(ConfigError::NoDatabaseUrl);
        }
        if !url.starts_with("mysql://") && !url.starts_with("mariadb://") {
            return Err(ConfigError::NotMysql);
        }
        Ok(DatabaseConfig {
            url: SecretString::from(given),
            claim: claim_path(cli.claim),
            max_connections: (cli.concurrency / 2).clamp(2, 16) + 2,
            sessions: SessionLimits {
                lock_wait: cli.db_lock_wait,
                idle_in_transaction: cli.db_idle_in_transaction,
            },
        })
    }
}

/// `JETPACK_CLAIM` as the store takes it.
fn claim_path(setting: ClaimSetting) -> Option<ClaimPath> {
    match setting {
        ClaimSetting::Auto => None,
        ClaimSetting::SkipLocked => Some(ClaimPath::SkipLocked),
        ClaimSetting::Update => Some(ClaimPath::Update),
    }
}

/// The one partner API client of the process.
fn jetpack_client(cli: &Cli) -> Result<JetpackClient, ConfigError> {
    let timeouts = Timeouts {
        request: cli.api_timeout,
        ..Timeouts::default()
    };
    let client = JetpackClient::new(&cli.api_base, timeouts).map_err(ConfigError::ApiBase)?;
    Ok(client.with_politeness(Politeness::new(cli.rate_limit.0)))
}

fn worker_settings(cli: &Cli) -> WorkerSettings {
    WorkerSettings {
        concurrency: cli.concurrency,
        poll_interval: cli.poll_interval,
        lease: cli.lease,
        lease_margin: lease_margin(cli.lease),
        drain_timeout: cli.drain_timeout,
        adopt: cli.adopt,
        adopt_interval: cli.adopt_interval,
        cancel_deleted: cli.cancel_deleted,
        delete_grace: cli.delete_grace,
        retention: Some(cli.retention),
        retry: RetryPolicy {
            base: cli.retry_base,
            max_attempts: cli.max_attempts,
            ..RetryPolicy::DEFAULT
        },
        reconcile: ReconcileSettings {
            enabled: cli.reconcile,
            schedule: WatchSchedule {
                pass: cli.reconcile_pass,
                ..WatchSchedule::default()
            },
            reprovision: cli.reconcile_reprovision,
            settle: cli.lost_answer_settle,
            ..ReconcileSettings::default()
        },
        licence_products: ProductsSettings {
            refresh: cli.licence_products_refresh,
            ..ProductsSettings::default()
        },
        ..WorkerSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use secrecy::ExposeSecret;

    use super::*;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let mut all = vec!["jetpack-worker"];
        all.extend_from_slice(args);
        Config::try_from(Cli::try_parse_from(all).unwrap())
    }

    #[test]
    fn the_database_url_is_required_and_must_be_mysql() {
        let no_url = config(&["status", "--database-url", "  "]).unwrap_err();
        assert!(matches!(no_url, ConfigError::NoDatabaseUrl));
        let odd = config(&["status", "--database-url", "postgres://x"]).unwrap_err();
        assert_eq!(odd.to_string(), "DATABASE_URL must start with mysql://");
        let bad_api = config(&[
            "status",
            "--database-url",
            "mysql://u:p@h/x",
            "--api-base",
            "ftp://nope",
        ])
        .unwrap_err();
        assert!(bad_api.to_string().starts_with("JETPACK_API_BASE: "));
    }

    #[test]
    fn the_settings_are_mapped_once_and_the_password_stays_secret() {
        let c = config(&[
            "run",
            "--database-url",
            "mysql://u:hunter2@h/x",
            "--claim",
            "update",
            "--concurrency",
            "40",
            "--lease",
            "8s",
            "--delete-grace",
            "0s",
        ])
        .unwrap();
        assert_eq!(c.database.claim, Some(ClaimPath::Update));
        assert_eq!(c.database.max_connections, 18);
        assert_eq!(c.database.url.expose_secret(), "mysql://u:hunter2@h/x");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.worker.concurrency, 40);
        assert_eq!(c.worker.delete_grace, std::time::Duration::ZERO);
        // A quarter of 8 s, plus the 2 s clock-skew allowance.
        assert_eq!(c.worker.lease_margin, std::time::Duration::from_secs(4));
    }

    #[test]
    fn no_setting_means_the_library_defaults() {
        let c = config(&["run", "--database-url", "mysql://u:p@h/x"]).unwrap();
        let d = WorkerSettings::default();
        assert_eq!(
            (c.worker.concurrency, c.worker.poll_interval, c.worker.lease),
            (d.concurrency, d.poll_interval, d.lease)
        );
        assert_eq!(
            (
                c.worker.lease_margin,
                c.worker.drain_timeout,
                c.worker.retention
            ),
            (d.lease_margin, d.drain_timeout, d.retention)
        );
        assert_eq!(
            (
                c.worker.adopt,
                c.worker.adopt_interval,
                c.worker.cancel_deleted,
                c.worker.delete_grace
            ),
            (d.adopt, d.adopt_interval, d.cancel_deleted, d.delete_grace)
        );
        assert_eq!(c.worker.retry, d.retry);
        let (r, dr) = (&c.worker.reconcile, &d.reconcile);
        assert_eq!(
            (r.enabled, &r.schedule, r.reprovision, r.settle),
            (dr.enabled, &dr.schedule, dr.reprovision, dr.settle)
        );
        assert_eq!(c.jetpack.longest_call(), Timeouts::default().request);
        assert_eq!(c.database.claim, None);
        assert_eq!(c.database.sessions, SessionLimits::default());
    }
}
