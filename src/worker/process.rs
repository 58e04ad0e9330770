//! One attempt at one claimed job: validate the order read with the claim, check DNS for a
//! waiting plan, call the partner API, and decide the job's next state and what WHMCS shows.
//! Returns an [`Outcome`]: a [`Finish`] to write (fenced by the lease; the caller's job), or
//! the attempt stopped before an acting call because its lease could not be confirmed. What
//! a failed call becomes is `failure`. A terminate cancels what the ledger holds.

use super::lease::Lease;
use super::outcome::{Outcome, ReplyTo, failed, module_log_action, verb, waiting};
use super::{Worker, messages, module_log, sites};
use crate::catalogue::Effect;
use crate::domain::{Action, JobState, Plan, SiteUrl, Target};
use crate::jetpack::{CancelOutcome, Exchange, Failure, ProvisionOutcome, SiteProduct};
use crate::order::{
    BadInput, CancelOrder, OnSuspend, Order, read_cancel, read_gone_cancel, read_order,
};
use crate::store::{
    ClaimedJob, Finish, LedgerWrite, ModuleQueueWrite, ServiceRow, StatusChange, WhmcsWrites,
};

fn reply_to(order: &Order) -> ReplyTo {
    ReplyTo {
        details: Some(order.details),
        client_id: order.client_id,
    }
}

fn reply_to_cancel(order: &CancelOrder) -> ReplyTo {
    ReplyTo {
        details: order.details,
        client_id: order.client_id,
    }
}

/// An order an admin has to fix: the job fails with what to fix.
fn refused(job: &ClaimedJob, bad: BadInput) -> Outcome {
    let BadInput {
        message,
        details,
        client_id,
    } = bad;
    failed(job, message, details, client_id, Vec::new()).into()
}

impl Worker {
    /// Works out one attempt's outcome from the rows read with the claim and the partner
    /// API's answers. Touches no database except through `lease` (the gate of every acting
    /// call).
    pub(super) async fn attempt(&self, job: &ClaimedJob, lease: &Lease<'_>) -> Outcome {
        let Some(service) = &job.service else {
            if let Some(order) = gone_cancel(job) {
                return match self.over_budget(job, reply_to_cancel(&order)) {
                    Some(out) => out,
                    None => self.terminate(job, &order, &mut Vec::new(), lease).await,
                };
            }
            if job.action.removes() && job.ledger.is_empty() {
                return nothing_left_to_cancel(job).into();
            }
            return failed(
                job,
                messages::target_missing(job.target),
                None,
                0,
                Vec::new(),
            )
            .into();
        };
        let mut log = Vec::new();
        match job.action.spec().effect {
            Effect::Provides => self.provide(job, service, &mut log, lease).await,
            Effect::Removes => self.cancel(job, service, &mut log, lease).await,
            Effect::RemovesBySetting => match OnSuspend::of(service) {
                OnSuspend::CancelPlan => self.cancel(job, service, &mut log, lease).await,
                OnSuspend::KeepPlan => kept_on_suspend(job, service).into(),
            },
            Effect::RestoresBySetting => {
                // Nothing a suspend could have cancelled: the plan was kept (the setting),
                // and the ledger holds no plan to bring up to the order's.
                if job.ledger.is_empty() && OnSuspend::of(service) == OnSuspend::KeepPlan {
                    return kept_on_suspend(job, service).into();
                }
                self.provide(job, service, &mut log, lease).await
            }
        }
    }

    /// Leaves the plan the order names on its site (provision, change, unsuspend).
    async fn provide(
        &self,
        job: &ClaimedJob,
        service: &ServiceRow,
        log: &mut Vec<Exchange>,
        lease: &Lease<'_>,
    ) -> Outcome {
        match read_order(service, &job.fields) {
            Ok(order) => match self.over_budget(job, reply_to(&order)) {
                Some(out) => out,
                None => match unchanged(job, &order).or_else(|| kept_higher(job, &order)) {
                    Some(done) => done.into(),
                    None => self.provision(job, &order, log, lease).await,
                },
            },
            Err(bad) => refused(job, bad),
        }
    }

    /// Cancels what the target holds (terminate; a suspend whose setting cancels).
    async fn cancel(
        &self,
        job: &ClaimedJob,
        service: &ServiceRow,
        log: &mut Vec<Exchange>,
        lease: &Lease<'_>,
    ) -> Outcome {
        match read_cancel(service, &job.fields) {
            Ok(order) => match self.over_budget(job, reply_to_cancel(&order)) {
                Some(out) => out,
                None => self.terminate(job, &order, log, lease).await,
            },
            Err(bad) => refused(job, bad),
        }
    }

    /// A job claimed again after its last attempt was cut short, with no attempt left: it
    /// fails without calling the API again.
    fn over_budget(&self, job: &ClaimedJob, to: ReplyTo) -> Option<Outcome> {
        let budget = job.max_attempts.unwrap_or(self.settings.retry.max_attempts);
        if job.attempts <= budget {
            return None;
        }
        let reason = "the last attempt was interrupted (the worker stopped or crashed)";
        let message = messages::gave_up(job.target, verb(job.action), budget, reason);
        Some(failed(job, message, to.details, to.client_id, Vec::new()).into())
    }

    /// A provision (or change of plan). An addon whose ledger holds other sites (it moved to
    /// another service, or its Site URL was edited) first leaves them: each is cancelled (unless
    /// another live target still holds it), then the new site is provisioned, and the details
    /// and activity say so.
    async fn provision(
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
            Err(Failure::Downgrade { message }) if job.action == Action::Change => {
                downgrade_refused(job, order, &message, log).into()
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

    /// An earlier call may have acted unseen: asks the status endpoint. Some when that settles
    /// the attempt (the plan is there, or the status call failed); None: provision.
    async fn status_first(
        &self,
        job: &ClaimedJob,
        order: &Order,
        log: &mut Vec<Exchange>,
    ) -> Option<Outcome> {
        match self.api.status(&order.credentials, &order.site, log).await {
            Ok(products) => match seen(&products, &order.plan) {
                Seen::Nothing => None,
                Seen::Plan(p) => {
                    tracing::info!(job_id = %job.id, slug = %p.slug, "an earlier provision whose answer was lost took effect");
                    let details =
                        messages::details_found_active(&order.plan, &order.site, p.pending);
                    let mut f = done(job, order, details, std::mem::take(log));
                    f.ledger = vec![holds(order, p.pending)];
                    Some(f.into())
                }
                Seen::Unmapped(slugs) => {
                    tracing::warn!(job_id = %job.id, site = %order.site, ?slugs, "the status shows a product of ours the worker cannot name; not provisioning blindly");
                    let message =
                        messages::status_unreadable(job.target, &order.site, &order.plan, &slugs);
                    let to = reply_to(order);
                    let mut f = failed(
                        job,
                        message,
                        to.details,
                        to.client_id,
                        module_log::entries(std::mem::take(log)),
                    );
                    // An admin's Retry is the answer: it provisions without asking again.
                    f.outcome_unknown = Some(false);
                    Some(f.into())
                }
            },
            Err(failure) => {
                let unknown = Some(holds(order, false));
                let to = (reply_to(order), unknown);
                Some(self.after_failure(job, to, failure, std::mem::take(log)))
            }
        }
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

    /// Cancels every plan the ledger holds for the service (the order's Site URL when the
    /// ledger holds none: services provisioned before the ledger, or by the original module).
    async fn terminate(
        &self,
        job: &ClaimedJob,
        order: &CancelOrder,
        log: &mut Vec<Exchange>,
        lease: &Lease<'_>,
    ) -> Outcome {
        let _permit = match self.api.admit(&order.credentials) {
            Ok(permit) => permit,
            Err(held) => return Outcome::Hold(held),
        };
        let targets = cancel_targets(job, order);
        let mut ledger = Vec::new();
        let mut cancelled_any = false;
        let (mut kept, mut cancelled) = (Vec::new(), Vec::new());
        for (site, plan) in &targets {
            if let Some(holder) = kept_by(job, site, plan.as_ref()) {
                // Another live target still holds it: the plan stays, this target's row goes.
                kept.push(sites::kept_note(site.as_str(), holder));
                ledger.push(LedgerWrite::Cancelled {
                    site: site.as_str().to_owned(),
                });
                continue;
            }
            cancelled.push((site.clone(), plan.clone()));
            let result = self
                .api
                .cancel(&order.credentials, (site, plan.as_ref()), log, lease)
                .await;
            match result {
                Ok(outcome) => {
                    cancelled_any |= outcome == CancelOutcome::Cancelled;
                    ledger.push(LedgerWrite::Cancelled {
                        site: site.as_str().to_owned(),
                    });
                }
                Err(failure) => {
                    let to = (reply_to_cancel(order), None);
                    let mut out = self.after_failure(job, to, failure, std::mem::take(log));
                    if let Outcome::Write(f) = &mut out {
                        f.ledger = ledger;
                    }
                    return out;
                }
            }
        }
        let shown = if cancelled.is_empty() {
            &targets
        } else {
            &cancelled
        };
        let mut f = terminated(
            job,
            order,
            shown,
            (ledger, cancelled_any),
            std::mem::take(log),
        );
        if !kept.is_empty() {
            note_kept(&mut f, job.target, &kept, !cancelled.is_empty());
        }
        f.into()
    }
}

/// What a status answer says about a plan whose provision may have acted unseen.
#[derive(Debug, PartialEq, Eq)]
enum Seen<'a> {
    /// A product of ours that is this plan, in whatever spelling.
    Plan(&'a SiteProduct),
    /// Products of ours whose slugs name no plan we know (and none that is this plan): never
    /// a reason to provision blindly.
    Unmapped(Vec<&'a str>),
    /// Nothing of ours that is, or might be, this plan.
    Nothing,
}

/// Reads the site's products for `plan`: ours and this plan, ours and unnamed, or nothing.
fn seen<'a>(products: &'a [SiteProduct], plan: &Plan) -> Seen<'a> {
    let ours = || products.iter().filter(|p| p.ours);
    if let Some(p) = ours().find(|p| p.plan == Some(plan.as_str())) {
        return Seen::Plan(p);
    }
    let unmapped: Vec<&str> = ours()
        .filter(|p| p.plan.is_none())
        .map(|p| p.slug.as_str())
        .collect();
    if unmapped.is_empty() {
        Seen::Nothing
    } else {
        Seen::Unmapped(unmapped)
    }
}

/// A terminate that cancelled every target: done, the service (addon) Terminated, the details
/// and activity say what was cancelled (and that the Site URL was edited since, if it was).
fn terminated(
    job: &ClaimedJob,
    order: &CancelOrder,
    targets: &[(SiteUrl, Option<Plan>)],
    (ledger, cancelled_any): (Vec<LedgerWrite>, bool),
    log: Vec<Exchange>,
) -> Finish {
    let sites: Vec<String> = targets.iter().map(|(s, _)| s.as_str().to_owned()).collect();
    let moved = !job.ledger.is_empty() && !sites.iter().any(|s| s == order.site.as_str());
    let shown = sites.join(", ");
    let suspended = job.action == Action::Suspend;
    let details = match (suspended, cancelled_any) {
        (true, _) => messages::details_suspended(&shown, !cancelled_any),
        (false, true) => messages::details_cancelled(&shown),
        (false, false) => messages::details_nothing_to_cancel(&shown),
    };
    let mut activity = if suspended {
        messages::activity_suspended(job.target, &shown)
    } else {
        messages::activity_terminated(job.target, &shown, !cancelled_any)
    };
    if moved {
        let note = messages::site_moved(job.target, order.site.as_str(), &sites);
        activity = format!("{activity}. {note}");
    }
    let whmcs = WhmcsWrites {
        client_id: order.client_id,
        details: order.details.map(|field| (field, details.clone())),
        status: job.action.spec().on_success.filter(|_| !order.service_gone),
        activity: Some(activity),
        module_queue: job
            .had_failure
            .then_some(ModuleQueueWrite::Resolve(job.action)),
        module_log: module_log::entries(log),
        module_log_action: module_log_action(job.action),
    };
    let mut f = Finish::done(details, whmcs);
    f.ledger = ledger;
    f
}

/// Done: the details, the status (Pending → Active), the activity line; a success resolves
/// the target's Module Queue entry.
fn done(job: &ClaimedJob, order: &Order, details: String, log: Vec<Exchange>) -> Finish {
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
fn current_plan(job: &ClaimedJob, order: &Order) -> Option<String> {
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
fn unchanged(job: &ClaimedJob, order: &Order) -> Option<Finish> {
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

/// A change to a lower plan, refused by the partner API: the job fails with what to do
/// instead, in the job row, the activity log and the Module Queue; the details field, the
/// status and the ledger stay as they were (the site keeps its plan).
fn downgrade_refused(job: &ClaimedJob, order: &Order, said: &str, log: Vec<Exchange>) -> Finish {
    tracing::info!(job_id = %job.id, target = %job.target, said, "the partner API refused a lower plan");
    let from = current_plan(job, order).unwrap_or_else(|| "current".to_owned());
    let message = messages::downgrade(job.target, &from, &order.plan);
    failed(
        job,
        message,
        None,
        order.client_id,
        module_log::entries(log),
    )
}

/// A suspend whose product keeps the plan (or an unsuspend with nothing a suspend could have
/// cancelled): done without a call; the details field keeps the activation link.
fn kept_on_suspend(job: &ClaimedJob, service: &ServiceRow) -> Finish {
    let (result, line) = if job.action == Action::Suspend {
        messages::suspended_kept(job.target)
    } else {
        messages::unsuspended_nothing(job.target)
    };
    let whmcs = WhmcsWrites {
        client_id: service.client_id,
        activity: Some(line),
        module_queue: job
            .had_failure
            .then_some(ModuleQueueWrite::Resolve(job.action)),
        module_log_action: module_log_action(job.action),
        ..WhmcsWrites::default()
    };
    Finish::done(result, whmcs)
}

/// A terminate of a deleted service whose plan is no longer in the ledger (cancelled by an
/// earlier terminate: the hook and the scan may both have asked): done, nothing to write back.
fn nothing_left_to_cancel(job: &ClaimedJob) -> Finish {
    let result = format!(
        "{} was deleted and no Jetpack plan of it is left to cancel.",
        job.target
    );
    let whmcs = WhmcsWrites {
        module_log_action: module_log_action(job.action),
        ..WhmcsWrites::default()
    };
    Finish::done(result, whmcs)
}

/// The terminate of a service deleted from tblhosting, when its ledger holds a plan and names
/// a product with credentials (see hooks.php ServiceDelete).
fn gone_cancel(job: &ClaimedJob) -> Option<CancelOrder> {
    if !job.action.removes() {
        return None;
    }
    let held = job.ledger.first()?;
    read_gone_cancel(job.target, job.gone_product.as_ref()?, &held.site)
}

/// What a terminate cancels: each site the ledger holds, with its plan, or the order's own
/// site and plan when the ledger holds nothing.
fn cancel_targets(job: &ClaimedJob, order: &CancelOrder) -> Vec<(SiteUrl, Option<Plan>)> {
    let held: Vec<(SiteUrl, Option<Plan>)> = job
        .ledger
        .iter()
        .filter_map(|e| Some((SiteUrl::parse(&e.site).ok()?, Plan::parse(&e.plan))))
        .collect();
    if held.is_empty() {
        vec![(order.site.clone(), order.plan.clone())]
    } else {
        held
    }
}

/// Another live target on `site` that keeps `plan` when this job gives it up (a plan the
/// ledger cannot name is cancelled as before).
fn kept_by<'a>(
    job: &'a ClaimedJob,
    site: &SiteUrl,
    plan: Option<&Plan>,
) -> Option<&'a crate::store::SiteHolder> {
    let plan = plan?.as_str();
    sites::kept_by(job.target, (site.as_str(), plan), &job.site_holders)
}

/// The terminate's details and activity say which plans were left in place and who holds
/// them (`also_cancelled`: the plan of some other site was cancelled).
fn note_kept(f: &mut Finish, target: Target, kept: &[String], also_cancelled: bool) {
    let kept = kept.join("; ");
    let (details, activity) = if also_cancelled {
        let said = f.result.as_deref().unwrap_or_default();
        let line = f.whmcs.activity.as_deref().unwrap_or_default();
        (format!("{said} It {kept}."), format!("{line}; {kept}"))
    } else {
        let line = format!("JETPACK MODULE: {target} - terminated; {kept}");
        (format!("Terminated; it {kept}."), line)
    };
    f.result = Some(details.clone());
    if let Some((_, text)) = &mut f.whmcs.details {
        *text = details;
    }
    f.whmcs.activity = Some(activity);
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

/// A change of plan down to a plan below the one another live target holds on the site: the
/// site keeps the higher plan (the partner refuses to move a site down), done without a
/// call, and the ledger records the plan this order now names.
fn kept_higher(job: &ClaimedJob, order: &Order) -> Option<Finish> {
    if job.action != Action::Change {
        return None;
    }
    let site = order.site.as_str();
    let holder = sites::higher_held(job.target, (site, order.plan.as_str()), &job.site_holders)?;
    let details = format!(
        "{site} keeps the higher plan {} that {} holds; this order's plan is now {} (no call \
         to the partner was needed).",
        holder.plan, holder.target, order.plan
    );
    let mut f = done(job, order, details.clone(), Vec::new());
    f.ledger = vec![holds(order, false)];
    f.whmcs.status = None;
    f.whmcs.activity = Some(format!("JETPACK MODULE: {} - {details}", job.target));
    Some(f)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn product(slug: &str, ours: bool) -> SiteProduct {
        SiteProduct {
            slug: slug.to_owned(),
            plan: crate::jetpack::plan_of_slug(slug),
            ours,
            pending: false,
        }
    }

    #[test]
    fn status_is_read_in_every_spelling_and_never_blindly() {
        let premium = Plan::parse("premium").unwrap();
        for slug in [
            "premium",
            "jetpack_premium",
            "jetpack-premium",
            "jetpack_premium_monthly",
        ] {
            let products = [product(slug, true)];
            assert_eq!(
                seen(&products, &premium),
                Seen::Plan(&products[0]),
                "{slug}"
            );
        }
        // Someone else's premium is not ours; a plan of ours that is another one is not this.
        assert_eq!(
            seen(&[product("jetpack_premium", false)], &premium),
            Seen::Nothing
        );
        assert_eq!(
            seen(&[product("jetpack_personal", true)], &premium),
            Seen::Nothing
        );
        assert_eq!(seen(&[], &premium), Seen::Nothing);
        // Ours but unnamed: ask, do not provision.
        let products = [
            product("jetpack_personal", true),
            product("jetpack_security_t1", true),
        ];
        assert_eq!(
            seen(&products, &premium),
            Seen::Unmapped(vec!["jetpack_security_t1"])
        );
        // Unnamed beside the plan itself: the plan is there.
        let products = [
            product("jetpack_security_t1", true),
            product("jetpack_premium_yearly", true),
        ];
        assert_eq!(seen(&products, &premium), Seen::Plan(&products[1]));
        // Business is what WordPress.com calls Professional.
        let professional = Plan::parse("professional").unwrap();
        let products = [product("jetpack_business", true)];
        assert_eq!(seen(&products, &professional), Seen::Plan(&products[0]));
    }
}
