//! How long to wait before trying a database statement again, in one place, each policy named
//! for what it is for: the start-up connect, lock conflicts of a claim, of applying requests
//! and of a finishing write, the patience of an attempt's outcome write, and the service
//! loop's pauses through a database outage. (When a *job* runs again is `retry`.) The
//! policies only say how long to wait; the call sites decide what is worth another try.
//! A leaf: it imports nothing from the crate.

use std::time::Duration;

use backon::ExponentialBuilder;

/// Start-up connect: `run` (`patient`) keeps trying for about two minutes (12 tries, 1 s
/// doubling to 15 s, jittered), so a database that is restarting at boot delays the start
/// instead of failing it; the other commands try once.
pub fn startup_connect(patient: bool) -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(15))
        .with_max_times(if patient { 12 } else { 0 })
        .with_jitter()
}

/// A finishing write that hit a lock conflict: 8 quick tries, 20 ms doubling to 200 ms,
/// jittered (then the lease expires and the job runs again, so nothing is lost).
pub fn finish_conflicts() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(200))
        .with_max_times(8)
        .with_jitter()
}

/// An attempt's outcome while the database is unavailable: 250 ms doubling to 4 s, jittered,
/// for up to `patience` in all (the write is fenced by the lease token, so a late one is
/// refused if the job was taken over).
pub fn outcome_write(patience: Duration) -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(4))
        .without_max_times()
        .with_total_delay(Some(patience))
        .with_jitter()
}

/// A few quick tries of a statement that hit a lock conflict: the pause after try `n` is
/// `n × 10 ms` plus up to 20 ms of jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflicts {
    /// How many tries in all.
    pub tries: u64,
}

impl Conflicts {
    /// The pause after try number `tries` (1-based).
    pub fn pause(&self, tries: u64) -> Duration {
        Self::pause_with(tries, fastrand::u64(..20))
    }

    fn pause_with(tries: u64, jitter_ms: u64) -> Duration {
        Duration::from_millis(10 * tries + jitter_ms)
    }
}

/// A claim that hit a lock conflict (also how conflicts surface on Galera): 5 tries, then
/// nothing is claimed this turn.
pub const CLAIM_CONFLICTS: Conflicts = Conflicts { tries: 5 };

/// Applying a batch of requests that hit a lock conflict or a race on the one-unfinished-job
/// index: 8 tries, then the error is returned.
pub const REQUEST_CONFLICTS: Conflicts = Conflicts { tries: 8 };

/// The service loop after `failures` database errors in a row (at least 1): 500 ms, doubling
/// per failure, at most 30 s.
pub fn outage_pause(failures: u32) -> Duration {
    Duration::from_millis(250u64 << failures.min(7)).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_pauses_grow_by_ten_milliseconds_a_try() {
        assert_eq!(Conflicts::pause_with(1, 0), Duration::from_millis(10));
        assert_eq!(Conflicts::pause_with(5, 19), Duration::from_millis(69));
        for tries in 1..=CLAIM_CONFLICTS.tries {
            let pause = CLAIM_CONFLICTS.pause(tries);
            let least = Duration::from_millis(10 * tries);
            assert!((least..least + Duration::from_millis(20)).contains(&pause));
        }
    }

    #[test]
    fn the_outage_pause_doubles_to_thirty_seconds() {
        assert_eq!(outage_pause(1), Duration::from_millis(500));
        assert_eq!(outage_pause(2), Duration::from_secs(1));
        assert_eq!(outage_pause(6), Duration::from_secs(16));
        assert_eq!(outage_pause(7), Duration::from_secs(30));
        assert_eq!(outage_pause(u32::MAX), Duration::from_secs(30));
    }
}
