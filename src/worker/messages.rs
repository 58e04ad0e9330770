//! The words WHMCS shows for each outcome: `jetpack_provisioning_details` texts and
//! `JETPACK MODULE …` activity-log lines. Every line names the service id; customer-entered
//! values are quoted with `order::quote`, never raw.

use crate::domain::{Plan, SiteUrl, Target};
use crate::drift::Finding;
use crate::lifecycle::RequestKind;

/// Details after a provision returned its activation link (the original module's wording).
pub fn details_activated(next_url: &str) -> String {
    format!("URL to Activate Jetpack: {next_url}")
}

/// Details while the plan waits on the domain's DNS.
pub fn details_waiting(site: &SiteUrl) -> String {
    format!(
        "The domain {site} did not resolve when provisioning was attempted, however a Jetpack plan \
         is waiting for it. Once DNS resolves, connect the site with the Jetpack banner in its \
         WordPress dashboard. Provisioning is checked again automatically."
    )
}

/// Details when the status endpoint shows a provision whose answer was lost took effect.
pub fn details_found_active(plan: &Plan, site: &SiteUrl, pending: bool) -> String {
    if pending {
        format!(
            "A Jetpack {plan} plan is waiting for {site} to connect. Connect the site with the \
             Jetpack banner in its WordPress dashboard."
        )
    } else {
        format!(
            "The Jetpack {plan} plan is provisioned for {site}. Connect the site from its \
             WordPress dashboard (Jetpack → Set up) if it is not connected yet."
        )
    }
}

/// The failure when a provision's answer was lost and the status endpoint shows a product of
/// our partner account on the site that no plan matches: an admin decides, once.
pub fn status_unreadable(target: Target, site: &SiteUrl, plan: &Plan, slugs: &[&str]) -> String {
    let shown = slugs.join(", ");
    format!(
        "JETPACK MODULE: {target} - an earlier provision of the {plan} plan for {site} may have \
         taken effect (its answer was lost), and the partner now reports a product of your partner \
         account on the site that the worker cannot match to a plan ({shown}). It did not provision \
         again. Check the site in the partner portal: if it has what the customer bought, leave it; \
         otherwise use Retry to provision the {plan} plan."
    )
}

/// Details after a successful cancel.
pub fn details_cancelled(site: &str) -> String {
    format!("The Jetpack plan for {site} was cancelled.")
}

/// Details when the API had nothing left to cancel.
pub fn details_nothing_to_cancel(site: &str) -> String {
    format!("No Jetpack plan was left to cancel for {site}; it had likely been cancelled already.")
}

/// Activity line: provisioned.
pub fn activity_provisioned(target: Target, plan: &Plan, site: &SiteUrl) -> String {
    format!("JETPACK MODULE: {target} - Jetpack {plan} plan provisioned for {site}")
}

/// Activity line: waiting on DNS.
pub fn activity_waiting(target: Target, plan: &Plan, site: &SiteUrl) -> String {
    format!(
        "JETPACK MODULE: {target} - Jetpack {plan} plan is pending: {site} does not \
         resolve yet; it is re-checked automatically for 14 days"
    )
}

/// Activity line: cancelled (or nothing to cancel).
pub fn activity_terminated(target: Target, site: &str, nothing_left: bool) -> String {
    if nothing_left {
        format!(
            "JETPACK MODULE: {target} - no Jetpack plan was left to cancel for {site}; \
             service terminated"
        )
    } else {
        format!("JETPACK MODULE: {target} - Jetpack plan cancelled for {site}")
    }
}

/// The failure text for a job (details, job row, Module Queue); the activity line is the same.
pub fn failure(target: Target, what: &str, reason: &str) -> String {
    format!("JETPACK MODULE: {target} - could not {what}: {reason}")
}

/// Failure after the attempt budget ran out.
pub fn gave_up(target: Target, what: &str, attempts: u32, reason: &str) -> String {
    format!(
        "JETPACK MODULE: {target} - could not {what} after {attempts} attempts; the last \
         error was: {reason}. Use Retry in Utilities → Module Queue (or `{}`) once the partner \
         API is reachable",
        requeue_command(target)
    )
}

/// The command line that retries the target's failed job.
pub fn requeue_command(target: Target) -> String {
    match target {
        Target::Service(s) => format!("jetpack-worker requeue {s}"),
        Target::Addon { addon, .. } => format!("jetpack-worker requeue --addon {addon}"),
    }
}

/// Details after a change of plan took effect.
pub fn details_changed(from: &str, to: &Plan, site: &SiteUrl, next_url: &str) -> String {
    format!(
        "The Jetpack plan for {site} is now {to} (it was {from}). URL to Activate Jetpack: {next_url}"
    )
}

/// Details when a change of plan found the site already on the plan the order names.
pub fn details_same_plan(plan: &Plan, site: &SiteUrl) -> String {
    format!(
        "The Jetpack {plan} plan is provisioned for {site}; the change of plan left it as it was."
    )
}

/// Activity line: the plan was changed.
pub fn activity_changed(target: Target, from: &str, to: &Plan, site: &SiteUrl) -> String {
    format!("JETPACK MODULE: {target} - Jetpack plan changed from {from} to {to} for {site}")
}

/// Failure of a change to a lower plan (`plan_downgrade_disallowed`): what to do instead.
pub fn downgrade(target: Target, from: &str, to: &Plan) -> String {
    let text = crate::rules::render(
        &crate::rules::rules().messages.downgrade,
        &[("from", from), ("to", to.as_str())],
    );
    format!("JETPACK MODULE: {target} - {text}")
}

/// Failure when the 14-day pending window ended without the domain resolving.
pub fn dns_window_ended(target: Target, site: &SiteUrl) -> String {
    format!(
        "JETPACK MODULE: {target} - {site} still did not resolve after 14 days, so the \
         pending Jetpack plan expired; fix the domain's DNS, then use Retry in Utilities → Module \
         Queue to provision again"
    )
}

/// Failure when the database refused an attempt's outcome (not an outage): the job is failed
/// with the cause, and nothing is retried against the partner API without an admin's Retry.
pub fn unrecordable(target: Target, state: &str, cause: &str) -> String {
    format!(
        "JETPACK MODULE: {target} - the outcome of the last attempt ({state}) could not \
         be written to the WHMCS database: {cause}. The job was stopped so the partner API is not \
         called again; fix the cause, check the plan at the partner, then use Retry in \
         Utilities → Module Queue"
    )
}

/// Activity line: the Site URL was edited after the plan was provisioned.
pub fn site_moved(target: Target, now: &str, cancelled: &[String]) -> String {
    format!(
        "JETPACK MODULE: {target} - the Site URL now reads {}, but the plan was \
         provisioned for {}: the plan cancelled is the one the partner holds for {}",
        crate::order::quote(now),
        cancelled.join(", "),
        cancelled.join(", ")
    )
}

/// Appended to an activity line when the order's Site URL field was empty and the site came
/// from the ledger (after a move to a product whose fields are named differently).
pub fn site_from_ledger(site: &str) -> String {
    format!(
        " (the Site URL field is empty, as after a move to a product whose fields are named \
         differently: the site is {site}, where jetpack-worker provisioned the plan)"
    )
}

/// Failure of a job whose service (tblhosting) or addon (tblhostingaddons) row is gone: the
/// `rules.json` text the PHP module uses too.
pub fn target_missing(target: Target) -> String {
    let texts = &crate::rules::rules().messages;
    let text = match target {
        Target::Service(_) => &texts.service_missing,
        Target::Addon { .. } => &texts.addon_missing,
    };
    format!("JETPACK MODULE: {target} - {text}")
}

/// A drift's words: what WHMCS intends, and the activity line's first part.
pub struct DriftWords {
    /// What was expected, for the drift list.
    pub expected: String,
    /// `JETPACK MODULE: <target> - …` without what was done.
    pub activity: String,
}

/// What a confirmed drift says: a plan that should be there is not, or one that was
/// cancelled is back, or products it cannot name (`found`: the products of ours listed).
pub fn drift(target: Target, site: &str, plan: &str, seen: Finding, found: &str) -> DriftWords {
    match seen {
        Finding::Unmapped => DriftWords {
            expected: format!("the {plan} plan"),
            activity: format!(
                "JETPACK MODULE: {target} - the partner lists products of your partner account \
                 for {site} that the worker cannot match to the {plan} plan ({found})."
            ),
        },
        Finding::Missing | Finding::Fine => DriftWords {
            expected: format!("the {plan} plan"),
            activity: format!(
                "JETPACK MODULE: {target} - the partner no longer holds the {plan} plan for \
                 {site} (products of ours it lists: {found}); it was cancelled outside WHMCS, \
                 or never landed."
            ),
        },
        Finding::Unexpected => DriftWords {
            expected: format!("no {plan} plan (cancelled)"),
            activity: format!(
                "JETPACK MODULE: {target} - the partner holds a plan for {site} again after \
                 its {plan} plan was cancelled (products of ours it lists: {found}): a \
                 provision that landed late, or a change in the partner portal."
            ),
        },
    }
}

/// The end of a drift's activity line: what the reconciler did about it.
pub fn drift_done(request: Option<RequestKind>, gave_up: bool) -> &'static str {
    if gave_up {
        return "It keeps drifting, so the worker stopped acting on it: check the site in the \
                partner portal.";
    }
    match request.and_then(RequestKind::action) {
        Some(a) if a.withdraws() => "The worker requested a cancel.",
        Some(a) if a.may_provide() => "The worker requested a provision.",
        _ => {
            "Nothing was changed: check the site in the partner portal, and use Create to \
              provision it again if the customer should have it."
        }
    }
}

/// Details and result when a suspend cancelled the plan (the product's setting says so).
pub fn details_suspended(site: &str, nothing_left: bool) -> String {
    let what = if nothing_left {
        format!("No Jetpack plan was left to cancel for {site}")
    } else {
        format!("The Jetpack plan for {site} was cancelled")
    };
    format!(
        "{what} while the service is suspended; it is provisioned again when the service is \
         unsuspended."
    )
}

/// Activity line: a suspend cancelled the plan.
pub fn activity_suspended(target: Target, site: &str) -> String {
    format!(
        "JETPACK MODULE: {target} - suspended: Jetpack plan cancelled for {site}; provisioned \
         again on unsuspend"
    )
}

/// Result and activity line when a suspend keeps the plan (the product's setting).
pub fn suspended_kept(target: Target) -> (String, String) {
    (
        "The service is suspended; its Jetpack plan is kept (the product's setting \"When \
         WHMCS suspends the service\")."
            .to_owned(),
        format!("JETPACK MODULE: {target} - suspended; the Jetpack plan is kept"),
    )
}

/// Result and activity line when an unsuspend finds the plan still there.
pub fn unsuspended_kept(target: Target, plan: &str, site: &str) -> (String, String) {
    (
        format!(
            "The service is unsuspended; {site} still has the Jetpack {plan} plan (no call to \
             the partner was needed)."
        ),
        format!(
            "JETPACK MODULE: {target} - unsuspended; the Jetpack {plan} plan on {site} was kept"
        ),
    )
}

/// Result and activity line when an unsuspend has nothing to restore (the product keeps the
/// plan while suspended).
pub fn unsuspended_nothing(target: Target) -> (String, String) {
    (
        "The service is unsuspended; its Jetpack plan was kept while it was suspended (no call \
         to the partner was needed)."
            .to_owned(),
        format!("JETPACK MODULE: {target} - unsuspended; the Jetpack plan was kept"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remedy carried out by a suspend request (a suspended target's plan came back) is a
    /// cancel, not "nothing was changed".
    #[test]
    fn every_remedy_request_is_told_as_what_it_does() {
        let cancel = "The worker requested a cancel.";
        assert_eq!(drift_done(Some(RequestKind::Terminate), false), cancel);
        assert_eq!(drift_done(Some(RequestKind::Suspend), false), cancel);
        let provision = "The worker requested a provision.";
        assert_eq!(drift_done(Some(RequestKind::Provision), false), provision);
        assert!(drift_done(None, false).starts_with("Nothing was changed"));
    }
}
