//! Cancelling what a target holds (a terminate; a suspend whose product cancels the plan):
//! every plan the ledger holds (the order's Site URL when it holds none), except a plan another
//! live target on the site still holds; the outcome says what was cancelled and what was kept.

use super::lease::Lease;
use super::outcome::{Outcome, module_log_action};
use super::process::reply_to_cancel;
use super::{Worker, messages, module_log, sites};
use crate::domain::{Action, Plan, SiteUrl, Target};
use crate::jetpack::{CancelOutcome, Exchange};
use crate::order::CancelOrder;
use crate::store::{ClaimedJob, Finish, LedgerWrite, ModuleQueueWrite, WhmcsWrites};

impl Worker {
    /// Cancels every plan the ledger holds for the service (the order's Site URL when the
    /// ledger holds none: services provisioned before the ledger, or by the original module).
    pub(super) async fn terminate(
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
pub(super) fn kept_by<'a>(
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
