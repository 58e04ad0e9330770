//! Running as a production service: systemd notifications (ready, watchdog, status, stopping),
//! the optional Prometheus endpoint and the worker's heartbeat row in the database.

pub mod metrics;
pub mod presence;
pub mod systemd;
