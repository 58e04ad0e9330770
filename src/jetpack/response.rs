//! Turns partner-API answers into outcomes: success, waiting for DNS, transient, permanent or
//! "the token was refused". Pure (status code + body in, classification out) and unit-tested;
//! reads both error shapes the API uses (`error`/`message` and `error_code`/`error_message`).

use std::time::Duration;

use serde_json::Value;

/// What a successful /provision answer means for the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProvisionOutcome {
    /// `next_url` present: the link the customer follows to activate Jetpack.
    Activated {
        /// The activation (or SSO) URL.
        next_url: String,
    },
    /// `success` with an empty `next_url`: the domain does not resolve yet; the plan is pending.
    WaitingDns,
}

/// What a successful partner-cancel answer means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// `success: true`: the plan was cancelled.
    Cancelled,
    /// `success: false`: the site had no plan left to cancel.
    NothingToCancel,
}

/// A failed call, by what the worker should do next.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Retry later: timeouts, connection errors, 408, 429, 5xx, empty or non-JSON bodies.
    #[error("{message}")]
    Transient {
        /// What happened, safe to show (no secrets).
        message: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// True when the request may have reached the API and acted (timeout, reset).
        outcome_unknown: bool,
    },
    /// Retrying will not help: bad credentials, invalid plan/site/user, other 4xx.
    #[error("{message}")]
    Permanent {
        /// What to fix, safe to show (no secrets).
        message: String,
    },
    /// A provision of a lower plan than the site has (`plan_downgrade_disallowed`): retrying
    /// will not help, and the site keeps its plan.
    #[error("{message}")]
    Downgrade {
        /// The API's words, safe to show.
        message: String,
    },
    /// The bearer token was refused (401, or 403 `invalid_token`): fetch a new one once.
    #[error("{message}")]
    TokenRefused {
        /// The API's words.
        message: String,
    },
    /// An acting call was not sent: the caller's gate refused it (the lease could not be
    /// confirmed for the length of the call).
    #[error("the call was not started: {message}")]
    Stopped {
        /// Why.
        message: String,
    },
}

/// Reads `{"error","message"}` or `{"error_code","error_message"}` (and OAuth's
/// `error_description`) into `code: message`.
pub fn describe_error(body: &Value) -> Option<String> {
    let code = body
        .get("error")
        .or_else(|| body.get("error_code"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let message = body
        .get("message")
        .or_else(|| body.get("error_message"))
        .or_else(|| body.get("error_description"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let said = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => return None,
    };
    Some(shorten(&said))
}

/// The most of the API's own words a message quotes (characters).
const SAID_MAX_CHARS: usize = 500;

/// Keeps an API-supplied text short enough for a message: at most [`SAID_MAX_CHARS`]
/// characters, cut with a marker.
fn shorten(said: &str) -> String {
    if said.chars().count() <= SAID_MAX_CHARS {
        return said.to_owned();
    }
    let kept: String = said.chars().take(SAID_MAX_CHARS).collect();
    format!("{kept}… [cut]")
}

fn error_code(body: &Value) -> Option<&str> {
    body.get("error")
        .or_else(|| body.get("error_code"))
        .and_then(Value::as_str)
}

/// Parses `Retry-After` as seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - now).num_seconds();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// Classifies a non-success HTTP status (or an unusable 2xx body) shared by every endpoint.
pub fn classify_error(
    what: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Failure {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let said = json.as_ref().and_then(describe_error);
    let detail = said
        .clone()
        .unwrap_or_else(|| "no error was returned".to_owned());
    let code = json.as_ref().and_then(error_code).unwrap_or("");
    let token_codes = ["invalid_token", "unauthorized", "authorization_required"];
    if status == 401 || (status == 403 && token_codes.contains(&code)) {
        return Failure::TokenRefused {
            message: format!("the partner API refused the access token ({detail}, HTTP {status})"),
        };
    }
    if status == 408 || status == 429 || status >= 500 {
        return Failure::Transient {
            message: format!("the partner API answered HTTP {status} to {what} ({detail})"),
            retry_after,
            outcome_unknown: false,
        };
    }
    if (200..300).contains(&status) {
        return Failure::Transient {
            message: format!(
                "the partner API gave an unusable answer to {what} (HTTP {status}, {})",
                if body.is_empty() {
                    "empty body".to_owned()
                } else if json.is_none() {
                    "not JSON".to_owned()
                } else {
                    detail
                }
            ),
            retry_after,
            outcome_unknown: false,
        };
    }
    let message = format!("the partner API refused to {what}: {detail} (HTTP {status})");
    if code == "plan_downgrade_disallowed" {
        return Failure::Downgrade { message };
    }
    Failure::Permanent { message }
}

/// Classifies a /provision answer.
pub fn classify_provision(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<ProvisionOutcome, Failure> {
    if status == 200
        && let Ok(json) = serde_json::from_slice::<Value>(body)
    {
        if json.get("success").and_then(Value::as_bool) == Some(true) {
            let next = json.get("next_url").and_then(Value::as_str).unwrap_or("");
            return Ok(if next.trim().is_empty() {
                ProvisionOutcome::WaitingDns
            } else {
                ProvisionOutcome::Activated {
                    next_url: next.trim().to_owned(),
                }
            });
        }
        if let Some(said) = describe_error(&json) {
            let message = format!("the partner API refused to provision the plan: {said}");
            return Err(match error_code(&json) {
                Some("plan_downgrade_disallowed") => Failure::Downgrade { message },
                _ => Failure::Permanent { message },
            });
        }
    }
    Err(classify_error(
        "provision the plan",
        status,
        body,
        retry_after,
    ))
}

/// Classifies a partner-cancel answer.
pub fn classify_cancel(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<CancelOutcome, Failure> {
    if status == 200
        && let Ok(json) = serde_json::from_slice::<Value>(body)
    {
        match json.get("success").and_then(Value::as_bool) {
            Some(true) => return Ok(CancelOutcome::Cancelled),
            Some(false) => return Ok(CancelOutcome::NothingToCancel),
            None => {}
        }
    }
    if status == 404 {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let said = json.as_ref().and_then(describe_error).unwrap_or_default();
        return Err(Failure::Permanent {
            message: format!(
                "the partner API does not know this site (HTTP 404 {said}); check the Site URL"
            ),
        });
    }
    Err(classify_error("cancel the plan", status, body, retry_after))
}

/// One product on a site, from the status endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteProduct {
    /// Plan or product slug, as the partner spelled it.
    pub slug: String,
    /// The plan of `rules.json` the slug names, in whatever spelling (`slugs::plan_of_slug`);
    /// None for a product no plan of ours matches.
    pub plan: Option<&'static str>,
    /// Provisioned by our partner account.
    pub ours: bool,
    /// Waiting for the site to connect (pending activation).
    pub pending: bool,
}

/// Classifies a v1.4 status answer into the site's products.
pub fn classify_status(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<Vec<SiteProduct>, Failure> {
    if status == 200
        && let Ok(json) = serde_json::from_slice::<Value>(body)
        && let Some(products) = json.get("products").and_then(Value::as_array)
    {
        return Ok(products
            .iter()
            .filter_map(|p| {
                let slug = p.get("slug")?.as_str()?;
                Some(SiteProduct {
                    slug: slug.to_owned(),
                    plan: super::slugs::plan_of_slug(slug),
                    ours: p
                        .get("is_provisioned_by_calling_partner")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    pending: p
                        .get("is_pending")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
            })
            .collect());
    }
    Err(classify_error(
        "report the site's status",
        status,
        body,
        retry_after,
    ))
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
