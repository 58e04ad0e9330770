//! The Licensing API's routes under `/wpcom/v2/jetpack-licensing/`: issue (`POST /license`,
//! the product in `?product=` or a JSON body), look up, revoke, attach and detach a licence,
//! the product families (public, and the partner's with prices), and the partner portal's
//! `GET /licenses` (a 403 for a token that may not list). Every authorised call passes the
//! licence gate: latency, the bearer token (unknown or disabled: 403 `invalid_token`), then
//! the provisioning API's faults (scripted replies keyed `licence:<product>` for an issue,
//! `licence:<key>` for a call about a key, `licences` for the listing; random faults; lost
//! answers, late effects). Errors are `{"code", "message"}` as the spec says.

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::conn::ConnHandle;
use super::faults::{Gate, bearer, faults, json_reply, reset, sleep_unless_stopping};
use super::late::{hold, land_late};
use super::state::SandboxState;

/// Where the Licensing API lives.
pub const BASE: &str = "/wpcom/v2/jetpack-licensing";

type Q = Query<HashMap<String, String>>;

/// The Licensing API's routes.
pub(crate) fn router() -> Router<SandboxState> {
    Router::new()
        .route(
            &format!("{BASE}/license"),
            post(issue).get(lookup).delete(revoke),
        )
        .route(
            &format!("{BASE}/license/{{key}}/site"),
            post(attach).delete(detach),
        )
        .route(&format!("{BASE}/product-families"), get(families))
        .route(
            &format!("{BASE}/partner/product-families"),
            get(partner_families),
        )
        .route(&format!("{BASE}/licenses"), get(list))
}

/// `{"code", "message"}` with `status`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_reply(status, json!({"code": code, "message": message}))
}

/// Latency, the token, then the faults for `script` (a script key). Ok: the token's index
/// and what to do.
async fn licence_gate(
    state: &SandboxState,
    conn: &ConnHandle,
    headers: &HeaderMap,
    script: &str,
) -> Result<(usize, Gate), Response> {
    let latency = state.lock().latency;
    if !sleep_unless_stopping(state, latency).await {
        return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    let token = bearer(headers).and_then(|b| state.lock().licensing.token(b));
    let Some(token) = token else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "invalid_token",
            "The API token is invalid or has been disabled.",
        ));
    };
    Ok((token, faults(state, conn, Some(script)).await))
}

/// Runs the gate, then `act` (at once, or late), answering as the gate says.
async fn gated(
    state: SandboxState,
    conn: ConnHandle,
    headers: HeaderMap,
    script: String,
    act: impl FnOnce(&SandboxState, usize) -> Response + Send + 'static,
) -> Response {
    let arrived = Instant::now();
    let (token, gate) = match licence_gate(&state, &conn, &headers, &script).await {
        Ok(pair) => pair,
        Err(refused) => return refused,
    };
    match gate {
        Gate::Respond(response) => response,
        Gate::Act { reset_after } => {
            let response = act(&state, token);
            if reset_after { reset(&conn) } else { response }
        }
        Gate::LandsLate(after) => {
            land_late(&state, arrived, after, move |state| {
                act(state, token);
            });
            hold(&state, &conn).await
        }
    }
}

/// The product of an issue: `?product=`, else a JSON body's `product`.
fn product_of(query: &HashMap<String, String>, body: &[u8]) -> String {
    let from_query = query.get("product").map(|p| p.trim().to_owned());
    let from_body = || {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("product")?.as_str().map(|p| p.trim().to_owned()))
    };
    from_query
        .filter(|p| !p.is_empty())
        .or_else(from_body)
        .unwrap_or_default()
}

async fn issue(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Query(query): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.lock().licensing.calls.issue += 1;
    let product = product_of(&query, &body);
    let script = format!("licence:{product}");
    gated(state, conn, headers, script, move |state, token| {
        let mut data = state.lock();
        if product.is_empty() || data.licensing.product_id(&product).is_none() {
            let message = format!("Invalid product: {product:?}.");
            return error(StatusCode::BAD_REQUEST, "invalid_product", &message);
        }
        let licence = data.licensing.issue(token, &product);
        json_reply(StatusCode::OK, licence.answer())
    })
    .await
}

/// The `license_key` query parameter.
fn key_of(query: &HashMap<String, String>) -> String {
    query
        .get("license_key")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default()
}

fn not_found(key: &str) -> Response {
    let message = format!("No license with the key {key:?} was issued to this partner.");
    error(StatusCode::NOT_FOUND, "license_not_found", &message)
}

async fn lookup(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Query(query): Q,
    headers: HeaderMap,
) -> Response {
    state.lock().licensing.calls.get += 1;
    let key = key_of(&query);
    let script = format!("licence:{key}");
    gated(
        state,
        conn,
        headers,
        script,
        move |state, token| match state.lock().licensing.find_mut(token, &key) {
            Some(licence) => json_reply(StatusCode::OK, licence.answer()),
            None => not_found(&key),
        },
    )
    .await
}

async fn revoke(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Query(query): Q,
    headers: HeaderMap,
) -> Response {
    state.lock().licensing.calls.revoke += 1;
    let key = key_of(&query);
    let script = format!("licence:{key}");
    gated(state, conn, headers, script, move |state, token| {
        let mut data = state.lock();
        let Some(licence) = data.licensing.find_mut(token, &key) else {
            return not_found(&key);
        };
        if licence.revoked_at.is_none() {
            licence.revoked_at = Some(super::licences::utc_text(std::time::SystemTime::now()));
            licence.site = None;
        }
        json_reply(StatusCode::OK, licence.answer())
    })
    .await
}

async fn attach(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.lock().licensing.calls.attach += 1;
    let site = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("site")?.as_str().map(super::site_key))
        .unwrap_or_default();
    let script = format!("licence:{key}");
    gated(state, conn, headers, script, move |state, token| {
        let mut data = state.lock();
        if !data.licensing.tokens[token].may_attach {
            let message = "This partner is not allowed to attach licenses to sites.";
            return error(StatusCode::FORBIDDEN, "not_allowlisted", message);
        }
        if site.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_site",
                "\"site\" is required.",
            );
        }
        let Some(licence) = data.licensing.find_mut(token, &key) else {
            return not_found(&key);
        };
        if licence.revoked_at.is_some() {
            let message = "A revoked license cannot be attached.";
            return error(StatusCode::BAD_REQUEST, "license_revoked", message);
        }
        licence.site = Some(site);
        licence.attached_at = Some(super::licences::utc_text(std::time::SystemTime::now()));
        json_reply(StatusCode::OK, licence.answer())
    })
    .await
}

async fn detach(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    state.lock().licensing.calls.detach += 1;
    let script = format!("licence:{key}");
    gated(state, conn, headers, script, move |state, token| {
        let mut data = state.lock();
        let Some(licence) = data.licensing.find_mut(token, &key) else {
            return not_found(&key);
        };
        licence.site = None;
        licence.attached_at = None;
        json_reply(StatusCode::OK, licence.answer())
    })
    .await
}

/// The families as the public endpoint lists them; `prices` adds the partner's prices.
fn families_answer(state: &SandboxState, prices: bool) -> Response {
    let mut data = state.lock();
    data.licensing.calls.families += 1;
    let families: Vec<Value> = data
        .licensing
        .families
        .iter()
        .map(|f| {
            let products: Vec<Value> = f
                .products
                .iter()
                .map(|(id, name, slug)| {
                    let mut p = json!({"product_id": id, "name": name, "slug": slug});
                    if prices && let Some(o) = p.as_object_mut() {
                        o.insert("currency".into(), json!("USD"));
                        o.insert("amount".into(), json!(4.95));
                        o.insert("price_interval".into(), json!("month"));
                    }
                    p
                })
                .collect();
            json!({"name": f.name, "slug": f.slug, "products": products})
        })
        .collect();
    json_reply(StatusCode::OK, json!(families))
}

async fn families(State(state): State<SandboxState>) -> Response {
    let latency = state.lock().latency;
    if !sleep_unless_stopping(&state, latency).await {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    families_answer(&state, false)
}

async fn partner_families(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
) -> Response {
    let script = "product-families".to_owned();
    gated(state, conn, headers, script, |state, _| {
        families_answer(state, true)
    })
    .await
}

async fn list(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Query(query): Q,
    headers: HeaderMap,
) -> Response {
    state.lock().licensing.calls.list += 1;
    let script = "licences".to_owned();
    gated(state, conn, headers, script, move |state, token| {
        let data = state.lock();
        if !data.licensing.tokens[token].may_list {
            let message = "Sorry, you are not allowed to do that.";
            return error(StatusCode::FORBIDDEN, "rest_forbidden", message);
        }
        listing(&data.licensing, token, &query)
    })
    .await
}

/// One page of token `token`'s licences, filtered, searched and sorted as the portal asks.
fn listing(
    licensing: &super::licences::Licensing,
    token: usize,
    query: &HashMap<String, String>,
) -> Response {
    let param = |name: &str| query.get(name).map(|v| v.trim()).unwrap_or_default();
    let search = param("search").to_lowercase();
    let mut items: Vec<&super::licences::IssuedLicence> = licensing
        .licences
        .iter()
        .filter(|l| l.token == token)
        .filter(|l| match param("filter") {
            "not_revoked" => l.revoked_at.is_none(),
            "attached" => l.revoked_at.is_none() && l.site.is_some(),
            "detached" => l.revoked_at.is_none() && l.site.is_none(),
            "revoked" => l.revoked_at.is_some(),
            _ => true,
        })
        .filter(|l| {
            search.is_empty()
                || l.key.to_lowercase().contains(&search)
                || l.site.as_deref().is_some_and(|s| s.contains(&search))
        })
        .collect();
    let field = |l: &super::licences::IssuedLicence| -> (Option<String>, u64) {
        let when = match param("sort_field") {
            "attached_at" => l.attached_at.clone(),
            "revoked_at" => l.revoked_at.clone(),
            _ => Some(l.issued_at.clone()),
        };
        (when, l.id)
    };
    items.sort_by_key(|l| field(l));
    if param("sort_direction") != "asc" {
        items.reverse();
    }
    let per_page: usize = param("per_page").parse().unwrap_or(50).clamp(1, 100);
    let page: usize = param("page").parse().unwrap_or(1).max(1);
    let total_pages = items.len().div_ceil(per_page).max(1);
    let page_items: Vec<Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|l| l.item(licensing.product_id(&l.product).unwrap_or(0)))
        .collect();
    json_reply(
        StatusCode::OK,
        json!({"items": page_items, "total_pages": total_pages, "total_items": items.len()}),
    )
}
