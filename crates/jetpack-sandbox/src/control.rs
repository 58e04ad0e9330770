//! The `/_sandbox/...` control endpoints, for scripts that cannot reach [`SandboxState`] from
//! Rust: call counts (with the calls in flight now and at most), recorded plans and products, DNS resolvability, live latency, fault,
//! spelling and status-lag settings, token revocation and the partner portal's changes. They need no token and are never subject to latency or faults.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::json_reply;
use super::state::SandboxState;
use super::{Spelling, site_key};

/// The control routes, merged into the main router.
pub(crate) fn router() -> Router<SandboxState> {
    Router::new()
        .route("/_sandbox/calls", get(calls))
        .route("/_sandbox/reset-peak", post(reset_peak))
        .route("/_sandbox/plans", get(plans))
        .route("/_sandbox/resolve", post(resolve))
        .route("/_sandbox/unresolve", post(unresolve))
        .route("/_sandbox/config", post(config))
        .route("/_sandbox/revoke-tokens", post(revoke_tokens))
        .route("/_sandbox/products", get(products))
        .route("/_sandbox/portal", post(portal))
}

async fn products(State(state): State<SandboxState>) -> Response {
    json_reply(StatusCode::OK, json!(state.all_products()))
}

/// `POST /_sandbox/portal`: `{"site": .., "cancel": slug|null}` removes a product (null:
/// everything), `{"site": .., "add": slug, "ours": bool}` adds one (`ours` defaults to true);
/// answers the site's products.
async fn portal(State(state): State<SandboxState>, body: Bytes) -> Response {
    let patch: serde_json::Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(error) => return invalid("invalid_portal", error.to_string()),
    };
    let Some(site) = patch.get("site").and_then(Value::as_str) else {
        return invalid(
            "invalid_portal",
            "\"site\" (a string) is required.".to_owned(),
        );
    };
    let removed = match (patch.get("cancel"), patch.get("add")) {
        (Some(Value::Null), None) => state.portal_cancel(site, None),
        (Some(Value::String(slug)), None) => state.portal_cancel(site, Some(slug)),
        (None, Some(Value::String(slug))) => {
            let ours = patch.get("ours").and_then(Value::as_bool).unwrap_or(true);
            state.portal_add(site, slug, ours);
            false
        }
        _ => {
            let message = "Give either \"cancel\" (a slug or null) or \"add\" (a slug).";
            return invalid("invalid_portal", message.to_owned());
        }
    };
    let body =
        json!({"site": site_key(site), "removed": removed, "products": state.products(site)});
    json_reply(StatusCode::OK, body)
}

async fn calls(State(state): State<SandboxState>) -> Response {
    let body = json!({
        "token_calls": state.token_calls(),
        "sites": state.all_calls(),
        "in_flight": state.calls_in_flight(),
        "peak_in_flight": state.peak_calls_in_flight(),
        "mean_in_flight": state.mean_calls_in_flight(),
    });
    json_reply(StatusCode::OK, body)
}

/// `POST /_sandbox/reset-peak`: the peak of calls in flight starts again from now.
async fn reset_peak(State(state): State<SandboxState>) -> Response {
    state.reset_peak_calls_in_flight();
    json_reply(
        StatusCode::OK,
        json!({"in_flight": state.calls_in_flight()}),
    )
}

async fn plans(State(state): State<SandboxState>) -> Response {
    let plans: BTreeMap<_, _> = state.plans();
    json_reply(StatusCode::OK, json!(plans))
}

fn set_resolvable(state: &SandboxState, query: &HashMap<String, String>, yes: bool) -> Response {
    match query
        .get("host")
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
    {
        Some(host) => {
            state.set_resolvable(host, yes);
            json_reply(
                StatusCode::OK,
                json!({"host": host, "resolvable": state.is_resolvable(host)}),
            )
        }
        None => json_reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "missing_host", "message": "The \"host\" query parameter is required."}),
        ),
    }
}

async fn resolve(
    State(state): State<SandboxState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    set_resolvable(&state, &query, true)
}

async fn unresolve(
    State(state): State<SandboxState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    set_resolvable(&state, &query, false)
}

/// Body of `POST /_sandbox/config`; absent fields are left unchanged.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigPatch {
    latency_ms: Option<u64>,
    fault_rate: Option<f64>,
    spelling: Option<String>,
    status_lag_ms: Option<u64>,
}

fn invalid(error: &str, message: String) -> Response {
    json_reply(
        StatusCode::BAD_REQUEST,
        json!({"error": error, "message": message}),
    )
}

async fn config(State(state): State<SandboxState>, body: Bytes) -> Response {
    let patch: ConfigPatch = if body.iter().all(u8::is_ascii_whitespace) {
        ConfigPatch::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(patch) => patch,
            Err(error) => return invalid("invalid_config", error.to_string()),
        }
    };
    let spelling = match patch.spelling.as_deref().map(str::parse::<Spelling>) {
        Some(Err(message)) => return invalid("invalid_config", message),
        Some(Ok(spelling)) => Some(spelling),
        None => None,
    };
    if let Some(spelling) = spelling {
        state.set_spelling(spelling);
    }
    if let Some(ms) = patch.status_lag_ms {
        state.set_status_lag(Duration::from_millis(ms));
    }
    if let Some(ms) = patch.latency_ms {
        state.set_latency(Duration::from_millis(ms));
    }
    if let Some(rate) = patch.fault_rate {
        state.set_fault_rate(rate);
    }
    let data = state.lock();
    let body = json!({
        "latency_ms": u64::try_from(data.latency.as_millis()).unwrap_or(u64::MAX),
        "fault_rate": data.fault_rate,
        "spelling": data.spelling.as_str(),
        "status_lag_ms": u64::try_from(data.holdings.status_lag.as_millis()).unwrap_or(u64::MAX),
    });
    drop(data);
    json_reply(StatusCode::OK, body)
}

async fn revoke_tokens(State(state): State<SandboxState>) -> Response {
    state.revoke_tokens();
    json_reply(StatusCode::OK, json!({"revoked": true}))
}
