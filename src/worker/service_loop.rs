//! The service loop around `run_once`'s pieces: poll and claim up to the free concurrency,
//! adopt and prune on their own intervals, back off through database outages, and on shutdown
//! drain in-flight jobs within the drain timeout, releasing the ones that did not finish.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Worker, WorkerError};
use crate::ops::metrics as m;
use crate::store::{ClaimedJob, StoreError};

/// How often `run` prunes finished jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Free slots that trigger a claim (fewer when the concurrency is below 16).
const CLAIM_BATCH: u32 = 4;
/// Rows per prune statement.
const PRUNE_BATCH: u32 = 500;

impl Worker {
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
            // Claim in batches: once a few slots are free (or nothing runs), not after every
            // finished job. One claim then serves several jobs, and under load the batches
            // grow by themselves (slots free up while a claim runs). Measured in BENCHMARKS.md:
            // a threshold of 4 gives the best drain at concurrency 64.
            let batch = (self.settings.concurrency / 4).clamp(1, CLAIM_BATCH);
            if free > 0 && (free >= batch || inflight.is_empty()) {
                match self
                    .store
                    .claim(&self.settings.owner, free, self.settings.lease)
                    .await
                {
                    Ok(jobs) => {
                        self.health.ok();
                        db_failures = 0;
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
                        self.health.failed("claim", &e);
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
