//! One attempt at one claimed job: validate the order read with the claim, check DNS for a
//! waiting plan, call the partner API, and decide the job's next state and what WHMCS shows.
//! Returns a [`Finish`]; writing it (fenced by the lease) is the caller's job. What a failed
//! call becomes is `failure`.

use std::time::Duration;

use super::failure::failed;
use super::{Worker, messages};
use crate::domain::{Action, JobState};
use crate::jetpack::{CancelOutcome, Exchange, ProvisionOutcome};
use crate::order::{BadInput, Order, read_order};
use crate::store::{ClaimedJob, Finish, ModuleQueueWrite, StatusChange, WhmcsWrites};

/// The module-log action name WHMCS uses for `action`.
pub(super) fn module_log_action(action: Action) -> &'static str {
    match action {
        Action::Provision => "createaccount",
        Action::Terminate => "terminateaccount",
    }
}

/// What the attempt tried to do, for messages.
pub(super) fn verb(action: Action) -> &'static str {
    match action {
        Action::Provision => "provision the Jetpack plan",
        Action::Terminate => "cancel the Jetpack plan",
    }
}

impl Worker {
    /// Works out one attempt's outcome from the rows read with the claim and the partner
    /// API's answers. Touches no database; every outcome is a [`Finish`].
    pub(super) async fn attempt(&self, job: &ClaimedJob) -> Finish {
        let Some(service) = &job.service else {
            let message = format!(
                "JETPACK MODULE: Service ID: {} - it does not exist in tblhosting; nothing to do",
                job.service_id
            );
            return failed(job, message, None, 0, Vec::new());
        };
        let order = match read_order(service, &job.fields) {
            Ok(order) => order,
            Err(BadInput {
                message,
                details,
                client_id,
            }) => {
                return failed(job, message, details, client_id, Vec::new());
            }
        };
        let budget = job.max_attempts.unwrap_or(self.settings.retry.max_attempts);
        if job.attempts > budget {
            let reason = "the last attempt was interrupted (the worker stopped or crashed)";
            let message = messages::gave_up(job.service_id, verb(job.action), budget, reason);
            return failed(
                job,
                message,
                Some(order.details),
                order.client_id,
                Vec::new(),
            );
        }
        let mut log = Vec::new();
        match job.action {
            Action::Provision => self.provision(job, &order, &mut log).await,
            Action::Terminate => self.terminate(job, &order, &mut log).await,
        }
    }

    async fn provision(&self, job: &ClaimedJob, order: &Order, log: &mut Vec<Exchange>) -> Finish {
        if let Some(waited) = job.waiting_for {
            let checks = job.dns_checks.saturating_sub(1);
            let Some(next) = self.settings.dns.next_check(checks, waited) else {
                let message = messages::dns_window_ended(job.service_id, &order.site);
                return failed(
                    job,
                    message,
                    Some(order.details),
                    order.client_id,
                    Vec::new(),
                );
            };
            if !self.resolver.resolves(order.site.host()).await {
                tracing::debug!(job_id = %job.id, site = %order.site, "domain still does not resolve; no API call");
                return waiting(next, None, WhmcsWrites::default());
            }
        }
        if job.outcome_unknown {
            match self.api.status(&order.credentials, &order.site, log).await {
                Ok(products) => {
                    if let Some(p) = products
                        .iter()
                        .find(|p| p.ours && p.slug == order.plan.as_str())
                    {
                        tracing::info!(job_id = %job.id, "an earlier provision whose answer was lost took effect");
                        let details =
                            messages::details_found_active(&order.plan, &order.site, p.pending);
                        return self.done(job, order, details, std::mem::take(log));
                    }
                }
                Err(failure) => {
                    return self.after_failure(job, order, failure, std::mem::take(log));
                }
            }
        }
        let result = self
            .api
            .provision(
                &order.credentials,
                &order.plan,
                &order.site,
                &order.local_user,
                log,
            )
            .await;
        let log = std::mem::take(log);
        match result {
            Ok(ProvisionOutcome::Activated { next_url }) => {
                self.done(job, order, messages::details_activated(&next_url), log)
            }
            Ok(ProvisionOutcome::WaitingDns) => {
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
                    activity: first_time.then(|| {
                        messages::activity_waiting(job.service_id, &order.plan, &order.site)
                    }),
                    module_queue: None,
                    module_log: log,
                    module_log_action: module_log_action(job.action),
                };
                waiting(next, Some(false), whmcs)
            }
            Err(failure) => self.after_failure(job, order, failure, log),
        }
    }

    fn done(&self, job: &ClaimedJob, order: &Order, details: String, log: Vec<Exchange>) -> Finish {
        Finish {
            state: JobState::Done,
            run_in: None,
            last_error: None,
            result: Some(details.clone()),
            start_waiting: false,
            outcome_unknown: Some(false),
            whmcs: WhmcsWrites {
                client_id: order.client_id,
                details: Some((order.details, details)),
                status: activate(order),
                activity: Some(messages::activity_provisioned(
                    job.service_id,
                    &order.plan,
                    &order.site,
                )),
                module_queue: job
                    .had_failure
                    .then_some(ModuleQueueWrite::Resolve(Action::Provision)),
                module_log: log,
                module_log_action: module_log_action(job.action),
            },
        }
    }

    async fn terminate(&self, job: &ClaimedJob, order: &Order, log: &mut Vec<Exchange>) -> Finish {
        let result = self
            .api
            .cancel(&order.credentials, &order.site, Some(&order.plan), log)
            .await;
        let log = std::mem::take(log);
        let nothing_left = match result {
            Ok(CancelOutcome::Cancelled) => false,
            Ok(CancelOutcome::NothingToCancel) => true,
            Err(failure) => return self.after_failure(job, order, failure, log),
        };
        let details = if nothing_left {
            messages::details_nothing_to_cancel(&order.site)
        } else {
            messages::details_cancelled(&order.site)
        };
        Finish {
            state: JobState::Done,
            run_in: None,
            last_error: None,
            result: Some(details.clone()),
            start_waiting: false,
            outcome_unknown: None,
            whmcs: WhmcsWrites {
                client_id: order.client_id,
                details: Some((order.details, details)),
                status: Some(StatusChange::Terminate),
                activity: Some(messages::activity_terminated(
                    job.service_id,
                    &order.site,
                    nothing_left,
                )),
                module_queue: job
                    .had_failure
                    .then_some(ModuleQueueWrite::Resolve(Action::Terminate)),
                module_log: log,
                module_log_action: module_log_action(job.action),
            },
        }
    }
}

/// Pending → Active, written only when the service was Pending when the job was claimed. In
/// the usual flow WHMCS has already made it Active after the module's CreateAccount; the write
/// matters for adopted services. (The write itself is conditional on Pending too.)
fn activate(order: &Order) -> Option<StatusChange> {
    order
        .status
        .eq_ignore_ascii_case("Pending")
        .then_some(StatusChange::Activate)
}

/// A plan waiting on DNS: checked again after `next`.
pub(super) fn waiting(next: Duration, outcome_unknown: Option<bool>, whmcs: WhmcsWrites) -> Finish {
    Finish {
        state: JobState::WaitingDns,
        run_in: Some(next),
        last_error: None,
        result: None,
        start_waiting: true,
        outcome_unknown,
        whmcs,
    }
}
