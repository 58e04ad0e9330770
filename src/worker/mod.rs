//! The worker: applies recorded requests, claims due jobs under a lease, keeps at most
//! `concurrency` partner-API calls in flight (call slots: `slots`, a few jobs claimed ahead),
//! renews leases while they run and lets an acting call start
//! only under a lease that outlasts it, writes each outcome (fenced by the lease token, in
//! batches through the `completer`), adopts paid Pending services, and on shutdown stops
//! claiming, drains, and releases what did not finish. One engine (`service_loop`) serves both `run` and `run --once`. This module owns
//! the settings, the `Worker` and one job's run (`process`); the call slots are `slots`, the
//! lease `lease`, one
//! attempt's decisions `process`, `failure` and `messages`; the partner accounts on hold
//! `holds`.
//!
//! One job's path through these parts and the job state machine: docs/architecture.md.

mod cancel;
mod completer;
mod failure;
mod higher;
mod holds;
mod intake;
mod lease;
mod licence;
mod messages;
mod module_log;
mod outcome;
mod process;
mod provide;
mod reconcile;
mod service_loop;
mod sites;
mod slots;
mod status_first;

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use tokio_util::sync::CancellationToken;

use crate::backoff;
use crate::defaults;
use crate::dns::Resolver;
use crate::domain::JobState;
use crate::health::{self, Vitals};
use crate::jetpack::{Held, HeldBy, JetpackClient};
use crate::licensing::LicensingClient;
use crate::metrics as m;
use crate::retry::{DnsSchedule, RetryPolicy};
use crate::store::{ClaimedJob, Finish, Store, StoreError};
use crate::text::Chain;
use completer::Completions;
use lease::Lease;
pub use licence::ProductsSettings;
pub(crate) use outcome::Outcome;
pub use reconcile::ReconcileSettings;
use slots::{CallSlots, Ticket};

/// How the worker behaves; the binary builds it from its settings (`config`).
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Partner-API calls in flight at once (jobs in their calls; `slots`).
    pub concurrency: u32,
    /// How often an idle worker looks for due jobs.
    pub poll_interval: Duration,
    /// Lease length; renewed every third of it while a job runs.
    pub lease: Duration,
    /// An acting call starts only while the lease outlasts the call's timeout by this much
    /// (the lease is extended for the call when needed).
    pub lease_margin: Duration,
    /// How long an attempt's outcome is tried again while the database is unavailable. The
    /// write is fenced, so trying past the lease is safe: it is refused if another worker
    /// took the job over, and saves a second partner-API call if nobody did.
    pub write_patience: Duration,
    /// How long in-flight jobs may finish after a stop request.
    pub drain_timeout: Duration,
    /// Adopt paid/accepted Pending services of "Do not automatically setup" products.
    pub adopt: bool,
    /// How often adoption runs in `run`.
    pub adopt_interval: Duration,
    /// The adoption scan records a terminate request for a plan in the ledger whose WHMCS
    /// service row is gone (deleted without the module's Terminate).
    pub cancel_deleted: bool,
    /// How long the plan of a deleted service or addon waits before its terminate runs
    /// (`JETPACK_DELETE_GRACE`): the store that applies the requests dates it
    /// (`Store::with_delete_grace`, set from this by the app for every command).
    pub delete_grace: Duration,
    /// This process's name in `lease_owner` ([`default_owner`]: `host:pid:random`).
    pub owner: String,
    /// Backoff for transient errors.
    pub retry: RetryPolicy,
    /// Finished jobs older than this are pruned by `run` (None: never).
    pub retention: Option<Duration>,
    /// Re-check schedule for plans waiting on DNS.
    pub dns: DnsSchedule,
    /// The reconciler: when it looks at the partner and what it may do on its own.
    pub reconcile: ReconcileSettings,
    /// How often `run` fetches the licence products on sale.
    pub licence_products: ProductsSettings,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: defaults::CONCURRENCY.value,
            poll_interval: defaults::POLL_INTERVAL.value,
            lease: defaults::LEASE.value,
            lease_margin: lease_margin(defaults::LEASE.value),
            write_patience: Duration::from_secs(120),
            drain_timeout: defaults::DRAIN_TIMEOUT.value,
            adopt: defaults::ADOPT.value,
            adopt_interval: defaults::ADOPT_INTERVAL.value,
            cancel_deleted: defaults::CANCEL_DELETED.value,
            delete_grace: defaults::DELETE_GRACE.value,
            owner: default_owner(),
            retry: RetryPolicy::DEFAULT,
            retention: Some(defaults::RETENTION.value),
            dns: DnsSchedule::DEFAULT,
            reconcile: ReconcileSettings::default(),
            licence_products: ProductsSettings::default(),
        }
    }
}

/// The margin an acting call must leave on a lease of `lease`: a quarter of it, 1 to 5 s, for
/// the call's own slack, plus the clock-skew allowance ([`defaults::CLOCK_SKEW`]).
pub fn lease_margin(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_secs(1), Duration::from_secs(5)) + defaults::CLOCK_SKEW
}

/// `host:pid:random`, so a restarted process never looks like its predecessor.
pub fn default_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

/// Errors that stop the worker itself (not a job).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a run of the engine did (`run --once` reports it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Services adopted.
    pub adopted: u64,
    /// Requests applied.
    pub applied: u64,
    /// Attempts made (jobs claimed and finished).
    pub processed: u64,
    /// Attempts whose lease was lost (or could not be confirmed before an acting call): the
    /// outcome was refused or never written, and the job is left for its reclaimer.
    pub lost_leases: u64,
    /// Attempts whose outcome could not be written (database error); retried after the lease.
    pub unrecorded: u64,
    /// Jobs claimed ahead that had not started when the run was stopped: given back without
    /// a call, their attempt not counted; not counted in `processed`.
    pub released: u64,
    /// Jobs given back to the queue without a call (their account's breaker was open, its
    /// rate limit saturated, or an admin put it on hold); not counted in `processed`.
    pub held: u64,
}

/// How one claimed job ended, for the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Processed {
    /// The outcome was written.
    Written,
    /// The lease was lost; nothing was written.
    LeaseLost,
    /// Given back to the queue without a call (breaker open, rate limit saturated, or the
    /// account on hold).
    Held,
    /// Claimed ahead, given back unstarted because the run was stopping.
    Released,
}

/// The worker. Cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Worker {
    store: Store,
    api: Arc<JetpackClient>,
    /// The Licensing API client, beside the partner API's (None if it could not be built).
    licensing: Option<Arc<LicensingClient>>,
    resolver: Arc<dyn Resolver>,
    settings: Arc<WorkerSettings>,
    vitals: Vitals,
    /// The partner-API calls in flight, bounded by the concurrency.
    slots: Arc<CallSlots>,
}

impl Worker {
    /// A worker over `store`, talking to `api`, checking DNS with `resolver`.
    pub fn new(
        store: Store,
        api: Arc<JetpackClient>,
        resolver: Arc<dyn Resolver>,
        settings: WorkerSettings,
    ) -> Worker {
        let licensing = match LicensingClient::beside(&api) {
            Ok(client) => Some(Arc::new(client)),
            Err(error) => {
                tracing::error!(error = %Chain(&error), "the Licensing API client could not be built; licence jobs fail until it can");
                None
            }
        };
        Worker {
            store,
            api,
            licensing,
            resolver,
            slots: Arc::new(CallSlots::new(settings.concurrency)),
            settings: Arc::new(settings),
            vitals: Vitals::default(),
        }
    }

    /// The same worker with this Licensing API client (by default one beside the partner
    /// API's client: the same host, timeouts and politeness).
    pub fn with_licensing(mut self, client: LicensingClient) -> Worker {
        self.licensing = Some(Arc::new(client));
        self
    }

    /// Whether the database is answering, as this worker sees it.
    pub fn health(&self) -> &health::DbHealth {
        &self.vitals.db
    }

    /// How the worker is doing (database, loop, jobs in flight): what `ops` reports.
    pub fn vitals(&self) -> &Vitals {
        &self.vitals
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// The store (for commands that share the worker's connection pool).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies pending requests, adopts (when enabled) and processes every job that is due
    /// now, with at most `concurrency` partner-API calls in flight, until none is due; jobs
    /// rescheduled into the future are left for later. The same engine as `run`, stopping when
    /// it is idle.
    pub async fn run_once(&self) -> Result<RunSummary, WorkerError> {
        self.run_until_idle(tokio_util::sync::CancellationToken::new())
            .await
    }

    /// The lease a claim asks for: the setting, or long enough for the job's first acting
    /// call (its timeout plus two margins) when that is longer, so the call can start without
    /// a renewal round trip of its own.
    fn claim_lease(&self) -> Duration {
        let call = self.api.longest_call() + 2 * self.settings.lease_margin;
        self.settings.lease.max(call)
    }

    /// One claimed job: a call slot (`ticket` counts it until its attempt ends), the attempt
    /// in it (under its lease, renewed alongside, from the claim on), and its fenced write,
    /// handed to the completer (`completions`) to go with other jobs' in one transaction. A
    /// job whose slot has not come when `stop` is cancelled is given back without a call.
    async fn process(
        &self,
        job: ClaimedJob,
        (ticket, stop): (Ticket, CancellationToken),
        completions: Completions,
    ) -> Result<Processed, StoreError> {
        metrics::counter!(m::JOBS_CLAIMED, "action" => job.action.as_str()).increment(1);
        let lease = Lease::new(
            &self.store,
            &job,
            (self.claim_lease(), self.settings.lease),
            self.settings.lease_margin,
            self.vitals.db.clone(),
        );
        // The renewal runs as its own future beside the attempt, so a slow renewal (pool
        // exhausted, database restarting) never stalls the attempt itself.
        let outcome = tokio::select! {
            out = self.attempt_in_slot(&job, &lease, ticket, &stop) => out,
            never = lease.keep() => match never {},
        };
        let Some(outcome) = outcome else {
            return self.give_back_unstarted(&job).await;
        };
        let finish = match outcome {
            Outcome::Write(finish) => *finish,
            Outcome::Hold(held) => return self.hold_back(&job, held).await,
            Outcome::Abandon(reason) => {
                metrics::counter!(m::JOBS_ABANDONED).increment(1);
                tracing::warn!(job_id = %job.id, target = %job.target, reason = %reason,
                    "attempt stopped before its next partner-API call; the job is left for whoever reclaims it");
                return Ok(Processed::LeaseLost);
            }
        };
        let written = match self.write_batched(&completions, &job, &finish).await {
            Ok(written) => written,
            // Unavailable, or still deadlocking after every retry: nothing is wrong with the
            // outcome itself; the job runs again after its lease (the status check first).
            Err(e) if e.is_connection_trouble() || e.is_lock_conflict() => return Err(e),
            Err(e) => self.fail_unrecordable(&job, &finish, &e).await?,
        };
        if !written {
            tracing::warn!(job_id = %job.id, target = %job.target,
                "lease was taken over by another worker; outcome discarded");
            return Ok(Processed::LeaseLost);
        }
        log_outcome(&job, &finish);
        Ok(Processed::Written)
    }

    /// The attempt in a call slot, given back as soon as the attempt returns (before its
    /// outcome is written). None: the stop came before the slot; no call was made.
    async fn attempt_in_slot(
        &self,
        job: &ClaimedJob,
        lease: &Lease<'_>,
        ticket: Ticket,
        stop: &CancellationToken,
    ) -> Option<Outcome> {
        let _slot = self
            .slots
            .take(ticket, stop, &self.vitals.in_flight)
            .await?;
        Some(self.attempt(job, lease).await)
    }

    /// A job claimed ahead whose call slot had not come when the run stopped: given back at
    /// once, due now, its attempt not counted (it made no call).
    async fn give_back_unstarted(&self, job: &ClaimedJob) -> Result<Processed, StoreError> {
        if !self.store.hold_back(job, Duration::ZERO).await? {
            return Ok(Processed::LeaseLost);
        }
        metrics::counter!(m::JOBS_RELEASED).increment(1);
        tracing::info!(job_id = %job.id, target = %job.target,
            "stopping: claimed ahead and not started; released without a call");
        Ok(Processed::Released)
    }

    /// Gives a job that may not call the API now back to the queue, due when a call may be
    /// made, without using an attempt; its last error and WHMCS's tables are left as they are.
    /// The breaker logs its opening once; each job only counts.
    async fn hold_back(&self, job: &ClaimedJob, held: Held) -> Result<Processed, StoreError> {
        let by = match held.by {
            HeldBy::Breaker => "breaker",
            HeldBy::RateLimit => "rate_limit",
            HeldBy::Account => "account",
        };
        metrics::counter!(m::API_CALLS_HELD, "by" => by).increment(1);
        tracing::debug!(job_id = %job.id, target = %job.target, by, wait = ?held.wait,
            "no partner-API call for this job now; back to the queue without using an attempt");
        // A held account's jobs are due again together, so Resume runs them in their order.
        let given_back = match held.by {
            HeldBy::Account => self.store.hold_back_aligned(job, held.wait).await?,
            HeldBy::Breaker | HeldBy::RateLimit => self.store.hold_back(job, held.wait).await?,
        };
        if given_back {
            Ok(Processed::Held)
        } else {
            Ok(Processed::LeaseLost)
        }
    }

    /// Writes the outcome with other jobs' through the completer; when that did not write it
    /// (the database unavailable, a lock conflict, the completer gone), on its own with
    /// [`Worker::write_outcome`]'s patience.
    async fn write_batched(
        &self,
        completions: &Completions,
        job: &ClaimedJob,
        finish: &Finish,
    ) -> Result<bool, StoreError> {
        match completions.finish(job, finish).await {
            Some(Ok(written)) => {
                self.vitals.db.ok();
                Ok(written)
            }
            Some(Err(e)) if !(e.is_connection_trouble() || e.is_lock_conflict()) => Err(e),
            Some(Err(e)) => {
                self.vitals.db.failed("writing a job's outcome", &e);
                tracing::warn!(job_id = %job.id, error = %Chain(&e),
                    "could not write the job's outcome yet; trying again");
                self.write_outcome(job, finish).await
            }
            None => self.write_outcome(job, finish).await,
        }
    }

    /// Writes the outcome. A database restart must not cost it: the write is tried again
    /// for up to `write_patience` (it is fenced by the lease token, so a late write is refused
    /// if the job was taken over) instead of calling the API again after the lease.
    async fn write_outcome(&self, job: &ClaimedJob, finish: &Finish) -> Result<bool, StoreError> {
        let written = (|| self.store.finish(job, finish))
            .retry(backoff::outcome_write(self.settings.write_patience))
            .when(|e| e.is_connection_trouble() || e.is_lock_conflict())
            .notify(|e, wait| {
                self.vitals.db.failed("writing a job's outcome", e);
                tracing::warn!(job_id = %job.id, error = %Chain(e), retry_in = ?wait,
                    "could not write the job's outcome yet; trying again");
            })
            .await;
        match &written {
            Ok(_) => self.vitals.db.ok(),
            Err(e) if e.is_connection_trouble() => {
                self.vitals.db.failed("writing a job's outcome", e)
            }
            Err(_) => {}
        }
        written
    }

    /// The outcome was refused for a reason other than the database being unavailable (a
    /// value it rejects, a trigger, a changed schema): the job fails with the real cause in a
    /// minimal write, so it is not retried against the partner API without an admin's Retry.
    async fn fail_unrecordable(
        &self,
        job: &ClaimedJob,
        finish: &Finish,
        error: &StoreError,
    ) -> Result<bool, StoreError> {
        tracing::error!(job_id = %job.id, target = %job.target, error = %Chain(error),
            "the database refused the job's outcome; failing the job with the cause");
        let cause = messages::unrecordable(
            job.target,
            finish.state().as_str(),
            &Chain(error).to_string(),
        );
        let written = self.store.fail_unrecordable(job, &cause, finish).await?;
        if written {
            metrics::counter!(m::JOBS_FAILED, "action" => job.action.as_str()).increment(1);
        }
        Ok(written)
    }
}

/// The process-log line (and counter) for an outcome that was written.
fn log_outcome(job: &ClaimedJob, finish: &Finish) {
    let counter = match finish.state() {
        JobState::Done => m::JOBS_DONE,
        JobState::Failed => m::JOBS_FAILED,
        JobState::WaitingDns => m::JOBS_WAITING_DNS,
        _ => m::JOBS_RETRIED,
    };
    metrics::counter!(counter, "action" => job.action.as_str()).increment(1);
    let state = finish.state().as_str();
    match (&finish.last_error, finish.state()) {
        (Some(err), JobState::Failed) => tracing::error!(
            job_id = %job.id, target = %job.target, action = job.action.as_str(),
            state, error = %err, "job failed"),
        (Some(err), _) => tracing::warn!(
            job_id = %job.id, target = %job.target, action = job.action.as_str(),
            state, attempts = job.attempts, retry_in = ?finish.run_in, error = %err,
            "attempt failed; will retry"),
        (None, _) => tracing::info!(
            job_id = %job.id, target = %job.target, action = job.action.as_str(),
            state, next_check_in = ?finish.run_in, "job updated"),
    }
}
