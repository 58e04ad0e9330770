//! Reading a licence target's order: a product (addon) whose *Jetpack API* setting is
//! `licence` needs no Site URL, Local User or plan, only its Licensing API token and licence
//! product (module settings), the details field, and, with *Attach to the site* on, the site
//! (the Site URL field, an addon's parent domain, or the site its licence was last attached
//! to). A child of `order`: the same `Reader`, the same texts of `rules.json`.

use super::{BadInput, Reader, quote};
use crate::domain::{SiteUrl, Target};
use crate::licensing::LicenceToken;
use crate::rules::{self, render};
use crate::store::{DetailsField, FieldRow, ProductRow, ServiceRow};

/// What a licence action needs.
#[derive(Clone, Debug)]
pub struct LicenceOrder {
    /// The service or addon.
    pub target: Target,
    /// The WHMCS client (for activity-log rows).
    pub client_id: u32,
    /// The Licensing API token (configoption10).
    pub token: LicenceToken,
    /// The licence product slug (configoption11).
    pub product: String,
    /// The product (addon definition) whose settings these are.
    pub product_id: u32,
    /// *Attach to the site* is on (configoption12).
    pub attach: bool,
    /// The site to attach to (attach on), or the Site URL when one is filled in.
    pub site: Option<SiteUrl>,
    /// Where to write the outcome; None for a target whose row is gone.
    pub details: Option<DetailsField>,
    /// tblhosting.domainstatus (tblhostingaddons.status).
    pub status: String,
}

/// Whether a stored licence product slug can be one: lower-case letters, digits and `-`.
pub fn is_product_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Whether *Attach to the site* (configoption12) is on.
pub fn attaches(product: &ProductRow) -> bool {
    product.licence_attach.trim().eq_ignore_ascii_case("on")
}

/// Interprets the rows for a licence action; `held` is the site the target's licence was last
/// attached to, which stands in for an empty Site URL field (after a product move).
pub fn read_licence_order(
    service: &ServiceRow,
    fields: &[FieldRow],
    held: Option<&str>,
) -> Result<LicenceOrder, BadInput> {
    let (r, details) = Reader::new(service, fields)?;
    let (token, product) = settings(&r)?;
    let attach = attaches(r.product);
    let site = if attach {
        let held: Vec<&str> = held.into_iter().collect();
        Some(r.site_or_held(r.site_field()?.as_ref(), &held, true)?.0)
    } else {
        let found = r.find_optional(super::FIELD_SITE_URL).ok().flatten();
        found.and_then(|f| f.given().and_then(|v| SiteUrl::parse(v).ok()))
    };
    Ok(LicenceOrder {
        target: service.target,
        client_id: service.client_id,
        token,
        product,
        product_id: service.product_id,
        attach,
        site,
        details: Some(details),
        status: service.status.clone(),
    })
}

/// A licence target whose WHMCS row is gone: what a terminate needs to revoke what it holds,
/// with the settings of the product its licence rows name. None without a token.
pub fn read_gone_licence(target: Target, product: &ProductRow, id: u32) -> Option<LicenceOrder> {
    Some(LicenceOrder {
        target,
        client_id: 0,
        token: LicenceToken::new(&product.licence_token)?,
        product: product.licence_product.trim().to_owned(),
        product_id: id,
        attach: attaches(product),
        site: None,
        details: None,
        status: String::new(),
    })
}

/// The token and the product slug, or what to fix.
fn settings(r: &Reader<'_>) -> Result<(LicenceToken, String), BadInput> {
    let m = &rules::rules().messages;
    let (no_token, no_product) = match r.service.target {
        Target::Service(_) => (&m.licence_no_token, &m.licence_no_product),
        Target::Addon { .. } => (&m.addon_licence_no_token, &m.addon_licence_no_product),
    };
    let name = [(r.texts.name_var, r.pname.as_str())];
    let Some(token) = LicenceToken::new(&r.product.licence_token) else {
        return Err(r.fail(render(no_token, &name)));
    };
    let slug = r.product.licence_product.trim();
    if !is_product_slug(slug) {
        let value = quote(slug);
        let vars = [name[0], ("value", value.as_str())];
        return Err(r.fail(render(no_product, &vars)));
    }
    Ok((token, slug.to_owned()))
}
