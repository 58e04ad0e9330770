//! HTTP plumbing under the client: reading an answer (status, body, Retry-After), turning
//! network errors into transient failures (noting when the API may have acted unseen),
//! encoding path segments and forms, and building the masked request/response records kept
//! for WHMCS's module log.

use std::time::Duration;

use super::mask::mask_all;
use super::{Exchange, Failure, parse_retry_after};

/// An HTTP answer, read in full.
pub(super) struct Answer {
    /// HTTP status code.
    pub(super) status: u16,
    /// Response body.
    pub(super) body: Vec<u8>,
    /// The Retry-After header, when present and valid.
    pub(super) retry_after: Option<Duration>,
}

/// Reads a whole answer; `may_act` says whether the request could have acted unseen.
pub(super) async fn read_answer(
    sent: Result<reqwest::Response, reqwest::Error>,
    may_act: bool,
) -> Result<Answer, Failure> {
    let resp = sent.map_err(|e| transport_failure(&e, may_act))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let body = resp
        .bytes()
        .await
        .map_err(|e| transport_failure(&e, may_act))?;
    Ok(Answer {
        status,
        body: body.to_vec(),
        retry_after,
    })
}

/// Network-level failures are transient; only a failed connect proves the API did not act.
fn transport_failure(e: &reqwest::Error, may_act: bool) -> Failure {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the connection broke"
    };
    // reqwest's Display for a URL-carrying error includes the URL, never headers or bodies.
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    Failure::Transient {
        message: format!("partner API request {what} ({cause})"),
        retry_after: None,
        outcome_unknown: may_act && !e.is_connect(),
    }
}

/// Percent-encodes a site id for a URL path, keeping `:` (the API's `::` separator).
pub(super) fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace("%3A", ":")
}

/// A form as `application/x-www-form-urlencoded` text, for the logged request.
pub(super) fn encode_form(form: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

/// One exchange for the module log, with every form of every secret masked.
pub(super) fn exchange(
    action: &'static str,
    request: String,
    response: String,
    secrets: &[&str],
) -> Exchange {
    Exchange {
        action,
        request: mask_all(&request, secrets),
        response: mask_all(&response, secrets),
    }
}
