//! The one engine behind `run` and `run --once`: apply recorded requests, adopt a page of paid
//! Pending services, claim up to the free concurrency, and reap finished jobs as they end (no
//! waves waiting for a batch's slowest job). `run` goes on until shutdown, pruning on its own
//! interval and backing off through database outages; `run --once` stops when nothing is due
//! and nothing runs. On shutdown in-flight jobs drain within the drain timeout and the rest are
//! released.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::completer::{Completer, Completions};
use super::{Processed, RunSummary, Worker, WorkerError};
use crate::backoff;
use crate::metrics as m;
use crate::store::{ClaimedJob, Recheck, RecheckCursor, StoreError};
use crate::text::Chain;

/// How often `run` prunes finished jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Free slots that trigger a claim (fewer when the concurrency is below 16).
const CLAIM_BATCH: u32 = 4;
/// Rows per prune statement.
const PRUNE_BATCH: u32 = 500;
/// Services examined per Jetpack product by one discovery page (only a backlog fills it: a
/// new product, or a worker that was down); one page per turn, so adoption never holds up the
/// jobs already due.
const DISCOVER_PAGE: u32 = 500;
/// Due candidates re-checked per scan: about five primary-key lookups each on pages that are
/// likely cold, so a scan stays well under 2 ms and 1,000 rows examined (BENCHMARKS.md). A
/// candidate is due again after a tenth of the time since its order (at most an hour), so a
/// fresh order is re-checked every scan and old unpaid ones rarely.
const RECHECK_PAGE: u32 = 10;
/// When more are due than a page: this many more, the most recent orders first.
const RECHECK_FRESH: u32 = 5;
/// Due candidates re-checked per page while a backlog drains (`run`; `run --once` reads every
/// candidate in pages of this size): a full page that
/// settled some candidates (adopted, already requested, or no longer Pending) is followed at
/// once, without the adoption interval's wait, by a page of this size, until one settles none
/// or is not full. Each page is adopted in one short transaction. The first page of a scan
/// stays [`RECHECK_PAGE`], so an idle scan costs what it did.
const BACKLOG_PAGE: u32 = 500;
/// Ledger rows the deleted-service sweep reads per scan (two rows examined each).
const SWEEP_PAGE: u32 = 50;
/// How often the list of Jetpack products is read again (tblproducts has no index on it).
const PRODUCTS_EVERY: Duration = Duration::from_secs(60);
/// The adoption window is this many adoption intervals long, and at least
/// [`WINDOW_AT_LEAST`]: a service or addon whose transaction stays open for less than about
/// that is still adopted when it commits below the watermark.
const WINDOW_INTERVALS: u32 = 4;
/// The shortest adoption window.
const WINDOW_AT_LEAST: Duration = Duration::from_secs(300);

/// Which of the two commands the engine runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `run`: until shutdown.
    Service,
    /// `run --once`: until nothing is due and nothing runs.
    UntilIdle,
}

type InFlight = JoinSet<Result<Processed, StoreError>>;

/// Where the adoption scan is between turns.
struct Scan {
    /// The Jetpack products, and when they were read.
    products: Vec<u32>,
    products_at: Option<Instant>,
    /// The re-check resumes after this candidate (round robin).
    recheck_after: RecheckCursor,
    /// The deleted-service sweep resumes after this ledger id (round robin).
    ledger_after: u64,
    /// The last re-check page was full and settled some candidates: the next step is a
    /// [`BACKLOG_PAGE`] of due candidates (`run`).
    backlog: bool,
}

/// The engine's state across turns of the loop.
struct Engine {
    mode: Mode,
    inflight: InFlight,
    held: HashMap<tokio::task::Id, ClaimedJob>,
    summary: RunSummary,
    last_adopt: Option<Instant>,
    adopting: bool,
    scan: Scan,
    last_prune: Option<Instant>,
    last_requests: Option<Instant>,
    /// This turn looked for requests (`run --once` stops only after a turn that did).
    looked_for_requests: bool,
    /// The last batch of requests was full: the next turn applies another at once.
    more_requests: bool,
    db_failures: u32,
    /// `run --once`: the database error that stopped it.
    stopped_by: Option<StoreError>,
    /// Where the jobs' outcomes are written, in batches.
    completions: Completions,
}

impl Engine {
    /// The state before the first turn; with `adopt` the first turn starts an adoption scan.
    fn new(mode: Mode, adopt: bool, completions: Completions) -> Engine {
        Engine {
            mode,
            inflight: JoinSet::new(),
            held: HashMap::new(),
            summary: RunSummary::default(),
            last_adopt: None,
            adopting: adopt,
            scan: Scan {
                products: Vec::new(),
                products_at: None,
                recheck_after: RecheckCursor::default(),
                ledger_after: 0,
                backlog: false,
            },
            last_prune: None,
            last_requests: None,
            looked_for_requests: false,
            more_requests: false,
            db_failures: 0,
            stopped_by: None,
            completions,
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
        let ran = self.engine(Mode::Service, shutdown.clone()).await;
        shutdown.cancel();
        let _ = reconciler.await;
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
        let mut e = Engine::new(mode, self.settings.adopt, completer.handle());
        while !shutdown.is_cancelled() {
            self.vitals.liveness.beat(Duration::ZERO);
            let progressed = self.turn(&mut e).await;
            if mode == Mode::UntilIdle && e.stopped_by.is_some() {
                break;
            }
            if mode == Mode::UntilIdle && !progressed && e.inflight.is_empty() {
                if e.looked_for_requests {
                    break;
                }
                // Idle, but requests were last looked for less than a poll ago: look once
                // more before stopping, so none recorded meanwhile is left behind.
                e.last_requests = None;
                continue;
            }
            let wait = self.wait_after(&e, progressed);
            self.vitals.liveness.beat(wait);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(joined) = e.inflight.join_next_with_id(), if !e.inflight.is_empty() => {
                    reap(&mut e, joined);
                }
                _ = tokio::time::sleep(wait) => {}
            }
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

    /// One turn: requests, a page of adoption, housekeeping, a claim. True when it did
    /// something (so the next turn should come at once).
    async fn turn(&self, e: &mut Engine) -> bool {
        let mut progressed = self.apply_requests(e).await;
        progressed |= self.adopt_page(e).await;
        if e.mode == Mode::Service {
            self.housekeeping(e).await;
        }
        if e.stopped_by.is_none() {
            progressed |= self.claim_into(e).await;
        }
        progressed
    }

    /// Applies one batch of recorded requests, once per poll interval (one cheap lookup when
    /// there are none), so a busy drain does not look for them after every job. One batch per
    /// turn: the claim that follows is never held back by a backlog; after a full batch the
    /// next turn comes at once and applies the next.
    async fn apply_requests(&self, e: &mut Engine) -> bool {
        e.looked_for_requests = false;
        let more = std::mem::take(&mut e.more_requests);
        if !more
            && e.last_requests
                .is_some_and(|t| t.elapsed() < self.settings.poll_interval)
        {
            return false;
        }
        e.looked_for_requests = true;
        e.last_requests = Some(Instant::now());
        let batch = match self.store.has_pending_requests().await {
            Ok(false) => return false,
            Ok(true) => self.store.apply_request_batch().await,
            Err(err) => Err(err),
        };
        match batch {
            Ok(batch) => {
                let n = batch.applied.len() as u64;
                e.summary.applied += n;
                e.more_requests = batch.full;
                metrics::counter!(m::REQUESTS_APPLIED).increment(n);
                n > 0
            }
            Err(err) => {
                self.db_failed(e, "applying requests", err);
                false
            }
        }
    }

    /// One step of the adoption scan while one is under way; a new scan every adoption
    /// interval. True when it recorded requests or has more to do at once.
    async fn adopt_page(&self, e: &mut Engine) -> bool {
        if !self.settings.adopt {
            return false;
        }
        if !e.adopting {
            let due = e.mode == Mode::Service
                && e.last_adopt
                    .is_none_or(|t| t.elapsed() >= self.settings.adopt_interval);
            if !due {
                return false;
            }
            e.adopting = true;
        }
        match self.scan_step(e).await {
            Ok((recorded, more)) => {
                if recorded > 0 {
                    // Apply them at once rather than at the next poll.
                    e.last_requests = None;
                }
                if !more {
                    e.adopting = false;
                    e.last_adopt = Some(Instant::now());
                }
                recorded > 0 || more
            }
            Err(err) => {
                e.adopting = false;
                e.scan.backlog = false;
                e.last_adopt = Some(Instant::now());
                self.db_failed(e, "adoption", err);
                false
            }
        }
    }

    /// Discovery (a backlog first), then a page of candidates to re-check and a page of the
    /// deleted-service sweep. `run --once` goes round every candidate and ledger row; `run`
    /// takes one page of each per interval, and while due candidates keep being settled,
    /// larger pages of them at once ([`BACKLOG_PAGE`]). Returns (requests recorded, more to
    /// do now).
    async fn scan_step(&self, e: &mut Engine) -> Result<(u64, bool), StoreError> {
        if e.scan.backlog {
            return self.recheck_backlog(e).await;
        }
        let thorough = e.mode == Mode::UntilIdle;
        let s = &mut e.scan;
        if s.products_at.is_none_or(|t| t.elapsed() >= PRODUCTS_EVERY) {
            s.products = self.store.adoption_products().await?;
            s.products_at = Some(Instant::now());
        }
        let found = self
            .store
            .discover_candidates(&s.products, DISCOVER_PAGE)
            .await?;
        if found.more {
            return Ok((0, true));
        }
        self.rescan_window(&s.products).await?;
        let which = if thorough {
            Recheck::After(s.recheck_after)
        } else {
            Recheck::Due
        };
        // `run --once` reads every candidate anyway: in pages of a backlog's size.
        let page = if thorough { BACKLOG_PAGE } else { RECHECK_PAGE };
        let mut checked = self.store.recheck_candidates(which, page).await?;
        s.recheck_after = checked.next.unwrap_or_default();
        let mut more = thorough && checked.next.is_some();
        if !thorough && checked.next.is_some() {
            // More are due than a page: go on with larger pages at once while they settle
            // candidates; and the freshest orders go next, so a backlog of old unpaid ones
            // never holds up a new one.
            s.backlog = checked.settled() > 0;
            more |= s.backlog;
            let fresh = self
                .store
                .recheck_candidates(Recheck::Fresh, RECHECK_FRESH)
                .await?;
            checked.adopted += fresh.adopted;
        }
        let mut recorded = checked.adopted;
        note_adopted(e, checked.adopted);
        if self.settings.cancel_deleted {
            let s = &mut e.scan;
            let swept = self.store.sweep_deleted(s.ledger_after, SWEEP_PAGE).await?;
            s.ledger_after = swept.next.unwrap_or(0);
            more |= thorough && swept.next.is_some();
            recorded += swept.requested;
            if swept.requested > 0 {
                tracing::info!(
                    requested = swept.requested,
                    "recorded terminate requests for plans whose WHMCS service is gone"
                );
            }
        }
        Ok((recorded, more))
    }

    /// The next page of a backlog of due candidates: another follows at once while the
    /// pages are full and settle some. Returns (requests recorded, more to do now).
    async fn recheck_backlog(&self, e: &mut Engine) -> Result<(u64, bool), StoreError> {
        let checked = self
            .store
            .recheck_candidates(Recheck::Due, BACKLOG_PAGE)
            .await?;
        e.scan.backlog = checked.next.is_some() && checked.settled() > 0;
        note_adopted(e, checked.adopted);
        Ok((checked.adopted, e.scan.backlog))
    }

    /// After a complete discovery pass: the services and addons committed below the
    /// watermarks within the adoption window become candidates (re-checked by this scan).
    async fn rescan_window(&self, products: &[u32]) -> Result<(), StoreError> {
        let window = (self.settings.adopt_interval * WINDOW_INTERVALS).max(WINDOW_AT_LEAST);
        let behind = self
            .store
            .rescan_window(products, DISCOVER_PAGE, window)
            .await?;
        if behind.candidates + behind.addon_candidates > 0 {
            tracing::info!(
                services = behind.candidates,
                addons = behind.addon_candidates,
                "found services or addons committed below the adoption watermark"
            );
        }
        Ok(())
    }

    async fn housekeeping(&self, e: &mut Engine) {
        if let Some(retention) = self.settings.retention
            && e.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
        {
            self.prune(retention).await;
            e.last_prune = Some(Instant::now());
        }
    }

    /// Claims up to the free slots, in batches: once a few slots are free (or nothing runs),
    /// not after every finished job. Measured in BENCHMARKS.md: a threshold of 4 gives the
    /// best drain at concurrency 64. True when it claimed something.
    async fn claim_into(&self, e: &mut Engine) -> bool {
        let free = self
            .settings
            .concurrency
            .saturating_sub(e.inflight.len() as u32);
        let batch = (self.settings.concurrency / 4).clamp(1, CLAIM_BATCH);
        if free == 0 || (free < batch && !e.inflight.is_empty()) {
            return false;
        }
        match self
            .store
            .claim(&self.settings.owner, free, self.claim_lease())
            .await
        {
            Ok(jobs) => {
                self.vitals.db.ok();
                e.db_failures = 0;
                let claimed = !jobs.is_empty();
                for job in jobs {
                    let (me, completions) = (self.clone(), e.completions.clone());
                    let copy = job.clone();
                    let handle = e
                        .inflight
                        .spawn(async move { me.process(job, completions).await });
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
        } else if e.more_requests
            || (progressed && e.inflight.len() < self.settings.concurrency as usize)
        {
            Duration::ZERO
        } else {
            // Woken at once by the next job that ends; the poll also applies requests
            // recorded while jobs run.
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

/// Counts and logs the provision requests a re-check recorded.
fn note_adopted(e: &mut Engine, adopted: u64) {
    if adopted > 0 {
        e.summary.adopted += adopted;
        tracing::info!(adopted, "recorded paid Pending services for provisioning");
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
            if matches!(result, Ok(Processed::Held)) {
                summary.held += 1;
                return;
            }
            summary.processed += 1;
            match result {
                Ok(Processed::Written | Processed::Held) => {}
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
