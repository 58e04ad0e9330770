//! Hold / Resume per partner account: the worker reads the held accounts
//! (`mod_jetpack_holds`, recorded by the queue dashboard) at most once per poll and hands
//! them to the client's guards, which give such an account's jobs back to the queue without a
//! call and without counting an attempt (`Outcome::Hold`, as an open breaker does). A
//! resumed account's jobs are due again within the guards' recheck and run in their order.

use std::collections::HashSet;
use std::time::Instant;

use super::Worker;
use crate::text::Chain;

impl Worker {
    /// Reads the held accounts when the last read (`last`) is a poll interval old or there
    /// was none. A failed read keeps the previous set (logged): a database that cannot
    /// answer this cannot hand out jobs either.
    pub(super) async fn refresh_holds(&self, last: &mut Option<Instant>) {
        if last.is_some_and(|t| t.elapsed() < self.settings.poll_interval) {
            return;
        }
        match self.store.held_accounts().await {
            Ok(accounts) => {
                self.api
                    .set_held_accounts(accounts.into_iter().collect::<HashSet<_>>());
                *last = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "could not read the partner accounts on hold; keeping the previous set");
            }
        }
    }
}
