//! `jetpack-worker licence record|reissue|list`: the way out of a licence whose issue answer
//! was lost and could not be looked up (docs/licences.md). Record and reissue are requests
//! (`licence_record` with the key, `licence_reissue`), applied at once like `enqueue`; list
//! prints the target's licence rows.

use anyhow::bail;

use super::{enqueue_target, named};
use crate::cli::LicenceCommand;
use crate::domain::RequestedBy;
use crate::lifecycle::RequestKind;
use crate::store::Store;

/// Runs one `licence` subcommand.
pub(super) async fn run(store: &Store, what: LicenceCommand) -> anyhow::Result<()> {
    let (service, addon, kind, key) = match what {
        LicenceCommand::List { service, addon } => return list(store, service, addon).await,
        LicenceCommand::Record {
            service,
            addon,
            key,
        } => (service, addon, RequestKind::LicenceRecord, Some(key)),
        LicenceCommand::Reissue { service, addon } => {
            (service, addon, RequestKind::LicenceReissue, None)
        }
    };
    let target = enqueue_target(store, service, addon).await?;
    if key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        bail!("--key is empty: give the licence key found in the partner portal");
    }
    let id = store
        .record_licence_request(target, kind, key.as_deref(), RequestedBy::Cli)
        .await?;
    let applied = store.apply_requests().await?;
    let said = match applied.into_iter().find(|a| a.request == id) {
        Some(mine) => mine.said,
        None => store
            .request(id)
            .await?
            .and_then(|r| r.decision)
            .unwrap_or_else(|| "recorded; a worker applies it".to_owned()),
    };
    println!(
        "{} {}: {said} (request #{id})",
        named(target),
        kind.as_str()
    );
    Ok(())
}

/// Prints the target's licence rows, oldest first.
async fn list(store: &Store, service: u32, addon: Option<u32>) -> anyhow::Result<()> {
    let target = enqueue_target(store, service, addon).await?;
    let rows = store.licences_of(target).await?;
    if rows.is_empty() {
        println!("{}: no licence", named(target));
    }
    for r in rows {
        println!(
            "{}: #{} {} {} key {} (intent {} UTC){}",
            named(target),
            r.id,
            r.product,
            r.state.as_str(),
            r.key.as_deref().unwrap_or("-"),
            r.intent_time.as_deref().unwrap_or("-"),
            r.attached_site
                .map(|s| format!(", site {s}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
