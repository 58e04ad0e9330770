//! Discovery that cannot skip (issue 18): a service or addon whose transaction commits after a
//! higher id was discovered lies below the watermark; the trailing window re-reads it and it is
//! adopted once, by the next pass (real MariaDB, the insert held open on its own connection).
//! The window's reads stop once nothing new was discovered for a window (the idle cost).

use std::time::{Duration, Instant};

use jetpack_worker::domain::{AddonId, ServiceId};
use jetpack_worker::worker::WorkerSettings;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, MySql, MySqlPool};
use tokio_util::sync::CancellationToken;

use crate::helpers::{CLIENT_ID, Env, SECRET, fast_settings, until};

/// A connection of the test's own with WHMCS's sql_mode, inside an open transaction.
async fn open_transaction(env: &Env) -> PoolConnection<MySql> {
    let mut conn = env.db.acquire().await.unwrap();
    for sql in ["SET SESSION sql_mode = ''", "BEGIN"] {
        sqlx::query(sql).execute(&mut *conn).await.unwrap();
    }
    conn
}

async fn run(conn: &mut PoolConnection<MySql>, sql: String) -> u64 {
    sqlx::query(AssertSqlSafe(sql))
        .execute(&mut **conn)
        .await
        .unwrap()
        .last_insert_id()
}

/// A Pending service of `pid` with an accepted order and its customer values, inserted (and
/// not committed) in `conn`'s transaction, as WHMCS's checkout does.
async fn held_service(conn: &mut PoolConnection<MySql>, pid: u32, site: &str) -> ServiceId {
    let oid = run(
        conn,
        "INSERT INTO tblorders (ordernum, userid, date, status, invoiceid)
         VALUES (1, 5, NOW(), 'Active', 0)"
            .to_owned(),
    )
    .await;
    let sid = run(
        conn,
        format!(
            "INSERT INTO tblhosting (userid, orderid, packageid, regdate, domainstatus)
             VALUES (5, {oid}, {pid}, CURDATE(), 'Pending')"
        ),
    )
    .await;
    for (key, value) in [
        ("Site URL", site),
        ("Local User", "admin"),
        ("Plan", "premium"),
    ] {
        run(
            conn,
            format!(
                "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value)
                 SELECT id, {sid}, '{value}' FROM tblcustomfields
                 WHERE type = 'product' AND relid = {pid}
                   AND (fieldname = '{key}' OR fieldname LIKE '{key}|%')"
            ),
        )
        .await;
    }
    ServiceId(sid as u32)
}

/// A `jetpack` addon set to "Do not automatically setup", with its module settings.
async fn manual_addon(env: &Env) -> u32 {
    env.exec(
        "INSERT INTO tbladdons (name, autoactivate, module) VALUES ('Jetpack Addon', '', 'jetpack')",
    )
    .await;
    let (id,): (i32,) = sqlx::query_as("SELECT MAX(id) FROM tbladdons")
        .fetch_one(&env.db)
        .await
        .unwrap();
    for (name, value) in [
        ("configoption1", CLIENT_ID),
        ("configoption2", SECRET),
        ("configoption3", "premium"),
        ("configoption6", "admin"),
    ] {
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

/// An Active cPanel service on `domain`: the parent of the addons.
async fn parent_service(env: &Env, domain: &str) -> ServiceId {
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

/// A Pending addon of `def` on `parent` with an accepted order, inserted in `conn`'s
/// transaction (committed when `conn` is not inside one).
async fn addon_in(conn: &mut PoolConnection<MySql>, def: u32, parent: ServiceId) -> AddonId {
    let oid = run(
        conn,
        "INSERT INTO tblorders (ordernum, userid, date, status, invoiceid)
         VALUES (1, 5, NOW(), 'Active', 0)"
            .to_owned(),
    )
    .await;
    let id = run(
        conn,
        format!(
            "INSERT INTO tblhostingaddons (orderid, hostingid, addonid, userid, name, status)
             VALUES ({oid}, {parent}, {def}, 5, '', 'Pending')"
        ),
    )
    .await;
    AddonId(id as u32)
}

/// Who asked for a service's own provisions (not its addons').
async fn service_requests(env: &Env, sid: ServiceId) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT requested_by FROM mod_jetpack_requests
         WHERE service_id = ? AND addon_id = 0 AND action = 'provision' ORDER BY id",
    )
    .bind(sid)
    .fetch_all(&env.db)
    .await
    .unwrap()
}

/// Who asked for an addon's provisions.
async fn addon_requests(env: &Env, addon: AddonId) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT requested_by FROM mod_jetpack_requests
         WHERE addon_id = ? AND action = 'provision' ORDER BY id",
    )
    .bind(addon)
    .fetch_all(&env.db)
    .await
    .unwrap()
}

/// The jobs of a target (service id, addon id 0 for the service itself) by state.
async fn job_states(env: &Env, sid: ServiceId, addon: u32) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT CAST(state AS CHAR) FROM mod_jetpack_jobs WHERE service_id = ? AND addon_id = ?",
    )
    .bind(sid)
    .bind(addon)
    .fetch_all(&env.db)
    .await
    .unwrap()
}

/// A service inserted first but committed after a higher one was discovered (and adopted) is
/// adopted by the next pass, once: the pass before its commit cannot see it, the one after
/// finds it below the watermark, and a further pass adds nothing.
#[sqlx::test]
async fn a_service_committed_below_the_watermark_is_adopted_once(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    // A worker that has already run (its window starts at the watermarks).
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 0);

    let mut slow = open_transaction(&env).await;
    let late = held_service(&mut slow, manual, "late.example").await;
    let early = env
        .service_with_order(
            manual,
            "Pending",
            "Active",
            0,
            "early.example",
            "admin",
            "premium",
        )
        .await;
    assert!(late < early, "ids are allocated at INSERT time");

    let summary = env.worker().run_once().await.unwrap();
    assert_eq!(summary.adopted, 1);
    assert_eq!(service_requests(&env, early).await, ["adopt"]);
    assert!(
        service_requests(&env, late).await.is_empty(),
        "not committed yet"
    );

    sqlx::query("COMMIT").execute(&mut *slow).await.unwrap();
    drop(slow);
    let summary = env.worker().run_once().await.unwrap();
    assert_eq!(summary.adopted, 1, "the late one, below the watermark");
    assert_eq!(service_requests(&env, late).await, ["adopt"]);
    assert_eq!(job_states(&env, late, 0).await, ["done"]);
    assert_eq!(env.status(late).await, "Active");

    assert_eq!(env.worker().run_once().await.unwrap().adopted, 0);
    assert_eq!(service_requests(&env, late).await, ["adopt"], "once");
    assert_eq!(service_requests(&env, early).await, ["adopt"], "once");
}

/// The same for an addon: tblhostingaddons' watermark has passed it when it commits.
#[sqlx::test]
async fn an_addon_committed_below_the_watermark_is_adopted_once(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let def = manual_addon(&env).await;
    let parent = parent_service(&env, "addon-parent.example").await;
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 0);

    let mut slow = open_transaction(&env).await;
    let late = addon_in(&mut slow, def, parent).await;
    let mut other = env.db.acquire().await.unwrap();
    run(&mut other, "SET SESSION sql_mode = ''".to_owned()).await;
    let early = addon_in(&mut other, def, parent).await;
    drop(other);
    assert!(late < early);

    assert_eq!(env.worker().run_once().await.unwrap().adopted, 1);
    assert_eq!(addon_requests(&env, early).await, ["adopt"]);
    assert!(
        addon_requests(&env, late).await.is_empty(),
        "not committed yet"
    );

    sqlx::query("COMMIT").execute(&mut *slow).await.unwrap();
    drop(slow);
    assert_eq!(env.worker().run_once().await.unwrap().adopted, 1);
    assert_eq!(addon_requests(&env, late).await, ["adopt"]);
    assert_eq!(job_states(&env, parent, late.0).await, ["done"]);

    assert_eq!(env.worker().run_once().await.unwrap().adopted, 0);
    assert_eq!(addon_requests(&env, late).await, ["adopt"], "once");
    assert!(
        service_requests(&env, parent).await.is_empty(),
        "the parent is not a target"
    );
}

/// A running worker (adoption interval 1 s) adopts a service committed below the watermark
/// within two adoption intervals of its commit.
#[sqlx::test]
async fn a_running_worker_adopts_a_late_commit_within_two_intervals(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let interval = Duration::from_secs(1);
    let settings = WorkerSettings {
        adopt_interval: interval,
        ..fast_settings(2)
    };
    let worker = env.worker_with(env.store.clone(), settings);
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });
    // A worker that has already scanned: its first pass discovers this one (and starts the
    // window), a second one follows.
    env.service_with_order(
        manual,
        "Active",
        "Active",
        0,
        "first-run.example",
        "admin",
        "premium",
    )
    .await;
    until(Duration::from_secs(5), "the first discovery", || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mod_jetpack_adoption_watermarks")
            .fetch_one(&env.db)
            .await
            .unwrap();
        n == 1
    })
    .await;
    tokio::time::sleep(interval * 2).await;
    let mut slow = open_transaction(&env).await;
    let late = held_service(&mut slow, manual, "late-run.example").await;
    let early = env
        .service_with_order(
            manual,
            "Pending",
            "Active",
            0,
            "early-run.example",
            "admin",
            "premium",
        )
        .await;
    until(Duration::from_secs(5), "the early one adopted", || async {
        !service_requests(&env, early).await.is_empty()
    })
    .await;
    // One more scan passes the uncommitted one by.
    tokio::time::sleep(interval * 2).await;
    assert!(service_requests(&env, late).await.is_empty());
    sqlx::query("COMMIT").execute(&mut *slow).await.unwrap();
    let committed = Instant::now();
    drop(slow);
    until(interval * 4, "the late one adopted", || async {
        !service_requests(&env, late).await.is_empty()
    })
    .await;
    let took = committed.elapsed();
    assert!(
        took <= interval * 2 + Duration::from_millis(500),
        "{took:?}"
    );
    until(Duration::from_secs(10), "its job done", || async {
        env.status(late).await == "Active"
    })
    .await;
    stop.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(service_requests(&env, late).await, ["adopt"]);
    assert_eq!(service_requests(&env, early).await, ["adopt"]);
}

/// The window's state: (service trail, service mid, addon trail, addon mid).
async fn window_row(env: &Env) -> (u32, u32, u32, u32) {
    sqlx::query_as(
        "SELECT service_trail, service_mid, addon_trail, addon_mid FROM mod_jetpack_adoption_window",
    )
    .fetch_one(&env.db)
    .await
    .unwrap()
}

/// The window starts at the tables' tops, reads the ids discovered since its trail while its
/// mids are younger than a window, and once they have aged twice with nothing new the trails
/// reach the watermarks and no window read is made at all (the idle cost).
#[sqlx::test]
async fn the_window_reads_only_while_something_new_is_younger_than_a_window(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let def = manual_addon(&env).await;
    let parent = parent_service(&env, "window.example").await;
    let products = env.store.adoption_products().await.unwrap();
    let long = Duration::from_secs(3600);
    let pass = |window| {
        let (env, products) = (&env, &products);
        async move {
            assert!(
                !env.store
                    .discover_candidates(products, 500)
                    .await
                    .unwrap()
                    .more
            );
            env.store
                .rescan_window(products, 500, window)
                .await
                .unwrap()
        }
    };
    assert!(
        !pass(long).await.read,
        "a new window starts at the tables' tops"
    );
    let p = parent.0;
    assert_eq!(window_row(&env).await, (p, p, 0, 0));

    let sid = env
        .service_with_order(
            manual,
            "Active",
            "Active",
            0,
            "w.example",
            "admin",
            "premium",
        )
        .await;
    let mut conn = env.db.acquire().await.unwrap();
    run(&mut conn, "SET SESSION sql_mode = ''".to_owned()).await;
    let addon = addon_in(&mut conn, def, parent).await;
    drop(conn);
    let found = pass(long).await;
    assert!(found.read, "new ids above the trails");
    assert_eq!(
        (found.candidates, found.addon_candidates),
        (0, 0),
        "the new addon is a candidate already"
    );
    assert_eq!(window_row(&env).await, (p, p, 0, 0), "not aged yet");

    // Aged (a zero window): the mids become the trails, the watermarks the mids.
    assert!(pass(Duration::ZERO).await.read);
    assert_eq!(window_row(&env).await, (p, sid.0, 0, addon.0));
    assert!(pass(Duration::ZERO).await.read, "still within the window");
    assert_eq!(window_row(&env).await, (sid.0, sid.0, addon.0, addon.0));
    for _ in 0..2 {
        assert!(
            !pass(Duration::ZERO).await.read,
            "nothing new: no window read"
        );
        assert_eq!(window_row(&env).await, (sid.0, sid.0, addon.0, addon.0));
    }
}
