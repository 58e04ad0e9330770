//! How many partner-API requests are in flight at once, as the partner sees them: every
//! request but the `/_sandbox` control endpoints (the token endpoint included) is counted from
//! its arrival until its handler ends or is dropped (a client that gave up), and the most
//! seen at once is kept, so a test can check a worker's bound on the calls it keeps open. The
//! time-weighted mean of the count over the busy span (first arrival to last end since the
//! reset) says how full a worker kept its slots: at a fixed latency, a drain's efficiency is
//! about that mean over the concurrency.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::state::SandboxState;

/// Requests in flight now, the most seen at once since the last reset, and the time-weighted
/// count over the busy span.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    now: usize,
    peak: usize,
    /// When `now` last changed.
    changed: Option<Instant>,
    /// The integral of `now` over time since the reset, in call-seconds.
    call_seconds: f64,
    /// The first arrival and the last end since the reset.
    first: Option<Instant>,
    last_end: Option<Instant>,
}

impl InFlight {
    /// Adds the time since the last change at the count until now.
    fn advance(&mut self, at: Instant) {
        if let Some(t) = self.changed {
            self.call_seconds += self.now as f64 * at.duration_since(t).as_secs_f64();
        }
        self.changed = Some(at);
    }

    fn arrive(&mut self, at: Instant) {
        self.advance(at);
        self.now += 1;
        self.peak = self.peak.max(self.now);
        self.first.get_or_insert(at);
    }

    fn end(&mut self, at: Instant) {
        self.advance(at);
        self.now = self.now.saturating_sub(1);
        self.last_end = Some(at);
    }

    /// The mean count from the first arrival to the last end; 0 before a call ended.
    fn mean(&self) -> f64 {
        match (self.first, self.last_end) {
            (Some(a), Some(b)) if b > a => self.call_seconds / b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        }
    }
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

    /// The time-weighted mean of the requests in flight from the first arrival to the last
    /// end since the start (or the last reset).
    pub fn mean_calls_in_flight(&self) -> f64 {
        self.lock().in_flight.mean()
    }

    /// Starts the peak again from the requests in flight now, and the mean afresh.
    pub fn reset_peak_calls_in_flight(&self) {
        let mut data = self.lock();
        let f = &mut data.in_flight;
        f.peak = f.now;
        f.call_seconds = 0.0;
        f.changed = Some(Instant::now());
        f.first = None;
        f.last_end = None;
    }
}

/// Counts the request in flight while its handler runs.
struct Counted(SandboxState);

impl Counted {
    fn start(state: SandboxState) -> Counted {
        state.lock().in_flight.arrive(Instant::now());
        Counted(state)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.lock().in_flight.end(Instant::now());
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
