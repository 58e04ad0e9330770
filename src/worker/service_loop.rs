//! The one engine behind `run` and `run --once`: an intake step beside the claims (recorded
//! requests applied a batch at a time, the adoption scan a step at a time: `intake`), claims
//! that keep every call slot busy with a few jobs ahead (`slots`: the concurrency bounds
//! partner-API calls in flight), and finished jobs reaped as they end (no waves waiting for a
//! batch's slowest job; their outcomes written in batches by the `completer`). `run` goes on
//! until shutdown, pruning on its own interval and backing off through database outages;
//! `run --once` stops when nothing is due and nothing runs. On shutdown jobs in their calls
//! drain within the drain timeout and the rest are released; a job claimed ahead never starts
//! a call during the drain (it is given back at once).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::completer::{Completer, Completions};
use super::intake::Intake;
use super::{Processed, RunSummary, Worker, WorkerError};
use crate::backoff;
use crate::metrics as m;
use crate::store::{ClaimedJob, StoreError};
use crate::text::Chain;

/// How often `run` prunes finished jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Room for this many jobs triggers a claim (fewer when the concurrency is below 16).
const CLAIM_BATCH: u32 = 4;
/// Rows per prune statement.
const PRUNE_BATCH: u32 = 500;

/// Which of the two commands the engine runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `run`: until shutdown.
    Service,
    /// `run --once`: until nothing is due and nothing runs.
    UntilIdle,
}

type InFlight = JoinSet<Result<Processed, StoreError>>;

/// The engine's state across turns of the loop.
struct Engine {
    mode: Mode,
    inflight: InFlight,
    held: HashMap<tokio::task::Id, ClaimedJob>,
    summary: RunSummary,
    last_prune: Option<Instant>,
    db_failures: u32,
    /// `run --once`: the database error that stopped it.
    stopped_by: Option<StoreError>,
    /// Where the jobs' outcomes are written, in batches.
    completions: Completions,
    /// The intake's state while no step of it runs.
    intake: Option<Box<Intake>>,
    /// The intake step running beside the claims.
    intake_step: Option<JoinHandle<Box<Intake>>>,
    /// Cancelled on shutdown: a job still waiting for its call slot then makes no call.
    stop: CancellationToken,
    /// When the partner accounts on hold were last read (once per poll).
    holds_read: Option<Instant>,
    /// The last claim got fewer jobs than it asked for: nothing more was due. The next claim
    /// waits for a reason to expect more (a job written, whose finish may have queued a
    /// follow-up; an intake step; the poll), not for every call slot given back, so the end
    /// of a backlog is not a run of empty claims.
    queue_empty: bool,
}

impl Engine {
    /// The state before the first turn; with `adopt` the first intake step starts an
    /// adoption scan.
    fn new(mode: Mode, adopt: bool, completions: Completions, stop: CancellationToken) -> Engine {
        Engine {
            mode,
            inflight: JoinSet::new(),
            held: HashMap::new(),
            summary: RunSummary::default(),
            last_prune: None,
            db_failures: 0,
            stopped_by: None,
            completions,
            intake: Some(Box::new(Intake::new(mode == Mode::UntilIdle, adopt))),
            intake_step: None,
            stop,
            holds_read: None,
            queue_empty: false,
        }
    }
}

impl Worker {
    /// The service loop: until `shutdown` is cancelled; then stop claiming, let in-flight
    /// jobs finish within the drain timeout, and release the rest (their attempt is not
    /// counted). Database outages back off and never end the loop.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        tracing::info!(owner = %self.settings.owner, claim = self.store.claim_path().as_str(),
            concurrency = self.settings.concurrency, "worker started");
        let reconciler = tokio::spawn({
            let (worker, shutdown) = (self.clone(), shutdown.clone());
            async move { worker.reconcile_loop(shutdown).await }
        });
        let products = tokio::spawn({
            let (worker, shutdown) = (self.clone(), shutdown.clone());
            async move { worker.licence_products_loop(shutdown).await }
        });
        let ran = self.engine(Mode::Service, shutdown.clone()).await;
        shutdown.cancel();
        let _ = reconciler.await;
        let _ = products.await;
        ran?;
        tracing::info!("worker stopped");
        Ok(())
    }

    /// `run --once`: the same loop, stopping once nothing is due and nothing runs (or on
    /// `shutdown`). A database error stops claiming; in-flight jobs finish, then it is
    /// returned.
    pub async fn run_until_idle(
        &self,
        shutdown: CancellationToken,
    ) -> Result<RunSummary, WorkerError> {
        let summary = self.engine(Mode::UntilIdle, shutdown.clone()).await?;
        // The looks due now, until none is (each look reschedules its rows).
        while !shutdown.is_cancelled() {
            match self.reconcile_once().await {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(summary)
    }

    async fn engine(
        &self,
        mode: Mode,
        shutdown: CancellationToken,
    ) -> Result<RunSummary, WorkerError> {
        let completer = Completer::start(self.store.clone(), self.vitals.in_flight.clone());
        let mut e = Engine::new(
            mode,
            self.settings.adopt,
            completer.handle(),
            shutdown.clone(),
        );
        while !shutdown.is_cancelled() {
            self.vitals.liveness.beat(Duration::ZERO);
            let progressed = self.turn(&mut e).await;
            if mode == Mode::UntilIdle && e.stopped_by.is_some() {
                break;
            }
            if mode == Mode::UntilIdle && !progressed && e.inflight.is_empty() {
                match e.intake.as_mut() {
                    // Nothing runs, nothing was claimed, and the last intake step looked for
                    // requests and found nothing to do.
                    Some(i) if i.idle() => break,
                    // Look once more (at once) before stopping, so no request recorded
                    // meanwhile is left behind.
                    Some(i) => {
                        i.look_again();
                        continue;
                    }
                    None => {}
                }
            }
            let wait = self.wait_after(&e, progressed);
            self.vitals.liveness.beat(wait);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(joined) = e.inflight.join_next_with_id(), if !e.inflight.is_empty() => {
                    reap(&mut e, joined);
                    // The completer writes outcomes in batches: every job of the batch is
                    // reaped before the next claim, so a batch costs one claim, not one each.
                    while let Some(joined) = e.inflight.try_join_next_with_id() {
                        reap(&mut e, joined);
                    }
                    e.queue_empty = false;
                }
                stepped = intake_ended(&mut e.intake_step), if e.intake_step.is_some() => {
                    self.intake_ended(&mut e, stepped);
                    e.queue_empty = false;
                }
                // A call slot given back: the next job ahead has started; claim more (not
                // while backing off from a database outage, nor while the last claim found
                // nothing more due: `queue_empty`).
                () = self.slots.attempt_ended(), if e.db_failures == 0 => {}
                _ = tokio::time::sleep(wait) => e.queue_empty = false,
            }
        }
        if let Some(step) = e.intake_step.as_mut() {
            let stepped = step.await;
            self.intake_ended(&mut e, stepped);
        }
        if mode == Mode::UntilIdle && !shutdown.is_cancelled() {
            while let Some(joined) = e.inflight.join_next_with_id().await {
                reap(&mut e, joined);
            }
        }
        drop(e.completions);
        self.drain(&mut e.inflight, &mut e.held, completer).await;
        match e.stopped_by {
            Some(err) => Err(err.into()),
            None => Ok(e.summary),
        }
    }

    /// One turn: an intake step started if one is due (it runs beside the claims),
    /// housekeeping, a claim. True when it claimed something (so the next turn should come
    /// at once).
    async fn turn(&self, e: &mut Engine) -> bool {
        self.start_intake(e);
        if e.mode == Mode::Service {
            self.housekeeping(e).await;
        }
        e.stopped_by.is_none() && self.claim_into(e).await
    }

    /// Starts an intake step (requests, then adoption) as its own task when none runs and
    /// one is due.
    fn start_intake(&self, e: &mut Engine) {
        if e.intake_step.is_some() || e.stopped_by.is_some() {
            return;
        }
        let Some(intake) = e.intake.take_if(|i| i.wants_step(&self.settings)) else {
            return;
        };
        let me = self.clone();
        e.intake_step = Some(tokio::spawn(async move { me.intake(intake).await }));
    }

    /// Takes back an intake step's state: counts what it did, and a database error it ended
    /// on is the engine's (backing off, or stopping `run --once`).
    fn intake_ended(&self, e: &mut Engine, stepped: Result<Box<Intake>, JoinError>) {
        e.intake_step = None;
        let mut intake = stepped.unwrap_or_else(|err| {
            tracing::error!(error = %err, "an intake step stopped unexpectedly; starting afresh");
            Box::new(Intake::new(e.mode == Mode::UntilIdle, self.settings.adopt))
        });
        e.summary.applied += std::mem::take(&mut intake.applied);
        e.summary.adopted += std::mem::take(&mut intake.adopted);
        if let Some((during, err)) = intake.failed.take() {
            self.db_failed(e, during, err);
        }
        e.intake = Some(intake);
    }

    async fn housekeeping(&self, e: &mut Engine) {
        if let Some(retention) = self.settings.retention
            && e.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
        {
            self.prune(retention).await;
            e.last_prune = Some(Instant::now());
        }
    }

    /// Claims what fills the call slots and the few jobs ahead of them, within the holding
    /// bound (`slots`), in batches: once there is room for a few (or nothing runs), not after
    /// every finished job. Measured in BENCHMARKS.md: a threshold of 4 gives the best drain at
    /// concurrency 64. True when it claimed something.
    async fn claim_into(&self, e: &mut Engine) -> bool {
        let free = self.slots.room(e.inflight.len());
        let batch = (self.settings.concurrency / 4).clamp(1, CLAIM_BATCH) as usize;
        if e.queue_empty || free == 0 || (free < batch && !e.inflight.is_empty()) {
            return false;
        }
        // A power of two, so the claim's reads (lists of the claimed ids) have a few texts
        // that stay prepared (see the completer).
        let free = u32::try_from(1usize << free.ilog2()).unwrap_or(u32::MAX);
        self.refresh_holds(&mut e.holds_read).await;
        match self
            .store
            .claim(&self.settings.owner, free, self.claim_lease())
            .await
        {
            Ok(jobs) => {
                self.vitals.db.ok();
                e.db_failures = 0;
                let claimed = !jobs.is_empty();
                e.queue_empty = jobs.len() < free as usize;
                let got = match jobs.len() {
                    0 => "none",
                    n if n < free as usize => "fewer",
                    _ => "all",
                };
                metrics::counter!(m::CLAIMS, "got" => got).increment(1);
                for job in jobs {
                    let (me, completions) = (self.clone(), e.completions.clone());
                    let start = (self.slots.claimed(), e.stop.clone());
                    let copy = job.clone();
                    let handle = e
                        .inflight
                        .spawn(async move { me.process(job, start, completions).await });
                    e.held.insert(handle.id(), copy);
                }
                claimed
            }
            Err(err) => {
                self.db_failed(e, "claim", err);
                false
            }
        }
    }

    /// A database error in the loop: `run` backs off, `run --once` stops claiming.
    fn db_failed(&self, e: &mut Engine, during: &'static str, err: StoreError) {
        e.db_failures += 1;
        self.vitals.db.failed(during, &err);
        tracing::error!(error = %Chain(&err), during, failures = e.db_failures, "database error; backing off");
        if e.mode == Mode::UntilIdle && e.stopped_by.is_none() {
            e.stopped_by = Some(err);
        }
    }

    fn wait_after(&self, e: &Engine, progressed: bool) -> Duration {
        if e.db_failures > 0 {
            backoff::outage_pause(e.db_failures)
        } else if progressed && !e.queue_empty && self.slots.room(e.inflight.len()) > 0 {
            Duration::ZERO
        } else {
            // Woken at once by the next job or intake step that ends;
            // the poll also starts the intake step that applies requests recorded meanwhile.
            self.settings.poll_interval
        }
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
                    // A long backlog is progress too: the watchdog must not take it for a
                    // stuck loop (each batch is under the store's timeout).
                    self.vitals.liveness.beat(Duration::from_millis(100));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "pruning finished jobs failed; will try again later");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(pruned = total, retention = ?retention, "pruned finished jobs");
        }
        total
    }

    /// Lets in-flight jobs finish within the drain timeout, writes every outcome handed to
    /// the completer, then releases the jobs that did not finish.
    async fn drain(
        &self,
        inflight: &mut InFlight,
        held: &mut HashMap<tokio::task::Id, ClaimedJob>,
        completer: Completer,
    ) {
        if inflight.is_empty() && held.is_empty() {
            completer.close().await;
            return;
        }
        tracing::info!(
            in_flight = inflight.len(),
            "stopping: no new jobs; letting in-flight jobs finish"
        );
        let deadline = tokio::time::sleep(self.settings.drain_timeout);
        tokio::pin!(deadline);
        let mut ignored = RunSummary::default();
        while !inflight.is_empty() {
            tokio::select! {
                _ = &mut deadline => break,
                Some(joined) = inflight.join_next_with_id() => reap_into(held, &mut ignored, joined),
            }
        }
        inflight.abort_all();
        while let Some(joined) = inflight.join_next_with_id().await {
            reap_into(held, &mut ignored, joined);
        }
        // Outcomes of aborted jobs already handed over are written before any release: a
        // job written meanwhile is then not released (its fence no longer holds). Bounded: a
        // database that does not answer must not hold the stop up (both writes are fenced).
        let flushed = tokio::time::timeout(self.settings.drain_timeout, completer.close()).await;
        if flushed.is_err() {
            tracing::warn!("outcomes handed over were not all written in time; releasing the rest");
        }
        for (_, job) in held.drain() {
            if job.may_be_acting() {
                // Its call may still reach the partner: releasing it would let another worker
                // call again at once. The lease (which covers the call) expires instead, and
                // the reclaimer asks the status endpoint first.
                tracing::warn!(job_id = %job.id, target = %job.target,
                    "stopped during a partner-API call; left to its lease rather than released");
                continue;
            }
            match self.store.release(&job).await {
                Ok(true) => {
                    metrics::counter!(m::JOBS_RELEASED).increment(1);
                    tracing::warn!(job_id = %job.id, target = %job.target,
                        "did not finish within the drain timeout; released for another run");
                }
                Ok(false) => {}
                Err(e) => tracing::error!(job_id = %job.id, error = %Chain(&e),
                    "could not release the job; it runs again when its lease expires"),
            }
        }
    }
}

type Joined = Result<(tokio::task::Id, Result<Processed, StoreError>), tokio::task::JoinError>;

fn reap(e: &mut Engine, joined: Joined) {
    reap_into(&mut e.held, &mut e.summary, joined);
}

fn reap_into(
    held: &mut HashMap<tokio::task::Id, ClaimedJob>,
    summary: &mut RunSummary,
    joined: Joined,
) {
    match joined {
        Ok((id, result)) => {
            let job = held.remove(&id);
            // Jobs given back without a call are not attempts.
            let counted = match result {
                Ok(Processed::Held) => &mut summary.held,
                Ok(Processed::Released) => &mut summary.released,
                _ => &mut summary.processed,
            };
            *counted += 1;
            match result {
                Ok(Processed::Written | Processed::Held | Processed::Released) => {}
                Ok(Processed::LeaseLost) => summary.lost_leases += 1,
                Err(e) => {
                    summary.unrecorded += 1;
                    tracing::error!(job_id = ?job.map(|j| j.id.0), error = %Chain(&e),
                        "could not record the job's outcome; it runs again when its lease expires");
                }
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

/// The end of the running intake step (never, when none runs).
async fn intake_ended(
    step: &mut Option<JoinHandle<Box<Intake>>>,
) -> Result<Box<Intake>, JoinError> {
    match step {
        Some(step) => step.await,
        None => std::future::pending().await,
    }
}
