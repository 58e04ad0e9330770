//! Jetpack provisioning for WHMCS: a worker that provisions and cancels Jetpack plans for WHMCS
//! orders straight from the WHMCS database. (The sandbox partner API that tests, the demo and
//! the benchmarks talk to is its own crate, `crates/jetpack-sandbox`, a dev-dependency only.)
//!
//! Layout: `cli` (raw arguments) → `config` (checked settings; each default once, in
//! `defaults`) → `app` (commands) → `worker` (claim, process, write back), which uses `store`
//! (all SQL), `jetpack` (partner API client), `licensing` (the Licensing API client), `order` (reading WHMCS's custom fields), `retry`
//! (pure schedules), `backoff` (waits before a statement is tried again) and `dns`. `ops`
//! reports the worker's `health` to systemd and the database; `app` wires the two. Leaves under
//! them all: `domain`, `lifecycle`, `manual_setup`, `drift` (the reconciler's rules), `rules`, `text` and
//! `metrics` (docs/architecture.md).
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod backoff;
pub mod catalogue;
pub mod catalogue_json;
pub mod cli;
pub mod config;
pub mod defaults;
pub mod dns;
pub mod doctor;
pub mod domain;
pub mod drift;
pub mod health;
pub mod jetpack;
pub mod licensing;
pub mod lifecycle;
pub mod manual_setup;
pub mod metrics;
pub mod ops;
pub mod order;
pub mod retry;
pub mod rules;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod worker;
