//! The sandbox's state: issued tokens, per-site call counts, what each site holds (see
//! `products`), the status spelling, DNS resolvability, scripted replies, the live fault
//! settings and the log of acting calls
//! ([`ActingCall`]). [`SandboxState`] is a cheap
//! clone (an `Arc`) shared by the routes and by whoever inspects or steers the sandbox.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{SandboxConfig, Spelling, host_of};

/// The middle of every issued token: each character that a JSON, form or URL encoding
/// changes (`/`, `"`, `\\`, `+`, `%`, `#`, `&`, `=`, a space, non-ASCII), so a client that
/// masks only a token's raw form leaks it.
pub const HOSTILE_TOKEN_PART: &str = "/\"\\+%#&= é€";

/// How many calls of each kind a site received, and how many took effect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SiteCalls {
    /// `POST .../provision` requests naming this site.
    pub provision: u64,
    /// Provisions that took effect (recorded a plan).
    pub provision_ok: u64,
    /// `POST .../partner-cancel` requests for this site.
    pub cancel: u64,
    /// Cancels that removed a product (once per call, however many it removed).
    pub cancel_ok: u64,
    /// `GET .../status` requests for this site.
    pub status: u64,
}

/// A plan or product recorded at a site, in its short (provision form) slug.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SitePlan {
    /// The plan slug, e.g. `premium`.
    pub slug: String,
    /// Provisioned while the site's DNS did not resolve.
    pub pending: bool,
    /// Provisioned by us (the calling partner); false for another partner's or the
    /// customer's own purchase.
    pub ours: bool,
}

/// A reply queued for a site's next call (provision, cancel or status), consumed in order
/// before normal behaviour.
#[derive(Clone, Debug)]
pub enum ScriptedReply {
    /// Answer with this status and JSON body (and `Retry-After` when given), without acting.
    Status {
        /// HTTP status code.
        code: u16,
        /// Response body, sent as `application/json`.
        body: String,
        /// Value of the `Retry-After` header, if any.
        retry_after: Option<String>,
    },
    /// Drop the connection without a valid HTTP response, without acting.
    Reset,
    /// Perform the normal action, then drop the connection: the client never learns it worked.
    ActThenReset,
    /// Sleep the configured `hang`, then answer normally.
    Hang,
    /// Answer with exactly this status, `Content-Type` and body, without acting (a proxy's
    /// 502 with an HTML page, say).
    Raw {
        /// HTTP status code.
        code: u16,
        /// Value of the `Content-Type` header.
        content_type: String,
        /// Response body, sent as is.
        body: String,
    },
    /// Sleep this long (cut short when the sandbox shuts down), then act and answer normally.
    Slow(Duration),
    /// The call never answers in time: the connection is held without an answer until the
    /// client gives up (or the configured `hang` passes, then dropped), and the call's effect
    /// happens this long after it arrived, whether or not the client is still there. A
    /// status call only hangs.
    LandsLate(Duration),
}

/// Which acting endpoint an [`ActingCall`] was made to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActingKind {
    /// `POST /rest/v1.3/jpphp/provision`.
    Provision,
    /// `POST /rest/v1.3/jpphp/{site}/partner-cancel`.
    Cancel,
}

/// One call to an acting endpoint (provision or cancel), as logged by the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActingCall {
    /// Arrival order, from 0.
    pub seq: u64,
    /// The normalised site key.
    pub site: String,
    /// Which endpoint.
    pub kind: ActingKind,
    /// When the request reached the handler, before latency and the fault gate.
    pub started: Instant,
    /// When the handler finished its answer or was dropped; `None` while in flight.
    pub ended: Option<Instant>,
    /// Whether it took effect: a plan recorded (provision) or removed (cancel).
    pub acted: bool,
    /// The plan slug asked for: a provision's plan, or a cancel's `plan` field.
    pub plan: Option<String>,
}

impl ActingCall {
    /// Whether the two calls' `[started, ended]` intervals overlap; an unfinished call counts
    /// as ending at `now`.
    fn overlaps(&self, other: &ActingCall, now: Instant) -> bool {
        self.started < other.ended.unwrap_or(now) && other.started < self.ended.unwrap_or(now)
    }
}

/// Logs one acting call while it runs: created when the handler starts, it sets the call's
/// end when dropped, so a handler cancelled by a client disconnect still records its end.
#[derive(Debug)]
pub(crate) struct ActingGuard {
    state: SandboxState,
    seq: u64,
}

impl ActingGuard {
    /// The logged call's sequence number, for [`Data::mark_acted`].
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }
}

impl Drop for ActingGuard {
    fn drop(&mut self) {
        if let Some(call) = self.state.lock().acting_call_mut(self.seq) {
            call.ended = Some(Instant::now());
        }
    }
}

/// Which endpoint a call was made to, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    Provision,
    Cancel,
    Status,
}

#[derive(Debug)]
pub(crate) struct Data {
    pub(crate) credentials: Vec<(String, String)>,
    pub(crate) tokens: HashSet<String>,
    pub(crate) issued: Vec<String>,
    pub(crate) token_calls: u64,
    pub(crate) calls: BTreeMap<String, SiteCalls>,
    pub(crate) holdings: super::products::Holdings,
    pub(crate) spelling: Spelling,
    pub(crate) unresolvable: HashSet<String>,
    pub(crate) scripts: HashMap<String, VecDeque<ScriptedReply>>,
    pub(crate) acting: Vec<ActingCall>,
    pub(crate) latency: Duration,
    pub(crate) token_latency: Duration,
    pub(crate) fault_rate: f64,
    pub(crate) hang: Duration,
    pub(crate) fault_rng: fastrand::Rng,
    pub(crate) token_rng: fastrand::Rng,
    pub(crate) traffic: super::outage::Traffic,
    pub(crate) in_flight: super::concurrency::InFlight,
    pub(crate) licensing: super::licences::Licensing,
}

impl Data {
    fn acting_call_mut(&mut self, seq: u64) -> Option<&mut ActingCall> {
        self.acting.get_mut(usize::try_from(seq).ok()?)
    }

    /// Marks the acting call `seq` as having taken effect.
    pub(crate) fn mark_acted(&mut self, seq: u64) {
        if let Some(call) = self.acting_call_mut(seq) {
            call.acted = true;
        }
    }
}

#[derive(Debug)]
struct Inner {
    data: Mutex<Data>,
    stop: CancellationToken,
}

/// A handle on a running sandbox's state, for inspecting and controlling it.
#[derive(Clone, Debug)]
pub struct SandboxState {
    inner: Arc<Inner>,
}

fn clamp_rate(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

impl SandboxState {
    pub(crate) fn new(config: &SandboxConfig, stop: CancellationToken) -> Self {
        let data = Data {
            credentials: config.credentials.clone(),
            tokens: HashSet::new(),
            issued: Vec::new(),
            token_calls: 0,
            calls: BTreeMap::new(),
            holdings: Default::default(),
            spelling: config.spelling,
            unresolvable: config.unresolvable.iter().map(|h| host_of(h)).collect(),
            scripts: HashMap::new(),
            acting: Vec::new(),
            latency: config.latency,
            token_latency: config.token_latency,
            fault_rate: clamp_rate(config.fault_rate),
            hang: config.hang,
            fault_rng: config
                .seed
                .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
            token_rng: fastrand::Rng::new(),
            traffic: Default::default(),
            in_flight: Default::default(),
            licensing: super::licences::Licensing::new(config.licence_tokens.clone()),
        };
        Self {
            inner: Arc::new(Inner {
                data: Mutex::new(data),
                stop,
            }),
        }
    }

    /// Locks the data; a poisoned lock is still usable (every update is a plain assignment).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Data> {
        self.inner
            .data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Cancelled when the sandbox shuts down.
    pub(crate) fn stopping(&self) -> &CancellationToken {
        &self.inner.stop
    }

    /// Counts one call of `kind` for `site` (a normalised key).
    pub(crate) fn count(&self, site: &str, kind: CallKind) {
        let mut data = self.lock();
        let calls = data.calls.entry(site.to_owned()).or_default();
        match kind {
            CallKind::Provision => calls.provision += 1,
            CallKind::Cancel => calls.cancel += 1,
            CallKind::Status => calls.status += 1,
        }
    }

    /// Issues a new token when the credentials are accepted; counts the call either way.
    pub(crate) fn issue_token(&self, client_id: &str, client_secret: &str) -> Option<String> {
        let mut data = self.lock();
        data.token_calls += 1;
        let known = data
            .credentials
            .iter()
            .any(|(id, secret)| id == client_id && secret == client_secret);
        if !known {
            return None;
        }
        let mut hex = || -> String {
            (0..16)
                .map(|_| char::from_digit(data.token_rng.u32(0..16), 16).unwrap_or('0'))
                .collect()
        };
        let token = format!("sbx_{}{HOSTILE_TOKEN_PART}{}", hex(), hex());
        data.tokens.insert(token.clone());
        data.issued.push(token.clone());
        Some(token)
    }

    /// Every token issued so far, in order, revoked or not (for leak checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    /// Whether `token` was issued and not revoked.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.lock().tokens.contains(token)
    }

    /// The calls counted for `site` (a normalised key such as `example.com/blog`).
    pub fn calls(&self, site: &str) -> SiteCalls {
        let key = super::site_key(site);
        self.lock().calls.get(&key).cloned().unwrap_or_default()
    }

    /// The calls counted for every site, by key.
    pub fn all_calls(&self) -> BTreeMap<String, SiteCalls> {
        self.lock().calls.clone()
    }

    /// The number of `POST /oauth2/token` requests, whatever their outcome.
    pub fn token_calls(&self) -> u64 {
        self.lock().token_calls
    }

    /// Sets how the status endpoint spells `products[].slug`.
    pub fn set_spelling(&self, spelling: Spelling) {
        self.lock().spelling = spelling;
    }

    /// How the status endpoint spells `products[].slug`.
    pub fn spelling(&self) -> Spelling {
        self.lock().spelling
    }

    /// Makes `host`'s DNS resolve (or stop resolving).
    pub fn set_resolvable(&self, host: &str, resolvable: bool) {
        let host = host_of(host);
        let mut data = self.lock();
        if resolvable {
            data.unresolvable.remove(&host);
        } else {
            data.unresolvable.insert(host);
        }
    }

    /// False only for hosts in the unresolvable set.
    pub fn is_resolvable(&self, host: &str) -> bool {
        !self.lock().unresolvable.contains(&host_of(host))
    }

    /// Invalidates every issued token: their next use gets a 401.
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Sets the delay added before answering every `/rest/` request.
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// Sets the share (clamped to 0.0..=1.0) of `/rest/` requests that get a random fault.
    pub fn set_fault_rate(&self, rate: f64) {
        self.lock().fault_rate = clamp_rate(rate);
    }

    /// Queues replies for `site`'s next calls (provision, cancel or status), consumed in order
    /// before normal behaviour. `site` is normalised with [`super::site_key`].
    pub fn script(&self, site: &str, replies: Vec<ScriptedReply>) {
        let key = super::site_key(site);
        self.lock().scripts.entry(key).or_default().extend(replies);
    }

    /// Drops the replies still queued for `site`.
    pub fn clear_scripts(&self, site: &str) {
        let key = super::site_key(site);
        self.lock().scripts.remove(&key);
    }

    /// Takes the next scripted reply for `site`, if any.
    pub(crate) fn next_scripted(&self, site: &str) -> Option<ScriptedReply> {
        self.lock().scripts.get_mut(site)?.pop_front()
    }

    /// Logs the start of an acting call for `site` (a normalised key); the returned guard
    /// records its end when dropped.
    pub(crate) fn begin_acting(
        &self,
        site: &str,
        kind: ActingKind,
        plan: Option<String>,
    ) -> ActingGuard {
        let mut data = self.lock();
        let seq = data.acting.len() as u64;
        data.acting.push(ActingCall {
            seq,
            site: site.to_owned(),
            kind,
            started: Instant::now(),
            ended: None,
            acted: false,
            plan,
        });
        ActingGuard {
            state: self.clone(),
            seq,
        }
    }

    /// Every acting call (provision or cancel naming a site), in arrival order.
    pub fn acting_calls(&self) -> Vec<ActingCall> {
        self.lock().acting.clone()
    }

    /// Pairs of acting calls for the same site whose `[started, ended]` intervals overlap (an
    /// unfinished call counts as ending now), each pair in arrival order.
    pub fn overlapping_acting_calls(&self) -> Vec<(ActingCall, ActingCall)> {
        overlaps(&self.acting_calls())
    }

    /// [`SandboxState::overlapping_acting_calls`] for one site (normalised with
    /// [`super::site_key`]) only.
    pub fn overlapping_acting_calls_for(&self, site: &str) -> Vec<(ActingCall, ActingCall)> {
        let key = super::site_key(site);
        let calls: Vec<ActingCall> = self
            .lock()
            .acting
            .iter()
            .filter(|c| c.site == key)
            .cloned()
            .collect();
        overlaps(&calls)
    }

    /// How many acting calls for `site` (normalised with [`super::site_key`]) are in flight.
    pub fn in_flight_acting_calls(&self, site: &str) -> usize {
        let key = super::site_key(site);
        let data = self.lock();
        data.acting
            .iter()
            .filter(|call| call.site == key && call.ended.is_none())
            .count()
    }
}

/// Pairs of calls for the same site whose intervals overlap (an unfinished call ends now).
fn overlaps(calls: &[ActingCall]) -> Vec<(ActingCall, ActingCall)> {
    let now = Instant::now();
    let mut pairs = Vec::new();
    for (i, a) in calls.iter().enumerate() {
        for b in &calls[i + 1..] {
            if a.site == b.site && a.overlaps(b, now) {
                pairs.push((a.clone(), b.clone()));
            }
        }
    }
    pairs
}
