//! The Jetpack Licensing API client (`/wpcom/v2/jetpack-licensing` on the partner API's host):
//! issue, look up, revoke, attach and detach licences, list them (the partner portal's
//! `GET /licenses`, which only some tokens may call) and the product families. The same
//! conventions as the partner API client (`jetpack`): connect and request timeouts, answers
//! read up to a cap, a per-token breaker and rate limit, acting calls sent only once the
//! caller's lease gate permits them, and exchanges for WHMCS's module log with the bearer
//! token masked in every encoding. Its one error is [`LicensingError`]; its answers are read
//! in `answer`.

mod answer;
mod error;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::jetpack::guard::Guards;
use crate::jetpack::http_client;
use crate::jetpack::transport::{exchange, read_answer};
use crate::jetpack::{
    ActingGate, ClientError, Exchange, Held, JetpackClient, NoGate, Permit, Politeness, Timeouts,
};
use crate::metrics as m;
pub use answer::{Licence, Listed, Product, parse_time};
pub use error::LicensingError;

/// Where the Licensing API lives on the partner API's host.
pub const PATH: &str = "/wpcom/v2/jetpack-licensing";

/// A Licensing API bearer token (product configoption10). Never printed: its `Debug` is
/// masked, and the breaker knows it by a fingerprint.
#[derive(Clone)]
pub struct LicenceToken(SecretString);

impl LicenceToken {
    /// Wraps a token as stored (trimmed); None when empty.
    pub fn new(token: &str) -> Option<LicenceToken> {
        let token = token.trim();
        (!token.is_empty()).then(|| LicenceToken(SecretString::from(token.to_owned())))
    }

    /// A name for the token that reveals nothing of it (for the breaker and logs): `token-`
    /// and 8 hex digits of a hash.
    pub fn fingerprint(&self) -> String {
        let mut h: u32 = 0x811c_9dc5;
        for b in self.0.expose_secret().bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        format!("token-{h:08x}")
    }

    fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for LicenceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LicenceToken({})", self.fingerprint())
    }
}

/// The Licensing API client. Cheap to share (`Arc` it).
pub struct LicensingClient {
    http: reqwest::Client,
    base: String,
    timeouts: Timeouts,
    guards: Guards,
}

impl std::fmt::Debug for LicensingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicensingClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Reads a successful answer's body; None when it does not have the shape.
type Reader<T> = fn(&[u8]) -> Option<T>;

/// One request, before the token is added.
struct Call {
    action: &'static str,
    /// What it tries to do, for messages.
    what: &'static str,
    method: reqwest::Method,
    url: String,
    json: Option<serde_json::Value>,
    may_act: bool,
}

impl LicensingClient {
    /// A client for the Licensing API on `host_base` (e.g. `https://public-api.wordpress.com`).
    pub fn new(
        host_base: &str,
        timeouts: Timeouts,
        politeness: Politeness,
    ) -> Result<LicensingClient, ClientError> {
        let http = http_client(host_base, timeouts)?;
        Ok(LicensingClient {
            http,
            base: format!("{}{PATH}", host_base.trim_end_matches('/')),
            timeouts,
            guards: Guards::new(politeness),
        })
    }

    /// A client beside the partner API client: the same host, timeouts and politeness.
    pub fn beside(api: &JetpackClient) -> Result<LicensingClient, ClientError> {
        LicensingClient::new(api.base(), api.timeouts(), api.politeness())
    }

    /// The longest one request can take.
    pub fn longest_call(&self) -> Duration {
        self.timeouts.request
    }

    /// May a job using `token` call now? (Its breaker and rate limit.) Keep the permit for
    /// the whole attempt.
    pub fn admit(&self, token: &LicenceToken) -> Result<Permit<'_>, Held> {
        self.guards.admit(&token.fingerprint())
    }

    /// `POST /license?product=…`: issues (and bills) a new licence every time. Sent only once
    /// `gate` permits it.
    pub async fn issue(
        &self,
        token: &LicenceToken,
        product: &str,
        log: &mut Vec<Exchange>,
        gate: &impl ActingGate,
    ) -> Result<Licence, LicensingError> {
        let call = self
            .call("licence_issue", reqwest::Method::POST, "/license", true)
            .query(&[("product", product)]);
        self.send(Some(token), call, answer::licence, log, gate)
            .await
    }

    /// `GET /license?license_key=…`.
    pub async fn licence(
        &self,
        token: &LicenceToken,
        key: &str,
        log: &mut Vec<Exchange>,
    ) -> Result<Licence, LicensingError> {
        let call = self
            .call("licence_get", reqwest::Method::GET, "/license", false)
            .query(&[("license_key", key)]);
        self.send(Some(token), call, answer::licence, log, &NoGate)
            .await
    }

    /// `DELETE /license?license_key=…`: revoked for good. Sent only once `gate` permits it.
    pub async fn revoke(
        &self,
        token: &LicenceToken,
        key: &str,
        log: &mut Vec<Exchange>,
        gate: &impl ActingGate,
    ) -> Result<Licence, LicensingError> {
        let call = self
            .call("licence_revoke", reqwest::Method::DELETE, "/license", true)
            .query(&[("license_key", key)]);
        self.send(Some(token), call, answer::licence, log, gate)
            .await
    }

    /// `POST /license/{key}/site` with `{"site": …}` (allowlisted partners only).
    pub async fn attach(
        &self,
        token: &LicenceToken,
        (key, site): (&str, &str),
        log: &mut Vec<Exchange>,
        gate: &impl ActingGate,
    ) -> Result<Licence, LicensingError> {
        let path = format!("/license/{}/site", segment(key));
        let mut call = self.call("licence_attach", reqwest::Method::POST, &path, true);
        call.json = Some(serde_json::json!({ "site": site }));
        self.send(Some(token), call, answer::licence, log, gate)
            .await
    }

    /// `DELETE /license/{key}/site?cancellation_email=0`: the key may then be attached again.
    pub async fn detach(
        &self,
        token: &LicenceToken,
        key: &str,
        log: &mut Vec<Exchange>,
        gate: &impl ActingGate,
    ) -> Result<Licence, LicensingError> {
        let path = format!("/license/{}/site", segment(key));
        let call = self
            .call("licence_detach", reqwest::Method::DELETE, &path, true)
            .query(&[("cancellation_email", "0")]);
        self.send(Some(token), call, answer::licence, log, gate)
            .await
    }

    /// The partner portal's `GET /licenses`: the token's 100 most recently issued licences
    /// whose key names `product`. [`LicensingError::Forbidden`] for a token that may not list.
    pub async fn licences(
        &self,
        token: &LicenceToken,
        product: &str,
        log: &mut Vec<Exchange>,
    ) -> Result<Vec<Listed>, LicensingError> {
        let call = self
            .call("licence_list", reqwest::Method::GET, "/licenses", false)
            .query(&[
                ("search", product),
                ("sort_field", "issued_at"),
                ("sort_direction", "desc"),
                ("per_page", "100"),
                ("page", "1"),
            ]);
        self.send(Some(token), call, answer::listing, log, &NoGate)
            .await
    }

    /// `GET /product-families` (no token): every product on sale.
    pub async fn product_families(
        &self,
        log: &mut Vec<Exchange>,
    ) -> Result<Vec<Product>, LicensingError> {
        let call = self.call(
            "product_families",
            reqwest::Method::GET,
            "/product-families",
            false,
        );
        self.send(None, call, answer::families, log, &NoGate).await
    }

    /// `GET /partner/product-families`: what this token's partner may sell (a 403 for a bad
    /// or disabled token).
    pub async fn partner_product_families(
        &self,
        token: &LicenceToken,
        log: &mut Vec<Exchange>,
    ) -> Result<Vec<Product>, LicensingError> {
        let path = "/partner/product-families";
        let call = self.call(
            "partner_product_families",
            reqwest::Method::GET,
            path,
            false,
        );
        self.send(Some(token), call, answer::families, log, &NoGate)
            .await
    }

    fn call(&self, action: &'static str, method: reqwest::Method, path: &str, act: bool) -> Call {
        Call {
            action,
            what: what_of(action),
            method,
            url: format!("{}{path}", self.base),
            json: None,
            may_act: act,
        }
    }

    /// Sends `call` once: the token's turn under its rate limit, the gate for an acting call,
    /// the exchange logged (masked) in `log`, the breaker told, the answer read by `read`.
    async fn send<T>(
        &self,
        token: Option<&LicenceToken>,
        call: Call,
        read: Reader<T>,
        log: &mut Vec<Exchange>,
        gate: &impl ActingGate,
    ) -> Result<T, LicensingError> {
        let account = token.map(LicenceToken::fingerprint);
        if let Some(account) = &account {
            self.guards.pace(account).await;
        }
        if call.may_act {
            gate.permit(self.longest_call())
                .await
                .map_err(|message| LicensingError::Stopped { message })?;
        }
        let secret = token.map(LicenceToken::expose).unwrap_or_default();
        let result = self.exchange_once(secret, &call, read, log).await;
        let result = result.map_err(|e| e.map_message(|m| crate::jetpack::mask_all(m, &[secret])));
        if let (Some(account), Err(e)) = (&account, &result) {
            if let Some(trouble) = e.trouble() {
                self.guards.record_call(account, trouble);
            }
        } else if let Some(account) = &account {
            self.guards.record_call(account, None);
        }
        result
    }

    async fn exchange_once<T>(
        &self,
        secret: &str,
        call: &Call,
        read: Reader<T>,
        log: &mut Vec<Exchange>,
    ) -> Result<T, LicensingError> {
        let mut builder = self.http.request(call.method.clone(), &call.url);
        if !secret.is_empty() {
            builder = builder.bearer_auth(secret);
        }
        if let Some(json) = &call.json {
            builder = builder.json(json);
        }
        let request = format!(
            "{} {}\nAuthorization: Bearer {}\n{}",
            call.method,
            call.url,
            "*".repeat(secret.len()),
            call.json
                .as_ref()
                .map(|j| j.to_string())
                .unwrap_or_default()
        );
        let started = std::time::Instant::now();
        let answer = read_answer(builder.send().await, call.may_act).await;
        let elapsed = started.elapsed().as_secs_f64();
        let (result, response) = match answer {
            Ok(a) => {
                let text = format!("HTTP {}\n{}", a.status, String::from_utf8_lossy(&a.body));
                let read = read(&a.body).filter(|_| (200..300).contains(&a.status));
                let (what, acts) = (call.what, call.may_act);
                let result = read
                    .ok_or_else(|| error::classify(what, a.status, &a.body, a.retry_after, acts));
                (result, text)
            }
            Err(f) => (Err(error::from_transport(f)), String::new()),
        };
        let response = match &result {
            Err(e) if response.is_empty() => e.to_string(),
            _ => response,
        };
        log.push(exchange(call.action, request, response, &[secret]));
        let ended = match &result {
            Ok(_) => "ok",
            Err(LicensingError::Transient { .. }) => "transient",
            Err(_) => "refused",
        };
        metrics::histogram!(m::API_LATENCY, "endpoint" => call.action, "outcome" => ended)
            .record(elapsed);
        result
    }
}

impl Call {
    /// The URL with these query parameters appended (percent-encoded).
    fn query(mut self, pairs: &[(&str, &str)]) -> Call {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.url = format!("{}?{encoded}", self.url);
        self
    }
}

/// A licence key as one path segment.
fn segment(key: &str) -> String {
    url::form_urlencoded::byte_serialize(key.as_bytes()).collect()
}

/// What a call tries to do, for messages.
fn what_of(action: &str) -> &'static str {
    match action {
        "licence_issue" => "issue a licence",
        "licence_get" => "look the licence up",
        "licence_revoke" => "revoke the licence",
        "licence_attach" => "attach the licence to the site",
        "licence_detach" => "detach the licence from the site",
        "licence_list" => "list the licences",
        _ => "list the product families",
    }
}
