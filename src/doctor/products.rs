//! The doctor's checks of every `jetpack` product and addon: how it is sold, its custom fields
//! (Site URL, Local User, Plan, the details field), its module settings (Plan, Default Local
//! User; what a suspend does and when a manual-setup order is provisioned, in words) and
//! partner credentials, and with `--online` a login with each partner account.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use crate::domain::{ALLOWED_PLANS, Plan};
use crate::jetpack::{Credentials, Failure, JetpackClient};
use crate::manual_setup::ManualSetup;
use crate::order::{
    FIELD_DETAILS, FIELD_LOCAL_USER, FIELD_PLAN, FIELD_SITE_URL, OnSuspend, field_key, quote,
};
use crate::store::{FieldSetup, ProductSetup, Store};

use super::{Check, DB_FIX, LOGIN_TIMEOUT, Problem, check, describe, noted, problem};

/// How Jetpack is sold: as a product of its own, or as an addon to another product's service
/// (docs/addons.md).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sold {
    Product,
    Addon,
}

impl Sold {
    fn word(self) -> &'static str {
        match self {
            Sold::Product => "product",
            Sold::Addon => "addon",
        }
    }
}

/// The `jetpack` products and addons and their custom fields.
struct Setups {
    products: Vec<ProductSetup>,
    fields: Vec<FieldSetup>,
    addons: Vec<ProductSetup>,
    addon_fields: Vec<FieldSetup>,
}

/// Partner accounts, each with the products and the addons that use it.
type Accounts = BTreeMap<(String, String), (Vec<String>, Vec<String>)>;

/// Every `jetpack` product and addon: which there are, then each one's custom fields, module
/// settings and credentials; with `api`, a partner API login per account.
pub(super) async fn product_checks(
    store: &Store,
    api: Option<&JetpackClient>,
    checks: &mut Vec<Check>,
) {
    let Some(setups) = read_setups(store, checks).await else {
        return;
    };
    if !listing_checks(&setups, checks) {
        return;
    }
    let mut accounts = Accounts::new();
    for (sold, list, all_fields) in [
        (Sold::Product, &setups.products, &setups.fields),
        (Sold::Addon, &setups.addons, &setups.addon_fields),
    ] {
        for p in list {
            let own: Vec<&FieldSetup> =
                all_fields.iter().filter(|f| f.product_id == p.id).collect();
            setup_checks(sold, p, &own, checks);
            credentials_check(sold, p, &mut accounts, checks);
        }
    }
    if let Some(api) = api {
        login_checks(api, accounts, checks).await;
    }
}

/// Reads the products and addons; `None` (with the problem) when the products cannot be read.
async fn read_setups(store: &Store, checks: &mut Vec<Check>) -> Option<Setups> {
    let (products, fields) = match (store.jetpack_products().await, store.jetpack_fields().await) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(e), _) | (_, Err(e)) => {
            checks.push(check("jetpack products", problem(describe(&e), DB_FIX)));
            return None;
        }
    };
    // Without module addons (WHMCS before 7.2) these are empty.
    let (addons, addon_fields) = match (
        store.jetpack_addons().await,
        store.jetpack_addon_fields().await,
    ) {
        (Ok(a), Ok(f)) => (a, f),
        (Err(e), _) | (_, Err(e)) => {
            checks.push(check("jetpack addons", problem(describe(&e), DB_FIX)));
            (Vec::new(), Vec::new())
        }
    };
    Some(Setups {
        products,
        fields,
        addons,
        addon_fields,
    })
}

/// Which products and addons use the module; false (with the problem) when none does.
fn listing_checks(setups: &Setups, checks: &mut Vec<Check>) -> bool {
    let (products, addons) = (&setups.products, &setups.addons);
    let ids = |list: &[ProductSetup]| -> String {
        let ids: Vec<String> = list.iter().map(|p| format!("#{}", p.id)).collect();
        ids.join(", ")
    };
    match (products.is_empty(), addons.is_empty()) {
        (true, true) => {
            let fix = "set a product's Module Settings → Module Name to \"Jetpack by Automattic\"";
            let none = problem("no product uses the jetpack module", fix);
            checks.push(check("jetpack products", none));
            return false;
        }
        (true, false) => checks.push(check(
            format!("jetpack products: none (sold as addons {})", ids(addons)),
            None,
        )),
        (false, _) => checks.push(check(format!("jetpack products: {}", ids(products)), None)),
    }
    if !addons.is_empty() {
        checks.push(check(format!("jetpack addons: {}", ids(addons)), None));
    }
    true
}

/// Whether a product's or addon's credentials are filled in; filled ones join their account
/// in `accounts`.
fn credentials_check(
    sold: Sold,
    p: &ProductSetup,
    accounts: &mut Accounts,
    checks: &mut Vec<Check>,
) {
    let (id, secret) = (p.client_id.trim(), p.client_secret.expose_secret().trim());
    let fix = "enter the Jetpack Partner Client ID and Client Secret in its Module Settings";
    let empty = match (id.is_empty(), secret.is_empty()) {
        (false, false) => None,
        (true, true) => problem("the Client ID and the Client Secret are empty", fix),
        (true, false) => problem("the Client ID is empty", fix),
        (false, true) => problem("the Client Secret is empty", fix),
    };
    if empty.is_none() {
        let key = (id.to_owned(), secret.to_owned());
        let users = accounts.entry(key).or_default();
        let ids = if sold == Sold::Product {
            &mut users.0
        } else {
            &mut users.1
        };
        ids.push(format!("#{}", p.id));
    }
    let filled = if empty.is_none() { " filled" } else { "" };
    checks.push(check(
        format!("{}: credentials{filled}", setup(sold, p)),
        empty,
    ));
}

/// `--online`: one partner API login per account.
async fn login_checks(api: &JetpackClient, accounts: Accounts, checks: &mut Vec<Check>) {
    for ((client_id, secret), (pids, aids)) in accounts {
        let account = quote(&client_id);
        let mut users = Vec::new();
        if !pids.is_empty() {
            users.push(format!("product {}", pids.join(", ")));
        }
        if !aids.is_empty() {
            users.push(format!("addon {}", aids.join(", ")));
        }
        let name = format!("partner API login as {account} ({})", users.join("; "));
        let client_secret = SecretString::from(secret);
        let creds = Credentials {
            client_id,
            client_secret,
        };
        let unreachable = "check JETPACK_API_BASE and that this host can reach it";
        let refused = if pids.is_empty() {
            "check the Client ID/Secret in the addon's Module Settings"
        } else {
            "check the Client ID/Secret in the product's Module Settings"
        };
        let failed = match api.verify(&creds, LOGIN_TIMEOUT).await {
            Ok(()) => None,
            Err(f @ Failure::Transient { .. }) => problem(f.to_string(), unreachable),
            Err(f) => problem(f.to_string(), refused),
        };
        checks.push(check(name, failed));
    }
}

fn setup(sold: Sold, p: &ProductSetup) -> String {
    format!("{} #{} {}", sold.word(), p.id, quote(&p.name))
}

/// The custom fields and the Plan module setting of one product or addon, read as the worker
/// reads an order (docs/addons.md, "Reading an order"): the details field is required; the
/// Site URL is required for a product, and an addon without one uses its parent service's
/// domain; a missing Local User field needs the module setting Default Local User
/// (configoption6), a missing Plan field the module setting Plan (configoption3).
fn setup_checks(sold: Sold, p: &ProductSetup, own: &[&FieldSetup], checks: &mut Vec<Check>) {
    let what = setup(sold, p);
    site_url_check(sold, &what, own, checks);
    local_user_check(p, &what, own, checks);
    plan_checks(sold, p, &what, own, checks);
    checks.push(check(
        format!("{what}: custom field '{FIELD_DETAILS}'"),
        field_problem(own, FIELD_DETAILS),
    ));
    let on_suspend = OnSuspend::parse(&p.suspend_setting).describe();
    checks.push(check(
        format!("{what}: when WHMCS suspends the service, {on_suspend}"),
        None,
    ));
    checks.push(manual_setup_check(sold, p, &what));
}

/// The module setting *When to provision a manual-setup order* (configoption8), in words; a
/// value the module does not offer is a problem (nothing provisions such an order but Create).
fn manual_setup_check(sold: Sold, p: &ProductSetup, what: &str) -> Check {
    let Some(setting) = ManualSetup::parse(&p.manual_setup) else {
        let choices: Vec<&str> = ManualSetup::ALL.iter().map(|m| m.label()).collect();
        return check(
            format!("{what}: module setting When to provision a manual-setup order"),
            problem(
                format!(
                    "{} is not one of its choices, so only Create provisions its orders",
                    quote(&p.manual_setup)
                ),
                format!("choose one in its Module Settings: {}", choices.join("; ")),
            ),
        );
    };
    let line = format!("{what}: {}", setting.describe());
    if p.autosetup.trim().is_empty() {
        return check(line, None);
    }
    let option = match sold {
        Sold::Product => "setup option",
        Sold::Addon => "Auto Activate option",
    };
    noted(
        line,
        format!(
            "its {option} is {} (WHMCS sets it up itself), so the setting applies only if \
             that becomes \"Do not automatically setup\"",
            quote(p.autosetup.trim())
        ),
    )
}

/// Whether `own` has no field by `key`, nor one that looks like it.
fn absent(own: &[&FieldSetup], key: &str) -> bool {
    matches!(lookup(own, key), Lookup::Missing)
}

/// The fix for a missing field.
fn add(key: &str) -> String {
    format!("add a custom field named exactly '{key}'")
}

/// The Site URL field: required for a product; an addon may use its parent's domain.
fn site_url_check(sold: Sold, what: &str, own: &[&FieldSetup], checks: &mut Vec<Check>) {
    let field = format!("{what}: custom field '{FIELD_SITE_URL}'");
    if sold == Sold::Addon && absent(own, FIELD_SITE_URL) {
        checks.push(noted(
            format!("{field} not there"),
            "the parent service's domain is the site",
        ));
    } else {
        checks.push(check(field, field_problem(own, FIELD_SITE_URL)));
    }
}

/// The Local User field, or else the module setting Default Local User.
fn local_user_check(p: &ProductSetup, what: &str, own: &[&FieldSetup], checks: &mut Vec<Check>) {
    let field = format!("{what}: custom field '{FIELD_LOCAL_USER}'");
    let default_user = p.default_local_user.trim();
    if !absent(own, FIELD_LOCAL_USER) {
        checks.push(check(field, field_problem(own, FIELD_LOCAL_USER)));
    } else if default_user.is_empty() {
        checks.push(check(
            field,
            problem(
                "missing, and the module setting Default Local User is empty",
                format!(
                    "{}, or fill in Default Local User in its Module Settings",
                    add(FIELD_LOCAL_USER)
                ),
            ),
        ));
    } else {
        checks.push(check(
            format!(
                "{field} not there: the module setting Default Local User {} is used",
                quote(default_user)
            ),
            None,
        ));
    }
}

/// The Plan: the field, then the module setting (which wins when both are there).
fn plan_checks(
    sold: Sold,
    p: &ProductSetup,
    what: &str,
    own: &[&FieldSetup],
    checks: &mut Vec<Check>,
) {
    let field = format!("{what}: custom field '{FIELD_PLAN}'");
    let setting = p.plan_setting.trim();
    let plan_field = !absent(own, FIELD_PLAN);
    if plan_field {
        checks.push(check(field, field_problem(own, FIELD_PLAN)));
    } else if setting.is_empty() {
        checks.push(check(
            field,
            problem(
                "missing, and the module setting Plan is empty",
                format!(
                    "{}, or choose a plan in its Module Settings",
                    add(FIELD_PLAN)
                ),
            ),
        ));
    } else {
        checks.push(check(
            format!("{field} not there: the module setting Plan names the plan"),
            None,
        ));
    }
    if !setting.is_empty() {
        checks.push(plan_setting_check(sold, what, setting, plan_field));
    }
}

/// The module setting Plan (not empty): an allowed plan, and whether a Plan field is there too.
fn plan_setting_check(sold: Sold, what: &str, setting: &str, plan_field: bool) -> Check {
    let name = format!("{what}: module setting Plan");
    match Plan::parse(setting) {
        None => check(
            name,
            problem(
                format!("{} is not an allowed plan", quote(setting)),
                format!(
                    "choose one of {} in its Module Settings, or leave it empty to use the \
                     Plan custom field",
                    ALLOWED_PLANS.join(", ")
                ),
            ),
        ),
        Some(plan) if plan_field => {
            let whose = match sold {
                Sold::Product => "services'",
                Sold::Addon => "addons'",
            };
            noted(
                format!("{name} {}", quote(plan.as_str())),
                format!(
                    "there is a Plan custom field too: the setting wins, so the {whose} Plan \
                     values are not read; leave the setting empty to let the Plan field \
                     choose (docs/addons.md, \"Which plan\")"
                ),
            )
        }
        Some(plan) => check(format!("{name} {}", quote(plan.as_str())), None),
    }
}

/// How a product's (addon's) fields answer to one key.
enum Lookup<'a> {
    /// Exactly one field by the exact key.
    One(&'a FieldSetup),
    /// None by that key, and no near-miss.
    Missing,
    /// None by that key, but these (quoted) names are near-misses.
    Misnamed(Vec<String>),
    /// This many fields have the key.
    Many(usize),
}

fn lookup<'a>(fields: &[&'a FieldSetup], key: &str) -> Lookup<'a> {
    let named: Vec<&FieldSetup> = fields
        .iter()
        .copied()
        .filter(|f| field_key(&f.name) == key)
        .collect();
    match named.as_slice() {
        [one] => Lookup::One(one),
        [] => {
            // Near-misses such as `Site Url` or `site_url`: case, spaces, `_` and `-` ignored.
            let loose = |k: &str| k.replace([' ', '_', '-'], "").to_lowercase();
            let near = |f: &&&FieldSetup| loose(field_key(&f.name)) == loose(key);
            let near: Vec<String> = fields.iter().filter(near).map(|f| quote(&f.name)).collect();
            if near.is_empty() {
                Lookup::Missing
            } else {
                Lookup::Misnamed(near)
            }
        }
        many => Lookup::Many(many.len()),
    }
}

/// One of the four custom fields of a product or addon: present exactly once by its exact key, of a
/// type that works, and (a Plan drop-down) offering only allowed plans.
fn field_problem(fields: &[&FieldSetup], key: &str) -> Option<Problem> {
    let field = match lookup(fields, key) {
        Lookup::One(one) => one,
        Lookup::Missing => {
            return problem(
                "missing",
                format!("add a custom field named exactly '{key}'"),
            );
        }
        Lookup::Misnamed(near) => {
            let rename = format!("rename it to exactly '{key}' (or '{key}|Display Name')");
            return problem(format!("missing; it is named {}", near.join(", ")), rename);
        }
        Lookup::Many(n) => {
            let fix = "delete all but one (keep the one holding the customers' values)";
            return problem(format!("{n} fields have this name"), fix);
        }
    };
    let kind = field.field_type.trim().to_ascii_lowercase();
    let wrong = format!("its Field Type is '{kind}'");
    let text_box = "set its Field Type to Text Box";
    let drop_down = "set its Field Type to Drop Down";
    let encrypted = "it is a Password field: WHMCS 8 encrypts it, so the outcome is unreadable";
    let options = field.options.split(',').map(field_key);
    let bad: Vec<String> = options
        .filter(|o| Plan::parse(o).is_none())
        .map(quote)
        .collect();
    let bad = bad.join(", ");
    let offers = format!("the drop-down offers {bad}, not an allowed plan");
    let allowed = format!("offer only these options: {}", ALLOWED_PLANS.join(", "));
    match key {
        FIELD_DETAILS if kind == "password" => problem(encrypted, text_box),
        FIELD_SITE_URL | FIELD_LOCAL_USER if kind != "text" => problem(wrong, text_box),
        FIELD_PLAN if kind != "dropdown" && kind != "text" => problem(wrong, drop_down),
        FIELD_PLAN if kind == "dropdown" && !bad.is_empty() => problem(offers, allowed),
        _ => None,
    }
}
