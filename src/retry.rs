//! The retry policy: when a job that failed transiently runs again, when a plan waiting on DNS
//! is looked at again, and when to give up. Pure functions of their inputs (the random jitter
//! is passed in), so every schedule is unit-tested without I/O or clocks. (How long to wait
//! before a database statement is tried again is `backoff`.)

use std::time::Duration;

use crate::defaults;

/// Backoff for transient errors: `base * factor^(attempt-1)`, capped, with ± jitter, within an
/// attempt budget. `Retry-After` from the API is honoured (up to `max_retry_after`).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts a job gets before it fails (a fresh budget on requeue). Default 8.
    pub max_attempts: u32,
    /// Delay after the first failed attempt. Default 30 s.
    pub base: Duration,
    /// Growth per attempt. Default 2.
    pub factor: f64,
    /// Longest delay between attempts. Default 1 h.
    pub cap: Duration,
    /// Share of the delay randomised either way (0.2 = ±20 %). Default 0.2.
    pub jitter: f64,
    /// Longest `Retry-After` honoured; a larger value is clamped. Default 6 h.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The production policy: 8 attempts over roughly 1 h 10 min (30 s, 1, 2, 4, 8, 16, 32 min).
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: defaults::MAX_ATTEMPTS.value,
        base: defaults::RETRY_BASE.value,
        factor: 2.0,
        cap: Duration::from_secs(3600),
        jitter: 0.2,
        max_retry_after: Duration::from_secs(6 * 3600),
    };

    /// What to do after attempt number `attempt` (1-based) failed transiently.
    /// `unit` is a random number in `[0, 1)` for the jitter.
    pub fn after_transient(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> RetryDecision {
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        RetryDecision::RetryIn(self.delay(attempt, retry_after, unit))
    }

    /// The delay before the attempt after `attempt`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let exp = self.factor.powi(attempt.saturating_sub(1).min(60) as i32);
        let raw = (self.base.as_secs_f64() * exp).min(self.cap.as_secs_f64());
        let spread = (unit.clamp(0.0, 1.0) * 2.0 - 1.0) * self.jitter;
        let backoff = Duration::from_secs_f64((raw * (1.0 + spread)).max(0.0));
        match retry_after {
            Some(ra) => backoff.max(ra.min(self.max_retry_after)),
            None => backoff,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::DEFAULT
    }
}

/// The policy's answer after a transient failure.
#[derive(Clone, Debug, PartialEq)]
pub enum RetryDecision {
    /// Queue the job again this far in the future.
    RetryIn(Duration),
    /// The attempt budget is spent: fail the job.
    GiveUp,
}

/// How plans waiting on a new domain's DNS are re-checked. These re-checks do not use attempts;
/// they stop when the partner's pending-activation window (14 days) ends.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsSchedule {
    /// First re-check after the empty `next_url`. Default 5 min.
    pub first: Duration,
    /// Longest gap between re-checks. Default 1 h.
    pub cap: Duration,
    /// The pending-activation window. Default 14 days.
    pub window: Duration,
}

impl DnsSchedule {
    /// 5 min, 10, 20, 40, then hourly, for 14 days.
    pub const DEFAULT: DnsSchedule = DnsSchedule {
        first: Duration::from_secs(300),
        cap: Duration::from_secs(3600),
        window: Duration::from_secs(14 * 24 * 3600),
    };

    /// When to look again after `checks` re-checks so far, given how long the plan has waited.
    /// `None` when the window has ended (the job fails with a clear reason).
    pub fn next_check(&self, checks: u32, waited: Duration) -> Option<Duration> {
        if waited >= self.window {
            return None;
        }
        let doubled = self.first.as_secs_f64() * 2f64.powi(checks.min(30) as i32);
        let gap = Duration::from_secs_f64(doubled.min(self.cap.as_secs_f64()));
        let left = self.window - waited;
        Some(gap.min(left))
    }
}

impl Default for DnsSchedule {
    fn default() -> Self {
        DnsSchedule::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MID: f64 = 0.5; // no jitter

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::DEFAULT;
        assert_eq!(p.delay(1, None, MID), Duration::from_secs(30));
        assert_eq!(p.delay(2, None, MID), Duration::from_secs(60));
        assert_eq!(p.delay(5, None, MID), Duration::from_secs(480));
        assert_eq!(p.delay(20, None, MID), Duration::from_secs(3600));
        assert_eq!(p.delay(u32::MAX, None, MID), Duration::from_secs(3600));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy::DEFAULT;
        assert_eq!(p.delay(1, None, 0.0), Duration::from_secs(24));
        assert_eq!(p.delay(1, None, 1.0), Duration::from_secs(36));
        for i in 0..100 {
            let d = p.delay(3, None, i as f64 / 100.0).as_secs_f64();
            assert!((96.0..=144.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let p = RetryPolicy::DEFAULT;
        let ra = Some(Duration::from_secs(900));
        assert_eq!(p.delay(1, ra, MID), Duration::from_secs(900));
        // a shorter Retry-After never shortens the backoff
        assert_eq!(
            p.delay(4, Some(Duration::from_secs(1)), MID),
            Duration::from_secs(240)
        );
        let huge = Some(Duration::from_secs(30 * 24 * 3600));
        assert_eq!(p.delay(1, huge, MID), Duration::from_secs(6 * 3600));
    }

    #[test]
    fn budget_ends_in_give_up() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::DEFAULT
        };
        assert!(matches!(
            p.after_transient(1, None, MID),
            RetryDecision::RetryIn(_)
        ));
        assert!(matches!(
            p.after_transient(2, None, MID),
            RetryDecision::RetryIn(_)
        ));
        assert_eq!(p.after_transient(3, None, MID), RetryDecision::GiveUp);
    }

    #[test]
    fn dns_schedule_grows_to_hourly_and_stops_at_the_window() {
        let s = DnsSchedule::DEFAULT;
        let zero = Duration::ZERO;
        assert_eq!(s.next_check(0, zero), Some(Duration::from_secs(300)));
        assert_eq!(s.next_check(1, zero), Some(Duration::from_secs(600)));
        assert_eq!(s.next_check(3, zero), Some(Duration::from_secs(2400)));
        assert_eq!(s.next_check(4, zero), Some(Duration::from_secs(3600)));
        assert_eq!(s.next_check(500, zero), Some(Duration::from_secs(3600)));
        let almost = s.window - Duration::from_secs(60);
        assert_eq!(s.next_check(9, almost), Some(Duration::from_secs(60)));
        assert_eq!(s.next_check(9, s.window), None);
    }
}
