//! The command line, as close to the flags as it can be (ripgrep's "low args"): the commands
//! and the raw settings. Every flag also reads an environment variable (systemd
//! `EnvironmentFile=`); flag beats env beats default (each default is written once, in
//! `defaults`). Values are parsed and range-checked here, so a bad setting fails at start
//! (exit 2); `config` turns the rest into the checked `Config` the commands run with.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::defaults;
use crate::domain::Action;
use crate::telemetry::LogFormat;

/// Provisions and cancels Jetpack plans for WHMCS orders, straight from the WHMCS database.
#[derive(Debug, Parser)]
#[command(name = "jetpack-worker", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// The WHMCS database: mysql://user:pass@host:3306/whmcs
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Partner API base URL.
    #[arg(
        long,
        env = "JETPACK_API_BASE",
        global = true,
        default_value = defaults::API_BASE
    )]
    pub api_base: String,
    /// Partner-API calls in flight at once per worker process (1-1024); a few more jobs are
    /// claimed ahead, and outcomes are written after the call slot is free again.
    #[arg(long, env = "JETPACK_CONCURRENCY", global = true,
          default_value = defaults::CONCURRENCY.text,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// How often an idle worker looks for due jobs (e.g. 2s, 500ms).
    #[arg(long, env = "JETPACK_POLL_INTERVAL", global = true,
          default_value = defaults::POLL_INTERVAL.text, value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Log format: text or json.
    #[arg(
        long,
        env = "JETPACK_LOG_FORMAT",
        global = true,
        default_value = defaults::LOG_FORMAT
    )]
    pub log_format: LogFormat,
    /// Adopt paid/accepted Pending services of "Do not automatically setup" products.
    #[arg(long, env = "JETPACK_ADOPT", global = true,
          default_value = defaults::ADOPT.text,
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub adopt: bool,
    /// How often `run` looks for paid Pending services to adopt (e.g. 30s, 5m). Each scan reads
    /// new Jetpack services and a page of the waiting ones by index; see BENCHMARKS.md.
    #[arg(long, env = "JETPACK_ADOPT_INTERVAL", global = true,
          default_value = defaults::ADOPT_INTERVAL.text, value_parser = parse_adopt_interval)]
    pub adopt_interval: Duration,
    /// Cancel the plan of a service whose WHMCS row was deleted: the adoption scan records a
    /// terminate request for every ledger entry whose tblhosting row is gone.
    #[arg(long, env = "JETPACK_CANCEL_DELETED", global = true,
          default_value = defaults::CANCEL_DELETED.text,
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub cancel_deleted: bool,
    /// How long the plan of a service or addon deleted in WHMCS waits before it is cancelled
    /// (the queue page offers Cancel now and Keep the plan meanwhile); `0s` cancels at once.
    #[arg(long, env = "JETPACK_DELETE_GRACE", global = true,
          default_value = defaults::DELETE_GRACE.text, value_parser = parse_delete_grace)]
    pub delete_grace: Duration,
    /// Look at the partner's status endpoint and converge to it: soon after every call whose
    /// answer was lost and every cancel, and on a slow pass over every site (README: the
    /// reconciler).
    #[arg(long, env = "JETPACK_RECONCILE", global = true,
          default_value = defaults::RECONCILE.text,
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub reconcile: bool,
    /// How often the reconciler's slow pass looks at every site it watches (spread).
    #[arg(long, env = "JETPACK_RECONCILE_PASS", global = true,
          default_value = defaults::RECONCILE_PASS.text, value_parser = parse_reconcile_pass)]
    pub reconcile_pass: Duration,
    /// Provision a plan again when the partner no longer holds it for a live service (by
    /// default such drift is reported only).
    #[arg(long, env = "JETPACK_RECONCILE_REPROVISION", global = true,
          default_value = defaults::RECONCILE_REPROVISION.text,
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub reconcile_reprovision: bool,
    /// A provision whose answer was lost is tried again (status first) only after this long,
    /// so an effect that lands late is seen rather than provisioned twice.
    #[arg(long, env = "JETPACK_LOST_ANSWER_SETTLE", global = true,
          default_value = defaults::LOST_ANSWER_SETTLE.text, value_parser = parse_duration)]
    pub lost_answer_settle: Duration,
    /// How often `run` fetches the Jetpack licence products on sale (`GET /product-families`)
    /// into mod_jetpack_licence_products, for the module's product drop-down.
    #[arg(long, env = "JETPACK_LICENCE_PRODUCTS_REFRESH", global = true,
          default_value = defaults::LICENCE_PRODUCTS_REFRESH.text, value_parser = parse_refresh)]
    pub licence_products_refresh: Duration,
    /// Claim path: auto (by server version), skip-locked or update.
    #[arg(long, env = "JETPACK_CLAIM", global = true, default_value = defaults::CLAIM)]
    pub claim: ClaimSetting,
    /// How long `run` lets in-flight jobs finish after SIGTERM.
    #[arg(long, env = "JETPACK_DRAIN_TIMEOUT", global = true,
          default_value = defaults::DRAIN_TIMEOUT.text, value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// How long a claimed job stays reserved (renewed while it runs; at least 3s).
    #[arg(long, env = "JETPACK_LEASE", global = true,
          default_value = defaults::LEASE.text, value_parser = parse_lease)]
    pub lease: Duration,
    /// Serve Prometheus /metrics here (e.g. 127.0.0.1:9464); off when unset.
    #[arg(long, env = "JETPACK_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,
    /// Finished jobs older than this are pruned.
    #[arg(long, env = "JETPACK_RETENTION", global = true,
          default_value = defaults::RETENTION.text, value_parser = parse_duration)]
    pub retention: Duration,
    /// Delay after the first transient failure; doubles per attempt up to 1h (±20% jitter).
    #[arg(long, env = "JETPACK_RETRY_BASE", global = true,
          default_value = defaults::RETRY_BASE.text, value_parser = parse_duration)]
    pub retry_base: Duration,
    /// Attempts a job gets before it fails (2-100); a requeue gives a fresh budget.
    #[arg(long, env = "JETPACK_MAX_ATTEMPTS", global = true,
          default_value = defaults::MAX_ATTEMPTS.text,
          value_parser = clap::value_parser!(u32).range(2..=100))]
    pub max_attempts: u32,
    /// Partner API request timeout (provision calls back into the customer's site).
    #[arg(long, env = "JETPACK_API_TIMEOUT", global = true,
          default_value = defaults::API_TIMEOUT.text, value_parser = parse_duration)]
    pub api_timeout: Duration,
    /// Partner API calls per second per partner account (e.g. 5, 0.5), or off. A job whose
    /// call would wait more than 2s for its turn goes back to the queue, without using an
    /// attempt.
    #[arg(long, env = "JETPACK_RATE_LIMIT", global = true,
          default_value = defaults::RATE_LIMIT, value_parser = parse_rate)]
    pub rate_limit: RateLimit,
    /// The longest a worker statement waits for a row lock (innodb_lock_wait_timeout; whole
    /// seconds, 1s-14s, below the 15s the worker gives a statement).
    #[arg(long, env = "JETPACK_DB_LOCK_WAIT", global = true,
          default_value = defaults::DB_LOCK_WAIT.text, value_parser = parse_lock_wait)]
    pub db_lock_wait: Duration,
    /// The longest a worker session may sit idle inside a transaction before the server ends
    /// it and releases its locks (MariaDB idle_transaction_timeout; whole seconds, 1s-1h).
    #[arg(long, env = "JETPACK_DB_IDLE_IN_TRANSACTION", global = true,
          default_value = defaults::DB_IDLE_IN_TRANSACTION.text, value_parser = parse_idle_in_transaction)]
    pub db_idle_in_transaction: Duration,
}

/// `JETPACK_RATE_LIMIT`: calls per second per partner account, or none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit(pub Option<f64>);

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the worker's own tables (never alters a WHMCS table).
    Migrate,
    /// Poll, claim and process jobs until SIGTERM/SIGINT.
    Run {
        /// Process every job that is due now (including adoption), then exit.
        #[arg(long)]
        once: bool,
    },
    /// Queue work for a service (or one of its addons), as the PHP module does.
    Enqueue {
        /// tblhosting.id
        service_id: u32,
        /// provision, terminate or change (a change of plan, as WHMCS ChangePackage).
        #[arg(long, default_value = "provision")]
        action: Action,
        /// The addon of the service to act for (tblhostingaddons.id), instead of the service.
        #[arg(long)]
        addon: Option<u32>,
    },
    /// Put failed jobs back to queued, due now, with a fresh attempt budget.
    Requeue {
        /// Services whose latest failed job to requeue.
        service_ids: Vec<u32>,
        /// Addons (tblhostingaddons.id) whose latest failed job to requeue.
        #[arg(long = "addon")]
        addons: Vec<u32>,
        /// Requeue every failed job.
        #[arg(long)]
        all_failed: bool,
    },
    /// Counts by state, oldest due job, jobs waiting on DNS, recent failures.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A Jetpack licence whose issue answer was lost (docs/licences.md): record the key found
    /// in the partner portal, issue another deliberately, or list a target's licences.
    Licence {
        /// What to do.
        #[command(subcommand)]
        what: LicenceCommand,
    },
    /// The doctor: database, tables, every jetpack product's custom fields and credentials.
    Check {
        /// Also verify each product's credentials against the partner API.
        #[arg(long)]
        online: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `jetpack-worker licence …`.
#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// Record the key of the target's licence whose issue answer was lost (state unknown);
    /// its failed job then ends with that key, issuing nothing.
    Record {
        /// tblhosting.id
        #[arg(long)]
        service: u32,
        /// The addon of the service (tblhostingaddons.id), instead of the service.
        #[arg(long)]
        addon: Option<u32>,
        /// The licence key found in the partner portal.
        #[arg(long)]
        key: String,
    },
    /// Issue another licence instead of the lost one (the lost one, if it exists, is billed
    /// too: revoke it in the partner portal).
    Reissue {
        /// tblhosting.id
        #[arg(long)]
        service: u32,
        /// The addon of the service (tblhostingaddons.id), instead of the service.
        #[arg(long)]
        addon: Option<u32>,
    },
    /// The target's licence rows (keys, states, times).
    List {
        /// tblhosting.id
        #[arg(long)]
        service: u32,
        /// The addon of the service (tblhostingaddons.id), instead of the service.
        #[arg(long)]
        addon: Option<u32>,
    },
}

/// `JETPACK_CLAIM` (`config` maps it to the store's claim path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClaimSetting {
    /// Pick by server version.
    Auto,
    /// Force `FOR UPDATE SKIP LOCKED`.
    SkipLocked,
    /// Force the claim-by-token UPDATE.
    Update,
}

/// Parses `2s`, `500ms`, `90d`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (use e.g. 2s, 500ms, 90d)"))
}

fn parse_lease(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(3) {
        return Err("the lease must be at least 3s".to_owned());
    }
    Ok(d)
}

/// `off`, or calls per second: a number from 0.01 to 10000.
fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(RateLimit(None));
    }
    match s.parse::<f64>() {
        Ok(r) if (0.01..=10_000.0).contains(&r) => Ok(RateLimit(Some(r))),
        _ => Err("use calls per second from 0.01 to 10000 (e.g. 5 or 0.5), or off".to_owned()),
    }
}

fn parse_adopt_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err("the adoption interval must be at least 1s".to_owned());
    }
    Ok(d)
}

fn parse_delete_grace(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > MAX_DELETE_GRACE {
        return Err("the grace period on delete must be at most 90d".to_owned());
    }
    Ok(d)
}

/// The longest grace period on delete: a plan kept longer should be kept (Keep the plan).
const MAX_DELETE_GRACE: Duration = Duration::from_secs(90 * 24 * 3600);

fn parse_reconcile_pass(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(60) {
        return Err("the reconcile pass must be at least 1m".to_owned());
    }
    Ok(d)
}

fn parse_refresh(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(60) {
        return Err("the licence products refresh must be at least 1m".to_owned());
    }
    Ok(d)
}

/// A duration of whole seconds within `min..=max` seconds.
fn whole_seconds(s: &str, min: u64, max: u64) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.subsec_nanos() != 0 || !(min..=max).contains(&d.as_secs()) {
        return Err(format!("use whole seconds from {min}s to {max}s"));
    }
    Ok(d)
}

fn parse_lock_wait(s: &str) -> Result<Duration, String> {
    whole_seconds(s, 1, 14)
}

fn parse_idle_in_transaction(s: &str) -> Result<Duration, String> {
    whole_seconds(s, 1, 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_lease("1s").is_err());
        assert!(parse_adopt_interval("0s").is_err());
        assert_eq!(parse_delete_grace("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_delete_grace("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_delete_grace("91d").is_err());
        assert_eq!(parse_lock_wait("5s"), Ok(Duration::from_secs(5)));
        for bad in ["0s", "500ms", "1500ms", "15s"] {
            assert!(parse_lock_wait(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_idle_in_transaction("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_idle_in_transaction("2h").is_err());
    }

    #[test]
    fn the_rate_limit_is_off_by_default_and_range_checked() {
        let cli = Cli::try_parse_from(["jetpack-worker", "run"]).unwrap();
        assert_eq!(cli.rate_limit, RateLimit(None));
        assert_eq!(parse_rate("OFF"), Ok(RateLimit(None)));
        assert_eq!(parse_rate(" 2.5 "), Ok(RateLimit(Some(2.5))));
        for bad in ["0", "-1", "NaN", "inf", "fast", "20000", ""] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Cli::try_parse_from(["jetpack-worker", "run", "--rate-limit", "0"]).is_err());
    }

    #[test]
    fn flags_beat_defaults_and_bad_values_are_refused() {
        let cli = Cli::try_parse_from([
            "jetpack-worker",
            "run",
            "--once",
            "--concurrency",
            "3",
            "--adopt",
            "false",
            "--adopt-interval",
            "5m",
        ])
        .unwrap();
        assert_eq!(cli.concurrency, 3);
        assert!(!cli.adopt);
        assert_eq!(cli.adopt_interval, Duration::from_secs(300));
        assert!(matches!(cli.command, Command::Run { once: true }));
        assert!(Cli::try_parse_from(["jetpack-worker", "run", "--concurrency", "0"]).is_err());
        assert!(Cli::try_parse_from(["jetpack-worker", "run", "--claim", "magic"]).is_err());
        assert!(
            Cli::try_parse_from(["jetpack-worker", "run", "--poll-interval", "often"]).is_err()
        );
    }
}
