//! One attempt at a job of a licence target (a product or addon whose *Jetpack API* is
//! `licence`): the job's action runs its licence row of the catalogue. Create issues a licence
//! exactly once (`issue`: the intent committed before the call, a lost answer looked up and
//! never repeated blindly) and attaches it when *Attach to the site* is on; Terminate revokes
//! what the target holds; ChangePackage issues the new product's licence and revokes the old
//! one once the new one is recorded; Suspend with the "cancel" setting detaches (or is refused
//! with attach off); Unsuspend attaches again (`revoke`). The words are `words`; the product
//! list and the reconciler's look at held keys are `products` and `check`.

mod check;
mod issue;
mod products;
mod revoke;
mod words;

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;

use super::lease::Lease;
use super::outcome::{Outcome, ReplyTo, failed, module_log_action};
use super::process::refused;
use super::{Worker, messages, module_log};
use crate::backoff;
use crate::catalogue::{LicenceEffect, StatusChange};
use crate::jetpack::{Exchange, Failure};
use crate::licensing::{LicensingClient, LicensingError};
use crate::order::{LicenceOrder, read_gone_licence, read_licence_order};
use crate::store::{ClaimedJob, Finish, LicenceRow, LicenceWrite, ModuleQueueWrite, WhmcsWrites};
use crate::text::Chain;
pub use products::ProductsSettings;

/// A live licence the target holds, as the attempt knows it.
#[derive(Clone, Debug)]
struct Holding {
    /// Its row.
    id: u64,
    /// Its key.
    key: String,
    /// Its product.
    product: String,
    /// The site it is attached to (None: not attached).
    attached: Option<String>,
    /// Issued (or found) by this attempt.
    fresh: bool,
}

impl Holding {
    fn of(row: &LicenceRow) -> Option<Holding> {
        let attached = row.state == crate::catalogue::LicenceState::Attached;
        Some(Holding {
            id: row.id,
            key: row.key.clone()?,
            product: row.product.clone(),
            attached: row.attached_site.clone().filter(|_| attached),
            fresh: false,
        })
    }
}

/// One attempt of a licence job: what it reads and calls with, and the exchanges it logs.
struct Attempt<'a, 'l> {
    worker: &'a Worker,
    api: &'a LicensingClient,
    job: &'a ClaimedJob,
    order: &'a LicenceOrder,
    lease: &'a Lease<'l>,
    log: Vec<Exchange>,
}

impl Worker {
    /// The attempt of a job whose target sells licences.
    pub(super) async fn licence_attempt(&self, job: &ClaimedJob, lease: &Lease<'_>) -> Outcome {
        let order = match licence_order(job) {
            Ok(order) => order,
            Err(out) => return *out,
        };
        let to = ReplyTo {
            details: order.details,
            client_id: order.client_id,
        };
        if let Some(out) = self.over_budget(job, to) {
            return out;
        }
        let Some(api) = self.licensing.clone() else {
            let why = "the Licensing API client could not be built (see the worker's log)";
            return failed(
                job,
                messages::failure(job.target, "issue", why),
                None,
                0,
                Vec::new(),
            )
            .into();
        };
        run(self, &api, job, &order, lease).await
    }
}

async fn run(
    worker: &Worker,
    api: &Arc<LicensingClient>,
    job: &ClaimedJob,
    order: &LicenceOrder,
    lease: &Lease<'_>,
) -> Outcome {
    let _permit = match api.admit(&order.token) {
        Ok(permit) => permit,
        Err(held) => return Outcome::Hold(held),
    };
    let mut a = Attempt {
        worker,
        api,
        job,
        order,
        lease,
        log: Vec::new(),
    };
    let done = match job.action.licence().effect {
        LicenceEffect::Issues | LicenceEffect::AttachesBySetting => a.provide().await,
        LicenceEffect::IssuesThenRevokes => a.change().await,
        LicenceEffect::Revokes => a.terminate().await,
        LicenceEffect::DetachesBySetting => a.suspend().await,
    };
    match done {
        Ok(finish) => finish.into(),
        Err(out) => out,
    }
}

/// The target's licence order, or the outcome that ends the attempt (bad settings, a target
/// gone with nothing to revoke).
fn licence_order(job: &ClaimedJob) -> Result<LicenceOrder, Box<Outcome>> {
    let Some(service) = &job.service else {
        let gone = job
            .gone_product
            .as_ref()
            .filter(|_| job.action.removes())
            .and_then(|p| read_gone_licence(job.target, p, gone_id(job)));
        return gone.ok_or_else(|| {
            let message = messages::target_missing(job.target);
            Box::new(failed(job, message, None, 0, Vec::new()).into())
        });
    };
    let last_site = job
        .licences
        .iter()
        .rev()
        .find_map(|l| l.attached_site.as_deref());
    read_licence_order(service, &job.fields, last_site).map_err(|bad| Box::new(refused(job, bad)))
}

/// The product id the licence rows of a gone target name.
fn gone_id(job: &ClaimedJob) -> u32 {
    job.licences
        .iter()
        .rev()
        .find_map(|l| l.product_id)
        .unwrap_or(0)
}

/// A licence error as the worker's failure (what `after_failure` turns into the next state).
fn as_failure(e: LicensingError) -> Failure {
    match e {
        LicensingError::Transient {
            message,
            retry_after,
            outcome_unknown,
        } => Failure::Transient {
            message,
            retry_after,
            outcome_unknown,
        },
        LicensingError::Forbidden { message } | LicensingError::Refused { message, .. } => {
            Failure::Permanent { message }
        }
        LicensingError::Stopped { message } => Failure::Stopped { message },
    }
}

impl Attempt<'_, '_> {
    /// Where a failure is shown.
    fn reply(&self) -> ReplyTo {
        ReplyTo {
            details: self.order.details,
            client_id: self.order.client_id,
        }
    }

    /// What a failed call becomes (retry, failure, abandon), with the exchanges so far.
    fn failure(&mut self, e: LicensingError) -> Outcome {
        let log = std::mem::take(&mut self.log);
        self.worker
            .after_failure(self.job, (self.reply(), None), as_failure(e), log)
    }

    /// A failed job with this message (details, activity, Module Queue).
    fn fail(&mut self, message: String) -> Outcome {
        let log = module_log::entries(std::mem::take(&mut self.log));
        let (details, client) = (self.order.details, self.order.client_id);
        failed(self.job, message, details, client, log).into()
    }

    /// Done: the details text, the activity line and the status change.
    fn done(&mut self, text: String, activity: String, status: Option<StatusChange>) -> Finish {
        let whmcs = WhmcsWrites {
            client_id: self.order.client_id,
            details: self.order.details.map(|d| (d, text.clone())),
            status,
            activity: Some(activity),
            module_queue: self
                .job
                .had_failure
                .then_some(ModuleQueueWrite::Resolve(self.job.action)),
            module_log: module_log::entries(std::mem::take(&mut self.log)),
            module_log_action: module_log_action(self.job.action),
        };
        Finish::done(text, whmcs)
    }

    /// Writes what the attempt learnt about licence `id`, patiently while the database is
    /// out (a key we hold must not be lost); false when the row had moved on. A write that
    /// still fails abandons the attempt (the lease expires; the next one looks the licence
    /// up).
    async fn record(&self, id: u64, w: LicenceWrite) -> Result<bool, Outcome> {
        let store = &self.worker.store;
        let job = Some(self.job.id.0);
        let written = (|| store.licence_write(id, job, &w))
            .retry(backoff::outcome_write(self.worker.settings.write_patience))
            .when(|e| e.is_connection_trouble() || e.is_lock_conflict())
            .await;
        written.map_err(|e| {
            tracing::error!(job_id = %self.job.id, licence = id, change = ?w, error = %Chain(&e),
                "could not record what happened to a licence; the next attempt looks it up");
            Outcome::Abandon(format!(
                "the licence ledger could not be written: {}",
                Chain(&e)
            ))
        })
    }

    /// The target's latest row of `product` in `states`.
    fn latest(&self, product: &str, keep: impl Fn(&LicenceRow) -> bool) -> Option<&LicenceRow> {
        self.job
            .licences
            .iter()
            .rev()
            .find(|l| l.product == product && keep(l))
    }

    /// How long an issue's lost answer is given to land before it is looked up.
    fn settle(&self) -> Duration {
        self.worker.settings.reconcile.settle
    }
}

/// Pending or Terminated → Active (the usual flow has WHMCS make it Active already; an
/// adopted or re-created service needs it).
fn activate(order: &LicenceOrder) -> Option<StatusChange> {
    ["Pending", "Terminated"]
        .iter()
        .any(|s| order.status.eq_ignore_ascii_case(s))
        .then_some(StatusChange::Activate)
}
