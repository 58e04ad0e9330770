//! The doctor, `jetpack-worker check [--online]`: owns the checks of an installation and their
//! wording, each problem with a one-line fix (database, claim path, tables, every `jetpack`
//! product's and addon's custom fields, module settings and credentials, `--online` a partner
//! API login). A check may pass with a note (something an admin should know, not a fault).
//! SQL is in `store`.

use std::process::ExitCode;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::jetpack::JetpackClient;
use crate::order::MODULE_NAME;
use crate::store::{ACTIVATION_TEMPLATE, ClaimPath, Store, StoreError};

mod products;
use products::product_checks;

/// The worker's own tables, created by `jetpack-worker migrate`.
const WORKER_TABLES: [&str; 17] = [
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
    "mod_jetpack_holds",
    "mod_jetpack_licences",
    "mod_jetpack_licence_products",
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
