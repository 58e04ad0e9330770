//! Running as a production service: systemd notifications (ready, watchdog, status, stopping),
//! the optional Prometheus endpoint and the worker's heartbeat row in the database. The
//! reporters read the worker's `health::Vitals` and never the worker itself: the entry point
//! (`app`) wires them to it, so `ops` imports nothing from `worker`. The metric names are
//! `crate::metrics`, a leaf.

pub mod presence;
pub mod prometheus;
pub mod systemd;
