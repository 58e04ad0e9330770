//! Issuing exactly once, although `POST /license` is not idempotent (every call bills a
//! licence). A live licence of the product is kept. Otherwise the intent is committed first
//! (`issuing`, fenced by the lease), then the call is sent once. When its answer is lost
//! (timeout, reset, 5xx, a worker killed mid-call), the row stays `issuing`: the next attempt
//! waits for the answer to settle, then looks the licence up in the partner portal's list
//! (`GET /licenses`, a licence of the product issued since the intent that no row holds). A
//! token that may not list (or an answer that cannot be told apart) ends the job failed with
//! the row `unknown`, for an admin to record the key or issue another; a plain Retry then
//! looks again and never issues.

use std::time::Duration;

use chrono::NaiveDateTime;

use super::words;
use super::{Attempt, Holding, activate};
use crate::catalogue::LicenceState;
use crate::defaults;
use crate::licensing::{LicensingError, Listed, parse_time};
use crate::store::{Finish, LicenceRow, LicenceWrite, WhmcsWrites};
use crate::worker::outcome::{Outcome, module_log_action};

/// What became of a licence in doubt (`issuing` or `unknown`).
pub(super) enum Settled {
    /// The lost licence was found and recorded.
    Found(Holding),
    /// No licence was issued for it: the row is `failed`.
    NotThere,
    /// It could not be looked up: the row is `unknown` (issued at the time given, maybe).
    Undecided {
        /// The intent's time, `HH:MM:SS` UTC.
        at: String,
    },
}

/// What the portal's list says about a lost licence.
enum Looked {
    Found(Listed),
    NotThere,
    Undecided(String),
}

impl Attempt<'_, '_> {
    /// Create, and Unsuspend: the product's licence (issued once), attached when the setting
    /// says so.
    pub(super) async fn provide(&mut self) -> Result<Finish, Outcome> {
        let product = self.order.product.clone();
        let held = self.holding(&product).await?;
        let held = self.attached(held).await?;
        let site = held.attached.as_deref();
        let text = words::details_key(&held.key, site);
        let line = if held.fresh {
            words::activity_issued(self.job.target, &held.product, site)
        } else {
            words::activity_held(self.job.target, &held.product, site)
        };
        Ok(self.done(text, line, activate(self.order)))
    }

    /// The target's live licence of `product`: the one it holds, a lost one found, or a new one.
    pub(super) async fn holding(&mut self, product: &str) -> Result<Holding, Outcome> {
        if let Some(held) = self
            .latest(product, |l| l.state.is_live())
            .and_then(Holding::of)
        {
            return Ok(held);
        }
        if let Some(doubt) = self.latest(product, |l| l.state.in_doubt()).cloned() {
            match self.settle_doubt(&doubt).await? {
                Settled::Found(held) => return Ok(held),
                Settled::NotThere => {}
                Settled::Undecided { at } => {
                    return Err(self.fail(words::lost_answer(self.job.target, product, &at)));
                }
            }
        }
        self.issue_new(product).await
    }

    /// Settles a licence in doubt: waits for a lost answer to land, then looks it up.
    pub(super) async fn settle_doubt(&mut self, doubt: &LicenceRow) -> Result<Settled, Outcome> {
        let age = Duration::from_secs(doubt.intent_age.unwrap_or(0).max(0).unsigned_abs());
        if doubt.state == LicenceState::Issuing && age < self.settle() {
            return Err(self.wait(self.settle() - age));
        }
        let at = doubt
            .intent_time
            .clone()
            .unwrap_or_else(|| "an unknown time".to_owned());
        match self.look_up(doubt).await? {
            Looked::Found(listed) => {
                let note = "found by GET /licenses after the issue's answer was lost".to_owned();
                let issued_at = listed.issued_at.map(|t| t.to_string());
                let write = LicenceWrite::Issued {
                    key: listed.key.clone(),
                    issued_at,
                    note,
                };
                if self.record(doubt.id, write).await? {
                    tracing::info!(job_id = %self.job.id, target = %self.job.target, licence = doubt.id,
                        "the licence whose issue answer was lost was found in the partner's list");
                    return Ok(Settled::Found(Holding {
                        id: doubt.id,
                        key: listed.key,
                        product: doubt.product.clone(),
                        attached: None,
                        fresh: true,
                    }));
                }
                Ok(Settled::Undecided { at })
            }
            Looked::NotThere => {
                let note = "GET /licenses shows no licence issued since the intent".to_owned();
                self.record(doubt.id, LicenceWrite::NotIssued { note })
                    .await?;
                Ok(Settled::NotThere)
            }
            Looked::Undecided(why) => {
                if doubt.state == LicenceState::Issuing {
                    let note =
                        format!("the issue's answer was lost and it cannot be looked up: {why}");
                    self.record(doubt.id, LicenceWrite::Unknown { note })
                        .await?;
                }
                tracing::warn!(job_id = %self.job.id, target = %self.job.target, licence = doubt.id,
                    reason = %why, "a licence whose issue answer was lost cannot be looked up; an admin decides");
                Ok(Settled::Undecided { at })
            }
        }
    }

    /// Asks the portal's list for the licence of `doubt`: one of its product, issued since
    /// the intent (less the clock-skew allowance and the API's whole seconds), that no row
    /// holds.
    async fn look_up(&mut self, doubt: &LicenceRow) -> Result<Looked, Outcome> {
        let Some(intent) = doubt.intent_at.as_deref().and_then(parse_time) else {
            return Ok(Looked::Undecided("the intent has no time".to_owned()));
        };
        let token = &self.order.token;
        let listed = match self
            .api
            .licences(token, &doubt.product, &mut self.log)
            .await
        {
            Ok(listed) => listed,
            Err(LicensingError::Forbidden { message }) => return Ok(Looked::Undecided(message)),
            Err(e) => return Err(self.failure(e)),
        };
        let since = intent - (defaults::CLOCK_SKEW + Duration::from_secs(1));
        let mut free = Vec::new();
        for l in listed
            .into_iter()
            .filter(|l| candidate(l, &doubt.product, since))
        {
            match self.worker.store.licence_key_held(&l.key, doubt.id).await {
                Ok(false) => free.push(l),
                Ok(true) => {}
                Err(e) => return Err(Outcome::Abandon(format!("reading the licence ledger: {e}"))),
            }
        }
        Ok(match free.len() {
            0 => Looked::NotThere,
            1 => Looked::Found(free.remove(0)),
            n => Looked::Undecided(format!(
                "{n} licences of {} were issued since, which no row holds; which one is this \
                 target's cannot be told",
                doubt.product
            )),
        })
    }

    /// Commits the intent, then issues once.
    async fn issue_new(&mut self, product: &str) -> Result<Holding, Outcome> {
        let store = &self.worker.store;
        let intent = match store
            .licence_intent(self.job, product, self.order.product_id)
            .await
        {
            Ok(Some(row)) => row,
            Ok(None) => {
                return Err(Outcome::Abandon(
                    "the lease was lost before the licence intent".into(),
                ));
            }
            Err(e) => {
                return Err(Outcome::Abandon(format!(
                    "recording the licence intent: {e}"
                )));
            }
        };
        let token = &self.order.token;
        match self
            .api
            .issue(token, product, &mut self.log, self.lease)
            .await
        {
            Ok(licence) => {
                let write = LicenceWrite::Issued {
                    key: licence.key.clone(),
                    issued_at: licence.issued_at.map(|t| t.to_string()),
                    note: "issued".to_owned(),
                };
                if !self.record(intent.id, write).await.inspect_err(|_| {
                    tracing::error!(job_id = %self.job.id, target = %self.job.target, key = %licence.key,
                        "a licence was issued but could not be recorded: record it by hand if the next attempt cannot find it");
                })? {
                    return Err(Outcome::Abandon("the licence row moved on while it was issued".into()));
                }
                Ok(Holding {
                    id: intent.id,
                    key: licence.key,
                    product: product.to_owned(),
                    attached: None,
                    fresh: true,
                })
            }
            Err(
                e @ LicensingError::Transient {
                    outcome_unknown: true,
                    ..
                },
            ) => {
                tracing::warn!(job_id = %self.job.id, target = %self.job.target, licence = intent.id,
                    error = %e, "the issue's answer was lost; it is looked up, never repeated blindly");
                Err(self.failure(e))
            }
            Err(e) => {
                let note = format!("not issued: {}", e.message());
                self.record(intent.id, LicenceWrite::NotIssued { note })
                    .await?;
                Err(self.failure(e))
            }
        }
    }

    /// With *Attach to the site* on, attaches `held` to the order's site (once).
    pub(super) async fn attached(&mut self, mut held: Holding) -> Result<Holding, Outcome> {
        let Some(site) = self.order.site.as_ref().filter(|_| self.order.attach) else {
            return Ok(held);
        };
        if held.attached.as_deref() == Some(site.as_str()) {
            return Ok(held);
        }
        let token = &self.order.token;
        let call = (held.key.as_str(), site.as_str());
        match self
            .api
            .attach(token, call, &mut self.log, self.lease)
            .await
        {
            Ok(_) => {
                let write = LicenceWrite::Attached {
                    site: site.as_str().to_owned(),
                };
                self.record(held.id, write).await?;
                held.attached = Some(site.as_str().to_owned());
                Ok(held)
            }
            Err(e @ LicensingError::Transient { .. }) | Err(e @ LicensingError::Stopped { .. }) => {
                Err(self.failure(e))
            }
            Err(e) => {
                let message =
                    words::not_attached(self.job.target, &held.key, site.as_str(), e.message());
                Err(self.fail(message))
            }
        }
    }

    /// Not yet: a lost answer is given time to land before it is looked up (no call made).
    fn wait(&mut self, left: Duration) -> Outcome {
        let message = format!(
            "the answer to an earlier licence issue was lost; it is looked up in {}s, once a \
             late effect has landed",
            left.as_secs()
        );
        let whmcs = WhmcsWrites {
            module_log_action: module_log_action(self.job.action),
            ..WhmcsWrites::default()
        };
        Finish::retry_in(left, message, whmcs).into()
    }
}

/// Whether a listed licence can be the lost one: of the product, live, issued since `since`.
fn candidate(l: &Listed, product: &str, since: NaiveDateTime) -> bool {
    let of_product = l.product == product || l.key.starts_with(&format!("{product}_"));
    of_product && !l.revoked && l.issued_at.is_some_and(|t| t >= since)
}
