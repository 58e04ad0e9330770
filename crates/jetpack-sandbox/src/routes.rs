//! The sandbox's HTTP surface that mimics the partner API: `POST /oauth2/token`, provision,
//! partner-cancel and status, plus request logging and the JSON 404 fallback. Each `/rest/`
//! handler counts the call, passes the gate in `faults`, then behaves like the real API. The
//! acting handlers (provision and partner-cancel) also log each call as an `ActingCall`, and
//! may let their effect land late. Status answers what each site held `status_lag` ago, in
//! the configured slug spelling.

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::conn::ConnHandle;
use super::faults::{Gate, gate, json_reply, reset};
use super::late::{hold, land_late};
use super::products::{Which, plan_rank, with_added, without};
use super::state::{ActingGuard, ActingKind, CallKind, SandboxState, SitePlan};
use super::{host_of, site_key, status_slug};

/// Plans the provision endpoint accepts.
const PLANS: [&str; 8] = [
    "free",
    "personal",
    "premium",
    "professional",
    "jetpack-backup-realtime",
    "jetpack-backup-daily",
    "jetpack-scan",
    "jetpack-anti-spam",
];

/// Builds the whole sandbox router (API routes and `/_sandbox` control routes).
pub(crate) fn router(state: SandboxState) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/rest/v1.3/jpphp/provision", post(provision))
        .route("/rest/v1.3/jpphp/{site}/partner-cancel", post(cancel))
        .route("/rest/v1.4/jpphp/{site}/status", get(status))
        .merge(super::licensing::router())
        .merge(super::control::router())
        .merge(super::licence_control::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::outage::gate,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::concurrency::count,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let conn = request
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|info| info.0.clone());
    let response = next.run(request).await;
    let peer = conn.as_ref().map(|c| c.peer);
    let dropped = conn.is_some_and(|c| c.is_killed());
    let status = response.status().as_u16();
    tracing::debug!(%method, %path, status, dropped, ?peer, "sandbox request");
    response
}

async fn not_found() -> Response {
    json_reply(
        StatusCode::NOT_FOUND,
        json!({"error": "rest_no_route", "message": "No route was found matching the URL and request method"}),
    )
}

/// Parses an `application/x-www-form-urlencoded` body, whatever the declared content type.
fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(|v| v.trim()).unwrap_or_default()
}

async fn token(State(state): State<SandboxState>, body: Bytes) -> Response {
    let latency = state.lock().token_latency;
    if !super::faults::sleep_unless_stopping(&state, latency).await {
        return json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "stopping"}),
        );
    }
    let form = form(&body);
    let grant_type = field(&form, "grant_type");
    if grant_type != "client_credentials" {
        state.lock().token_calls += 1;
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!({
                "error": "unsupported_grant_type",
                "error_description": format!("Unsupported grant type \"{grant_type}\"; only client_credentials is supported."),
            }),
        );
    }
    match state.issue_token(field(&form, "client_id"), field(&form, "client_secret")) {
        Some(token) => json_reply(
            StatusCode::OK,
            json!({
                "access_token": token,
                "token_type": "bearer",
                "blog_id": 0,
                "blog_url": 0,
                "scope": "jetpack-partner",
            }),
        ),
        None => json_reply(
            StatusCode::BAD_REQUEST,
            json!({
                "error": "invalid_client",
                "error_description": "Unknown client_id or incorrect client_secret.",
            }),
        ),
    }
}

fn bad_request(error: &str, message: String) -> Response {
    json_reply(
        StatusCode::BAD_REQUEST,
        json!({"error": error, "message": message}),
    )
}

/// Sends `response`, or drops the connection instead when the gate asked for it.
fn finish(conn: &ConnHandle, reset_after: bool, response: Response) -> Response {
    if reset_after { reset(conn) } else { response }
}

async fn provision(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = Instant::now();
    let form = form(&body);
    let siteurl = field(&form, "siteurl");
    let key = (!siteurl.is_empty()).then(|| site_key(siteurl));
    let guard = key
        .as_deref()
        .map(|key| begin_provision(&state, key, &form));
    let seq = guard.as_ref().map(ActingGuard::seq);
    let gated = gate(&state, &conn, &headers, key.as_deref()).await;
    let reset_after = match gated {
        Gate::Respond(response) => return response,
        Gate::Act { reset_after } => reset_after,
        Gate::LandsLate(after) => {
            land_late(&state, arrived, after, move |state| {
                provision_act(state, &form, key.as_deref(), seq);
            });
            return hold(&state, &conn).await;
        }
    };
    let response = provision_act(&state, &form, key.as_deref(), seq);
    finish(&conn, reset_after, response)
}

/// Counts a provision for `key` and starts its entry in the acting-call log.
fn begin_provision(state: &SandboxState, key: &str, form: &HashMap<String, String>) -> ActingGuard {
    let plan = field(form, "plan");
    let plan = (!plan.is_empty()).then(|| plan.to_owned());
    let guard = state.begin_acting(key, ActingKind::Provision, plan);
    state.count(key, CallKind::Provision);
    guard
}

/// Whether provisioning `plan` at a site holding `held` is a refused downgrade.
fn is_downgrade(held: &[SitePlan], plan: &str) -> bool {
    let current = held.iter().filter_map(|p| plan_rank(&p.slug)).max();
    matches!((current, plan_rank(plan)), (Some(current), Some(new)) if new < current)
}

/// The provision's effect and answer; `seq` is its acting-call log entry.
fn provision_act(
    state: &SandboxState,
    form: &HashMap<String, String>,
    key: Option<&str>,
    seq: Option<u64>,
) -> Response {
    let Some(key) = key else {
        return bad_request(
            "invalid_siteurl",
            "The required \"siteurl\" argument is missing.".to_owned(),
        );
    };
    if let Some(refused) = refused_form(form) {
        return refused;
    }
    let plan = field(form, "plan");
    let pending = !state.is_resolvable(&host_of(key));
    let mut data = state.lock();
    if is_downgrade(data.holdings.get(key), plan) {
        return bad_request(
            "plan_downgrade_disallowed",
            "Can not automatically downgrade plans. Contact support.".to_owned(),
        );
    }
    let plan = SitePlan {
        slug: plan.to_owned(),
        pending,
        ours: true,
    };
    let products = with_added(data.holdings.get(key), plan);
    data.holdings.set(key, products);
    data.calls.entry(key.to_owned()).or_default().provision_ok += 1;
    if let Some(seq) = seq {
        data.mark_acted(seq);
    }
    drop(data);
    let next_url = if pending {
        String::new()
    } else {
        let site: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        format!("https://jetpack.wordpress.com/jetpack.authorize/1/?site={site}")
    };
    json_reply(
        StatusCode::OK,
        json!({"success": true, "next_url": next_url, "auth_required": true}),
    )
}

/// The answer to a provision form the API refuses whatever the site holds: no local user,
/// an unknown plan, a user the site does not have (`nobody`). None: the form is fine.
fn refused_form(form: &HashMap<String, String>) -> Option<Response> {
    let local_user = field(form, "local_user");
    if local_user.is_empty() {
        return Some(bad_request(
            "invalid_local_user",
            "The required \"local_user\" argument is missing.".to_owned(),
        ));
    }
    let plan = field(form, "plan");
    if !PLANS.contains(&plan) {
        return Some(bad_request(
            "invalid_plan",
            format!("{plan} is not a valid plan"),
        ));
    }
    if local_user == "nobody" {
        return Some(json_reply(
            StatusCode::BAD_REQUEST,
            json!({
                "error_code": "invalid_local_user",
                "error_message": format!("User {local_user} does not exist on the remote site."),
            }),
        ));
    }
    None
}

fn unknown_blog() -> Response {
    json_reply(
        StatusCode::NOT_FOUND,
        json!({"error": "unknown_blog", "message": "Unknown blog"}),
    )
}

async fn cancel(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(site): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = Instant::now();
    let form = form(&body);
    let key = site_key(&site);
    let plan = field(&form, "plan");
    let plan = (!plan.is_empty()).then(|| plan.to_owned());
    let guard = state.begin_acting(&key, ActingKind::Cancel, plan);
    let seq = guard.seq();
    state.count(&key, CallKind::Cancel);
    let gated = gate(&state, &conn, &headers, Some(&key)).await;
    let reset_after = match gated {
        Gate::Respond(response) => return response,
        Gate::Act { reset_after } => reset_after,
        Gate::LandsLate(after) => {
            land_late(&state, arrived, after, move |state| {
                cancel_act(state, &key, &form, seq);
            });
            return hold(&state, &conn).await;
        }
    };
    let response = cancel_act(&state, &key, &form, seq);
    finish(&conn, reset_after, response)
}

/// Which of a site's products a cancel form targets: everything ours with `cancel-all`,
/// else the `plan` field's product, else the family plan.
fn cancel_target(form: &HashMap<String, String>) -> Which<'_> {
    let all = field(form, "cancel-all");
    if ["true", "1", "yes"]
        .iter()
        .any(|t| all.eq_ignore_ascii_case(t))
    {
        return Which::All;
    }
    match field(form, "plan") {
        "" => Which::Family,
        slug => Which::Slug(slug),
    }
}

/// Removes the targeted products of ours from `key`, and answers whether any was removed;
/// `seq` is the call's acting-call log entry.
fn cancel_act(
    state: &SandboxState,
    key: &str,
    form: &HashMap<String, String>,
    seq: u64,
) -> Response {
    if host_of(key).ends_with(".invalid") {
        return unknown_blog();
    }
    let mut data = state.lock();
    let (kept, removed) = without(data.holdings.get(key), cancel_target(form), true);
    if removed {
        data.holdings.set(key, kept);
        data.calls.entry(key.to_owned()).or_default().cancel_ok += 1;
        data.mark_acted(seq);
    }
    drop(data);
    json_reply(StatusCode::OK, json!({"success": removed}))
}

async fn status(
    State(state): State<SandboxState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(site): Path<String>,
    headers: HeaderMap,
) -> Response {
    let key = site_key(&site);
    state.count(&key, CallKind::Status);
    let reset_after = match gate(&state, &conn, &headers, Some(&key)).await {
        Gate::Respond(response) => return response,
        Gate::Act { reset_after } => reset_after,
        Gate::LandsLate(_) => return hold(&state, &conn).await,
    };
    let response = if host_of(&key).ends_with(".invalid") {
        unknown_blog()
    } else {
        status_answer(&state, &key)
    };
    finish(&conn, reset_after, response)
}

/// What `key` held `status_lag` ago, every product in the configured spelling.
fn status_answer(state: &SandboxState, key: &str) -> Response {
    let data = state.lock();
    let (held, spelling) = (data.holdings.lagged(key), data.spelling);
    drop(data);
    let connected = held.iter().any(|p| !p.pending);
    let products: Vec<_> = held
        .iter()
        .map(|p| {
            json!({
                "slug": status_slug(&p.slug, spelling),
                "is_provisioned_by_partner": p.ours,
                "is_provisioned_by_calling_partner": p.ours,
                "is_pending": p.pending,
            })
        })
        .collect();
    json_reply(
        StatusCode::OK,
        json!({
            "blog": {"is_connected": connected, "has_backups_credentials": false},
            "products": products,
        }),
    )
}
