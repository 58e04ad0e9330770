//! What a failed attempt becomes: a permanent failure fails the job (job row, details field,
//! activity log, Module Queue; a failed provision goes back to Pending), a transient one is
//! retried with backoff or, once the budget is spent, given up on.

use super::Worker;
use super::outcome::{Outcome, ReplyTo, failed, module_log_action, verb, waiting};
use super::{messages, module_log};
use crate::jetpack::{Exchange, Failure};
use crate::retry::{RetryDecision, RetryPolicy};
use crate::store::{ClaimedJob, Finish, LedgerWrite, WhmcsWrites};

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
        let what = verb(job);
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
                let unknown = (outcome_unknown && job.action.may_provide()).then_some(true);
                // A provision that may have acted unseen is in the ledger too, so a terminate
                // cancels it even if the Site URL changes (cancelling nothing is harmless).
                let ledger = match (unknown, unknown_holds) {
                    (Some(_), Some(entry)) => vec![entry],
                    _ => Vec::new(),
                };
                let mut f = self.after_transient(job, reply, (message, retry_after), unknown, log);
                f.ledger = ledger;
                f.into()
            }
        }
    }

    /// A transient failure: a waiting plan keeps its DNS schedule (the window bounds it);
    /// otherwise the job is retried with backoff, or fails once its attempt budget is spent.
    fn after_transient(
        &self,
        job: &ClaimedJob,
        reply: ReplyTo,
        (message, retry_after): (String, Option<std::time::Duration>),
        unknown: Option<bool>,
        log: Vec<Exchange>,
    ) -> Finish {
        let quiet = WhmcsWrites {
            module_log: module_log::entries(log),
            module_log_action: module_log_action(job.action),
            ..WhmcsWrites::default()
        };
        if let Some(waited) = job.waiting_for {
            let next = self
                .settings
                .dns
                .next_check(job.dns_checks, waited)
                .unwrap_or_default();
            let mut f = waiting(next, unknown, quiet);
            f.last_error = Some(message);
            return f;
        }
        let policy = RetryPolicy {
            max_attempts: job.max_attempts.unwrap_or(self.settings.retry.max_attempts),
            ..self.settings.retry.clone()
        };
        match policy.after_transient(job.attempts, retry_after, fastrand::f64()) {
            RetryDecision::RetryIn(delay) => {
                // An answer lost may still land: the status check waits for it to settle.
                let delay = if unknown == Some(true) {
                    delay.max(self.settings.reconcile.settle)
                } else {
                    delay
                };
                let mut f = Finish::retry_in(delay, message, quiet);
                f.outcome_unknown = unknown;
                f
            }
            RetryDecision::GiveUp => {
                let what = verb(job);
                let text = messages::gave_up(job.target, what, job.attempts, &message);
                let mut f = failed(job, text, reply.details, reply.client_id, quiet.module_log);
                f.outcome_unknown = unknown;
                f
            }
        }
    }
}
