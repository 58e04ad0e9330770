//! The doctor's checks of a product or addon that sells Jetpack licences (*Jetpack API*
//! `licence`): its details field, its Licensing API token, its licence product (a slug on
//! sale: the list the worker fetched, or the built-in one), the Site URL when *Attach to the
//! site* is on, what a suspend does; and with `--online`, for each token, that
//! `GET /partner/product-families` answers and lists the products its products sell.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use crate::catalogue::BUILT_IN_PRODUCTS;
use crate::jetpack::JetpackClient;
use crate::licensing::{LicenceToken, LicensingClient, LicensingError};
use crate::order::{FIELD_DETAILS, FIELD_SITE_URL, OnSuspend, is_product_slug, quote};
use crate::store::{FieldSetup, ProductSetup};

use super::{Check, check, noted, problem};

/// Licensing API tokens (by value, never printed), each with the products (`what`, slug) that
/// use it.
pub(super) type Tokens = BTreeMap<String, Vec<(String, String)>>;

/// The offline checks of one licence product or addon (`what` names it); a filled token joins
/// `tokens`. `on_sale` is the product list the worker fetched (empty: the built-in one).
pub(super) fn setup_checks(
    what: &str,
    p: &ProductSetup,
    fields: (&[&FieldSetup], bool),
    on_sale: &[(String, String)],
    tokens: &mut Tokens,
    checks: &mut Vec<Check>,
) {
    let (own, is_product) = fields;
    checks.push(noted(
        format!("{what}: sells Jetpack licences"),
        "the Licensing API (module setting Jetpack API); no Local User or Plan is read",
    ));
    checks.push(check(
        format!("{what}: custom field '{FIELD_DETAILS}'"),
        super::products::field_problem(own, FIELD_DETAILS),
    ));
    let token = p.licence_token.expose_secret().trim().to_owned();
    let slug = p.licence_product.trim();
    let fix = "enter the Licensing API token Automattic gave you in its Module Settings";
    let empty = token.is_empty().then(|| {
        (
            "the Licensing API token is empty".to_owned(),
            fix.to_owned(),
        )
    });
    checks.push(check(format!("{what}: Licensing API token"), empty));
    checks.push(product_check(what, slug, on_sale));
    if !token.is_empty() && is_product_slug(slug) {
        tokens
            .entry(token)
            .or_default()
            .push((what.to_owned(), slug.to_owned()));
    }
    let attach = p.licence_attach.trim().eq_ignore_ascii_case("on");
    if attach && is_product_slug(slug) {
        let field = format!("{what}: custom field '{FIELD_SITE_URL}' (Attach to the site is on)");
        if is_product {
            checks.push(check(
                field,
                super::products::field_problem(own, FIELD_SITE_URL),
            ));
        }
    }
    checks.push(suspend_check(what, &p.suspend_setting, attach));
}

/// The licence product: a slug, and one on sale.
fn product_check(what: &str, slug: &str, on_sale: &[(String, String)]) -> Check {
    let name = format!("{what}: licence product {}", quote(slug));
    let fix = "choose a licence product in its Module Settings";
    if !is_product_slug(slug) {
        return check(name, problem("it is not a licence product slug", fix));
    }
    let listed = if on_sale.is_empty() {
        BUILT_IN_PRODUCTS.iter().any(|(s, _)| *s == slug)
    } else {
        on_sale.iter().any(|(s, _)| s == slug)
    };
    if listed {
        check(name, None)
    } else {
        check(
            name,
            problem("it is not a product on sale (GET /product-families)", fix),
        )
    }
}

/// What a suspend does to the licence.
fn suspend_check(what: &str, setting: &str, attach: bool) -> Check {
    let name = format!("{what}: when WHMCS suspends the service");
    match (OnSuspend::parse(setting), attach) {
        (OnSuspend::KeepPlan, _) => check(format!("{name}, the licence is kept"), None),
        (OnSuspend::CancelPlan, true) => check(
            format!(
                "{name}, the licence is detached from the site, and attached again on unsuspend"
            ),
            None,
        ),
        (OnSuspend::CancelPlan, false) => check(
            name,
            problem(
                "it says cancel, but a licence cannot be cancelled and given back, and with \
                 Attach to the site off it cannot be detached: every suspend fails",
                "set When WHMCS suspends the service to keep, or turn Attach to the site on \
                 (allowlisted partners only)",
            ),
        ),
    }
}

/// `--online`: per token, `GET /partner/product-families` answers and lists each product.
pub(super) async fn login_checks(api: &JetpackClient, tokens: Tokens, checks: &mut Vec<Check>) {
    if tokens.is_empty() {
        return;
    }
    let client = match LicensingClient::beside(api) {
        Ok(client) => client,
        Err(e) => {
            let fix = "check JETPACK_API_BASE";
            checks.push(check("Licensing API", problem(e.to_string(), fix)));
            return;
        }
    };
    for (token, users) in tokens {
        let secret = SecretString::from(token);
        let Some(token) = LicenceToken::new(secret.expose_secret()) else {
            continue;
        };
        let whose: Vec<&str> = users.iter().map(|(w, _)| w.as_str()).collect();
        let name = format!("Licensing API token of {}", whose.join("; "));
        match client
            .partner_product_families(&token, &mut Vec::new())
            .await
        {
            Ok(products) => {
                checks.push(check(name, None));
                for (what, slug) in users {
                    let sold = products.iter().any(|p| p.slug == slug);
                    let failed = (!sold).then(|| {
                        (
                            format!("the token's partner does not sell {}", quote(&slug)),
                            "choose one of its products in the Module Settings".to_owned(),
                        )
                    });
                    checks.push(check(
                        format!("{what}: licence product on sale to this partner"),
                        failed,
                    ));
                }
            }
            Err(e @ LicensingError::Transient { .. }) => {
                let fix = "check JETPACK_API_BASE and that this host can reach it";
                checks.push(check(name, problem(e.to_string(), fix)));
            }
            Err(e) => {
                let fix = "check the Licensing API token in the Module Settings (a test or a production token Automattic gave you)";
                checks.push(check(name, problem(e.to_string(), fix)));
            }
        }
    }
}
