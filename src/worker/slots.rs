//! Attempt slots: at most the concurrency of claimed jobs are in their attempt (DNS check,
//! partner-API calls) at once. A few more may be claimed ahead ([`AHEAD`]) and wait for a
//! slot, so a slot given back is taken at once rather than after a claim's round trips. A
//! job whose attempt has ended gives its slot back before its outcome is written (the
//! completer batches those writes); the engine keeps at most the concurrency again waiting to
//! be written.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Jobs claimed ahead of a free slot.
pub(super) const AHEAD: usize = 8;

/// The slots of one run of the engine. Cheap to clone.
#[derive(Clone)]
pub(super) struct Slots(Arc<Inner>);

struct Inner {
    /// Claimed jobs whose attempt has not ended (waiting for a slot, or in one).
    claimed: AtomicUsize,
    /// The concurrency's slots.
    slots: Arc<Semaphore>,
    freed: Notify,
}

/// One claimed job's place: waits for a slot ([`Place::start`]), given back when dropped.
pub(super) struct Place {
    inner: Arc<Inner>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Slots {
    /// `concurrency` slots.
    pub(super) fn new(concurrency: usize) -> Slots {
        Slots(Arc::new(Inner {
            claimed: AtomicUsize::new(0),
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            freed: Notify::new(),
        }))
    }

    /// A place for a job just claimed.
    pub(super) fn place(&self) -> Place {
        self.0.claimed.fetch_add(1, Ordering::AcqRel);
        Place {
            inner: Arc::clone(&self.0),
            slot: None,
        }
    }

    /// Claimed jobs whose attempt has not ended.
    pub(super) fn claimed(&self) -> usize {
        self.0.claimed.load(Ordering::Acquire)
    }

    /// Resolves once a place has been given back since the last call (at once when one was).
    pub(super) async fn freed(&self) {
        self.0.freed.notified().await;
    }
}

impl Place {
    /// Waits for one of the concurrency's slots.
    pub(super) async fn start(&mut self) {
        if self.slot.is_none() {
            // The semaphore is never closed.
            self.slot = Arc::clone(&self.inner.slots).acquire_owned().await.ok();
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.slot.take();
        self.inner.claimed.fetch_sub(1, Ordering::AcqRel);
        self.inner.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn places_wait_for_a_slot_and_wake_the_engine_when_given_back() {
        let slots = Slots::new(1);
        let (mut a, mut b) = (slots.place(), slots.place());
        assert_eq!(slots.claimed(), 2);
        a.start().await;
        // One slot: the second place waits until the first is given back.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.start())
                .await
                .is_err()
        );
        drop(a);
        assert_eq!(slots.claimed(), 1);
        tokio::time::timeout(Duration::from_secs(1), b.start())
            .await
            .unwrap();
        // The permit stored by the drop wakes the next wait at once.
        tokio::time::timeout(Duration::from_secs(1), slots.freed())
            .await
            .unwrap();
        drop(b);
        assert_eq!(slots.claimed(), 0);
    }
}
