//! The Licensing API's `/_sandbox/...` control endpoints, for scripts: every licence issued
//! (with its token's index, never the token) and the count per token, revoking a licence
//! behind the client's back, and disabling or enabling a token.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::faults::json_reply;
use super::state::SandboxState;

/// The control routes of the Licensing API.
pub(crate) fn router() -> Router<SandboxState> {
    Router::new()
        .route("/_sandbox/licences", get(licences))
        .route("/_sandbox/licences/revoke", post(revoke))
        .route("/_sandbox/licence-tokens", post(token_enabled))
}

/// `GET /_sandbox/licences`: `{"licences": [...], "issued_by_token": {"0": n}, "calls": {...}}`.
async fn licences(State(state): State<SandboxState>) -> Response {
    let body = json!({
        "licences": state.licences(),
        "issued_by_token": state.licences_by_token(),
        "calls": state.licence_calls(),
    });
    json_reply(StatusCode::OK, body)
}

/// `POST /_sandbox/licences/revoke?key=K`: revokes the licence as the partner portal would.
async fn revoke(
    State(state): State<SandboxState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = query.get("key").map(|k| k.trim()).unwrap_or_default();
    if state.revoke_licence(key) {
        json_reply(StatusCode::OK, json!({"key": key, "revoked": true}))
    } else {
        json_reply(
            StatusCode::NOT_FOUND,
            json!({"error": "unknown_key", "message": "No licence has this key."}),
        )
    }
}

/// `POST /_sandbox/licence-tokens?index=N&enabled=false`: disables (or enables) token N.
async fn token_enabled(
    State(state): State<SandboxState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let index: Option<usize> = query.get("index").and_then(|i| i.trim().parse().ok());
    let enabled = query.get("enabled").is_none_or(|e| e.trim() != "false");
    let token = index.and_then(|i| state.licence_tokens().get(i).map(|t| t.token.clone()));
    match token {
        Some(token) => {
            state.set_licence_token_enabled(&token, enabled);
            json_reply(StatusCode::OK, json!({"index": index, "enabled": enabled}))
        }
        None => json_reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "unknown_token", "message": "Give the index of a configured token."}),
        ),
    }
}
