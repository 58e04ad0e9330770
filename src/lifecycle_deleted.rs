//! The lifecycle's rules for a deleted service or addon (issue 21): WHMCS's delete is mostly
//! for a service added to the wrong client, so its plan is not cancelled at once. A `deleted`
//! request (the ServiceDelete hook, the deleted-target sweep) queues a terminate due when the
//! deletion grace period ends (the store dates it: the request's time plus
//! `JETPACK_DELETE_GRACE`); meanwhile the queue page offers Cancel now (`cancel_now`: due now)
//! and Keep the plan (`keep_plan`: the terminate is withdrawn, the plan and the ledger stay).
//! Both act only on a terminate still waiting out its grace period, so a stale page never
//! cancels or keeps anything else. Pure, like the rest of `lifecycle`.

use super::{Decision, Latest, NothingReason, RequestKind, Unfinished};
use crate::domain::{Action, JobState};

/// The stored value of a `deleted` request.
pub(super) const DELETED: &str = "deleted";
/// The stored value of a `cancel_now` request.
pub(super) const CANCEL_NOW: &str = "cancel_now";
/// The stored value of a `keep_plan` request.
pub(super) const KEEP_PLAN: &str = "keep_plan";

/// The target was deleted: a terminate after the grace period, unless its unfinished job
/// already cancels the plan (or will, once it ends) or its latest job, a terminate, did (the
/// hook and the sweep may both see one deletion, the second after the cancel). A job that runs
/// is followed by the terminate at once (the follow-up carries no grace period: the deletion
/// met a job in its partner-API calls, which takes seconds).
pub(super) fn on_deleted(unfinished: Option<Unfinished>, latest: Option<Latest>) -> Decision {
    let Some(j) = unfinished else {
        return match latest {
            Some(l) if l.action.removes() && l.state == JobState::Done => {
                Decision::Nothing(NothingReason::AlreadyCancelling(l.id))
            }
            _ => Decision::Deleted { cancel: None },
        };
    };
    if j.action.removes() || j.next.is_some_and(Action::removes) {
        return Decision::Nothing(NothingReason::AlreadyCancelling(j.id));
    }
    if j.state == JobState::Running {
        return Decision::SetNext(j.id, Some(Action::Terminate));
    }
    Decision::Deleted { cancel: Some(j.id) }
}

/// Cancel now or Keep the plan: only a terminate waiting out its grace period is concerned.
pub(super) fn on_choice(req: RequestKind, unfinished: Option<Unfinished>) -> Decision {
    match unfinished {
        Some(j) if j.in_grace && j.action.removes() => {
            if req == RequestKind::KeepPlan {
                Decision::Keep(j.id)
            } else {
                Decision::DueNow(j.id)
            }
        }
        _ => Decision::Nothing(NothingReason::NoGrace),
    }
}

/// The admin-facing text of the decisions above; `new` is " job #N" for a job just queued.
pub(super) fn describe(decision: Decision, new: &str) -> String {
    match decision {
        Decision::Deleted { cancel } => {
            let superseded = cancel.map_or_else(String::new, |id| {
                format!("; job #{id}, which had not started, was cancelled")
            });
            format!(
                "the target was deleted: queued terminate{new}, due when the deletion grace \
                 period ends (Cancel now or Keep the plan on the queue page until then){superseded}"
            )
        }
        Decision::Keep(id) => format!(
            "job #{id} withdrawn: the plan is kept (Keep the plan); it stays at the partner and \
             in the ledger"
        ),
        Decision::Nothing(NothingReason::AlreadyCancelling(id)) => {
            format!("job #{id} already cancels the plan (or cancelled it)")
        }
        Decision::Nothing(NothingReason::RetryInGrace(id)) => format!(
            "nothing to retry: job #{id} waits for the deletion grace period (Cancel now on the \
             queue page runs it at once)"
        ),
        _ => "nothing to do: no terminate of it waits for the deletion grace period (it ran, \
              runs, was kept or was made due already)"
            .to_owned(),
    }
}
