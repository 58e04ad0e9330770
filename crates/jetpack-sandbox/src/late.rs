//! Calls that land late ([`super::ScriptedReply::LandsLate`]): the handler holds the
//! connection without answering until the client gives up (or the configured `hang` passes,
//! then drops it), while a spawned task performs the call's effect a set time after the call
//! arrived, whether or not the client is still connected.

use std::time::{Duration, Instant};

use axum::response::Response;

use super::conn::ConnHandle;
use super::faults::{reset, sleep_unless_stopping};
use super::state::SandboxState;

/// Runs `effect` `after` the call's `arrived` instant, in a spawned task; never when the
/// sandbox shuts down first.
pub(crate) fn land_late(
    state: &SandboxState,
    arrived: Instant,
    after: Duration,
    effect: impl FnOnce(&SandboxState) + Send + 'static,
) {
    let state = state.clone();
    let at = tokio::time::Instant::from_std(arrived + after);
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep_until(at) => effect(&state),
            () = state.stopping().cancelled() => {}
        }
    });
}

/// Holds the connection without answering for the configured `hang` (cut short when the
/// sandbox shuts down), then drops it: the client never gets an answer.
pub(crate) async fn hold(state: &SandboxState, conn: &ConnHandle) -> Response {
    let hang = state.lock().hang;
    sleep_unless_stopping(state, hang).await;
    reset(conn)
}
