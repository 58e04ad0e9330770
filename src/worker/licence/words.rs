//! The words WHMCS shows for a licence target: the details text (the key, and where it is
//! attached), the activity lines, and the failures that need an admin, above all the lost
//! answer the worker could not look up (the contract's text, docs/licences.md).

use crate::domain::Target;

/// The details text once the target holds `key` (attached to `site`, when it is).
pub fn details_key(key: &str, site: Option<&str>) -> String {
    match site {
        Some(site) => format!("Jetpack licence key: {key} (attached to {site})"),
        None => format!("Jetpack licence key: {key}"),
    }
}

/// The details text while a suspend keeps the licence detached from its site.
pub fn details_detached(key: &str, site: &str) -> String {
    format!(
        "Jetpack licence key: {key} (detached from {site} while the service is suspended; it is \
         attached again when the service is unsuspended)"
    )
}

/// The details text once every licence of the target was revoked.
pub fn details_revoked(keys: &[String]) -> String {
    match keys {
        [] => "No Jetpack licence was left to revoke.".to_owned(),
        [one] => format!("The Jetpack licence {one} was revoked."),
        many => format!("The Jetpack licences {} were revoked.", many.join(", ")),
    }
}

/// The activity line of an issue (the key is shown in the details field, not here).
pub fn activity_issued(target: Target, product: &str, site: Option<&str>) -> String {
    match site {
        Some(site) => format!(
            "JETPACK MODULE: {target} - the Jetpack licence for {product} is issued and attached \
             to {site}"
        ),
        None => format!("JETPACK MODULE: {target} - the Jetpack licence for {product} is issued"),
    }
}

/// The activity line when the target already held its licence (a repeated Create, an
/// unsuspend).
pub fn activity_held(target: Target, product: &str, site: Option<&str>) -> String {
    let attached = site.map_or_else(String::new, |s| format!(", attached to {s}"));
    format!(
        "JETPACK MODULE: {target} - holds its Jetpack licence for {product}{attached}; nothing was issued"
    )
}

/// The activity line of a change of licence.
pub fn activity_changed(target: Target, from: &[String], to: &str) -> String {
    format!(
        "JETPACK MODULE: {target} - the Jetpack licence is now for {to}; the licence for {} was \
         revoked once the new one was recorded",
        from.join(", ")
    )
}

/// The activity line of a terminate.
pub fn activity_revoked(target: Target, revoked: usize, left: &[String]) -> String {
    let mut line = format!("JETPACK MODULE: {target} - {revoked} Jetpack licence(s) revoked");
    if !left.is_empty() {
        line.push_str(&format!("; {}", left.join("; ")));
    }
    line
}

/// What a terminate could not revoke: a licence whose issue answer was lost and could not be
/// looked up (the admin revokes it in the partner portal, if it exists).
pub fn not_revoked_unknown(product: &str, at: &str) -> String {
    format!(
        "a licence for {product} may have been issued at {at} UTC (its answer was lost) and \
         could not be revoked: find it in the partner portal and revoke it there"
    )
}

/// The contract's failure for a lost issue answer that could not be looked up.
pub fn lost_answer(target: Target, product: &str, at: &str) -> String {
    format!(
        "JETPACK MODULE: {target} - a licence for {product} may have been issued at {at} UTC and \
         its answer was lost; find it in the partner portal and record it, or Retry to issue \
         another"
    )
}

/// A suspend whose setting cancels the plan, for a licence that is not attached to a site
/// (attach off): refused, since a revoked licence never comes back.
pub fn suspend_refused(target: Target, key: Option<&str>) -> String {
    let kept = key.map_or_else(String::new, |k| format!(" The licence {k} stays valid."));
    format!(
        "JETPACK MODULE: {target} - the product's setting \"When WHMCS suspends the service\" \
         cancels the plan, but a Jetpack licence cannot be cancelled and given back (revoking it \
         is for good), and with \"Attach to the site\" off it cannot be detached either.{kept} \
         Set the suspend setting to keep the plan, or turn on \"Attach to the site\" \
         (allowlisted partners) so a suspend detaches the licence."
    )
}

/// A suspend (or unsuspend) that needed no call.
pub fn suspend_kept(target: Target, suspend: bool) -> (String, String) {
    let (result, what) = if suspend {
        (
            "The Jetpack licence stays as it is while the service is suspended.",
            "suspended; its Jetpack licence stays as it is",
        )
    } else {
        (
            "The Jetpack licence was left as it was; nothing to attach again.",
            "unsuspended; its Jetpack licence needed no change",
        )
    };
    (
        result.to_owned(),
        format!("JETPACK MODULE: {target} - {what}"),
    )
}

/// The activity line of a suspend that detached licences.
pub fn activity_detached(target: Target, sites: &[String]) -> String {
    format!(
        "JETPACK MODULE: {target} - suspended: its Jetpack licence was detached from {} (it is \
         attached again on unsuspend)",
        sites.join(", ")
    )
}

/// The failure of an issued licence that could not be attached (the key is kept).
pub fn not_attached(target: Target, key: &str, site: &str, reason: &str) -> String {
    format!(
        "JETPACK MODULE: {target} - the Jetpack licence {key} is issued but could not be \
         attached to {site}: {reason}. Give the customer the key (they can paste it in their \
         site's Jetpack licence page), or fix the cause and Retry to attach it"
    )
}

/// The drift line of a licence found revoked behind our back.
pub fn revoked_outside(target: Target, key: &str, product: &str) -> String {
    format!(
        "JETPACK MODULE: {target} - the Jetpack licence {key} ({product}) was revoked outside \
         WHMCS (the Licensing API reports it revoked); the customer's site has lost the \
         product. Issue a new licence (Terminate, then Create) if the customer should keep it"
    )
}
