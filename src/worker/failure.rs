//! What a failed attempt becomes: a permanent failure fails the job (job row, details field,
//! activity log, Module Queue; a failed provision goes back to Pending), a transient one is
//! retried with backoff or, once the budget is spent, given up on.

use super::Worker;
use super::process::{Outcome, ReplyTo, module_log_action, verb, waiting};
use super::{messages, module_log};
use crate::domain::{Action, JobState};
use crate::jetpack::{Exchange, Failure};
use crate::retry::{RetryDecision, RetryPolicy};
use crate::store::{
    ClaimedJob, Finish, LedgerWrite, ModuleLogEntry, ModuleQueueWrite, StatusChange, WhmcsWrites,
};

impl Worker {
    /// What a failed call becomes: a permanent failure (or a refused token) fails the job; a
    /// transient one retries with backoff, keeps a waiting plan on its DNS schedule, or gives
    /// up once the attempt budget is spent; a call the lease did not permit abandons the
    /// attempt.
    ///
    /// `to` says where a failure is shown, and what the ledger must hold when a provision may
    /// have acted unseen.
    pub(super) fn after_failure(
        &self,
        job: &ClaimedJob,
        to: (ReplyTo, Option<LedgerWrite>),
        failure: Failure,
        log: Vec<Exchange>,
    ) -> Outcome {
        let (reply, unknown_holds) = to;
        let what = verb(job.action);
        match failure {
            Failure::Stopped { message } => Outcome::Abandon(message),
            Failure::Permanent { message }
            | Failure::TokenRefused { message }
            | Failure::Downgrade { message } => {
                let text = messages::failure(job.target, what, &message);
                failed(
                    job,
                    text,
                    reply.details,
                    reply.client_id,
                    module_log::entries(log),
                )
                .into()
            }
            Failure::Transient {
                message,
                retry_after,
                outcome_unknown,
            } => {
                let unknown = (outcome_unknown && job.action.provisions()).then_some(true);
                // A provision that may have acted unseen is in the ledger too, so a terminate
                // cancels it even if the Site URL changes (cancelling nothing is harmless).
                let ledger = match (unknown, unknown_holds) {
                    (Some(_), Some(entry)) => vec![entry],
                    _ => Vec::new(),
                };
                let quiet = WhmcsWrites {
                    module_log: module_log::entries(log),
                    module_log_action: module_log_action(job.action),
                    ..WhmcsWrites::default()
                };
                if let Some(waited) = job.waiting_for {
                    // A waiting plan keeps its own schedule; the window bounds it.
                    let next = self
                        .settings
                        .dns
                        .next_check(job.dns_checks, waited)
                        .unwrap_or_default();
                    let mut f = waiting(next, unknown, quiet);
                    f.last_error = Some(message);
                    f.ledger = ledger;
                    return f.into();
                }
                let policy = RetryPolicy {
                    max_attempts: job.max_attempts.unwrap_or(self.settings.retry.max_attempts),
                    ..self.settings.retry.clone()
                };
                match policy.after_transient(job.attempts, retry_after, fastrand::f64()) {
                    RetryDecision::RetryIn(delay) => Finish {
                        state: JobState::Queued,
                        run_in: Some(delay),
                        last_error: Some(message),
                        result: None,
                        start_waiting: false,
                        outcome_unknown: unknown,
                        ledger,
                        whmcs: quiet,
                    }
                    .into(),
                    RetryDecision::GiveUp => {
                        let text = messages::gave_up(job.target, what, job.attempts, &message);
                        let mut f =
                            failed(job, text, reply.details, reply.client_id, quiet.module_log);
                        f.outcome_unknown = unknown;
                        f.ledger = ledger;
                        f.into()
                    }
                }
            }
        }
    }
}

/// A failed job: the message goes to the job row, the details field (when usable), the
/// activity log and WHMCS's Module Queue; a failed provision leaves the service Pending.
pub(super) fn failed(
    job: &ClaimedJob,
    message: String,
    details: Option<crate::store::DetailsField>,
    client_id: u32,
    log: Vec<ModuleLogEntry>,
) -> Finish {
    let status = (job.action == Action::Provision).then_some(StatusChange::BackToPending);
    Finish {
        state: JobState::Failed,
        run_in: None,
        last_error: Some(message.clone()),
        result: None,
        start_waiting: false,
        outcome_unknown: None,
        ledger: Vec::new(),
        whmcs: WhmcsWrites {
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
    }
}
