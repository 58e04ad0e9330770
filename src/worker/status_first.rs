//! An earlier provision may have acted unseen (its answer was lost): the status endpoint is
//! asked first, its answer read in every spelling, and an answer naming a product of ours the
//! worker cannot map is never a reason to provision blindly.

use super::outcome::{Outcome, failed};
use super::process::reply_to;
use super::provide::{done, holds};
use super::{Worker, messages, module_log};
use crate::domain::Plan;
use crate::jetpack::{Exchange, SiteProduct};
use crate::order::Order;
use crate::store::ClaimedJob;

impl Worker {
    /// An earlier call may have acted unseen: asks the status endpoint. Some when that settles
    /// the attempt (the plan is there, or the status call failed); None: provision.
    pub(super) async fn status_first(
        &self,
        job: &ClaimedJob,
        order: &Order,
        log: &mut Vec<Exchange>,
    ) -> Option<Outcome> {
        match self.api.status(&order.credentials, &order.site, log).await {
            Ok(products) => match seen(&products, &order.plan) {
                Seen::Nothing => None,
                Seen::Plan(p) => {
                    tracing::info!(job_id = %job.id, slug = %p.slug, "an earlier provision whose answer was lost took effect");
                    let details =
                        messages::details_found_active(&order.plan, &order.site, p.pending);
                    let mut f = done(job, order, details, std::mem::take(log));
                    f.ledger = vec![holds(order, p.pending)];
                    Some(f.into())
                }
                Seen::Unmapped(slugs) => {
                    tracing::warn!(job_id = %job.id, site = %order.site, ?slugs, "the status shows a product of ours the worker cannot name; not provisioning blindly");
                    let message =
                        messages::status_unreadable(job.target, &order.site, &order.plan, &slugs);
                    let to = reply_to(order);
                    let mut f = failed(
                        job,
                        message,
                        to.details,
                        to.client_id,
                        module_log::entries(std::mem::take(log)),
                    );
                    // An admin's Retry is the answer: it provisions without asking again.
                    f.outcome_unknown = Some(false);
                    Some(f.into())
                }
            },
            Err(failure) => {
                let unknown = Some(holds(order, false));
                let to = (reply_to(order), unknown);
                Some(self.after_failure(job, to, failure, std::mem::take(log)))
            }
        }
    }
}

/// What a status answer says about a plan whose provision may have acted unseen.
#[derive(Debug, PartialEq, Eq)]
enum Seen<'a> {
    /// A product of ours that is this plan, in whatever spelling.
    Plan(&'a SiteProduct),
    /// Products of ours whose slugs name no plan we know (and none that is this plan): never
    /// a reason to provision blindly.
    Unmapped(Vec<&'a str>),
    /// Nothing of ours that is, or might be, this plan.
    Nothing,
}

/// Reads the site's products for `plan`: ours and this plan, ours and unnamed, or nothing.
fn seen<'a>(products: &'a [SiteProduct], plan: &Plan) -> Seen<'a> {
    let ours = || products.iter().filter(|p| p.ours);
    if let Some(p) = ours().find(|p| p.plan == Some(plan.as_str())) {
        return Seen::Plan(p);
    }
    let unmapped: Vec<&str> = ours()
        .filter(|p| p.plan.is_none())
        .map(|p| p.slug.as_str())
        .collect();
    if unmapped.is_empty() {
        Seen::Nothing
    } else {
        Seen::Unmapped(unmapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(slug: &str, ours: bool) -> SiteProduct {
        SiteProduct {
            slug: slug.to_owned(),
            plan: crate::jetpack::plan_of_slug(slug),
            ours,
            pending: false,
        }
    }

    #[test]
    fn status_is_read_in_every_spelling_and_never_blindly() {
        let premium = Plan::parse("premium").unwrap();
        for slug in [
            "premium",
            "jetpack_premium",
            "jetpack-premium",
            "jetpack_premium_monthly",
        ] {
            let products = [product(slug, true)];
            assert_eq!(
                seen(&products, &premium),
                Seen::Plan(&products[0]),
                "{slug}"
            );
        }
        // Someone else's premium is not ours; a plan of ours that is another one is not this.
        assert_eq!(
            seen(&[product("jetpack_premium", false)], &premium),
            Seen::Nothing
        );
        assert_eq!(
            seen(&[product("jetpack_personal", true)], &premium),
            Seen::Nothing
        );
        assert_eq!(seen(&[], &premium), Seen::Nothing);
        // Ours but unnamed: ask, do not provision.
        let products = [
            product("jetpack_personal", true),
            product("jetpack_security_t1", true),
        ];
        assert_eq!(
            seen(&products, &premium),
            Seen::Unmapped(vec!["jetpack_security_t1"])
        );
        // Unnamed beside the plan itself: the plan is there.
        let products = [
            product("jetpack_security_t1", true),
            product("jetpack_premium_yearly", true),
        ];
        assert_eq!(seen(&products, &premium), Seen::Plan(&products[1]));
        // Business is what WordPress.com calls Professional.
        let professional = Plan::parse("professional").unwrap();
        let products = [product("jetpack_business", true)];
        assert_eq!(seen(&products, &professional), Seen::Plan(&products[0]));
    }
}
