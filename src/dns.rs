//! The DNS check made before re-calling the API for a plan waiting on a new domain: a domain
//! that still does not resolve costs no API call. Behind a trait so tests and the demo can ask
//! the sandbox's simulated DNS instead of the real one.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Answers "does this host resolve yet?".
pub trait Resolver: Send + Sync {
    /// True when `host` has at least one address.
    fn resolves<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// The system resolver (getaddrinfo), with a timeout so a dead DNS server costs seconds.
#[derive(Clone, Copy, Debug)]
pub struct SystemResolver {
    /// Longest wait for an answer; a timeout counts as "does not resolve".
    pub timeout: Duration,
}

impl Default for SystemResolver {
    fn default() -> Self {
        SystemResolver {
            timeout: Duration::from_secs(5),
        }
    }
}

impl Resolver for SystemResolver {
    fn resolves<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if bare.parse::<std::net::IpAddr>().is_ok() {
                return true;
            }
            match tokio::time::timeout(self.timeout, tokio::net::lookup_host((bare, 80))).await {
                Ok(Ok(mut addrs)) => addrs.next().is_some(),
                _ => false,
            }
        })
    }
}

/// A resolver answered by a function (the sandbox's simulated DNS in tests and the demo).
pub struct FnResolver<F>(pub F);

impl<F> Resolver for FnResolver<F>
where
    F: Fn(&str) -> bool + Send + Sync,
{
    fn resolves<'a>(&'a self, host: &'a str) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        let answer = (self.0)(host);
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_addresses_and_localhost_resolve_and_junk_does_not() {
        let r = SystemResolver::default();
        assert!(r.resolves("127.0.0.1").await);
        assert!(r.resolves("[::1]").await);
        assert!(r.resolves("localhost").await);
        assert!(!r.resolves("no-such-host.invalid").await);
    }
}
