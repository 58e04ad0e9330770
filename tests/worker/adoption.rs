//! Adoption: Pending services of "Do not automatically setup" jetpack products are queued when
//! their order is accepted or their invoice paid; nothing else is, and the setting turns it off.
//! The scan is incremental (watermarks, candidates, marks): paid by a direct UPDATE, already
//! requested by a hook, pruned, two workers at once, deleted services, and the EXPLAIN of
//! every statement on a database of a realistic shape, on both WHMCS layouts.

use jetpack_worker::domain::JobState;
use std::time::Duration;

use jetpack_sandbox::SandboxConfig;
use jetpack_worker::domain::{AddonId, ServiceId};
use jetpack_worker::store::{ClaimPath, Recheck, RecheckCursor};
use jetpack_worker::worker::WorkerSettings;
use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::adoption_when::{addon_set_to, product_set_to};
use crate::helpers::{CLIENT_ID, Env, Layout, SECRET, fast_settings, until};

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
        assert_eq!(env.job(sid).await.state, JobState::Done);
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

// --- The incremental scan (issue 11) ---------------------------------------------------------

/// Provision requests of a service, by who asked.
async fn requests_of(env: &Env, sid: ServiceId) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT requested_by FROM mod_jetpack_requests WHERE service_id = ? AND action = 'provision' ORDER BY id",
    )
    .bind(sid)
    .fetch_all(&env.db)
    .await
    .unwrap()
}

async fn unpaid_invoice(env: &Env) -> u32 {
    env.exec(
        "INSERT INTO tblinvoices (userid, status, date, duedate) VALUES (5, 'Unpaid', CURDATE(), CURDATE())",
    )
    .await;
    let id: i64 = sqlx::query_scalar("SELECT CAST(MAX(id) AS SIGNED) FROM tblinvoices")
        .fetch_one(&env.db)
        .await
        .unwrap();
    u32::try_from(id).unwrap()
}

/// A hook-less payment (a direct UPDATE of tblinvoices, as the API or a script does) is
/// adopted by a running worker within about one adoption interval, on both layouts.
async fn paid_by_direct_update_is_adopted_within_one_interval(env: Env) {
    let manual = env.product("").await;
    let inv = unpaid_invoice(&env).await;
    let sid = env
        .service_with_order(
            manual,
            "Pending",
            "Pending",
            inv,
            "direct.example",
            "admin",
            "premium",
        )
        .await;
    let settings = WorkerSettings {
        adopt_interval: Duration::from_secs(1),
        ..fast_settings(2)
    };
    let worker = env.worker_with(env.store.clone(), settings);
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });
    until(
        Duration::from_secs(5),
        "the service to become a candidate",
        || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mod_jetpack_adoption_candidates")
                .fetch_one(&env.db)
                .await
                .unwrap();
            n == 1
        },
    )
    .await;
    assert!(
        requests_of(&env, sid).await.is_empty(),
        "unpaid: not adopted"
    );
    env.exec(&format!(
        "UPDATE tblinvoices SET status = 'Paid' WHERE id = {inv}"
    ))
    .await;
    let paid_at = std::time::Instant::now();
    until(Duration::from_secs(5), "the adoption request", || async {
        !requests_of(&env, sid).await.is_empty()
    })
    .await;
    assert!(
        paid_at.elapsed() < Duration::from_millis(1600),
        "{:?}",
        paid_at.elapsed()
    );
    until(Duration::from_secs(10), "the job to finish", || async {
        env.status(sid).await == "Active"
    })
    .await;
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(requests_of(&env, sid).await, vec!["adopt".to_owned()]);
}

#[sqlx::test]
async fn adoption_of_a_direct_update_within_one_interval_whmcs8(pool: MySqlPool) {
    paid_by_direct_update_is_adopted_within_one_interval(Env::new(pool).await).await;
}

#[sqlx::test]
async fn adoption_of_a_direct_update_within_one_interval_whmcs783(pool: MySqlPool) {
    let env = Env::with(pool, Layout::V783, SandboxConfig::default()).await;
    paid_by_direct_update_is_adopted_within_one_interval(env).await;
}

/// A service a hook already requested (its provision request row exists) is not queued again
/// by the scan, and is marked so that it never is, even once its request is pruned.
#[sqlx::test]
async fn adoption_leaves_a_service_already_requested_alone(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let sid = env
        .service_with_order(
            manual,
            "Pending",
            "Active",
            0,
            "hooked.example",
            "admin",
            "premium",
        )
        .await;
    env.exec(&format!(
        "INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at)
         VALUES ({sid}, 'provision', 'hook', UTC_TIMESTAMP(6))"
    ))
    .await;
    let summary = env.worker().run_once().await.unwrap();
    assert_eq!(summary.adopted, 0);
    assert_eq!(requests_of(&env, sid).await, vec!["hook".to_owned()]);
    assert_eq!(jobs_of(&env).await, vec![(sid.0, "hook".to_owned())]);
    // The scan runs beside the claims: it either saw the hook's job (and marked the service
    // "requested") or came after that job had made the service Active (no longer a candidate,
    // so no mark). Never an adoption of its own.
    let outcome: Option<String> = sqlx::query_scalar(
        "SELECT outcome FROM mod_jetpack_adoption_marks WHERE service_id = ? AND action = 'provision'",
    )
    .bind(sid)
    .fetch_optional(&env.db)
    .await
    .unwrap();
    match outcome {
        Some(outcome) => assert_eq!(outcome, "requested"),
        None => assert_eq!(env.status(sid).await, "Active"),
    }
}

/// A failed adopted provision whose job and request the retention period pruned is not
/// adopted again: the scan's mark is never pruned.
#[sqlx::test]
async fn adoption_after_pruning_does_not_adopt_again(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let sid = env
        .service_with_order(
            manual,
            "Pending",
            "Active",
            0,
            "pruned.example",
            "admin",
            "premium",
        )
        .await;
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 1);
    env.exec(&format!(
        "UPDATE mod_jetpack_jobs SET state = 'failed', finished_at = UTC_TIMESTAMP(6) - INTERVAL 100 DAY
           WHERE service_id = {sid};
         UPDATE mod_jetpack_requests SET applied_at = UTC_TIMESTAMP(6) - INTERVAL 100 DAY;
         UPDATE tblhosting SET domainstatus = 'Pending' WHERE id = {sid}"
    ))
    .await;
    env.store
        .prune_finished(Duration::from_secs(90 * 24 * 3600), 100)
        .await
        .unwrap();
    assert!(jobs_of(&env).await.is_empty(), "pruned");
    // The service is found again by a fresh scan (watermarks reset) and still not adopted.
    env.exec("DELETE FROM mod_jetpack_adoption_watermarks")
        .await;
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 0);
    assert!(jobs_of(&env).await.is_empty());
    assert_eq!(env.status(sid).await, "Pending");
}

/// Two workers scanning at once while hooks record requests meanwhile: each service gets
/// exactly one job. Half the orders are paid when both discover them at once (adopted from
/// the page), the other half after (candidates both re-check at once).
#[sqlx::test]
async fn adoption_by_two_workers_at_once_gives_each_service_one_job(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let mut services = Vec::new();
    for n in 0..30 {
        let site = format!("two{n}.example");
        let order = ["Active", "Pending"][n % 2];
        let sid = env
            .service_with_order(manual, "Pending", order, 0, &site, "admin", "premium")
            .await;
        services.push(sid);
    }
    let (a, b) = (
        env.store_with(ClaimPath::SkipLocked).await,
        env.store.clone(),
    );
    let products = a.adoption_products().await.unwrap();
    let hooks = |skip: usize| {
        let env = &env;
        let services = &services;
        async move {
            for sid in services.iter().skip(skip).step_by(3) {
                env.exec(&format!(
                    "INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at)
                     VALUES ({sid}, 'provision', 'hook', UTC_TIMESTAMP(6))"
                ))
                .await;
            }
        }
    };
    let (da, db, ()) = tokio::join!(
        a.discover_candidates(&products, 500),
        b.discover_candidates(&products, 500),
        hooks(0)
    );
    let (da, db) = (da.unwrap(), db.unwrap());
    assert_eq!(
        da.adopted + da.already + db.adopted + db.already,
        15,
        "{da:?} {db:?}"
    );
    env.exec("UPDATE tblorders SET status = 'Active'").await;
    let (ra, rb, ()) = tokio::join!(
        a.recheck_candidates(Recheck::After(RecheckCursor::default()), 100),
        b.recheck_candidates(Recheck::After(RecheckCursor::default()), 100),
        hooks(1)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.adopted + ra.already + rb.adopted + rb.already,
        15,
        "{ra:?} {rb:?}"
    );
    // Both workers then run to completion at once.
    let wa = env.worker_with(a, fast_settings(4));
    let wb = env.worker_with(b, fast_settings(4));
    let (sa, sb) = tokio::join!(wa.run_once(), wb.run_once());
    assert_eq!(sa.unwrap().adopted + sb.unwrap().adopted, 0);
    for sid in &services {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM mod_jetpack_jobs WHERE service_id = ?")
                .bind(sid)
                .fetch_one(&env.db)
                .await
                .unwrap();
        assert_eq!(n, 1, "service {sid}");
        assert_eq!(env.status(*sid).await, "Active");
    }
}

/// A plan in the ledger whose tblhosting row was deleted gets one `deleted` request (a
/// terminate after the deletion grace period), not one per scan; JETPACK_CANCEL_DELETED=false
/// turns it off.
#[sqlx::test]
async fn adoption_records_one_terminate_for_a_deleted_service(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec(
        "INSERT INTO mod_jetpack_ledger (service_id, site, plan, pending, since, updated_at, job_id)
         VALUES (4242, 'https://gone.example', 'jetpack_premium', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)",
    )
    .await;
    let off = WorkerSettings {
        cancel_deleted: false,
        ..fast_settings(2)
    };
    env.worker_with(env.store.clone(), off)
        .run_once()
        .await
        .unwrap();
    let terminates = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mod_jetpack_requests WHERE service_id = 4242 AND action = 'deleted'",
        )
        .fetch_one(&env.db)
        .await
        .unwrap();
        n
    };
    assert_eq!(terminates().await, 0, "off");
    for _ in 0..3 {
        let swept = env.store.sweep_deleted(0, 50).await.unwrap();
        assert_eq!(swept.examined, 1);
    }
    env.worker().run_once().await.unwrap();
    assert_eq!(terminates().await, 1, "recorded once");
}

/// The product's "Keep the Jetpack plan when a service is deleted" (configoption4) is honoured
/// by the scan's safety net as by the ServiceDelete hook: a deleted service of such a product
/// keeps its plan; of another product (or with the setting cleared) it is cancelled.
#[sqlx::test]
async fn adoption_keeps_the_plan_of_a_deleted_service_when_the_product_says_so(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let keep = env.product("").await;
    let cancel = env.product("").await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption4 = 'on' WHERE id = {keep};
         INSERT INTO mod_jetpack_ledger (service_id, product_id, site, plan, pending, since, updated_at, job_id)
         VALUES (5001, {keep}, 'https://kept.example', 'jetpack_premium', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1),
                (5002, {cancel}, 'https://cancelled.example', 'jetpack_premium', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 2)"
    ))
    .await;
    let terminated = || async {
        let rows: Vec<(u32,)> = sqlx::query_as(
            "SELECT service_id FROM mod_jetpack_requests WHERE action = 'deleted' ORDER BY service_id",
        )
        .fetch_all(&env.db)
        .await
        .unwrap();
        rows.into_iter().map(|(s,)| s).collect::<Vec<_>>()
    };
    env.store.sweep_deleted(0, 50).await.unwrap();
    assert_eq!(
        terminated().await,
        vec![5002],
        "only the product that does not keep"
    );
    env.exec(&format!(
        "UPDATE tblproducts SET configoption4 = '' WHERE id = {keep}"
    ))
    .await;
    env.store.sweep_deleted(0, 50).await.unwrap();
    assert_eq!(
        terminated().await,
        vec![5001, 5002],
        "the setting cleared: cancelled"
    );
}

/// A WHMCS-shaped database: 50,000 services over 50 products (5 of them Jetpack), 3 % Pending,
/// orders and invoices, a ledger, 30,000 addons bought over 20 addons (2 of them Jetpack), 3 %
/// Pending; every adoption statement's EXPLAIN reads tblhosting, tblhostingaddons, tbladdons,
/// tblorders and tblinvoices by index, never by a full scan.
async fn explain_on_a_realistic_database(env: Env) {
    env.exec(
        "INSERT INTO tblproducts (id, type, name, autosetup, servertype)
         SELECT seq, 'other', CONCAT('P', seq), IF(seq <= 5, '', 'payment'),
                IF(seq <= 5, 'jetpack', 'cpanel') FROM seq_1_to_50;
         INSERT INTO tblinvoices (id, userid, status, date, duedate)
         SELECT seq, seq % 5000, IF(seq % 30 = 0, 'Unpaid', 'Paid'), CURDATE(), CURDATE()
         FROM seq_1_to_50000;
         INSERT INTO tblorders (id, ordernum, userid, date, status, invoiceid)
         SELECT seq, seq, seq % 5000, NOW(), IF(seq % 30 = 0, 'Pending', 'Active'), seq
         FROM seq_1_to_50000;
         INSERT INTO tblhosting (id, userid, orderid, packageid, regdate, domainstatus)
         SELECT seq, seq % 5000, seq, 1 + seq % 50, CURDATE(), IF(seq % 30 = 0, 'Pending', 'Active')
         FROM seq_1_to_50000;
         INSERT INTO mod_jetpack_ledger (service_id, site, plan, since, updated_at, job_id)
         SELECT id, CONCAT('https://s', id), 'p', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), id
         FROM tblhosting WHERE packageid <= 5 AND domainstatus = 'Active';
         INSERT INTO tbladdons (id, name, autoactivate, module)
         SELECT seq, CONCAT('A', seq), IF(seq <= 2, '', 'payment'), IF(seq <= 2, 'jetpack', '')
         FROM seq_1_to_20;
         INSERT INTO tblhostingaddons (id, orderid, hostingid, addonid, userid, name, status)
         SELECT seq, seq, seq, 1 + seq % 20, seq % 5000, '', IF(seq % 30 = 0, 'Pending', 'Active')
         FROM seq_1_to_30000;
         INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at,
                                       requested_by, created_at, updated_at)
         SELECT id, 0, 'provision', 'done', UTC_TIMESTAMP(6), 'hook', UTC_TIMESTAMP(6),
                UTC_TIMESTAMP(6)
         FROM tblhosting WHERE packageid <= 5 AND domainstatus = 'Active';
         INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
         SELECT service_id, addon_id, 'provision', 'hook', UTC_TIMESTAMP(6) FROM mod_jetpack_jobs;
         INSERT INTO mod_jetpack_adoption_marks (service_id, action, outcome, marked_at)
         SELECT service_id, 'provision', 'requested', UTC_TIMESTAMP(6) FROM mod_jetpack_jobs;
         INSERT INTO mod_jetpack_adoption_addon_marks (addon_id, service_id, action, outcome,
                                                       marked_at)
         SELECT id, hostingid, 'provision', 'requested', UTC_TIMESTAMP(6) FROM tblhostingaddons
         WHERE addonid <= 2 AND status = 'Active';
         ANALYZE TABLE tblhosting, tblorders, tblinvoices, tblproducts, mod_jetpack_ledger,
                       tbladdons, tblhostingaddons, mod_jetpack_jobs, mod_jetpack_requests,
                       mod_jetpack_adoption_marks, mod_jetpack_adoption_addon_marks",
    )
    .await;
    let products = env.store.adoption_products().await.unwrap();
    assert_eq!(products, vec![1, 2, 3, 4, 5]);
    // Before any discovery (watermarks 0) and after it (candidates present).
    for round in 0..2 {
        let plans = env.store.explain_adoption(&products).await.unwrap();
        assert_eq!(plans.len(), 20, "{plans:?}");
        let due = &plans.iter().find(|(n, _)| *n == "recheck due").unwrap().1;
        assert!(
            due.iter()
                .filter(|s| s.table == "c")
                .all(|s| s.key.as_deref() == Some("due")),
            "round {round}: the due candidates are read by their index: {due:?}"
        );
        let due = &plans
            .iter()
            .find(|(n, _)| *n == "addons recheck due")
            .unwrap()
            .1;
        assert!(
            due.iter()
                .filter(|s| s.table == "c")
                .all(|s| s.key.as_deref() == Some("due")),
            "round {round}: the due addon candidates are read by their index: {due:?}"
        );
        for (name, steps) in &plans {
            for s in steps {
                let whmcs = [
                    "h",
                    "o",
                    "i",
                    "a",
                    "d",
                    "ms",
                    "tblhosting",
                    "tblorders",
                    "tblinvoices",
                    "tblhostingaddons",
                    "tbladdons",
                ];
                if whmcs.contains(&s.table.as_str()) {
                    assert_ne!(s.access, "ALL", "round {round}, {name}: {steps:?}");
                    assert!(s.key.is_some(), "round {round}, {name}: {steps:?}");
                }
            }
        }
        // The trailing window (issue 18): the same indexes as discovery.
        let window = &plans.iter().find(|(n, _)| *n == "window").unwrap().1;
        assert!(
            window
                .iter()
                .filter(|s| s.table == "h")
                .all(|s| s.key.as_deref() == Some("productid")),
            "{window:?}"
        );
        let addons = &plans.iter().find(|(n, _)| *n == "addons window").unwrap().1;
        for s in addons {
            assert_eq!(
                (s.access.as_str(), s.key.as_deref()),
                addon_step(&s.table),
                "{addons:?}"
            );
        }
        // Candidates and marks by primary key, never a scan of the worker's tables.
        for s in window.iter().filter(|s| s.table != "h") {
            assert_eq!(
                (s.access.as_str(), s.key.as_deref()),
                ("eq_ref", Some("PRIMARY")),
                "{window:?}"
            );
        }
        let discover = &plans.iter().find(|(n, _)| *n == "discover").unwrap().1;
        assert!(
            discover
                .iter()
                .filter(|s| s.table == "tblhosting")
                .all(|s| s.key.as_deref() == Some("productid")),
            "{discover:?}"
        );
        // The page reads tblhosting's index only; the Pending services it found, how long
        // they waited and whether each is paid already: the service, its product, order and
        // invoice by primary key.
        assert!(
            discover.iter().all(|s| s.table == "tblhosting"),
            "{discover:?}"
        );
        let pending = &plans
            .iter()
            .find(|(n, _)| *n == "discover pending")
            .unwrap()
            .1;
        for s in pending {
            assert_eq!(s.key.as_deref(), Some("PRIMARY"), "{pending:?}");
        }
        for table in ["h", "p", "o", "i"] {
            assert!(pending.iter().any(|s| s.table == table), "{pending:?}");
        }
        // Adopting a page: the jobs and requests of its targets by their service indexes,
        // the marks by primary key, never a scan of the worker's tables.
        for name in [
            "adopt handled",
            "adopt note",
            "addons adopt handled",
            "addons adopt note",
        ] {
            let steps = &plans.iter().find(|(n, _)| *n == name).unwrap().1;
            for s in steps.iter().filter(|s| !s.table.starts_with('<')) {
                assert_ne!(s.access, "ALL", "{name}: {steps:?}");
                assert!(s.key.is_some(), "{name}: {steps:?}");
            }
        }
        // tblhostingaddons has no addonid index: a primary-key range above the watermark,
        // each row's addon and order by primary key.
        let discover = &plans
            .iter()
            .find(|(n, _)| *n == "addons discover")
            .unwrap()
            .1;
        for s in discover {
            assert_eq!(
                (s.access.as_str(), s.key.as_deref()),
                addon_step(&s.table),
                "{discover:?}"
            );
        }
        // The Pending addons it found by primary key, with their addon, order, parent service
        // and setting.
        let pending = &plans
            .iter()
            .find(|(n, _)| *n == "addons discover pending")
            .unwrap()
            .1;
        for s in pending {
            let want = match s.table.as_str() {
                "ms" => Some("unique_constraint"),
                _ => Some("PRIMARY"),
            };
            assert_eq!(s.key.as_deref(), want, "{pending:?}");
        }
        assert!(pending.iter().any(|s| s.table == "ms"), "{pending:?}");
        while env
            .store
            .discover_candidates(&products, 500)
            .await
            .unwrap()
            .more
        {}
    }
    let (n, want): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM mod_jetpack_adoption_candidates),
                (SELECT COUNT(*) FROM tblhosting WHERE packageid <= 5 AND domainstatus = 'Pending')",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(n, want, "the Pending Jetpack services");
    let (n, want): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM mod_jetpack_adoption_addon_candidates),
                (SELECT COUNT(*) FROM tblhostingaddons WHERE addonid <= 2 AND status = 'Pending')",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert!(want > 0);
    assert_eq!(n, want, "the Pending Jetpack addons");
    let (last,): (u32,) =
        sqlx::query_as("SELECT last_addon_id FROM mod_jetpack_adoption_addon_watermark")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(last, 30000, "every addon examined");
}

/// How the addons' discovery and window read each table: tblhostingaddons (`a`) by a primary-key
/// range, the addon's setting *When to provision a manual-setup order* (`ms`) by
/// tblmodule_configuration's unique key, everything else by primary key.
fn addon_step(table: &str) -> (&'static str, Option<&'static str>) {
    match table {
        "a" => ("range", Some("PRIMARY")),
        "ms" => ("eq_ref", Some("unique_constraint")),
        _ => ("eq_ref", Some("PRIMARY")),
    }
}

#[sqlx::test]
async fn adoption_explain_uses_indexes_whmcs8(pool: MySqlPool) {
    explain_on_a_realistic_database(Env::new(pool).await).await;
}

#[sqlx::test]
async fn adoption_explain_uses_indexes_whmcs783(pool: MySqlPool) {
    let env = Env::with(pool, Layout::V783, SandboxConfig::default()).await;
    explain_on_a_realistic_database(env).await;
}

/// Abandoned unpaid orders stay Pending for ever. They stay candidates, but each is re-checked
/// less often the longer it has waited (a tenth of its age, at most an hour), so 300 old ones
/// cost nothing per interval and do not hold up a fresh order: paid by a direct UPDATE, it is
/// adopted by the next due re-check, whose page reads only what is due.
#[sqlx::test]
async fn adoption_checks_fresh_candidates_first_and_old_unpaid_ones_rarely(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let unpaid = invoice(&env, "Unpaid").await;
    for i in 0..300 {
        env.service_with_order(
            manual,
            "Pending",
            "Pending",
            unpaid,
            &format!("old{i}.example"),
            "admin",
            "premium",
        )
        .await;
    }
    // Their orders were placed ten hours ago (in the server's local time, as WHMCS writes).
    env.exec("UPDATE tblorders SET date = NOW() - INTERVAL 10 HOUR")
        .await;
    let products = env.store.adoption_products().await.unwrap();
    while env
        .store
        .discover_candidates(&products, 500)
        .await
        .unwrap()
        .more
    {}
    // Found having waited ten hours: first due within the hour (spread, not all at once).
    let (soonest, latest): (i64, i64) = sqlx::query_as(
        "SELECT MIN(TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), next_check_at)),
                MAX(TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), next_check_at))
         FROM mod_jetpack_adoption_candidates",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert!(
        (-1..=3600).contains(&soonest) && latest <= 3600 && latest - soonest > 1800,
        "spread over the hour: {soonest} {latest}"
    );
    env.exec("UPDATE mod_jetpack_adoption_candidates SET next_check_at = UTC_TIMESTAMP(6)")
        .await;
    // Checked; then, having waited ten hours, due again within the hour's second half.
    let checked = env
        .store
        .recheck_candidates(Recheck::Due, 400)
        .await
        .unwrap();
    assert_eq!((checked.examined, checked.adopted), (300, 0));
    let (soonest, latest): (i64, i64) = sqlx::query_as(
        "SELECT MIN(TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), next_check_at)),
                MAX(TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), next_check_at))
         FROM mod_jetpack_adoption_candidates",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert!(
        (1790..=3600).contains(&soonest) && latest <= 3600,
        "{soonest} {latest}"
    );

    let fresh = env
        .service_with_order(
            manual,
            "Pending",
            "Pending",
            unpaid,
            "fresh.example",
            "admin",
            "premium",
        )
        .await;
    env.store.discover_candidates(&products, 500).await.unwrap();
    let checked = env
        .store
        .recheck_candidates(Recheck::Due, 25)
        .await
        .unwrap();
    assert_eq!(
        (checked.examined, checked.adopted),
        (1, 0),
        "only the fresh one is due"
    );
    // Not paid yet and a few seconds old: due again within a second or so.
    let (next,): (i64,) = sqlx::query_as(
        "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), next_check_at)
         FROM mod_jetpack_adoption_candidates WHERE service_id = ?",
    )
    .bind(fresh)
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert!(next <= 1, "{next}");
    env.exec(&format!(
        "UPDATE tblorders o JOIN tblhosting h ON h.orderid = o.id SET o.status = 'Active' WHERE h.id = {fresh}"
    ))
    .await;
    env.exec(&format!(
        "UPDATE mod_jetpack_adoption_candidates SET next_check_at = UTC_TIMESTAMP(6) WHERE service_id = {fresh}"
    ))
    .await;
    // Everything is overdue now: the old ones fill the Due page, the fresh page finds the
    // new order first.
    env.exec("UPDATE mod_jetpack_adoption_candidates SET next_check_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR")
        .await;
    let due = env
        .store
        .recheck_candidates(Recheck::Due, 10)
        .await
        .unwrap();
    assert_eq!(
        (due.examined, due.adopted),
        (10, 0),
        "old ones first by due time"
    );
    let checked = env
        .store
        .recheck_candidates(Recheck::Fresh, 5)
        .await
        .unwrap();
    assert_eq!(
        checked.adopted, 1,
        "the fresh order is the first of its page"
    );
    assert_eq!(
        jobs_of(&env).await.len(),
        0,
        "a request, applied by the worker"
    );
    env.worker().run_once().await.unwrap();
    assert_eq!(env.job(fresh).await.state, JobState::Done);
}

/// The adoption rule lives twice, as it must: the hooks decide in PHP at the moment an order
/// is paid (lib/Hooks.php), the scan decides in SQL later (`Kind::qualifies`, src/store/adoption/kind.rs). They must
/// agree. Every combination of product (manual-setup Jetpack with each value of *When to
/// provision a manual-setup order*, automatic Jetpack, another module), service status, order
/// status and invoice status is seeded, the real hooks.php
/// code runs `OrderPaid` for every order and `InvoicePaid` for every invoice, and the scan
/// runs on the same rows: the services each adopts must be the same set.
#[sqlx::test]
async fn the_hooks_and_the_scan_agree_on_which_services_qualify(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let mut products = Vec::new();
    for setting in ["", "paid", "accepted", "create"] {
        products.push(product_set_to(&env, setting).await);
    }
    let automatic = env.product("payment").await;
    env.exec(
        "INSERT INTO tblproducts (type, name, autosetup, servertype) VALUES ('other', 'cPanel', '', 'cpanel')",
    )
    .await;
    let other: i32 = sqlx::query_scalar("SELECT MAX(id) FROM tblproducts")
        .fetch_one(&env.db)
        .await
        .unwrap();
    let other = other as u32;
    let mut orders = Vec::new();
    let mut invoices = Vec::new();
    let mut n = 0;
    products.extend([automatic, other]);
    for pid in products {
        for service_status in ["Pending", "Active"] {
            for order_status in ["Pending", "Active", "Fraud", "Cancelled"] {
                for invoice_status in ["", "Unpaid", "Paid", "Cancelled"] {
                    n += 1;
                    let inv = if invoice_status.is_empty() {
                        0
                    } else {
                        invoice(&env, invoice_status).await
                    };
                    let sid = env
                        .service_with_order(
                            pid,
                            service_status,
                            order_status,
                            inv,
                            &format!("agree{n}.example"),
                            "admin",
                            "premium",
                        )
                        .await;
                    if inv != 0 {
                        env.exec(&format!(
                            "INSERT INTO tblinvoiceitems (invoiceid, userid, type, relid, description)
                             VALUES ({inv}, 5, 'Hosting', {sid}, 'Jetpack')"
                        ))
                        .await;
                        invoices.push(inv.to_string());
                    }
                    let (order,): (i32,) =
                        sqlx::query_as("SELECT orderid FROM tblhosting WHERE id = ?")
                            .bind(sid)
                            .fetch_one(&env.db)
                            .await
                            .unwrap();
                    orders.push(order.to_string());
                }
            }
        }
    }
    let database: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&env.db)
        .await
        .unwrap();
    let hooked = |hook: &'static str, ids: Vec<String>| {
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let requested = |by: &'static str| {
        let env = &env;
        async move {
            let rows: Vec<(u32,)> = sqlx::query_as(
                "SELECT DISTINCT service_id FROM mod_jetpack_requests WHERE requested_by = ? ORDER BY service_id",
            )
            .bind(by)
            .fetch_all(&env.db)
            .await
            .unwrap();
            env.exec("DELETE FROM mod_jetpack_requests").await;
            rows.into_iter().map(|(s,)| s).collect::<Vec<u32>>()
        }
    };
    let log = hooked("OrderPaid", orders);
    assert!(!log.contains("could not"), "{log}");
    let by_order_paid = requested("hook").await;
    let log = hooked("InvoicePaid", invoices);
    assert!(!log.contains("could not"), "{log}");
    let by_invoice_paid = requested("hook").await;

    // Orders a month old: a paid one is adopted by the discovery page that finds it; an
    // unpaid one's candidate is first due within the hour, spread.
    env.exec("UPDATE tblorders SET date = NOW() - INTERVAL 30 DAY")
        .await;
    let products = env.store.adoption_products().await.unwrap();
    let mut discovered = 0;
    loop {
        let found = env.store.discover_candidates(&products, 500).await.unwrap();
        discovered += found.adopted;
        if !found.more {
            break;
        }
    }
    let due_at_once: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM mod_jetpack_adoption_candidates WHERE next_check_at <= UTC_TIMESTAMP(6)",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(due_at_once.0, 0, "the paid ones were adopted, not kept");
    let checked = env
        .store
        .recheck_candidates(Recheck::After(RecheckCursor::default()), 1000)
        .await
        .unwrap();
    assert_eq!(checked.adopted, 0, "the re-check finds none discovery left");
    let by_scan = requested("adopt").await;
    assert_eq!(discovered as usize, by_scan.len());
    // The re-check decides as discovery did: every Pending service a candidate again.
    env.exec(
        "DELETE FROM mod_jetpack_adoption_marks;
         INSERT IGNORE INTO mod_jetpack_adoption_candidates (service_id, found_at, next_check_at)
         SELECT id, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM tblhosting WHERE domainstatus = 'Pending'",
    )
    .await;
    let checked = env
        .store
        .recheck_candidates(Recheck::After(RecheckCursor::default()), 1000)
        .await
        .unwrap();
    let by_recheck = requested("adopt").await;
    assert_eq!(checked.adopted as usize, by_recheck.len());

    assert!(
        by_scan.len() >= 4,
        "paid or accepted, Pending, manual: {by_scan:?}"
    );
    assert_eq!(by_order_paid, by_scan, "OrderPaid and the scan");
    assert_eq!(by_recheck, by_scan, "discovery and the re-check");
    // An invoice's hook sees only the services with an invoice: the scan's set without the
    // orders accepted with no invoice at all.
    let with_invoice: Vec<u32> = {
        let rows: Vec<(i32,)> = sqlx::query_as(
            "SELECT h.id FROM tblhosting h JOIN tblorders o ON o.id = h.orderid
             WHERE o.invoiceid <> 0 ORDER BY h.id",
        )
        .fetch_all(&env.db)
        .await
        .unwrap();
        rows.into_iter().map(|(s,)| s as u32).collect()
    };
    let scan_with_invoice: Vec<u32> = by_scan
        .iter()
        .copied()
        .filter(|s| with_invoice.contains(s))
        .collect();
    assert_eq!(
        by_invoice_paid, scan_with_invoice,
        "InvoicePaid and the scan"
    );
}

// --- Addons (docs/addons.md, "Adoption of addons") -------------------------------------------

/// An addon (tbladdons) of `module` with this `autoactivate`, its module settings in
/// tblmodule_configuration (credentials, plan premium, Default Local User admin) and its own
/// jetpack_provisioning_details field; returns its id.
pub(crate) async fn addon_def(env: &Env, autoactivate: &str, module: &str) -> u32 {
    env.exec(&format!(
        "INSERT INTO tbladdons (name, autoactivate, module) VALUES ('Jetpack Addon', '{autoactivate}', '{module}')"
    ))
    .await;
    let (id,): (i32,) = sqlx::query_as("SELECT MAX(id) FROM tbladdons")
        .fetch_one(&env.db)
        .await
        .unwrap();
    let settings = [
        ("configoption1", CLIENT_ID),
        ("configoption2", SECRET),
        ("configoption3", "premium"),
        ("configoption6", "admin"),
    ];
    for (name, value) in settings {
        env.exec(&format!(
            "INSERT INTO tblmodule_configuration (entity_type, entity_id, setting_name, value)
             VALUES ('addon', {id}, '{name}', '{value}')"
        ))
        .await;
    }
    env.exec(&format!(
        "INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly)
         VALUES ('addon', {id}, 'jetpack_provisioning_details|Details', 'text', 'on')"
    ))
    .await;
    id as u32
}

/// A parent service (of a cPanel product, Active) whose domain is `domain`.
pub(crate) async fn parent_service(env: &Env, domain: &str) -> ServiceId {
    env.exec(&format!(
        "INSERT INTO tblproducts (type, name, autosetup, servertype) VALUES ('hostingaccount', 'Shared', '', 'cpanel');
         INSERT INTO tblhosting (userid, orderid, packageid, regdate, domain, domainstatus)
         VALUES (5, 0, LAST_INSERT_ID(), CURDATE(), '{domain}', 'Active')"
    ))
    .await;
    let (id,): (i32,) = sqlx::query_as("SELECT MAX(id) FROM tblhosting")
        .fetch_one(&env.db)
        .await
        .unwrap();
    ServiceId(id as u32)
}

/// An addon of `def` bought for `parent` (status `status`) with its own order (status
/// `order_status`, invoice `invoice`, 0 for none).
pub(crate) async fn bought_addon(
    env: &Env,
    def: u32,
    parent: ServiceId,
    status: &str,
    order_status: &str,
    invoice: u32,
) -> AddonId {
    env.exec(&format!(
        "INSERT INTO tblorders (ordernum, userid, date, status, invoiceid) VALUES (1, 5, NOW(), '{order_status}', {invoice});
         INSERT INTO tblhostingaddons (orderid, hostingid, addonid, userid, name, status)
         VALUES (LAST_INSERT_ID(), {parent}, {def}, 5, '', '{status}')"
    ))
    .await;
    let (id,): (i32,) = sqlx::query_as("SELECT MAX(id) FROM tblhostingaddons")
        .fetch_one(&env.db)
        .await
        .unwrap();
    AddonId(id as u32)
}

/// Who asked for a service's own provisions (not its addons'), in order.
async fn own_requests(env: &Env, sid: ServiceId) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT requested_by FROM mod_jetpack_requests
         WHERE service_id = ? AND addon_id = 0 AND action = 'provision' ORDER BY id",
    )
    .bind(sid)
    .fetch_all(&env.db)
    .await
    .unwrap()
}

/// An invoice with this status (any layout).
pub(crate) async fn any_invoice(env: &Env, status: &str) -> u32 {
    env.exec(&format!(
        "INSERT INTO tblinvoices (userid, status, date, duedate) VALUES (5, '{status}', CURDATE(), CURDATE())"
    ))
    .await;
    let id: i64 = sqlx::query_scalar("SELECT CAST(MAX(id) AS SIGNED) FROM tblinvoices")
        .fetch_one(&env.db)
        .await
        .unwrap();
    u32::try_from(id).unwrap()
}

pub(crate) async fn addon_status(env: &Env, addon: AddonId) -> String {
    sqlx::query_scalar("SELECT CAST(status AS CHAR) FROM tblhostingaddons WHERE id = ?")
        .bind(addon)
        .fetch_one(&env.db)
        .await
        .unwrap()
}

/// (service_id, requested_by) of an addon's provision requests, in order.
async fn addon_requests(env: &Env, addon: AddonId) -> Vec<(u32, String)> {
    sqlx::query_as(
        "SELECT service_id, requested_by FROM mod_jetpack_requests
         WHERE addon_id = ? AND action = 'provision' ORDER BY id",
    )
    .bind(addon)
    .fetch_all(&env.db)
    .await
    .unwrap()
}

pub(crate) async fn addon_jobs(env: &Env, addon: AddonId) -> Vec<(u32, String, String)> {
    sqlx::query_as(
        "SELECT service_id, requested_by, state FROM mod_jetpack_jobs WHERE addon_id = ? ORDER BY id",
    )
    .bind(addon)
    .fetch_all(&env.db)
    .await
    .unwrap()
}

/// Only Pending addons of `jetpack` addons set to "Do not automatically setup" (autoactivate
/// ''), on a service that exists, whose order is accepted or invoice paid are adopted: each
/// once (a second run, and the scan's marks, add nothing), as an addon target with its parent
/// service; the addon is provisioned and Active, the parent service untouched.
async fn only_paid_or_accepted_manual_jetpack_addons_are_adopted(env: Env) {
    let manual = addon_def(&env, "", "jetpack").await;
    let on_payment = addon_def(&env, "payment", "jetpack").await;
    let on_order = addon_def(&env, "order", "jetpack").await;
    let other_module = addon_def(&env, "", "cpanel").await;
    let paid = any_invoice(&env, "Paid").await;
    let unpaid = any_invoice(&env, "Unpaid").await;
    let parent = parent_service(&env, "parent.example").await;
    let a = |def, status, order, inv| {
        let env = &env;
        async move { bought_addon(env, def, parent, status, order, inv).await }
    };
    let accepted = a(manual, "Pending", "Active", 0).await;
    let paid_pending = a(manual, "Pending", "Pending", paid).await;
    let left = [
        a(manual, "Pending", "Pending", unpaid).await,
        a(manual, "Pending", "Pending", 0).await,
        a(manual, "Pending", "Fraud", paid).await,
        a(manual, "Pending", "Cancelled", paid).await,
        a(on_payment, "Pending", "Pending", paid).await,
        a(on_order, "Pending", "Active", 0).await,
        a(other_module, "Pending", "Active", paid).await,
        bought_addon(&env, manual, ServiceId(999_999), "Pending", "Active", 0).await,
    ];
    let active = a(manual, "Active", "Active", paid).await;

    let summary = env.worker().run_once().await.unwrap();

    assert_eq!(summary.adopted, 2);
    for addon in [accepted, paid_pending] {
        assert_eq!(
            addon_requests(&env, addon).await,
            vec![(parent.0, "adopt".to_owned())]
        );
        assert_eq!(
            addon_jobs(&env, addon).await,
            vec![(parent.0, "adopt".to_owned(), "done".to_owned())]
        );
        assert_eq!(addon_status(&env, addon).await, "Active");
    }
    for addon in left {
        assert!(
            addon_requests(&env, addon).await.is_empty(),
            "addon {addon}"
        );
        assert_eq!(addon_status(&env, addon).await, "Pending", "addon {addon}");
    }
    assert!(addon_requests(&env, active).await.is_empty());
    assert!(
        own_requests(&env, parent).await.is_empty(),
        "the parent service has no request of its own"
    );
    assert_eq!(env.status(parent).await, "Active");

    // Once: set Pending again (a failed provision would leave it so), it is not adopted again.
    env.exec(&format!(
        "UPDATE tblhostingaddons SET status = 'Pending' WHERE id = {accepted}"
    ))
    .await;
    env.exec("DELETE FROM mod_jetpack_adoption_addon_watermark")
        .await;
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 0);
    assert_eq!(addon_requests(&env, accepted).await.len(), 1);
    let marks: Vec<(u32, u32, String)> = sqlx::query_as(
        "SELECT addon_id, service_id, outcome FROM mod_jetpack_adoption_addon_marks ORDER BY addon_id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(
        marks,
        vec![
            (accepted.0, parent.0, "adopted".to_owned()),
            (paid_pending.0, parent.0, "adopted".to_owned())
        ]
    );
}

#[sqlx::test]
async fn adoption_of_addons_only_paid_or_accepted_manual_jetpack_ones_whmcs8(pool: MySqlPool) {
    only_paid_or_accepted_manual_jetpack_addons_are_adopted(Env::new(pool).await).await;
}

#[sqlx::test]
async fn adoption_of_addons_only_paid_or_accepted_manual_jetpack_ones_whmcs783(pool: MySqlPool) {
    let env = Env::with(pool, Layout::V783, SandboxConfig::default()).await;
    only_paid_or_accepted_manual_jetpack_addons_are_adopted(env).await;
}

/// An addon the AddonActivation hook already requested is not queued again by the scan, and
/// is marked so that it never is.
#[sqlx::test]
async fn adoption_leaves_an_addon_already_requested_by_the_hook_alone(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = addon_def(&env, "", "jetpack").await;
    let parent = parent_service(&env, "hooked-addon.example").await;
    let addon = bought_addon(&env, manual, parent, "Pending", "Active", 0).await;
    env.exec(&format!(
        "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
         VALUES ({parent}, {addon}, 'provision', 'hook', UTC_TIMESTAMP(6))"
    ))
    .await;
    let summary = env.worker().run_once().await.unwrap();
    assert_eq!(summary.adopted, 0);
    assert_eq!(
        addon_requests(&env, addon).await,
        vec![(parent.0, "hook".to_owned())]
    );
    assert_eq!(
        addon_jobs(&env, addon).await,
        vec![(parent.0, "hook".to_owned(), "done".to_owned())]
    );
    // As for a service: the scan runs beside the claims and may come after the hook's job made
    // the addon Active (no longer a candidate, so no mark). Never an adoption of its own.
    let outcome: Option<String> = sqlx::query_scalar(
        "SELECT outcome FROM mod_jetpack_adoption_addon_marks WHERE addon_id = ? AND action = 'provision'",
    )
    .bind(addon)
    .fetch_optional(&env.db)
    .await
    .unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM tblhostingaddons WHERE id = ?")
        .bind(addon)
        .fetch_one(&env.db)
        .await
        .unwrap();
    match outcome {
        Some(outcome) => assert_eq!(outcome, "requested"),
        None => assert_eq!(status, "Active"),
    }
}

/// A service and its addons are separate targets: a request for a Jetpack addon does not
/// stop the adoption of its parent (a Jetpack service of a manual-setup product), and the
/// service's own request does not stop the addon's.
#[sqlx::test]
async fn adoption_treats_a_service_and_its_addon_as_separate_targets(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let product = env.product("").await;
    let manual = addon_def(&env, "", "jetpack").await;
    let first = env
        .service_with_order(
            product,
            "Pending",
            "Active",
            0,
            "first.example",
            "admin",
            "premium",
        )
        .await;
    let second = env
        .service_with_order(
            product,
            "Pending",
            "Active",
            0,
            "second.example",
            "admin",
            "premium",
        )
        .await;
    env.exec(&format!(
        "UPDATE tblhosting SET domain = CONCAT('parent', id, '.example') WHERE id IN ({first}, {second})"
    ))
    .await;
    let hooked_addon = bought_addon(&env, manual, first, "Pending", "Active", 0).await;
    let adopted_addon = bought_addon(&env, manual, second, "Pending", "Active", 0).await;
    env.exec(&format!(
        "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
         VALUES ({first}, {hooked_addon}, 'provision', 'hook', UTC_TIMESTAMP(6)),
                ({second}, 0, 'provision', 'hook', UTC_TIMESTAMP(6))"
    ))
    .await;
    let summary = env.worker().run_once().await.unwrap();
    assert_eq!(
        summary.adopted, 2,
        "the first service and the second's addon"
    );
    assert_eq!(own_requests(&env, first).await, vec!["adopt".to_owned()]);
    assert_eq!(own_requests(&env, second).await, vec!["hook".to_owned()]);
    assert_eq!(
        addon_requests(&env, adopted_addon).await,
        vec![(second.0, "adopt".to_owned())]
    );
    assert_eq!(
        addon_requests(&env, hooked_addon).await,
        vec![(first.0, "hook".to_owned())]
    );
    for addon in [hooked_addon, adopted_addon] {
        assert_eq!(addon_status(&env, addon).await, "Active");
    }
    for sid in [first, second] {
        assert_eq!(env.status(sid).await, "Active");
    }
}

/// Two workers discovering, then re-checking, the same addons at once while the hook records
/// requests meanwhile, then both running to completion: each addon gets exactly one job. Half
/// the orders are paid when discovered (adopted from the page), half after (candidates).
#[sqlx::test]
async fn adoption_of_addons_by_two_workers_at_once_gives_each_addon_one_job(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = addon_def(&env, "", "jetpack").await;
    let parent = parent_service(&env, "two-addons.example").await;
    let mut addons = Vec::new();
    for n in 0..20 {
        let order = ["Active", "Pending"][n % 2];
        addons.push(bought_addon(&env, manual, parent, "Pending", order, 0).await);
    }
    let (a, b) = (
        env.store_with(ClaimPath::SkipLocked).await,
        env.store.clone(),
    );
    let hooks = |skip: usize| {
        let env = &env;
        let addons = &addons;
        async move {
            for addon in addons.iter().skip(skip).step_by(4) {
                env.exec(&format!(
                    "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
                     VALUES ({parent}, {addon}, 'provision', 'hook', UTC_TIMESTAMP(6))"
                ))
                .await;
            }
        }
    };
    // Both discover (the second may find nothing new), then both re-check every candidate.
    let (da, db, ()) = tokio::join!(
        a.discover_candidates(&[], 500),
        b.discover_candidates(&[], 500),
        hooks(0)
    );
    let (da, db) = (da.unwrap(), db.unwrap());
    assert_eq!(da.addons_examined.max(db.addons_examined), 20);
    assert_eq!(
        da.adopted + da.already + db.adopted + db.already,
        10,
        "{da:?} {db:?}"
    );
    // Both may read the same page before either moves the watermark: one candidate each.
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mod_jetpack_adoption_addon_candidates")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(n, 10);
    env.exec("UPDATE tblorders SET status = 'Active'").await;
    let (ra, rb, ()) = tokio::join!(
        a.recheck_candidates(Recheck::After(RecheckCursor::default()), 100),
        b.recheck_candidates(Recheck::After(RecheckCursor::default()), 100),
        hooks(1)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.adopted + ra.already + rb.adopted + rb.already,
        10,
        "{ra:?} {rb:?}"
    );
    assert_eq!(
        ra.adopted_addons + rb.adopted_addons,
        ra.adopted + rb.adopted
    );
    let wa = env.worker_with(a, fast_settings(4));
    let wb = env.worker_with(b, fast_settings(4));
    let (sa, sb) = tokio::join!(wa.run_once(), wb.run_once());
    assert_eq!(sa.unwrap().adopted + sb.unwrap().adopted, 0);
    for addon in &addons {
        let jobs = addon_jobs(&env, *addon).await;
        assert_eq!(jobs.len(), 1, "addon {addon}: {jobs:?}");
        assert_eq!(jobs[0].2, "done", "addon {addon}");
        assert_eq!(addon_status(&env, *addon).await, "Active");
    }
}

/// Discovery reads tblhostingaddons by primary key above its watermark: each row once,
/// whatever its module, a page at a time; only the Pending ones of `jetpack` addons become
/// candidates; a new addon bought later is the only row the next page reads.
#[sqlx::test]
async fn adoption_discovers_each_addon_once_a_page_at_a_time(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let jetpack = addon_def(&env, "", "jetpack").await;
    let other = addon_def(&env, "", "").await;
    let parent = parent_service(&env, "many.example").await;
    env.exec(&format!(
        "INSERT INTO tblhostingaddons (orderid, hostingid, addonid, userid, name, status)
         SELECT seq, {parent}, IF(seq % 10 = 0, {jetpack}, {other}), 5, '',
                IF(seq % 20 = 0, 'Active', 'Pending')
         FROM seq_1_to_1200"
    ))
    .await;
    let mut pages = Vec::new();
    loop {
        let found = env.store.discover_candidates(&[], 500).await.unwrap();
        pages.push((found.addons_examined, found.addon_candidates));
        if !found.more {
            break;
        }
    }
    // 120 rows of the jetpack addon, 60 of them Pending.
    assert_eq!(pages, vec![(500, 25), (500, 25), (200, 10)]);
    let again = env.store.discover_candidates(&[], 500).await.unwrap();
    assert_eq!((again.addons_examined, again.more), (0, false));
    let later = bought_addon(&env, jetpack, parent, "Pending", "Pending", 0).await;
    let found = env.store.discover_candidates(&[], 500).await.unwrap();
    assert_eq!((found.addons_examined, found.addon_candidates), (1, 1));
    let (n, parent_of_later): (i64, u32) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM mod_jetpack_adoption_addon_candidates),
                (SELECT service_id FROM mod_jetpack_adoption_addon_candidates WHERE addon_id = ?)",
    )
    .bind(later)
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!((n, parent_of_later), (61, parent.0));
    // Not paid: a re-check keeps them as candidates; the other module's rows were never kept.
    let checked = env
        .store
        .recheck_candidates(Recheck::After(RecheckCursor::default()), 1000)
        .await
        .unwrap();
    assert_eq!(
        (checked.examined, checked.adopted, checked.dropped),
        (61, 0, 0)
    );
    assert_eq!(checked.next, None);
}

/// A running worker adopts an addon paid by a direct UPDATE of its invoice (no hook) within
/// about one adoption interval (the due re-check), on both layouts.
async fn addon_paid_by_direct_update_is_adopted_within_one_interval(env: Env) {
    let manual = addon_def(&env, "", "jetpack").await;
    let inv = unpaid_invoice(&env).await;
    let parent = parent_service(&env, "direct-addon.example").await;
    let addon = bought_addon(&env, manual, parent, "Pending", "Pending", inv).await;
    let settings = WorkerSettings {
        adopt_interval: Duration::from_secs(1),
        ..fast_settings(2)
    };
    let worker = env.worker_with(env.store.clone(), settings);
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });
    until(
        Duration::from_secs(5),
        "the addon to become a candidate",
        || async {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM mod_jetpack_adoption_addon_candidates")
                    .fetch_one(&env.db)
                    .await
                    .unwrap();
            n == 1
        },
    )
    .await;
    assert!(addon_requests(&env, addon).await.is_empty(), "unpaid");
    env.exec(&format!(
        "UPDATE tblinvoices SET status = 'Paid' WHERE id = {inv}"
    ))
    .await;
    let paid_at = std::time::Instant::now();
    until(Duration::from_secs(5), "the adoption request", || async {
        !addon_requests(&env, addon).await.is_empty()
    })
    .await;
    assert!(
        paid_at.elapsed() < Duration::from_millis(1600),
        "{:?}",
        paid_at.elapsed()
    );
    until(Duration::from_secs(10), "the job to finish", || async {
        addon_status(&env, addon).await == "Active"
    })
    .await;
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(
        addon_requests(&env, addon).await,
        vec![(parent.0, "adopt".to_owned())]
    );
}

#[sqlx::test]
async fn adoption_of_an_addon_paid_by_direct_update_within_one_interval_whmcs8(pool: MySqlPool) {
    addon_paid_by_direct_update_is_adopted_within_one_interval(Env::new(pool).await).await;
}

#[sqlx::test]
async fn adoption_of_an_addon_paid_by_direct_update_within_one_interval_whmcs783(pool: MySqlPool) {
    let env = Env::with(pool, Layout::V783, SandboxConfig::default()).await;
    addon_paid_by_direct_update_is_adopted_within_one_interval(env).await;
}

/// A WHMCS without module addons (before 7.2: no tbladdons.module, no
/// tblmodule_configuration) still adopts its services; the addon steps are skipped.
#[sqlx::test]
async fn adoption_without_module_addons_still_adopts_services(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec("ALTER TABLE tbladdons DROP COLUMN module; DROP TABLE tblmodule_configuration")
        .await;
    let store = env.store_with(ClaimPath::SkipLocked).await;
    assert!(!store.has_addons());
    assert!(env.store.has_addons(), "the store opened before");
    let manual = env.product("").await;
    let sid = env
        .service_with_order(
            manual,
            "Pending",
            "Active",
            0,
            "old-whmcs.example",
            "admin",
            "premium",
        )
        .await;
    let plans = store.explain_adoption(&[manual]).await.unwrap();
    assert!(
        plans.iter().all(|(n, _)| !n.starts_with("addons")),
        "{plans:?}"
    );
    let summary = env
        .worker_with(store, fast_settings(2))
        .run_once()
        .await
        .unwrap();
    assert_eq!(summary.adopted, 1);
    assert_eq!(env.status(sid).await, "Active");
}

/// The addon rule lives twice too: the AddonActivation hook decides in PHP (lib/Hooks.php),
/// the scan in SQL. Every combination of addon (manual-setup Jetpack, automatic Jetpack,
/// another module), addon status, order status, invoice status and parent (there or gone) is
/// seeded, manual-setup ones with each value of *When to provision a manual-setup order* (and
/// none); the real hook code runs for every addon, and the scan on the same rows: the Pending
/// addons each would provision must be the same set. WHMCS fires AddonActivation once it has
/// made the addon Active (on payment or acceptance, it does not say which), so the hook also
/// records each Active manual-setup Jetpack addon with its service whose order is neither Fraud
/// nor Cancelled and whose setting takes either, or whose order is Active and whose setting
/// waits for the acceptance (the scan adopts Pending ones only).
#[sqlx::test]
async fn the_addon_hook_and_the_scan_agree_on_which_addons_qualify(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let mut manual = Vec::new();
    for setting in [None, Some("paid"), Some("accepted"), Some("create")] {
        manual.push((addon_set_to(&env, setting).await, setting.unwrap_or("")));
    }
    let automatic = addon_def(&env, "payment", "jetpack").await;
    let other = addon_def(&env, "", "cpanel").await;
    let parent = parent_service(&env, "agree-addons.example").await;
    let mut addons = Vec::new();
    let mut activated = Vec::new();
    let mut defs = manual.clone();
    defs.extend([(automatic, "automatic"), (other, "other")]);
    for (def, setting) in defs {
        for service in [parent, ServiceId(999_999)] {
            for status in ["Pending", "Active"] {
                for order_status in ["Pending", "Active", "Fraud", "Cancelled"] {
                    for invoice_status in ["", "Unpaid", "Paid", "Cancelled"] {
                        let inv = if invoice_status.is_empty() {
                            0
                        } else {
                            any_invoice(&env, invoice_status).await
                        };
                        let addon =
                            bought_addon(&env, def, service, status, order_status, inv).await;
                        addons.push(addon.0.to_string());
                        let either = ["", "paid"].contains(&setting);
                        if manual.contains(&(def, setting))
                            && service == parent
                            && status == "Active"
                            && !matches!(order_status, "Fraud" | "Cancelled")
                            && (either || (setting == "accepted" && order_status == "Active"))
                        {
                            activated.push((addon.0, parent.0));
                        }
                    }
                }
            }
        }
    }
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
        .arg("AddonActivation")
        .args(&addons)
        .output()
        .expect("php (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(!log.contains("could not"), "{log}");
    let requested = |by: &'static str| {
        let env = &env;
        async move {
            let rows: Vec<(u32, u32)> = sqlx::query_as(
                "SELECT DISTINCT addon_id, service_id FROM mod_jetpack_requests
                 WHERE requested_by = ? ORDER BY addon_id",
            )
            .bind(by)
            .fetch_all(&env.db)
            .await
            .unwrap();
            env.exec("DELETE FROM mod_jetpack_requests").await;
            rows
        }
    };
    let mut by_hook = requested("hook").await;
    let before = by_hook.len();
    by_hook.retain(|target| !activated.contains(target));
    assert_eq!(
        before - by_hook.len(),
        activated.len(),
        "AddonActivation records every addon WHMCS activated: {activated:?}"
    );

    // As for services: a paid order's addon is adopted by the discovery page that finds it
    // (with its service: one whose service is gone stays a candidate, dropped by the
    // re-check), an unpaid one's candidate is spread.
    env.exec("UPDATE tblorders SET date = NOW() - INTERVAL 30 DAY")
        .await;
    let mut discovered = 0;
    loop {
        let found = env.store.discover_candidates(&[], 500).await.unwrap();
        discovered += found.adopted;
        if !found.more {
            break;
        }
    }
    let checked = env
        .store
        .recheck_candidates(Recheck::After(RecheckCursor::default()), 1000)
        .await
        .unwrap();
    assert_eq!(checked.adopted, 0, "the re-check finds none discovery left");
    let by_scan = requested("adopt").await;
    assert_eq!(discovered as usize, by_scan.len());
    // The re-check decides as discovery did: every Pending addon a candidate again.
    env.exec(
        "DELETE FROM mod_jetpack_adoption_addon_marks;
         INSERT IGNORE INTO mod_jetpack_adoption_addon_candidates
           (addon_id, service_id, found_at, next_check_at)
         SELECT id, hostingid, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM tblhostingaddons
         WHERE status = 'Pending'",
    )
    .await;
    let checked = env
        .store
        .recheck_candidates(Recheck::After(RecheckCursor::default()), 1000)
        .await
        .unwrap();
    let by_recheck = requested("adopt").await;
    assert_eq!(checked.adopted as usize, by_recheck.len());
    assert_eq!(checked.adopted_addons, checked.adopted);

    assert!(
        by_scan.len() >= 4,
        "paid or accepted, Pending, manual, with its service: {by_scan:?}"
    );
    assert!(by_scan.iter().all(|(_, s)| *s == parent.0), "{by_scan:?}");
    assert_eq!(by_hook, by_scan, "AddonActivation and the scan");
    assert_eq!(by_recheck, by_scan, "discovery and the re-check");
}

/// A product moved to another module after the worker read its list of Jetpack products (it is
/// cached for a minute): discovery reads the module again and adopts none of its paid Pending
/// services; the re-check drops their candidates. Before, discovery adopted them from the
/// stale list.
#[sqlx::test]
async fn discovery_does_not_adopt_for_a_product_moved_to_another_module(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let sid = env
        .service_with_order(
            manual,
            "Pending",
            "Active",
            0,
            "moved.example",
            "admin",
            "premium",
        )
        .await;
    let products = env.store.adoption_products().await.unwrap();
    assert_eq!(products, vec![manual]);
    env.exec(&format!(
        "UPDATE tblproducts SET servertype = 'cpanel' WHERE id = {manual}"
    ))
    .await;
    let found = env.store.discover_candidates(&products, 500).await.unwrap();
    assert_eq!((found.examined, found.adopted), (1, 0), "{found:?}");
    let checked = env
        .store
        .recheck_candidates(Recheck::After(RecheckCursor::default()), 100)
        .await
        .unwrap();
    assert_eq!((checked.adopted, checked.dropped), (0, 1), "{checked:?}");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mod_jetpack_requests")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(n, 0, "no request for service {sid}");
}
