//! What each site holds, as the real partner holds it: at most one plan of the plan family
//! (free, personal, premium, professional) plus any number of standalone products side by
//! side ([`Holdings`]), a short per-site history of those sets so the status endpoint can
//! answer what a site held a while ago (a lagging status), and the partner portal: changes
//! made behind the API's back, never counted as calls.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::host_of;
use super::state::{SandboxState, SitePlan};

/// The plan family: a site holds at most one of these.
const FAMILY: [&str; 4] = ["free", "personal", "premium", "professional"];

/// Whether `slug` is a plan of the plan family.
pub(crate) fn is_family(slug: &str) -> bool {
    FAMILY.contains(&slug)
}

/// The rank of a paid plan, for the downgrade check; `None` for `free` and products.
pub(crate) fn plan_rank(slug: &str) -> Option<u8> {
    match slug {
        "personal" => Some(1),
        "premium" => Some(2),
        "professional" => Some(3),
        _ => None,
    }
}

/// Which products a removal targets.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Which<'a> {
    /// Every product.
    All,
    /// The plan of the plan family, whichever it is.
    Family,
    /// This slug; a family slug means the family plan, whichever it is.
    Slug(&'a str),
}

impl Which<'_> {
    fn matches(self, plan: &SitePlan) -> bool {
        match self {
            Which::All => true,
            Which::Family => is_family(&plan.slug),
            Which::Slug(slug) if is_family(slug) => is_family(&plan.slug),
            Which::Slug(slug) => plan.slug == slug,
        }
    }
}

/// `products` with `plan` added: a family plan replaces the family plan (and goes first), a
/// product replaces the same product.
pub(crate) fn with_added(products: &[SitePlan], plan: SitePlan) -> Vec<SitePlan> {
    let family = is_family(&plan.slug);
    let mut kept: Vec<SitePlan> = products
        .iter()
        .filter(|p| {
            if family {
                !is_family(&p.slug)
            } else {
                p.slug != plan.slug
            }
        })
        .cloned()
        .collect();
    if family {
        kept.insert(0, plan);
    } else {
        kept.push(plan);
    }
    kept
}

/// `products` without those `which` targets (only ours when `only_ours`), and whether any
/// was removed.
pub(crate) fn without(
    products: &[SitePlan],
    which: Which,
    only_ours: bool,
) -> (Vec<SitePlan>, bool) {
    let (removed, kept): (Vec<SitePlan>, Vec<SitePlan>) = products
        .iter()
        .cloned()
        .partition(|p| which.matches(p) && (p.ours || !only_ours));
    (kept, !removed.is_empty())
}

/// One site's product sets over time, oldest first; each set held from its instant on.
#[derive(Debug, Default)]
struct History {
    sets: VecDeque<(Instant, Vec<SitePlan>)>,
    /// Older sets were pruned: before the first kept set the site held at least that set.
    pruned: bool,
}

/// Every site's products now, and their recent history.
#[derive(Debug, Default)]
pub(crate) struct Holdings {
    now: BTreeMap<String, Vec<SitePlan>>,
    history: BTreeMap<String, History>,
    /// How far behind the truth the status endpoint answers.
    pub(crate) status_lag: Duration,
}

impl Holdings {
    /// What `site` holds now.
    pub(crate) fn get(&self, site: &str) -> &[SitePlan] {
        self.now.get(site).map(Vec::as_slice).unwrap_or_default()
    }

    /// Every site holding something, with what it holds.
    pub(crate) fn all(&self) -> &BTreeMap<String, Vec<SitePlan>> {
        &self.now
    }

    /// Replaces what `site` holds, recording the change in its history.
    pub(crate) fn set(&mut self, site: &str, products: Vec<SitePlan>) {
        let now = Instant::now();
        let history = self.history.entry(site.to_owned()).or_default();
        history.sets.push_back((now, products.clone()));
        prune(history, now.checked_sub(self.status_lag));
        if products.is_empty() {
            self.now.remove(site);
        } else {
            self.now.insert(site.to_owned(), products);
        }
    }

    /// How many sets `site`'s history keeps.
    #[cfg(test)]
    pub(crate) fn history_len(&self, site: &str) -> usize {
        self.history.get(site).map_or(0, |h| h.sets.len())
    }

    /// What `site` held `status_lag` ago.
    pub(crate) fn lagged(&self, site: &str) -> Vec<SitePlan> {
        if self.status_lag.is_zero() {
            return self.get(site).to_vec();
        }
        let Some(history) = self.history.get(site) else {
            return Vec::new();
        };
        let Some(at) = Instant::now().checked_sub(self.status_lag) else {
            return Vec::new();
        };
        match history.sets.iter().rev().find(|(when, _)| *when <= at) {
            Some((_, set)) => set.clone(),
            None if history.pruned => history
                .sets
                .front()
                .map(|s| s.1.clone())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

/// Drops the sets superseded before `cutoff`, keeping the one in force at `cutoff`.
fn prune(history: &mut History, cutoff: Option<Instant>) {
    let Some(cutoff) = cutoff else { return };
    while history.sets.get(1).is_some_and(|(when, _)| *when <= cutoff) {
        history.sets.pop_front();
        history.pruned = true;
    }
}

impl SandboxState {
    /// Every product `site` (normalised with [`super::site_key`]) holds now, family plan
    /// first, in short (provision form) slugs.
    pub fn products(&self, site: &str) -> Vec<SitePlan> {
        let key = super::site_key(site);
        self.lock().holdings.get(&key).to_vec()
    }

    /// The plan `site` (normalised with [`super::site_key`]) holds now: its family plan,
    /// else its first product.
    pub fn plan(&self, site: &str) -> Option<SitePlan> {
        self.products(site).into_iter().next()
    }

    /// [`SandboxState::plan`] of every site holding something, by site key.
    pub fn plans(&self) -> BTreeMap<String, SitePlan> {
        self.all_products()
            .into_iter()
            .filter_map(|(site, products)| Some((site, products.into_iter().next()?)))
            .collect()
    }

    /// Every product of every site holding something, by site key.
    pub fn all_products(&self) -> BTreeMap<String, Vec<SitePlan>> {
        self.lock().holdings.all().clone()
    }

    /// Makes the status endpoint answer what each site held `lag` ago (zero: the truth).
    pub fn set_status_lag(&self, lag: Duration) {
        self.lock().holdings.status_lag = lag;
    }

    /// How far behind the truth the status endpoint answers.
    pub fn status_lag(&self) -> Duration {
        self.lock().holdings.status_lag
    }

    /// The partner portal removes `slug` from `site` (a family slug: the family plan,
    /// whichever it is; `None`: everything), ours or not, without any API call counted.
    /// Returns whether anything was removed.
    pub fn portal_cancel(&self, site: &str, slug: Option<&str>) -> bool {
        let key = super::site_key(site);
        let which = slug.map_or(Which::All, Which::Slug);
        let mut data = self.lock();
        let (kept, removed) = without(data.holdings.get(&key), which, false);
        if removed {
            data.holdings.set(&key, kept);
        }
        removed
    }

    /// The partner portal adds `slug` (a short slug) to `site` without any API call counted:
    /// `ours = false` is another partner's or the customer's own purchase. A family plan
    /// replaces the family plan whatever its rank; pending while the site's DNS does not
    /// resolve.
    pub fn portal_add(&self, site: &str, slug: &str, ours: bool) {
        let key = super::site_key(site);
        let pending = !self.is_resolvable(&host_of(&key));
        let plan = SitePlan {
            slug: slug.to_owned(),
            pending,
            ours,
        };
        let mut data = self.lock();
        let products = with_added(data.holdings.get(&key), plan);
        data.holdings.set(&key, products);
    }
}
