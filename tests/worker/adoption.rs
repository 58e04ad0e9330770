//! Adoption: Pending services of "Do not automatically setup" jetpack products are queued when
//! their order is accepted or their invoice paid; nothing else is, and the setting turns it off.

use jetpack_worker::domain::ServiceId;
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, fast_settings};

async fn invoice(env: &Env, status: &str) -> u32 {
    let id = env
        .exec(&format!(
            "INSERT INTO tblinvoices (userid, status, date, duedate) VALUES (5, '{status}', CURDATE(), CURDATE())"
        ))
        .await;
    assert_eq!(id, 1);
    sqlx::query_scalar("SELECT MAX(id) FROM tblinvoices")
        .fetch_one(&env.db)
        .await
        .unwrap()
}

async fn jobs_of(env: &Env) -> Vec<(u32, String)> {
    sqlx::query_as("SELECT service_id, requested_by FROM mod_jetpack_jobs ORDER BY service_id")
        .fetch_all(&env.db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn only_paid_or_accepted_orders_of_manual_setup_products_are_adopted(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let on_payment = env.product("payment").await;
    let paid = invoice(&env, "Paid").await;
    let unpaid = invoice(&env, "Unpaid").await;
    let s = |pid, status, order, inv, site: &'static str| {
        let env = &env;
        async move {
            env.service_with_order(pid, status, order, inv, site, "admin", "premium")
                .await
        }
    };
    let accepted = s(manual, "Pending", "Active", 0, "accepted.example").await;
    let paid_pending = s(manual, "Pending", "Pending", paid, "paid.example").await;
    let unpaid_pending: ServiceId = s(manual, "Pending", "Pending", unpaid, "unpaid.example").await;
    let no_invoice = s(manual, "Pending", "Pending", 0, "noinvoice.example").await;
    let fraud = s(manual, "Pending", "Fraud", paid, "fraud.example").await;
    let cancelled = s(manual, "Pending", "Cancelled", paid, "cancelled.example").await;
    let auto = s(on_payment, "Pending", "Active", paid, "auto.example").await;
    let active = s(manual, "Active", "Active", paid, "active.example").await;
    let other_module = s(manual, "Pending", "Active", 0, "othermodule.example").await;
    env.exec(&format!(
        "INSERT INTO tblproducts (type, name, autosetup, servertype) VALUES ('other', 'cPanel', '', 'cpanel');
         UPDATE tblhosting SET packageid = LAST_INSERT_ID() WHERE id = {other_module}"
    ))
    .await;

    let summary = env.worker().run_once().await.unwrap();

    assert_eq!(summary.adopted, 2);
    assert_eq!(
        jobs_of(&env).await,
        vec![
            (accepted.0, "adopt".to_owned()),
            (paid_pending.0, "adopt".to_owned())
        ]
    );
    for sid in [accepted, paid_pending] {
        assert_eq!(env.job(sid).await.state, "done");
        assert_eq!(env.status(sid).await, "Active");
    }
    for sid in [
        unpaid_pending,
        no_invoice,
        fraud,
        cancelled,
        auto,
        other_module,
    ] {
        assert_eq!(env.status(sid).await, "Pending", "service {sid} left alone");
    }
    assert_eq!(env.status(active).await, "Active");

    // A failed adopted job is not adopted again (no retry storm).
    env.exec(&format!(
        "UPDATE mod_jetpack_jobs SET state = 'failed' WHERE service_id = {accepted}"
    ))
    .await;
    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = 'Pending' WHERE id = {accepted}"
    ))
    .await;
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 0);
}

#[sqlx::test]
async fn adoption_can_be_turned_off(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    env.service_with_order(
        manual,
        "Pending",
        "Active",
        0,
        "off.example",
        "admin",
        "premium",
    )
    .await;
    let settings = jetpack_worker::worker::WorkerSettings {
        adopt: false,
        ..fast_settings(2)
    };
    let summary = env
        .worker_with(env.store.clone(), settings)
        .run_once()
        .await
        .unwrap();
    assert_eq!(summary.adopted, 0);
    assert!(jobs_of(&env).await.is_empty());
}
