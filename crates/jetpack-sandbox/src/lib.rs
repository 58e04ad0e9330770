//! A sandbox of the Jetpack hosting-partner API (public-api.wordpress.com), served over real
//! HTTP on loopback only. It owns the server's lifecycle ([`Sandbox`]), its configuration
//! ([`SandboxConfig`]) and site-key normalisation ([`site_key`]); the state it keeps lives in
//! `state`, what each site holds (and held) in `products`, the routes in `routes` and
//! `control`, fault injection in `faults` and calls that land late in `late`, the status
//! slug's spelling in `spelling`, outages on demand and the requests' arrival log in
//! `outage`, the partner-API requests in flight at once (now and at most) in `concurrency`, and the
//! connection layer that can drop a connection mid-request in `conn`.
//!
//! Tests, the demo and the benchmarks point the worker at [`Sandbox::base_url`] instead of the
//! real API, then inspect and steer the sandbox through [`SandboxState`] (or, from scripts,
//! through the `/_sandbox/...` control endpoints).
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod concurrency;
mod conn;
mod control;
mod faults;
mod late;
mod licence_control;
mod licences;
mod licensing;
mod outage;
mod products;
mod routes;
mod spelling;
mod state;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_control;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_licences;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use licences::{IssuedLicence, LISTING_TOKEN, LicenceCalls, LicenceToken, PLAIN_TOKEN};
pub use licensing::BASE as LICENSING_BASE;
pub use outage::Outage;
pub use spelling::{Spelling, status_slug};
pub use state::{
    ActingCall, ActingKind, HOSTILE_TOKEN_PART, SandboxState, ScriptedReply, SiteCalls, SitePlan,
};

/// How a [`Sandbox`] behaves: which credentials it accepts and which faults it injects.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Accepted `(client_id, client_secret)` pairs.
    pub credentials: Vec<(String, String)>,
    /// Delay added before answering every `/rest/` request.
    pub latency: Duration,
    /// Delay added before answering every `POST /oauth2/token` (a real token request is a
    /// network round trip too; benchmarks of the original module, which asks for a token per
    /// call, set it to the same latency).
    pub token_latency: Duration,
    /// Share (0.0..=1.0) of `/rest/` requests that get a random fault.
    pub fault_rate: f64,
    /// How long a "hang" fault sleeps before answering normally.
    pub hang: Duration,
    /// Hosts whose DNS "does not resolve yet".
    pub unresolvable: Vec<String>,
    /// Seed for the fault randomness; `None` seeds from entropy.
    pub seed: Option<u64>,
    /// How the status endpoint spells `products[].slug`.
    pub spelling: Spelling,
    /// The Licensing API's tokens (by default [`LicenceToken::defaults`]: one that may list
    /// licences and attach them, one that may not).
    pub licence_tokens: Vec<LicenceToken>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            credentials: vec![("demo-client".to_owned(), "demo-secret".to_owned())],
            latency: Duration::ZERO,
            token_latency: Duration::ZERO,
            fault_rate: 0.0,
            hang: Duration::from_secs(300),
            unresolvable: Vec::new(),
            seed: None,
            spelling: Spelling::default(),
            licence_tokens: LicenceToken::defaults(),
        }
    }
}

/// A running sandbox server; dropping it leaves the server running until the runtime ends, so
/// call [`Sandbox::shutdown`] to stop it.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    state: SandboxState,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port) and starts serving. Fails with
    /// `InvalidInput` for an address that is not loopback.
    pub async fn start(addr: SocketAddr, config: SandboxConfig) -> std::io::Result<Sandbox> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the sandbox only binds loopback addresses, not {addr}"),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let state = SandboxState::new(&config, stop.clone());
        let app =
            routes::router(state.clone()).into_make_service_with_connect_info::<conn::ConnHandle>();
        let signal = stop.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(conn::KillableListener::new(listener), app)
                .with_graceful_shutdown(async move { signal.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "sandbox server stopped with an error");
            }
        });
        tracing::debug!(%addr, "sandbox listening");
        Ok(Sandbox {
            addr,
            state,
            stop,
            task,
        })
    }

    /// The base URL to use instead of `https://public-api.wordpress.com`, without a trailing
    /// slash, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle on the sandbox's state, for inspecting and steering it.
    pub fn state(&self) -> SandboxState {
        self.state.clone()
    }

    /// Stops accepting connections, cuts short hanging requests and waits (at most a few
    /// seconds) for the server to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Normalises a site URL into the sandbox's key: strips a leading `http://` or `https://`
/// (any case) and trailing slashes, and lowercases the host part (before the first `/`).
/// `::` (the path form used by the cancel and status endpoints) becomes `/`.
pub fn site_key(raw: &str) -> String {
    let raw = raw.trim();
    let raw = raw.replace("::", "/");
    let mut rest = raw.as_str();
    for scheme in ["http://", "https://"] {
        if rest.len() >= scheme.len()
            && rest.is_char_boundary(scheme.len())
            && rest[..scheme.len()].eq_ignore_ascii_case(scheme)
        {
            rest = &rest[scheme.len()..];
            break;
        }
    }
    let rest = rest.trim_end_matches('/');
    match rest.split_once('/') {
        Some((host, path)) => format!("{}/{}", host.to_lowercase(), path),
        None => rest.to_lowercase(),
    }
}

/// The host of a site key: the part before the first `/`, without any `:port`, lowercased.
pub fn host_of(key: &str) -> String {
    let host = key.split('/').next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    host.to_lowercase()
}
