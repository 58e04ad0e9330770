//! One attempt at one claimed job: the order read with the claim checked as the action's
//! catalogue row says, then what its effect calls for: provide the order's plan (`provide`),
//! cancel what the target holds (`cancel`), or what the product's suspend setting asks.
//! Returns an [`Outcome`]: a [`Finish`] to write (fenced by the lease; the caller's job), or
//! the attempt stopped before an acting call because its lease could not be confirmed. What
//! a failed call becomes is `failure`.

use super::higher::kept_higher;
use super::lease::Lease;
use super::outcome::{Outcome, ReplyTo, failed, module_log_action, verb};
use super::provide::unchanged;
use super::{Worker, messages};
use crate::catalogue::{Api, Effect};
use crate::domain::Action;
use crate::jetpack::Exchange;
use crate::order::{
    BadInput, CancelOrder, OnSuspend, Order, read_cancel_held, read_gone_cancel, read_order_held,
};
use crate::store::{ClaimedJob, Finish, ModuleQueueWrite, ServiceRow, WhmcsWrites};

pub(super) fn reply_to(order: &Order) -> ReplyTo {
    ReplyTo {
        details: Some(order.details),
        client_id: order.client_id,
    }
}

pub(super) fn reply_to_cancel(order: &CancelOrder) -> ReplyTo {
    ReplyTo {
        details: order.details,
        client_id: order.client_id,
    }
}

/// An order an admin has to fix: the job fails with what to fix.
pub(super) fn refused(job: &ClaimedJob, bad: BadInput) -> Outcome {
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
        if job.api() == Api::Licence {
            return self.licence_attempt(job, lease).await;
        }
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
        match read_order_held(service, &job.fields, &held_sites(job)) {
            Ok(order) => {
                let out = match self.over_budget(job, reply_to(&order)) {
                    Some(out) => out,
                    None => match unchanged(job, &order).or_else(|| kept_higher(job, &order)) {
                        Some(done) => done.into(),
                        None => self.provision(job, &order, log, lease).await,
                    },
                };
                noting_ledger_site(out, order.site_from_ledger.then_some(order.site.as_str()))
            }
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
        match read_cancel_held(service, &job.fields, &held_sites(job)) {
            Ok(order) => {
                let out = match self.over_budget(job, reply_to_cancel(&order)) {
                    Some(out) => out,
                    None => self.terminate(job, &order, log, lease).await,
                };
                noting_ledger_site(out, order.site_from_ledger.then_some(order.site.as_str()))
            }
            Err(bad) => refused(job, bad),
        }
    }

    /// A job claimed again after its last attempt was cut short, with no attempt left: it
    /// fails without calling the API again.
    pub(super) fn over_budget(&self, job: &ClaimedJob, to: ReplyTo) -> Option<Outcome> {
        let budget = job.max_attempts.unwrap_or(self.settings.retry.max_attempts);
        if job.attempts <= budget {
            return None;
        }
        let reason = "the last attempt was interrupted (the worker stopped or crashed)";
        let message = messages::gave_up(job.target, verb(job), budget, reason);
        Some(failed(job, message, to.details, to.client_id, Vec::new()).into())
    }
}

/// The sites the ledger holds for the target, for an action whose claim reads the ledger
/// (change, terminate, suspend, unsuspend; catalogue `reads_ledger`): what its order falls
/// back to when the Site URL field is empty after a product move. None for a provision: its
/// order names the site.
fn held_sites(job: &ClaimedJob) -> Vec<&str> {
    if !job.action.spec().reads_ledger {
        return Vec::new();
    }
    job.ledger.iter().map(|e| e.site.as_str()).collect()
}

/// The outcome's activity line, followed by why the site is the ledger's (`site`: the order's
/// Site URL field was empty), when it is.
fn noting_ledger_site(mut out: Outcome, site: Option<&str>) -> Outcome {
    if let (Outcome::Write(f), Some(site)) = (&mut out, site)
        && let Some(line) = &mut f.whmcs.activity
    {
        line.push_str(&messages::site_from_ledger(site));
    }
    out
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
