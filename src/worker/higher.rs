//! A site that already holds a higher plan of the family than the order names: the partner
//! refuses to move a site down, and the higher plan covers the order's. Another live target's
//! higher plan, known with the claim, leaves the site as it is without a call
//! ([`kept_higher`]); a refusal the claim could not foresee (another target's provision on
//! the same site landed first, both in flight) is settled by the status endpoint: this
//! partner's higher plan there covers the order too. Either way the job is done and the
//! ledger records the plan this order names, so a target's outcome does not depend on which
//! of the site's jobs ran first. A refusal that is the target's own move down (a change of
//! plan) says what to do instead; a higher plan that is not this partner's fails the order.

use super::outcome::{Outcome, failed};
use super::process::reply_to;
use super::provide::{current_plan, done, holds};
use super::{Worker, messages, module_log, sites};
use crate::domain::Action;
use crate::drift::family_rank as rank;
use crate::jetpack::{Exchange, Failure};
use crate::order::Order;
use crate::store::{ClaimedJob, Finish};

impl Worker {
    /// A provide the partner refused as a downgrade. Unless the refusal is this target's own
    /// move down (see [`another_may_hold_higher`]), the status is asked: this partner's higher
    /// family plan on the site covers the order (done). Otherwise the refusal stands: a change
    /// of plan says what to do, any other action fails with the partner's words.
    pub(super) async fn refused_lower(
        &self,
        job: &ClaimedJob,
        order: &Order,
        message: String,
        mut log: Vec<Exchange>,
    ) -> Outcome {
        let own = job.ledger.iter().find(|e| e.site == order.site.as_str());
        let own = own.map(|e| e.plan.as_str());
        if another_may_hold_higher(job.action, own, order.plan.as_str())
            && let Some(found) = self.higher_of_ours(order, &mut log).await
        {
            tracing::info!(job_id = %job.id, site = %order.site, found, "a higher plan of ours on the site covers the order");
            return covered(job, order, &found, log).into();
        }
        if job.action == Action::Change {
            return downgrade_refused(job, order, &message, log).into();
        }
        let to = (reply_to(order), Some(holds(order, false)));
        self.after_failure(job, to, Failure::Downgrade { message }, log)
    }

    /// The highest plan of the family above the order's that the status shows on the site
    /// as provisioned by this partner. None: none, or the status call failed.
    async fn higher_of_ours(&self, order: &Order, log: &mut Vec<Exchange>) -> Option<String> {
        let wanted = rank(order.plan.as_str())?;
        let products = self
            .api
            .status(&order.credentials, &order.site, log)
            .await
            .ok()?;
        products
            .iter()
            .filter(|p| p.ours)
            .filter_map(|p| p.plan)
            .filter(|p| rank(p).is_some_and(|r| r > wanted))
            .max_by_key(|p| rank(p))
            .map(str::to_owned)
    }
}

/// Whether a refused downgrade to `wanted` can be another holder's higher plan rather than
/// this target's own (`own`: the plan its ledger holds on the site): the order names a plan of
/// the family, and the target holds no higher one there. A change of plan needs its own plan
/// there (without it, the refusal is taken as its own move down, as before).
fn another_may_hold_higher(action: Action, own: Option<&str>, wanted: &str) -> bool {
    let Some(wanted) = rank(wanted) else {
        return false;
    };
    match own {
        Some(own) => rank(own).is_none_or(|r| r <= wanted),
        None => action != Action::Change,
    }
}

/// An order below the plan another live target holds on the site (read with the claim): the
/// site keeps the higher plan (the partner refuses to move a site down), done without a call,
/// and the ledger records the plan this order now names.
pub(super) fn kept_higher(job: &ClaimedJob, order: &Order) -> Option<Finish> {
    let site = order.site.as_str();
    let holder = sites::higher_held(job.target, (site, order.plan.as_str()), &job.site_holders)?;
    let details = format!(
        "{site} keeps the higher plan {} that {} holds; this order's plan is now {} (no call \
         to the partner was needed).",
        holder.plan, holder.target, order.plan
    );
    Some(kept(job, order, details, Vec::new()))
}

/// A refused order whose site the status shows holding this partner's higher plan `found`.
fn covered(job: &ClaimedJob, order: &Order, found: &str, log: Vec<Exchange>) -> Finish {
    let site = order.site.as_str();
    let details = format!(
        "{site} already holds the higher plan {found} (provisioned by this partner account), \
         which covers {}; the site keeps it, and this order's plan is now {}.",
        order.plan, order.plan
    );
    kept(job, order, details, log)
}

/// Done with the site left as it is: the ledger records the order's plan, the details and
/// the activity say which plan the site keeps (a change of plan leaves the status alone).
fn kept(job: &ClaimedJob, order: &Order, details: String, log: Vec<Exchange>) -> Finish {
    let mut f = done(job, order, details.clone(), log);
    f.ledger = vec![holds(order, false)];
    if job.action == Action::Change {
        f.whmcs.status = None;
    }
    f.whmcs.activity = Some(format!("JETPACK MODULE: {} - {details}", job.target));
    f
}

/// A change to a lower plan, refused by the partner API: the job fails with what to do
/// instead, in the job row, the activity log and the Module Queue; the details field, the
/// status and the ledger stay as they were (the site keeps its plan).
fn downgrade_refused(job: &ClaimedJob, order: &Order, said: &str, log: Vec<Exchange>) -> Finish {
    tracing::info!(job_id = %job.id, target = %job.target, said, "the partner API refused a lower plan");
    let from = current_plan(job, order).unwrap_or_else(|| "current".to_owned());
    let message = messages::downgrade(job.target, &from, &order.plan);
    failed(
        job,
        message,
        None,
        order.client_id,
        module_log::entries(log),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_another_holders_plan_unless_the_target_moves_itself_down() {
        // A first provision (or an unsuspend after a cancel) holds nothing there itself.
        assert!(another_may_hold_higher(Action::Provision, None, "premium"));
        assert!(another_may_hold_higher(Action::Unsuspend, None, "personal"));
        // Up from its own plan, or the same one: the higher plan is someone else's.
        assert!(another_may_hold_higher(
            Action::Change,
            Some("personal"),
            "premium"
        ));
        assert!(another_may_hold_higher(
            Action::Change,
            Some("premium"),
            "premium"
        ));
        // Down from its own plan: its own downgrade (the change says what to do).
        assert!(!another_may_hold_higher(
            Action::Change,
            Some("professional"),
            "premium"
        ));
        assert!(!another_may_hold_higher(
            Action::Provision,
            Some("professional"),
            "premium"
        ));
        // A change with nothing of its own recorded there: taken as its own, as before.
        assert!(!another_may_hold_higher(Action::Change, None, "premium"));
        // Not a plan of the family: no higher plan covers it.
        assert!(!another_may_hold_higher(Action::Provision, None, "free"));
        assert!(!another_may_hold_higher(
            Action::Provision,
            None,
            "jetpack-scan"
        ));
    }
}
