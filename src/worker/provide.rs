//! Providing the plan the order names on its site (a provision, a change of plan, an
//! unsuspend that restores): an addon leaves the sites it moved from, a waiting plan passes
//! the DNS gate, a lost answer is settled by the status endpoint first (`status_first`), and
//! the outcome says what the site has now.

use super::cancel::kept_by;
use super::lease::Lease;
use super::outcome::{Outcome, failed, module_log_action, waiting};
use super::process::reply_to;
use super::{Worker, messages, module_log, sites};
use crate::domain::{Action, JobState, Plan, SiteUrl};
use crate::jetpack::{Exchange, Failure, ProvisionOutcome};
use crate::order::Order;
use crate::store::{ClaimedJob, Finish, LedgerWrite, ModuleQueueWrite, StatusChange, WhmcsWrites};

impl Worker {
    /// A provision (or change of plan). An addon whose ledger holds other sites (it moved to
    /// another service, or its Site URL was edited) first leaves them: each is cancelled (unless
    /// another live target still holds it), then the new site is provisioned, and the details
    /// and activity say so.
    pub(super) async fn provision(
        &self,
        job: &ClaimedJob,
        order: &Order,
        log: &mut Vec<Exchange>,
        lease: &Lease<'_>,
    ) -> Outcome {
        let left = sites::left_sites(job, order.site.as_str());
        if left.is_empty() {
            return self.provision_here(job, order, log, lease).await;
        }
        let (writes, notes) = match self.leave_sites(job, order, &left, log, lease).await {
            Ok(done) => done,
            Err(out) => return out,
        };
        let mut out = self.provision_here(job, order, log, lease).await;
        if let Outcome::Write(f) = &mut out {
            f.ledger.splice(0..0, writes);
            if f.state() != JobState::Failed {
                note_left(f, &notes);
            }
        }
        out
    }

    /// Cancels the plans an addon's ledger holds on sites it has left (`left`: site, plan);
    /// a plan another live target holds stays. The ledger changes and what to say, or the
    /// outcome of a failed cancel.
    async fn leave_sites(
        &self,
        job: &ClaimedJob,
        order: &Order,
        left: &[(String, String)],
        log: &mut Vec<Exchange>,
        lease: &Lease<'_>,
    ) -> Result<(Vec<LedgerWrite>, Vec<String>), Outcome> {
        let _permit = self.api.admit(&order.credentials).map_err(Outcome::Hold)?;
        let (mut writes, mut notes) = (Vec::new(), Vec::new());
        for (site, plan) in left {
            let forget = LedgerWrite::Cancelled { site: site.clone() };
            let Ok(url) = SiteUrl::parse(site) else {
                continue;
            };
            let plan = Plan::parse(plan);
            if let Some(holder) = kept_by(job, &url, plan.as_ref()) {
                notes.push(sites::kept_note(site, holder));
                writes.push(forget);
                continue;
            }
            let cancel = (&url, plan.as_ref());
            if let Err(failure) = self
                .api
                .cancel(&order.credentials, cancel, log, lease)
                .await
            {
                let to = (reply_to(order), None);
                let mut out = self.after_failure(job, to, failure, std::mem::take(log));
                if let Outcome::Write(f) = &mut out {
                    f.ledger = writes;
                }
                return Err(out);
            }
            notes.push(format!("The Jetpack plan on {site} was cancelled"));
            writes.push(forget);
        }
        Ok((writes, notes))
    }

    /// A provision (or change of plan) on the order's site: DNS gate for a waiting plan, the
    /// status endpoint first when an earlier call may have acted unseen, then the provision
    /// call.
    async fn provision_here(
        &self,
        job: &ClaimedJob,
        order: &Order,
        log: &mut Vec<Exchange>,
        lease: &Lease<'_>,
    ) -> Outcome {
        if let Some(gated) = self.dns_gate(job, order).await {
            return gated;
        }
        let _permit = match self.api.admit(&order.credentials) {
            Ok(permit) => permit,
            Err(held) => return Outcome::Hold(held),
        };
        if job.outcome_unknown
            && let Some(known) = self.status_first(job, order, log).await
        {
            return known;
        }
        let result = self
            .api
            .provision(
                &order.credentials,
                (&order.plan, &order.site, &order.local_user),
                log,
                lease,
            )
            .await;
        let log = std::mem::take(log);
        match result {
            Ok(ProvisionOutcome::Activated { next_url }) => {
                let mut f = self.activated(job, order, &next_url, log);
                f.ledger = vec![holds(order, false)];
                f.into()
            }
            Ok(ProvisionOutcome::WaitingDns) => self.pending_on_dns(job, order, log).into(),
            Err(Failure::Downgrade { message }) => {
                self.refused_lower(job, order, message, log).await
            }
            Err(failure) => {
                let unknown = Some(holds(order, false));
                self.after_failure(job, (reply_to(order), unknown), failure, log)
            }
        }
    }

    /// For a plan waiting on DNS: the window's end fails the job; a domain that still does not
    /// resolve waits again without an API call. None: go on and call.
    async fn dns_gate(&self, job: &ClaimedJob, order: &Order) -> Option<Outcome> {
        let waited = job.waiting_for?;
        let checks = job.dns_checks.saturating_sub(1);
        let Some(next) = self.settings.dns.next_check(checks, waited) else {
            let message = messages::dns_window_ended(job.target, &order.site);
            let details = Some(order.details);
            return Some(failed(job, message, details, order.client_id, Vec::new()).into());
        };
        if self.resolver.resolves(order.site.host()).await {
            return None;
        }
        tracing::debug!(job_id = %job.id, site = %order.site, "domain still does not resolve; no API call");
        // The waiting text again: a Create asked meanwhile wrote "queued" over it.
        let whmcs = WhmcsWrites {
            client_id: order.client_id,
            details: Some((order.details, messages::details_waiting(&order.site))),
            module_log_action: module_log_action(job.action),
            ..WhmcsWrites::default()
        };
        Some(waiting(next, None, whmcs).into())
    }

    /// Done with the activation link; a change of plan says which plan the site now has.
    fn activated(
        &self,
        job: &ClaimedJob,
        order: &Order,
        next_url: &str,
        log: Vec<Exchange>,
    ) -> Finish {
        let Some(from) = current_plan(job, order) else {
            return done(job, order, messages::details_activated(next_url), log);
        };
        let details = messages::details_changed(&from, &order.plan, &order.site, next_url);
        let mut f = done(job, order, details, log);
        let line = messages::activity_changed(job.target, &from, &order.plan, &order.site);
        f.whmcs.activity = Some(line);
        f
    }

    /// Provisioned as a pending plan: re-checked on the DNS schedule.
    fn pending_on_dns(&self, job: &ClaimedJob, order: &Order, log: Vec<Exchange>) -> Finish {
        let waited = job.waiting_for.unwrap_or_default();
        let next = self
            .settings
            .dns
            .next_check(job.dns_checks, waited)
            .unwrap_or(self.settings.dns.first);
        let first_time = job.waiting_for.is_none();
        let whmcs = WhmcsWrites {
            client_id: order.client_id,
            details: Some((order.details, messages::details_waiting(&order.site))),
            status: activate(order),
            activity: first_time
                .then(|| messages::activity_waiting(job.target, &order.plan, &order.site)),
            module_queue: None,
            module_log: module_log::entries(log),
            module_log_action: module_log_action(job.action),
        };
        let mut f = waiting(next, Some(false), whmcs);
        f.ledger = vec![holds(order, true)];
        f
    }
}

/// Done: the details, the status (Pending → Active), the activity line; a success resolves
/// the target's Module Queue entry.
pub(super) fn done(job: &ClaimedJob, order: &Order, details: String, log: Vec<Exchange>) -> Finish {
    let whmcs = WhmcsWrites {
        client_id: order.client_id,
        details: Some((order.details, details.clone())),
        status: activate(order),
        activity: Some(messages::activity_provisioned(
            job.target,
            &order.plan,
            &order.site,
        )),
        module_queue: job
            .had_failure
            .then_some(ModuleQueueWrite::Resolve(job.action)),
        module_log: module_log::entries(log),
        module_log_action: module_log_action(job.action),
    };
    let mut f = Finish::done(details, whmcs);
    f.outcome_unknown = Some(false);
    f
}

/// The plan the ledger holds for the order's site before a change of plan (None for a
/// provision, or when the ledger holds none for the site).
pub(super) fn current_plan(job: &ClaimedJob, order: &Order) -> Option<String> {
    if job.action != Action::Change {
        return None;
    }
    job.ledger
        .iter()
        .find(|e| e.site == order.site.as_str())
        .map(|e| e.plan.clone())
}

/// A change of plan (or an unsuspend) to the plan the site already has (and not waiting on
/// DNS): done without an API call.
pub(super) fn unchanged(job: &ClaimedJob, order: &Order) -> Option<Finish> {
    let held = job
        .ledger
        .iter()
        .find(|e| e.site == order.site.as_str() && !e.pending)?;
    let reads_what_it_holds = job.action.spec().reads_ledger && job.action.may_provide();
    if !reads_what_it_holds || held.plan != order.plan.as_str() || job.outcome_unknown {
        return None;
    }
    if job.action == Action::Unsuspend {
        // The client keeps the activation link the details field shows.
        let (result, line) = messages::unsuspended_kept(job.target, &held.plan, &held.site);
        let mut f = done(job, order, result, Vec::new());
        (f.whmcs.details, f.whmcs.status, f.whmcs.activity) = (None, None, Some(line));
        return Some(f);
    }
    let details = messages::details_same_plan(&order.plan, &order.site);
    let mut f = done(job, order, details, Vec::new());
    (f.whmcs.status, f.whmcs.activity) = (None, None);
    Some(f)
}

/// A provision that left other sites: the details, the result and the activity line say
/// what became of the plans there.
fn note_left(f: &mut Finish, notes: &[String]) {
    let said = format!("{}.", notes.join("; "));
    if let Some(result) = &mut f.result {
        *result = format!("{result} {said}");
    }
    if let Some((_, text)) = &mut f.whmcs.details {
        *text = format!("{text} {said}");
    }
    if let Some(line) = &mut f.whmcs.activity {
        *line = format!("{line}. {said}");
    }
}

/// The ledger entry a provision of `order` leaves.
pub(super) fn holds(order: &Order, pending: bool) -> LedgerWrite {
    LedgerWrite::Holds {
        site: order.site.as_str().to_owned(),
        plan: order.plan.as_str().to_owned(),
        pending,
    }
}

/// Pending → Active, written only when the service was Pending when the job was claimed. In
/// the usual flow WHMCS has already made it Active after the module's CreateAccount; the write
/// matters for adopted services, and for a Create asked while a terminate ran: the terminate's
/// end wrote Terminated over the Active WHMCS set for the Create, and the provision that follows
/// makes it Active again. (The write itself is conditional on those states too.)
fn activate(order: &Order) -> Option<StatusChange> {
    ["Pending", "Terminated"]
        .iter()
        .any(|s| order.status.eq_ignore_ascii_case(s))
        .then_some(StatusChange::Activate)
}
