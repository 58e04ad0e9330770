//! What an attempt comes to, and the outcome shapes both `process` (the attempt) and `failure`
//! (what a failed call becomes) build: a failed job, a plan waiting on DNS, and the names WHMCS
//! uses for each action. A leaf of `worker`: it imports neither of them.

use std::time::Duration;

use crate::domain::Action;
use crate::jetpack::Held;
use crate::store::DetailsField;
use crate::store::{ClaimedJob, Finish, ModuleLogEntry, ModuleQueueWrite, WhmcsWrites};

/// What one attempt comes to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Write this (fenced by the lease).
    Write(Box<Finish>),
    /// Stopped before an acting call: the lease could not be confirmed for it. Nothing is
    /// written; the job is left for whoever reclaims it.
    Abandon(String),
    /// No call was made: the account's breaker is open or its rate limit is saturated. The
    /// job goes back to the queue for then, without using an attempt.
    Hold(Held),
}

impl From<Finish> for Outcome {
    fn from(f: Finish) -> Outcome {
        Outcome::Write(Box::new(f))
    }
}

/// Where an attempt's failure is shown: the service's details field and its client.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReplyTo {
    /// The details field (None for a service whose row is gone).
    pub(super) details: Option<DetailsField>,
    /// The WHMCS client, for the activity log.
    pub(super) client_id: u32,
}

/// The module-log action name WHMCS uses for `action`.
pub(super) fn module_log_action(action: Action) -> &'static str {
    action.spec().module_log
}

/// What the attempt tried to do, for messages (a licence target's words for a licence
/// product).
pub(super) fn verb(job: &ClaimedJob) -> &'static str {
    job.action.verb_for(job.api())
}

/// A plan waiting on DNS: checked again after `next`.
pub(super) fn waiting(next: Duration, outcome_unknown: Option<bool>, whmcs: WhmcsWrites) -> Finish {
    let mut f = Finish::waiting_dns(next, whmcs);
    f.outcome_unknown = outcome_unknown;
    f
}

/// A failed job: the message goes to the job row, the details field (when usable), the
/// activity log and WHMCS's Module Queue; a failed provision leaves the service Pending.
pub(super) fn failed(
    job: &ClaimedJob,
    message: String,
    details: Option<DetailsField>,
    client_id: u32,
    log: Vec<ModuleLogEntry>,
) -> Finish {
    let status = job.action.on_failure_for(job.api());
    Finish::failed(
        message.clone(),
        WhmcsWrites {
            client_id,
            details: details.map(|d| (d, message.clone())),
            status,
            activity: Some(message.clone()),
            module_queue: Some(ModuleQueueWrite::Add {
                action: job.action,
                error: message,
            }),
            module_log: log,
            module_log_action: module_log_action(job.action),
        },
    )
}
