//! Site-level safety: the partner cancels per site, while WHMCS sells per service or addon.
//! Pure decisions over the other targets holding plans on a site (read with the claim): a
//! terminate leaves a plan another live target still holds, a change of plan down leaves the
//! higher plan another target holds, and an addon whose site changed leaves its old site.

use crate::domain::Target;
use crate::drift::family_rank as rank;
use crate::store::{ClaimedJob, SiteHolder};

/// Whether `holder` is `target` itself (an addon is one target whatever service it is on).
fn same_target(holder: Target, target: Target) -> bool {
    match (holder, target) {
        (Target::Addon { addon: a, .. }, Target::Addon { addon: b, .. }) => a == b,
        (Target::Service(a), Target::Service(b)) => a == b,
        _ => false,
    }
}

/// The live other targets on `site`.
fn others<'a>(target: Target, site: &str, holders: &'a [SiteHolder]) -> Vec<&'a SiteHolder> {
    holders
        .iter()
        .filter(|h| h.live && h.site == site && !same_target(h.target, target))
        .collect()
}

/// Who keeps `plan` on `site` when `target` gives it up: another live target holding the same
/// slug, or (for a family plan) any family plan. None: cancel it.
pub(super) fn kept_by<'a>(
    target: Target,
    (site, plan): (&str, &str),
    holders: &'a [SiteHolder],
) -> Option<&'a SiteHolder> {
    let mut found = others(target, site, holders);
    found.retain(|h| h.plan == plan || (rank(plan).is_some() && rank(&h.plan).is_some()));
    found.sort_by_key(|h| (h.plan != plan, std::cmp::Reverse(rank(&h.plan))));
    found.first().copied()
}

/// The highest family plan another live target holds on `site`, when it is above `plan`
/// (a change down to `plan` then leaves the site as it is).
pub(super) fn higher_held<'a>(
    target: Target,
    (site, plan): (&str, &str),
    holders: &'a [SiteHolder],
) -> Option<&'a SiteHolder> {
    let wanted = rank(plan)?;
    others(target, site, holders)
        .into_iter()
        .filter(|h| rank(&h.plan).is_some_and(|r| r > wanted))
        .max_by_key(|h| rank(&h.plan))
}

/// The sites an addon's ledger holds other than `site` (where its plan is now): an addon
/// moved to another service (or whose Site URL was edited) leaves them. Services keep theirs.
pub(super) fn left_sites(job: &ClaimedJob, site: &str) -> Vec<(String, String)> {
    if !matches!(job.target, Target::Addon { .. }) {
        return Vec::new();
    }
    job.ledger
        .iter()
        .filter(|e| e.site != site)
        .map(|e| (e.site.clone(), e.plan.clone()))
        .collect()
}

/// What the details and activity say about a plan left in place.
pub(super) fn kept_note(site: &str, holder: &SiteHolder) -> String {
    format!(
        "left the Jetpack plan on {site} in place: {} still holds {}",
        holder.target, holder.plan
    )
}

#[cfg(test)]
#[path = "sites_tests.rs"]
mod tests;
