//! What the ledger holds decides what a terminate cancels: after an edited Site URL, for a
//! deleted service, for rows written before the ledger knew their product; and the inbox and
//! the ledger are read by index only.

use jetpack_worker::domain::{Action, JobState, RequestedBy, ServiceId};
use sqlx::mysql::MySqlPool;

use crate::helpers::{CLIENT_ID, Env, SECRET};
use crate::scenario::latest;

#[sqlx::test]
async fn a_terminate_cancels_what_the_ledger_holds_after_the_site_url_was_edited(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "keep.example.org", "admin", "premium")
        .await;
    let state = env.sandbox.state();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    let ledger = env.store.ledger(sid).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].site.as_str(), ledger[0].plan.as_str()),
        ("keep.example.org", "premium")
    );

    env.exec(&format!(
        "UPDATE tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
         SET v.value = 'renamed-site.example.org'
         WHERE v.relid = {sid} AND f.fieldname LIKE 'Site URL%'"
    ))
    .await;
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    assert!(
        state.plan("keep.example.org").is_none(),
        "the provisioned plan was cancelled"
    );
    assert_eq!(state.calls("keep.example.org").cancel, 1);
    assert_eq!(state.calls("renamed-site.example.org").cancel, 0);
    assert!(
        env.store.ledger(sid).await.unwrap().is_empty(),
        "the ledger is cleared"
    );
    assert_eq!(env.status(sid).await, "Terminated");
    let activity = env.activity(sid).await;
    let line = activity.last().unwrap();
    assert!(
        line.contains("now reads 'renamed-site.example.org'") && line.contains("keep.example.org"),
        "{line}"
    );
}

/// A ledger row written before the ledger knew its product (product_id NULL) gets it from
/// tblhosting when the migration runs on a WHMCS database, so the plan of a service deleted
/// later is still cancelled; running the migration again changes nothing.
#[sqlx::test]
async fn the_ledger_migration_gives_old_rows_their_product(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "before.example", "admin", "premium")
        .await;
    env.exec(&format!(
        "INSERT INTO mod_jetpack_ledger (service_id, site, plan, pending, since, updated_at, job_id)
         VALUES ({sid}, 'https://before.example', 'premium', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1),
                (999999, 'https://gone-before.example', 'premium', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 2)"
    ))
    .await;
    let migration = include_str!("../../migrations/20261202100001_ledger_product.sql");
    for _ in 0..2 {
        env.exec(migration).await;
    }
    let rows: Vec<(u32, Option<u32>)> =
        sqlx::query_as("SELECT service_id, product_id FROM mod_jetpack_ledger ORDER BY service_id")
            .fetch_all(&env.db)
            .await
            .unwrap();
    assert_eq!(rows, vec![(sid.0, Some(pid)), (999_999, None)]);
}

#[sqlx::test]
async fn a_terminate_of_a_deleted_service_cancels_what_the_ledger_holds(pool: MySqlPool) {
    // hooks.php ServiceDelete records the terminate after WHMCS deleted the tblhosting row
    // (and the service's custom field values): the ledger's product gives the credentials.
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "deleted.example.org", "admin", "premium")
        .await;
    let state = env.sandbox.state();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert!(state.plan("deleted.example.org").is_some());
    let ledger = env.store.ledger(sid).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        ledger[0].product_id,
        Some(pid),
        "the ledger records the product"
    );

    env.exec(&format!(
        "DELETE FROM tblcustomfieldsvalues WHERE relid = {sid}"
    ))
    .await;
    env.exec(&format!("DELETE FROM tblhosting WHERE id = {sid}"))
        .await;
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Hook)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    assert!(
        state.plan("deleted.example.org").is_none(),
        "the deleted service's plan was cancelled"
    );
    assert_eq!(state.calls("deleted.example.org").cancel, 1);
    assert_eq!(latest(&env, sid).await, ("terminate".into(), "done".into()));
    assert!(
        env.store.ledger(sid).await.unwrap().is_empty(),
        "the ledger row is gone"
    );
    let (values, services): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM tblcustomfieldsvalues WHERE relid = ?),
                (SELECT COUNT(*) FROM tblhosting WHERE id = ?)",
    )
    .bind(sid)
    .bind(sid)
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(
        (values, services),
        (0, 0),
        "nothing written for the deleted service"
    );

    // The scan's safety net asked too (or the hook fired twice): nothing is left to cancel,
    // so the second terminate is done without a call, not failed.
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Adopt)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(latest(&env, sid).await, ("terminate".into(), "done".into()));
    assert_eq!(
        state.calls("deleted.example.org").cancel,
        1,
        "no second cancel"
    );
    assert!(
        env.module_queue().await.is_empty(),
        "nothing for WHMCS's Module Queue"
    );
}

/// The inbox and the ledger are read by index only: the worker's lookups never scan the
/// requests or the ledger, however many accumulate.
#[sqlx::test]
async fn the_inbox_and_ledger_queries_use_their_indexes(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec(
        "INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at, applied_at)
         SELECT seq, 'provision', 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM seq_1_to_2000;
         INSERT INTO mod_jetpack_ledger (service_id, site, plan, since, updated_at, job_id)
         SELECT seq, CONCAT('s', seq, '.example'), 'premium', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), seq
         FROM seq_1_to_2000;
         INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at,
           outcome_unknown, requested_by, created_at, updated_at, finished_at)
         SELECT seq, 0, 'provision', 'done', UTC_TIMESTAMP(6), 0, 'module', UTC_TIMESTAMP(6),
                UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)
         FROM seq_1_to_2000;
         ANALYZE TABLE mod_jetpack_requests, mod_jetpack_ledger, mod_jetpack_jobs",
    )
    .await;
    // The inbox's reads, as the worker builds them (store::known's conditions included).
    // The pending lookup and the batch read start from the unapplied requests; every
    // statement applying a batch reads each table by an index (a derived table of values or of
    // MAX(id)s is no table).
    let plans = env.store.explain_inbox().await.unwrap();
    assert!(plans.len() >= 9, "{plans:?}");
    for (name, steps) in plans {
        if ["pending", "batch"].contains(&name) {
            assert!(
                steps[0]
                    .key
                    .as_deref()
                    .is_some_and(|k| k.starts_with("unapplied")),
                "{name}: {steps:?}"
            );
        }
        let tables = steps
            .iter()
            .filter(|s| !s.table.is_empty() && !s.table.starts_with('<'));
        for s in tables {
            assert!(s.access != "ALL" && s.key.is_some(), "{name}: {steps:?}");
        }
    }
    // The status write's check for a request waiting to be applied (store::writeback) reads
    // the requests by the target's index, and the status table by primary key.
    env.exec(
        "INSERT INTO tblhosting (id, userid, orderid, packageid, regdate, domainstatus)
         SELECT seq, 5, 0, 1, CURDATE(), 'Active' FROM seq_1_to_2000;
         INSERT INTO tblhostingaddons (id, orderid, hostingid, addonid, userid, name, status)
         SELECT seq, 0, seq, 1, 5, '', 'Active' FROM seq_1_to_2000;
         ANALYZE TABLE tblhosting, tblhostingaddons",
    )
    .await;
    for (name, steps) in env.store.explain_status_writes().await.unwrap() {
        assert!(steps.len() >= 2, "{name}: {steps:?}");
        for s in &steps {
            assert!(s.access != "ALL" && s.key.is_some(), "{name}: {steps:?}");
        }
        assert!(
            steps.iter().any(|s| s.table == "r"),
            "{name}: the waiting-request check is in the plan: {steps:?}"
        );
    }
    let checks: [(&str, &[&str]); 5] = [
        (
            "SELECT 1 FROM mod_jetpack_requests r WHERE r.service_id = 7",
            &["service"],
        ),
        (
            "SELECT service_id, site, plan, pending, since FROM mod_jetpack_ledger
             WHERE service_id IN (7, 8) ORDER BY id",
            &["service_site"],
        ),
        (
            "DELETE FROM mod_jetpack_ledger
             WHERE service_id = 7 AND addon_id = 0 AND site_hash = UNHEX(SHA2('s7.example', 256))",
            // Both are one-row lookups; the optimizer may take either.
            &["service_site", "site"],
        ),
        (
            "SELECT l.id FROM mod_jetpack_ledger l
             WHERE l.site_hash IN (UNHEX(SHA2('s7.example', 256)), UNHEX(SHA2('s8.example', 256)))",
            &["site"],
        ),
        (
            "SELECT id FROM mod_jetpack_ledger WHERE addon_id IN (7, 8)",
            &["addon"],
        ),
    ];
    for (sql, key) in checks {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
            .fetch_all(&env.db)
            .await
            .unwrap();
        use sqlx::Row;
        let used: Option<String> = rows[0].try_get("key").unwrap();
        let kind: Option<String> = rows[0].try_get("type").unwrap();
        assert!(
            key.contains(&used.as_deref().unwrap_or("")),
            "{sql}: {used:?}"
        );
        assert_ne!(kind.as_deref(), Some("ALL"), "{sql}");
    }
}

/// A service moved to a product whose custom fields are named differently: WHMCS carries no
/// value over, so the new product's Site URL (and Local User) fields are empty. Returns the
/// provisioned service, on the new product (plan `premium` and a default Local User in its
/// Module Settings, as a product per plan has).
async fn moved_to_a_product_with_other_field_names(env: &Env, site: &str) -> ServiceId {
    let old = env.product("").await;
    let sid = env.service(old, "Active", site, "admin", "personal").await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(env.sandbox.state().plan(site).unwrap().slug, "personal");
    let new = env
        .product_with(
            "",
            CLIENT_ID,
            SECRET,
            &[
                "Site URL|Website address",
                "Local User|WordPress user name",
                "jetpack_provisioning_details|Jetpack Provisioning Details",
            ],
        )
        .await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption3 = 'premium', configoption6 = 'admin' WHERE id = {new}"
    ))
    .await;
    env.exec(&format!(
        "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
         SELECT id, {sid}, '', NOW(), NOW() FROM tblcustomfields
         WHERE type = 'product' AND relid = {new} AND fieldname LIKE 'Site URL%'"
    ))
    .await;
    env.exec(&format!(
        "UPDATE tblhosting SET packageid = {new} WHERE id = {sid}"
    ))
    .await;
    sid
}

/// ChangePackage after such a move: the order's Site URL is empty, the ledger holds the site,
/// so the change provisions the plan the order names there, and the activity line says why.
#[sqlx::test]
async fn a_change_after_a_product_move_uses_the_site_the_ledger_holds(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let sid = moved_to_a_product_with_other_field_names(&env, "moved-change.example").await;

    env.store
        .enqueue(sid, Action::Change, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Done, "{:?}", job.last_error);
    let state = env.sandbox.state();
    assert_eq!(state.plan("moved-change.example").unwrap().slug, "premium");
    let ledger = env.store.ledger(sid).await.unwrap();
    assert_eq!(
        (ledger.len(), ledger[0].plan.as_str()),
        (1, "premium"),
        "{ledger:?}"
    );
    let activity = env.activity(sid).await;
    let line = activity.last().unwrap();
    assert!(
        line.contains("the Site URL field is empty") && line.contains("moved-change.example"),
        "{line}"
    );
}

/// Terminate after such a move cancels what the ledger holds, and says why the empty Site URL
/// did not stop it.
#[sqlx::test]
async fn a_terminate_after_a_product_move_cancels_what_the_ledger_holds(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let sid = moved_to_a_product_with_other_field_names(&env, "moved-end.example").await;

    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert!(env.sandbox.state().plan("moved-end.example").is_none());
    assert!(env.store.ledger(sid).await.unwrap().is_empty());
    assert_eq!(env.status(sid).await, "Terminated");
    let activity = env.activity(sid).await;
    assert!(
        activity
            .last()
            .unwrap()
            .contains("the Site URL field is empty"),
        "{activity:?}"
    );
}

/// A first provision never guesses: with the Site URL empty it fails as before, whatever the
/// ledger of another service holds.
#[sqlx::test]
async fn a_provision_with_an_empty_site_url_still_fails(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let sid = moved_to_a_product_with_other_field_names(&env, "moved-new.example").await;

    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.last_error.as_deref().unwrap_or("").contains("is empty"),
        "{:?}",
        job.last_error
    );
}
