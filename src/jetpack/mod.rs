//! The Jetpack partner API client: OAuth token per partner account (fetched once, cached,
//! refreshed once when refused), provision, cancel and status calls with connect and request
//! timeouts. It never logs or returns the client secret or a bearer token; the request/response
//! records it hands back for WHMCS's module log are masked. This module owns the client and
//! its calls; the token cache is `token`, HTTP plumbing and masking `transport`, reading
//! the API's answers `response` (status slugs in every spelling: `slugs`), and the per-account breaker and rate limit `breaker` (the
//! state machines) and `guard` (the client's map of them).

mod breaker;
pub(crate) mod guard;
mod mask;
mod response;
mod slugs;
mod token;
pub(crate) mod transport;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::defaults;
use crate::domain::{Plan, SiteUrl};
use crate::metrics as m;
pub use breaker::BreakerPolicy;
use guard::Guards;
pub use guard::{Held, HeldBy, Permit, Politeness};
pub use mask::mask_all;
use mask::mask_failure;
pub use response::{
    CancelOutcome, Failure, ProvisionOutcome, SiteProduct, classify_cancel, classify_provision,
    classify_status, describe_error, parse_retry_after,
};
pub use slugs::plan_of_slug;
use token::{AccountKey, TokenSlot};
use transport::{encode_form, exchange, path_segment, read_answer};

/// A partner account's credentials (product configoption1 / configoption2).
#[derive(Clone)]
pub struct Credentials {
    /// Partner client id.
    pub client_id: String,
    /// Partner client secret; never printed.
    pub client_secret: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"********")
            .finish()
    }
}

/// One HTTP exchange, masked, for WHMCS's module log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// `tblmodulelog.action`-style name (`token`, `provision`, `cancel`, `status`).
    pub action: &'static str,
    /// Method, URL and form fields; secrets replaced by `*`.
    pub request: String,
    /// Status line and body; secrets replaced by `*`.
    pub response: String,
}

/// Timeouts for the partner API.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TCP/TLS connect timeout (about 10 s).
    pub connect: Duration,
    /// Whole request timeout (about 120 s: /provision calls back into the customer's site).
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: defaults::API_TIMEOUT.value,
        }
    }
}

/// Asked right before every acting call (provision, cancel): may a call that can take up to
/// `longest` start now? The worker answers from its lease, so a job taken over by another
/// worker never has two acting calls in flight.
pub trait ActingGate: Sync {
    /// `Ok(())` to send the call; `Err(reason)` to stop before it.
    fn permit(&self, longest: Duration) -> impl Future<Output = Result<(), String>> + Send;
}

/// A gate that always permits: for callers that hold no lease (the doctor, tests).
pub struct NoGate;

impl ActingGate for NoGate {
    async fn permit(&self, _longest: Duration) -> Result<(), String> {
        Ok(())
    }
}

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an http(s) URL.
    #[error("partner API base URL {0:?} is not an http(s) URL")]
    BadBase(String),
    /// reqwest could not build its client.
    #[error("building the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// Turns (status, body, Retry-After) into an endpoint's outcome.
type Classifier<T> = fn(u16, &[u8], Option<Duration>) -> Result<T, Failure>;

/// The partner API client. Cheap to share (`Arc` it); tokens are cached per account.
pub struct JetpackClient {
    http: reqwest::Client,
    base: String,
    timeouts: Timeouts,
    tokens: Mutex<HashMap<AccountKey, TokenSlot>>,
    guards: Guards,
}

impl std::fmt::Debug for JetpackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetpackClient")
            .field("base", &self.base)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// The HTTP client both partner APIs use: `base` checked (an http(s) URL with a host), the
/// timeouts, the worker's user agent.
pub(crate) fn http_client(base: &str, timeouts: Timeouts) -> Result<reqwest::Client, ClientError> {
    let parsed = url::Url::parse(base).map_err(|_| ClientError::BadBase(base.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ClientError::BadBase(base.to_owned()));
    }
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .user_agent(concat!("jetpack-worker/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ClientError::Build)
}

impl JetpackClient {
    /// A client for `base` (e.g. `https://public-api.wordpress.com`).
    pub fn new(base: &str, timeouts: Timeouts) -> Result<JetpackClient, ClientError> {
        let http = http_client(base, timeouts)?;
        Ok(JetpackClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            timeouts,
            tokens: Mutex::new(HashMap::new()),
            guards: Guards::new(Politeness::default()),
        })
    }

    /// The same client with this per-account rate limit and breaker (by default: no rate
    /// limit, [`BreakerPolicy::DEFAULT`]).
    pub fn with_politeness(mut self, politeness: Politeness) -> JetpackClient {
        self.guards = Guards::new(politeness);
        self
    }

    /// Asked before a job's first call: may it call the partner API for this account now?
    /// `Err` says how long to wait (the account's breaker is open, or its rate limit would
    /// keep the job waiting too long). Keep the permit for the whole attempt.
    pub fn admit(&self, creds: &Credentials) -> Result<Permit<'_>, Held> {
        self.guards.admit(&creds.client_id)
    }

    /// The partner accounts (client ids) on hold now: their jobs are refused by
    /// [`JetpackClient::admit`] ([`HeldBy::Account`]) until they leave the set.
    pub fn set_held_accounts(&self, accounts: std::collections::HashSet<String>) {
        self.guards.set_held(accounts);
    }

    /// The longest one request can take: its whole-request timeout, which includes
    /// connecting.
    pub fn longest_call(&self) -> Duration {
        self.timeouts.request
    }

    /// The base URL it calls (the Licensing API lives on the same host).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Its timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Its rate limit and breaker policy.
    pub fn politeness(&self) -> Politeness {
        self.guards.politeness()
    }

    /// Sends one authorised request, refreshing the token once if the API refuses it. An
    /// acting call asks `gate` first, every time it is sent.
    async fn authorised<T>(
        &self,
        creds: &Credentials,
        log: &mut Vec<Exchange>,
        call: Call<'_>,
        classify: Classifier<T>,
        gate: &impl ActingGate,
    ) -> Result<T, Failure> {
        let mut refreshed = false;
        loop {
            let token = match self.token(creds, log).await {
                Ok(token) => token,
                Err(f) => return self.recorded(creds, Err(f)),
            };
            self.guards.pace(&creds.client_id).await;
            if call.may_act {
                gate.permit(self.longest_call())
                    .await
                    .map_err(|reason| Failure::Stopped { message: reason })?;
            }
            let result = self.send(creds, &token, &call, classify, log).await;
            self.guards.record(&creds.client_id, &result);
            match result {
                Err(Failure::TokenRefused { message }) => {
                    self.forget_token(creds, &token).await;
                    if refreshed {
                        return Err(Failure::Permanent {
                            message: format!(
                                "{message} even after fetching a new one; check the partner \
                                 account's credentials and API scope"
                            ),
                        });
                    }
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    /// Sends `call` once with `token`: logs the exchange (masked) in `log`, records its
    /// latency, and classifies the answer.
    async fn send<T>(
        &self,
        creds: &Credentials,
        token: &SecretString,
        call: &Call<'_>,
        classify: Classifier<T>,
        log: &mut Vec<Exchange>,
    ) -> Result<T, Failure> {
        let mut builder = self
            .http
            .request(call.method.clone(), &call.url)
            .bearer_auth(token.expose_secret());
        if let Some(form) = call.form {
            builder = builder.form(form);
        }
        let request = format!(
            "{} {}\nAuthorization: Bearer {}\n{}",
            call.method,
            call.url,
            "*".repeat(token.expose_secret().len()),
            call.form.map(encode_form).unwrap_or_default()
        );
        let started = std::time::Instant::now();
        let answer = read_answer(builder.send().await, call.may_act).await;
        let elapsed = started.elapsed().as_secs_f64();
        let secrets = [token.expose_secret(), creds.client_secret.expose_secret()];
        let result = match answer {
            Ok(a) => {
                log.push(exchange(
                    call.action,
                    request,
                    format!("HTTP {}\n{}", a.status, String::from_utf8_lossy(&a.body)),
                    &secrets,
                ));
                classify(a.status, &a.body, a.retry_after)
            }
            Err(f) => {
                log.push(exchange(call.action, request, f.to_string(), &secrets));
                Err(f)
            }
        }
        .map_err(|f| mask_failure(f, &secrets));
        let ended = outcome(&result);
        metrics::histogram!(m::API_LATENCY, "endpoint" => call.action, "outcome" => ended)
            .record(elapsed);
        result
    }

    /// Tells the account's breaker how a call went, and hands the result on.
    fn recorded<T>(&self, creds: &Credentials, result: Result<T, Failure>) -> Result<T, Failure> {
        self.guards.record(&creds.client_id, &result);
        result
    }

    /// `POST /rest/v1.3/jpphp/provision` with `plan`, `siteurl`, `local_user`, `force_register`;
    /// sent only once `gate` permits it.
    pub async fn provision(
        &self,
        creds: &Credentials,
        order: (&Plan, &SiteUrl, &str),
        log: &mut Vec<Exchange>,
        gate: &impl ActingGate,
    ) -> Result<ProvisionOutcome, Failure> {
        let (plan, site, local_user) = order;
        let form = [
            ("plan", plan.as_str()),
            ("siteurl", site.as_str()),
            ("local_user", local_user),
            ("force_register", "1"),
        ];
        let call = Call {
            action: "provision",
            method: reqwest::Method::POST,
            url: format!("{}/rest/v1.3/jpphp/provision", self.base),
            form: Some(&form),
            may_act: true,
        };
        self.authorised(creds, log, call, classify_provision, gate)
            .await
    }

    /// `POST /rest/v1.3/jpphp/{site with / as ::}/partner-cancel`; names the plan for
    /// standalone products, which the API requires. Sent only once `gate` permits it.
    pub async fn cancel(
        &self,
        creds: &Credentials,
        target: (&SiteUrl, Option<&Plan>),
        log: &mut Vec<Exchange>,
        gate: &impl ActingGate,
    ) -> Result<CancelOutcome, Failure> {
        let (site, plan) = target;
        let standalone = plan.filter(|p| p.is_standalone_product());
        let form_owned = standalone.map(|p| [("plan", p.as_str())]);
        let call = Call {
            action: "cancel",
            method: reqwest::Method::POST,
            url: format!(
                "{}/rest/v1.3/jpphp/{}/partner-cancel",
                self.base,
                path_segment(&site.path_id())
            ),
            form: form_owned.as_ref().map(|f| &f[..]),
            may_act: true,
        };
        self.authorised(creds, log, call, classify_cancel, gate)
            .await
    }

    /// `GET /rest/v1.4/jpphp/{site}/status`: the site's products, to learn whether a provision
    /// whose answer was lost took effect.
    pub async fn status(
        &self,
        creds: &Credentials,
        site: &SiteUrl,
        log: &mut Vec<Exchange>,
    ) -> Result<Vec<SiteProduct>, Failure> {
        let call = Call {
            action: "status",
            method: reqwest::Method::GET,
            url: format!(
                "{}/rest/v1.4/jpphp/{}/status",
                self.base,
                path_segment(&site.path_id())
            ),
            form: None,
            may_act: false,
        };
        self.authorised(creds, log, call, classify_status, &NoGate)
            .await
    }
}

/// How a call ended, as the latency histogram labels it.
fn outcome<T>(result: &Result<T, Failure>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Failure::Transient { .. }) => "transient",
        Err(Failure::Permanent { .. } | Failure::Downgrade { .. }) => "permanent",
        Err(Failure::TokenRefused { .. }) => "token_refused",
        Err(Failure::Stopped { .. }) => "stopped",
    }
}

/// One partner-API request, before the token is added.
struct Call<'a> {
    action: &'static str,
    method: reqwest::Method,
    url: String,
    form: Option<&'a [(&'a str, &'a str)]>,
    may_act: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_replaces_every_occurrence_and_skips_empty() {
        assert_eq!(
            mask_all("a s3cr3t b s3cr3t", &["s3cr3t", ""]),
            "a ****** b ******"
        );
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let c = Credentials {
            client_id: "id".into(),
            client_secret: SecretString::from("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn cancel_path_keeps_double_colons() {
        assert_eq!(path_segment("example.com::blog"), "example.com::blog");
        assert_eq!(path_segment("a.example:8080::x"), "a.example:8080::x");
    }

    #[test]
    fn bad_base_is_rejected() {
        assert!(JetpackClient::new("ftp://x", Timeouts::default()).is_err());
        assert!(JetpackClient::new("not a url", Timeouts::default()).is_err());
    }
}
