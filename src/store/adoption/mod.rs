//! The adoption scan, incremental and index-driven (issue 11): its cost follows the Jetpack
//! work, not the size of the WHMCS database. Every path is written once over the target's
//! [`Kind`](kind::Kind), a service or an addon (docs/addons.md), which names the worker's
//! tables and columns of each; the WHMCS statements that differ by kind sit with their path.
//!
//! - *Discovery* (`discover`): the targets above each kind's watermarks, read by index; the
//!   Pending ones of `jetpack` products and addons whose order qualifies already are adopted
//!   from the page (as a re-check would), the other Pending ones become candidates
//!   (`mod_jetpack_adoption_candidates`, `mod_jetpack_adoption_addon_candidates`). The
//!   *trailing window* (`window`, issue 18) re-reads the ids added lately, so a row committed
//!   after a higher one was discovered is not skipped.
//! - *Re-check* (`recheck`): a page of candidates joined by primary key to their target,
//!   product or addon (and an addon's `configoption8` row), order and invoice. A candidate that
//!   qualifies (Pending, "Do not automatically setup", order accepted or invoice paid as its
//!   *When to provision a manual-setup order* says) is marked
//!   (`mod_jetpack_adoption_marks`, `mod_jetpack_adoption_addon_marks`; primary key: once,
//!   across workers, never pruned) and gets a provision request unless its target already
//!   had a job or a request; one no longer Pending (or gone) is dropped. A page's qualifying
//!   candidates (or a discovery page's qualifying targets) are recorded together, in one
//!   transaction (`adopt`).
//! - *Deleted services and addons* (`sweep`): a page of the ledger joined by primary key to
//!   tblhosting (and tblhostingaddons for addon rows); a plan whose row is gone gets one
//!   terminate request (marked the same way), unless its product (addon) keeps the plan.
//! - `explain`: every statement's plan, for the tests and the benchmark; `parts` builds the
//!   reads made of one part per scope.
//!
//! Every read of a WHMCS table is a plain (non-locking) read by index; writes touch only the
//! worker's own tables. Without module addons (WHMCS before 7.2, [`Store::has_addons`]) the
//! addon steps are skipped.
//!
//! [`Store::has_addons`]: crate::store::Store::has_addons

mod adopt;
mod discover;
mod explain;
mod kind;
mod parts;
mod recheck;
mod sweep;
mod window;

pub use discover::Discovered;
pub use recheck::{Recheck, RecheckCursor, Rechecked};
pub use sweep::Swept;
pub use window::Behind;

use super::{Result, Store, within};
use crate::rules::MODULE_NAME;

impl Store {
    /// The ids of every `jetpack` product (tblproducts is small and has no index on its
    /// module; callers cache the answer).
    pub async fn adoption_products(&self) -> Result<Vec<u32>> {
        let query = sqlx::query_as("SELECT id FROM tblproducts WHERE servertype = ? ORDER BY id")
            .bind(MODULE_NAME)
            .fetch_all(&self.pool);
        let rows: Vec<(i32,)> = within(self.timeout, async { Ok(query.await?) }).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id,)| u32::try_from(id).ok())
            .collect())
    }
}
