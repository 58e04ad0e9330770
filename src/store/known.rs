//! What this binary knows, as bind lists for the statements that must leave the rest alone:
//! a request of a kind (or from a requester) it cannot parse, or a job of an action it cannot parse, was written by
//! a newer worker (a rolling upgrade) and is left untouched for one that can read it. The
//! claim only leases jobs of a known action; the request inbox applies only requests of a
//! known kind whose target has no earlier unknown request and whose latest job is one it
//! knows (order matters per target).

use sqlx::{MySql, QueryBuilder};

use crate::domain::{Action, RequestedBy};
use crate::lifecycle::RequestKind;

/// The stored spelling of every job action this binary knows.
pub(super) fn actions() -> Vec<&'static str> {
    Action::names_where(|_| true)
}

/// The stored spelling of every request kind this binary knows.
pub(super) fn kinds() -> Vec<&'static str> {
    RequestKind::ALL.iter().map(|k| k.as_str()).collect()
}

/// The stored spelling of every requester this binary knows.
pub(super) fn requesters() -> Vec<&'static str> {
    RequestedBy::ALL.iter().map(|b| b.as_str()).collect()
}

/// Pushes the condition that request `alias` was written by a newer worker: a kind or a
/// requester this binary does not know.
pub(super) fn push_unknown(q: &mut QueryBuilder<MySql>, alias: &str) {
    q.push(format_args!("({alias}action NOT IN "));
    push_list(q, &kinds());
    q.push(format_args!(" OR {alias}requested_by NOT IN "));
    push_list(q, &requesters());
    q.push(")");
}

/// Pushes `(?, ?, …)` with one bind per value.
pub(super) fn push_list(q: &mut QueryBuilder<MySql>, values: &[&'static str]) {
    q.push("(");
    let mut list = q.separated(", ");
    for v in values {
        list.push_bind(*v);
    }
    list.push_unseparated(")");
}

/// Pushes the condition under which the pending request `r` may be applied by this binary:
/// its kind is known, no earlier pending request of its target is of an unknown kind, and
/// its target's latest job (the unfinished one, if any) has a known action and follow-up.
pub(super) fn push_applicable(q: &mut QueryBuilder<MySql>) {
    q.push("NOT ");
    push_unknown(q, "r.");
    q.push(
        " AND NOT EXISTS (SELECT 1 FROM mod_jetpack_requests u
             WHERE u.service_id = r.service_id AND u.addon_id = r.addon_id
               AND (u.created_at, u.id) < (r.created_at, r.id)
               AND u.applied_at IS NULL AND ",
    );
    push_unknown(q, "u.");
    q.push(
        ") AND NOT EXISTS (SELECT 1 FROM mod_jetpack_jobs j
             WHERE j.id = (SELECT MAX(k.id) FROM mod_jetpack_jobs k
                           WHERE k.service_id = r.service_id AND k.addon_id = r.addon_id)
               AND (j.action NOT IN ",
    );
    push_list(q, &actions());
    q.push(" OR j.follow_up NOT IN ");
    push_list(q, &actions());
    q.push("))");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_hold_every_variant_as_stored() {
        assert_eq!(
            actions(),
            ["provision", "terminate", "change", "suspend", "unsuspend"]
        );
        assert_eq!(
            kinds(),
            [
                "provision",
                "terminate",
                "retry",
                "change",
                "suspend",
                "unsuspend",
                "licence_record",
                "licence_reissue"
            ]
        );
        for k in kinds() {
            assert!(RequestKind::parse(k).is_some());
        }
        for a in actions() {
            assert!(Action::parse(a).is_some());
        }
        assert!(requesters().contains(&"reconcile"));
        for b in requesters() {
            assert!(RequestedBy::parse(b).is_some());
        }
    }
}
