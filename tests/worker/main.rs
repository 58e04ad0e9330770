//! The one integration test binary. Every test gets its own MariaDB database (`#[sqlx::test]`,
//! migrations applied) holding the real WHMCS table definitions, and its own sandbox partner
//! API on loopback.
//!
//! - `outcomes`: one test (or more) per row of the README's outcome table (How it works).
//! - `fields`: WHMCS custom-field conventions, write-back scoping, 7.8.3 layout, utf8mb3.
//! - `claiming`: leases, both claim paths, concurrent workers, enqueue rules, drain.
//! - `batch`: the batched finish: fences per job, the same end as one job's finish (a seeded
//!   differential test), the per-job fallback, one transaction per batch, its EXPLAINs.
//! - `adoption`: which Pending services the worker picks up by itself.
//! - `adoption_backlog`: a backlog of paid orders adopted by the first scan, a page at a time
//!   in one transaction, and two workers on one page.
//! - `adoption_when`: the setting *When to provision a manual-setup order*: paid, accepted
//!   (fraud review) or Create only, for services and addons; the hooks agree for every value.
//! - `discovery`: services and addons committed below the adoption watermark (the window).
//! - `bounded`: oversized partner-API answers, short excerpts in errors and the module log.
//! - `secrets`: the client secret and tokens never reach a table or the process log.
//! - `cli`: the binary's commands, settings and exit codes.
//! - `doctor`: `check [--online]`, one test per problem it detects, and a healthy setup.
//! - `service`: systemd unit, SIGTERM drain, metrics, housekeeping, least-privilege user.
//! - `reliability`: worker processes under faults, a SIGKILL mid-drain, database restarts.
//! - `bad_input`: a table of bad and odd customer input, each ending clearly.
//! - `holds`: Hold / Resume per partner account: held jobs stay queued, no call, resumed in order.
//! - `politeness`: the per-account breaker and rate limit against sandbox outages and 429s.
//! - `liveness`: `mod_jetpack_workers` heartbeats, `status`'s workers and its no-worker warning.
//! - `reconcile`: status spellings, late effects, lagging status, portal changes, the reconciler.
//! - `sessions`: every pooled session's lock-wait and idle-in-transaction limits.
//! - `versions`: mixed versions: a newer schema is refused, unknown request kinds and job
//!   actions are left untouched.
//! - `proxy`: a test-owned TCP proxy (pause, resume, cut) to put between a worker and MariaDB.
//! - `galera`: three workers on a three-node Galera cluster of its own, one node killed.
//! - `sites`: several targets on one site, a service deleted mid-provision, a moved addon.
//! - `deleted`: the grace period on delete: a deleted service's plan cancelled after it, Cancel
//!   now, Keep the plan, a grace of zero, the sweep, a terminate on the same site meanwhile.
//! - `pace`: the concurrency bounds partner-API calls in flight (sandbox-observed) with jobs
//!   claimed ahead; a stop never starts a call for a job claimed ahead.
//! - `licences`: Jetpack licences through the Licensing API: issued exactly once whatever is
//!   lost, revoked, changed issue-then-revoke, detached on suspend, reported when revoked outside.
//! - `inbox`: requests applied as sets: batch size 1 vs 500 (differential), a backlog never
//!   holds claims back, the statements a backlog costs.

mod addons;
mod addons_php;
mod adoption;
mod adoption_backlog;
mod adoption_when;
pub(crate) mod bad_input;
mod batch;
mod bounded;
mod claiming;
mod cli;
mod deleted;
mod discovery;
mod doctor;
mod fields;
mod galera;
mod helpers;
mod higher;
mod holds;
mod inbox;
mod ledger;
mod licences;
mod licences_ops;
mod lifecycle;
mod liveness;
mod model;
mod model_licences;
mod outcome_writes;
mod outcomes;
mod pace;
mod partition;
mod politeness;
mod proxy;
mod reconcile;
mod reliability;
mod scenario;
mod secrets;
mod service;
mod sessions;
mod sites;
mod suspend;
mod tls;
mod upgrades;
mod versions;
