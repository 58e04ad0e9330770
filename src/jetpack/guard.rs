//! The per-account guards the client consults: one [`Breaker`] and (when a rate is set) one
//! [`Pace`] per partner account (client id), behind one lock that is never held across an
//! await. A job asks [`Guards::admit`] before its first call; every HTTP call then waits its
//! turn ([`Guards::pace`]) and reports how it went ([`Guards::record`]). Openings and closings
//! are logged here, once each, not per job. An account an admin put on hold
//! ([`Guards::set_held`], refreshed by the worker once per poll) is refused like an open
//! breaker, for [`ACCOUNT_HOLD_RECHECK`] at a time.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Failure;
use super::breaker::{Admission, Breaker, BreakerPolicy, Change, Pace, Verdict};

/// How polite the client is to the partner API.
#[derive(Clone, Debug)]
pub struct Politeness {
    /// Calls per second per partner account; None: no limit.
    pub rate: Option<f64>,
    /// When the per-account breaker opens.
    pub breaker: BreakerPolicy,
    /// A job whose call would wait longer than this for its turn is held back instead
    /// (released to the queue for when its turn comes). Default 2 s.
    pub longest_wait: Duration,
}

impl Politeness {
    /// No rate limit, the production breaker, waits of up to 2 s in process.
    pub fn new(rate: Option<f64>) -> Politeness {
        Politeness {
            rate,
            breaker: BreakerPolicy::DEFAULT,
            longest_wait: Duration::from_secs(2),
        }
    }
}

impl Default for Politeness {
    fn default() -> Self {
        Politeness::new(None)
    }
}

/// Why a job may not call now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldBy {
    /// The account's breaker is open (or a probe is running).
    Breaker,
    /// The account's rate limit would make the job wait too long.
    RateLimit,
    /// An admin put the account on hold (`mod_jetpack_holds`).
    Account,
}

/// A job of a held account is due again at the boundary of this period after next (the store
/// aligns it, so the account's jobs come back together and in order); it then runs if the
/// account was resumed meanwhile, or is held again without a call.
pub const ACCOUNT_HOLD_RECHECK: Duration = Duration::from_secs(15);

/// A job that must not call the API now: it goes back to the queue, due after `wait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// How long until a call may be made.
    pub wait: Duration,
    /// Why.
    pub by: HeldBy,
}

struct Account {
    breaker: Breaker,
    pace: Option<Pace>,
}

/// Every account's breaker and pace.
pub(crate) struct Guards {
    politeness: Politeness,
    accounts: Mutex<HashMap<String, Account>>,
    held: Mutex<HashSet<String>>,
}

/// Leave to call for one job's attempt. Dropping the half-open probe's permit before any call
/// was recorded lets another job probe.
pub struct Permit<'a> {
    guards: &'a Guards,
    account: String,
    probe: Option<u64>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.probe {
            self.guards
                .with(&self.account, |a| a.breaker.probe_abandoned(id));
        }
    }
}

impl Guards {
    pub(crate) fn new(politeness: Politeness) -> Guards {
        Guards {
            politeness,
            accounts: Mutex::new(HashMap::new()),
            held: Mutex::new(HashSet::new()),
        }
    }

    /// The policy these guards apply.
    pub(crate) fn politeness(&self) -> Politeness {
        self.politeness.clone()
    }

    fn held(&self) -> MutexGuard<'_, HashSet<String>> {
        // As for the accounts: a poisoned set is still a usable set.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The accounts on hold now (replacing the previous set); logs each hold and resume once.
    pub(super) fn set_held(&self, accounts: HashSet<String>) {
        let mut held = self.held();
        for a in accounts.difference(&held) {
            tracing::warn!(account = %a, "partner account on hold: its jobs stay queued, no call made");
        }
        for a in held.difference(&accounts) {
            tracing::info!(account = %a, "partner account resumed: its jobs run again, in order");
        }
        *held = accounts;
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Account>> {
        // A poisoned map only means another task panicked mid-update; the state is usable.
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, account: &str, f: impl FnOnce(&mut Account) -> T) -> T {
        let mut map = self.lock();
        let entry = map.entry(account.to_owned()).or_insert_with(|| Account {
            breaker: Breaker::new(self.politeness.breaker.clone()),
            pace: self.politeness.rate.map(Pace::new),
        });
        f(entry)
    }

    /// May a job of `account` call now?
    pub(crate) fn admit(&self, account: &str) -> Result<Permit<'_>, Held> {
        if self.held().contains(account) {
            return Err(Held {
                wait: ACCOUNT_HOLD_RECHECK,
                by: HeldBy::Account,
            });
        }
        let now = Instant::now();
        let longest = self.politeness.longest_wait;
        let admission = self.with(account, |a| {
            let paced = a.pace.as_ref().map_or(Duration::ZERO, |p| p.wait(now));
            match a.breaker.admit(now) {
                Admission::Hold(until) => Err(Held {
                    wait: until.saturating_duration_since(now),
                    by: HeldBy::Breaker,
                }),
                Admission::Call(None) if paced > longest => Err(Held {
                    wait: paced,
                    by: HeldBy::RateLimit,
                }),
                Admission::Call(probe) => Ok(probe),
            }
        })?;
        Ok(Permit {
            guards: self,
            account: account.to_owned(),
            probe: admission,
        })
    }

    /// Waits for `account`'s next turn under its rate limit (at once when there is none).
    pub(crate) async fn pace(&self, account: &str) {
        let now = Instant::now();
        let wait = self.with(account, |a| a.pace.as_mut().map(|p| p.reserve(now)));
        if let Some(wait) = wait.filter(|w| !w.is_zero()) {
            tokio::time::sleep(wait).await;
        }
    }

    /// Records how one call of `account` went (a call stopped before it was sent is not one).
    pub(crate) fn record<T>(&self, account: &str, result: &Result<T, Failure>) {
        let trouble = match result {
            Ok(_)
            | Err(
                Failure::Permanent { .. }
                | Failure::Downgrade { .. }
                | Failure::TokenRefused { .. },
            ) => None,
            Err(Failure::Transient { retry_after, .. }) => Some(*retry_after),
            Err(Failure::Stopped { .. }) => return,
        };
        self.record_call(account, trouble);
    }

    /// Records one call of `account`: `trouble` is None for an answer the API gave (success
    /// or a refusal), Some(Retry-After) for a timeout, a broken connection, a 429 or a 5xx.
    pub(crate) fn record_call(&self, account: &str, trouble: Option<Option<Duration>>) {
        let verdict = match trouble {
            None => Verdict::Healthy,
            Some(retry_after) => Verdict::Trouble(retry_after),
        };
        let now = Instant::now();
        if let Some(change) = self.with(account, |a| a.breaker.record(now, verdict)) {
            log_change(account, change);
        }
    }
}

/// One process-log line per opening, reopening and closing of an account's breaker.
fn log_change(account: &str, change: Change) {
    match change {
        Change::Opened { for_, troubled, of } => tracing::warn!(
            client_id = account, troubled, of, pause = ?for_,
            "partner API in trouble for this account: calls paused; its jobs wait in the queue without using an attempt"),
        Change::Reopened { for_ } => tracing::warn!(
            client_id = account, pause = ?for_,
            "partner API still in trouble for this account (the probe failed): calls paused again"),
        Change::Closed => tracing::info!(
            client_id = account,
            "partner API answering again for this account (the probe succeeded): calls resume"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> Result<(), Failure> {
        Err(Failure::Transient {
            message: "HTTP 503".into(),
            retry_after: None,
            outcome_unknown: false,
        })
    }

    #[tokio::test]
    async fn a_probe_dropped_without_a_call_lets_the_next_job_probe() {
        let guards = Guards::new(Politeness {
            breaker: BreakerPolicy {
                min_calls: 2,
                cool_down: Duration::from_millis(1),
                ..BreakerPolicy::DEFAULT
            },
            ..Politeness::default()
        });
        guards.record("a", &transient());
        guards.record("a", &transient());
        assert_eq!(guards.admit("a").err().map(|h| h.by), Some(HeldBy::Breaker));
        assert!(guards.admit("b").is_ok(), "another account is not affected");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let probe = guards.admit("a").ok();
        assert!(probe.is_some());
        assert!(guards.admit("a").is_err(), "one probe at a time");
        drop(probe);
        let probe = guards.admit("a").ok();
        assert!(probe.is_some(), "the abandoned probe's slot is free again");
        guards.record("a", &Ok::<(), Failure>(()));
        drop(probe);
        assert!(
            guards.admit("a").is_ok() && guards.admit("a").is_ok(),
            "closed"
        );
    }

    #[tokio::test]
    async fn a_saturated_rate_limit_holds_jobs_back() {
        let guards = Guards::new(Politeness::new(Some(1.0)));
        for _ in 0..3 {
            assert!(guards.admit("a").is_ok());
            guards.with("a", |a| a.pace.as_mut().map(|p| p.reserve(Instant::now())));
        }
        let held = guards.admit("a").err();
        assert_eq!(held.map(|h| h.by), Some(HeldBy::RateLimit));
        assert!(held.is_some_and(|h| h.wait > Duration::from_secs(2)));
    }
}
