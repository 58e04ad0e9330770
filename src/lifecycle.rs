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
}

/// The stored value of a retry request (every other kind is stored as its action's name).
const RETRY: &str = "retry";

impl RequestKind {
    /// Every kind this worker knows (what the request inbox is filtered by).
    pub const ALL: [RequestKind; 6] = [
        RequestKind::Provision,
        RequestKind::Terminate,
        RequestKind::Retry,
        RequestKind::Change,
        RequestKind::Suspend,
        RequestKind::Unsuspend,
    ];

    /// The stored value: the action's catalogue name, or `retry`.
    pub fn as_str(self) -> &'static str {
        self.action().map_or(RETRY, Action::as_str)
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
            RequestKind::Retry => None,
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
        (RequestKind::Retry, j) => on_retry(j, latest),
        (RequestKind::Change, j) => on_change(j, latest),
        (req, None) => Decision::Insert(req.action().unwrap_or(Action::Provision)),
        (req, Some(j)) => {
            let action = req.action().unwrap_or(Action::Provision);
            on_action(action, j)
        }
    }
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
        Decision::Nothing(NothingReason::WaitsForUnsuspend(id)) => format!(
            "the service is suspended (job #{id}); the new plan is provisioned when it is \
             unsuspended"
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

    #[test]
    fn changes_of_plan() {
        use Action::{Change as C, Provision as P, Terminate as T};
        use JobState::{Queued, Running, WaitingDns};
        let ch = RequestKind::Change;
        assert_eq!(on_request(ch, None, None), Decision::Insert(C));
        let terminated = Latest {
            id: JobId(3),
            action: T,
            state: JobState::Done,
        };
        assert_eq!(
            on_request(ch, None, Some(terminated)),
            Decision::Nothing(NothingReason::TerminateWins(JobId(3)))
        );
        let failed = Latest {
            state: JobState::Failed,
            ..terminated
        };
        assert_eq!(
            on_request(ch, None, Some(failed)),
            Decision::Nothing(NothingReason::TerminateWins(JobId(3)))
        );
        let failed_provision = Latest {
            action: P,
            ..failed
        };
        assert_eq!(
            on_request(ch, None, Some(failed_provision)),
            Decision::Insert(C)
        );
        assert_eq!(
            on_request(ch, job(P, Queued, None), None),
            Decision::DueNow(J)
        );
        assert_eq!(
            on_request(ch, job(C, WaitingDns, None), None),
            Decision::DueNow(J)
        );
        assert_eq!(
            on_request(ch, job(P, Running, None), None),
            Decision::SetNext(J, Some(C))
        );
        assert_eq!(
            on_request(ch, job(C, Running, None), None),
            Decision::SetNext(J, Some(C))
        );
        assert_eq!(
            on_request(ch, job(P, Running, Some(C)), None),
            Decision::Nothing(NothingReason::ChangeAlreadyWaiting(J))
        );
        assert_eq!(
            on_request(ch, job(T, Queued, None), None),
            Decision::Nothing(NothingReason::TerminateWins(J))
        );
        assert_eq!(
            on_request(ch, job(P, Running, Some(T)), None),
            Decision::Nothing(NothingReason::TerminateWins(J))
        );
        assert_eq!(
            on_request(ch, job(T, Running, Some(P)), None),
            Decision::Nothing(NothingReason::ChangeAlreadyWaiting(J))
        );
        // A terminate during a change of plan, and a Create while a change runs.
        assert_eq!(
            on_request(RequestKind::Terminate, job(C, Queued, None), None),
            Decision::Supersede { cancel: J, then: T }
        );
        assert_eq!(
            on_request(RequestKind::Terminate, job(C, Running, None), None),
            Decision::SetNext(J, Some(T))
        );
        assert_eq!(
            on_request(RequestKind::Provision, job(C, Running, None), None),
            Decision::Nothing(NothingReason::AlreadyRunning(J))
        );
        assert_eq!(
            on_request(RequestKind::Provision, job(P, Running, Some(C)), None),
            Decision::Nothing(NothingReason::AlreadyRunning(J))
        );
    }

    /// Every sequence of up to six Create, Terminate and ChangePackage requests arriving while
    /// the first one runs: the plan ends cancelled exactly when the last Create or Terminate
    /// was a Terminate, and a change of plan asked while the plan stays is carried out by a
    /// job that starts after it (so it reads the new plan).
    #[test]
    fn a_change_of_plan_is_never_lost_and_never_revives() {
        let kinds = [
            RequestKind::Provision,
            RequestKind::Terminate,
            RequestKind::Change,
        ];
        for len in 1..=6u32 {
            for code in 0..3u32.pow(len) {
                let seq: Vec<RequestKind> = (0..len)
                    .map(|i| kinds[((code / 3u32.pow(i)) % 3) as usize])
                    .collect();
                for finish in [JobState::Done, JobState::Queued, JobState::WaitingDns] {
                    check_sequence(&seq, finish);
                }
            }
        }
    }

    fn check_sequence(seq: &[RequestKind], finish: JobState) {
        let first = seq[0].action().unwrap_or(Action::Provision);
        let mut running = Unfinished {
            id: J,
            action: first,
            state: JobState::Running,
            next: None,
        };
        let mut cancelled = first == Action::Terminate;
        let mut fresh_needed = false;
        for r in &seq[1..] {
            // A Terminate drops the change it overtook; a Create after it keeps the plan
            // the running job provisions (its rule since round two's lifecycle).
            match r {
                RequestKind::Provision => cancelled = false,
                RequestKind::Terminate => (cancelled, fresh_needed) = (true, false),
                _ => fresh_needed |= !cancelled,
            }
            match on_request(*r, Some(running), None) {
                Decision::SetNext(_, next) => running.next = next,
                Decision::Nothing(_) => {}
                other => panic!("{seq:?}: unexpected {other:?}"),
            }
        }
        let (last, started_after) = match on_finish(finish, running.next) {
            AfterFinish::AsIs => (running.action, false),
            AfterFinish::ThenQueue(n) | AfterFinish::CancelAndQueue(n) => (n, true),
        };
        assert_eq!(last == Action::Terminate, cancelled, "{seq:?} {finish:?}");
        if fresh_needed {
            assert!(
                started_after,
                "{seq:?} {finish:?}: the change was not carried out"
            );
        }
    }

    /// Every sequence of up to five Create, Terminate, Suspend and Unsuspend requests arriving
    /// while the first runs, whatever state it ends in: what is left to run (or ran last) does
    /// what the last request asked (a provision does what an unsuspend asks).
    #[test]
    fn the_last_request_decides_across_a_suspension() {
        use Action::{Provision as P, Suspend as S, Terminate as T, Unsuspend as U};
        let class = |a: Action| if a.may_provide() { P } else { a };
        let kinds = [P, T, S, U];
        for len in 1..=5u32 {
            for code in 0..4u32.pow(len) {
                let seq: Vec<Action> = (0..len)
                    .map(|i| kinds[((code / 4u32.pow(i)) % 4) as usize])
                    .collect();
                for finish in [JobState::Done, JobState::Queued, JobState::WaitingDns] {
                    let left = final_action(&seq, finish).map(class);
                    assert_eq!(left, seq.last().copied().map(class), "{seq:?} {finish:?}");
                }
            }
        }
        // Not running: an unsuspend never supersedes a provision or change, a Create does
        // supersede an unsuspend (which alone would not provision a kept plan's target).
        assert_eq!(
            on_request(RequestKind::Unsuspend, job(P, JobState::Queued, None), None),
            Decision::DueNow(J)
        );
        assert_eq!(
            on_request(RequestKind::Provision, job(U, JobState::Queued, None), None),
            Decision::Supersede { cancel: J, then: P }
        );
        // A change of plan while suspended waits for the unsuspend.
        let suspended = Latest {
            id: JobId(3),
            action: S,
            state: JobState::Done,
        };
        assert_eq!(
            on_request(RequestKind::Change, None, Some(suspended)),
            Decision::Nothing(NothingReason::WaitsForUnsuspend(JobId(3)))
        );
        assert_eq!(
            on_request(RequestKind::Change, job(S, JobState::Queued, None), None),
            Decision::Nothing(NothingReason::WaitsForUnsuspend(J))
        );
        assert_eq!(
            on_request(
                RequestKind::Change,
                job(P, JobState::Running, Some(S)),
                None
            ),
            Decision::Nothing(NothingReason::WaitsForUnsuspend(J))
        );
        assert_eq!(
            on_request(
                RequestKind::Change,
                job(S, JobState::Running, Some(U)),
                None
            ),
            Decision::Nothing(NothingReason::ChangeAlreadyWaiting(J))
        );
    }

    /// The state diagram in docs/architecture.md draws exactly [`TRANSITIONS`], and its ends
    /// are the finished states.
    #[test]
    fn the_documented_state_diagram_is_the_transitions() {
        let doc = include_str!("../docs/architecture.md");
        let block = doc.split("stateDiagram-v2").nth(1).unwrap();
        let block = block.split("```").next().unwrap();
        let state = |s: &str| match s.trim() {
            "[*]" => None,
            s => Some(JobState::parse(s).unwrap_or_else(|| panic!("no state {s:?}"))),
        };
        let (mut drawn, mut ends) = (Vec::new(), Vec::new());
        for line in block.lines().filter(|l| l.contains("-->")) {
            let edge = line.split(':').next().unwrap();
            let (from, to) = edge.split_once("-->").unwrap();
            match state(to) {
                Some(to) => drawn.push((state(from), to)),
                None => ends.push(state(from).unwrap()),
            }
        }
        let mut want: Vec<(Option<JobState>, JobState)> =
            TRANSITIONS.iter().map(|(f, _, t)| (*f, *t)).collect();
        let key = |e: &(Option<JobState>, JobState)| (e.0.map(JobState::as_str), e.1.as_str());
        for list in [&mut drawn, &mut want] {
            list.sort_by_key(key);
            list.dedup();
        }
        assert_eq!(drawn, want, "docs/architecture.md's state diagram");
        let finished: Vec<JobState> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(ends, finished);
        // Every event names one state to go to (a waiting plan given back keeps waiting).
        let running = Some(JobState::Running);
        assert_eq!(
            next_state(running, Event::GivenBack, true),
            Some(JobState::WaitingDns)
        );
        assert_eq!(
            next_state(running, Event::GivenBack, false),
            Some(JobState::Queued)
        );
        assert_eq!(
            next_state(running, Event::Overtaken, false),
            Some(JobState::Cancelled)
        );
        assert_eq!(
            next_state(Some(JobState::Done), Event::Claimed, false),
            None
        );
        for end in [
            AttemptEnd::Succeeded,
            AttemptEnd::WaitsOnDns,
            AttemptEnd::Retries,
            AttemptEnd::Failed,
        ] {
            assert_eq!(
                next_state(running, Event::Ended(end), false),
                Some(after_attempt(end))
            );
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
