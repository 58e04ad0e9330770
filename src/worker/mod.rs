//! The worker: claims due jobs under a lease, runs at most `concurrency` of them at once,
//! renews leases while they run, writes each outcome (fenced by the lease token), adopts paid
//! Pending services, and on shutdown stops claiming, drains, and releases what did not finish.
//! `run_once` is the step tests drive; `run` is the service loop around the same pieces.
//! This module owns the settings, the `Worker` and one job's run (`run_once`, `process`); the
//! service loop is `service_loop`, one attempt's decisions `process`, `failure` and `messages`.

mod failure;
mod health;
mod messages;
mod process;
mod service_loop;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::task::JoinSet;

use crate::dns::Resolver;
use crate::domain::JobState;
use crate::jetpack::JetpackClient;
use crate::ops::metrics as m;
use crate::retry::{DnsSchedule, RetryPolicy};
use crate::store::{ClaimedJob, Store, StoreError};

/// How the worker behaves; built from the settings.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Jobs in flight at once.
    pub concurrency: u32,
    /// How often an idle worker looks for due jobs.
    pub poll_interval: Duration,
    /// Lease length; renewed every third of it while a job runs.
    pub lease: Duration,
    /// How long in-flight jobs may finish after a stop request.
    pub drain_timeout: Duration,
    /// Adopt paid/accepted Pending services of "Do not automatically setup" products.
    pub adopt: bool,
    /// How often adoption runs in `run`.
    pub adopt_interval: Duration,
    /// This process's name in `lease_owner` (host + pid + boot id).
    pub owner: String,
    /// Backoff for transient errors.
    pub retry: RetryPolicy,
    /// Finished jobs older than this are pruned by `run` (None: never).
    pub retention: Option<Duration>,
    /// Re-check schedule for plans waiting on DNS.
    pub dns: DnsSchedule,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 8,
            poll_interval: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            adopt: true,
            adopt_interval: Duration::from_secs(30),
            owner: default_owner(),
            retry: RetryPolicy::DEFAULT,
            retention: Some(Duration::from_secs(90 * 24 * 3600)),
            dns: DnsSchedule::DEFAULT,
        }
    }
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

/// What `run_once` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Services adopted.
    pub adopted: u64,
    /// Attempts made (jobs claimed and finished).
    pub processed: u64,
    /// Attempts whose lease was lost before the outcome could be written.
    pub lost_leases: u64,
    /// Attempts whose outcome could not be written (database error); retried after the lease.
    pub unrecorded: u64,
}

/// The worker. Cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Worker {
    store: Store,
    api: Arc<JetpackClient>,
    resolver: Arc<dyn Resolver>,
    settings: Arc<WorkerSettings>,
    in_flight: Arc<AtomicUsize>,
    health: health::DbHealth,
}

/// Counts a job in flight for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    /// A worker over `store`, talking to `api`, checking DNS with `resolver`.
    pub fn new(
        store: Store,
        api: Arc<JetpackClient>,
        resolver: Arc<dyn Resolver>,
        settings: WorkerSettings,
    ) -> Worker {
        Worker {
            store,
            api,
            resolver,
            settings: Arc::new(settings),
            in_flight: Arc::new(AtomicUsize::new(0)),
            health: health::DbHealth::default(),
        }
    }

    /// Jobs this process is working on right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The store (for commands that share the worker's connection pool).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Adopts (when enabled) and processes every job that is due now, `concurrency` at a time,
    /// until none is due. Jobs rescheduled into the future are left for later.
    pub async fn run_once(&self) -> Result<RunSummary, WorkerError> {
        let mut summary = RunSummary::default();
        if self.settings.adopt {
            summary.adopted = self.adopt_all().await?;
        }
        loop {
            let jobs = self
                .store
                .claim(
                    &self.settings.owner,
                    self.settings.concurrency,
                    self.settings.lease,
                )
                .await?;
            if jobs.is_empty() {
                return Ok(summary);
            }
            let mut set = JoinSet::new();
            for job in jobs {
                let me = self.clone();
                set.spawn(async move { me.process(job).await });
            }
            while let Some(joined) = set.join_next().await {
                summary.processed += 1;
                match joined {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => summary.lost_leases += 1,
                    // The job keeps its lease and runs again when it expires; the others go on.
                    Ok(Err(e)) => {
                        summary.unrecorded += 1;
                        tracing::error!(error = %e, "could not record a job's outcome; it runs again when its lease expires");
                    }
                    Err(e) => tracing::error!(error = %e, "job task failed"),
                }
            }
        }
    }

    async fn adopt_all(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.store.adopt(100).await?;
            total += n;
            if n < 100 {
                if total > 0 {
                    tracing::info!(
                        adopted = total,
                        "queued paid Pending services for provisioning"
                    );
                }
                return Ok(total);
            }
        }
    }

    /// One claimed job: the attempt (with lease renewal alongside) and its fenced write.
    /// Ok(false) when the lease was lost and nothing was written.
    async fn process(&self, job: ClaimedJob) -> Result<bool, StoreError> {
        let _counted = InFlight::start(&self.in_flight);
        metrics::counter!(m::JOBS_CLAIMED, "action" => job.action.as_str()).increment(1);
        // The renewal runs as its own future beside the attempt, so a slow renewal (pool
        // exhausted, database restarting) never stalls the attempt itself.
        let renewal = async {
            let mut renew = tokio::time::interval(self.settings.lease / 3);
            renew.tick().await;
            loop {
                renew.tick().await;
                match self.store.renew_lease(&job, self.settings.lease).await {
                    Ok(true) => self.health.ok(),
                    Ok(false) => {
                        self.health.ok();
                        tracing::warn!(job_id = %job.id, "lease lost while the job ran; its outcome will not be written")
                    }
                    Err(e) => {
                        self.health.failed("lease renewal", &e);
                        tracing::warn!(job_id = %job.id, error = %e, "could not renew the lease")
                    }
                }
            }
        };
        let finish = tokio::select! {
            out = self.attempt(&job) => out,
            never = renewal => match never {},
        };
        // A database restart must not cost the outcome: the write is tried again while the
        // lease surely holds (half a lease), instead of waiting for the lease to expire and
        // calling the API again. The write is fenced by the lease token either way.
        let patience = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(4))
            .without_max_times()
            .with_total_delay(Some(self.settings.lease / 2))
            .with_jitter();
        let written = (|| self.store.finish(&job, &finish))
            .retry(patience)
            .when(StoreError::is_unavailable)
            .notify(|e, wait| {
                self.health.failed("writing a job's outcome", e);
                tracing::warn!(job_id = %job.id, error = %e, retry_in = ?wait,
                    "could not write the job's outcome yet; trying again");
            })
            .await;
        let written = match written {
            Ok(written) => {
                self.health.ok();
                written
            }
            Err(e) => {
                self.health.failed("writing a job's outcome", &e);
                return Err(e);
            }
        };
        if !written {
            tracing::warn!(job_id = %job.id, service_id = %job.service_id,
                "lease was taken over by another worker; outcome discarded");
            return Ok(false);
        }
        let counter = match finish.state {
            JobState::Done => m::JOBS_DONE,
            JobState::Failed => m::JOBS_FAILED,
            JobState::WaitingDns => m::JOBS_WAITING_DNS,
            _ => m::JOBS_RETRIED,
        };
        metrics::counter!(counter, "action" => job.action.as_str()).increment(1);
        let state = finish.state.as_str();
        match (&finish.last_error, finish.state) {
            (Some(err), JobState::Failed) => tracing::error!(
                job_id = %job.id, service_id = %job.service_id, action = job.action.as_str(),
                state, error = %err, "job failed"),
            (Some(err), _) => tracing::warn!(
                job_id = %job.id, service_id = %job.service_id, action = job.action.as_str(),
                state, attempts = job.attempts, retry_in = ?finish.run_in, error = %err,
                "attempt failed; will retry"),
            (None, _) => tracing::info!(
                job_id = %job.id, service_id = %job.service_id, action = job.action.as_str(),
                state, next_check_in = ?finish.run_in, "job updated"),
        }
        Ok(true)
    }
}
