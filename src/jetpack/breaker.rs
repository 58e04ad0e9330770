//! Politeness towards the partner API, per partner account: a circuit breaker and an optional
//! pace (requests per second). Both are pure state machines that are handed the time (`now`),
//! so every transition is unit-tested without clocks or I/O; the shared, locked map of them
//! that the client consults is `guard`.
//!
//! The breaker watches the last calls of an account. When most of them failed transiently
//! (timeouts, connect errors, 5xx, 429), it opens: no call is made for the account until the
//! cool-down (or the API's `Retry-After`, whichever is later) has passed. Then exactly one call
//! probes the API (half-open); its success closes the breaker, its failure opens it again with
//! a doubled cool-down. Definitive answers (successes, errors about the input) are healthy.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When the breaker opens and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerPolicy {
    /// How many recent calls are looked at.
    pub window: usize,
    /// The breaker never opens on fewer recorded calls than this.
    pub min_calls: usize,
    /// Share of troubled calls in the window that opens the breaker (0.5 = half).
    pub trouble_ratio: f64,
    /// The first cool-down; doubled after each failed probe.
    pub cool_down: Duration,
    /// The longest cool-down.
    pub max_cool_down: Duration,
    /// The longest `Retry-After` honoured (a larger one is clamped).
    pub max_retry_after: Duration,
}

impl BreakerPolicy {
    /// The production policy: opens when at least 10 of the last 20 calls (and half of them)
    /// were in trouble; cool-downs of 5 s, 10 s, 20 s … up to 2 min.
    pub const DEFAULT: BreakerPolicy = BreakerPolicy {
        window: 20,
        min_calls: 10,
        trouble_ratio: 0.5,
        cool_down: Duration::from_secs(5),
        max_cool_down: Duration::from_secs(120),
        max_retry_after: Duration::from_secs(3600),
    };
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy::DEFAULT
    }
}

/// How one call went, as the breaker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The API answered definitively (a success, or an error about the input or credentials).
    Healthy,
    /// A transient failure or a 429, with the API's `Retry-After` when it sent one.
    Trouble(Option<Duration>),
}

/// Whether a job may call the API for the account now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Call; `Some(id)` when this job is the half-open probe.
    Call(Option<u64>),
    /// Do not call before this instant.
    Hold(Instant),
}

/// A change worth one line in the process log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Most recent calls were in trouble: no calls for `for_`.
    Opened {
        /// How long no call is made.
        for_: Duration,
        /// Troubled calls among `of` recent ones.
        troubled: usize,
        /// Recent calls looked at.
        of: usize,
    },
    /// The probe failed: no calls for `for_` (a longer cool-down).
    Reopened {
        /// How long no call is made.
        for_: Duration,
    },
    /// The probe succeeded: calls resume.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probe: Option<u64> },
}

/// One account's circuit breaker.
#[derive(Clone, Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: State,
    /// The last calls' verdicts while closed (true = trouble).
    recent: VecDeque<bool>,
    /// The latest instant a `Retry-After` seen while closed asks to wait until.
    hint: Option<Instant>,
    /// The cool-down the next failed probe doubles.
    cool_down: Duration,
    next_probe: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            cool_down: policy.cool_down,
            policy,
            state: State::Closed,
            recent: VecDeque::new(),
            hint: None,
            next_probe: 0,
        }
    }

    /// May a job call now? An open breaker whose cool-down has passed turns half-open and
    /// admits this one job as its probe; while the probe runs, others wait a cool-down.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed => Admission::Call(None),
            State::Open { until } if now < until => Admission::Hold(until),
            State::Open { .. } | State::HalfOpen { probe: None } => {
                self.next_probe += 1;
                self.state = State::HalfOpen {
                    probe: Some(self.next_probe),
                };
                Admission::Call(Some(self.next_probe))
            }
            State::HalfOpen { probe: Some(_) } => Admission::Hold(now + self.policy.cool_down),
        }
    }

    /// The probe `id` ended without a call (bad input, DNS, a lost lease): another job may
    /// probe.
    pub fn probe_abandoned(&mut self, id: u64) {
        if self.state == (State::HalfOpen { probe: Some(id) }) {
            self.state = State::HalfOpen { probe: None };
        }
    }

    /// Records one call's verdict; returns the change it caused, if any.
    pub fn record(&mut self, now: Instant, verdict: Verdict) -> Option<Change> {
        let retry_after = match verdict {
            Verdict::Trouble(ra) => ra.map(|d| now + d.min(self.policy.max_retry_after)),
            Verdict::Healthy => None,
        };
        match self.state {
            State::Closed => self.record_closed(now, verdict, retry_after),
            State::Open { until } => {
                // A call sent before the breaker opened: only a longer Retry-After counts.
                if let Some(later) = retry_after.filter(|r| *r > until) {
                    self.state = State::Open { until: later };
                }
                None
            }
            State::HalfOpen { .. } => match verdict {
                Verdict::Healthy => {
                    self.state = State::Closed;
                    self.cool_down = self.policy.cool_down;
                    self.recent.clear();
                    self.hint = None;
                    Some(Change::Closed)
                }
                Verdict::Trouble(_) => {
                    self.cool_down = (self.cool_down * 2).min(self.policy.max_cool_down);
                    let until = self.open_until(now, retry_after);
                    Some(Change::Reopened { for_: until - now })
                }
            },
        }
    }

    fn record_closed(
        &mut self,
        now: Instant,
        verdict: Verdict,
        retry_after: Option<Instant>,
    ) -> Option<Change> {
        self.recent
            .push_back(matches!(verdict, Verdict::Trouble(_)));
        while self.recent.len() > self.policy.window {
            self.recent.pop_front();
        }
        self.hint = self.hint.max(retry_after).filter(|h| *h > now);
        let of = self.recent.len();
        let troubled = self.recent.iter().filter(|t| **t).count();
        let too_many = troubled as f64 >= self.policy.trouble_ratio * of as f64;
        if of < self.policy.min_calls || troubled == 0 || !too_many {
            return None;
        }
        self.cool_down = self.policy.cool_down;
        let until = self.open_until(now, self.hint);
        self.recent.clear();
        self.hint = None;
        Some(Change::Opened {
            for_: until - now,
            troubled,
            of,
        })
    }

    /// Opens until the cool-down or the `Retry-After`, whichever is later.
    fn open_until(&mut self, now: Instant, retry_after: Option<Instant>) -> Instant {
        let until = (now + self.cool_down).max(retry_after.unwrap_or(now));
        self.state = State::Open { until };
        until
    }

    /// Whether calls are held back (open, or half-open with a probe running).
    #[cfg(test)]
    pub fn is_holding(&self) -> bool {
        !matches!(self.state, State::Closed | State::HalfOpen { probe: None })
    }
}

/// A steady pace of calls: at most `rate` per second, one at a time (no bursts), so any second
/// holds at most `rate + 1` calls.
#[derive(Clone, Debug)]
pub struct Pace {
    gap: Duration,
    next: Option<Instant>,
}

impl Pace {
    /// A pace of `rate` calls per second (a positive, finite number).
    pub fn new(rate: f64) -> Pace {
        let gap = if rate.is_finite() && rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::ZERO
        };
        Pace { gap, next: None }
    }

    /// How long a call asked for now would wait, without reserving a turn.
    pub fn wait(&self, now: Instant) -> Duration {
        self.next
            .map_or(Duration::ZERO, |n| n.saturating_duration_since(now))
    }

    /// Reserves the next turn; returns how long to wait for it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let turn = self.next.map_or(now, |n| n.max(now));
        self.next = Some(turn + self.gap);
        turn - now
    }
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;
