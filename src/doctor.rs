//! The doctor, `jetpack-worker check [--online]`: owns the checks of an installation and their
//! wording, each problem with a one-line fix (database, claim path, tables, every `jetpack`
//! product's and addon's custom fields, module settings and credentials, `--online` a partner
//! API login). A check may pass with a note (something an admin should know, not a fault).
//! SQL is in `store`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::domain::{ALLOWED_PLANS, Plan};
use crate::jetpack::{Credentials, Failure, JetpackClient};
use crate::order::{
    FIELD_DETAILS, FIELD_LOCAL_USER, FIELD_PLAN, FIELD_SITE_URL, MODULE_NAME, field_key, quote,
};
use crate::store::{ACTIVATION_TEMPLATE, ClaimPath, FieldSetup, ProductSetup, Store, StoreError};

/// The worker's own tables, created by `jetpack-worker migrate`.
const WORKER_TABLES: [&str; 14] = [
    "mod_jetpack_jobs",
    "mod_jetpack_requests",
    "mod_jetpack_ledger",
    "mod_jetpack_adoption_watermarks",
    "mod_jetpack_adoption_candidates",
    "mod_jetpack_adoption_marks",
    "mod_jetpack_adoption_addon_watermark",
    "mod_jetpack_adoption_addon_candidates",
    "mod_jetpack_adoption_addon_marks",
    "mod_jetpack_adoption_window",
    "mod_jetpack_emails",
    "mod_jetpack_workers",
    "mod_jetpack_watch",
    "mod_jetpack_drift",
];

/// The WHMCS tables the worker reads or writes.
pub const WHMCS_TABLES: &str = "tblhosting tblproducts tblcustomfields tblcustomfieldsvalues \
                                tblactivitylog tblmodulelog tblconfiguration tblorders \
                                tblinvoices tblmodulequeue";

/// One check: passed when `problem` is `None`; a problem always comes with a one-line `fix`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// What was checked (for a passed check, with what was found).
    pub name: String,
    /// What is wrong.
    pub problem: Option<String>,
    /// How to fix it.
    pub fix: Option<String>,
    /// Something worth knowing about a passed check (not a problem).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A problem and its one-line fix.
type Problem = (String, String);

fn problem(problem: impl Into<String>, fix: impl Into<String>) -> Option<Problem> {
    Some((problem.into(), fix.into()))
}

fn check(name: impl Into<String>, failed: Option<Problem>) -> Check {
    let (problem, fix) = failed.unzip();
    let name = name.into();
    Check {
        name,
        problem,
        fix,
        note: None,
    }
}

/// A passed check with a note.
fn noted(name: impl Into<String>, note: impl Into<String>) -> Check {
    Check {
        note: Some(note.into()),
        ..check(name, None)
    }
}

/// Every check the doctor ran, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks, passed and failed.
    pub checks: Vec<Check>,
}

impl serde::Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Report", 2)?;
        out.serialize_field("problems", &self.problems())?;
        out.serialize_field("checks", &self.checks)?;
        out.end()
    }
}

impl Report {
    /// How many checks found a problem.
    pub fn problems(&self) -> usize {
        self.checks.iter().filter(|c| c.problem.is_some()).count()
    }
}

/// How long a partner API login check may take (a token request, not a provision).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// `jetpack-worker check`: runs the doctor against the database at `url` (with the claim path
/// `claim` forced, or `None`; a partner API login through `api` when `online`), prints the
/// report (text, or JSON with `json`), exits 1 on any problem.
pub async fn command(
    url: &SecretString,
    claim: Option<ClaimPath>,
    api: &JetpackClient,
    online: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = run(url.expose_secret(), claim, online.then_some(api)).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::from(u8::from(report.problems() > 0)))
}

fn describe(e: &StoreError) -> String {
    match e {
        StoreError::Database(inner) => inner.to_string(),
        StoreError::Tls(inner) => format!("{e} ({inner})"),
        other => other.to_string(),
    }
}

const DB_FIX: &str =
    "check DATABASE_URL (host, port, user, password, database) and that the server is running";

/// Runs every check (a partner API login when `api` is given); one that cannot run is a problem.
pub async fn run(url: &str, claim: Option<ClaimPath>, api: Option<&JetpackClient>) -> Report {
    let connect = async {
        let version = Store::probe(url).await?;
        let store = Store::open(Store::connect(url, 2).await?, claim).await?;
        Ok::<_, StoreError>((version, store))
    };
    let checks = match tokio::time::timeout(Duration::from_secs(15), connect).await {
        Ok(Ok((version, store))) => checks(&store, url, &version, claim, api).await,
        Ok(Err(e)) => vec![check("database", problem(describe(&e), DB_FIX))],
        Err(_) => vec![check("database", problem("no answer within 15s", DB_FIX))],
    };
    Report { checks }
}

async fn checks(
    store: &Store,
    url: &str,
    version: &str,
    claim: Option<ClaimPath>,
    api: Option<&JetpackClient>,
) -> Vec<Check> {
    let reachable = format!("database reachable (server {version})");
    let tables = match store.table_names().await {
        Ok(t) => t,
        Err(e) => return vec![check("tables", problem(describe(&e), DB_FIX))],
    };
    let mut checks = vec![
        check(reachable, None),
        tls_check(store, url).await,
        claim_check(version, claim),
    ];
    let has = |t: &str| tables.iter().any(|n| n == t);
    let migrate = "run `jetpack-worker migrate`";
    let worker = match store.ensure_migrated().await {
        Ok(()) if WORKER_TABLES.iter().all(|t| has(t)) => None,
        Ok(()) | Err(StoreError::NotMigrated) => problem("missing or out of date", migrate),
        Err(e) => problem(describe(&e), DB_FIX),
    };
    checks.push(check(
        format!("worker tables ({})", WORKER_TABLES.join(", ")),
        worker,
    ));
    let missing: Vec<&str> = WHMCS_TABLES.split(' ').filter(|t| !has(t)).collect();
    let fix = "point DATABASE_URL at the database named in WHMCS's configuration.php";
    let whmcs = problem(format!("missing {}", missing.join(", ")), fix);
    checks.push(check("WHMCS tables", whmcs.filter(|_| !missing.is_empty())));
    if has("tblconfiguration") {
        checks.push(hooks_check(store).await);
    }
    if has("tblproducts") && has("tblcustomfields") {
        product_checks(store, api, &mut checks).await;
    }
    if has("tblproducts") && has("tblemailtemplates") {
        email_checks(store, &mut checks).await;
    }
    checks
}

/// Whether WHMCS loads the module's `hooks.php`: it does for the modules listed in its hook
/// cache (`tblconfiguration.ModuleHooks`). An absent setting says nothing either way.
async fn hooks_check(store: &Store) -> Check {
    let name = "module hooks (hooks.php)";
    match store.module_hooks().await {
        Ok(None) => check(format!("{name}: WHMCS has no hook cache yet"), None),
        Ok(Some(list)) if lists_module(&list) => check(format!("{name} loaded by WHMCS"), None),
        Ok(Some(_)) => check(
            name,
            problem(
                "WHMCS's hook cache (tblconfiguration ModuleHooks) does not list jetpack, so paid orders wait for the adoption scan and deleted services keep their plans",
                "in WHMCS, open a Jetpack product's Module Settings tab and save it once (this rebuilds the hook cache)",
            ),
        ),
        Err(e) => check(name, problem(describe(&e), DB_FIX)),
    }
}

/// Whether a `ModuleHooks` comma list names the module.
fn lists_module(list: &str) -> bool {
    list.split(',').any(|m| m.trim() == MODULE_NAME)
}

/// The client's activation email (sent by the WHMCS module from WHMCS's cron): which products
/// send it, and, when any does, whether its template exists once and is enabled. The cron hook
/// creates the template, so a missing one means the hook has not run.
async fn email_checks(store: &Store, checks: &mut Vec<Check>) {
    let name = format!("activation email template '{ACTIVATION_TEMPLATE}'");
    let (settings, template) = match (
        store.email_settings().await,
        store.activation_template().await,
    ) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            return checks.push(check(name, problem(describe(&e), DB_FIX)));
        }
    };
    if settings.is_empty() {
        return;
    }
    let list = |on: bool| -> String {
        let ids: Vec<String> = settings
            .iter()
            .filter(|(_, o)| *o == on)
            .map(|(id, _)| format!("#{id}"))
            .collect();
        if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        }
    };
    let (on, off) = (list(true), list(false));
    checks.push(check(
        format!("activation email: sent for products {on}; switched off for {off}"),
        None,
    ));
    if on == "none" {
        return;
    }
    let failed = if template.copies == 0 {
        problem(
            "missing: WHMCS's cron has not run the module's AfterCronJob hook, which creates it",
            "upload the module's hooks.php, save a jetpack product's Module Settings once (WHMCS \
             then loads it) and check that WHMCS's cron runs; or set \"Send the Jetpack \
             activation email\" to off",
        )
    } else if template.disabled {
        problem(
            "disabled: SendEmail refuses it, so no client gets the activation email",
            "enable it in Setup → Email Templates, or set the products' \"Send the Jetpack \
             activation email\" to off",
        )
    } else if template.copies > 1 {
        problem(
            format!("{} master copies", template.copies),
            "delete all but the lowest id in Setup → Email Templates",
        )
    } else {
        None
    };
    checks.push(check(name, failed));
}

/// Whether the connection to the database is encrypted. Without TLS the database password
/// and every order cross the network in clear text: a problem unless the database is on this
/// host (loopback or a socket) or DATABASE_URL says `ssl-mode=disabled` on purpose.
async fn tls_check(store: &Store, url: &str) -> Check {
    let cipher = match store.tls_cipher().await {
        Ok(cipher) => cipher,
        Err(e) => {
            return check(
                "database connection encryption",
                problem(describe(&e), DB_FIX),
            );
        }
    };
    let parsed = url::Url::parse(url).ok();
    let host = parsed.as_ref().and_then(|u| u.host_str()).unwrap_or("");
    let on_purpose = parsed.as_ref().is_some_and(|u| {
        u.query_pairs().any(|(k, v)| {
            matches!(&*k, "ssl-mode" | "sslmode") && v.eq_ignore_ascii_case("disabled")
        })
    });
    match cipher {
        Some(cipher) => check(
            format!("database connection encrypted (TLS, {cipher})"),
            None,
        ),
        None if is_local(host) => check(
            "database connection not encrypted (database on this host)",
            None,
        ),
        None if on_purpose => check(
            "database connection not encrypted (ssl-mode=disabled)",
            None,
        ),
        None => check(
            "database connection encryption",
            problem(
                format!(
                    "the connection to {host} is not encrypted: the database password and every order cross the network in clear text"
                ),
                "enable TLS on the database server and add ?ssl-mode=verify_identity&ssl-ca=/path/to/ca.pem to DATABASE_URL (README: TLS to the database)",
            ),
        ),
    }
}

/// Loopback addresses, `localhost`, and no host at all (a Unix socket).
fn is_local(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.is_empty()
        || bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The claim path the worker will use, and whether this server supports it.
fn claim_check(version: &str, forced: Option<ClaimPath>) -> Check {
    let auto = ClaimPath::for_server(version).as_str();
    let Some(path) = forced else {
        return check(format!("claim path {auto} (by server version)"), None);
    };
    let name = format!("claim path {} (forced; auto picks {auto})", path.as_str());
    let unsupported = path == ClaimPath::SkipLocked && auto != path.as_str();
    let failed = problem("the server has no SKIP LOCKED", "set JETPACK_CLAIM=auto");
    check(name, failed.filter(|_| unsupported))
}

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
async fn product_checks(store: &Store, api: Option<&JetpackClient>, checks: &mut Vec<Check>) {
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

/// The text the command prints: `ok`/`FAIL` lines, fixes and notes indented, then a summary
/// line.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.checks {
        out += &match (&c.problem, &c.fix) {
            (None, _) => format!("ok   {}\n", c.name),
            (Some(p), None) => format!("FAIL {}: {p}\n", c.name),
            (Some(p), Some(fix)) => format!("FAIL {}: {p}\n     fix: {fix}\n", c.name),
        };
        if let Some(note) = &c.note {
            out += &format!("     note: {note}\n");
        }
    }
    out += &match report.problems() {
        0 => "all checks passed\n".to_owned(),
        n => format!("{n} problem(s) found\n"),
    };
    out
}
