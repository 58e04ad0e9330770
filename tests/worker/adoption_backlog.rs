//! Adoption at the pace of the work (issue 19): a backlog of paid Pending orders the hooks
//! missed is recorded by the first scan (a paid order's candidate is due at once, and pages
//! follow each other while they adopt), each re-check page is adopted in one transaction, and
//! two workers on the same page still give each target one request and one mark.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jetpack_worker::domain::{AddonId, ServiceId};
use jetpack_worker::store::{ClaimPath, Recheck, Store};
use jetpack_worker::worker::WorkerSettings;
use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, MySql};
use tokio::sync::Barrier;
use tokio_util::sync::CancellationToken;

use crate::adoption::{addon_def, parent_service};
use crate::helpers::{Env, Rng, fast_settings, until};

/// `n` Pending services of `pid`, each with its own order (status `order`, no invoice) placed
/// `days` ago: two INSERT … SELECT, whatever `n` (`seq_1_to_0` would be two rows: none for
/// 0). Returns their ids.
async fn pending_services(env: &Env, pid: u32, n: u32, order: &str, days: u32) -> Vec<ServiceId> {
    if n == 0 {
        return Vec::new();
    }
    env.exec(&format!(
        "SET @o = (SELECT COALESCE(MAX(id), 0) FROM tblorders);
         SET @h = (SELECT COALESCE(MAX(id), 0) FROM tblhosting);
         INSERT INTO tblorders (id, ordernum, userid, date, status, invoiceid)
         SELECT @o + seq, seq, 5, NOW() - INTERVAL {days} DAY, '{order}', 0 FROM seq_1_to_{n};
         INSERT INTO tblhosting (id, userid, orderid, packageid, regdate, domainstatus)
         SELECT @h + seq, 5, @o + seq, {pid}, CURDATE(), 'Pending' FROM seq_1_to_{n}"
    ))
    .await;
    last_ids(env, "tblhosting", n)
        .await
        .into_iter()
        .map(ServiceId)
        .collect()
}

/// `n` Pending addons of `def` on `parent`, each with its own order as [`pending_services`].
async fn pending_addons(
    env: &Env,
    def: u32,
    parent: ServiceId,
    n: u32,
    order: &str,
    days: u32,
) -> Vec<AddonId> {
    if n == 0 {
        return Vec::new();
    }
    env.exec(&format!(
        "SET @o = (SELECT COALESCE(MAX(id), 0) FROM tblorders);
         SET @a = (SELECT COALESCE(MAX(id), 0) FROM tblhostingaddons);
         INSERT INTO tblorders (id, ordernum, userid, date, status, invoiceid)
         SELECT @o + seq, seq, 5, NOW() - INTERVAL {days} DAY, '{order}', 0 FROM seq_1_to_{n};
         INSERT INTO tblhostingaddons (id, orderid, hostingid, addonid, userid, name, status)
         SELECT @a + seq, @o + seq, {parent}, {def}, 5, '', 'Pending' FROM seq_1_to_{n}"
    ))
    .await;
    last_ids(env, "tblhostingaddons", n)
        .await
        .into_iter()
        .map(AddonId)
        .collect()
}

/// The `n` highest ids of a table, ascending.
async fn last_ids(env: &Env, table: &str, n: u32) -> Vec<u32> {
    let mut ids: Vec<u64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT CAST(id AS UNSIGNED) FROM {table} ORDER BY id DESC LIMIT {n}"
    )))
    .fetch_all(&env.db)
    .await
    .unwrap();
    ids.reverse();
    ids.into_iter().map(|id| id as u32).collect()
}

async fn count(env: &Env, sql: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
        .fetch_one(&env.db)
        .await
        .unwrap()
}

/// Every (service, addon) target's provision requests by who asked, in id order.
async fn requests_by_target(env: &Env) -> BTreeMap<(u32, u32), Vec<String>> {
    let rows: Vec<(u32, u32, String)> = sqlx::query_as(
        "SELECT service_id, addon_id, requested_by FROM mod_jetpack_requests
         WHERE action = 'provision' ORDER BY id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    let mut out: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    for (s, a, by) in rows {
        out.entry((s, a)).or_default().push(by);
    }
    out
}

/// Every provision mark as ((service, addon), outcome, whether its request_id names an adopt
/// request of that very target): services' marks with addon 0, then addons'.
async fn marks(env: &Env) -> Vec<((u32, u32), String, bool)> {
    sqlx::query_as::<MySql, (u64, u64, String, i64)>(
        "SELECT CAST(m.service_id AS UNSIGNED), CAST(0 AS UNSIGNED), m.outcome,
                EXISTS (SELECT 1 FROM mod_jetpack_requests r WHERE r.id = m.request_id
                        AND r.service_id = m.service_id AND r.addon_id = 0
                        AND r.requested_by = 'adopt')
         FROM mod_jetpack_adoption_marks m WHERE m.action = 'provision'
         UNION ALL
         SELECT CAST(m.service_id AS UNSIGNED), CAST(m.addon_id AS UNSIGNED), m.outcome,
                EXISTS (SELECT 1 FROM mod_jetpack_requests r WHERE r.id = m.request_id
                        AND r.service_id = m.service_id AND r.addon_id = m.addon_id
                        AND r.requested_by = 'adopt')
         FROM mod_jetpack_adoption_addon_marks m WHERE m.action = 'provision'",
    )
    .fetch_all(&env.db)
    .await
    .unwrap()
    .into_iter()
    .map(|(s, a, outcome, noted)| ((s as u32, a as u32), outcome, noted == 1))
    .collect()
}

/// A trigger noting the product's watermark at each request recorded (`request_seen`).
const REQUEST_SEEN: &str =
    "CREATE TABLE request_seen (id INT AUTO_INCREMENT PRIMARY KEY, watermark BIGINT NULL);
     CREATE TRIGGER request_seen AFTER INSERT ON mod_jetpack_requests FOR EACH ROW
       INSERT INTO request_seen (watermark)
         SELECT MAX(last_service_id) FROM mod_jetpack_adoption_watermarks;";

/// The watermarks the requests saw, each once, in the order the pages recorded them (None
/// before the first page moved it): the discovery pages' sizes, one after another.
async fn request_watermarks(env: &Env) -> Vec<Option<i64>> {
    sqlx::query_scalar("SELECT watermark FROM request_seen GROUP BY watermark ORDER BY MIN(id)")
        .fetch_all(&env.db)
        .await
        .unwrap()
}

/// The highest id of the first `n` of `ids`, as a watermark reads.
fn top_of(ids: &[ServiceId], n: usize) -> Option<i64> {
    Some(i64::from(ids[n - 1].0))
}

/// While discovery pages through a backlog, the paid services a page found are requested
/// by that page (never candidates), and their first jobs are claimed before it too (an intake
/// step that applied requests ends there), so jobs run while discovery goes on: 1,200 paid
/// Pending services of one product, and triggers noting the product's watermark at each
/// adoption request and at each claim. The first page is 16 services (the concurrency, 4, is
/// less), each full one after it twice the one before up to 500. Before, every request
/// came after discovery had read all 1,200, and (once they came during it) the first claim
/// waited for the next discovery page; each paid service was a candidate row first
/// (written, re-read, deleted), now never; and the first jobs waited for a page of 500.
#[sqlx::test]
async fn paid_orders_are_requested_while_discovery_goes_on(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let paid = pending_services(&env, manual, 1200, "Active", 30).await;
    env.exec(REQUEST_SEEN).await;
    env.exec(
        "CREATE TABLE claim_seen (id INT AUTO_INCREMENT PRIMARY KEY, watermark BIGINT NULL);
         CREATE TRIGGER claim_seen AFTER UPDATE ON mod_jetpack_jobs FOR EACH ROW
           IF NEW.state = 'running' AND OLD.state <> 'running' THEN
             INSERT INTO claim_seen (watermark)
               SELECT MAX(last_service_id) FROM mod_jetpack_adoption_watermarks;
           END IF;
         CREATE TABLE candidate_seen (id INT AUTO_INCREMENT PRIMARY KEY);
         CREATE TRIGGER candidate_seen AFTER INSERT ON mod_jetpack_adoption_candidates
           FOR EACH ROW INSERT INTO candidate_seen () VALUES ();",
    )
    .await;
    env.worker_with(env.store.clone(), fast_settings(4))
        .run_once()
        .await
        .unwrap();
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM candidate_seen").await,
        0,
        "a paid service is adopted from the page that found it, never a candidate"
    );
    let pages = request_watermarks(&env).await;
    // Each page's requests recorded by that page, before its watermark moved past it (none
    // yet for the first); a re-check after the page would see the page's own watermark.
    let top = |n: usize| top_of(&paid, n);
    assert_eq!(
        pages,
        [
            None,
            top(16),
            top(48),
            top(112),
            top(240),
            top(496),
            top(996)
        ],
        "pages of 16, 32, 64, 128, 256, 500 and 204"
    );
    let first_page = i64::from(paid[15].0);
    let claimed: Option<i64> =
        sqlx::query_scalar("SELECT watermark FROM claim_seen ORDER BY id LIMIT 1")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert!(
        claimed.is_some_and(|w| w <= first_page),
        "the first claim came with the watermark at {claimed:?}, after the first page's {first_page}"
    );
    let requests = requests_by_target(&env).await;
    assert_eq!(requests.len(), 1200, "each paid service requested");
    assert!(requests.values().all(|by| by == &["adopt"]), "once each");
}

/// 2,000 paid Pending services and 100 paid Pending addons whose orders are a month old (the
/// hooks missed them), beside 100 unpaid ones, before a `run` whose adoption interval is an
/// hour: the first scan records every paid one's provision request, once, with its mark
/// noting it; the unpaid ones stay candidates. (Before issue 19 their candidates fell due
/// over an hour and 15 were re-checked per interval.)
#[sqlx::test]
async fn a_backlog_of_paid_orders_is_recorded_by_the_first_scan(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let paid = pending_services(&env, manual, 2000, "Active", 30).await;
    let unpaid = pending_services(&env, manual, 100, "Pending", 30).await;
    let def = addon_def(&env, "", "jetpack").await;
    let parent = parent_service(&env, "backlog.example").await;
    let addons = pending_addons(&env, def, parent, 100, "Active", 30).await;
    let settings = WorkerSettings {
        adopt_interval: Duration::from_secs(3600),
        ..fast_settings(2)
    };
    let worker = env.worker_with(env.store.clone(), settings);
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });
    let adopted = "SELECT COUNT(*) FROM mod_jetpack_requests
                   WHERE requested_by = 'adopt' AND action = 'provision'";
    // Paid orders are recorded while discovery goes on: the unpaid ones (discovered last)
    // are candidates once the scan is through.
    until(
        Duration::from_secs(90),
        "every paid order's provision request and the unpaid ones' candidates, within the first scan",
        || async {
            count(&env, adopted).await == 2100
                && count(&env, "SELECT COUNT(*) FROM mod_jetpack_adoption_candidates").await == 100
        },
    )
    .await;
    stop.cancel();
    running.await.unwrap().unwrap();

    let requests = requests_by_target(&env).await;
    for sid in &paid {
        assert_eq!(requests.get(&(sid.0, 0)).unwrap(), &["adopt"], "{sid}");
    }
    for addon in &addons {
        assert_eq!(requests.get(&(parent.0, addon.0)).unwrap(), &["adopt"]);
    }
    for sid in &unpaid {
        assert!(!requests.contains_key(&(sid.0, 0)), "unpaid {sid}");
    }
    assert_eq!(requests.len(), 2100, "nothing else requested");
    let marks = marks(&env).await;
    assert_eq!(marks.len(), 2100);
    assert!(
        marks
            .iter()
            .all(|(_, outcome, noted)| outcome == "adopted" && *noted),
        "each mark notes its own request"
    );
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM mod_jetpack_adoption_candidates").await,
        100,
        "the unpaid ones wait"
    );
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM mod_jetpack_adoption_addon_candidates"
        )
        .await,
        0
    );
}

/// Two stores (two workers) discover, then re-check, the same targets at once, many times over
/// with random pages (seeded; `JETPACK_ADOPT_SEED` replays): services and addons, some paid
/// when discovered (adopted from the page), the others paid after (candidates), some
/// requested by a hook before. Each target ends with exactly one provision request and one
/// mark: `adopted` noting the scan's request, or `requested` for the hook's.
#[sqlx::test]
async fn two_workers_discovering_and_rechecking_one_page_give_each_target_one_request_and_one_mark(
    pool: MySqlPool,
) {
    let env = Env::new(pool).await;
    let seed: u64 = std::env::var("JETPACK_ADOPT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(1..u64::MAX / 2));
    println!("seed {seed} (JETPACK_ADOPT_SEED={seed})");
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let manual = env.product("").await;
    let def = addon_def(&env, "", "jetpack").await;
    let parent = parent_service(&env, "race.example").await;
    let stores = [
        env.store.clone(),
        env.store_with(ClaimPath::SkipLocked).await,
    ];
    let products = stores[0].adoption_products().await.unwrap();
    let mut hooked = Vec::new();
    let mut adopted = 0;
    for round in 0..20 {
        let mut services = pending_services(&env, manual, rng.below(20) as u32, "Active", 0).await;
        services
            .extend(pending_services(&env, manual, 1 + rng.below(30) as u32, "Pending", 0).await);
        let mut addons = pending_addons(&env, def, parent, rng.below(6) as u32, "Active", 0).await;
        addons.extend(pending_addons(&env, def, parent, rng.below(8) as u32, "Pending", 0).await);
        let mut targets: Vec<(u32, u32)> = services.iter().map(|s| (s.0, 0)).collect();
        targets.extend(addons.iter().map(|a| (parent.0, a.0)));
        for &(s, a) in &targets {
            if rng.below(4) == 0 {
                env.exec(&format!(
                    "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
                     VALUES ({s}, {a}, 'provision', 'hook', UTC_TIMESTAMP(6))"
                ))
                .await;
                hooked.push((s, a));
            }
        }
        let page = [10, 500][rng.below(2) as usize];
        let barrier = Arc::new(Barrier::new(2));
        let discovering = (0..2).map(|n| {
            let (store, barrier, products) = (stores[n].clone(), barrier.clone(), products.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut adopted = 0;
                loop {
                    let found = store.discover_candidates(&products, page).await?;
                    adopted += found.adopted;
                    if !found.more {
                        return Ok::<u64, jetpack_worker::store::StoreError>(adopted);
                    }
                }
            })
        });
        for racer in discovering.collect::<Vec<_>>() {
            adopted += racer
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        env.exec("UPDATE tblorders SET status = 'Active' WHERE status = 'Pending'")
            .await;
        let barrier = Arc::new(Barrier::new(2));
        let pages = [
            [10, 500][rng.below(2) as usize],
            [5, 10, 500][rng.below(3) as usize],
        ];
        let fresh = rng.below(2) == 0;
        let racers = (0..2).map(|n| {
            let (store, barrier) = (stores[n].clone(), barrier.clone());
            let which = if n == 1 && fresh {
                Recheck::Fresh
            } else {
                Recheck::Due
            };
            tokio::spawn(async move {
                barrier.wait().await;
                store.recheck_candidates(which, pages[n]).await
            })
        });
        for racer in racers.collect::<Vec<_>>() {
            let checked = racer.await.unwrap();
            adopted += checked
                .unwrap_or_else(|e| panic!("round {round}: {e}"))
                .adopted;
        }
        adopted += drain(&stores[0]).await;
    }
    let requests = requests_by_target(&env).await;
    let marks = marks(&env).await;
    assert_eq!(
        marks.len(),
        requests.len(),
        "seed {seed}: one mark per target"
    );
    for (target, outcome, noted) in &marks {
        let by = requests.get(target).unwrap();
        if hooked.contains(target) {
            assert_eq!(by, &["hook"], "seed {seed}: {target:?}");
            assert_eq!(
                (outcome.as_str(), *noted),
                ("requested", false),
                "seed {seed}"
            );
        } else {
            assert_eq!(by, &["adopt"], "seed {seed}: {target:?}");
            assert_eq!((outcome.as_str(), *noted), ("adopted", true), "seed {seed}");
        }
    }
    assert_eq!(
        adopted as usize,
        requests.len() - hooked.len(),
        "seed {seed}: the counts"
    );
}

/// Re-checks the due candidates until none is left; what was adopted.
async fn drain(store: &Store) -> u64 {
    let mut adopted = 0;
    loop {
        let checked = store.recheck_candidates(Recheck::Due, 500).await.unwrap();
        adopted += checked.adopted;
        if checked.examined == 0 {
            return adopted;
        }
    }
}

/// A re-check page one of whose targets another worker is marking (its mark inserted, not yet
/// committed): the page's marks wait for that commit, find one taken, and the page is adopted
/// one candidate at a time: the others get their request, the taken one none.
#[sqlx::test]
async fn a_page_another_worker_marks_meanwhile_is_adopted_one_at_a_time(pool: MySqlPool) {
    another_worker_marks_meanwhile(pool, false).await;
}

/// The same for a discovery page whose paid services are adopted from the page.
#[sqlx::test]
async fn a_discovery_page_another_worker_marks_meanwhile_is_adopted_one_at_a_time(pool: MySqlPool) {
    another_worker_marks_meanwhile(pool, true).await;
}

/// Five Pending services, paid before discovery (`found_paid`: the discovery page adopts them)
/// or after (candidates, re-checked), one of them marked by another worker meanwhile.
async fn another_worker_marks_meanwhile(pool: MySqlPool, found_paid: bool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let order = if found_paid { "Active" } else { "Pending" };
    let services = pending_services(&env, manual, 5, order, 0).await;
    let products = env.store.adoption_products().await.unwrap();
    if !found_paid {
        env.store.discover_candidates(&products, 500).await.unwrap();
        env.exec("UPDATE tblorders SET status = 'Active'").await;
    }
    let taken = services[2];
    let mut other = env.db.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO mod_jetpack_adoption_marks (service_id, action, outcome, marked_at)
         VALUES (?, 'provision', 'adopted', UTC_TIMESTAMP(6))",
    )
    .bind(taken)
    .execute(&mut *other)
    .await
    .unwrap();
    let scan = tokio::spawn({
        let store = env.store.clone();
        async move {
            if found_paid {
                let found = store.discover_candidates(&products, 500).await?;
                Ok((found.examined, found.adopted, found.already))
            } else {
                let checked = store.recheck_candidates(Recheck::Due, 10).await?;
                Ok::<_, jetpack_worker::store::StoreError>((
                    checked.examined,
                    checked.adopted,
                    checked.already,
                ))
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!scan.is_finished(), "the marks wait for the other worker");
    other.commit().await.unwrap();
    assert_eq!(scan.await.unwrap().unwrap(), (5, 4, 0));
    let requests = requests_by_target(&env).await;
    for sid in &services {
        let want: &[&str] = if *sid == taken { &[] } else { &["adopt"] };
        assert_eq!(
            requests.get(&(sid.0, 0)).map(Vec::as_slice).unwrap_or(&[]),
            want,
            "{sid}"
        );
    }
    let marks = marks(&env).await;
    assert_eq!(marks.len(), 5);
    for (target, outcome, noted) in marks {
        assert_eq!(outcome, "adopted");
        assert_eq!(noted, target.0 != taken.0, "{target:?}");
    }
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM mod_jetpack_adoption_candidates").await,
        0
    );
}

/// One page holding every case, services and addons: paid (adopted), not paid yet (waits,
/// postponed), no longer Pending (dropped), already requested by a hook (marked `requested`,
/// not requested again) and marked before (dropped). Each ends as it did one at a time.
#[sqlx::test]
async fn a_mixed_page_ends_each_candidate_as_before(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let def = addon_def(&env, "", "jetpack").await;
    let parent = parent_service(&env, "mixed.example").await;
    // Every order unpaid when discovered (all candidates); all but the unpaid ones' accepted
    // after.
    let paid = pending_services(&env, manual, 3, "Pending", 0).await;
    let unpaid = pending_services(&env, manual, 2, "Fraud", 0).await;
    let gone_active = pending_services(&env, manual, 2, "Pending", 0).await;
    let hooked = pending_services(&env, manual, 2, "Pending", 0).await;
    let marked = pending_services(&env, manual, 1, "Pending", 0).await;
    let addon_paid = pending_addons(&env, def, parent, 2, "Pending", 0).await;
    let addon_unpaid = pending_addons(&env, def, parent, 1, "Fraud", 0).await;
    let addon_hooked = pending_addons(&env, def, parent, 1, "Pending", 0).await;
    let products = env.store.adoption_products().await.unwrap();
    env.store.discover_candidates(&products, 500).await.unwrap();
    env.exec(
        "UPDATE tblorders SET status = 'Active' WHERE status = 'Pending';
         UPDATE tblorders SET status = 'Pending' WHERE status = 'Fraud'",
    )
    .await;
    for sid in &gone_active {
        env.exec(&format!(
            "UPDATE tblhosting SET domainstatus = 'Active' WHERE id = {sid}"
        ))
        .await;
    }
    for (s, a) in hooked
        .iter()
        .map(|s| (s.0, 0))
        .chain(addon_hooked.iter().map(|a| (parent.0, a.0)))
    {
        env.exec(&format!(
            "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at)
             VALUES ({s}, {a}, 'provision', 'hook', UTC_TIMESTAMP(6))"
        ))
        .await;
    }
    env.exec(&format!(
        "INSERT INTO mod_jetpack_adoption_marks (service_id, action, outcome, marked_at)
         VALUES ({}, 'provision', 'adopted', UTC_TIMESTAMP(6))",
        marked[0]
    ))
    .await;

    let checked = env
        .store
        .recheck_candidates(Recheck::Due, 50)
        .await
        .unwrap();
    assert_eq!(checked.examined, 10 + 4);
    assert_eq!((checked.adopted, checked.adopted_addons), (3 + 2, 2));
    assert_eq!(checked.already, 2 + 1);
    assert_eq!(checked.dropped, 2 + 1);

    let requests = requests_by_target(&env).await;
    let by = |s: u32, a: u32| requests.get(&(s, a)).cloned().unwrap_or_default();
    for sid in &paid {
        assert_eq!(by(sid.0, 0), ["adopt"]);
    }
    for a in &addon_paid {
        assert_eq!(by(parent.0, a.0), ["adopt"]);
    }
    for sid in &hooked {
        assert_eq!(by(sid.0, 0), ["hook"]);
    }
    assert_eq!(by(parent.0, addon_hooked[0].0), ["hook"]);
    for sid in unpaid.iter().chain(&gone_active).chain(&marked) {
        assert!(by(sid.0, 0).is_empty(), "{sid}");
    }
    assert!(by(parent.0, addon_unpaid[0].0).is_empty());

    let marks: BTreeMap<(u32, u32), (String, bool)> = marks(&env)
        .await
        .into_iter()
        .map(|(t, outcome, noted)| (t, (outcome, noted)))
        .collect();
    let adopted = ("adopted".to_owned(), true);
    let requested = ("requested".to_owned(), false);
    let mut want = BTreeMap::new();
    for sid in &paid {
        want.insert((sid.0, 0), adopted.clone());
    }
    for a in &addon_paid {
        want.insert((parent.0, a.0), adopted.clone());
    }
    for sid in &hooked {
        want.insert((sid.0, 0), requested.clone());
    }
    want.insert((parent.0, addon_hooked[0].0), requested.clone());
    want.insert((marked[0].0, 0), ("adopted".to_owned(), false));
    assert_eq!(marks, want);

    // Only the unpaid ones are still candidates, due again later.
    let left: Vec<u32> = sqlx::query_scalar(
        "SELECT service_id FROM mod_jetpack_adoption_candidates ORDER BY service_id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(left, unpaid.iter().map(|s| s.0).collect::<Vec<_>>());
    let left: Vec<u32> =
        sqlx::query_scalar("SELECT addon_id FROM mod_jetpack_adoption_addon_candidates")
            .fetch_all(&env.db)
            .await
            .unwrap();
    assert_eq!(left, [addon_unpaid[0].0]);
}

/// A discovery page over several Jetpack products adopts its paid targets in chunks of a page
/// (one transaction each, so no statement outgrows MariaDB's placeholders however many
/// products a page spans): three products with 11 paid Pending services each, interleaved by
/// id, and pages of 4: the first page finds 12 paid (three chunks), the second 12, the third
/// 9, and each service is requested once.
#[sqlx::test]
async fn a_discovery_page_over_several_products_adopts_in_chunks_each_target_once(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let products = [
        env.product("").await,
        env.product("").await,
        env.product("").await,
    ];
    let mut paid = Vec::new();
    for _ in 0..11 {
        for pid in products {
            paid.extend(pending_services(&env, pid, 1, "Active", 3).await);
        }
    }
    let listed = env.store.adoption_products().await.unwrap();
    let mut pages = Vec::new();
    loop {
        let found = env.store.discover_candidates(&listed, 4).await.unwrap();
        pages.push((found.examined, found.adopted, found.candidates));
        if !found.more {
            break;
        }
    }
    assert_eq!(
        pages,
        [(12, 12, 0), (12, 12, 0), (9, 9, 0)],
        "pages of 4 per product, every paid one adopted"
    );
    let requests = requests_by_target(&env).await;
    assert_eq!(requests.len(), 33);
    for sid in &paid {
        assert_eq!(requests.get(&(sid.0, 0)).unwrap(), &["adopt"], "{sid}");
    }
    assert_eq!(marks(&env).await.len(), 33, "one mark each");
}

/// A discovery page that fails ends the scan, and the next scan starts again with a small
/// first page, not the size that failed: 600 paid services, pages of 16, 32, 64 and 128
/// adopted, the fifth (256) refused (a trigger on the marks) until the test lifts the refusal;
/// then pages of 16, 32, 64, 128 and 256 again. Before, the next scan went on with 256.
#[sqlx::test]
async fn after_a_failed_discovery_page_the_next_scan_starts_small(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let manual = env.product("").await;
    let paid = pending_services(&env, manual, 600, "Active", 30).await;
    env.exec(REQUEST_SEEN).await;
    env.exec(&format!(
        "CREATE TABLE refuse (id INT PRIMARY KEY);
         INSERT INTO refuse VALUES (1);
         CREATE TRIGGER refuse BEFORE INSERT ON mod_jetpack_adoption_marks FOR EACH ROW
           IF EXISTS (SELECT 1 FROM refuse)
              AND (SELECT MAX(last_service_id) FROM mod_jetpack_adoption_watermarks) >= {} THEN
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test';
           END IF;",
        paid[239].0
    ))
    .await;
    let settings = WorkerSettings {
        adopt_interval: Duration::from_secs(1),
        ..fast_settings(4)
    };
    let worker = env.worker_with(env.store.clone(), settings);
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });
    let adopted = "SELECT COUNT(*) FROM mod_jetpack_requests WHERE requested_by = 'adopt'";
    until(
        Duration::from_secs(30),
        "the first four pages adopted",
        || async { count(&env, adopted).await == 240 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(&env, adopted).await, 240, "the fifth page is refused");
    env.exec("DELETE FROM refuse").await;
    until(
        Duration::from_secs(30),
        "every paid service adopted once the refusal is lifted",
        || async { count(&env, adopted).await == 600 },
    )
    .await;
    stop.cancel();
    running.await.unwrap().unwrap();
    let pages = request_watermarks(&env).await;
    let top = |n: usize| top_of(&paid, n);
    assert_eq!(
        pages,
        [
            None,
            top(16),
            top(48),
            top(112),
            top(240),
            top(256),
            top(288),
            top(352),
            top(480)
        ],
        "pages of 16, 32, 64 and 128; the refused one; then 16, 32, 64, 128 and 120"
    );
}
