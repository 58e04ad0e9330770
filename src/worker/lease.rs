//! The lease a running job holds, as this process knows it: counted on the process's own
//! boot-time clock (`CLOCK_BOOTTIME`: monotonic, and it keeps counting while the host is
//! suspended, where `std::time::Instant`'s `CLOCK_MONOTONIC` stops, so a host resumed after
//! the lease ran out in the database does not think it still holds it) from the instant
//! before the claim (or a renewal) was sent, so the local estimate never outlasts what the
//! database granted. The expiry itself is only ever computed and judged in SQL, by the
//! database's clock (`UTC_TIMESTAMP(6) + INTERVAL`); the margin an acting call must leave
//! includes a clock-skew allowance (`defaults::CLOCK_SKEW`) for a database node whose clock
//! runs ahead of the one that granted the lease. It renews itself every third of the
//! lease, and it is the gate every acting partner-API call passes: a call starts only while
//! the lease surely outlasts the call's timeout plus a margin, extending the lease for the
//! call first when needed. A lost lease, or one that cannot be confirmed in time, stops the
//! attempt before its next acting call; the job is then left to whoever reclaims it, whose
//! status check sees what really happened.

use std::sync::Mutex;
use std::time::Duration;

use boot_time::Instant;

use super::health::DbHealth;
use crate::jetpack::ActingGate;
use crate::store::{ClaimedJob, Store};
use crate::text::Chain;

/// What this process knows about one job's lease.
pub(super) struct Lease<'a> {
    store: &'a Store,
    job: &'a ClaimedJob,
    length: Duration,
    margin: Duration,
    health: DbHealth,
    known: Mutex<Known>,
}

#[derive(Clone, Copy)]
struct Known {
    /// The lease surely lasts until then.
    until: Instant,
    /// A renewal found it taken over.
    lost: bool,
}

impl<'a> Lease<'a> {
    /// The lease granted by the claim of `job` (`claimed` long), renewed by `length`.
    pub(super) fn new(
        store: &'a Store,
        job: &'a ClaimedJob,
        (claimed, length): (Duration, Duration),
        margin: Duration,
        health: DbHealth,
    ) -> Lease<'a> {
        Lease {
            store,
            job,
            length,
            margin,
            health,
            known: Mutex::new(Known {
                until: job.claimed_at + claimed,
                lost: false,
            }),
        }
    }

    fn known(&self) -> Known {
        *self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut Known)) {
        change(
            &mut self
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }

    /// How long the lease surely lasts from now (zero once lost).
    pub(super) fn remaining(&self) -> Duration {
        let k = self.known();
        if k.lost {
            return Duration::ZERO;
        }
        k.until.saturating_duration_since(Instant::now())
    }

    /// The longest a renewal may take: a hung connection must not hold it.
    fn renew_timeout(&self) -> Duration {
        (self.length / 4).clamp(Duration::from_millis(500), Duration::from_secs(10))
    }

    /// One renewal making the lease last at least `at_least` from now. Ok(false) when it was
    /// lost; Err with the cause when it could not be confirmed.
    async fn renew(&self, at_least: Duration) -> Result<bool, String> {
        let sent = Instant::now();
        match self
            .store
            .renew_lease(self.job, at_least, self.renew_timeout())
            .await
        {
            Ok(true) => {
                self.health.ok();
                self.update(|k| k.until = k.until.max(sent + at_least));
                Ok(true)
            }
            Ok(false) => {
                self.health.ok();
                self.update(|k| k.lost = true);
                tracing::warn!(job_id = %self.job.id, "lease lost: another worker took the job over; no further partner-API call is made for it");
                Ok(false)
            }
            Err(e) => {
                self.health.failed("lease renewal", &e);
                tracing::warn!(job_id = %self.job.id, error = %Chain(&e), "could not renew the lease");
                Err(Chain(&e).to_string())
            }
        }
    }

    /// Renews every third of the lease for as long as the attempt runs (never returns).
    pub(super) async fn keep(&self) -> std::convert::Infallible {
        let mut tick = tokio::time::interval(self.length / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if self.known().lost {
                return std::future::pending().await;
            }
            let _ = self.renew(self.length).await;
        }
    }
}

impl Lease<'_> {
    /// Notes that an acting call may be in flight for up to `longest` from now.
    fn calling(&self, longest: Duration) {
        let until = Instant::now() + longest;
        let mut window = self
            .job
            .acting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *window = Some(window.map_or(until, |w| w.max(until)));
    }
}

impl ActingGate for Lease<'_> {
    async fn permit(&self, longest: Duration) -> Result<(), String> {
        let need = longest + self.margin;
        if self.known().lost {
            return Err("the job's lease was lost (another worker took it over)".to_owned());
        }
        if covers(self.remaining(), longest, self.margin) {
            self.calling(need);
            return Ok(());
        }
        // Asked for a margin more than needed, so the time the renewal itself takes still
        // leaves `need`.
        match self.renew((need + self.margin).max(self.length)).await {
            Ok(true) if covers(self.remaining(), longest, self.margin) => {
                self.calling(need);
                Ok(())
            }
            Ok(true) => Err(format!(
                "the lease could not be confirmed for the {}s the call may take",
                need.as_secs()
            )),
            Ok(false) => Err("the job's lease was lost (another worker took it over)".to_owned()),
            Err(e) => Err(format!("the lease could not be renewed ({e})")),
        }
    }
}

/// Whether a lease that surely lasts `remaining` may carry an acting call of up to `longest`:
/// the call plus `margin` (its slack and the clock-skew allowance) must fit.
fn covers(remaining: Duration, longest: Duration, margin: Duration) -> bool {
    remaining >= longest + margin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::CLOCK_SKEW;
    use crate::worker::lease_margin;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_margin_is_a_quarter_of_the_lease_within_1_to_5_s_plus_the_skew_allowance() {
        assert_eq!(CLOCK_SKEW, S(2));
        for (lease, margin) in [(S(2), S(3)), (S(8), S(4)), (S(60), S(7)), (S(600), S(7))] {
            assert_eq!(lease_margin(lease), margin, "lease {lease:?}");
        }
    }

    #[test]
    fn a_call_starts_only_when_the_lease_outlasts_it_by_the_margin_with_the_skew() {
        let (call, margin) = (S(120), lease_margin(S(60)));
        assert!(covers(call + margin, call, margin));
        // What covered a call before the skew allowance (a 5 s margin) no longer does.
        assert!(!covers(call + S(5), call, margin));
        assert!(!covers(
            call + margin - Duration::from_millis(1),
            call,
            margin
        ));
    }

    #[test]
    fn the_boot_time_clock_advances_like_the_monotonic_one_while_awake() {
        let (boot, mono) = (Instant::now(), std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(50));
        let (b, m) = (boot.elapsed(), mono.elapsed());
        assert!(b >= Duration::from_millis(50), "{b:?}");
        assert!(b.abs_diff(m) < Duration::from_millis(20), "{b:?} vs {m:?}");
    }
}
