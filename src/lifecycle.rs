//! The rules of a job's life, in one place: what a recorded request (Create, Terminate, Retry,
//! from any source) does to a service's jobs, and what happens when a job that had a request
//! waiting behind it finishes. Pure functions over plain values; `store` reads the rows,
//! calls these, and writes what they decide in the same short transaction.
//!
//! The one table of rules (J is the service's unfinished job, at most one):
//!
//! | request   | no unfinished job                  | J not running (queued, waiting on DNS)        | J running                        |
//! |-----------|------------------------------------|-----------------------------------------------|----------------------------------|
//! | provision | new provision                      | same action: due now; else J cancelled, new provision | same action: clear J's next; else J's next = provision |
//! | terminate | new terminate                      | same action: due now; else J cancelled, new terminate | same action: clear J's next; else J's next = terminate |
//! | retry     | latest job failed: requeued; else nothing | due now                                 | nothing (it is running)          |
//!
//! When J finishes with a next action set, the next action is queued; when J would run again
//! (a retry or a DNS wait), J is cancelled and the next action queued at once. So the last
//! request always decides, and a terminate (or a Create after it) is never lost.

use crate::domain::{Action, JobId, JobState};

/// What was asked for (`mod_jetpack_requests.action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// WHMCS Create (checkout, admin, Module Queue Retry, hooks, adoption).
    Provision,
    /// WHMCS Terminate.
    Terminate,
    /// Run the latest failed job again with a fresh attempt budget.
    Retry,
}

impl RequestKind {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Provision => "provision",
            RequestKind::Terminate => "terminate",
            RequestKind::Retry => "retry",
        }
    }

    /// Parses the stored value.
    pub fn parse(s: &str) -> Option<RequestKind> {
        match s {
            "provision" => Some(RequestKind::Provision),
            "terminate" => Some(RequestKind::Terminate),
            "retry" => Some(RequestKind::Retry),
            _ => None,
        }
    }

    /// The job action this request asks for; None for a retry.
    pub fn action(self) -> Option<Action> {
        match self {
            RequestKind::Provision => Some(Action::Provision),
            RequestKind::Terminate => Some(Action::Terminate),
            RequestKind::Retry => None,
        }
    }
}

impl From<Action> for RequestKind {
    fn from(a: Action) -> RequestKind {
        match a {
            Action::Provision => RequestKind::Provision,
            Action::Terminate => RequestKind::Terminate,
        }
    }
}

/// The service's unfinished job, as the rules need to see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// Row id.
    pub id: JobId,
    /// What it does.
    pub action: Action,
    /// Queued, running or waiting on DNS.
    pub state: JobState,
    /// The action to run once it finishes (set while it runs).
    pub next: Option<Action>,
}

/// The service's latest finished job (for a retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latest {
    /// Row id.
    pub id: JobId,
    /// What it did.
    pub action: Action,
    /// Done, failed or cancelled.
    pub state: JobState,
}

/// What applying one request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Queue a new job, due now.
    Insert(Action),
    /// Cancel `cancel` (it is not running) and queue a new job for `then`, due now.
    Supersede {
        /// The job that will not run.
        cancel: JobId,
        /// The new job's action.
        then: Action,
    },
    /// The job already does what was asked: make it due now (a retry delay or DNS re-check).
    DueNow(JobId),
    /// The job is running: set (or clear, with None) the action to run once it finishes.
    SetNext(JobId, Option<Action>),
    /// Put this failed job back to queued, due now, with a fresh attempt budget.
    Requeue(JobId),
    /// Nothing to do; the reason is for the admin.
    Nothing(NothingReason),
}

/// Why a request changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NothingReason {
    /// The same action is running now and nothing else was asked after it.
    AlreadyRunning(JobId),
    /// A retry while the job runs.
    RetryWhileRunning(JobId),
    /// A retry with no failed job to retry.
    NothingToRetry(Option<Latest>),
}

/// The rule for one request, given the service's unfinished job and its latest finished one.
pub fn on_request(
    req: RequestKind,
    unfinished: Option<Unfinished>,
    latest: Option<Latest>,
) -> Decision {
    match (req.action(), unfinished) {
        (None, None) => match latest {
            Some(l) if l.state == JobState::Failed => Decision::Requeue(l.id),
            other => Decision::Nothing(NothingReason::NothingToRetry(other)),
        },
        (None, Some(j)) if j.state == JobState::Running => {
            Decision::Nothing(NothingReason::RetryWhileRunning(j.id))
        }
        (None, Some(j)) => Decision::DueNow(j.id),
        (Some(action), None) => Decision::Insert(action),
        (Some(action), Some(j)) if j.state == JobState::Running => {
            if action == j.action {
                match j.next {
                    Some(_) => Decision::SetNext(j.id, None),
                    None => Decision::Nothing(NothingReason::AlreadyRunning(j.id)),
                }
            } else {
                Decision::SetNext(j.id, Some(action))
            }
        }
        (Some(action), Some(j)) if action == j.action => Decision::DueNow(j.id),
        (Some(action), Some(j)) => Decision::Supersede {
            cancel: j.id,
            then: action,
        },
    }
}

/// What happens to a finishing job that had a next action waiting behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFinish {
    /// Nothing was waiting: write the outcome as it is.
    AsIs,
    /// The job finished (done or failed): queue `next`, due now.
    ThenQueue(Action),
    /// The job would run again (retry, DNS wait): cancel it instead and queue `next` now.
    CancelAndQueue(Action),
}

/// The rule when a job ends an attempt in `state` with `next` waiting.
pub fn on_finish(state: JobState, next: Option<Action>) -> AfterFinish {
    match next {
        None => AfterFinish::AsIs,
        Some(next) if state.is_finished() => AfterFinish::ThenQueue(next),
        Some(next) => AfterFinish::CancelAndQueue(next),
    }
}

/// The admin-facing text of a decision (stored in `mod_jetpack_requests.decision`). `new_job`
/// is the job a decision created, when it created one.
pub fn describe(decision: Decision, new_job: Option<JobId>) -> String {
    let new = new_job.map_or_else(String::new, |id| format!(" job #{id}"));
    match decision {
        Decision::Insert(a) => format!("queued {}{new}", a.as_str()),
        Decision::Supersede { cancel, then } => format!(
            "queued {}{new}; job #{cancel}, which had not started, was cancelled",
            then.as_str()
        ),
        Decision::DueNow(id) => format!("job #{id} already does this; it is due now"),
        Decision::SetNext(id, Some(a)) => {
            format!(
                "job #{id} is running; {} runs as soon as it ends",
                a.as_str()
            )
        }
        Decision::SetNext(id, None) => format!(
            "job #{id} is running and already does this; the request waiting behind it was withdrawn"
        ),
        Decision::Requeue(id) => {
            format!("failed job #{id} queued again with a fresh attempt budget")
        }
        Decision::Nothing(NothingReason::AlreadyRunning(id)) => {
            format!("job #{id} is running and already does this")
        }
        Decision::Nothing(NothingReason::RetryWhileRunning(id)) => {
            format!("nothing to retry: job #{id} is running")
        }
        Decision::Nothing(NothingReason::NothingToRetry(None)) => {
            "nothing to retry: the service has no job".to_owned()
        }
        Decision::Nothing(NothingReason::NothingToRetry(Some(l))) => format!(
            "nothing to retry: the latest job #{} ({}) is {}, not failed",
            l.id,
            l.action.as_str(),
            l.state.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const J: JobId = JobId(7);

    fn job(action: Action, state: JobState, next: Option<Action>) -> Option<Unfinished> {
        Some(Unfinished {
            id: J,
            action,
            state,
            next,
        })
    }

    #[test]
    fn the_table() {
        use Action::{Provision as P, Terminate as T};
        use JobState::{Queued, Running, WaitingDns};
        use RequestKind as R;
        assert_eq!(on_request(R::Provision, None, None), Decision::Insert(P));
        assert_eq!(on_request(R::Terminate, None, None), Decision::Insert(T));
        assert_eq!(
            on_request(R::Provision, job(P, Queued, None), None),
            Decision::DueNow(J)
        );
        assert_eq!(
            on_request(R::Provision, job(P, WaitingDns, None), None),
            Decision::DueNow(J)
        );
        assert_eq!(
            on_request(R::Terminate, job(P, WaitingDns, None), None),
            Decision::Supersede { cancel: J, then: T }
        );
        assert_eq!(
            on_request(R::Provision, job(T, Queued, None), None),
            Decision::Supersede { cancel: J, then: P }
        );
        assert_eq!(
            on_request(R::Terminate, job(P, Running, None), None),
            Decision::SetNext(J, Some(T))
        );
        // Terminate then Create while a provision runs: the Create withdraws the terminate.
        assert_eq!(
            on_request(R::Provision, job(P, Running, Some(T)), None),
            Decision::SetNext(J, None)
        );
        // The mirror: Create then Terminate while a terminate runs.
        assert_eq!(
            on_request(R::Terminate, job(T, Running, Some(P)), None),
            Decision::SetNext(J, None)
        );
        assert_eq!(
            on_request(R::Provision, job(P, Running, None), None),
            Decision::Nothing(NothingReason::AlreadyRunning(J))
        );
        assert_eq!(
            on_request(R::Retry, job(P, Queued, None), None),
            Decision::DueNow(J)
        );
        assert_eq!(
            on_request(R::Retry, job(P, Running, None), None),
            Decision::Nothing(NothingReason::RetryWhileRunning(J))
        );
        let failed = Latest {
            id: JobId(3),
            action: T,
            state: JobState::Failed,
        };
        assert_eq!(
            on_request(R::Retry, None, Some(failed)),
            Decision::Requeue(JobId(3))
        );
        let done = Latest {
            state: JobState::Done,
            ..failed
        };
        assert_eq!(
            on_request(R::Retry, None, Some(done)),
            Decision::Nothing(NothingReason::NothingToRetry(Some(done)))
        );
        // A Create after a failed job starts a fresh one (the Module Queue's Retry).
        assert_eq!(
            on_request(R::Provision, None, Some(failed)),
            Decision::Insert(P)
        );
    }

    #[test]
    fn finishing_with_a_request_behind() {
        use Action::Terminate as T;
        assert_eq!(on_finish(JobState::Done, None), AfterFinish::AsIs);
        assert_eq!(on_finish(JobState::Queued, None), AfterFinish::AsIs);
        assert_eq!(
            on_finish(JobState::Done, Some(T)),
            AfterFinish::ThenQueue(T)
        );
        assert_eq!(
            on_finish(JobState::Failed, Some(T)),
            AfterFinish::ThenQueue(T)
        );
        assert_eq!(
            on_finish(JobState::Queued, Some(T)),
            AfterFinish::CancelAndQueue(T)
        );
        assert_eq!(
            on_finish(JobState::WaitingDns, Some(T)),
            AfterFinish::CancelAndQueue(T)
        );
    }

    /// Latest intent wins over every sequence of up to six requests, whatever state the
    /// running job ends in: a tiny model of the table, walked exhaustively.
    #[test]
    fn the_last_request_decides_every_short_sequence() {
        let kinds = [RequestKind::Provision, RequestKind::Terminate];
        for len in 1..=6u32 {
            for bits in 0..(1u32 << len) {
                let seq: Vec<Action> = (0..len)
                    .map(|i| {
                        kinds[((bits >> i) & 1) as usize]
                            .action()
                            .unwrap_or(Action::Provision)
                    })
                    .collect();
                for finish in [JobState::Done, JobState::Queued, JobState::WaitingDns] {
                    assert_eq!(
                        final_action(&seq, finish),
                        seq.last().copied(),
                        "{seq:?} {finish:?}"
                    );
                }
            }
        }
    }

    /// Applies the first request, starts it running, applies the rest, then lets the running
    /// job end in `finish`; returns the action of the job left to run (or that ran last).
    fn final_action(seq: &[Action], finish: JobState) -> Option<Action> {
        let mut running = Unfinished {
            id: J,
            action: seq[0],
            state: JobState::Running,
            next: None,
        };
        for a in &seq[1..] {
            match on_request((*a).into(), Some(running), None) {
                Decision::SetNext(_, next) => running.next = next,
                Decision::Nothing(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        match on_finish(finish, running.next) {
            AfterFinish::AsIs => Some(running.action),
            AfterFinish::ThenQueue(n) | AfterFinish::CancelAndQueue(n) => Some(n),
        }
    }
}
