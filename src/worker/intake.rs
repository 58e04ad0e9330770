//! The intake, beside the claims: applying recorded requests (a batch at a time) and the
//! adoption scan (a step at a time). The engine runs one intake step as its own task while it
//! claims and reaps, so a large inbox or a backlog of paid orders never holds a claim back;
//! the step's state comes back with its result.

use std::time::{Duration, Instant};

use super::Worker;
use super::WorkerSettings;
use crate::metrics as m;
use crate::store::{APPLY_BATCH, Recheck, RecheckCursor, StoreError};

/// Services examined per Jetpack product by one discovery page (only a backlog fills it: a
/// new product, or a worker that was down); one page per turn, so adoption never holds up the
/// jobs already due.
const DISCOVER_PAGE: u32 = 500;
/// The first discovery page of a scan is the concurrency's worth (at least this many), and
/// each full page after it twice the one before, up to [`DISCOVER_PAGE`]: a backlog's first
/// jobs start after a page that fills the call slots, not after a page of 500.
const FIRST_DISCOVER_PAGE_AT_LEAST: u32 = 16;
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

/// Where the adoption scan is between turns.
struct Scan {
    /// The Jetpack products, and when they were read.
    products: Vec<u32>,
    products_at: Option<Instant>,
    /// The next discovery page's size while a backlog is discovered (None: the first page's).
    discover_page: Option<u32>,
    /// The re-check resumes after this candidate (round robin).
    recheck_after: RecheckCursor,
    /// The deleted-service sweep resumes after this ledger id (round robin).
    ledger_after: u64,
    /// The last re-check page was full and settled some candidates: the next step is a
    /// [`BACKLOG_PAGE`] of due candidates (`run`).
    backlog: bool,
}

/// The intake's state between steps, and what the last step did.
pub(super) struct Intake {
    /// `run --once`: every candidate and ledger row each scan, and no scan on an interval.
    until_idle: bool,
    last_adopt: Option<Instant>,
    adopting: bool,
    /// The last step applied requests and left the adoption scan for the next step.
    adoption_deferred: bool,
    scan: Scan,
    /// When requests were last looked for.
    last_requests: Option<Instant>,
    /// The last step looked for requests (`run --once` stops only after a step that did).
    looked_for_requests: bool,
    /// The last batch of requests was full: the next step applies another at once.
    more_requests: bool,
    /// Requests applied and provision requests recorded by adoption, not yet counted.
    pub(super) applied: u64,
    pub(super) adopted: u64,
    /// The last step recorded or applied something, or has more to do at once.
    progressed: bool,
    /// The database error that ended the last step, and what it was doing.
    pub(super) failed: Option<(&'static str, StoreError)>,
}

impl Intake {
    /// The state before the first step; with `adopt` the first step starts an adoption scan.
    pub(super) fn new(until_idle: bool, adopt: bool) -> Intake {
        Intake {
            until_idle,
            last_adopt: None,
            adopting: adopt,
            adoption_deferred: false,
            scan: Scan {
                products: Vec::new(),
                products_at: None,
                discover_page: None,
                recheck_after: RecheckCursor::default(),
                ledger_after: 0,
                backlog: false,
            },
            last_requests: None,
            looked_for_requests: false,
            more_requests: false,
            applied: 0,
            adopted: 0,
            progressed: false,
            failed: None,
        }
    }

    fn fail(&mut self, during: &'static str, err: StoreError) {
        self.failed = Some((during, err));
    }

    /// Whether a step has something to do now: more of what the last one did, requests to
    /// look for (once per poll interval), or an adoption scan under way or due.
    pub(super) fn wants_step(&self, settings: &WorkerSettings) -> bool {
        self.progressed || self.requests_due(settings) || self.adoption_due(settings)
    }

    /// The last step looked for requests, found none, and had nothing more to do: `run
    /// --once` may stop.
    pub(super) fn idle(&self) -> bool {
        self.looked_for_requests && !self.progressed && !self.more_requests
    }

    /// Makes requests due at once: `run --once` looks one last time before it stops.
    pub(super) fn look_again(&mut self) {
        self.last_requests = None;
    }

    fn requests_due(&self, settings: &WorkerSettings) -> bool {
        self.more_requests
            || self
                .last_requests
                .is_none_or(|t| t.elapsed() >= settings.poll_interval)
    }

    fn adoption_due(&self, settings: &WorkerSettings) -> bool {
        settings.adopt
            && (self.adopting
                || (!self.until_idle
                    && self
                        .last_adopt
                        .is_none_or(|t| t.elapsed() >= settings.adopt_interval)))
    }
}

impl Worker {
    /// One intake step: a batch of requests, then a step of the adoption scan. A step that
    /// applied requests ends there (the next step scans), so the engine claims their jobs at
    /// once rather than after a scan page; never two steps in a row, so a busy inbox does not
    /// hold the scan off.
    pub(super) async fn intake(&self, mut i: Box<Intake>) -> Box<Intake> {
        i.failed = None;
        let applied = self.apply_requests(&mut i).await;
        let defer = applied && !i.adoption_deferred && i.adoption_due(&self.settings);
        i.adoption_deferred = defer;
        i.progressed = if defer {
            true
        } else {
            applied | self.adopt_page(&mut i).await
        };
        i
    }

    /// Applies one batch of recorded requests, once per poll interval (one cheap lookup when
    /// there are none), so a busy drain does not look for them after every job. One batch per
    /// step (the claims go on beside it); after a full batch the next step comes at once and
    /// applies the next.
    async fn apply_requests(&self, i: &mut Intake) -> bool {
        i.looked_for_requests = false;
        if !i.requests_due(&self.settings) {
            return false;
        }
        // The first batch of a backlog fills the call slots and no more, so its jobs start
        // while the next (full) batch is being applied.
        let size = if i.more_requests {
            APPLY_BATCH
        } else {
            self.settings.concurrency
        };
        i.more_requests = false;
        i.looked_for_requests = true;
        i.last_requests = Some(Instant::now());
        let batch = match self.store.has_pending_requests().await {
            Ok(false) => return false,
            Ok(true) => self.store.apply_request_batch(size).await,
            Err(err) => Err(err),
        };
        match batch {
            Ok(batch) => {
                let n = batch.applied.len() as u64;
                i.applied += n;
                i.more_requests = batch.full;
                metrics::counter!(m::REQUESTS_APPLIED).increment(n);
                n > 0
            }
            Err(err) => {
                i.fail("applying requests", err);
                false
            }
        }
    }

    /// One step of the adoption scan while one is under way; a new scan every adoption
    /// interval. True when it recorded requests or has more to do at once.
    async fn adopt_page(&self, i: &mut Intake) -> bool {
        if !i.adoption_due(&self.settings) {
            return false;
        }
        i.adopting = true;
        match self.scan_step(i).await {
            Ok((recorded, more)) => {
                if recorded > 0 {
                    // Apply them at once rather than at the next poll.
                    i.last_requests = None;
                }
                if !more {
                    i.adopting = false;
                    i.last_adopt = Some(Instant::now());
                }
                recorded > 0 || more
            }
            Err(err) => {
                i.adopting = false;
                i.scan.backlog = false;
                i.scan.discover_page = None;
                i.last_adopt = Some(Instant::now());
                i.fail("adoption", err);
                false
            }
        }
    }

    /// Discovery (a backlog first), then a page of candidates to re-check and a page of the
    /// deleted-service sweep. `run --once` goes round every candidate and ledger row; `run`
    /// takes one page of each per interval, and while due candidates keep being settled,
    /// larger pages of them at once ([`BACKLOG_PAGE`]). Returns (requests recorded, more to
    /// do now).
    async fn scan_step(&self, i: &mut Intake) -> Result<(u64, bool), StoreError> {
        if i.scan.backlog {
            return self.recheck_backlog(i).await;
        }
        let thorough = i.until_idle;
        let s = &mut i.scan;
        if s.products_at.is_none_or(|t| t.elapsed() >= PRODUCTS_EVERY) {
            s.products = self.store.adoption_products().await?;
            s.products_at = Some(Instant::now());
        }
        let page = s.discover_page.unwrap_or_else(|| {
            self.settings
                .concurrency
                .clamp(FIRST_DISCOVER_PAGE_AT_LEAST, DISCOVER_PAGE)
        });
        let found = self.store.discover_candidates(&s.products, page).await?;
        s.discover_page = found.more.then(|| (page * 2).min(DISCOVER_PAGE));
        // Counted, and applied at once, even if a later part of the step fails: they are
        // recorded.
        note_adopted(i, found.adopted);
        if found.adopted > 0 {
            i.last_requests = None;
        }
        if found.more {
            // A backlog (a new install, a worker that was down): the paid orders of each page
            // are requested as it is read, so their jobs run while discovery goes on.
            return Ok((found.adopted, true));
        }
        let s = &mut i.scan;
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
        let mut recorded = found.adopted + checked.adopted;
        note_adopted(i, checked.adopted);
        if self.settings.cancel_deleted {
            let s = &mut i.scan;
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
    async fn recheck_backlog(&self, i: &mut Intake) -> Result<(u64, bool), StoreError> {
        let checked = self
            .store
            .recheck_candidates(Recheck::Due, BACKLOG_PAGE)
            .await?;
        note_adopted(i, checked.adopted);
        i.scan.backlog = checked.next.is_some() && checked.settled() > 0;
        Ok((checked.adopted, i.scan.backlog))
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
}

/// Counts and logs the provision requests a discovery page or a re-check recorded.
fn note_adopted(i: &mut Intake, adopted: u64) {
    if adopted > 0 {
        i.adopted += adopted;
        tracing::info!(adopted, "recorded paid Pending services for provisioning");
    }
}
