//! `jetpack-worker check [--online]`, the doctor: one test per problem it detects (exit 1, the
//! problem and its fix printed), and a healthy setup that passes (exit 0).

use sqlx::mysql::MySqlPool;

use crate::cli::{database_url, output, worker_command};
use crate::helpers::{CLIENT_ID, Env, SECRET};

const FIELDS: [&str; 4] = [
    "Site URL|Your WordPress site",
    "Local User",
    "Plan",
    "jetpack_provisioning_details|Jetpack Provisioning Details",
];

/// Runs `check` with `args` against the test's database and sandbox: (exit code, stdout+stderr).
async fn doctor(db: &MySqlPool, api: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = worker_command(&database_url(db).await, api);
    cmd.arg("check").args(args);
    let out = output(cmd).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Runs `check` on an installation whose WHMCS cron has run the module's hook once (the
/// activation email template is there, as `whmcs/modules/servers/jetpack/lib/Email.php`
/// creates it).
async fn check(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    add_activation_template(&env.db).await;
    doctor(&env.db, &env.sandbox.base_url(), args).await
}

/// The "Jetpack Activation" master template, when it is missing.
async fn add_activation_template(db: &MySqlPool) {
    let _ = sqlx::query(
        "INSERT INTO tblemailtemplates (type, name, subject, message, attachments, fromname,
           fromemail, disabled, custom, language, copyto, blind_copy_to, plaintext)
         SELECT 'product', 'Jetpack Activation', 's', 'm', '', '', '', 0, 1, '', '', '', 0
         FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM tblemailtemplates WHERE name = 'Jetpack Activation')",
    )
    .execute(db)
    .await;
}

/// Exit 1, exactly one problem, and `problem` followed by `fix` on the next line.
fn assert_one_problem(code: Option<i32>, out: &str, problem: &str, fix: &str) {
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("1 problem(s) found"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("FAIL ") && l.contains(problem))
        .unwrap_or_else(|| panic!("no FAIL line with {problem:?} in:\n{out}"));
    let next = lines.get(at + 1).copied().unwrap_or("");
    assert!(
        next.starts_with("     fix: ") && next.contains(fix),
        "fix {fix:?} should follow {problem:?}:\n{out}"
    );
}

#[sqlx::test]
async fn doctor_passes_a_healthy_setup_offline_and_online(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    // A Plan drop-down offering allowed plans (`value|Label` options) is fine.
    env.exec(&format!(
        "UPDATE tblcustomfields SET fieldtype = 'dropdown',
           fieldoptions = 'personal|Personal, Premium|Premium,jetpack-scan'
         WHERE relid = {pid} AND fieldname = 'Plan'"
    ))
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "ok   database reachable (server ",
        "ok   claim path skip-locked (by server version)",
        "ok   worker tables (mod_jetpack_jobs, mod_jetpack_requests, mod_jetpack_ledger, mod_jetpack_adoption_watermarks, mod_jetpack_adoption_candidates, mod_jetpack_adoption_marks, mod_jetpack_adoption_addon_watermark, mod_jetpack_adoption_addon_candidates, mod_jetpack_adoption_addon_marks, mod_jetpack_adoption_window, mod_jetpack_emails, mod_jetpack_workers, mod_jetpack_watch, mod_jetpack_drift, mod_jetpack_holds, mod_jetpack_licences, mod_jetpack_licence_products)",
        "ok   WHMCS tables",
        &format!("ok   jetpack products: #{pid}"),
        &format!("ok   product #{pid} 'Jetpack Premium': custom field 'Site URL'"),
        &format!("ok   product #{pid} 'Jetpack Premium': custom field 'Plan'"),
        &format!("ok   product #{pid} 'Jetpack Premium': credentials filled"),
        "all checks passed",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }
    assert!(
        !out.contains("FAIL") && !out.contains("partner API"),
        "{out}"
    );

    let (code, out) = check(&env, &["--online", "--claim", "update"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "ok   partner API login as '{CLIENT_ID}' (product #{pid})"
        )),
        "{out}"
    );
    assert!(
        out.contains("ok   claim path update (forced; auto picks skip-locked)"),
        "{out}"
    );
    assert!(out.contains("all checks passed"), "{out}");
    assert!(!out.contains(SECRET), "the secret was printed:\n{out}");
}

#[sqlx::test]
async fn doctor_reports_a_missing_field(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env
        .product_with("", CLIENT_ID, SECRET, &[FIELDS[0], FIELDS[2], FIELDS[3]])
        .await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        &format!("product #{pid} 'Jetpack Premium': custom field 'Local User': missing"),
        "add a custom field named exactly 'Local User'",
    );
}

#[sqlx::test]
async fn doctor_names_a_misnamed_field(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let spaced = ["Site Url|Your site", FIELDS[1], FIELDS[2], FIELDS[3]];
    let snake = [FIELDS[0], "local_user", FIELDS[2], FIELDS[3]];
    let first = env.product_with("", CLIENT_ID, SECRET, &spaced).await;
    let second = env.product_with("", CLIENT_ID, SECRET, &snake).await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("2 problem(s) found"), "{out}");
    assert!(
        out.contains(&format!(
            "FAIL product #{first} 'Jetpack Premium': custom field 'Site URL': missing; it is \
             named 'Site Url|Your site'\n     fix: rename it to exactly 'Site URL'"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "FAIL product #{second} 'Jetpack Premium': custom field 'Local User': missing; it \
             is named 'local_user'\n     fix: rename it to exactly 'Local User'"
        )),
        "{out}"
    );
}

#[sqlx::test]
async fn doctor_reports_a_duplicate_field(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let fields = [FIELDS[0], FIELDS[1], FIELDS[2], FIELDS[3], "Plan|Your plan"];
    env.product_with("", CLIENT_ID, SECRET, &fields).await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        "custom field 'Plan': 2 fields have this name",
        "delete all but one",
    );
}

#[sqlx::test]
async fn doctor_refuses_a_password_typed_details_field(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    env.exec(&format!(
        "UPDATE tblcustomfields SET fieldtype = 'password'
         WHERE relid = {pid} AND fieldname LIKE 'jetpack_provisioning_details%'"
    ))
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        "custom field 'jetpack_provisioning_details': it is a Password field: WHMCS 8 encrypts it",
        "set its Field Type to Text Box",
    );
}

#[sqlx::test]
async fn doctor_reports_field_types_that_do_not_work(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    env.exec(&format!(
        "UPDATE tblcustomfields SET fieldtype = IF(fieldname = 'Plan', 'tickbox', 'textarea')
         WHERE relid = {pid} AND (fieldname = 'Plan' OR fieldname LIKE 'Site URL%')"
    ))
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("2 problem(s) found"), "{out}");
    assert!(
        out.contains(
            "custom field 'Site URL': its Field Type is 'textarea'\n     fix: set its Field \
             Type to Text Box"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "custom field 'Plan': its Field Type is 'tickbox'\n     fix: set its Field Type \
             to Drop Down"
        ),
        "{out}"
    );
}

#[sqlx::test]
async fn doctor_reports_a_dropdown_offering_an_unknown_plan(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    env.exec(&format!(
        "UPDATE tblcustomfields SET fieldtype = 'dropdown',
           fieldoptions = 'premium|Premium,gold|Gold,Personal'
         WHERE relid = {pid} AND fieldname = 'Plan'"
    ))
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        "custom field 'Plan': the drop-down offers 'gold', not an allowed plan",
        "offer only these options: free, personal, premium, professional",
    );
}

#[sqlx::test]
async fn doctor_reports_missing_credentials_without_calling_the_api(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let none = env.product_with("", "", "  ", &FIELDS).await;
    let no_secret = env.product_with("", CLIENT_ID, "", &FIELDS).await;
    let (code, out) = check(&env, &["--online"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("2 problem(s) found"), "{out}");
    let fix =
        "     fix: enter the Jetpack Partner Client ID and Client Secret in its Module Settings";
    for (pid, problem) in [
        (none, "the Client ID and the Client Secret are empty"),
        (no_secret, "the Client Secret is empty"),
    ] {
        let line = format!("FAIL product #{pid} 'Jetpack Premium': credentials: {problem}\n{fix}");
        assert!(out.contains(&line), "{line:?} missing in:\n{out}");
    }
    assert!(!out.contains("partner API login"), "{out}");
    assert_eq!(env.sandbox.state().token_calls(), 0);
}

#[sqlx::test(migrations = false)]
async fn doctor_reports_worker_tables_not_migrated(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.product("").await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        "worker tables (mod_jetpack_jobs, mod_jetpack_requests, mod_jetpack_ledger, mod_jetpack_adoption_watermarks, mod_jetpack_adoption_candidates, mod_jetpack_adoption_marks, mod_jetpack_adoption_addon_watermark, mod_jetpack_adoption_addon_candidates, mod_jetpack_adoption_addon_marks, mod_jetpack_adoption_window, mod_jetpack_emails, mod_jetpack_workers, mod_jetpack_watch, mod_jetpack_drift, mod_jetpack_holds, mod_jetpack_licences, mod_jetpack_licence_products): missing or out of date",
        "run `jetpack-worker migrate`",
    );

    let mut migrate = worker_command(&database_url(&env.db).await, "http://127.0.0.1:9");
    migrate.arg("migrate");
    assert!(output(migrate).await.status.success());
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
}

#[sqlx::test]
async fn doctor_reports_missing_whmcs_tables(pool: MySqlPool) {
    // Migrated, but no WHMCS tables: DATABASE_URL names the wrong database.
    let (code, out) = doctor(&pool, "http://127.0.0.1:9", &[]).await;
    assert_one_problem(
        code,
        &out,
        "WHMCS tables: missing tblhosting, tblproducts, tblcustomfields",
        "point DATABASE_URL at the database named in WHMCS's configuration.php",
    );
    assert!(!out.contains("jetpack products"), "{out}");
}

#[sqlx::test]
async fn doctor_reports_no_jetpack_product(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec("INSERT INTO tblproducts (type, name, servertype) VALUES ('hostingaccount', 'Shared', 'cpanel')")
        .await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        "jetpack products: no product uses the jetpack module",
        "set a product's Module Settings → Module Name to \"Jetpack by Automattic\"",
    );
}

#[sqlx::test]
async fn doctor_online_reports_credentials_the_api_refuses(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env
        .product_with("", CLIENT_ID, "not-the-secret", &FIELDS)
        .await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "offline cannot tell:\n{out}");

    let (code, out) = check(&env, &["--online"]).await;
    assert_one_problem(
        code,
        &out,
        &format!(
            "partner API login as '{CLIENT_ID}' (product #{pid}): the partner API refused the \
             client id/secret (invalid_client"
        ),
        "check the Client ID/Secret in the product's Module Settings",
    );
    assert!(
        !out.contains("not-the-secret"),
        "the secret was printed:\n{out}"
    );
}

#[test]
fn doctor_reports_an_unreachable_database() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("mysql://whmcs:pw@127.0.0.1:{port}/whmcs");
    let out = worker_command(&url, "http://127.0.0.1:9")
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_one_problem(
        out.status.code(),
        &text,
        "FAIL database: ",
        "check DATABASE_URL (host, port, user, password, database)",
    );
    assert!(text.contains("refused"), "{text}");
    assert!(!text.contains("pw@"), "{text}");
}

#[sqlx::test]
async fn doctor_reports_a_hook_cache_without_jetpack(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.product("").await;
    // No ModuleHooks row (a fresh WHMCS): nothing to say.
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok   module hooks (hooks.php): WHMCS has no hook cache yet"),
        "{out}"
    );

    env.exec(
        "INSERT INTO tblconfiguration (setting, value, created_at, updated_at)
         VALUES ('ModuleHooks', 'cpanel,jetpackish', NOW(), NOW())",
    )
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        "module hooks (hooks.php): WHMCS's hook cache (tblconfiguration ModuleHooks) does not list jetpack",
        "open a Jetpack product's Module Settings tab and save it once",
    );

    env.exec("UPDATE tblconfiguration SET value = 'cpanel, jetpack' WHERE setting = 'ModuleHooks'")
        .await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok   module hooks (hooks.php) loaded by WHMCS"),
        "{out}"
    );
}

#[sqlx::test]
async fn doctor_reports_the_activation_email_template_and_setting(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let on = env.product("").await;
    let api = env.sandbox.base_url();
    // WHMCS's cron has not run the module's hook yet: no template.
    let (code, out) = doctor(&env.db, &api, &[]).await;
    assert_one_problem(
        code,
        &out,
        "activation email template 'Jetpack Activation': missing",
        "upload the module's hooks.php",
    );
    assert!(
        out.contains(&format!(
            "ok   activation email: sent for products #{on}; switched off for none"
        )),
        "{out}"
    );

    add_activation_template(&env.db).await;
    env.exec("UPDATE tblemailtemplates SET disabled = 1").await;
    let (code, out) = doctor(&env.db, &api, &[]).await;
    assert_one_problem(
        code,
        &out,
        "'Jetpack Activation': disabled",
        "enable it in Setup → Email Templates",
    );

    // Switched off for every product: the template does not matter.
    env.exec("UPDATE tblproducts SET configoption5 = 'off'")
        .await;
    let (code, out) = doctor(&env.db, &api, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "ok   activation email: sent for products none; switched off for #{on}"
        )),
        "{out}"
    );

    env.exec("UPDATE tblproducts SET configoption5 = 'send'")
        .await;
    env.exec("UPDATE tblemailtemplates SET disabled = 0").await;
    let (code, out) = doctor(&env.db, &api, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok   activation email template 'Jetpack Activation'"),
        "{out}"
    );
}

// --- Addons and the plan as a module setting (docs/addons.md) --------------------------------

/// A `jetpack` addon (tbladdons) with these module settings (tblmodule_configuration rows,
/// `configoptionN` = value) and custom fields (type 'addon'); returns its id.
async fn addon(env: &Env, settings: &[(&str, &str)], fields: &[&str]) -> u32 {
    env.exec("INSERT INTO tbladdons (name, autoactivate, module) VALUES ('Jetpack Addon', '', 'jetpack')")
        .await;
    let (id,): (i32,) = sqlx::query_as("SELECT MAX(id) FROM tbladdons")
        .fetch_one(&env.db)
        .await
        .unwrap();
    for (name, value) in settings {
        env.exec(&format!(
            "INSERT INTO tblmodule_configuration (entity_type, entity_id, setting_name, value)
             VALUES ('addon', {id}, '{name}', '{value}')"
        ))
        .await;
    }
    for name in fields {
        env.exec(&format!(
            "INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly)
             VALUES ('addon', {id}, '{name}', 'text', '')"
        ))
        .await;
    }
    id as u32
}

const DETAILS: &str = "jetpack_provisioning_details|Jetpack Provisioning Details";

/// Credentials, the plan and the Local User as module settings.
fn addon_settings<'a>() -> [(&'a str, &'a str); 4] {
    [
        ("configoption1", CLIENT_ID),
        ("configoption2", SECRET),
        ("configoption3", "premium"),
        ("configoption6", "admin"),
    ]
}

fn assert_lines(out: &str, lines: &[String]) {
    for line in lines {
        assert!(out.contains(line.as_str()), "{line:?} missing in:\n{out}");
    }
}

/// A jetpack addon with only its details field, its credentials, plan and Local User as
/// module settings (the Site URL is the parent's domain) is healthy, and its credentials are
/// tried online with the product's.
#[sqlx::test]
async fn doctor_passes_a_healthy_addon_offline_and_online(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let aid = addon(&env, &addon_settings(), &[DETAILS]).await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let a = format!("addon #{aid} 'Jetpack Addon'");
    assert_lines(
        &out,
        &[
            format!("ok   jetpack products: #{pid}\n"),
            format!("ok   jetpack addons: #{aid}\n"),
            format!(
                "ok   {a}: custom field 'Site URL' not there\n     note: the parent service's domain is the site\n"
            ),
            format!(
                "ok   {a}: custom field 'Local User' not there: the module setting Default Local User 'admin' is used\n"
            ),
            format!(
                "ok   {a}: custom field 'Plan' not there: the module setting Plan names the plan\n"
            ),
            format!("ok   {a}: module setting Plan 'premium'\n"),
            format!("ok   {a}: custom field 'jetpack_provisioning_details'\n"),
            format!("ok   {a}: credentials filled\n"),
            "all checks passed".to_owned(),
        ],
    );
    let (code, out) = check(&env, &["--online"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "ok   partner API login as '{CLIENT_ID}' (product #{pid}; addon #{aid})"
        )),
        "{out}"
    );
    assert!(!out.contains(SECRET), "the secret was printed:\n{out}");
}

/// An addon's own fields and settings, each missing: the details field, the Local User (no
/// field, no Default Local User), the plan (no field, no setting), the credentials; and its
/// own fields of the wrong type. A product's fields do not stand in for an addon's.
#[sqlx::test]
async fn doctor_reports_what_an_addon_lacks(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.product("").await;
    let bare = addon(&env, &[], &[]).await;
    let typed = addon(
        &env,
        &addon_settings(),
        &["Site URL", "Local User", "Plan", DETAILS],
    )
    .await;
    env.exec(&format!(
        "UPDATE tblcustomfields SET fieldtype = IF(fieldname = 'Plan', 'tickbox', 'password')
         WHERE type = 'addon' AND relid = {typed} AND fieldname IN ('Plan', '{DETAILS}')"
    ))
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("6 problem(s) found"), "{out}");
    let b = format!("addon #{bare} 'Jetpack Addon'");
    let t = format!("addon #{typed} 'Jetpack Addon'");
    assert_lines(
        &out,
        &[
            format!("ok   {b}: custom field 'Site URL' not there\n"),
            format!(
                "FAIL {b}: custom field 'Local User': missing, and the module setting Default Local User is empty\n     fix: add a custom field named exactly 'Local User', or fill in Default Local User in its Module Settings\n"
            ),
            format!(
                "FAIL {b}: custom field 'Plan': missing, and the module setting Plan is empty\n     fix: add a custom field named exactly 'Plan', or choose a plan in its Module Settings\n"
            ),
            format!(
                "FAIL {b}: custom field 'jetpack_provisioning_details': missing\n     fix: add a custom field named exactly 'jetpack_provisioning_details'\n"
            ),
            format!(
                "FAIL {b}: credentials: the Client ID and the Client Secret are empty\n     fix: enter the Jetpack Partner Client ID and Client Secret in its Module Settings\n"
            ),
            format!("ok   {t}: custom field 'Site URL'\n"),
            format!("ok   {t}: custom field 'Local User'\n"),
            format!(
                "FAIL {t}: custom field 'Plan': its Field Type is 'tickbox'\n     fix: set its Field Type to Drop Down\n"
            ),
            format!(
                "FAIL {t}: custom field 'jetpack_provisioning_details': it is a Password field"
            ),
            format!("ok   {t}: credentials filled\n"),
        ],
    );
}

/// The plan as the product's module setting (configoption3): a product without a Plan field
/// is fine with an allowed plan there, a problem without one; a setting that is not an allowed
/// plan is a problem; a product with both gets a note (the setting wins, docs/addons.md
/// "Which plan"), in text and in JSON. A Default Local User (configoption6) stands in for a missing
/// Local User field.
#[sqlx::test]
async fn doctor_reads_the_plan_and_local_user_module_settings_of_products(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let no_field = ["Site URL|Your WordPress site", "Local User", DETAILS];
    let by_setting = env.product_with("", CLIENT_ID, SECRET, &no_field).await;
    let neither = env.product_with("", CLIENT_ID, SECRET, &no_field).await;
    let both = env.product("").await;
    let no_user = ["Site URL", "Plan", DETAILS];
    let default_user = env.product_with("", CLIENT_ID, SECRET, &no_user).await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption3 = 'Premium' WHERE id IN ({by_setting}, {both});
         UPDATE tblproducts SET configoption6 = 'wpadmin' WHERE id = {default_user}"
    ))
    .await;
    let p = |id: u32| format!("product #{id} 'Jetpack Premium'");
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        &format!(
            "{}: custom field 'Plan': missing, and the module setting Plan is empty",
            p(neither)
        ),
        "add a custom field named exactly 'Plan', or choose a plan in its Module Settings",
    );
    assert_lines(
        &out,
        &[
            format!(
                "ok   {}: custom field 'Plan' not there: the module setting Plan names the plan\n",
                p(by_setting)
            ),
            format!("ok   {}: module setting Plan 'premium'\n", p(by_setting)),
            format!("ok   {}: custom field 'Plan'\n", p(both)),
            format!(
                "ok   {}: module setting Plan 'premium'\n     note: there is a Plan custom field too: the setting wins, so the services' Plan values are not read; leave the setting empty to let the Plan field choose",
                p(both)
            ),
            format!(
                "ok   {}: custom field 'Local User' not there: the module setting Default Local User 'wpadmin' is used\n",
                p(default_user)
            ),
        ],
    );
    let (_, json) = check(&env, &["--json"]).await;
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let noted: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("note").is_some())
        .collect();
    assert_eq!(noted.len(), 1, "{json}");
    assert_eq!(
        noted[0]["name"],
        format!("{}: module setting Plan 'premium'", p(both))
    );
    assert!(noted[0]["problem"].is_null());

    env.exec(&format!(
        "UPDATE tblproducts SET configoption3 = 'gold' WHERE id = {by_setting};
         UPDATE tblproducts SET configoption3 = 'personal' WHERE id = {neither}"
    ))
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        &format!(
            "{}: module setting Plan: 'gold' is not an allowed plan",
            p(by_setting)
        ),
        "choose one of free, personal, premium, professional",
    );
}

/// Jetpack sold only as an addon: no jetpack product is needed.
#[sqlx::test]
async fn doctor_passes_jetpack_sold_only_as_an_addon(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let aid = addon(&env, &addon_settings(), &[DETAILS]).await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "ok   jetpack products: none (sold as addons #{aid})"
        )),
        "{out}"
    );
}

/// An older WHMCS without module addons (no tbladdons.module, no tblmodule_configuration, or
/// no tbladdons at all): the doctor checks the products and leaves addons out.
#[sqlx::test]
async fn doctor_skips_addons_on_a_whmcs_without_module_addons(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    addon(&env, &addon_settings(), &[DETAILS]).await;
    for change in [
        "DROP TABLE tblmodule_configuration",
        "ALTER TABLE tbladdons DROP COLUMN module",
        "DROP TABLE tbladdons",
    ] {
        env.exec(change).await;
        let (code, out) = check(&env, &[]).await;
        assert_eq!(code, Some(0), "{change}:\n{out}");
        assert!(
            out.contains(&format!(
                "ok   product #{pid} 'Jetpack Premium': credentials filled"
            )),
            "{change}:\n{out}"
        );
        assert!(
            !out.contains("jetpack addons") && !out.contains("addon #"),
            "{change}:\n{out}"
        );
    }
}

/// The doctor lists what a WHMCS suspend does to each product's plan (the setting When WHMCS
/// suspends the service: kept by default, cancelled when the product says so).
#[sqlx::test]
async fn doctor_lists_what_a_suspend_does_per_product(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let keeps = env.product("").await;
    let cancels = env.product("").await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption7 = 'cancel' WHERE id = {cancels}"
    ))
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let kept = format!(
        "ok   product #{keeps} 'Jetpack Premium': when WHMCS suspends the service, the Jetpack plan is kept"
    );
    let cancelled = format!(
        "ok   product #{cancels} 'Jetpack Premium': when WHMCS suspends the service, the Jetpack plan is cancelled, and provisioned again on unsuspend"
    );
    assert!(out.contains(&kept), "{out}");
    assert!(out.contains(&cancelled), "{out}");
}

/// The doctor lists, per product and addon, when a manual-setup order is provisioned (the
/// setting When to provision a manual-setup order, configoption8): '' (products saved before the
/// setting) as 'paid'; a product WHMCS sets up itself gets a note; a value the module does not
/// offer is a problem.
#[sqlx::test]
async fn doctor_lists_when_a_manual_setup_order_is_provisioned(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let mut products = Vec::new();
    for (autosetup, setting) in [
        ("", ""),
        ("", "accepted"),
        ("", "create"),
        ("payment", "accepted"),
    ] {
        let pid = env.product(autosetup).await;
        env.exec(&format!(
            "UPDATE tblproducts SET configoption8 = '{setting}' WHERE id = {pid}"
        ))
        .await;
        products.push(pid);
    }
    let settings = [
        ("configoption1", CLIENT_ID),
        ("configoption2", SECRET),
        ("configoption3", "premium"),
        ("configoption6", "admin"),
    ];
    let addon_fields = ["jetpack_provisioning_details"];
    let no_row = addon(&env, &settings, &addon_fields).await;
    let mut accepted = settings.to_vec();
    accepted.push(("configoption8", "accepted"));
    let on_acceptance = addon(&env, &accepted, &addon_fields).await;

    let (code, out) = check(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let [before, review, create, automatic] = products[..] else {
        unreachable!()
    };
    for line in [
        format!(
            "ok   product #{before} 'Jetpack Premium': a manual-setup order is provisioned once \
             its invoice is paid or its order accepted"
        ),
        format!(
            "ok   product #{review} 'Jetpack Premium': a manual-setup order is provisioned once \
             an admin accepts it (a paid invoice alone does not)"
        ),
        format!(
            "ok   product #{create} 'Jetpack Premium': a manual-setup order is provisioned only \
             when an admin clicks Create"
        ),
        format!(
            "ok   product #{automatic} 'Jetpack Premium': a manual-setup order is provisioned \
             once an admin accepts it (a paid invoice alone does not)\n     note: its setup \
             option is 'payment' (WHMCS sets it up itself), so the setting applies only if that \
             becomes \"Do not automatically setup\""
        ),
        format!(
            "ok   addon #{no_row} 'Jetpack Addon': a manual-setup order is provisioned once its \
             invoice is paid or its order accepted"
        ),
        format!(
            "ok   addon #{on_acceptance} 'Jetpack Addon': a manual-setup order is provisioned \
             once an admin accepts it"
        ),
    ] {
        assert!(out.contains(&line), "{line}\nin:\n{out}");
    }

    env.exec(&format!(
        "UPDATE tblproducts SET configoption8 = 'later' WHERE id = {review}"
    ))
    .await;
    let (code, out) = check(&env, &[]).await;
    assert_one_problem(
        code,
        &out,
        &format!(
            "product #{review} 'Jetpack Premium': module setting When to provision a \
             manual-setup order: 'later' is not one of its choices, so only Create provisions \
             its orders"
        ),
        "choose one in its Module Settings: When its invoice is paid",
    );
}
