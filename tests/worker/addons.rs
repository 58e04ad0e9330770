//! Jetpack sold as a product addon, plan changes through ChangePackage, and the plan as a
//! module setting (docs/addons.md), through the real WHMCS tables of PART C (both layouts), the
//! worker and the sandbox: what the addon, its parent service, other addons, the activity log,
//! the Module Queue, the ledger and the partner hold afterwards.

use std::time::Duration;

use jetpack_sandbox::SandboxConfig;
use jetpack_worker::domain::{Action, AddonId, RequestedBy, ServiceId, Target};
use sqlx::Row;
use sqlx::mysql::MySqlPool;

use crate::bad_input::second_database;
use crate::helpers::{CLIENT_ID, Env, Layout, SECRET, fast_settings};

/// The module settings of an addon (`tblmodule_configuration`), by configoption number.
pub(crate) type Settings<'a> = &'a [(u8, &'a str)];

/// Full settings: credentials, plan premium, no Local User default.
pub(crate) const PREMIUM: Settings<'static> =
    &[(1, CLIENT_ID), (2, SECRET), (3, "premium"), (6, "")];

/// A jetpack addon in the catalogue with these settings and custom fields; returns its id.
pub(crate) async fn addon_def(
    env: &Env,
    autoactivate: &str,
    settings: Settings<'_>,
    fields: &[&str],
) -> u32 {
    let sql = format!(
        "INSERT INTO tbladdons (packages, name, description, billingcycle, autoactivate, module, \
         downloads, autolinkby) VALUES ('', 'Jetpack Backup', '', 'Monthly', '{autoactivate}', \
         'jetpack', '', '')"
    );
    env.exec(&sql).await;
    let id = max_id(env, "tbladdons").await;
    for (n, value) in settings {
        sqlx::query(
            "INSERT INTO tblmodule_configuration (entity_type, entity_id, setting_name, value)
             VALUES ('addon', ?, ?, ?)",
        )
        .bind(id)
        .bind(format!("configoption{n}"))
        .bind(value)
        .execute(&env.db)
        .await
        .unwrap();
    }
    for name in fields {
        env.exec(&format!(
            "INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly) \
             VALUES ('addon', {id}, '{name}', 'text', '')"
        ))
        .await;
    }
    id
}

/// A hosting service (of a product of another module) for `domain`, with an accepted order.
pub(crate) async fn hosting(env: &Env, domain: &str) -> ServiceId {
    env.exec(
        "INSERT INTO tblproducts (type, name, servertype) VALUES ('hostingaccount', 'WordPress Hosting', 'cpanel')",
    )
    .await;
    env.exec(
        "INSERT INTO tblorders (ordernum, userid, date, status) VALUES (1, 5, NOW(), 'Active')",
    )
    .await;
    env.exec(&format!(
        "INSERT INTO tblhosting (userid, orderid, packageid, regdate, domain, domainstatus) \
         SELECT 5, MAX(o.id), MAX(p.id), CURDATE(), '{domain}', 'Active' FROM tblorders o, tblproducts p"
    ))
    .await;
    ServiceId(max_id(env, "tblhosting").await)
}

/// The id of the row just inserted into a WHMCS table (signed INT ids).
pub(crate) async fn max_id(env: &Env, table: &str) -> u32 {
    let id: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT MAX(id) FROM {table}")))
        .fetch_one(&env.db)
        .await
        .unwrap();
    id.unsigned_abs()
}

/// An addon of `def` bought for `parent`, with this status and these custom field values.
pub(crate) async fn addon(
    env: &Env,
    def: u32,
    parent: ServiceId,
    status: &str,
    values: &[(&str, &str)],
) -> Target {
    env.exec(&format!(
        "INSERT INTO tblhostingaddons (orderid, hostingid, addonid, userid, name, billingcycle, \
         tax, status, nextinvoicedate, paymentmethod, notes) \
         VALUES (1, {parent}, {def}, 5, '', 'Monthly', '', '{status}', CURDATE(), '', '')"
    ))
    .await;
    let id = max_id(env, "tblhostingaddons").await;
    for (key, value) in values {
        sqlx::query(
            "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value)
             SELECT id, ?, ? FROM tblcustomfields
             WHERE type = 'addon' AND relid = ? AND (fieldname = ? OR fieldname LIKE CONCAT(?, '|%'))",
        )
        .bind(id)
        .bind(value)
        .bind(def)
        .bind(key)
        .bind(key)
        .execute(&env.db)
        .await
        .unwrap();
    }
    Target::Addon {
        addon: AddonId(id),
        service: parent,
    }
}

/// The addon's own jetpack_provisioning_details value.
pub(crate) async fn addon_details(env: &Env, target: Target) -> Option<String> {
    sqlx::query_scalar(
        "SELECT v.value FROM tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
         WHERE f.type = 'addon' AND v.relid = ? AND f.fieldname LIKE 'jetpack_provisioning_details%'
         ORDER BY v.id LIMIT 1",
    )
    .bind(target.entity_id())
    .fetch_optional(&env.db)
    .await
    .unwrap()
}

pub(crate) async fn addon_status(env: &Env, target: Target) -> (String, String) {
    let row = sqlx::query(
        "SELECT CAST(status AS CHAR) AS s, CAST(termination_date AS CHAR) AS t
         FROM tblhostingaddons WHERE id = ?",
    )
    .bind(target.entity_id())
    .fetch_one(&env.db)
    .await
    .unwrap();
    (row.get("s"), row.get("t"))
}

/// (action, state, last_error) of the target's latest job.
pub(crate) async fn latest(env: &Env, target: Target) -> (String, String, Option<String>) {
    let j = env.store.latest_job(target).await.unwrap().expect("a job");
    (j.action.to_string(), j.state.to_string(), j.last_error)
}

pub(crate) async fn activity(env: &Env, needle: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT description FROM tblactivitylog ORDER BY id")
        .fetch_all(&env.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|d: &String| d.contains(needle))
        .collect()
}

/// Open Module Queue rows: (service_type, service_id, module_action, error).
pub(crate) async fn module_queue(env: &Env) -> Vec<(String, u32, String, String)> {
    sqlx::query_as(
        "SELECT service_type, service_id, module_action, last_attempt_error FROM tblmodulequeue
         WHERE completed = 0 ORDER BY id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap()
}

/// The parent's own custom field (its product has a details field too) and one other Jetpack
/// addon on the same service: neither may change when the addon is provisioned.
async fn provisions_an_addon_and_nothing_else(env: &Env, layout: Layout) {
    let parent = hosting(env, "Shop.Example").await;
    env.exec(&format!(
        "INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly) \
         SELECT 'product', packageid, 'jetpack_provisioning_details', 'text', '' FROM tblhosting WHERE id = {parent}"
    ))
    .await;
    env.exec(&format!(
        "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value) \
         SELECT MAX(id), {parent}, 'the parent''s own' FROM tblcustomfields WHERE type = 'product'"
    ))
    .await;
    // Activated by WHMCS on payment: the adoption scan leaves the other Pending addon alone.
    let def = addon_def(
        env,
        "payment",
        &[(1, CLIENT_ID), (2, SECRET), (3, "premium"), (6, "wpadmin")],
        &["jetpack_provisioning_details|Jetpack"],
    )
    .await;
    let mine = addon(
        env,
        def,
        parent,
        "Pending",
        &[("jetpack_provisioning_details", "")],
    )
    .await;
    let other = addon(
        env,
        def,
        parent,
        "Pending",
        &[("jetpack_provisioning_details", "other's")],
    )
    .await;
    env.store
        .enqueue(mine, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();

    let summary = env.worker().run_once().await.unwrap();

    assert_eq!(summary.processed, 1, "{layout:?}");
    assert_eq!(latest(env, mine).await.1, "done", "{layout:?}");
    let details = addon_details(env, mine).await.unwrap();
    assert!(
        details.starts_with("URL to Activate Jetpack: "),
        "{details}"
    );
    assert_eq!(addon_status(env, mine).await.0, "Active");
    // Untouched: the other addon, the parent's field and status, the parent's own jobs.
    assert_eq!(addon_details(env, other).await.as_deref(), Some("other's"));
    assert_eq!(addon_status(env, other).await.0, "Pending");
    assert_eq!(
        env.details(parent).await.as_deref(),
        Some("the parent's own")
    );
    assert_eq!(env.status(parent).await, "Active");
    assert!(env.store.latest_job(parent).await.unwrap().is_none());
    let lines = activity(env, "Addon ID: ").await;
    assert_eq!(
        lines,
        vec![format!(
            "JETPACK MODULE: Addon ID: {} (Service ID: {parent}) - Jetpack premium plan provisioned for shop.example",
            mine.entity_id()
        )],
        "{layout:?}"
    );
    assert_eq!(
        env.sandbox.state().plan("shop.example").unwrap().slug,
        "premium"
    );
    let held = env.store.ledger(mine).await.unwrap();
    assert_eq!((held.len(), held[0].plan.as_str()), (1, "premium"));
    assert!(env.store.ledger(parent).await.unwrap().is_empty());
}

#[sqlx::test]
async fn an_addon_is_provisioned_for_its_services_domain_in_both_layouts(pool: MySqlPool) {
    let (_, other) = second_database(&pool).await;
    for (layout, db) in [(Layout::V8, pool.clone()), (Layout::V783, other)] {
        let env = Env::with(db, layout, SandboxConfig::default()).await;
        provisions_an_addon_and_nothing_else(&env, layout).await;
    }
}

#[sqlx::test]
async fn an_addon_with_its_own_site_url_and_the_local_user_default(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let parent = hosting(&env, "hosted.example").await;
    let fields = ["Site URL", "jetpack_provisioning_details"];
    // Its own Site URL wins over the parent's domain; no Local User field, no default: the
    // field's message, and no API call.
    let without = addon_def(&env, "", PREMIUM, &fields).await;
    let a = addon(
        &env,
        without,
        parent,
        "Pending",
        &[("Site URL", "blog.elsewhere.example")],
    )
    .await;
    let with_default = addon_def(
        &env,
        "",
        &[(1, CLIENT_ID), (2, SECRET), (3, "personal"), (6, "editor")],
        &fields,
    )
    .await;
    let b = addon(
        &env,
        with_default,
        parent,
        "Pending",
        &[("Site URL", "blog.elsewhere.example")],
    )
    .await;
    for t in [a, b] {
        env.store
            .enqueue(t, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }

    env.worker().run_once().await.unwrap();

    let (_, state, error) = latest(&env, a).await;
    assert_eq!(state, "failed");
    let error = error.unwrap();
    assert!(
        error.starts_with(&format!(
            "JETPACK MODULE: Addon ID: {} (Service ID: {parent}) - ",
            a.entity_id()
        )) && error.contains("addon 'Jetpack Backup' has no custom field named 'Local User'"),
        "{error}"
    );
    assert_eq!(
        addon_details(&env, a).await.as_deref(),
        Some(error.as_str())
    );
    assert_eq!(latest(&env, b).await.1, "done");
    let state = env.sandbox.state();
    assert_eq!(
        state.plan("blog.elsewhere.example").unwrap().slug,
        "personal"
    );
    assert!(state.plan("hosted.example").is_none());
    assert_eq!(state.calls("blog.elsewhere.example").provision, 1);
    // The default was what the worker sent: "nobody" is refused by the partner as such.
    let nobody = addon_def(
        &env,
        "",
        &[(1, CLIENT_ID), (2, SECRET), (3, "personal"), (6, "nobody")],
        &fields,
    )
    .await;
    let c = addon(
        &env,
        nobody,
        parent,
        "Pending",
        &[("Site URL", "third.example")],
    )
    .await;
    env.store
        .enqueue(c, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    let error = latest(&env, c).await.2.unwrap();
    assert!(error.contains("User nobody does not exist"), "{error}");
}

/// A failed addon create lands in the Module Queue as an addon (`service_type = 'addon'`,
/// `service_id` = the addon), stays Pending, and a Retry that succeeds resolves it; then a
/// Terminate cancels the plan and terminates the addon, and nothing of the parent moves.
#[sqlx::test]
async fn an_addon_fails_into_the_module_queue_is_retried_and_terminated(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let parent = hosting(&env, "retry.example").await;
    let def = addon_def(
        &env,
        "",
        &[(1, CLIENT_ID), (2, SECRET), (3, "premium"), (6, "nobody")],
        &["jetpack_provisioning_details"],
    )
    .await;
    let a = addon(&env, def, parent, "Pending", &[]).await;
    env.store
        .enqueue(a, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    assert_eq!(latest(&env, a).await.1, "failed");
    assert_eq!(addon_status(&env, a).await.0, "Pending");
    let queue = module_queue(&env).await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(
        (queue[0].0.as_str(), queue[0].1, queue[0].2.as_str()),
        ("addon", a.entity_id(), "CreateAccount")
    );
    assert!(
        queue[0].3.contains("User nobody does not exist"),
        "{}",
        queue[0].3
    );

    // The admin fixes the default and retries (the Module Queue's Retry calls Create again).
    env.exec(&format!(
        "UPDATE tblmodule_configuration SET value = 'admin' WHERE entity_id = {def} AND setting_name = 'configoption6'"
    ))
    .await;
    let applied = env
        .store
        .enqueue(a, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    assert!(
        applied.said.starts_with("queued provision"),
        "{}",
        applied.said
    );
    env.worker().run_once().await.unwrap();
    assert_eq!(latest(&env, a).await.1, "done");
    assert_eq!(addon_status(&env, a).await.0, "Active");
    assert!(module_queue(&env).await.is_empty());

    env.store
        .enqueue(a, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(latest(&env, a).await.1, "done");
    let (status, terminated_on) = addon_status(&env, a).await;
    assert_eq!(status, "Terminated");
    assert_ne!(terminated_on, "0000-00-00");
    assert!(env.sandbox.state().plan("retry.example").is_none());
    assert!(env.store.ledger(a).await.unwrap().is_empty());
    let details = addon_details(&env, a).await.unwrap();
    assert_eq!(details, "The Jetpack plan for retry.example was cancelled.");
    assert_eq!(env.status(parent).await, "Active");
}

/// Addon input that cannot be valid: a clear message for each, in the job row and the
/// activity log, and not one API call.
#[sqlx::test]
async fn bad_addon_input_fails_clearly_without_an_api_call(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let parent = hosting(&env, "bad.example").await;
    let no_domain = hosting(&env, "").await;
    let details = ["jetpack_provisioning_details"];
    let good = addon_def(
        &env,
        "",
        &[(1, CLIENT_ID), (2, SECRET), (3, "premium"), (6, "admin")],
        &details,
    )
    .await;
    let no_settings = addon_def(
        &env,
        "",
        &[],
        &["Local User", "Plan", "jetpack_provisioning_details"],
    )
    .await;
    let other_module = addon_def(&env, "", PREMIUM, &details).await;
    env.exec(&format!(
        "UPDATE tbladdons SET module = 'cpanel' WHERE id = {other_module}"
    ))
    .await;
    let gone_def = addon_def(&env, "", PREMIUM, &details).await;
    let all = [
        (
            addon(&env, good, ServiceId(999_999), "Pending", &[]).await,
            "its hosting service (id 999999) does not exist in tblhosting",
        ),
        (
            addon(&env, good, no_domain, "Pending", &[]).await,
            "the addon has no Site URL and its service",
        ),
        (
            addon(
                &env,
                no_settings,
                parent,
                "Pending",
                &[("Local User", "admin"), ("Plan", "premium")],
            )
            .await,
            "addon 'Jetpack Backup' needs the Jetpack Partner Client ID and Client Secret in its \
             Module Settings",
        ),
        (
            addon(&env, no_settings, parent, "Pending", &[("Plan", "premium")]).await,
            "the Local User is empty",
        ),
        (
            addon(&env, other_module, parent, "Pending", &[]).await,
            "does not use the jetpack module (its module is 'cpanel')",
        ),
        (
            addon(&env, gone_def, parent, "Pending", &[]).await,
            "no longer exists under Products/Services → Product Addons",
        ),
    ];
    env.exec(&format!("DELETE FROM tbladdons WHERE id = {gone_def}"))
        .await;
    for (t, _) in &all {
        env.store
            .enqueue(*t, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }

    env.worker().run_once().await.unwrap();

    for (t, says) in &all {
        let (_, state, error) = latest(&env, *t).await;
        let error = error.unwrap_or_default();
        assert_eq!(state, "failed", "{t}: {error}");
        assert!(
            error.starts_with(&format!("JETPACK MODULE: {t} - ")) && error.contains(says),
            "{t}: {error} should say {says}"
        );
        assert!(activity(&env, &error).await.len() == 1, "{t}: activity");
    }
    assert!(env.sandbox.state().all_calls().is_empty(), "no API call");
    assert_eq!(env.sandbox.state().token_calls(), 0);
}

#[sqlx::test]
async fn the_addon_read_uses_keys_only(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let parent = hosting(&env, "explain.example").await;
    let def = addon_def(&env, "", PREMIUM, &["jetpack_provisioning_details"]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        if let Target::Addon { addon: a, .. } = addon(&env, def, parent, "Pending", &[]).await {
            ids.push(a);
        }
    }
    // A WHMCS with history: thousands of other addons, fields and values.
    env.exec(
        "INSERT INTO tblhostingaddons (orderid, hostingid, addonid, userid, name, billingcycle, tax,
           status, nextinvoicedate, paymentmethod, notes)
         SELECT seq, seq, 1 + seq % 40, 5, '', 'Monthly', '', 'Active', CURDATE(), '', ''
         FROM seq_1_to_5000;
         INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly)
         SELECT IF(seq % 2 = 0, 'product', 'addon'), seq, CONCAT('f', seq), 'text', '' FROM seq_1_to_2000;
         INSERT INTO tblcustomfieldsvalues (fieldid, relid, value)
         SELECT 1 + seq % 2000, seq, 'x' FROM seq_1_to_20000;
         ANALYZE TABLE tblhostingaddons, tblcustomfields, tblcustomfieldsvalues, tbladdons,
           tblmodule_configuration, tblhosting",
    )
    .await;
    let steps = env.store.explain_addon_read(&ids).await.unwrap();
    assert!(steps.len() >= 8, "{steps:?}");
    for step in &steps {
        assert!(
            step.access != "ALL" && step.key.is_some(),
            "{step:?} reads without a key; all: {steps:?}"
        );
    }
}

/// A Jetpack addon deleted in WHMCS (or with its service, which deletes its addons) without a
/// Terminate: the sweep records one `deleted` request for the addon, the worker cancels what
/// the ledger holds with the credentials of the addon the ledger recorded once the deletion
/// grace period is over (none here), and nothing is written to WHMCS; an addon whose "Keep the
/// Jetpack plan" is ticked keeps its plan.
#[sqlx::test]
async fn a_deleted_addons_plan_is_cancelled_once_unless_the_addon_keeps_it(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let parent = hosting(&env, "gone-addon.example").await;
    let fields = ["Site URL", "jetpack_provisioning_details"];
    let cancels = addon_def(
        &env,
        "payment",
        &[(1, CLIENT_ID), (2, SECRET), (3, "premium"), (6, "admin")],
        &fields,
    )
    .await;
    let keeps = addon_def(
        &env,
        "payment",
        &[
            (1, CLIENT_ID),
            (2, SECRET),
            (3, "premium"),
            (4, "on"),
            (6, "admin"),
        ],
        &fields,
    )
    .await;
    let a = addon(
        &env,
        cancels,
        parent,
        "Active",
        &[("Site URL", "cancel-me.example")],
    )
    .await;
    let b = addon(
        &env,
        keeps,
        parent,
        "Active",
        &[("Site URL", "keep-me.example")],
    )
    .await;
    for t in [a, b] {
        env.store
            .enqueue(t, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }
    env.worker().run_once().await.unwrap();
    let state = env.sandbox.state();
    assert!(state.plan("cancel-me.example").is_some() && state.plan("keep-me.example").is_some());

    env.exec(&format!(
        "DELETE FROM tblhostingaddons WHERE id IN ({}, {})",
        a.entity_id(),
        b.entity_id()
    ))
    .await;
    for _ in 0..3 {
        let swept = env.store.sweep_deleted(0, 50).await.unwrap();
        assert_eq!(swept.examined, 2);
    }
    let no_grace = env.store.clone().with_delete_grace(Duration::ZERO);
    env.worker_with(no_grace, fast_settings(4))
        .run_once()
        .await
        .unwrap();

    let terminates: Vec<(u32, u32, String)> = sqlx::query_as(
        "SELECT service_id, addon_id, requested_by FROM mod_jetpack_requests
         WHERE action = 'deleted' ORDER BY id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(
        terminates,
        vec![(parent.0, a.entity_id(), "adopt".to_owned())],
        "once, and not the kept one"
    );
    assert_eq!(latest(&env, a).await.1, "done");
    assert!(
        state.plan("cancel-me.example").is_none(),
        "cancelled at the partner"
    );
    assert!(state.plan("keep-me.example").is_some(), "kept");
    assert!(env.store.ledger(a).await.unwrap().is_empty());
    let lines = activity(&env, &format!("Addon ID: {} ", a.entity_id())).await;
    assert!(
        lines
            .last()
            .is_some_and(|l| l.ends_with("Jetpack plan cancelled for cancel-me.example")),
        "{lines:?}"
    );
}

/// A job whose service or addon row is gone says so once, naming the target and the table it
/// is missing from (not "Service ID: Service ID: …"), and a terminate of a deleted service
/// with nothing left in the ledger says it is done without calling the API.
#[sqlx::test]
async fn a_job_for_a_missing_target_names_it_once(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let parent = hosting(&env, "missing.example").await;
    let def = addon_def(&env, "payment", PREMIUM, &["jetpack_provisioning_details"]).await;
    let a = addon(&env, def, parent, "Pending", &[]).await;
    env.exec(&format!(
        "DELETE FROM tblhostingaddons WHERE id = {}",
        a.entity_id()
    ))
    .await;
    let gone_service = ServiceId(777_777);
    env.store
        .enqueue(a, Action::Provision, RequestedBy::Cli)
        .await
        .unwrap();
    env.store
        .enqueue(gone_service, Action::Provision, RequestedBy::Cli)
        .await
        .unwrap();
    env.store
        .enqueue(ServiceId(777_778), Action::Terminate, RequestedBy::Cli)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    let error = latest(&env, a).await.2.unwrap();
    assert_eq!(
        error,
        format!(
            "JETPACK MODULE: Addon ID: {} (Service ID: {parent}) - it does not exist in tblhostingaddons; nothing to do",
            a.entity_id()
        )
    );
    let error = latest(&env, gone_service.into()).await.2.unwrap();
    assert_eq!(
        error,
        "JETPACK MODULE: Service ID: 777777 - it does not exist in tblhosting; nothing to do"
    );
    let done = env
        .store
        .latest_job(ServiceId(777_778))
        .await
        .unwrap()
        .unwrap();
    let result: Option<String> =
        sqlx::query_scalar("SELECT result FROM mod_jetpack_jobs WHERE id = ?")
            .bind(done.id)
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(
        result.as_deref(),
        Some("Service ID: 777778 was deleted and no Jetpack plan of it is left to cancel.")
    );
    assert!(env.sandbox.state().all_calls().is_empty());
}
