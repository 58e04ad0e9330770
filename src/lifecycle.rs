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
//! | change    | new change (nothing after a terminate or suspend) | J provisions: due now; J terminates or suspends: nothing | J provisions: J's next = change; J terminates or suspends (or will): nothing |
//! | suspend   | new suspend                        | same action: due now; else J cancelled, new suspend | same action: clear J's next; else J's next = suspend |
//! | unsuspend | new unsuspend                      | J provisions or unsuspends: due now; else J cancelled, new unsuspend | J provisions or unsuspends: clear J's next; else J's next = unsuspend |
//!
//! What each action does at the partner is its `catalogue` row; here only whether one job
//! already does what a request asks (`covers`: a provision or change covers an unsuspend, not
//! the reverse), and whether the plan is withdrawn (a terminate, a suspend: a change of plan
//! after it waits for a Create or the unsuspend, which read the order then).
//!
//! A change (WHMCS ChangePackage) is a provision of the plan the order names *now*; a queued
//! provision or change reads the order when it runs, so it already does it. It never revives a
//! target whose plan is being (or was) cancelled: the terminate wins. A provision asked while a
//! change runs (or the reverse) counts as the same action.
//!
//! When J finishes with a next action set, the next action is queued; when J would run again
//! (a retry or a DNS wait), J is cancelled and the next action queued at once. So the last
//! request always decides, and a terminate (or a Create after it) is never lost.
//!
//! The job state machine these rules drive is drawn in docs/architecture.md.

use crate::domain::{Action, JobId, JobState};

/// What was asked for (`mod_jetpack_requests.action`): one of the catalogue's actions, or a
/// retry of the latest failed job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// WHMCS Create (checkout, admin, Module Queue Retry, hooks, adoption).
    Provision,
    /// WHMCS Terminate.
    Terminate,
    /// Run the latest failed job again with a fresh attempt budget.
    Retry,
    /// WHMCS ChangePackage: provision the plan the order names now.
    Change,
    /// WHMCS SuspendAccount.
    Suspend,
    /// WHMCS UnsuspendAccount.
    Unsuspend,
    /// An admin records the key of a licence whose issue answer was lost (`detail`): the
    /// target's `unknown` licence becomes that key, and its failed job runs again (it issues
    /// nothing).
    LicenceRecord,
    /// An admin deliberately issues another licence instead of a lost one: the target's
    /// `unknown` licence is abandoned, and its failed job runs again (it issues one).
    LicenceReissue,
}

/// The stored value of a retry request (every other kind is stored as its action's name).
const RETRY: &str = "retry";

impl RequestKind {
    /// Every kind this worker knows (what the request inbox is filtered by).
    pub const ALL: [RequestKind; 8] = [
        RequestKind::Provision,
        RequestKind::Terminate,
        RequestKind::Retry,
        RequestKind::Change,
        RequestKind::Suspend,
        RequestKind::Unsuspend,
        RequestKind::LicenceRecord,
        RequestKind::LicenceReissue,
    ];

    /// The stored value: the action's catalogue name, `retry`, `licence_record` or
    /// `licence_reissue`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::LicenceRecord => "licence_record",
            RequestKind::LicenceReissue => "licence_reissue",
            _ => self.action().map_or(RETRY, Action::as_str),
        }
    }

    /// An admin's decision about a licence whose issue answer was lost (record, reissue):
    /// applied as a retry once the target's `unknown` licence row is changed.
    pub fn decides_licence(self) -> bool {
        matches!(
            self,
            RequestKind::LicenceRecord | RequestKind::LicenceReissue
        )
    }

    /// Parses the stored value.
    pub fn parse(s: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The job action this request asks for; None for a retry.
    pub fn action(self) -> Option<Action> {
        match self {
            RequestKind::Provision => Some(Action::Provision),
            RequestKind::Terminate => Some(Action::Terminate),
            RequestKind::Change => Some(Action::Change),
            RequestKind::Suspend => Some(Action::Suspend),
            RequestKind::Unsuspend => Some(Action::Unsuspend),
            RequestKind::Retry | RequestKind::LicenceRecord | RequestKind::LicenceReissue => None,
        }
    }
}

impl From<Action> for RequestKind {
    fn from(a: Action) -> RequestKind {
        match a {
            Action::Provision => RequestKind::Provision,
            Action::Terminate => RequestKind::Terminate,
            Action::Change => RequestKind::Change,
            Action::Suspend => RequestKind::Suspend,
            Action::Unsuspend => RequestKind::Unsuspend,
        }
    }
}

/// The service's unfinished job, as the rules need to see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// The job.
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
    /// The job.
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
    /// A change of plan while the plan is being cancelled (or after it was): the terminate
    /// wins; the job named is the terminate.
    TerminateWins(JobId),
    /// A change of plan while a provision or change already waits behind the running job
    /// (it reads the order when it runs).
    ChangeAlreadyWaiting(JobId),
    /// A change of plan while the target is (being) suspended: the job named is the suspend;
    /// the unsuspend provides the plan the order names then.
    WaitsForUnsuspend(JobId),
    /// A licence decision (record, reissue) for a target with no `unknown` licence.
    NoLicenceInDoubt,
    /// A recorded licence key that cannot be the lost licence (why).
    LicenceKeyRefused(&'static str),
}

/// Whether a job of action `job` already does what `asked` asks: the same action, or a
/// provision or change (they leave the plan the order names now) for a provision, a change or
/// an unsuspend (which restores at most that plan).
fn covers(job: Action, asked: Action) -> bool {
    job == asked || (job.provisions() && asked.may_provide())
}

/// The rule for one request, given the target's unfinished job and its latest finished one
/// (read for a retry or a change when nothing is unfinished).
pub fn on_request(
    req: RequestKind,
    unfinished: Option<Unfinished>,
    latest: Option<Latest>,
) -> Decision {
    match (req, unfinished) {
        (RequestKind::Retry | RequestKind::LicenceRecord | RequestKind::LicenceReissue, j) => {
            on_retry(j, latest)
        }
        (RequestKind::Change, j) => on_change(j, latest),
        (req, None) => Decision::Insert(req.action().unwrap_or(Action::Provision)),
        (req, Some(j)) => {
            let action = req.action().unwrap_or(Action::Provision);
            on_action(action, j)
        }
    }
}

/// A licence decision (record, reissue): `in_doubt` says whether the store found (and
/// changed) the target's `unknown` licence row; then the failed job runs again as for a retry.
pub fn on_licence_request(
    req: RequestKind,
    in_doubt: bool,
    unfinished: Option<Unfinished>,
    latest: Option<Latest>,
) -> Decision {
    if !in_doubt {
        return Decision::Nothing(NothingReason::NoLicenceInDoubt);
    }
    on_request(req, unfinished, latest)
}

fn on_retry(unfinished: Option<Unfinished>, latest: Option<Latest>) -> Decision {
    match unfinished {
        None => match latest {
            Some(l) if l.state == JobState::Failed => Decision::Requeue(l.id),
            other => Decision::Nothing(NothingReason::NothingToRetry(other)),
        },
        Some(j) if j.state == JobState::Running => {
            Decision::Nothing(NothingReason::RetryWhileRunning(j.id))
        }
        Some(j) => Decision::DueNow(j.id),
    }
}

/// A provision or terminate with an unfinished job.
fn on_action(action: Action, j: Unfinished) -> Decision {
    if j.state != JobState::Running {
        return if covers(j.action, action) {
            Decision::DueNow(j.id)
        } else {
            Decision::Supersede {
                cancel: j.id,
                then: action,
            }
        };
    }
    if !covers(j.action, action) {
        return Decision::SetNext(j.id, Some(action));
    }
    match j.next {
        // A change waiting behind a running provision stays: it reads the order afresh.
        Some(next) if covers(next, action) => {
            Decision::Nothing(NothingReason::AlreadyRunning(j.id))
        }
        Some(_) => Decision::SetNext(j.id, None),
        None => Decision::Nothing(NothingReason::AlreadyRunning(j.id)),
    }
}

fn on_change(unfinished: Option<Unfinished>, latest: Option<Latest>) -> Decision {
    let Some(j) = unfinished else {
        return match latest {
            // The last word on the plan was a terminate or a suspend (done, or failed: a
            // Retry of it is what is pending, not a plan).
            Some(l) if l.action.withdraws() => withdrawn(l.action, l.id),
            _ => Decision::Insert(Action::Change),
        };
    };
    // A provision, change or unsuspend waiting behind the running job reads the order when
    // it runs.
    if j.next.is_some_and(Action::may_provide) {
        return Decision::Nothing(NothingReason::ChangeAlreadyWaiting(j.id));
    }
    if let Some(last) = j.next.filter(|n| n.withdraws()) {
        return withdrawn(last, j.id);
    }
    if j.action.withdraws() {
        return withdrawn(j.action, j.id);
    }
    if j.state != JobState::Running {
        return Decision::DueNow(j.id);
    }
    Decision::SetNext(j.id, Some(Action::Change))
}

/// A change of plan after a terminate (it is ignored: Create first) or a suspend (the
/// unsuspend reads the order then and provides the plan it names).
fn withdrawn(by: Action, job: JobId) -> Decision {
    if by.removes() {
        Decision::Nothing(NothingReason::TerminateWins(job))
    } else {
        Decision::Nothing(NothingReason::WaitsForUnsuspend(job))
    }
}

/// How an attempt ended, as the worker saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptEnd {
    /// Provisioned, cancelled, plan unchanged, nothing left to do.
    Succeeded,
    /// Provisioned as pending (the domain does not resolve), or a waiting plan re-checked.
    WaitsOnDns,
    /// A transient failure: tried again after a backoff.
    Retries,
    /// A permanent failure, bad input, attempts spent, a downgrade refused.
    Failed,
}

/// What happens to a job: the events of its state diagram (docs/architecture.md, checked
/// against [`TRANSITIONS`] by a test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request was applied (Insert, Supersede, a follow-up queued).
    Queued,
    /// A worker claimed it under a lease (a queued job due, or a waiting plan's re-check).
    Claimed,
    /// Its lease expired and another worker claimed it.
    Reclaimed,
    /// An attempt ended.
    Ended(AttemptEnd),
    /// Given back without an attempt counted: a breaker hold, a release at shutdown.
    GivenBack,
    /// Superseded by a newer request before it ran.
    Superseded,
    /// It would run again, and another action waits behind it.
    Overtaken,
    /// An admin's Retry of a failed job (a fresh attempt budget).
    Retried,
}

/// Every transition of a job: (from, event, to); `None` is "no job yet". The store writes the
/// state these give; nothing else moves a job.
pub const TRANSITIONS: [(Option<JobState>, Event, JobState); 14] = {
    use AttemptEnd as E;
    use JobState::{Cancelled, Done, Failed, Queued, Running, WaitingDns};
    [
        (None, Event::Queued, Queued),
        (Some(Queued), Event::Claimed, Running),
        (Some(WaitingDns), Event::Claimed, Running),
        (Some(Running), Event::Reclaimed, Running),
        (Some(Running), Event::Ended(E::Succeeded), Done),
        (Some(Running), Event::Ended(E::WaitsOnDns), WaitingDns),
        (Some(Running), Event::Ended(E::Retries), Queued),
        (Some(Running), Event::Ended(E::Failed), Failed),
        (Some(Running), Event::GivenBack, Queued),
        // A waiting plan given back keeps waiting.
        (Some(Running), Event::GivenBack, WaitingDns),
        (Some(Queued), Event::Superseded, Cancelled),
        (Some(WaitingDns), Event::Superseded, Cancelled),
        (Some(Running), Event::Overtaken, Cancelled),
        (Some(Failed), Event::Retried, Queued),
    ]
};

/// The state a running job's attempt ends in.
pub const fn after_attempt(end: AttemptEnd) -> JobState {
    match end {
        AttemptEnd::Succeeded => JobState::Done,
        AttemptEnd::WaitsOnDns => JobState::WaitingDns,
        AttemptEnd::Retries => JobState::Queued,
        AttemptEnd::Failed => JobState::Failed,
    }
}

/// The state `event` moves a job in state `from` to (None: no such transition); a waiting
/// plan given back keeps waiting (`was_waiting`).
pub fn next_state(from: Option<JobState>, event: Event, was_waiting: bool) -> Option<JobState> {
    let keeps_waiting = event == Event::GivenBack && was_waiting;
    TRANSITIONS
        .iter()
        .filter(|(f, e, _)| *f == from && *e == event)
        .map(|(_, _, to)| *to)
        .find(|to| !keeps_waiting || *to == JobState::WaitingDns)
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
        Decision::Nothing(NothingReason::TerminateWins(id)) => format!(
            "ignored: the plan is cancelled by job #{id}; a change of plan applies only to a plan \
             that stays (Create first to provision it again)"
        ),
        Decision::Nothing(NothingReason::ChangeAlreadyWaiting(id)) => format!(
            "job #{id} is running and a provision that reads the new plan already waits behind it"
        ),
        Decision::Nothing(NothingReason::NoLicenceInDoubt) => {
            "nothing to decide: no licence of this service or addon is waiting for an admin's \
             decision (state unknown)"
                .to_owned()
        }
        Decision::Nothing(NothingReason::LicenceKeyRefused(why)) => {
            format!("the licence key was not recorded: {why}")
        }
        Decision::Nothing(NothingReason::WaitsForUnsuspend(id)) => format!(
            "the service is suspended (job #{id}); the new plan is provisioned when it is \
             unsuspended"
        ),
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
