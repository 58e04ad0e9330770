//! Attempt slots: how many claimed jobs are in their attempt (DNS check, partner-API calls),
//! which is what the concurrency bounds. A job whose attempt has ended gives its slot back
//! before its outcome is written (the completer batches those writes), so the next job's call
//! does not wait for a write; the engine keeps at most as many jobs again waiting to be
//! written.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The slots of one run of the engine. Cheap to clone.
#[derive(Clone, Default)]
pub(super) struct Slots(Arc<Inner>);

#[derive(Default)]
struct Inner {
    busy: AtomicUsize,
    freed: Notify,
}

/// One job's slot, given back when dropped.
pub(super) struct Slot(Arc<Inner>);

impl Slots {
    /// Takes a slot for a job about to start its attempt.
    pub(super) fn take(&self) -> Slot {
        self.0.busy.fetch_add(1, Ordering::AcqRel);
        Slot(Arc::clone(&self.0))
    }

    /// Slots taken and not given back.
    pub(super) fn busy(&self) -> usize {
        self.0.busy.load(Ordering::Acquire)
    }

    /// Resolves once a slot has been given back since the last call (at once when one was).
    pub(super) async fn freed(&self) {
        self.0.freed.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slot_given_back_is_counted_and_wakes_the_engine() {
        let slots = Slots::default();
        let (a, b) = (slots.take(), slots.take());
        assert_eq!(slots.busy(), 2);
        drop(a);
        assert_eq!(slots.busy(), 1);
        // The permit stored by the drop wakes the next wait at once.
        tokio::time::timeout(std::time::Duration::from_secs(1), slots.freed())
            .await
            .unwrap();
        drop(b);
        assert_eq!(slots.busy(), 0);
    }
}
