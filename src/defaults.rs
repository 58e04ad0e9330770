//! Every default setting, written once: the text `--help` shows (and clap parses when neither
//! the flag nor its environment variable is given) beside the value the library uses when a
//! caller sets nothing (`WorkerSettings::default()`, `RetryPolicy::DEFAULT`,
//! `Timeouts::default()`). A unit test checks that each text parses to its value. A leaf: it
//! imports nothing from the crate.

use std::time::Duration;

/// A default: the text the command line shows and parses, and the value that text means.
#[derive(Clone, Copy, Debug)]
pub struct Setting<T: 'static> {
    /// As `--help` shows it (`[default: …]`) and clap parses it.
    pub text: &'static str,
    /// What the text parses to.
    pub value: T,
}

/// `--api-base` / `JETPACK_API_BASE`: the partner API.
pub const API_BASE: &str = "https://public-api.wordpress.com";
/// `--log-format` / `JETPACK_LOG_FORMAT`.
pub const LOG_FORMAT: &str = "text";
/// `--claim` / `JETPACK_CLAIM`: by server version.
pub const CLAIM: &str = "auto";
/// `--rate-limit` / `JETPACK_RATE_LIMIT`: no rate limit.
pub const RATE_LIMIT: &str = "off";

/// `--concurrency` / `JETPACK_CONCURRENCY`: partner-API calls in flight at once per process.
pub const CONCURRENCY: Setting<u32> = Setting {
    text: "8",
    value: 8,
};
/// `--poll-interval` / `JETPACK_POLL_INTERVAL`: how often an idle worker looks for due jobs.
pub const POLL_INTERVAL: Setting<Duration> = Setting {
    text: "2s",
    value: Duration::from_secs(2),
};
/// `--adopt` / `JETPACK_ADOPT`: adopt paid Pending services.
pub const ADOPT: Setting<bool> = Setting {
    text: "true",
    value: true,
};
/// `--adopt-interval` / `JETPACK_ADOPT_INTERVAL`: how often the adoption scan runs.
pub const ADOPT_INTERVAL: Setting<Duration> = Setting {
    text: "30s",
    value: Duration::from_secs(30),
};
/// `--cancel-deleted` / `JETPACK_CANCEL_DELETED`: cancel the plans of deleted services.
pub const CANCEL_DELETED: Setting<bool> = Setting {
    text: "true",
    value: true,
};
/// `--drain-timeout` / `JETPACK_DRAIN_TIMEOUT`: how long in-flight jobs may finish on stop.
pub const DRAIN_TIMEOUT: Setting<Duration> = Setting {
    text: "30s",
    value: Duration::from_secs(30),
};
/// `--lease` / `JETPACK_LEASE`: how long a claimed job stays reserved.
pub const LEASE: Setting<Duration> = Setting {
    text: "60s",
    value: Duration::from_secs(60),
};
/// `--retention` / `JETPACK_RETENTION`: finished jobs older than this are pruned.
pub const RETENTION: Setting<Duration> = Setting {
    text: "90d",
    value: Duration::from_secs(90 * 24 * 3600),
};
/// `--retry-base` / `JETPACK_RETRY_BASE`: the delay after the first transient failure.
pub const RETRY_BASE: Setting<Duration> = Setting {
    text: "30s",
    value: Duration::from_secs(30),
};
/// `--max-attempts` / `JETPACK_MAX_ATTEMPTS`: attempts a job gets before it fails.
pub const MAX_ATTEMPTS: Setting<u32> = Setting {
    text: "8",
    value: 8,
};
/// `--api-timeout` / `JETPACK_API_TIMEOUT`: the partner API's whole-request timeout.
pub const API_TIMEOUT: Setting<Duration> = Setting {
    text: "120s",
    value: Duration::from_secs(120),
};
/// `--lost-answer-settle` / `JETPACK_LOST_ANSWER_SETTLE`: a provision whose answer was lost is
/// not tried again (status first) before this long has passed.
pub const LOST_ANSWER_SETTLE: Setting<Duration> = Setting {
    text: "3m",
    value: Duration::from_secs(180),
};
/// `--reconcile-pass` / `JETPACK_RECONCILE_PASS`: every watched site is looked at once per this.
pub const RECONCILE_PASS: Setting<Duration> = Setting {
    text: "1d",
    value: Duration::from_secs(86_400),
};
/// `--licence-products-refresh` / `JETPACK_LICENCE_PRODUCTS_REFRESH`: how often `run` fetches
/// the licence products on sale (`GET /product-families`).
pub const LICENCE_PRODUCTS_REFRESH: Setting<Duration> = Setting {
    text: "1h",
    value: Duration::from_secs(3600),
};
/// `--reconcile` / `JETPACK_RECONCILE`: look at the partner and converge to it.
pub const RECONCILE: Setting<bool> = Setting {
    text: "true",
    value: true,
};
/// `--reconcile-reprovision` / `JETPACK_RECONCILE_REPROVISION`: provision a vanished plan again.
pub const RECONCILE_REPROVISION: Setting<bool> = Setting {
    text: "false",
    value: false,
};
/// `--db-lock-wait` / `JETPACK_DB_LOCK_WAIT`: the longest a worker statement waits for a row
/// lock (`innodb_lock_wait_timeout` of every session).
pub const DB_LOCK_WAIT: Setting<Duration> = Setting {
    text: "10s",
    value: Duration::from_secs(10),
};
/// `--db-idle-in-transaction` / `JETPACK_DB_IDLE_IN_TRANSACTION`: the longest a worker session
/// may sit idle inside a transaction before the server ends it and releases its locks
/// (MariaDB's `idle_transaction_timeout`).
pub const DB_IDLE_IN_TRANSACTION: Setting<Duration> = Setting {
    text: "60s",
    value: Duration::from_secs(60),
};

/// The clock skew allowed between the workers' hosts and the database servers (and between
/// the nodes of a multi-primary cluster, where one node grants a lease and another judges it
/// expired by its own clock). A lease's expiry is always computed and judged in SQL by the
/// database's clock; the holder keeps this much more margin before an acting call, so a node
/// whose clock runs this far ahead cannot hand the job to another worker while the call may
/// still be in flight. NTP keeps real skew in milliseconds; 2 s also covers a step.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(text: &str) -> Duration {
        humantime::parse_duration(text).unwrap()
    }

    #[test]
    fn every_text_parses_to_its_value() {
        for d in [
            POLL_INTERVAL,
            ADOPT_INTERVAL,
            DRAIN_TIMEOUT,
            LEASE,
            RETENTION,
            RETRY_BASE,
            API_TIMEOUT,
            LOST_ANSWER_SETTLE,
            RECONCILE_PASS,
            LICENCE_PRODUCTS_REFRESH,
            DB_LOCK_WAIT,
            DB_IDLE_IN_TRANSACTION,
        ] {
            assert_eq!(duration(d.text), d.value, "{}", d.text);
        }
        for n in [CONCURRENCY, MAX_ATTEMPTS] {
            assert_eq!(n.text.parse::<u32>().unwrap(), n.value, "{}", n.text);
        }
        for b in [ADOPT, CANCEL_DELETED, RECONCILE, RECONCILE_REPROVISION] {
            assert_eq!(b.text.parse::<bool>().unwrap(), b.value, "{}", b.text);
        }
    }
}
