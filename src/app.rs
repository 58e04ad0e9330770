//! The commands behind the binary: connect, check the tables, and run `migrate`, `run`,
//! `enqueue`, `requeue`, `status` or `licence` (in `licence`); `check` is handed to `doctor`. `main.rs` only turns the
//! command line into a [`Config`], sets up logging and calls [`run`]. What runs beside the
//! worker (signals, systemd, the heartbeat row, `/metrics`) is wired in `service`; `status`'s
//! report is `status`.

mod licence;
mod service;
mod status;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use backon::Retryable;
use secrecy::ExposeSecret;
use sqlx::mysql::MySqlPool;

use crate::backoff;
use crate::cli::Command;
use crate::config::{Config, DatabaseConfig};
use crate::dns::SystemResolver;
use crate::domain::{Action, AddonId, RequestedBy, ServiceId, Target};
use crate::store::{Store, StoreError};
use crate::text::Chain;
use crate::worker::Worker;

/// Runs the command; the error (if any) is printed once by `main`.
pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let Config {
        command,
        database,
        jetpack,
        worker: settings,
        metrics_addr,
        log_format: _,
    } = config;
    if let Command::Check { online, json } = command {
        // The doctor reports an unreachable database as a problem, so it connects by itself.
        return crate::doctor::command(&database.url, database.claim, &jetpack, online, json).await;
    }
    let service = matches!(command, Command::Run { once: false });
    let pool = connect(&database, service)
        .await
        .context("connecting to the WHMCS database (DATABASE_URL)")?;
    if let Command::Migrate = command {
        Store::migrate(&pool).await.context("migrating")?;
        println!("the worker tables (mod_jetpack_*) are up to date");
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open(pool, database.claim)
        .await
        .context("reading the server")?
        .with_watch(settings.reconcile.schedule.clone())
        .with_delete_grace(settings.delete_grace);
    store.ensure_migrated().await?;
    match command {
        Command::Migrate | Command::Check { .. } => {}
        Command::Run { once } => {
            let resolver = Arc::new(SystemResolver::default());
            let worker = Worker::new(store, jetpack, resolver, settings);
            service::run(&worker, once, metrics_addr).await?;
        }
        Command::Enqueue {
            service_id,
            action,
            addon,
        } => enqueue(&store, service_id, action, addon).await?,
        Command::Requeue {
            service_ids,
            addons,
            all_failed,
        } => requeue(&store, &service_ids, &addons, all_failed).await?,
        Command::Status { json } => status::print(&store, json).await?,
        Command::Licence { what } => licence::run(&store, what).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `enqueue`: records the request for the service or its addon and says what became of it.
async fn enqueue(
    store: &Store,
    service_id: u32,
    action: Action,
    addon: Option<u32>,
) -> anyhow::Result<()> {
    let target = enqueue_target(store, service_id, addon).await?;
    let applied = store.enqueue(target, action, RequestedBy::Cli).await?;
    println!(
        "{} {}: {} (request #{})",
        named(target),
        action.as_str(),
        applied.said,
        applied.request
    );
    Ok(())
}

/// `enqueue`'s target: the service, or its addon; either must exist.
pub(super) async fn enqueue_target(
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
    if service_ids.is_empty() && addons.is_empty() && !all_failed {
        bail!("name service ids (or --addon ids) or pass --all-failed");
    }
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
pub(super) fn named(target: Target) -> String {
    match target {
        Target::Service(s) => format!("service {s}"),
        Target::Addon { addon, service } => format!("addon {addon} (service {service})"),
    }
}

/// Connects; the service (`run`) keeps trying for about two minutes so a database that is
/// restarting at boot delays the start instead of failing it.
async fn connect(database: &DatabaseConfig, patient: bool) -> anyhow::Result<MySqlPool> {
    let url = database.url.expose_secret();
    let pool = (|| Store::connect_limited(url, database.max_connections, database.sessions))
        .retry(backoff::startup_connect(patient))
        .when(StoreError::is_unavailable)
        .notify(
            |e, wait| tracing::warn!(error = %Chain(e), retry_in = ?wait, "database not reachable yet"),
        )
        .await?;
    Ok(pool)
}
