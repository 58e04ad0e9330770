//! The worker: claims due jobs under a lease, runs at most `concurrency` of them at once,
//! renews leases while they run, writes each outcome (fenced by the lease token), adopts paid
//! Pending services, and on shutdown stops claiming, drains, and releases what did not finish.
//! `run_once` is the step tests drive; `run` is the service loop around the same pieces.

mod messages;
mod process;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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

/// How often `run` prunes finished jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Rows per prune statement.
const PRUNE_BATCH: u32 = 500;

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
        let attempt = self.attempt(&job);
        tokio::pin!(attempt);
        let mut renew = tokio::time::interval(self.settings.lease / 3);
        renew.tick().await;
        let finish = loop {
            tokio::select! {
                out = &mut attempt => break out?,
                _ = renew.tick() => {
                    match self.store.renew_lease(&job, self.settings.lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job_id = %job.id, "lease lost while the job ran; its outcome will not be written"),
                        Err(e) => tracing::warn!(job_id = %job.id, error = %e, "could not renew the lease"),
                    }
                }
            }
        };
        let debug = self.store.module_debug_mode().await.unwrap_or(false);
        let written = self.store.finish(&job, &finish, debug).await?;
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

    /// The service loop: poll, claim, process, until `shutdown` is cancelled; then stop
    /// claiming, let in-flight jobs finish within the drain timeout, and release the rest
    /// (their attempt is not counted). Database outages back off and never end the loop.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let mut inflight: JoinSet<Result<bool, StoreError>> = JoinSet::new();
        let mut held: HashMap<tokio::task::Id, ClaimedJob> = HashMap::new();
        let mut last_adopt: Option<Instant> = None;
        let mut last_prune: Option<Instant> = None;
        let mut db_failures: u32 = 0;
        tracing::info!(owner = %self.settings.owner, claim = self.store.claim_path().as_str(),
            concurrency = self.settings.concurrency, "worker started");
        while !shutdown.is_cancelled() {
            if self.settings.adopt
                && last_adopt.is_none_or(|t| t.elapsed() >= self.settings.adopt_interval)
            {
                match self.adopt_all().await {
                    Ok(_) => last_adopt = Some(Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "adoption failed; will try again"),
                }
            }
            if let Some(retention) = self.settings.retention
                && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
            {
                self.prune(retention).await;
                last_prune = Some(Instant::now());
            }
            let free = self
                .settings
                .concurrency
                .saturating_sub(inflight.len() as u32);
            let mut claimed_any = false;
            if free > 0 {
                match self
                    .store
                    .claim(&self.settings.owner, free, self.settings.lease)
                    .await
                {
                    Ok(jobs) => {
                        if db_failures > 0 {
                            tracing::info!(
                                after_failures = db_failures,
                                "database reachable again; resuming"
                            );
                            db_failures = 0;
                        }
                        claimed_any = !jobs.is_empty();
                        for job in jobs {
                            let me = self.clone();
                            let copy = job.clone();
                            let handle = inflight.spawn(async move { me.process(job).await });
                            held.insert(handle.id(), copy);
                        }
                    }
                    Err(e) => {
                        db_failures += 1;
                        tracing::error!(error = %e, failures = db_failures, "claiming jobs failed; backing off");
                    }
                }
            }
            let wait = if db_failures > 0 {
                Duration::from_millis(250u64 << db_failures.min(7)).min(Duration::from_secs(30))
            } else if claimed_any && inflight.len() < self.settings.concurrency as usize {
                Duration::ZERO
            } else {
                self.settings.poll_interval
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(joined) = inflight.join_next_with_id(), if !inflight.is_empty() => {
                    reap(&mut held, joined);
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.drain(&mut inflight, &mut held).await;
        Ok(())
    }

    /// Housekeeping: deletes finished jobs older than `retention` in small batches, pausing
    /// between batches so the billing database never sees a long delete.
    pub async fn prune(&self, retention: Duration) -> u64 {
        let mut total = 0;
        loop {
            match self.store.prune_finished(retention, PRUNE_BATCH).await {
                Ok(n) => {
                    total += n;
                    metrics::counter!(m::JOBS_PRUNED).increment(n);
                    if n < u64::from(PRUNE_BATCH) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning finished jobs failed; will try again later");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(pruned = total, retention = ?retention, "pruned finished jobs");
        }
        total
    }

    async fn drain(
        &self,
        inflight: &mut JoinSet<Result<bool, StoreError>>,
        held: &mut HashMap<tokio::task::Id, ClaimedJob>,
    ) {
        tracing::info!(
            in_flight = inflight.len(),
            "stopping: no new jobs; letting in-flight jobs finish"
        );
        let deadline = tokio::time::sleep(self.settings.drain_timeout);
        tokio::pin!(deadline);
        while !inflight.is_empty() {
            tokio::select! {
                _ = &mut deadline => break,
                Some(joined) = inflight.join_next_with_id() => reap(held, joined),
            }
        }
        inflight.abort_all();
        while let Some(joined) = inflight.join_next_with_id().await {
            reap(held, joined);
        }
        for (_, job) in held.drain() {
            match self.store.release(&job).await {
                Ok(true) => {
                    metrics::counter!(m::JOBS_RELEASED).increment(1);
                    tracing::warn!(job_id = %job.id, service_id = %job.service_id,
                        "did not finish within the drain timeout; released for another run");
                }
                Ok(false) => {}
                Err(e) => tracing::error!(job_id = %job.id, error = %e,
                    "could not release the job; it runs again when its lease expires"),
            }
        }
        tracing::info!("worker stopped");
    }
}

type Joined = Result<(tokio::task::Id, Result<bool, StoreError>), tokio::task::JoinError>;

fn reap(held: &mut HashMap<tokio::task::Id, ClaimedJob>, joined: Joined) {
    match joined {
        Ok((id, result)) => {
            let job = held.remove(&id);
            if let Err(e) = result {
                tracing::error!(job_id = ?job.map(|j| j.id.0), error = %e,
                    "could not record the job's outcome; it runs again when its lease expires");
            }
        }
        // Aborted (drain deadline) or panicked: keep it in `held` so it is released.
        Err(e) if e.is_cancelled() => {}
        Err(e) => {
            let id = e.id();
            if let Some(job) = held.remove(&id) {
                tracing::error!(job_id = %job.id, error = %e, "job task panicked; it runs again when its lease expires");
            }
        }
    }
}
