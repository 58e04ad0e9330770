//! The batched finish (`Store::finish_batch`, the completer's write): a job whose lease was
//! taken over gets nothing written on any table; every kind of outcome ends as one job's
//! finish ends it (a seeded differential test against a second database finished one by
//! one); a batch whose transaction fails is written job by job; and a batch of plain
//! provisions is one transaction.

use jetpack_worker::domain::JobState;
use std::time::Duration;

use jetpack_sandbox::SandboxConfig;
use jetpack_worker::domain::{Action, RequestedBy, Target};
use jetpack_worker::store::{
    ClaimedJob, DetailsField, Finish, LedgerWrite, ModuleLogEntry, ModuleQueueWrite, StatusChange,
    Store, WhmcsWrites,
};
use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, Row};

use crate::addons::{PREMIUM, addon, addon_def, hosting};
use crate::bad_input::second_database;
use crate::helpers::{Env, Layout, fast_settings, worker_pool};

/// The kinds of outcome a batch mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Provisioned: details, Active, activity, ledger and watch, module log.
    Done,
    /// Provisioned after a failure: also resolves the Module Queue entry.
    DoneAfterFailure,
    /// Provisioned as a pending plan, waiting on DNS.
    WaitingDns,
    /// A transient failure: queued again with a (long) error.
    Retry,
    /// A failure: back to Pending and a Module Queue Add.
    FailAdd,
    /// A terminate: the ledger's Cancelled, Terminated.
    Terminate,
    /// An addon's provision.
    Addon,
    /// Provisioned while a terminate was requested: the follow-up is queued.
    FollowUp,
}

const KINDS: [Kind; 8] = [
    Kind::Done,
    Kind::DoneAfterFailure,
    Kind::WaitingDns,
    Kind::Retry,
    Kind::FailAdd,
    Kind::Terminate,
    Kind::Addon,
    Kind::FollowUp,
];

/// A small deterministic generator (xorshift): a failing mix is reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn seed() -> u64 {
    let seed = std::env::var("BATCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(1..));
    println!("batch seed: {seed} (BATCH_SEED={seed} reproduces it)");
    seed
}

/// Every kind once, then `extra` more drawn from `rng`.
fn mix(rng: &mut Rng, extra: usize) -> Vec<Kind> {
    let mut kinds = KINDS.to_vec();
    for _ in 0..extra {
        kinds.push(KINDS[rng.below(KINDS.len())]);
    }
    kinds
}

fn site(n: usize) -> String {
    format!("batch{n}.example")
}

/// Seeds one target per kind (identically on every database: same statements, same ids),
/// enqueues its job, and, for some, a details row already there (as the PHP module writes
/// "queued") and an open Module Queue entry. Returns the targets, in order.
async fn seed_targets(env: &Env, kinds: &[Kind], rng: &mut Rng) -> Vec<Target> {
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
        .await;
    let pid = env.product("").await;
    let def = addon_def(env, "", PREMIUM, &["jetpack_provisioning_details|Details"]).await;
    let mut targets = Vec::new();
    for (n, kind) in kinds.iter().enumerate() {
        let target = if *kind == Kind::Addon {
            let parent = hosting(env, &site(n)).await;
            addon(env, def, parent, "Pending", &[]).await
        } else {
            let status = if *kind == Kind::Terminate {
                "Active"
            } else {
                "Pending"
            };
            Target::Service(env.service(pid, status, &site(n), "admin", "premium").await)
        };
        if rng.below(2) == 0 {
            let (kind_of, rel) = match target {
                Target::Service(s) => ("product", s.0),
                Target::Addon { addon, .. } => ("addon", addon.0),
            };
            env.exec(&format!(
                "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value)
                 SELECT id, {rel}, 'queued' FROM tblcustomfields
                 WHERE type = '{kind_of}' AND fieldname LIKE 'jetpack_provisioning_details%'
                 ORDER BY id DESC LIMIT 1"
            ))
            .await;
        }
        if *kind == Kind::DoneAfterFailure {
            env.exec(&format!(
                "INSERT INTO tblmodulequeue (service_type, service_id, module_name, module_action,
                   last_attempt, last_attempt_error, num_retries, completed, created_at, updated_at)
                 VALUES ('service', {}, 'jetpack', 'CreateAccount', NOW(), 'earlier', 1, 0,
                         NOW(), NOW())",
                target.entity_id()
            ))
            .await;
        }
        let action = if *kind == Kind::Terminate {
            Action::Terminate
        } else {
            Action::Provision
        };
        env.store
            .enqueue(target, action, RequestedBy::Module)
            .await
            .unwrap();
        targets.push(target);
    }
    targets
}

/// Claims every job (in target order) and records a terminate behind the follow-up kinds.
async fn claim_all(env: &Env, kinds: &[Kind], targets: &[Target]) -> Vec<ClaimedJob> {
    let mut jobs = env
        .store
        .claim("batcher", kinds.len() as u32, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(jobs.len(), kinds.len());
    jobs.sort_by_key(|j| targets.iter().position(|t| *t == j.target));
    for (kind, target) in kinds.iter().zip(targets) {
        if *kind == Kind::FollowUp {
            env.store
                .enqueue(*target, Action::Terminate, RequestedBy::Module)
                .await
                .unwrap();
        }
    }
    jobs
}

fn details_field(job: &ClaimedJob) -> DetailsField {
    let f = job
        .fields
        .iter()
        .find(|f| f.field_name.starts_with("jetpack_provisioning_details"))
        .expect("a details field");
    DetailsField {
        field_id: f.field_id,
        value_id: f.value_id,
    }
}

/// The outcome of `kind` for `job` (site `n`), as the worker would build it.
fn finish_of(kind: Kind, n: usize, job: &ClaimedJob) -> Finish {
    let site = site(n);
    let t = job.target;
    let log = vec![ModuleLogEntry {
        action: "provision",
        request: format!("POST /provision site={site}"),
        response: format!("200 OK {{\"site\":\"{site}\"}} 🚀"),
    }];
    let holds = |pending| LedgerWrite::Holds {
        site: site.clone(),
        plan: "jetpack_premium".into(),
        pending,
    };
    let whmcs = |details: String, status, activity: Option<String>, queue| WhmcsWrites {
        client_id: 5,
        details: Some((details_field(job), details)),
        status,
        activity,
        module_queue: queue,
        module_log: log.clone(),
        module_log_action: "createaccount",
    };
    let mut base = Finish::done(
        format!("provisioned {site}"),
        whmcs(
            format!("Activated {site} ✅ 🚀"),
            Some(StatusChange::Activate),
            Some(format!("JETPACK MODULE: {t} - provisioned {site} 🚀")),
            None,
        ),
    );
    base.outcome_unknown = Some(false);
    base.ledger = vec![holds(false)];
    match kind {
        Kind::Done | Kind::Addon | Kind::FollowUp => base,
        Kind::DoneAfterFailure => {
            base.whmcs.module_queue = Some(ModuleQueueWrite::Resolve(Action::Provision));
            base
        }
        Kind::WaitingDns => {
            let mut f = Finish::waiting_dns(
                Duration::from_secs(3600),
                whmcs(
                    format!("Waiting for {site} to resolve"),
                    Some(StatusChange::Activate),
                    Some(format!("JETPACK MODULE: {t} - waiting on DNS for {site}")),
                    None,
                ),
            );
            f.outcome_unknown = Some(false);
            f.ledger = vec![holds(true)];
            f
        }
        Kind::Retry => {
            let mut f = Finish::retry_in(
                Duration::from_secs(60),
                format!("partner busy on {site} {}", "x".repeat(70_000)),
                whmcs("y".repeat(70_000), None, None, None),
            );
            f.outcome_unknown = Some(true);
            f
        }
        Kind::FailAdd => {
            let mut f = Finish::failed(
                format!("refused for {site}"),
                whmcs(
                    format!("Failed on {site}"),
                    Some(StatusChange::BackToPending),
                    Some(format!("JETPACK MODULE: {t} - failed on {site}")),
                    Some(ModuleQueueWrite::Add {
                        action: Action::Provision,
                        error: format!("refused for {site}"),
                    }),
                ),
            );
            f.outcome_unknown = Some(false);
            f
        }
        Kind::Terminate => {
            let mut f = Finish::done(
                format!("cancelled {site}"),
                whmcs(
                    format!("Cancelled {site}"),
                    Some(StatusChange::Terminate),
                    Some(format!("JETPACK MODULE: {t} - cancelled {site}")),
                    None,
                ),
            );
            f.ledger = vec![LedgerWrite::Cancelled { site: site.clone() }];
            f
        }
    }
}

/// Every row an outcome touches, as comparable text (ids, dates and the watch's random
/// spread left out; rows sorted).
async fn dump(db: &MySqlPool) -> Vec<(String, Vec<String>)> {
    let queries = [
        (
            "jobs",
            "SELECT CONCAT_WS('|', service_id, addon_id, action, state, attempts,
                    IFNULL(LEFT(last_error, 60), '-'), LENGTH(last_error), IFNULL(result, '-'),
                    IFNULL(LEFT(details, 60), '-'), LENGTH(details),
                    outcome_unknown, in_module_queue, lease_token IS NULL, IFNULL(follow_up, '-'),
                    finished_at IS NULL, waiting_since IS NULL,
                    ROUND(TIMESTAMPDIFF(SECOND, updated_at, run_at) / 30))
             FROM mod_jetpack_jobs",
        ),
        (
            "details",
            "SELECT CONCAT_WS('|', fieldid, relid, LEFT(value, 60), LENGTH(value))
             FROM tblcustomfieldsvalues",
        ),
        (
            "services",
            "SELECT CONCAT_WS('|', id, domainstatus, termination_date) FROM tblhosting",
        ),
        (
            "addons",
            "SELECT CONCAT_WS('|', id, status) FROM tblhostingaddons",
        ),
        (
            "activity",
            "SELECT CONCAT_WS('|', description, user, userid) FROM tblactivitylog",
        ),
        (
            "module queue",
            "SELECT CONCAT_WS('|', service_type, service_id, module_action, last_attempt_error,
                    num_retries, completed) FROM tblmodulequeue",
        ),
        (
            "module log",
            "SELECT CONCAT_WS('|', module, action, request, response) FROM tblmodulelog",
        ),
        (
            "ledger",
            "SELECT CONCAT_WS('|', service_id, addon_id, site, plan, pending,
                    IFNULL(product_id, '-'), IFNULL(addon_def_id, '-'), job_id)
             FROM mod_jetpack_ledger",
        ),
        (
            "watch",
            "SELECT CONCAT_WS('|', service_id, addon_id, site, plan, expect,
                    IFNULL(product_id, '-'), IFNULL(addon_def_id, '-'), quick_left, seen, restore)
             FROM mod_jetpack_watch",
        ),
    ];
    let mut out = Vec::new();
    for (name, sql) in queries {
        let mut rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(db)
            .await
            .unwrap();
        rows.sort();
        out.push((name.to_owned(), rows));
    }
    out
}

/// A store on a single pooled connection, so its session's counters count everything it
/// does.
async fn one_session(env: &Env) -> Store {
    Store::open(worker_pool(&env.db, 1).await, None)
        .await
        .unwrap()
}

/// A counter of that store's session (`Com_commit`, `Questions`).
async fn session_count(store: &Store, name: &str) -> u64 {
    let (_, value): (String, String) =
        sqlx::query_as(AssertSqlSafe(format!("SHOW SESSION STATUS LIKE '{name}'")))
            .fetch_one(store.pool())
            .await
            .unwrap();
    value.parse().unwrap()
}

/// Everything of one target's outcome on every table: its details value, its status, its
/// activity lines, Module Queue rows, module-log rows, ledger and watch rows.
async fn footprint(db: &MySqlPool, target: Target, site: &str) -> Vec<(&'static str, Vec<String>)> {
    let (kind, table, column) = match target {
        Target::Service(_) => ("product", "tblhosting", "domainstatus"),
        Target::Addon { .. } => ("addon", "tblhostingaddons", "status"),
    };
    let like = format!("%{site}%");
    let id = target.entity_id();
    let queries: [(&'static str, String, Vec<String>); 7] = [
        (
            "details",
            format!(
                "SELECT CONCAT_WS('|', v.id, v.value) FROM tblcustomfieldsvalues v
                 JOIN tblcustomfields f ON f.id = v.fieldid
                 WHERE v.relid = ? AND f.type = '{kind}'
                   AND f.fieldname LIKE 'jetpack_provisioning_details%'"
            ),
            vec![id.to_string()],
        ),
        (
            "status",
            format!("SELECT CAST({column} AS CHAR) FROM {table} WHERE id = ?"),
            vec![id.to_string()],
        ),
        (
            "activity",
            "SELECT description FROM tblactivitylog WHERE description LIKE ?".into(),
            vec![like.clone()],
        ),
        (
            "module queue",
            "SELECT CONCAT_WS('|', id, last_attempt_error, num_retries, completed)
             FROM tblmodulequeue WHERE service_type = ? AND service_id = ?"
                .into(),
            vec![target.module_queue_type().into(), id.to_string()],
        ),
        (
            "module log",
            "SELECT CONCAT_WS('|', id, action, request) FROM tblmodulelog WHERE request LIKE ?"
                .into(),
            vec![like.clone()],
        ),
        (
            "ledger",
            "SELECT CONCAT_WS('|', site, plan, pending, job_id) FROM mod_jetpack_ledger
             WHERE site = ?"
                .into(),
            vec![site.into()],
        ),
        (
            "watch",
            "SELECT CONCAT_WS('|', site, plan, expect, quick_left) FROM mod_jetpack_watch
             WHERE site = ?"
                .into(),
            vec![site.into()],
        ),
    ];
    let mut out = Vec::new();
    for (name, sql, binds) in queries {
        let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let mut rows = q.fetch_all(db).await.unwrap();
        rows.sort();
        out.push((name, rows));
    }
    out
}

#[sqlx::test]
async fn a_mixed_batch_ends_every_job_as_finishing_it_alone_does(pool: MySqlPool) {
    let seed = seed();
    let (_name, other) = second_database(&pool).await;
    let batched = Env::new(pool).await;
    let alone = Env::with(other, Layout::V8, SandboxConfig::default()).await;
    let kinds = mix(&mut Rng(seed), 16);
    println!("kinds: {kinds:?}");
    let mut finished = Vec::new();
    for env in [&batched, &alone] {
        let targets = seed_targets(env, &kinds, &mut Rng(seed)).await;
        let jobs = claim_all(env, &kinds, &targets).await;
        let batch: Vec<(ClaimedJob, Finish)> = jobs
            .iter()
            .enumerate()
            .map(|(n, j)| (j.clone(), finish_of(kinds[n], n, j)))
            .collect();
        finished.push(batch);
    }
    let store = one_session(&batched).await;
    let commits = session_count(&store, "Com_commit").await;
    let written = store.finish_batch(&finished[0]).await;
    assert_eq!(
        session_count(&store, "Com_commit").await - commits,
        1,
        "one transaction, no fallback"
    );
    for (n, w) in written.iter().enumerate() {
        assert!(matches!(w, Ok(true)), "job {n} ({:?}): {w:?}", kinds[n]);
    }
    for (job, f) in &finished[1] {
        assert!(alone.store.finish(job, f).await.unwrap());
    }
    let (a, b) = (dump(&batched.db).await, dump(&alone.db).await);
    for ((table, x), (_, y)) in a.iter().zip(&b) {
        assert!(!x.is_empty() || table == "addons", "{table} has rows");
        assert_eq!(x, y, "{table} differs (seed {seed})");
    }
    // The follow-ups were honoured and the long texts fitted, in both.
    let queued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE action = 'terminate' AND state = 'queued'",
    )
    .fetch_one(&batched.db)
    .await
    .unwrap();
    let follow_ups = kinds.iter().filter(|k| **k == Kind::FollowUp).count();
    assert_eq!(queued as usize, follow_ups);
}

#[sqlx::test]
async fn a_batch_writes_nothing_of_a_job_whose_lease_was_taken_over(pool: MySqlPool) {
    let seed = seed();
    let env = Env::new(pool).await;
    let mut rng = Rng(seed);
    let kinds = mix(&mut rng, 24);
    let targets = seed_targets(&env, &kinds, &mut Rng(seed)).await;
    let jobs = claim_all(&env, &kinds, &targets).await;
    // Every kind once among the lost (the first eight), then a random third of the rest.
    let lost: Vec<bool> = (0..kinds.len())
        .map(|n| n < KINDS.len() || rng.below(3) == 0)
        .collect();
    let mut before = Vec::new();
    for (n, target) in targets.iter().enumerate() {
        before.push(footprint(&env.db, *target, &site(n)).await);
    }
    for (n, job) in jobs.iter().enumerate() {
        if lost[n] {
            // Another worker reclaimed it (a new token), or it was given back and is queued.
            let sql = if n % 2 == 0 {
                "UPDATE mod_jetpack_jobs SET lease_token = 'someone-else' WHERE id = ?"
            } else {
                "UPDATE mod_jetpack_jobs SET state = 'queued', lease_token = NULL WHERE id = ?"
            };
            sqlx::query(sql)
                .bind(job.id.0)
                .execute(&env.db)
                .await
                .unwrap();
        }
    }
    let batch: Vec<(ClaimedJob, Finish)> = jobs
        .iter()
        .enumerate()
        .map(|(n, j)| (j.clone(), finish_of(kinds[n], n, j)))
        .collect();
    let store = one_session(&env).await;
    let commits = session_count(&store, "Com_commit").await;
    let written = store.finish_batch(&batch).await;
    assert_eq!(
        session_count(&store, "Com_commit").await - commits,
        1,
        "one transaction"
    );
    for (n, w) in written.iter().enumerate() {
        assert_eq!(*w.as_ref().unwrap(), !lost[n], "job {n} ({:?})", kinds[n]);
    }
    for (n, target) in targets.iter().enumerate() {
        let after = footprint(&env.db, *target, &site(n)).await;
        for ((table, x), (_, y)) in before[n].iter().zip(&after) {
            if lost[n] {
                assert_eq!(
                    x, y,
                    "{table}: job {n} ({:?}) lost its lease but was written (seed {seed})",
                    kinds[n]
                );
            } else if ["details", "module log"].contains(table) {
                assert_ne!(
                    x, y,
                    "{table}: job {n} ({:?}) was not written (seed {seed})",
                    kinds[n]
                );
            }
        }
    }
    // The lost jobs' rows are as the other holder left them.
    for (n, job) in jobs.iter().enumerate() {
        let row =
            sqlx::query("SELECT state, lease_token, follow_up FROM mod_jetpack_jobs WHERE id = ?")
                .bind(job.id.0)
                .fetch_one(&env.db)
                .await
                .unwrap();
        let state: String = row.get("state");
        let token: Option<String> = row.get("lease_token");
        if lost[n] {
            assert!(
                state == "queued" || token.as_deref() == Some("someone-else"),
                "job {n}: {state} {token:?}"
            );
        } else {
            assert!(
                token.is_none() && state != "running",
                "job {n}: {state} {token:?}"
            );
        }
    }
}

#[sqlx::test]
async fn a_batch_whose_transaction_fails_is_written_job_by_job(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let kinds = vec![Kind::Done; 6];
    let targets = seed_targets(&env, &kinds, &mut Rng(seed())).await;
    let jobs = claim_all(&env, &kinds, &targets).await;
    let victim = targets[2].entity_id();
    for when in ["UPDATE", "INSERT"] {
        env.exec(&format!(
            "CREATE TRIGGER refuse_one_{when} BEFORE {when} ON tblcustomfieldsvalues
             FOR EACH ROW IF NEW.relid = {victim} THEN
               SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'details locked by test';
             END IF"
        ))
        .await;
    }
    let batch: Vec<(ClaimedJob, Finish)> = jobs
        .iter()
        .enumerate()
        .map(|(n, j)| (j.clone(), finish_of(kinds[n], n, j)))
        .collect();
    let written = env.store.finish_batch(&batch).await;
    for (n, w) in written.iter().enumerate() {
        if n == 2 {
            let e = w.as_ref().expect_err("the refused job's own write fails");
            assert!(!e.is_connection_trouble() && !e.is_lock_conflict(), "{e:?}");
            assert!(format!("{e:?}").contains("details locked by test"), "{e:?}");
        } else {
            assert!(matches!(w, Ok(true)), "job {n}: {w:?}");
            let job = env.job(targets[n].service()).await;
            assert_eq!(job.state, JobState::Done, "job {n}");
        }
    }
    assert_eq!(env.job(targets[2].service()).await.state, JobState::Running);

    // Through the worker: the refused outcome ends the job through fail_unrecordable, the
    // others of its batch are written.
    let pid = env.product("").await;
    let mut sids = Vec::new();
    for n in 0..6 {
        let sid = env
            .service(
                pid,
                "Pending",
                &format!("refused{n}.example"),
                "admin",
                "premium",
            )
            .await;
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
        sids.push(sid);
    }
    env.exec(&format!(
        "DROP TRIGGER refuse_one_UPDATE; DROP TRIGGER refuse_one_INSERT;
         CREATE TRIGGER refuse_worker BEFORE INSERT ON tblcustomfieldsvalues
         FOR EACH ROW IF NEW.relid = {} AND NEW.value LIKE '%activat%' THEN
           SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'details locked by test';
         END IF",
        sids[3]
    ))
    .await;
    env.sandbox.state().set_latency(Duration::from_millis(100));
    let worker = env.worker_with(env.store.clone(), fast_settings(6));
    let summary = worker.run_once().await.unwrap();
    assert_eq!(summary.processed, 6, "{summary:?}");
    for (n, sid) in sids.iter().enumerate() {
        let job = env.job(*sid).await;
        if n == 3 {
            assert_eq!(job.state, JobState::Failed);
            let error = job.last_error.unwrap();
            assert!(error.contains("could not be written"), "{error}");
            assert!(error.contains("details locked by test"), "{error}");
        } else {
            assert_eq!(job.state, JobState::Done, "service {n}: {job:?}");
            assert_eq!(env.status(*sid).await, "Active");
        }
        let calls = env.sandbox.state().calls(&format!("refused{n}.example"));
        assert_eq!(calls.provision, 1, "service {n}");
    }
}

#[sqlx::test]
async fn fifty_plain_provisions_finish_in_one_transaction(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let kinds = vec![Kind::Done; 100];
    let targets = seed_targets(&env, &kinds, &mut Rng(seed())).await;
    let jobs = claim_all(&env, &kinds, &targets).await;
    let all: Vec<(ClaimedJob, Finish)> = jobs
        .iter()
        .enumerate()
        .map(|(n, j)| (j.clone(), finish_of(kinds[n], n, j)))
        .collect();
    let store = one_session(&env).await;
    let count = |name: &'static str| session_count(&store, name);
    let (commits, questions) = (count("Com_commit").await, count("Questions").await);
    let written = store.finish_batch(&all[..50]).await;
    assert!(written.iter().all(|w| matches!(w, Ok(true))), "{written:?}");
    let batch = (
        count("Com_commit").await - commits,
        count("Questions").await - questions - 2,
    );
    let (commits, questions) = (count("Com_commit").await, count("Questions").await);
    for (job, f) in &all[50..] {
        assert!(store.finish(job, f).await.unwrap());
    }
    let alone = (
        count("Com_commit").await - commits,
        count("Questions").await - questions - 2,
    );
    println!("50 plain provisions: batched {batch:?}, one by one {alone:?} (commits, statements)");
    assert_eq!(batch.0, 1, "one transaction");
    assert_eq!(alone.0, 50);
    assert!(batch.1 <= 15, "a fixed handful of statements: {batch:?}");
    assert!(alone.1 >= 50 * 8, "{alone:?}");
    for target in &targets {
        assert_eq!(env.job(target.service()).await.state, JobState::Done);
    }
}

/// Each step of `sql`'s plan: (table, access type, key).
async fn plan(db: &MySqlPool, sql: &str) -> Vec<(String, String, Option<String>)> {
    let rows = sqlx::query(AssertSqlSafe(format!("EXPLAIN {sql}")))
        .fetch_all(db)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
    rows.iter()
        .map(|r| {
            let table: Option<String> = r.try_get("table").unwrap();
            let kind: Option<String> = r.try_get("type").unwrap();
            (
                table.unwrap_or_default(),
                kind.unwrap_or_default(),
                r.try_get("key").unwrap(),
            )
        })
        .collect()
}

#[sqlx::test]
async fn the_batched_statements_read_by_keys_only(pool: MySqlPool) {
    let env = Env::new(pool).await;
    // Tables of a realistic size: 5,000 jobs, details values, ledger and watch rows.
    env.exec(
        "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value)
         SELECT 1 + seq % 4, seq, 'x' FROM seq_1_to_5000;
         INSERT INTO tblhosting (userid, orderid, packageid, regdate, domainstatus)
         SELECT 5, 0, 1, CURDATE(), 'Pending' FROM seq_1_to_5000;
         INSERT INTO mod_jetpack_jobs (service_id, action, state, run_at, requested_by,
                                       created_at, updated_at)
         SELECT seq, 'provision', 'done', UTC_TIMESTAMP(6), 'cli', UTC_TIMESTAMP(6),
                UTC_TIMESTAMP(6) FROM seq_1_to_5000;
         INSERT INTO mod_jetpack_ledger (service_id, addon_id, site, plan, pending, since,
                                         updated_at, job_id)
         SELECT seq, 0, CONCAT('s', seq, '.example'), 'premium', 0, UTC_TIMESTAMP(6),
                UTC_TIMESTAMP(6), seq FROM seq_1_to_5000;
         INSERT INTO mod_jetpack_watch (service_id, addon_id, site, plan, expect, next_check_at,
                                        updated_at)
         SELECT seq, 0, CONCAT('s', seq, '.example'), 'premium', 'holds', UTC_TIMESTAMP(6),
                UTC_TIMESTAMP(6) FROM seq_1_to_5000;
         ANALYZE TABLE tblcustomfieldsvalues, tblhosting, mod_jetpack_jobs, mod_jetpack_ledger,
                       mod_jetpack_watch",
    )
    .await;
    let values = |cols: &str| {
        format!(
            "SELECT {cols} UNION ALL SELECT {}",
            cols.split(", ")
                .map(|c| c.split(" AS ").next().unwrap_or(c))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let statements = [
        "SELECT id, lease_token, state, follow_up FROM mod_jetpack_jobs
         WHERE id IN (7, 8, 9) FOR UPDATE"
            .to_owned(),
        format!(
            "UPDATE mod_jetpack_jobs j JOIN ({}) v ON j.id = v.v_id
             SET j.state = v.v_state, j.lease_token = NULL
             WHERE CAST(j.lease_token AS BINARY) = CAST(v.v_token AS BINARY)
               AND j.state = 'running' AND j.follow_up IS NULL",
            values("7 AS v_id, 't' AS v_token, 'done' AS v_state")
        ),
        format!(
            "UPDATE tblcustomfieldsvalues c JOIN ({}) v
               ON c.id = v.vid AND c.fieldid = v.vfield AND c.relid = v.vrel
             SET c.value = v.vtext, c.updated_at = NOW()",
            values("7 AS vid, 4 AS vfield, 7 AS vrel, 'x' AS vtext")
        ),
        format!(
            "INSERT INTO mod_jetpack_watch (service_id, addon_id, site, plan, expect,
               next_check_at, updated_at)
             SELECT l.service_id, l.addon_id, l.site, l.plan, 'holds', UTC_TIMESTAMP(6),
                    UTC_TIMESTAMP(6)
             FROM ({}) v JOIN mod_jetpack_ledger l
               ON l.service_id = v.v_sid AND l.addon_id = v.v_aid
              AND l.site_hash = UNHEX(SHA2(v.v_site, 256))
             ON DUPLICATE KEY UPDATE plan = VALUES(plan)",
            values("7 AS v_sid, 0 AS v_aid, 's7.example' AS v_site")
        ),
        format!(
            "SELECT DISTINCT v.v_n FROM ({}) v JOIN mod_jetpack_watch w
               ON w.site_hash = UNHEX(SHA2(v.v_site, 256)) AND w.expect = 'absent'
              AND NOT (w.service_id = v.v_sid AND w.addon_id = v.v_aid)
              AND w.updated_at > UTC_TIMESTAMP(6) - INTERVAL 600 SECOND",
            values("0 AS v_n, 7 AS v_sid, 0 AS v_aid, 's7.example' AS v_site")
        ),
        "UPDATE tblhosting SET domainstatus = 'Active'
         WHERE id IN (7, 8, 9) AND domainstatus IN ('Pending', 'Terminated')"
            .to_owned(),
    ];
    for sql in statements {
        let steps = plan(&env.db, &sql).await;
        for (table, kind, key) in &steps {
            if table.starts_with('<') || table.is_empty() {
                continue; // the derived table of values itself
            }
            assert!(
                kind != "ALL" && key.is_some(),
                "{table} read without a key ({kind}, {key:?}): {sql}\n{steps:?}"
            );
        }
    }
}
