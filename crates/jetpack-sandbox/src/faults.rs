//! The gate every `/rest/` request passes before its normal behaviour: added latency, the
//! bearer-token check, then a scripted reply for the site or a random fault. It decides whether
//! the handler answers at once (a JSON status, a raw reply, a reset), acts normally (at once,
//! after a hang or a scripted slow sleep), acts and then drops the connection, or lets the
//! call land late (see `late`).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::conn::ConnHandle;
use super::state::{SandboxState, ScriptedReply};

/// What the handler does after the gate.
pub(crate) enum Gate {
    /// Send this response without acting.
    Respond(Response),
    /// Perform the normal action; when `reset_after`, drop the connection instead of answering.
    Act {
        /// Drop the connection after acting.
        reset_after: bool,
    },
    /// Hold the connection without answering; the effect lands this long after arrival.
    LandsLate(Duration),
}

/// A JSON response with the given status.
pub(crate) fn json_reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The response sent while dropping the connection; it never reaches the client.
pub(crate) fn reset(conn: &ConnHandle) -> Response {
    conn.kill();
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Sleeps `d`, cut short when the sandbox shuts down. Returns false when cut short.
pub(crate) async fn sleep_unless_stopping(state: &SandboxState, d: Duration) -> bool {
    if d.is_zero() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = state.stopping().cancelled() => false,
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    // Issued tokens carry non-ASCII characters, sent as UTF-8 bytes.
    let value = std::str::from_utf8(headers.get(header::AUTHORIZATION)?.as_bytes()).ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Runs the gate for a `/rest/` request about `site` (a normalised key, when known). The call
/// must already have been counted.
pub(crate) async fn gate(
    state: &SandboxState,
    conn: &ConnHandle,
    headers: &HeaderMap,
    site: Option<&str>,
) -> Gate {
    let latency = state.lock().latency;
    if !sleep_unless_stopping(state, latency).await {
        return Gate::Respond(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    if !bearer(headers).is_some_and(|token| state.token_valid(token)) {
        return Gate::Respond(json_reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "message": "The OAuth2 token is invalid."}),
        ));
    }
    faults(state, conn, site).await
}

/// The fault part of the gate, after the caller's own latency and token checks: a scripted
/// reply queued for `key`, else a random fault, else act normally.
pub(crate) async fn faults(state: &SandboxState, conn: &ConnHandle, site: Option<&str>) -> Gate {
    let scripted = site.and_then(|key| state.next_scripted(key));
    let reply = match scripted {
        Some(reply) => reply,
        None => match random_fault(state) {
            Some(Fault::Scripted(reply)) => reply,
            Some(Fault::Internal) => {
                return Gate::Respond(json_reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal_server_error", "message": "Internal server error"}),
                ));
            }
            Some(Fault::Unavailable) => {
                return Gate::Respond(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
            None => return Gate::Act { reset_after: false },
        },
    };
    apply(state, conn, reply).await
}

/// What a scripted reply (or a random fault drawn as one) makes the handler do.
async fn apply(state: &SandboxState, conn: &ConnHandle, reply: ScriptedReply) -> Gate {
    match reply {
        ScriptedReply::Status {
            code,
            body,
            retry_after,
        } => Gate::Respond(status_reply(code, body, retry_after)),
        ScriptedReply::Reset => Gate::Respond(reset(conn)),
        ScriptedReply::ActThenReset => Gate::Act { reset_after: true },
        ScriptedReply::Hang => {
            let hang = state.lock().hang;
            sleep_then_act(state, hang).await
        }
        ScriptedReply::Raw {
            code,
            content_type,
            body,
        } => Gate::Respond(raw_reply(code, &content_type, body)),
        ScriptedReply::Slow(d) => sleep_then_act(state, d).await,
        ScriptedReply::LandsLate(d) => Gate::LandsLate(d),
    }
}

/// Sleeps `d`, then acts normally; a 503 without acting when the sandbox shuts down meanwhile.
async fn sleep_then_act(state: &SandboxState, d: Duration) -> Gate {
    if sleep_unless_stopping(state, d).await {
        Gate::Act { reset_after: false }
    } else {
        Gate::Respond(StatusCode::SERVICE_UNAVAILABLE.into_response())
    }
}

enum Fault {
    Internal,
    Unavailable,
    Scripted(ScriptedReply),
}

/// Draws a random fault with probability `fault_rate`, uniformly among the five kinds.
fn random_fault(state: &SandboxState) -> Option<Fault> {
    let mut data = state.lock();
    if data.fault_rate <= 0.0 || data.fault_rng.f64() >= data.fault_rate {
        return None;
    }
    Some(match data.fault_rng.u8(0..5) {
        0 => Fault::Internal,
        1 => Fault::Unavailable,
        2 => Fault::Scripted(ScriptedReply::Reset),
        3 => Fault::Scripted(ScriptedReply::ActThenReset),
        _ => Fault::Scripted(ScriptedReply::Hang),
    })
}

fn status_reply(code: u16, body: String, retry_after: Option<String>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    response
}

/// Exactly this status (500 when it is not a valid code), `Content-Type` (left out when it is
/// not a valid header value) and body.
fn raw_reply(code: u16, content_type: &str, body: String) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    match HeaderValue::from_str(content_type) {
        Ok(value) => headers.insert(header::CONTENT_TYPE, value),
        Err(_) => headers.remove(header::CONTENT_TYPE),
    };
    response
}
