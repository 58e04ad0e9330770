//! Jetpack provisioning for WHMCS: a worker that provisions and cancels Jetpack plans for WHMCS
//! orders straight from the WHMCS database. (The sandbox partner API that tests, the demo and
//! the benchmarks talk to is its own crate, `crates/jetpack-sandbox`, a dev-dependency only.)
//!
//! Layout: `cli` (settings) → `app` (commands) → `worker` (claim, process, write back), which
//! uses `store` (all SQL), `jetpack` (partner API client), `order` (reading WHMCS's custom
//! fields), `retry` (pure schedules) and `dns`. Leaves under them all: `domain`, `lifecycle`,
//! `rules` and `text`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod cli;
pub mod dns;
pub mod doctor;
pub mod domain;
pub mod jetpack;
pub mod lifecycle;
pub mod ops;
pub mod order;
pub mod retry;
pub mod rules;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod worker;
