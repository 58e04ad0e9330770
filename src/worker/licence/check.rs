//! The reconciler's look at the licences targets hold: on its slow pass (once per
//! `JETPACK_RECONCILE_PASS`, a few per poll) each held key is asked about (`GET /license`); a
//! licence the API reports revoked, which we did not revoke, is recorded (`revoked_outside`)
//! and reported (the drift list, the activity log, the process log). Nothing is issued on
//! its own: a new licence bills the partner, so an admin decides.

use secrecy::ExposeSecret;

use super::words;
use crate::licensing::{LicenceToken, LicensingError};
use crate::metrics as m;
use crate::store::{LicenceCheck, LicenceWrite, StoreError};
use crate::worker::Worker;

impl Worker {
    /// One round: the held licences due for a look (at most the reconciler's `per_poll`),
    /// one `GET /license` each. Returns the number looked at.
    pub async fn check_licences_once(&self) -> Result<usize, StoreError> {
        let r = &self.settings.reconcile;
        let Some(api) = self.licensing.clone().filter(|_| r.enabled) else {
            return Ok(0);
        };
        let due = self
            .store
            .due_licence_checks(r.per_poll, r.schedule.pass)
            .await?;
        for check in &due {
            self.check_licence(&api, check).await?;
        }
        Ok(due.len())
    }

    async fn check_licence(
        &self,
        api: &crate::licensing::LicensingClient,
        check: &LicenceCheck,
    ) -> Result<(), StoreError> {
        let (row, key) = (&check.row, check.row.key.as_deref().unwrap_or_default());
        let Some(token) = LicenceToken::new(check.token.expose_secret()) else {
            return Ok(());
        };
        // Its call counts among the worker's calls in flight (`JETPACK_CONCURRENCY`).
        let _slot = self.slots.call().await;
        let Ok(_permit) = api.admit(&token) else {
            return Ok(());
        };
        let looked = api.licence(&token, key, &mut Vec::new()).await;
        let revoked = match looked {
            Ok(l) => l.revoked_at.is_some(),
            Err(LicensingError::Refused { status: 404, .. }) => true,
            Err(error) => {
                tracing::debug!(licence = row.id, %error, "could not look at a held licence; next pass");
                metrics::counter!(m::RECONCILE_CHECKS, "result" => "error").increment(1);
                return Ok(());
            }
        };
        metrics::counter!(m::RECONCILE_CHECKS, "result" => "ok").increment(1);
        if !revoked {
            self.store
                .licence_write(row.id, None, &LicenceWrite::Checked)
                .await?;
            return Ok(());
        }
        let line = words::revoked_outside(row.target, key, &row.product);
        if self
            .store
            .licence_revoked_outside(row, check.client_id, &line)
            .await?
        {
            metrics::counter!(m::DRIFTS, "kind" => "licence_revoked", "done" => "reported")
                .increment(1);
            tracing::warn!(target = %row.target, licence = row.id, product = %row.product,
                "a held licence was revoked outside WHMCS; reported");
        }
        Ok(())
    }
}
