//! The OAuth token cache: one client-credentials token per partner account (keyed by client
//! id and secret), fetched once (concurrent callers wait for that one fetch), cached, and
//! forgotten when the API refuses it so the next call fetches a new one. Also `verify`, which
//! checks credentials with a fresh, uncached fetch.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::mask::{mask_failure, mask_json_field};
use super::transport::{Answer, encode_form, exchange, read_answer};
use super::{Credentials, Exchange, Failure, JetpackClient, describe_error, response};

/// A partner account, as the cache key.
#[derive(PartialEq, Eq, Hash)]
pub(super) struct AccountKey {
    client_id: String,
    client_secret: String,
}

/// One account's cached token; the async mutex makes concurrent callers share one fetch.
pub(super) type TokenSlot = Arc<tokio::sync::Mutex<Option<SecretString>>>;

impl JetpackClient {
    /// This account's slot in the cache, created empty on first use.
    fn slot(&self, creds: &Credentials) -> TokenSlot {
        let key = AccountKey {
            client_id: creds.client_id.clone(),
            client_secret: creds.client_secret.expose_secret().to_owned(),
        };
        // A poisoned map only means another task panicked mid-insert; the map is still usable.
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_default().clone()
    }

    /// Returns the cached token, fetching it once (concurrent callers wait for that one fetch).
    pub(super) async fn token(
        &self,
        creds: &Credentials,
        log: &mut Vec<Exchange>,
    ) -> Result<SecretString, Failure> {
        let slot = self.slot(creds);
        let mut held = slot.lock().await;
        if let Some(t) = held.as_ref() {
            return Ok(t.clone());
        }
        self.guards.pace(&creds.client_id).await;
        let fresh = self
            .fetch_token(creds, log, None)
            .await
            .map_err(|f| mask_failure(f, &[creds.client_secret.expose_secret()]))?;
        *held = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `stale` if it is still the cached token, so the next call fetches a new one.
    pub(super) async fn forget_token(&self, creds: &Credentials, stale: &SecretString) {
        let slot = self.slot(creds);
        let mut held = slot.lock().await;
        if held
            .as_ref()
            .is_some_and(|t| t.expose_secret() == stale.expose_secret())
        {
            *held = None;
        }
    }

    /// Asks `/oauth2/token` for a new token (client credentials grant); the exchange is logged
    /// masked. A refused id/secret is permanent; other errors are classified as for any call.
    /// `timeout` replaces the client's request timeout for this one request.
    async fn fetch_token(
        &self,
        creds: &Credentials,
        log: &mut Vec<Exchange>,
        timeout: Option<Duration>,
    ) -> Result<SecretString, Failure> {
        let url = format!("{}/oauth2/token", self.base);
        let secret = creds.client_secret.expose_secret();
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "jetpack-partner"),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", secret),
        ];
        let stars = "*".repeat(secret.len());
        let mut logged_form = form;
        logged_form[3].1 = &stars;
        let request = format!("POST {url}\n{}", encode_form(&logged_form));
        let mut post = self.http.post(&url).form(&form);
        if let Some(timeout) = timeout {
            post = post.timeout(timeout);
        }
        let sent = post.send().await;
        let answer = read_answer(sent, false).await;
        let answer = match answer {
            Ok(a) => a,
            Err(f) => {
                log.push(exchange("token", request, format!("{f}"), &[secret]));
                return Err(f);
            }
        };
        let json: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
        let token = json
            .as_ref()
            .and_then(|j| j.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let body = mask_json_field(&answer.body, "access_token")
            .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
        let mut secrets = vec![secret];
        if let Some(t) = token.as_deref() {
            secrets.push(t);
        }
        log.push(exchange(
            "token",
            request,
            format!("HTTP {}\n{body}", answer.status),
            &secrets,
        ));
        match token {
            Some(t) if answer.status == 200 => Ok(SecretString::from(t)),
            _ => Err(no_token(&answer, json.as_ref())),
        }
    }

    /// Checks a partner account's credentials by fetching a fresh token (not cached), within
    /// `timeout` whatever the client's request timeout. A check is not one of the worker's
    /// calls: it is not paced by the account's rate limit.
    pub async fn verify(&self, creds: &Credentials, timeout: Duration) -> Result<(), Failure> {
        self.fetch_token(creds, &mut Vec::new(), Some(timeout))
            .await
            .map(|_| ())
            .map_err(|f| mask_failure(f, &[creds.client_secret.expose_secret()]))
    }
}

/// Why the token endpoint gave no token: a refused id/secret is permanent; other answers are
/// classified as for any call.
fn no_token(answer: &Answer, json: Option<&serde_json::Value>) -> Failure {
    let said = json
        .and_then(describe_error)
        .unwrap_or_else(|| "no error was returned".to_owned());
    if answer.status == 400 || answer.status == 401 || answer.status == 403 {
        return Failure::Permanent {
            message: format!(
                "the partner API refused the client id/secret ({said}, HTTP {}); check the \
                 Jetpack Partner Client ID and Client Secret in the product's Module Settings",
                answer.status
            ),
        };
    }
    response::classify_error(
        "issue an access token",
        answer.status,
        &answer.body,
        answer.retry_after,
    )
}
