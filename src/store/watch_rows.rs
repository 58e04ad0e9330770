//! The reconciler's row types: when a target's site is looked at (`WatchSchedule`), a watched
//! row as a look reads it, a site's check with its rows, what a look writes back, a confirmed
//! drift and a drift as the dashboard lists it.

use std::time::Duration;

use super::ProductRow;
use crate::domain::{Action, Target};
use crate::drift::{Expect, Memory};
use crate::lifecycle::RequestKind;

/// When a target's site is looked at after its job ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSchedule {
    /// After an outcome-unknown call or a cancel: looks at these times after the outcome.
    pub quick: Vec<Duration>,
    /// The slow rolling pass: every watched site once per this period, spread.
    pub pass: Duration,
}

impl Default for WatchSchedule {
    fn default() -> Self {
        WatchSchedule {
            quick: [60, 600, 3600].map(Duration::from_secs).to_vec(),
            pass: Duration::from_secs(86_400),
        }
    }
}

impl WatchSchedule {
    /// The wait before the first look: the first quick step, or a random point of the pass.
    pub(super) fn first(&self, quick: bool) -> Duration {
        match self.quick.first() {
            Some(first) if quick => *first,
            _ => self.pass.mul_f64(fastrand::f64()),
        }
    }

    /// Quick looks still to come after the first.
    pub(super) fn quick_left(&self, quick: bool) -> u8 {
        if quick {
            u8::try_from(self.quick.len().saturating_sub(1)).unwrap_or(u8::MAX)
        } else {
            0
        }
    }
}

/// One target's expectation at one site, with what the reconciler remembers of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRow {
    /// mod_jetpack_watch.id
    pub id: u64,
    /// The service or addon.
    pub target: Target,
    /// The site as sent to the partner API.
    pub site: String,
    /// The plan provisioned (or cancelled).
    pub plan: String,
    /// Holds or absent.
    pub expect: Expect,
    /// What earlier looks found.
    pub memory: Memory,
    /// Quick looks still to come.
    pub quick_left: u8,
    /// The target has an unfinished job or a request not yet applied: its intent is still
    /// moving, so it is not judged.
    pub busy: bool,
    /// A cancel of ours touched the site since this row's outcome (another target's
    /// terminate): a plan missing now was removed by us, and is provisioned again.
    pub restore: bool,
    /// The action of the target's latest job (its latest intent); None when it has none
    /// (pruned) or one this binary does not know.
    pub latest: Option<Action>,
    /// Whether that latest job failed (an admin has it).
    pub latest_failed: bool,
    /// Whether WHMCS says the target is live now (Pending, Active or Suspended); None when its
    /// service (addon) row is gone.
    pub live: Option<bool>,
    /// The product (addon) whose partner account the row was written with.
    pub account: Option<u32>,
    /// Seconds since the expectation was last written by a job.
    pub age_secs: i64,
}

/// A site to look at: the rows due (claimed for this worker), every row watching the site, and
/// the partner account to ask with (the product or addon of a due row).
#[derive(Debug)]
pub struct SiteCheck {
    /// The site as sent to the partner API.
    pub site: String,
    /// The claim's token: the writes of this look are fenced by it.
    pub token: String,
    /// When the rows were claimed (the database's clock): a request this look records is
    /// dated then, and only recorded if the target has none of its own since.
    pub looked_at: chrono::NaiveDateTime,
    /// The rows due now.
    pub due: Vec<WatchRow>,
    /// Every row on the site (due ones included).
    pub all: Vec<WatchRow>,
    /// Whose credentials to ask with; None when no due row's product (addon) is left.
    pub account: Option<ProductRow>,
}

/// The outcome of one look for one row.
#[derive(Clone, Debug)]
pub struct CheckWrite {
    /// mod_jetpack_watch.id
    pub id: u64,
    /// The row's target, for the drift list and the activity log.
    pub target: Target,
    /// What the row now remembers.
    pub memory: Memory,
    /// What it remembered before this look (kept when a drift's request is overtaken).
    pub before: Memory,
    /// The products of ours the answer listed (None: no answer; keep the last).
    pub found: Option<String>,
    /// When to look again.
    pub next_in: Duration,
    /// Quick looks still to come.
    pub quick_left: u8,
    /// A confirmed drift to record.
    pub drift: Option<DriftWrite>,
    /// The row is done with (a cancelled plan that stayed away long enough): delete it.
    pub forget: bool,
    /// The partner already shows what the target's failed terminate asked for: its ledger row
    /// for the site goes and the row expects the plan absent (`drift::settled_by_partner`).
    pub settled: bool,
}

/// A confirmed drift: shown in the drift list and the activity log, and maybe a request.
#[derive(Clone, Debug)]
pub struct DriftWrite {
    /// The site.
    pub site: String,
    /// What WHMCS intends, in words.
    pub expected: String,
    /// What the partner reported, in words.
    pub found: String,
    /// What the reconciler did, in words.
    pub done: String,
    /// The activity-log line (starts with `JETPACK MODULE`).
    pub activity: String,
    /// The request recorded for the target, if any.
    pub request: Option<RequestKind>,
    /// Before a cancel request: the plan the partner holds, recorded in the ledger so the
    /// terminate cancels exactly it.
    pub holds: Option<String>,
    /// The product (addon) to record with it: its credentials cancel it even once the
    /// target's row is gone.
    pub account: Option<u32>,
}

/// A recorded drift, for `status` and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DriftRow {
    /// tblhosting.id (an addon's parent).
    pub service_id: u32,
    /// tblhostingaddons.id; 0 for the service itself.
    pub addon_id: u32,
    /// The site.
    pub site: String,
    /// What WHMCS intended.
    pub expected: String,
    /// What the partner reported.
    pub found: String,
    /// What was done.
    pub done: String,
    /// When (UTC).
    pub at: chrono::DateTime<chrono::Utc>,
}
