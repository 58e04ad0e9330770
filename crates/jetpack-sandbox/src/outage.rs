//! A partner-API outage on demand, and the arrival time of every partner-API request (the
//! token endpoint included, the `/_sandbox` control endpoints not), so a test can count the
//! calls made during an outage and measure their rate. The outage answers before anything
//! else (tokens, scripts, faults) and never acts.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::faults::json_reply;
use super::state::SandboxState;

/// How every partner-API request is answered during an outage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outage {
    /// HTTP 503 with an empty body, as a failing load balancer answers.
    Unavailable,
    /// HTTP 429 `rate_limit_exceeded`, with `Retry-After` (seconds) when given.
    TooManyRequests {
        /// The `Retry-After` header's value in seconds.
        retry_after: Option<u64>,
    },
}

/// The outage in force and the requests' arrival times.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    outage: Option<Outage>,
    arrivals: Vec<Instant>,
}

impl SandboxState {
    /// Starts (`Some`) or ends (`None`) an outage of the whole partner API.
    pub fn set_outage(&self, outage: Option<Outage>) {
        self.lock().traffic.outage = outage;
    }

    /// When each partner-API request arrived, in order (control endpoints excluded).
    pub fn arrivals(&self) -> Vec<Instant> {
        self.lock().traffic.arrivals.clone()
    }
}

/// Logs the request's arrival, then answers for the outage, if one is in force.
pub(crate) async fn gate(
    State(state): State<SandboxState>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/_sandbox/") {
        return next.run(request).await;
    }
    let outage = {
        let mut data = state.lock();
        data.traffic.arrivals.push(Instant::now());
        data.traffic.outage.clone()
    };
    match outage {
        None => next.run(request).await,
        Some(Outage::Unavailable) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Some(Outage::TooManyRequests { retry_after }) => {
            let mut response = json_reply(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "rate_limit_exceeded", "message": "Too many requests."}),
            );
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}
