//! The PHP module and the worker read the same addons the same way (the real module run through
//! PHP and Illuminate against the same database).

use jetpack_worker::domain::{Action, RequestedBy, ServiceId, SiteUrl, Target};
use sqlx::mysql::MySqlPool;

use crate::addons::*;
use crate::helpers::{CLIENT_ID, Env, SECRET};

/// The module's `OrderChecks::check` on these addons (whmcs/tests/Support/load_orders.php,
/// targets given as `SERVICE_ID:ADDON_ID`): accepted with (site, user, plan), or its message.
fn php_verdicts(database: &str, targets: &[Target]) -> Vec<Result<[String; 3], String>> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/whmcs/tests/Support/load_orders.php"
    );
    let keys: Vec<String> = targets
        .iter()
        .map(|t| format!("{}:{}", t.service(), t.addon_id()))
        .collect();
    let output = std::process::Command::new("php")
        .arg(script)
        .arg(database)
        .args(&keys)
        .output()
        .expect("php (scripts/test installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let all: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    keys.iter()
        .map(|k| {
            let one = &all[k];
            let text = |f: &str| one[f].as_str().unwrap_or_default().to_owned();
            match one["accepted"].as_bool() {
                Some(true) => Ok([text("site"), text("user"), text("plan")]),
                _ => Err(text("text").replace(['<', '>', '"', '`'], "'")),
            }
        })
        .collect()
}

/// The contract for addons: each addon setup below goes through the PHP module's
/// `OrderChecks::check` and through the worker (a provision against the sandbox); both refuse
/// with the same message, or both accept and the module reads the site, user and plan the
/// worker sent.
#[sqlx::test]
async fn php_module_and_worker_agree_on_addons(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let parent = hosting(&env, "Agree.Example").await;
    let bad_domain = hosting(&env, "not a domain").await;
    let no_domain = hosting(&env, " ").await;
    let details = "jetpack_provisioning_details";
    let full = [(1, CLIENT_ID), (2, SECRET), (3, "premium"), (6, "admin")];
    let no_plan = [(1, CLIENT_ID), (2, SECRET), (6, "admin")];
    let plain = addon_def(&env, "", &full, &[details]).await;
    let own_site = addon_def(&env, "", &full, &["Site URL|Your site", details]).await;
    let both_plans = addon_def(&env, "", &full, &["Plan", details]).await;
    let field_plan = addon_def(&env, "", &no_plan, &["Plan", details]).await;
    let nothing = addon_def(&env, "", &[], &["Local User", "Plan", details]).await;
    let no_user = addon_def(
        &env,
        "",
        &[(1, CLIENT_ID), (2, SECRET), (3, "premium")],
        &[details],
    )
    .await;
    let twice = addon_def(&env, "", &full, &["Site URL", "Site URL|Site", details]).await;
    let no_details = addon_def(&env, "", &full, &[]).await;
    let other_module = addon_def(&env, "", &full, &[details]).await;
    env.exec(&format!(
        "UPDATE tbladdons SET module = 'cpanel' WHERE id = {other_module}"
    ))
    .await;
    let gone = addon_def(&env, "", &full, &[details]).await;
    let mut targets = vec![
        addon(&env, plain, parent, "Pending", &[]).await,
        addon(
            &env,
            own_site,
            parent,
            "Pending",
            &[("Site URL", "https://Own.Example/")],
        )
        .await,
        addon(
            &env,
            own_site,
            parent,
            "Pending",
            &[("Site URL", "a b.example")],
        )
        .await,
        addon(&env, own_site, parent, "Pending", &[("Site URL", "")]).await,
        addon(&env, both_plans, parent, "Pending", &[("Plan", "personal")]).await,
        addon(
            &env,
            field_plan,
            parent,
            "Pending",
            &[("Plan", "Professional|x")],
        )
        .await,
        addon(&env, field_plan, parent, "Pending", &[("Plan", "gold")]).await,
        addon(
            &env,
            nothing,
            parent,
            "Pending",
            &[("Local User", "admin"), ("Plan", "free")],
        )
        .await,
        addon(&env, no_user, parent, "Pending", &[]).await,
        addon(&env, twice, parent, "Pending", &[]).await,
        addon(&env, no_details, parent, "Pending", &[]).await,
        addon(&env, other_module, parent, "Pending", &[]).await,
        addon(&env, gone, parent, "Pending", &[]).await,
        addon(&env, plain, ServiceId(999_999), "Pending", &[]).await,
        addon(&env, plain, bad_domain, "Pending", &[]).await,
        addon(&env, plain, no_domain, "Pending", &[]).await,
    ];
    env.exec(&format!("DELETE FROM tbladdons WHERE id = {gone}"))
        .await;
    // Each site once, so the sandbox's plans tell the cases apart.
    let distinct = addon_def(&env, "", &full, &["Site URL", details]).await;
    targets.push(
        addon(
            &env,
            distinct,
            parent,
            "Pending",
            &[("Site URL", "distinct.example")],
        )
        .await,
    );
    for t in &targets {
        env.store
            .enqueue(*t, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }
    // The addons of one site run side by side, each its own provision (premium three times,
    // professional once on Agree.Example): whichever lands first, the site keeps the higher
    // plan and each addon's ledger holds the plan it names (src/worker/higher.rs).
    env.worker().run_once().await.unwrap();
    let database: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&env.db)
        .await
        .unwrap();
    let php = php_verdicts(&database, &targets);
    let mut accepted = 0;
    let mut problems = Vec::new();
    for (t, verdict) in targets.iter().zip(php) {
        let (_, state, error) = latest(&env, *t).await;
        let worker = match state.as_str() {
            "done" | "waiting_dns" => {
                let held = env.store.ledger(*t).await.unwrap();
                Ok((held[0].site.clone(), held[0].plan.clone()))
            }
            _ => Err(error.unwrap_or_default().replace(['<', '>', '"', '`'], "'")),
        };
        // The module hands the worker the raw value; the worker sends it normalised.
        let sent = |raw: &str| SiteUrl::parse(raw).map(|u| u.as_str().to_owned()).ok();
        match (&verdict, &worker) {
            (Ok([site, _, plan]), Ok((wsite, wplan)))
                if sent(site).as_ref() == Some(wsite) && plan == wplan =>
            {
                accepted += 1
            }
            (Err(p), Err(w)) if p == w => {}
            _ => problems.push(format!("{t}: module {verdict:?}, worker {worker:?}")),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(accepted >= 5, "{accepted} accepted");
}
