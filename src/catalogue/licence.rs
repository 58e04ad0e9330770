//! The licence rows of the catalogue: what each job action does for a target whose product
//! (or addon) sells Jetpack licences through the Licensing API (configoption9 `licence`)
//! instead of plans through partner provisioning. The job keeps its action (the lifecycle's
//! rules are the same for both APIs); the worker runs the licence row of that action when the
//! product says so, and the PHP module shows its words. A leaf, like the rest of `catalogue`.

use super::{Action, Checks, StatusChange};

/// Which Jetpack API a product (addon) sells through: its module setting *Jetpack API*
/// (configoption9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// Partner provisioning (a plan per site): `''` (every product saved before the setting)
    /// and `plan`.
    Plan,
    /// The Licensing API (a licence key per target): `licence`.
    Licence,
}

impl Api {
    /// Both, in display order.
    pub const ALL: [Api; 2] = [Api::Plan, Api::Licence];

    /// The stored setting.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Plan => "plan",
            Api::Licence => "licence",
        }
    }

    /// The stored setting read: `licence` (any case, trimmed) sells licences, anything else
    /// plans (today's behaviour stays the default).
    pub fn parse(setting: &str) -> Api {
        if setting.trim().eq_ignore_ascii_case(Api::Licence.as_str()) {
            Api::Licence
        } else {
            Api::Plan
        }
    }
}

/// What a licence action does at the Licensing API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LicenceEffect {
    /// Issues a licence for the product (exactly once: the intent is recorded first) and, with
    /// *Attach to the site* on, attaches it.
    Issues,
    /// Revokes every licence the target holds.
    Revokes,
    /// Issues the new product's licence, then revokes the old one once the new one is recorded.
    IssuesThenRevokes,
    /// With the suspend setting `cancel`: detaches the licence from the site (attach on), or
    /// is refused (attach off: a revoked key never comes back); else nothing.
    DetachesBySetting,
    /// Attaches again what a suspend detached; else nothing.
    AttachesBySetting,
}

/// One licence action's row.
#[derive(Clone, Copy, Debug)]
pub struct LicenceSpec {
    /// The job action it runs for (`mod_jetpack_jobs.action`).
    pub job_action: Action,
    /// Its name in the catalogue (`issue_licence`, …).
    pub name: &'static str,
    /// The WHMCS module function that records the job (the plan row's).
    pub whmcs_function: &'static str,
    /// The module log's action name.
    pub module_log: &'static str,
    /// What an attempt tries to do, for messages.
    pub verb: &'static str,
    /// What the module writes in the details field when it records the request.
    pub queued_text: Option<&'static str>,
    /// What it does at the Licensing API.
    pub effect: LicenceEffect,
    /// The checks before the request is recorded.
    pub checks: Checks,
    /// The WHMCS status written when it succeeds.
    pub on_success: Option<StatusChange>,
    /// The WHMCS status written when it fails.
    pub on_failure: Option<StatusChange>,
}

/// Every licence action, in the plan rows' order.
pub const LICENCE_CATALOGUE: [LicenceSpec; 5] = [
    LicenceSpec {
        job_action: Action::Provision,
        name: "issue_licence",
        whmcs_function: "CreateAccount",
        module_log: "createaccount",
        verb: "issue the Jetpack licence",
        queued_text: Some(
            "Issuing the Jetpack licence is queued. The licence key will appear here once it \
             is issued.",
        ),
        effect: LicenceEffect::Issues,
        checks: Checks::Licence,
        on_success: Some(StatusChange::Activate),
        on_failure: Some(StatusChange::BackToPending),
    },
    LicenceSpec {
        job_action: Action::Terminate,
        name: "revoke_licence",
        whmcs_function: "TerminateAccount",
        module_log: "terminateaccount",
        verb: "revoke the Jetpack licence",
        queued_text: Some("Revoking the Jetpack licence is queued."),
        effect: LicenceEffect::Revokes,
        checks: Checks::Licence,
        on_success: Some(StatusChange::Terminate),
        on_failure: None,
    },
    LicenceSpec {
        job_action: Action::Change,
        name: "change_licence",
        whmcs_function: "ChangePackage",
        module_log: "changepackage",
        verb: "change the Jetpack licence",
        queued_text: Some(
            "A change of the Jetpack licence is queued. The new licence key will appear here \
             once it is issued.",
        ),
        effect: LicenceEffect::IssuesThenRevokes,
        checks: Checks::Licence,
        on_success: Some(StatusChange::Activate),
        on_failure: None,
    },
    LicenceSpec {
        job_action: Action::Suspend,
        name: "detach_licence",
        whmcs_function: "SuspendAccount",
        module_log: "suspendaccount",
        verb: "detach the Jetpack licence of the suspended service",
        queued_text: None,
        effect: LicenceEffect::DetachesBySetting,
        checks: Checks::Target,
        on_success: None,
        on_failure: None,
    },
    LicenceSpec {
        job_action: Action::Unsuspend,
        name: "attach_licence",
        whmcs_function: "UnsuspendAccount",
        module_log: "unsuspendaccount",
        verb: "attach the Jetpack licence again after the suspension",
        queued_text: None,
        effect: LicenceEffect::AttachesBySetting,
        checks: Checks::Target,
        on_success: Some(StatusChange::Activate),
        on_failure: None,
    },
];

impl Action {
    /// The licence row this job action runs for a licence product.
    pub fn licence(self) -> &'static LicenceSpec {
        match self {
            Action::Provision => &LICENCE_CATALOGUE[0],
            Action::Terminate => &LICENCE_CATALOGUE[1],
            Action::Change => &LICENCE_CATALOGUE[2],
            Action::Suspend => &LICENCE_CATALOGUE[3],
            Action::Unsuspend => &LICENCE_CATALOGUE[4],
        }
    }

    /// The words of this action for a product of `api`: what an attempt tries to do.
    pub fn verb_for(self, api: Api) -> &'static str {
        match api {
            Api::Plan => self.spec().verb,
            Api::Licence => self.licence().verb,
        }
    }

    /// The WHMCS status written when this action fails, for a product of `api`.
    pub fn on_failure_for(self, api: Api) -> Option<StatusChange> {
        match api {
            Api::Plan => self.spec().on_failure,
            Api::Licence => self.licence().on_failure,
        }
    }
}

/// The states of a row of `mod_jetpack_licences`, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LicenceState {
    /// The intent, committed before `POST /license`: the call may be in flight, or its
    /// answer was lost.
    Issuing,
    /// The answer was lost and the licence could not be looked up: an admin decides (record
    /// the key found in the portal, or issue another).
    Unknown,
    /// We hold the key, not attached to a site (or detached by a suspend).
    Issued,
    /// Attached to `attached_site`.
    Attached,
    /// Revoked (by us, or found revoked: `revoked_outside`).
    Revoked,
    /// No licence was issued: the call was refused or never reached the API, or the lookup
    /// after a lost answer showed none.
    Failed,
    /// An admin chose to issue another for an `unknown` row: that one is no longer followed.
    Abandoned,
}

impl LicenceState {
    /// Every state, in display order.
    pub const ALL: [LicenceState; 7] = [
        LicenceState::Issuing,
        LicenceState::Unknown,
        LicenceState::Issued,
        LicenceState::Attached,
        LicenceState::Revoked,
        LicenceState::Failed,
        LicenceState::Abandoned,
    ];

    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenceState::Issuing => "issuing",
            LicenceState::Unknown => "unknown",
            LicenceState::Issued => "issued",
            LicenceState::Attached => "attached",
            LicenceState::Revoked => "revoked",
            LicenceState::Failed => "failed",
            LicenceState::Abandoned => "abandoned",
        }
    }

    /// Parses the stored value.
    pub fn parse(s: &str) -> Option<LicenceState> {
        LicenceState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The target holds the licence (a key we may have to revoke): issued or attached.
    pub fn is_live(self) -> bool {
        matches!(self, LicenceState::Issued | LicenceState::Attached)
    }

    /// A licence may exist that we hold no key for: issuing or unknown.
    pub fn in_doubt(self) -> bool {
        matches!(self, LicenceState::Issuing | LicenceState::Unknown)
    }
}

/// Where a site's owner pastes a licence key (after the site's address).
pub const ACTIVATION_PATH: &str = "/wp-admin/admin.php?page=jetpack#/license/activation";

/// The licence products the module offers while the worker has not fetched the list from
/// `GET /product-families` (slug, name): the products the Licensing API's spec names.
pub const BUILT_IN_PRODUCTS: [(&str, &str); 7] = [
    ("jetpack-backup-daily", "Jetpack VaultPress Backup (daily)"),
    (
        "jetpack-backup-realtime",
        "Jetpack VaultPress Backup (real-time)",
    ),
    ("jetpack-scan", "Jetpack Scan"),
    ("jetpack-anti-spam", "Jetpack Akismet Anti-spam"),
    ("jetpack-security-daily", "Jetpack Security (daily)"),
    ("jetpack-security-realtime", "Jetpack Security (real-time)"),
    ("jetpack-complete", "Jetpack Complete"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_licence_row_runs_for_its_job_action_under_the_same_function() {
        for a in Action::ALL {
            let l = a.licence();
            assert_eq!(l.job_action, a);
            assert_eq!(l.whmcs_function, a.spec().whmcs_function);
            assert_eq!(l.module_log, a.spec().module_log);
            assert!(l.name.ends_with("_licence"), "{}", l.name);
            assert!(
                Action::parse(l.name).is_none(),
                "a licence row is not a job action"
            );
        }
    }

    #[test]
    fn the_api_setting_defaults_to_plans() {
        assert_eq!(Api::parse(""), Api::Plan);
        assert_eq!(Api::parse("plan"), Api::Plan);
        assert_eq!(Api::parse(" Licence "), Api::Licence);
        assert_eq!(Api::parse("license"), Api::Plan, "only the stored spelling");
        for s in LicenceState::ALL {
            assert_eq!(LicenceState::parse(s.as_str()), Some(s));
        }
    }
}
