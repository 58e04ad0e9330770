//! Running as a production service: systemd notifications (ready, watchdog, status, stopping)
//! and the optional Prometheus endpoint.

pub mod metrics;
pub mod systemd;
