//! The catalogue of job actions: one row per action says everything the worker and the PHP
//! module need to know about it (its stored name, the WHMCS function that records it, its log
//! and activity words, what it does at the partner, what it reads, which order checks it
//! needs, the WHMCS status it writes on success and on failure). Everything that branches on
//! an action asks its row; SQL gets its lists as binds from here. The rows are exported beside
//! `rules.json` (`catalogue.json`, see `export`) so the PHP module and the dashboard read the
//! same lists. The licence rows (a product selling Jetpack licences runs them for the same job
//! actions) are `licence`. A leaf: it imports nothing of the crate.

mod licence;

use std::fmt;

pub use licence::{
    ACTIVATION_PATH, Api, BUILT_IN_PRODUCTS, LICENCE_CATALOGUE, LicenceEffect, LicenceSpec,
    LicenceState,
};

/// What a job does (`mod_jetpack_jobs.action`); its row in [`CATALOGUE`] says the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Action {
    /// Provision the plan (WHMCS Create).
    Provision,
    /// Cancel the plan (WHMCS Terminate).
    Terminate,
    /// Provision the plan the order names now over the current one (WHMCS ChangePackage,
    /// after an upgrade order is paid).
    Change,
    /// WHMCS suspended the target (an overdue invoice): keep the plan, or cancel it, as the
    /// product's setting says.
    Suspend,
    /// WHMCS unsuspended the target (paid): provision again what a suspend cancelled.
    Unsuspend,
}

/// What an action leaves at the partner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The plan the order names, on the order's site (a lost answer is settled by asking the
    /// status endpoint first).
    Provides,
    /// Nothing: every plan the ledger holds for the target is cancelled.
    Removes,
    /// Nothing, when the product's suspend setting says to cancel; else the plan stays.
    RemovesBySetting,
    /// What a suspend left: provides the order's plan again when the product's suspend
    /// setting cancels it (and the ledger no longer holds it); else nothing is called.
    RestoresBySetting,
}

/// Which checks of the order an action needs before it is recorded and when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Site URL, Local User, plan and partner credentials (what a provision sends).
    Order,
    /// Site URL and partner credentials (what a cancel sends).
    Cancel,
    /// Only that the target exists and uses the module: WHMCS's suspend and unsuspend must
    /// never be refused for an order detail; the job reports what it cannot do.
    Target,
    /// A licence product's settings: the Licensing API token and the licence product (and the
    /// Site URL when *Attach to the site* is on).
    Licence,
}

/// How the target's WHMCS status changes (`tblhosting.domainstatus`, `tblhostingaddons.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// Pending (or Terminated, by a terminate that finished after a newer Create) → Active:
    /// provisioned, or waiting on DNS.
    Activate,
    /// Active → Pending (a provision failed, as WHMCS leaves a failed Create).
    BackToPending,
    /// → Terminated, with `termination_date` set to today when it is empty.
    Terminate,
}

impl StatusChange {
    /// The status this change writes, as WHMCS spells it.
    pub fn status(self) -> &'static str {
        match self {
            StatusChange::Activate => "Active",
            StatusChange::BackToPending => "Pending",
            StatusChange::Terminate => "Terminated",
        }
    }
}

/// One action's row.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    /// The action.
    pub action: Action,
    /// The stored value (`mod_jetpack_jobs.action`, `mod_jetpack_requests.action`).
    pub name: &'static str,
    /// The WHMCS module function that records it (`tblmodulequeue.module_action`).
    pub whmcs_function: &'static str,
    /// The module log's action name (`tblmodulelog.action`).
    pub module_log: &'static str,
    /// What an attempt tries to do, for messages ("could not provision the Jetpack plan").
    pub verb: &'static str,
    /// What the module writes in the details field when it records the request; None leaves
    /// the field (and the activation link it shows) as it is.
    pub queued_text: Option<&'static str>,
    /// What it leaves at the partner.
    pub effect: Effect,
    /// Whether its claim reads the ledger (what the partner holds for the target).
    pub reads_ledger: bool,
    /// The order checks it needs.
    pub checks: Checks,
    /// The WHMCS status written when it succeeds (or waits on DNS).
    pub on_success: Option<StatusChange>,
    /// The WHMCS status written when it fails.
    pub on_failure: Option<StatusChange>,
    /// WHMCS sets the target's status itself when the module function returns success
    /// (Create, Suspend, Unsuspend, Terminate; not ChangePackage): a request of this action
    /// recorded and not yet applied is the last word on the status (`store::writeback`).
    pub whmcs_sets_status: bool,
}

/// Every action, in display order.
pub const CATALOGUE: [ActionSpec; 5] = [
    ActionSpec {
        action: Action::Provision,
        name: "provision",
        whmcs_function: "CreateAccount",
        module_log: "createaccount",
        verb: "provision the Jetpack plan",
        queued_text: Some(
            "Jetpack provisioning is queued. The activation link will appear here once the \
             plan is provisioned.",
        ),
        effect: Effect::Provides,
        // Only an addon's (it may have moved): see `ClaimedJob::ledger`.
        reads_ledger: false,
        checks: Checks::Order,
        on_success: Some(StatusChange::Activate),
        on_failure: Some(StatusChange::BackToPending),
        whmcs_sets_status: true,
    },
    ActionSpec {
        action: Action::Terminate,
        name: "terminate",
        whmcs_function: "TerminateAccount",
        module_log: "terminateaccount",
        verb: "cancel the Jetpack plan",
        queued_text: Some("Cancellation of the Jetpack plan is queued."),
        effect: Effect::Removes,
        reads_ledger: true,
        checks: Checks::Cancel,
        on_success: Some(StatusChange::Terminate),
        on_failure: None,
        whmcs_sets_status: true,
    },
    ActionSpec {
        action: Action::Change,
        name: "change",
        whmcs_function: "ChangePackage",
        module_log: "changepackage",
        verb: "change the Jetpack plan",
        queued_text: Some(
            "A change of the Jetpack plan is queued. The activation link will appear here once \
             the new plan is provisioned.",
        ),
        effect: Effect::Provides,
        reads_ledger: true,
        checks: Checks::Order,
        on_success: Some(StatusChange::Activate),
        on_failure: None,
        whmcs_sets_status: false,
    },
    ActionSpec {
        action: Action::Suspend,
        name: "suspend",
        whmcs_function: "SuspendAccount",
        module_log: "suspendaccount",
        verb: "cancel the Jetpack plan of the suspended service",
        queued_text: None,
        effect: Effect::RemovesBySetting,
        reads_ledger: true,
        checks: Checks::Target,
        on_success: None,
        on_failure: None,
        whmcs_sets_status: true,
    },
    ActionSpec {
        action: Action::Unsuspend,
        name: "unsuspend",
        whmcs_function: "UnsuspendAccount",
        module_log: "unsuspendaccount",
        verb: "provision the Jetpack plan again after the suspension",
        queued_text: None,
        effect: Effect::RestoresBySetting,
        reads_ledger: true,
        checks: Checks::Target,
        on_success: Some(StatusChange::Activate),
        on_failure: None,
        whmcs_sets_status: true,
    },
];

impl Action {
    /// Every action, in display order.
    pub const ALL: [Action; 5] = [
        Action::Provision,
        Action::Terminate,
        Action::Change,
        Action::Suspend,
        Action::Unsuspend,
    ];

    /// Its row of the catalogue.
    pub fn spec(self) -> &'static ActionSpec {
        match self {
            Action::Provision => &CATALOGUE[0],
            Action::Terminate => &CATALOGUE[1],
            Action::Change => &CATALOGUE[2],
            Action::Suspend => &CATALOGUE[3],
            Action::Unsuspend => &CATALOGUE[4],
        }
    }

    /// The value stored in `mod_jetpack_jobs.action`.
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// Parses the stored value.
    pub fn parse(s: &str) -> Option<Action> {
        CATALOGUE.iter().find(|a| a.name == s).map(|a| a.action)
    }

    /// The WHMCS module function this action stands for (`tblmodulequeue.module_action`).
    pub fn module_function(self) -> &'static str {
        self.spec().whmcs_function
    }

    /// Whether it always leaves the plan the order names at the site (provision, change):
    /// two such requests count as the same intent, and a lost answer is settled by the
    /// status endpoint.
    pub fn provisions(self) -> bool {
        self.spec().effect == Effect::Provides
    }

    /// Whether it may call the partner's provision endpoint (a provision, a change, an
    /// unsuspend that restores a plan): its lost answers are settled by the status endpoint.
    pub fn may_provide(self) -> bool {
        matches!(
            self.spec().effect,
            Effect::Provides | Effect::RestoresBySetting
        )
    }

    /// Whether it takes the plan away for good (terminate): a change of plan asked after it
    /// is ignored.
    pub fn removes(self) -> bool {
        self.spec().effect == Effect::Removes
    }

    /// Whether the plan is out of the customer's use after it (terminate, suspend): a change
    /// of plan asked after it waits for a Create or an unsuspend, which read the order then.
    pub fn withdraws(self) -> bool {
        matches!(
            self.spec().effect,
            Effect::Removes | Effect::RemovesBySetting
        )
    }

    /// The stored names of the actions `keep` selects, as SQL binds.
    pub fn names_where(keep: impl Fn(Action) -> bool) -> Vec<&'static str> {
        Action::ALL
            .into_iter()
            .filter(|a| keep(*a))
            .map(Action::as_str)
            .collect()
    }
}

/// The stored value (padding and alignment apply).
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// As the stored value, so `status --json` shows what the table holds.
impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_its_action_and_names_are_unique() {
        for (i, a) in Action::ALL.into_iter().enumerate() {
            assert_eq!(a.spec().action, a);
            assert_eq!(CATALOGUE[i].action, a);
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        let mut names: Vec<&str> = CATALOGUE.iter().map(|a| a.name).collect();
        names.extend(CATALOGUE.iter().map(|a| a.whmcs_function));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a stored name or WHMCS function twice");
        assert_eq!(Action::parse("Provision"), None);
    }

    #[test]
    fn module_log_names_are_the_functions_lowercased() {
        for a in CATALOGUE {
            assert_eq!(a.module_log, a.whmcs_function.to_lowercase());
        }
    }
}
