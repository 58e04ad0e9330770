//! HTTP plumbing under the client: reading an answer (status, body, Retry-After) up to a size
//! cap, turning network errors and oversized answers into transient failures (noting when the
//! API may have acted unseen), encoding path segments and forms, and building the masked,
//! bounded request/response records kept for WHMCS's module log.

use std::time::Duration;

use super::mask::mask_all;
use super::{Exchange, Failure, parse_retry_after};

/// The most of an answer the client reads (bytes): a partner-API answer is a few hundred
/// bytes of JSON; a bigger one is a proxy's error page or a fault.
pub(super) const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The most of a request or response a module-log record keeps (bytes).
const LOGGED_BODY_BYTES: usize = 8 * 1024;

/// The most of a body an error message quotes (bytes).
const EXCERPT_BYTES: usize = 200;

/// An HTTP answer, read in full (at most [`MAX_ANSWER_BYTES`]).
pub(crate) struct Answer {
    /// HTTP status code.
    pub(crate) status: u16,
    /// Response body.
    pub(crate) body: Vec<u8>,
    /// The Retry-After header, when present and valid.
    pub(crate) retry_after: Option<Duration>,
}

/// Reads a whole answer, at most [`MAX_ANSWER_BYTES`] of it; `may_act` says whether the
/// request could have acted unseen. A larger answer is a transient failure (see
/// [`too_large`]).
pub(crate) async fn read_answer(
    sent: Result<reqwest::Response, reqwest::Error>,
    may_act: bool,
) -> Result<Answer, Failure> {
    let mut resp = sent.map_err(|e| transport_failure(&e, may_act))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_failure(&e, may_act))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            body.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES)]);
            return Err(too_large(status, &body, retry_after, may_act));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

/// The failure for an answer over [`MAX_ANSWER_BYTES`], quoting its start. A 2xx that cannot
/// be read leaves an acting call's outcome unknown; an error status says the call failed, as
/// it does for a readable answer (a 5xx is transient and did not act).
fn too_large(status: u16, start: &[u8], retry_after: Option<Duration>, may_act: bool) -> Failure {
    Failure::Transient {
        message: format!(
            "partner API answer larger than {} KiB (HTTP {status}: {})",
            MAX_ANSWER_BYTES / 1024,
            excerpt(start)
        ),
        retry_after,
        outcome_unknown: may_act && (200..300).contains(&status),
    }
}

/// The start of a body for an error message: at most [`EXCERPT_BYTES`], whitespace runs
/// collapsed, invalid UTF-8 replaced.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(EXCERPT_BYTES * 2)];
    let text = String::from_utf8_lossy(head);
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::fit(&words, EXCERPT_BYTES).into_owned()
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

/// One exchange for the module log: every form of every secret masked, then each side cut to
/// [`LOGGED_BODY_BYTES`] (masking first, so a cut never leaves part of a secret).
pub(crate) fn exchange(
    action: &'static str,
    request: String,
    response: String,
    secrets: &[&str],
) -> Exchange {
    let bounded =
        |text: &str| crate::text::fit(&mask_all(text, secrets), LOGGED_BODY_BYTES).into_owned();
    Exchange {
        action,
        request: bounded(&request),
        response: bounded(&response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_short_and_on_one_line() {
        let page = format!("<html>\n  <body>{}</body>", "é 502 ".repeat(10_000));
        let cut = excerpt(page.as_bytes());
        assert!(cut.len() <= EXCERPT_BYTES, "{}", cut.len());
        assert!(
            cut.starts_with("<html> <body>é 502") && !cut.contains('\n'),
            "{cut}"
        );
        assert_eq!(excerpt(b"\xff{}"), "\u{fffd}{}");
    }

    #[test]
    fn a_logged_exchange_is_masked_before_it_is_cut() {
        let secret = "s/e\"cr+t é";
        let body = format!("{}{}", "x".repeat(LOGGED_BODY_BYTES - 6), secret);
        let x = exchange("token", body.clone(), body, &[secret]);
        assert!(x.response.len() <= LOGGED_BODY_BYTES);
        assert!(
            !x.response.contains("s/e"),
            "no part of the secret is left by the cut"
        );
    }
}
