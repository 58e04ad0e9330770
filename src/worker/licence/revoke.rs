//! Taking licences away: Terminate revokes every licence the target holds (a licence in doubt
//! is looked up first, and one that cannot be is reported, not guessed); ChangePackage revokes
//! the old product's licence only once the new one is recorded; Suspend with the "cancel"
//! setting detaches the licence from its site (attach on) or is refused (attach off: a revoked
//! key never comes back).

use super::issue::Settled;
use super::{Attempt, Holding, words};
use crate::catalogue::{LicenceState, StatusChange};
use crate::licensing::LicensingError;
use crate::order::OnSuspend;
use crate::store::{Finish, LicenceRow, LicenceWrite};
use crate::worker::outcome::Outcome;

impl Attempt<'_, '_> {
    /// Terminate: every licence the target holds is revoked.
    pub(super) async fn terminate(&mut self) -> Result<Finish, Outcome> {
        let mut held: Vec<Holding> = self.job.licences.iter().filter_map(live).collect();
        let mut left = Vec::new();
        for doubt in self
            .job
            .licences
            .iter()
            .filter(|l| l.state.in_doubt())
            .cloned()
            .collect::<Vec<_>>()
        {
            match self.settle_doubt(&doubt).await? {
                Settled::Found(found) => held.push(found),
                Settled::NotThere => {}
                Settled::Undecided { at } => {
                    left.push(words::not_revoked_unknown(&doubt.product, &at))
                }
            }
        }
        let revoked = self.revoke_all(&held).await?;
        let mut text = words::details_revoked(&revoked);
        for note in &left {
            text.push_str(&format!(" Note: {note}."));
        }
        let line = words::activity_revoked(self.job.target, revoked.len(), &left);
        let status = Some(StatusChange::Terminate).filter(|_| self.order.details.is_some());
        Ok(self.done(text, line, status))
    }

    /// ChangePackage: the new product's licence (issued once, attached as set), then the
    /// other products' licences revoked.
    pub(super) async fn change(&mut self) -> Result<Finish, Outcome> {
        let product = self.order.product.clone();
        let new = self.holding(&product).await?;
        let new = self.attached(new).await?;
        let old: Vec<Holding> = self
            .job
            .licences
            .iter()
            .filter(|l| l.product != product)
            .filter_map(live)
            .collect();
        let revoked = self.revoke_all(&old).await?;
        let site = new.attached.as_deref();
        let text = words::details_key(&new.key, site);
        let olds: Vec<String> = old.iter().map(|h| h.product.clone()).collect();
        let line = if revoked.is_empty() {
            words::activity_issued(self.job.target, &product, site)
        } else {
            words::activity_changed(self.job.target, &olds, &product)
        };
        Ok(self.done(text, line, None))
    }

    /// Suspend: as the product's suspend setting says.
    pub(super) async fn suspend(&mut self) -> Result<Finish, Outcome> {
        let keep = self
            .job
            .service
            .as_ref()
            .is_none_or(|s| OnSuspend::of(s) == OnSuspend::KeepPlan);
        let held: Vec<Holding> = self.job.licences.iter().filter_map(live).collect();
        if keep {
            let (result, line) = words::suspend_kept(self.job.target, true);
            let mut f = self.done(result, line, None);
            f.whmcs.details = None;
            return Ok(f);
        }
        if !self.order.attach {
            let key = held.first().map(|h| h.key.clone());
            return Err(self.fail(words::suspend_refused(self.job.target, key.as_deref())));
        }
        let mut sites = Vec::new();
        let mut text = None;
        for h in held.iter().filter(|h| h.attached.is_some()) {
            let token = &self.order.token;
            if let Err(e) = self
                .api
                .detach(token, &h.key, &mut self.log, self.lease)
                .await
            {
                return Err(self.failure(e));
            }
            self.record(h.id, LicenceWrite::Detached).await?;
            let site = h.attached.clone().unwrap_or_default();
            text = Some(words::details_detached(&h.key, &site));
            sites.push(site);
        }
        let Some(text) = text else {
            let (result, line) = words::suspend_kept(self.job.target, true);
            let mut f = self.done(result, line, None);
            f.whmcs.details = None;
            return Ok(f);
        };
        let line = words::activity_detached(self.job.target, &sites);
        Ok(self.done(text, line, None))
    }

    /// Revokes each licence; a key the API does not know counts as revoked. Returns the keys.
    async fn revoke_all(&mut self, held: &[Holding]) -> Result<Vec<String>, Outcome> {
        let mut revoked = Vec::new();
        for h in held {
            let token = &self.order.token;
            let note = match self
                .api
                .revoke(token, &h.key, &mut self.log, self.lease)
                .await
            {
                Ok(_) => format!("revoked ({})", self.job.action.licence().name),
                Err(LicensingError::Refused { status: 404, .. }) => {
                    "the Licensing API does not know the key; nothing to revoke".to_owned()
                }
                Err(e) => return Err(self.failure(e)),
            };
            let write = LicenceWrite::Revoked {
                outside: false,
                note,
            };
            self.record(h.id, write).await?;
            revoked.push(h.key.clone());
        }
        Ok(revoked)
    }
}

/// A live row as a holding.
fn live(row: &LicenceRow) -> Option<Holding> {
    if !matches!(row.state, LicenceState::Issued | LicenceState::Attached) {
        return None;
    }
    Holding::of(row)
}
