//! The lifecycle's rules walked: the table, every short sequence of requests, the state
//! diagram against the transitions.

use super::*;

const J: JobId = JobId(7);

fn job(action: Action, state: JobState, next: Option<Action>) -> Option<Unfinished> {
    Some(Unfinished {
        id: J,
        action,
        state,
        next,
        in_grace: false,
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
        in_grace: false,
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
        in_grace: false,
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

/// A deleted target's terminate, queued and waiting out its grace period.
fn in_grace() -> Option<Unfinished> {
    Some(Unfinished {
        in_grace: true,
        ..job(Action::Terminate, JobState::Queued, None)?
    })
}

#[test]
fn a_deletion_waits_out_its_grace_period_unless_the_plan_is_already_being_cancelled() {
    use Action::{Provision as P, Suspend as S, Terminate as T};
    use JobState::{Queued, Running, WaitingDns};
    use RequestKind as R;
    assert_eq!(
        on_request(R::Deleted, None, None),
        Decision::Deleted { cancel: None }
    );
    assert_eq!(
        on_request(R::Deleted, job(P, WaitingDns, None), None),
        Decision::Deleted { cancel: Some(J) }
    );
    assert_eq!(
        on_request(R::Deleted, job(S, Queued, None), None),
        Decision::Deleted { cancel: Some(J) }
    );
    // Already cancelling: the hook and the sweep may both see one deletion.
    for j in [
        in_grace(),
        job(T, Queued, None),
        job(T, Running, None),
        job(P, Running, Some(T)),
    ] {
        assert_eq!(
            on_request(R::Deleted, j, None),
            Decision::Nothing(NothingReason::AlreadyCancelling(J)),
            "{j:?}"
        );
    }
    // After a terminate that cancelled it (the hook's and the sweep's requests for one
    // deletion), nothing; after a failed one, a new terminate.
    let cancelled = Latest {
        id: JobId(3),
        action: T,
        state: JobState::Done,
    };
    assert_eq!(
        on_request(R::Deleted, None, Some(cancelled)),
        Decision::Nothing(NothingReason::AlreadyCancelling(JobId(3)))
    );
    let failed = Latest {
        state: JobState::Failed,
        ..cancelled
    };
    assert_eq!(
        on_request(R::Deleted, None, Some(failed)),
        Decision::Deleted { cancel: None }
    );
    // A job in its calls: the terminate follows it.
    assert_eq!(
        on_request(R::Deleted, job(P, Running, None), None),
        Decision::SetNext(J, Some(T))
    );
}

#[test]
fn cancel_now_and_keep_the_plan_act_only_on_a_terminate_in_its_grace_period() {
    use Action::{Provision as P, Terminate as T};
    use JobState::{Queued, Running};
    use RequestKind as R;
    assert_eq!(
        on_request(R::CancelNow, in_grace(), None),
        Decision::DueNow(J)
    );
    assert_eq!(on_request(R::KeepPlan, in_grace(), None), Decision::Keep(J));
    for kind in [R::CancelNow, R::KeepPlan] {
        for j in [
            None,
            job(T, Queued, None),
            job(T, Running, None),
            job(P, Queued, None),
        ] {
            assert_eq!(
                on_request(kind, j, None),
                Decision::Nothing(NothingReason::NoGrace),
                "{kind:?} {j:?}"
            );
        }
    }
    // A retry does not hurry the grace period; an admin's Terminate does (Cancel now's effect).
    assert_eq!(
        on_request(R::Retry, in_grace(), None),
        Decision::Nothing(NothingReason::RetryInGrace(J))
    );
    assert_eq!(
        on_request(R::Terminate, in_grace(), None),
        Decision::DueNow(J)
    );
    // A Create supersedes it, as any queued terminate.
    assert_eq!(
        on_request(R::Provision, in_grace(), None),
        Decision::Supersede { cancel: J, then: P }
    );
}

#[test]
fn the_request_kinds_are_stored_in_sixteen_characters_and_parse_back() {
    for k in RequestKind::ALL {
        assert!(k.as_str().len() <= 16, "{k:?}");
        assert_eq!(RequestKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(RequestKind::Deleted.as_str(), "deleted");
    assert_eq!(RequestKind::CancelNow.as_str(), "cancel_now");
    assert_eq!(RequestKind::KeepPlan.as_str(), "keep_plan");
    assert!(
        describe(Decision::Deleted { cancel: None }, Some(JobId(9))).contains("terminate job #9")
    );
}
