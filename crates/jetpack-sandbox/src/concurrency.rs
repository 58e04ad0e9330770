//! How many partner-API requests are in flight at once, as the partner sees them: every
//! request but the `/_sandbox` control endpoints (the token endpoint included) is counted from
//! its arrival until its handler ends or is dropped (a client that gave up), and the most
//! seen at once is kept, so a test can check a worker's bound on the calls it keeps open.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::state::SandboxState;

/// Requests in flight now and the most seen at once since the last reset.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    now: usize,
    peak: usize,
}

impl SandboxState {
    /// Partner-API requests in flight now (control endpoints excluded).
    pub fn calls_in_flight(&self) -> usize {
        self.lock().in_flight.now
    }

    /// The most partner-API requests seen in flight at once since the start (or the last
    /// [`SandboxState::reset_peak_calls_in_flight`]).
    pub fn peak_calls_in_flight(&self) -> usize {
        self.lock().in_flight.peak
    }

    /// Starts the peak again from the requests in flight now.
    pub fn reset_peak_calls_in_flight(&self) {
        let mut data = self.lock();
        data.in_flight.peak = data.in_flight.now;
    }
}

/// Counts the request in flight while its handler runs.
struct Counted(SandboxState);

impl Counted {
    fn start(state: SandboxState) -> Counted {
        {
            let mut data = state.lock();
            data.in_flight.now += 1;
            data.in_flight.peak = data.in_flight.peak.max(data.in_flight.now);
        }
        Counted(state)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut data = self.0.lock();
        data.in_flight.now = data.in_flight.now.saturating_sub(1);
    }
}

/// The middleware: counts every partner-API request while it is handled.
pub(crate) async fn count(
    State(state): State<SandboxState>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/_sandbox/") {
        return next.run(request).await;
    }
    let _counted = Counted::start(state);
    next.run(request).await
}
