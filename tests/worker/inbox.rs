//! The request inbox applied as sets: the same end state whatever the batch size (a seeded
//! differential test), a backlog that never holds claims back, and the statements a backlog
//! costs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jetpack_worker::store::Store;
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::bad_input::second_database;
use crate::helpers::{Env, exec_on, until, worker_pool};
use crate::reliability::seed_services;

/// The session counters of a one-connection pool (so other tests' statements never count).
async fn session_counters(pool: &MySqlPool) -> (u64, u64, u64) {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SHOW SESSION STATUS WHERE Variable_name IN ('Questions', 'Com_stmt_execute', 'Com_stmt_prepare')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .unwrap()
    };
    (
        get("Questions"),
        get("Com_stmt_execute"),
        get("Com_stmt_prepare"),
    )
}

/// The server's `Questions` (every session's: meaningful when nothing else runs).
async fn global_questions(pool: &MySqlPool) -> u64 {
    let (_, v): (String, String) = sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Questions'")
        .fetch_one(pool)
        .await
        .unwrap();
    v.parse().unwrap()
}

/// 2,000 distinct Creates cost a few statements per batch, not several per request.
#[sqlx::test]
async fn a_backlog_of_creates_costs_a_few_statements_per_batch(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec(
        "INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at)
         SELECT seq, 'provision', 'module', UTC_TIMESTAMP(6) FROM seq_1_to_2000",
    )
    .await;
    let one = worker_pool(&env.db, 1).await;
    let store = jetpack_worker::store::Store::open(one.clone(), None)
        .await
        .unwrap();
    let global_before = global_questions(&env.db).await;
    let before = session_counters(&one).await;
    let started = Instant::now();
    let applied = store.apply_requests().await.unwrap();
    let took = started.elapsed();
    let after = session_counters(&one).await;
    let global = global_questions(&env.db).await - global_before;
    assert_eq!(applied.len(), 2000);
    // The second SHOW counts itself.
    let questions = after.0 - before.0 - 1;
    let per_request = questions as f64 / 2000.0;
    println!(
        "applied 2000 Creates in {took:?}: {questions} statements ({per_request:.3} per request; \
         {} executes, {} prepares; the server's global Questions grew by {global})",
        after.1 - before.1,
        after.2 - before.2
    );
    let jobs: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'queued'")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(jobs, 2000);
    assert!(per_request < 0.05, "{per_request} statements per request");
}

/// A small deterministic generator (xorshift): a sequence is reproduced from its seed alone.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// The targets of a sequence: four services and two addons of a fifth.
const TARGETS: [(u32, u32); 6] = [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (5, 2)];
const ACTIONS: [&str; 3] = ["provision", "terminate", "change"];
const KINDS: [&str; 4] = ["provision", "terminate", "retry", "change"];
const REQUESTERS: [&str; 6] = ["module", "admin", "cli", "adopt", "hook", "reconcile"];

/// One random starting point and inbox, as SQL: each target's earlier jobs (finished in any
/// state, the last one maybe unfinished: queued or waiting on DNS, due later, or running with
/// or without a follow-up), a few requests applied long ago, and `n` pending requests of every
/// kind and requester (now and then one of a kind no worker knows), made in an order their ids
/// do not follow (Galera's interleaving) and sometimes in the same microsecond.
fn sequence(rng: &mut Rng, n: usize) -> String {
    let mut sql = String::new();
    for (service, addon) in TARGETS {
        for _ in 0..rng.below(4) {
            let state = rng.pick(&["done", "failed", "cancelled"]);
            sql += &format!(
                "INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at,
                   outcome_unknown, requested_by, created_at, updated_at, finished_at)
                 VALUES ({service}, {addon}, '{}', '{state}', UTC_TIMESTAMP(6), {}, '{}',
                   UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6));\n",
                rng.pick(&ACTIONS),
                rng.below(2),
                rng.pick(&REQUESTERS),
            );
        }
        if rng.below(3) > 0 {
            let state = rng.pick(&["queued", "waiting_dns", "running"]);
            let later = rng.below(2);
            let follow = match state {
                "running" => rng.pick(&["NULL", "'provision'", "'terminate'", "'change'"]),
                _ => "NULL",
            };
            sql += &format!(
                "INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at,
                   outcome_unknown, follow_up, lease_owner, lease_token, lease_expires_at,
                   requested_by, created_at, updated_at)
                 VALUES ({service}, {addon}, '{}', '{state}',
                   UTC_TIMESTAMP(6) + INTERVAL {later} HOUR, {}, {follow}, {lease}, {lease},
                   {expiry}, 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6));\n",
                rng.pick(&ACTIONS),
                rng.below(2),
                lease = if state == "running" { "'w'" } else { "NULL" },
                expiry = if state == "running" {
                    "UTC_TIMESTAMP(6) + INTERVAL 1 HOUR"
                } else {
                    "NULL"
                },
            );
        }
    }
    let mut ids: Vec<usize> = (1..=n + 3).collect();
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut second = 0;
    for (i, id) in ids.into_iter().enumerate() {
        let (service, addon) = TARGETS[rng.below(TARGETS.len() as u64) as usize];
        let kind = if rng.below(40) == 0 {
            "frobnicate"
        } else {
            rng.pick(&KINDS)
        };
        second += rng.below(3);
        let applied = if i < 3 {
            "'2026-01-01 00:00:00'"
        } else {
            "NULL"
        };
        sql += &format!(
            "INSERT INTO mod_jetpack_requests (id, service_id, addon_id, action, requested_by,
               created_at, applied_at, decision)
             VALUES ({id}, {service}, {addon}, '{kind}', '{}',
               '2026-01-01 00:00:00' + INTERVAL {second} SECOND, {applied},
               IF({applied} IS NULL, NULL, 'long ago'));\n",
            rng.pick(&REQUESTERS),
        );
    }
    sql
}

/// The jobs and requests tables with every job id named by its target and its place among
/// the target's jobs (the ids of one target's jobs keep their order, but a set of new jobs is
/// inserted round by round, not request by request), timestamps left out but for whether a
/// job is due.
async fn tables(db: &MySqlPool) -> (Vec<String>, Vec<String>) {
    let jobs: Vec<(u64, u32, u32, String)> = sqlx::query_as(
        "SELECT id, service_id, addon_id,
                CONCAT_WS('|', action, state, attempts, dns_checks, run_at <= UTC_TIMESTAMP(6),
                          IFNULL(lease_owner, '-'), IFNULL(lease_token, '-'), outcome_unknown,
                          waiting_since IS NULL, IFNULL(follow_up, '-'), IFNULL(result, '-'),
                          requested_by, finished_at IS NULL,
                          IFNULL(unfinished_service_id, '-'))
         FROM mod_jetpack_jobs ORDER BY service_id, addon_id, id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut places: HashMap<(u32, u32), usize> = HashMap::new();
    for (id, service, addon, _) in &jobs {
        let place = places.entry((*service, *addon)).or_default();
        *place += 1;
        names.insert(*id, format!("{service}/{addon}.{place}"));
    }
    let name = |id: u64| names.get(&id).cloned().unwrap_or_else(|| format!("?{id}"));
    let jobs = jobs
        .iter()
        .map(|(id, _, _, row)| format!("{} {}", name(*id), renamed(row, &name)))
        .collect();
    let requests: Vec<(u64, Option<u64>, String)> = sqlx::query_as(
        "SELECT id, job_id, CONCAT_WS('|', service_id, addon_id, action, requested_by,
                                      applied_at IS NULL, IFNULL(decision, '-'))
         FROM mod_jetpack_requests ORDER BY id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let requests = requests
        .iter()
        .map(|(id, job, row)| {
            format!(
                "{id} {} {}",
                job.map_or("-".to_owned(), name),
                renamed(row, &name)
            )
        })
        .collect();
    (jobs, requests)
}

/// `text` with each `#<id>` replaced by the job's name.
fn renamed(text: &str, name: &impl Fn(u64) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('#') {
        out += &rest[..=at];
        rest = &rest[at + 1..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out += &name(rest[..digits].parse().unwrap());
            rest = &rest[digits..];
        }
    }
    out + rest
}

/// Empties the worker's two tables (ids start again at 1).
const RESET: &str = "TRUNCATE TABLE mod_jetpack_jobs; TRUNCATE TABLE mod_jetpack_requests;";

/// Seeded random differential test: the same starting point and inbox, applied one request
/// per batch on one database and in batches of 500 (sets, round by round) on another, ends
/// with the same jobs and requests. `JETPACK_INBOX_SEED=<seed>` replays a run.
#[sqlx::test]
async fn applying_in_sets_ends_as_applying_one_by_one(pool: MySqlPool) {
    let (other_name, other) = second_database(&pool).await;
    let one_by_one = Store::open(pool.clone(), None).await.unwrap();
    let in_sets = Store::open(other.clone(), None).await.unwrap();
    let base: u64 = std::env::var("JETPACK_INBOX_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(1..u64::MAX / 2));
    println!("inbox differential: seed {base} (JETPACK_INBOX_SEED={base})");
    let mut decided = 0;
    for i in 0..30 {
        let seed = base + i;
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let script = sequence(&mut rng, 30);
        for db in [&pool, &other] {
            exec_on(db, RESET).await;
            exec_on(db, &script).await;
        }
        let a = one_by_one.apply_requests_by(1).await.unwrap();
        let b = in_sets.apply_requests_by(500).await.unwrap();
        assert_eq!(a.len(), b.len(), "seed {seed}");
        let order = |v: &[jetpack_worker::store::Applied]| -> Vec<u64> {
            v.iter().map(|x| x.request.0).collect()
        };
        assert_eq!(order(&a), order(&b), "seed {seed}: the order applied");
        let (jobs_a, requests_a) = tables(&pool).await;
        let (jobs_b, requests_b) = tables(&other).await;
        assert_eq!(jobs_a, jobs_b, "seed {seed}: the jobs\n{script}");
        assert_eq!(
            requests_a, requests_b,
            "seed {seed}: the requests\n{script}"
        );
        decided += a.iter().filter(|x| x.decision.is_some()).count();
    }
    assert!(decided > 300, "only {decided} requests reached the rules");
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE `{other_name}`")))
        .execute(&pool)
        .await
        .unwrap();
}

/// A Create recorded by the module for each of `ids` (a contiguous range of services).
async fn record_creates(env: &Env, ids: &[u32]) {
    env.exec(&format!(
        "INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at)
         SELECT id, 'provision', 'module', UTC_TIMESTAMP(6) FROM tblhosting
         WHERE id BETWEEN {} AND {}",
        ids[0],
        ids[ids.len() - 1]
    ))
    .await;
}

/// Requests made since the worker last looked: with 2,000 Creates waiting, `run` claims (a job
/// reaches running) while requests still wait, instead of applying them all first. Ordered
/// through the database: a trigger notes how many requests wait at each claim.
#[sqlx::test]
async fn a_backlog_of_requests_does_not_hold_claims_back(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (_, ids) = seed_services(&env, 2000, "backlog").await;
    assert_eq!(ids.len(), 2000);
    env.exec(
        "CREATE TABLE claim_seen (id INT AUTO_INCREMENT PRIMARY KEY, waiting INT NOT NULL);
         CREATE TRIGGER claim_seen AFTER UPDATE ON mod_jetpack_jobs FOR EACH ROW
           IF NEW.state = 'running' AND OLD.state <> 'running' THEN
             INSERT INTO claim_seen (waiting)
               SELECT COUNT(*) FROM mod_jetpack_requests WHERE applied_at IS NULL;
           END IF;",
    )
    .await;
    record_creates(&env, &ids).await;
    let stop = CancellationToken::new();
    let worker = env.worker();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await.unwrap() }
    });
    until(Duration::from_secs(30), "a claim", || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM claim_seen")
            .fetch_one(&env.db)
            .await
            .unwrap()
            > 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let first: i64 = sqlx::query_scalar("SELECT waiting FROM claim_seen ORDER BY id LIMIT 1")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(
        first > 0,
        "the first claim came after every request was applied"
    );
}

/// The first batch of a backlog of requests is the concurrency's worth, so its jobs start
/// while the next (full) batch is applied: 600 Creates with a concurrency of 8 are applied in
/// a transaction of 8, then one of the other 592 (each batch marks its requests in one
/// statement, so one `applied_at` per batch). Before, the first batch was 500.
#[sqlx::test]
async fn the_first_batch_of_a_backlog_fills_the_call_slots(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let (_, ids) = seed_services(&env, 600, "first").await;
    record_creates(&env, &ids).await;
    env.worker_with(env.store.clone(), crate::helpers::fast_settings(8))
        .run_once()
        .await
        .unwrap();
    let batches: Vec<(i64, u64, u64)> = sqlx::query_as(
        "SELECT COUNT(*), MIN(id), MAX(id) FROM mod_jetpack_requests
         GROUP BY applied_at ORDER BY applied_at",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    let sizes: Vec<i64> = batches.iter().map(|b| b.0).collect();
    assert_eq!(sizes, [8, 500, 92], "requests per batch, in order");
    assert!(
        batches.windows(2).all(|w| w[0].2 < w[1].1),
        "oldest first: {batches:?}"
    );
}

/// `run --once` goes on while requests wait: three batches' worth are all applied.
#[sqlx::test]
async fn run_once_applies_every_batch(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec(
        "INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at)
         SELECT seq, 'retry', 'module', UTC_TIMESTAMP(6) FROM seq_1_to_1200",
    )
    .await;
    let summary = env.worker().run_once().await.unwrap();
    assert_eq!(summary.applied, 1200);
    let waiting: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM mod_jetpack_requests WHERE applied_at IS NULL")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(waiting, 0);
}
