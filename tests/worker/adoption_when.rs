//! The product and addon setting *When to provision a manual-setup order* (configoption8,
//! `src/manual_setup.rs`): `''` (every product saved before the setting) and `paid` adopt a
//! Pending target once its invoice is paid or its order accepted, as before; `accepted` only once
//! an admin accepts the order (fraud review: a paid invoice alone does nothing); `create` never
//! (only Create provisions). And the AcceptOrder hook records what the scan adopts once the order
//! is Active, for every value (the paying hooks' agreement is in `adoption`).

use jetpack_worker::domain::{JobState, ServiceId};
use jetpack_worker::store::{Recheck, RecheckCursor};
use sqlx::mysql::MySqlPool;

use crate::adoption::{
    addon_def, addon_jobs, addon_status, any_invoice, bought_addon, parent_service,
};
use crate::helpers::Env;

/// The setting's stored values, and a site name for each.
const SETTINGS: [(&str, &str); 4] = [
    ("", "before-the-setting"),
    ("paid", "on-payment"),
    ("accepted", "on-acceptance"),
    ("create", "create-only"),
];

/// A manual-setup ("Do not automatically setup") Jetpack product with this setting.
pub(crate) async fn product_set_to(env: &Env, setting: &str) -> u32 {
    let pid = env.product("").await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption8 = '{setting}' WHERE id = {pid}"
    ))
    .await;
    pid
}

/// A Jetpack addon without automatic activation with this setting (None: no row, as an addon
/// saved before the setting).
pub(crate) async fn addon_set_to(env: &Env, setting: Option<&str>) -> u32 {
    let def = addon_def(env, "", "jetpack").await;
    if let Some(setting) = setting {
        env.exec(&format!(
            "INSERT INTO tblmodule_configuration (entity_type, entity_id, setting_name, value)
             VALUES ('addon', {def}, 'configoption8', '{setting}')"
        ))
        .await;
    }
    def
}

/// Provision requests of services (not addons), by who asked.
async fn requested(env: &Env, sid: ServiceId) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT requested_by FROM mod_jetpack_requests
         WHERE service_id = ? AND addon_id = 0 AND action = 'provision' ORDER BY id",
    )
    .bind(sid)
    .fetch_all(&env.db)
    .await
    .unwrap()
}

/// Fraud review: every order is paid but not accepted yet. The products whose setting waits
/// for a payment are adopted and provisioned; the `accepted` one once the admin accepts its
/// order; the `create` one never.
#[sqlx::test]
async fn a_manual_setup_order_is_adopted_when_its_product_setting_says(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let paid = any_invoice(&env, "Paid").await;
    let mut services = Vec::new();
    for (setting, site) in SETTINGS {
        let pid = product_set_to(&env, setting).await;
        let sid = env
            .service_with_order(
                pid,
                "Pending",
                "Pending",
                paid,
                &format!("{site}.example"),
                "admin",
                "premium",
            )
            .await;
        services.push(sid);
    }
    let [before, on_payment, on_acceptance, create_only] = services[..] else {
        unreachable!()
    };

    let summary = env.worker().run_once().await.unwrap();

    assert_eq!(summary.adopted, 2, "'' and 'paid': the invoice is paid");
    for sid in [before, on_payment] {
        assert_eq!(requested(&env, sid).await, ["adopt"]);
        assert_eq!(env.job(sid).await.state, JobState::Done);
        assert_eq!(env.status(sid).await, "Active");
    }
    for sid in [on_acceptance, create_only] {
        assert!(requested(&env, sid).await.is_empty(), "service {sid}");
        assert_eq!(env.status(sid).await, "Pending", "service {sid}");
    }

    // The admin accepts the orders.
    env.exec("UPDATE tblorders SET status = 'Active'").await;
    let summary = env.worker().run_once().await.unwrap();

    assert_eq!(summary.adopted, 1, "'accepted': the order is accepted");
    assert_eq!(requested(&env, on_acceptance).await, ["adopt"]);
    assert_eq!(env.job(on_acceptance).await.state, JobState::Done);
    assert_eq!(env.status(on_acceptance).await, "Active");
    assert!(requested(&env, create_only).await.is_empty());
    assert_eq!(env.status(create_only).await, "Pending");
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 0);
}

/// The same for addons, each with its own setting in tblmodule_configuration (a missing row is
/// `''`): paid, then accepted.
#[sqlx::test]
async fn a_manual_setup_addon_is_adopted_when_its_addon_setting_says(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let paid = any_invoice(&env, "Paid").await;
    let parent = parent_service(&env, "parent.example").await;
    let mut addons = Vec::new();
    for setting in [None, Some("paid"), Some("accepted"), Some("create")] {
        let def = addon_set_to(&env, setting).await;
        addons.push(bought_addon(&env, def, parent, "Pending", "Pending", paid).await);
    }
    let [no_row, on_payment, on_acceptance, create_only] = addons[..] else {
        unreachable!()
    };
    let done = || vec![(parent.0, "adopt".to_owned(), "done".to_owned())];

    assert_eq!(env.worker().run_once().await.unwrap().adopted, 2);
    for addon in [no_row, on_payment] {
        assert_eq!(addon_jobs(&env, addon).await, done(), "addon {addon}");
        assert_eq!(addon_status(&env, addon).await, "Active");
    }
    for addon in [on_acceptance, create_only] {
        assert!(addon_jobs(&env, addon).await.is_empty(), "addon {addon}");
        assert_eq!(addon_status(&env, addon).await, "Pending");
    }

    env.exec("UPDATE tblorders SET status = 'Active'").await;
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 1);
    assert_eq!(addon_jobs(&env, on_acceptance).await, done());
    assert_eq!(addon_status(&env, on_acceptance).await, "Active");
    assert!(addon_jobs(&env, create_only).await.is_empty());
    assert_eq!(addon_status(&env, create_only).await, "Pending");
}

/// Runs one of the module's hooks (whmcs/tests/Support/run_hooks.php) for each id on the test's
/// database; returns what it logged.
pub(crate) async fn run_hooks(env: &Env, hook: &str, ids: &[String]) -> String {
    let database: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&env.db)
        .await
        .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/whmcs/tests/Support/run_hooks.php"
    );
    let out = std::process::Command::new("php")
        .arg(script)
        .arg(&database)
        .arg(hook)
        .args(ids)
        .output()
        .expect("php (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{hook}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!log.contains("could not"), "{log}");
    log
}

/// The (service, addon) pairs with a provision request by `by`, then no request is left.
async fn taken(env: &Env, by: &str) -> Vec<(u32, u32)> {
    let rows: Vec<(u32, u32)> = sqlx::query_as(
        "SELECT DISTINCT service_id, addon_id FROM mod_jetpack_requests
         WHERE requested_by = ? AND action = 'provision' ORDER BY service_id, addon_id",
    )
    .bind(by)
    .fetch_all(&env.db)
    .await
    .unwrap();
    env.exec("DELETE FROM mod_jetpack_requests").await;
    rows
}

/// AcceptOrder fires before WHMCS sets the order Active; once it is, the scan must adopt
/// exactly what the hook recorded. Every setting (and an automatic product, another module's),
/// service or addon status and invoice is seeded in Pending orders; the real hook runs for
/// every order, then the orders become Active and the scan runs. An addon WHMCS had already
/// activated on payment (Active, never a job) is the hook's alone: the scan adopts Pending
/// targets only.
#[sqlx::test]
async fn the_accept_order_hook_and_the_scan_agree_for_every_setting(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let mut products = Vec::new();
    let mut defs = Vec::new();
    for (setting, _) in SETTINGS {
        products.push(product_set_to(&env, setting).await);
        defs.push((addon_set_to(&env, Some(setting)).await, setting));
    }
    products.push(env.product("payment").await);
    defs.push((addon_def(&env, "payment", "jetpack").await, "automatic"));
    defs.push((addon_set_to(&env, None).await, ""));
    let mut orders = Vec::new();
    let mut activated = Vec::new();
    let mut n = 0;
    for invoice_status in ["", "Unpaid", "Paid", "Cancelled"] {
        for status in ["Pending", "Active"] {
            for &pid in &products {
                n += 1;
                let inv = match invoice_status {
                    "" => 0,
                    s => any_invoice(&env, s).await,
                };
                let sid = env
                    .service_with_order(
                        pid,
                        status,
                        "Pending",
                        inv,
                        &format!("accept{n}.example"),
                        "admin",
                        "premium",
                    )
                    .await;
                let order: i32 = sqlx::query_scalar("SELECT orderid FROM tblhosting WHERE id = ?")
                    .bind(sid)
                    .fetch_one(&env.db)
                    .await
                    .unwrap();
                orders.push(order.to_string());
            }
            for &(def, setting) in &defs {
                let parent = parent_service(&env, &format!("accept-addon{n}.example")).await;
                let inv = match invoice_status {
                    "" => 0,
                    s => any_invoice(&env, s).await,
                };
                let addon = bought_addon(&env, def, parent, status, "Pending", inv).await;
                let order: i32 =
                    sqlx::query_scalar("SELECT orderid FROM tblhostingaddons WHERE id = ?")
                        .bind(addon)
                        .fetch_one(&env.db)
                        .await
                        .unwrap();
                orders.push(order.to_string());
                if status == "Active" && ["", "paid", "accepted"].contains(&setting) {
                    activated.push((parent.0, addon.0));
                }
            }
        }
    }

    run_hooks(&env, "AcceptOrder", &orders).await;
    let mut by_hook = taken(&env, "hook").await;
    env.exec("UPDATE tblorders SET status = 'Active'").await;
    let products = env.store.adoption_products().await.unwrap();
    while env
        .store
        .discover_candidates(&products, 500)
        .await
        .unwrap()
        .more
    {}
    env.store
        .recheck_candidates(Recheck::After(RecheckCursor::default()), 1000)
        .await
        .unwrap();
    let by_scan = taken(&env, "adopt").await;

    let before = by_hook.len();
    by_hook.retain(|target| !activated.contains(target));
    assert_eq!(
        before - by_hook.len(),
        activated.len(),
        "AcceptOrder records every addon WHMCS activated on payment: {activated:?}"
    );
    // Pending: services and addons of '', 'paid', 'accepted' and no row, whatever the invoice.
    assert_eq!(by_scan.len(), 4 * (3 + 4), "{by_scan:?}");
    assert_eq!(by_hook, by_scan, "AcceptOrder and the scan");
}
