//! Call slots: `JETPACK_CONCURRENCY` bounds the partner-API calls a worker process has in
//! flight (what the partner sees), not the jobs it holds. A job takes a slot just before its
//! attempt (its status and acting calls) and gives it back as soon as the attempt returns,
//! before its outcome is written; the reconciler's looks take one too. The engine claims a few
//! jobs ahead of the free slots ([`CallSlots::ahead`]), so a slot given back starts the next
//! job at once, and holds at most [`CallSlots::holding_bound`] claimed jobs not yet written
//! (the concurrency, the jobs ahead, and three times the concurrency being written), so a slow
//! or absent database cannot pile claims up, while commits that take a while (a busy disk's
//! fsync) do not leave slots idle: outcomes waiting to be written are about the calls' rate
//! times the write's latency, and at 50 ms calls three times the concurrency covers writes of
//! up to 150 ms. A job still waiting for its slot when the worker stops
//! never takes one: the engine gives it back at once, without a call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;

use crate::health::{Counted, InFlight};

/// The most jobs claimed ahead of the free slots: at 64 calls of 50 ms a slot is given back
/// every 0.8 ms, and 32 ahead cover a claim (its commit and its reads of the WHMCS rows) of up
/// to ~25 ms: 8 left slots idle on a quiet machine, 16 on a slower one (BENCHMARKS.md,
/// "claims ahead").
const MAX_AHEAD: usize = 32;
/// Outcomes being written a worker may hold, in multiples of the concurrency. Twice the
/// concurrency in all kept claims waiting on a database whose commits took ~100 ms (a busy
/// disk) and left a third of the slots idle (BENCHMARKS.md, "the holding bound").
const WRITING: usize = 3;

/// The worker's call slots and the count of its jobs that have not finished their attempt.
#[derive(Debug)]
pub(super) struct CallSlots {
    permits: Semaphore,
    concurrency: usize,
    /// Jobs claimed whose attempt has not ended: waiting for a slot, or in their calls.
    attempting: AtomicUsize,
    /// Woken whenever an attempt ends (its slot, if it had one, is free again).
    ended: Notify,
}

impl CallSlots {
    /// `concurrency` slots.
    pub(super) fn new(concurrency: u32) -> CallSlots {
        let concurrency = concurrency.max(1) as usize;
        CallSlots {
            permits: Semaphore::new(concurrency),
            concurrency,
            attempting: AtomicUsize::new(0),
            ended: Notify::new(),
        }
    }

    /// How many jobs the engine keeps claimed ahead of the free slots: half the concurrency,
    /// at most [`MAX_AHEAD`] (none at a concurrency of 1).
    pub(super) fn ahead(&self) -> usize {
        (self.concurrency / 2).min(MAX_AHEAD)
    }

    /// The most claimed jobs not yet written a worker holds: the concurrency, the jobs ahead,
    /// and [`WRITING`] times the concurrency for outcomes being written.
    pub(super) fn holding_bound(&self) -> usize {
        (1 + WRITING) * self.concurrency + self.ahead()
    }

    /// How many more jobs to claim while the engine holds `held` unwritten jobs: enough to
    /// fill every slot and keep [`CallSlots::ahead`] waiting, within the holding bound.
    pub(super) fn room(&self, held: usize) -> usize {
        let attempting = self.attempting.load(Ordering::Acquire);
        let calls = (self.concurrency + self.ahead()).saturating_sub(attempting);
        calls.min(self.holding_bound().saturating_sub(held))
    }

    /// Counts one claimed job until its attempt ends (the ticket is dropped).
    pub(super) fn claimed(self: &Arc<Self>) -> Ticket {
        self.attempting.fetch_add(1, Ordering::AcqRel);
        Ticket(self.clone())
    }

    /// Waits for a slot for the job holding `ticket`; None when `stop` comes first (the job
    /// then makes no call). The slot is counted in `in_flight` while it is held.
    pub(super) async fn take(
        &self,
        ticket: Ticket,
        stop: &CancellationToken,
        in_flight: &InFlight,
    ) -> Option<Slot<'_>> {
        let permit = tokio::select! {
            biased;
            () = stop.cancelled() => None,
            permit = self.permits.acquire() => permit.ok(),
        }?;
        Some(Slot {
            _permit: permit,
            _counted: in_flight.start(),
            _ticket: ticket,
        })
    }

    /// A slot for one call outside a job (the reconciler's look); None only if the slots
    /// were closed, which they never are.
    pub(super) async fn call(&self) -> Option<SemaphorePermit<'_>> {
        self.permits.acquire().await.ok()
    }

    /// Returns once an attempt has ended since the last call (at once if one has).
    pub(super) async fn attempt_ended(&self) {
        self.ended.notified().await;
    }
}

/// A claimed job's place among the attempts not yet ended.
#[derive(Debug)]
pub(super) struct Ticket(Arc<CallSlots>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.attempting.fetch_sub(1, Ordering::AcqRel);
        self.0.ended.notify_one();
    }
}

/// A call slot held by one job's attempt; dropped when the attempt returns.
pub(super) struct Slot<'a> {
    // Dropped in order: the permit first, so the engine woken by the ticket sees it free.
    _permit: SemaphorePermit<'a>,
    _counted: Counted,
    _ticket: Ticket,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_claims_half_ahead_at_most_32_and_holds_four_times_the_concurrency_plus_that() {
        for (c, ahead, bound) in [
            (1, 0, 4),
            (4, 2, 18),
            (16, 8, 72),
            (64, 32, 288),
            (1024, 32, 4128),
        ] {
            let slots = CallSlots::new(c);
            assert_eq!(
                (slots.ahead(), slots.holding_bound()),
                (ahead, bound),
                "c={c}"
            );
        }
    }

    #[tokio::test]
    async fn room_fills_the_slots_and_the_jobs_ahead_within_the_holding_bound() {
        let slots = Arc::new(CallSlots::new(16));
        assert_eq!(slots.room(0), 24);
        let tickets: Vec<Ticket> = (0..24).map(|_| slots.claimed()).collect();
        assert_eq!(slots.room(24), 0, "every slot busy and 8 ahead");
        drop(tickets);
        // 24 attempts ended but not yet written: room for 24 more.
        assert_eq!(slots.room(24), 24);
        // 64 ended but not yet written (the database is slow): room for 8 more only.
        assert_eq!(slots.room(64), 8);
        assert_eq!(slots.room(72), 0);
    }

    #[tokio::test]
    async fn a_job_takes_a_slot_only_while_one_is_free_and_never_after_the_stop() {
        let slots = Arc::new(CallSlots::new(1));
        let (stop, in_flight) = (CancellationToken::new(), InFlight::default());
        let first = slots.take(slots.claimed(), &stop, &in_flight).await;
        assert!(first.is_some());
        assert_eq!(in_flight.count(), 1);
        let waiting = slots.take(slots.claimed(), &stop, &in_flight);
        tokio::pin!(waiting);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting);
        assert!(waited.await.is_err(), "the only slot is taken");
        stop.cancel();
        drop(first);
        assert!(
            waiting.await.is_none(),
            "the stop comes first, even with a slot free"
        );
        assert_eq!((in_flight.count(), slots.room(0)), (0, 1));
        // Every ticket dropped: the engine was told.
        tokio::time::timeout(std::time::Duration::from_millis(50), slots.attempt_ended())
            .await
            .unwrap();
    }
}
