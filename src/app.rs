//! The commands behind the binary: connect, check the tables, and run `migrate`, `run`,
//! `enqueue`, `requeue` or `status`; `check` is handed to `doctor`. `main.rs` only parses,
//! sets up logging and calls [`run`].

use std::process::ExitCode;
use std::sync::Arc;

use std::time::Duration;

use anyhow::{Context, bail};
use backon::{ExponentialBuilder, Retryable};
use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::cli::{ClaimSetting, Cli, Command};
use crate::dns::SystemResolver;
use crate::domain::{AddonId, RequestedBy, ServiceId, Target};
use crate::jetpack::{JetpackClient, Politeness, Timeouts};
use crate::ops;
use crate::retry::RetryPolicy;
use crate::store::{ClaimPath, LIVE_WITHIN_SECS, StatusReport, Store, StoreError, WorkerRow};
use crate::text::Chain;
use crate::worker::{Worker, WorkerSettings};

/// A setting that is wrong before anything runs (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Checks what clap cannot: required and well-formed values. One line each.
pub fn validate(cli: &Cli) -> Result<(), ConfigError> {
    let url = cli.database_url.as_deref().unwrap_or("").trim();
    if url.is_empty() {
        return Err(ConfigError(
            "DATABASE_URL is required (mysql://user:pass@host:3306/whmcs)".into(),
        ));
    }
    if !url.starts_with("mysql://") && !url.starts_with("mariadb://") {
        return Err(ConfigError("DATABASE_URL must start with mysql://".into()));
    }
    JetpackClient::new(&cli.api_base, Timeouts::default())
        .map_err(|e| ConfigError(format!("JETPACK_API_BASE: {e}")))?;
    Ok(())
}

/// Runs the command; the error (if any) is printed once by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Check { online, json } = cli.command {
        // The doctor reports an unreachable database as a problem, so it connects by itself.
        return crate::doctor::command(&cli, online, json).await;
    }
    let url = cli.database_url.clone().unwrap_or_default();
    let max_connections = (cli.concurrency / 2).clamp(2, 16) + 2;
    let service = matches!(cli.command, Command::Run { once: false });
    let pool = connect(&url, max_connections, service)
        .await
        .context("connecting to the WHMCS database (DATABASE_URL)")?;
    if let Command::Migrate = cli.command {
        Store::migrate(&pool).await.context("migrating")?;
        println!("the worker tables (mod_jetpack_*) are up to date");
        return Ok(ExitCode::SUCCESS);
    }
    let claim = match cli.claim {
        ClaimSetting::Auto => None,
        ClaimSetting::SkipLocked => Some(ClaimPath::SkipLocked),
        ClaimSetting::Update => Some(ClaimPath::Update),
    };
    let store = Store::open(pool, claim)
        .await
        .context("reading the server")?;
    store.ensure_migrated().await?;
    match cli.command {
        Command::Migrate | Command::Check { .. } => Ok(ExitCode::SUCCESS),
        Command::Run { once } => {
            let worker = build_worker(&cli, store)?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            if once {
                let summary = worker.run_until_idle(shutdown).await?;
                tracing::info!(
                    applied = summary.applied,
                    adopted = summary.adopted,
                    processed = summary.processed,
                    lost_leases = summary.lost_leases,
                    "run --once finished"
                );
            } else {
                if let Some(addr) = cli.metrics_addr {
                    ops::metrics::serve(addr).await?;
                }
                ops::systemd::ready("ready: polling for jobs");
                tokio::spawn(ops::systemd::heartbeat(
                    worker.store().clone(),
                    worker.clone(),
                    shutdown.clone(),
                ));
                serve(&worker, shutdown).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Enqueue {
            service_id,
            action,
            addon,
        } => {
            let target = enqueue_target(&store, service_id, addon).await?;
            let applied = store.enqueue(target, action, RequestedBy::Cli).await?;
            println!(
                "{} {}: {} (request #{})",
                named(target),
                action.as_str(),
                applied.said,
                applied.request
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Requeue {
            service_ids,
            addons,
            all_failed,
        } => {
            if service_ids.is_empty() && addons.is_empty() && !all_failed {
                bail!("name service ids (or --addon ids) or pass --all-failed");
            }
            requeue(&store, &service_ids, &addons, all_failed).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let report = store.status_report(10).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render_status(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `run`: the service loop, with its heartbeat row kept fresh through the drain and marked
/// stopped once the drain has finished.
async fn serve(worker: &Worker, shutdown: CancellationToken) -> anyhow::Result<()> {
    let presence_stop = CancellationToken::new();
    let presence = tokio::spawn(ops::presence::keep(worker.clone(), presence_stop.clone()));
    let ran = worker.run(shutdown).await;
    presence_stop.cancel();
    if let Err(e) = presence.await {
        tracing::debug!(error = %e, "the heartbeat task ended abnormally");
    }
    if ran.is_ok() {
        ops::presence::stopped(worker).await;
    }
    Ok(ran?)
}

/// `enqueue`'s target: the service, or its addon; either must exist.
async fn enqueue_target(
    store: &Store,
    service_id: u32,
    addon: Option<u32>,
) -> anyhow::Result<Target> {
    let sid = ServiceId(service_id);
    let Some(addon) = addon else {
        if store.load_service(sid).await?.is_none() {
            bail!("service {service_id} does not exist in tblhosting");
        }
        return Ok(Target::Service(sid));
    };
    match store.addon_parent(AddonId(addon)).await? {
        Some(parent) if parent == sid => Ok(Target::Addon {
            addon: AddonId(addon),
            service: sid,
        }),
        Some(parent) => bail!("addon {addon} belongs to service {parent}, not {service_id}"),
        None => bail!("addon {addon} does not exist in tblhostingaddons"),
    }
}

/// `requeue`: records a retry for each named service and addon (and every failed one with
/// `all_failed`), applies them, and says what became of each named one.
async fn requeue(
    store: &Store,
    service_ids: &[u32],
    addons: &[u32],
    all_failed: bool,
) -> anyhow::Result<()> {
    let mut targets: Vec<Target> = service_ids
        .iter()
        .map(|s| Target::Service(ServiceId(*s)))
        .collect();
    for addon in addons {
        let Some(parent) = store.addon_parent(AddonId(*addon)).await? else {
            bail!("addon {addon} does not exist in tblhostingaddons");
        };
        targets.push(Target::Addon {
            addon: AddonId(*addon),
            service: parent,
        });
    }
    let done = store.requeue(&targets, all_failed).await?;
    println!("requeued {} job(s)", done.jobs.len());
    for (target, said) in done.named {
        println!("{}: {said}", named(target));
    }
    Ok(())
}

/// How the command line names a target: `service 12` or `addon 5 (service 12)`.
fn named(target: Target) -> String {
    match target {
        Target::Service(s) => format!("service {s}"),
        Target::Addon { addon, service } => format!("addon {addon} (service {service})"),
    }
}

/// Connects; the service (`run`) keeps trying for about two minutes so a database that is
/// restarting at boot delays the start instead of failing it.
async fn connect(url: &str, max_connections: u32, patient: bool) -> anyhow::Result<MySqlPool> {
    let attempts = if patient { 12 } else { 0 };
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(15))
        .with_max_times(attempts)
        .with_jitter();
    let pool = (|| Store::connect(url, max_connections))
        .retry(policy)
        .when(StoreError::is_unavailable)
        .notify(
            |e, wait| tracing::warn!(error = %Chain(e), retry_in = ?wait, "database not reachable yet"),
        )
        .await?;
    Ok(pool)
}

fn build_worker(cli: &Cli, store: Store) -> anyhow::Result<Worker> {
    let api = JetpackClient::new(
        &cli.api_base,
        Timeouts {
            request: cli.api_timeout,
            ..Timeouts::default()
        },
    )?
    .with_politeness(Politeness::new(cli.rate_limit.0));
    let settings = WorkerSettings {
        concurrency: cli.concurrency,
        poll_interval: cli.poll_interval,
        lease: cli.lease,
        lease_margin: lease_margin(cli.lease),
        drain_timeout: cli.drain_timeout,
        adopt: cli.adopt,
        adopt_interval: cli.adopt_interval,
        cancel_deleted: cli.cancel_deleted,
        retention: Some(cli.retention),
        retry: RetryPolicy {
            base: cli.retry_base,
            max_attempts: cli.max_attempts,
            ..RetryPolicy::DEFAULT
        },
        ..WorkerSettings::default()
    };
    Ok(Worker::new(
        store,
        Arc::new(api),
        Arc::new(SystemResolver::default()),
        settings,
    ))
}

/// The margin an acting call must leave on the lease: a quarter of the lease, 1 to 5 s.
pub fn lease_margin(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; stop with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
    ops::systemd::stopping();
    shutdown.cancel();
}

/// The text form of `status`.
pub fn render_status(r: &StatusReport) -> String {
    let mut out = String::new();
    if let Some(warning) = &r.no_worker {
        out.push_str(&format!("WARNING: {warning}\n"));
    }
    out.push_str(&format!(
        "requests not yet applied: {}\n",
        r.requests_pending
    ));
    out.push_str("jobs by state:\n");
    for (state, n) in &r.counts {
        out.push_str(&format!("  {state:<12} {n}\n"));
    }
    match (&r.oldest_due, r.oldest_due_age_secs) {
        (Some(j), Some(age)) => out.push_str(&format!(
            "oldest due job: {} ({}, {}) due for {age}s\n",
            j.id,
            named(Target::from_ids(j.service_id, j.addon_id)),
            j.action
        )),
        _ => out.push_str("oldest due job: none\n"),
    }
    out.push_str(&format!("waiting on DNS: {}\n", r.waiting_dns.len()));
    for j in &r.waiting_dns {
        out.push_str(&format!(
            "  {} next check {}\n",
            named(Target::from_ids(j.service_id, j.addon_id)),
            j.run_at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    out.push_str(&format!("recent failures: {}\n", r.recent_failures.len()));
    for j in &r.recent_failures {
        out.push_str(&format!(
            "  {} {} ({}): {}\n",
            named(Target::from_ids(j.service_id, j.addon_id)),
            j.action,
            j.updated_at.format("%Y-%m-%d %H:%M UTC"),
            j.last_error.as_deref().unwrap_or("")
        ));
    }
    out.push_str(&render_workers(&r.workers));
    out
}

/// The workers part of `status`: one line each, then its last database error, if any.
fn render_workers(workers: &[WorkerRow]) -> String {
    let mut out = format!("workers: {}\n", workers.len());
    for w in workers {
        let state = match (w.stopped_at, w.is_live(LIVE_WITHIN_SECS)) {
            (Some(at), _) => format!("stopped {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            (None, true) => "running".to_owned(),
            (None, false) => format!("not seen for {}s (killed or cut off?)", w.seen_secs_ago),
        };
        out.push_str(&format!(
            "  {} host {} pid {} version {} started {} last seen {}s ago, in flight {}: {state}\n",
            w.owner,
            w.host,
            w.pid,
            w.version,
            w.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            w.seen_secs_ago,
            w.in_flight
        ));
        if let Some(e) = &w.last_db_error {
            out.push_str(&format!("    last database error: {e}\n"));
        }
    }
    out
}
