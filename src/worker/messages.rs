//! The words WHMCS shows for each outcome: `jetpack_provisioning_details` texts and
//! `JETPACK MODULE …` activity-log lines. Every line names the service id; customer-entered
//! values are quoted with `order::quote`, never raw.

use crate::domain::{Plan, ServiceId, SiteUrl};

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

/// Details after a successful cancel.
pub fn details_cancelled(site: &str) -> String {
    format!("The Jetpack plan for {site} was cancelled.")
}

/// Details when the API had nothing left to cancel.
pub fn details_nothing_to_cancel(site: &str) -> String {
    format!("No Jetpack plan was left to cancel for {site}; it had likely been cancelled already.")
}

/// Activity line: provisioned.
pub fn activity_provisioned(sid: ServiceId, plan: &Plan, site: &SiteUrl) -> String {
    format!("JETPACK MODULE: Service ID: {sid} - Jetpack {plan} plan provisioned for {site}")
}

/// Activity line: waiting on DNS.
pub fn activity_waiting(sid: ServiceId, plan: &Plan, site: &SiteUrl) -> String {
    format!(
        "JETPACK MODULE: Service ID: {sid} - Jetpack {plan} plan is pending: {site} does not \
         resolve yet; it is re-checked automatically for 14 days"
    )
}

/// Activity line: cancelled (or nothing to cancel).
pub fn activity_terminated(sid: ServiceId, site: &str, nothing_left: bool) -> String {
    if nothing_left {
        format!(
            "JETPACK MODULE: Service ID: {sid} - no Jetpack plan was left to cancel for {site}; \
             service terminated"
        )
    } else {
        format!("JETPACK MODULE: Service ID: {sid} - Jetpack plan cancelled for {site}")
    }
}

/// The failure text for a job (details, job row, Module Queue); the activity line is the same.
pub fn failure(sid: ServiceId, what: &str, reason: &str) -> String {
    format!("JETPACK MODULE: Service ID: {sid} - could not {what}: {reason}")
}

/// Failure after the attempt budget ran out.
pub fn gave_up(sid: ServiceId, what: &str, attempts: u32, reason: &str) -> String {
    format!(
        "JETPACK MODULE: Service ID: {sid} - could not {what} after {attempts} attempts; the last \
         error was: {reason}. Use Retry in Utilities → Module Queue (or `jetpack-worker requeue \
         {sid}`) once the partner API is reachable"
    )
}

/// Failure when the 14-day pending window ended without the domain resolving.
pub fn dns_window_ended(sid: ServiceId, site: &SiteUrl) -> String {
    format!(
        "JETPACK MODULE: Service ID: {sid} - {site} still did not resolve after 14 days, so the \
         pending Jetpack plan expired; fix the domain's DNS, then use Retry in Utilities → Module \
         Queue to provision again"
    )
}

/// Failure when the database refused an attempt's outcome (not an outage): the job is failed
/// with the cause, and nothing is retried against the partner API without an admin's Retry.
pub fn unrecordable(sid: ServiceId, state: &str, cause: &str) -> String {
    format!(
        "JETPACK MODULE: Service ID: {sid} - the outcome of the last attempt ({state}) could not \
         be written to the WHMCS database: {cause}. The job was stopped so the partner API is not \
         called again; fix the cause, check the plan at the partner, then use Retry in \
         Utilities → Module Queue"
    )
}

/// Activity line: the Site URL was edited after the plan was provisioned.
pub fn site_moved(sid: ServiceId, now: &str, cancelled: &[String]) -> String {
    format!(
        "JETPACK MODULE: Service ID: {sid} - the Site URL now reads {}, but the plan was \
         provisioned for {}: the plan cancelled is the one the partner holds for {}",
        crate::order::quote(now),
        cancelled.join(", "),
        cancelled.join(", ")
    )
}
