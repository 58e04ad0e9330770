//! The reconciler: the partner holds the truth. Desired state is what each target's last
//! finished job left (`mod_jetpack_watch`, written in the fenced finish); observed state is
//! the partner's status endpoint. It looks soon after every outcome-unknown call and every
//! cancel (1, 10 and 60 minutes after, by default) and on a slow rolling pass over every
//! watched site (once a day, spread), a few sites per poll, never twice at once (rows are
//! claimed by token). What it may do on its own: record a Terminate for a plan that came back
//! after it was cancelled (a provision that landed late, a portal change), and, only when the
//! setting allows it, a Create for a plan that vanished; each through the same lifecycle rules,
//! confirmed by a second look first, at most `drift::MAX_DRIFTS` times per target and site.
//! Everything else is reported: the drift list (`status`, the dashboard), the activity log,
//! the process log and metrics. The rules are `drift`; the SQL is `store::watch`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Worker, messages};
use crate::domain::SiteUrl;
use crate::drift::{self, Expect, Expectation, Finding, Memory, Product, Remedy, Step};
use crate::jetpack::SiteProduct;
use crate::lifecycle::RequestKind;
use crate::metrics as m;
use crate::order::partner_account;
use crate::store::{CheckWrite, DriftWrite, SiteCheck, StoreError, WatchRow, WatchSchedule};
use crate::text::Chain;

/// How the reconciler behaves.
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// Look at the partner at all.
    pub enabled: bool,
    /// How often due looks are claimed.
    pub poll: Duration,
    /// Sites looked at per poll (each one status call): the rate limit of the whole worker.
    pub per_poll: u32,
    /// When to look after an outcome, and the slow pass (also given to the store).
    pub schedule: WatchSchedule,
    /// After a first sighting of drift, the second look comes at most this long after.
    pub confirm: Duration,
    /// A plan missing at the partner for a live target is provisioned again (otherwise
    /// reported only).
    pub reprovision: bool,
    /// A cancelled plan that stayed away this long is no longer watched.
    pub keep_absent: Duration,
    /// A provision whose answer was lost is not tried again before this long has passed, so
    /// an effect that lands late is seen by the status check first.
    pub settle: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            enabled: true,
            poll: Duration::from_secs(2),
            per_poll: 5,
            schedule: WatchSchedule::default(),
            confirm: Duration::from_secs(600),
            reprovision: false,
            keep_absent: Duration::from_secs(30 * 86_400),
            settle: crate::defaults::LOST_ANSWER_SETTLE.value,
        }
    }
}

/// How long a claimed poll may take before its rows are due again (a worker that died): its
/// status calls one after another, each within the API timeout.
const HOLD: Duration = Duration::from_secs(900);
/// The wait before trying again when the partner could not be asked.
const ASK_AGAIN: Duration = Duration::from_secs(300);

impl Worker {
    /// `run`'s reconciler, beside the engine (a slow partner never holds up claims): a round
    /// every poll while looks are due, backing off while the database is out.
    pub(super) async fn reconcile_loop(&self, shutdown: CancellationToken) {
        if !self.settings.reconcile.enabled {
            return;
        }
        let mut failures = 0;
        while !shutdown.is_cancelled() {
            // One poll per interval even with a backlog due: at most `per_poll` status calls
            // per interval, so jobs keep the partner's rate limit.
            let wait = match self.reconcile_once().await {
                Ok(_) => {
                    failures = 0;
                    self.settings.reconcile.poll
                }
                Err(err) => {
                    failures += 1;
                    tracing::warn!(error = %Chain(&err), "reconciler: database error; backing off");
                    crate::backoff::outage_pause(failures)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One round: claims the looks that are due, asks the partner about each site once, and
    /// records what it found. Returns the number of sites looked at.
    pub async fn reconcile_once(&self) -> Result<usize, StoreError> {
        let r = &self.settings.reconcile;
        if !r.enabled {
            return Ok(0);
        }
        let sites = self.store.due_checks(r.per_poll, HOLD).await?;
        let mut looked = Vec::with_capacity(sites.len());
        for check in &sites {
            looked.push((check, self.look(check).await));
        }
        // One transaction for the poll's looks.
        self.store.record_checks(&looked).await?;
        // And the licences targets hold, on the same slow pass.
        let licences = self.check_licences_once().await?;
        Ok(sites.len() + licences)
    }

    /// Asks the status endpoint about one site and judges each due row against it.
    async fn look(&self, check: &SiteCheck) -> Vec<CheckWrite> {
        if check.due.iter().all(|row| row.plan.is_empty()) {
            // Only markers of a cancel nobody watched: nothing to ask; kept for a while.
            let keep = self.settings.reconcile.keep_absent.as_secs();
            return check
                .due
                .iter()
                .map(|row| CheckWrite {
                    forget: u64::try_from(row.age_secs).unwrap_or(0) > keep,
                    ..self.unanswered_row(row, self.settings.reconcile.schedule.pass)
                })
                .collect();
        }
        let creds = check.account.as_ref().and_then(partner_account);
        let site = SiteUrl::parse(&check.site).ok();
        let (Some(creds), Some(site)) = (creds, site) else {
            tracing::warn!(site = %check.site, "cannot look at the partner for this site: its product has no partner credentials now");
            return self.unanswered(check, self.settings.reconcile.schedule.pass);
        };
        // Its call counts among the worker's calls in flight (`JETPACK_CONCURRENCY`).
        let _slot = self.slots.call().await;
        let Ok(_permit) = self.api.admit(&creds) else {
            return self.unanswered(check, self.settings.reconcile.poll * 15);
        };
        match self.api.status(&creds, &site, &mut Vec::new()).await {
            Ok(products) => self.judge_site(check, &products),
            Err(failure) => {
                tracing::info!(site = %check.site, error = %failure, "status check failed; looking again later");
                metrics::counter!(m::RECONCILE_CHECKS, "result" => "error").increment(1);
                self.unanswered(check, ASK_AGAIN)
            }
        }
    }

    /// Every due row looked at again after `wait`, its memory unchanged.
    fn unanswered(&self, check: &SiteCheck, wait: Duration) -> Vec<CheckWrite> {
        check
            .due
            .iter()
            .map(|row| self.unanswered_row(row, wait))
            .collect()
    }

    /// Judges each due row of the site against the answer (rows whose target has an
    /// unfinished job wait for it).
    fn judge_site(&self, check: &SiteCheck, products: &[SiteProduct]) -> Vec<CheckWrite> {
        let seen: Vec<Product<'_>> = products
            .iter()
            .map(|p| Product {
                plan: p.plan,
                ours: p.ours,
            })
            .collect();
        let site: Vec<Expectation<'_>> = check.all.iter().map(expectation).collect();
        let found = listed(products);
        let mut cancelling = false;
        check
            .due
            .iter()
            .map(|row| {
                let finding = drift::judge(expectation(row), &site, &seen);
                if row.busy || !drift::intent_agrees(row.expect, row.latest, row.latest_failed) {
                    // Its intent is still moving (a job or request is open), or its latest
                    // intent failed and an admin has it: never act against it; look later
                    // (but a failed terminate whose plan is gone anyway is recorded gone).
                    let next_in = self.settings.reconcile.confirm;
                    let mut w = self.unanswered_row(row, next_in);
                    w.found = Some(found.clone());
                    w.settled = !row.busy
                        && drift::settled_by_partner(
                            row.expect,
                            row.latest,
                            row.latest_failed,
                            finding,
                        );
                    return w;
                }
                let w = self.after_look(row, finding, products, &found);
                // Two cancelled targets on one site see the same plan back: one cancel.
                let cancels = w.drift.as_ref().is_some_and(|d| withdraws(d.request));
                if cancels && std::mem::replace(&mut cancelling, true) {
                    return self.unanswered_row(row, self.settings.reconcile.confirm);
                }
                w
            })
            .collect()
    }

    /// One row looked at again after `next_in`, its memory unchanged.
    fn unanswered_row(&self, row: &WatchRow, next_in: Duration) -> CheckWrite {
        CheckWrite {
            id: row.id,
            target: row.target,
            memory: row.memory,
            before: row.memory,
            found: None,
            next_in,
            quick_left: row.quick_left,
            drift: None,
            forget: false,
            settled: false,
        }
    }

    /// The row's new memory, next look and (for a confirmed drift) what is recorded.
    fn after_look(
        &self,
        row: &WatchRow,
        finding: Finding,
        products: &[SiteProduct],
        found: &str,
    ) -> CheckWrite {
        let r = &self.settings.reconcile;
        // A plan our own cancel (another target's terminate on the site) removed is ours to
        // restore, whatever the setting says about plans cancelled outside WHMCS.
        let step = match drift::decide(finding, row.memory, r.reprovision || row.restore) {
            Step::Act(remedy) if !drift::remedy_fits(remedy, row.live, row.latest) => Step::Report,
            step => step,
        };
        let label = match step {
            Step::Fine => "fine",
            Step::Confirm | Step::Quiet => "suspect",
            _ => "drift",
        };
        metrics::counter!(m::RECONCILE_CHECKS, "result" => label).increment(1);
        let (next_in, quick_left) = self.next_look(row, step);
        let memory = remember(row.memory, finding, step);
        let drift = self.drift_write(row, (step, finding), products, found);
        if drift.is_some() {
            tracing::warn!(target = %row.target, site = %row.site, expected = row.expect.as_str(), plan = %row.plan, found, ?step, "drift between WHMCS and the partner");
            let kind = finding.as_str();
            let done = drift.as_ref().map_or("reported", |d| done_label(d.request));
            metrics::counter!(m::DRIFTS, "kind" => kind, "done" => done).increment(1);
        }
        let forget = row.expect == Expect::Absent
            && step == Step::Fine
            && quick_left == 0
            && u64::try_from(row.age_secs).unwrap_or(0) > r.keep_absent.as_secs();
        CheckWrite {
            id: row.id,
            target: row.target,
            memory,
            before: row.memory,
            found: Some(found.to_owned()),
            next_in,
            quick_left,
            drift,
            forget,
            settled: false,
        }
    }

    /// When to look next: the next quick step while some are left (sooner when a drift
    /// needs confirming), else the confirmation wait or the slow pass (±10 %).
    fn next_look(&self, row: &WatchRow, step: Step) -> (Duration, u8) {
        let r = &self.settings.reconcile;
        let quick = &r.schedule.quick;
        let confirming = step == Step::Confirm;
        if row.quick_left > 0 && !quick.is_empty() {
            let at = quick.len().saturating_sub(usize::from(row.quick_left));
            let gap = quick[at.min(quick.len() - 1)]
                .saturating_sub(quick[at.saturating_sub(1).min(quick.len() - 1)]);
            let gap = if confirming { gap.min(r.confirm) } else { gap };
            return (gap, row.quick_left - 1);
        }
        if confirming {
            return (r.confirm, 0);
        }
        (r.schedule.pass.mul_f64(0.9 + 0.2 * fastrand::f64()), 0)
    }

    /// The drift to record for a step that reports or acts.
    fn drift_write(
        &self,
        row: &WatchRow,
        (step, finding): (Step, Finding),
        products: &[SiteProduct],
        found: &str,
    ) -> Option<DriftWrite> {
        let (request, holds) = match step {
            Step::Act(Remedy::Cancel) => {
                let back = products
                    .iter()
                    .filter(|p| p.ours)
                    .filter_map(|p| p.plan)
                    .find(|q| drift::takes_place_of(q, &row.plan));
                (
                    Some(drift::remedy_request(Remedy::Cancel, row.latest)),
                    back.map(str::to_owned),
                )
            }
            Step::Act(Remedy::Provision) => (
                Some(drift::remedy_request(Remedy::Provision, row.latest)),
                None,
            ),
            Step::Report | Step::GiveUp => (None, None),
            Step::Fine | Step::Confirm | Step::Quiet => return None,
        };
        let gave_up = step == Step::GiveUp;
        let words = messages::drift(row.target, &row.site, &row.plan, finding, found);
        let done = if gave_up {
            format!(
                "left for an admin: it drifted again after {} remedies",
                row.memory.drifts
            )
        } else {
            done_label(request).to_owned()
        };
        Some(DriftWrite {
            site: row.site.clone(),
            expected: words.expected,
            found: found.to_owned(),
            activity: format!(
                "{} {}",
                words.activity,
                messages::drift_done(request, gave_up)
            ),
            done,
            request,
            holds,
            account: row.account,
        })
    }
}

/// What a row's expectation is, for the rules.
fn expectation(row: &WatchRow) -> Expectation<'_> {
    Expectation {
        plan: &row.plan,
        expect: row.expect,
    }
}

/// The products of ours the answer listed, as the partner spelled them ("none").
fn listed(products: &[SiteProduct]) -> String {
    let ours: Vec<&str> = products
        .iter()
        .filter(|p| p.ours)
        .map(|p| p.slug.as_str())
        .collect();
    if ours.is_empty() {
        "none".to_owned()
    } else {
        ours.join(", ")
    }
}

/// The row's memory after a look.
fn remember(before: Memory, now: Finding, step: Step) -> Memory {
    let drifts = before.drifts;
    match step {
        Step::Fine => Memory {
            seen: Finding::Fine,
            times: 0,
            drifts,
        },
        Step::Confirm => Memory {
            seen: now,
            times: 1,
            drifts,
        },
        Step::Act(_) => Memory {
            seen: now,
            times: 2,
            drifts: drifts.saturating_add(1),
        },
        Step::Report | Step::GiveUp => Memory {
            seen: now,
            times: 2,
            drifts,
        },
        Step::Quiet => Memory {
            seen: now,
            times: before.times.saturating_add(1),
            drifts,
        },
    }
}

/// What was done, in the drift list's words.
fn done_label(request: Option<RequestKind>) -> &'static str {
    match request.and_then(RequestKind::action) {
        Some(a) if a.withdraws() => "cancel requested",
        Some(a) if a.may_provide() => "provision requested",
        _ => "reported",
    }
}

/// Whether a remedy's request takes the plan away (a terminate, a suspend).
fn withdraws(request: Option<RequestKind>) -> bool {
    request
        .and_then(RequestKind::action)
        .is_some_and(|a| a.withdraws())
}
