//! The worker's side of WHMCS's module log: an attempt's partner-API exchanges (the client's
//! masked, bounded records) become the store's module-log entries. The conversion lives here
//! so that neither the store nor the API client knows the other's types.

use crate::jetpack::Exchange;
use crate::store::ModuleLogEntry;

/// An attempt's exchanges, in order, as the store writes them.
pub(super) fn entries(log: Vec<Exchange>) -> Vec<ModuleLogEntry> {
    log.into_iter()
        .map(|x| ModuleLogEntry {
            action: x.action,
            request: x.request,
            response: x.response,
        })
        .collect()
}
