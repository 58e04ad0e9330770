//! The promise of a job's life, attacked: requests that cross a running job in every order,
//! the ledger after an edited Site URL, outcomes the database refuses (an oversized answer, a
//! trigger), and a seeded model-based test that mixes requests from PHP and the CLI, requeues,
//! several workers, killed workers, cut database connections and every API outcome, then
//! checks the invariants after each step and at quiescence.

use std::time::Duration;

use jetpack_sandbox::ScriptedReply;
use jetpack_worker::domain::{Action, RequestedBy, ServiceId};
use jetpack_worker::lifecycle::RequestKind;
use jetpack_worker::store::{RequestId, Store};
use jetpack_worker::worker::Worker;
use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Env, Rng, fast_settings, until};

/// A `run` (service loop) in the background; stopped with [`Running::stop`].
struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(worker: &Worker) -> Running {
    let stop = CancellationToken::new();
    let (w, t) = (worker.clone(), stop.clone());
    let task = tokio::spawn(async move { w.run(t).await.unwrap() });
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// No unfinished job and no request waiting.
async fn quiescent(db: &MySqlPool) -> bool {
    let (jobs, requests): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state IN ('queued','running','waiting_dns')),
                (SELECT COUNT(*) FROM mod_jetpack_requests WHERE applied_at IS NULL)",
    )
    .fetch_one(db)
    .await
    .unwrap();
    jobs == 0 && requests == 0
}

async fn applied(env: &Env, id: RequestId) -> bool {
    env.store
        .request(id)
        .await
        .unwrap()
        .is_some_and(|r| r.applied)
}

/// Records a request the way the PHP module does and waits until a worker applied it.
async fn ask(env: &Env, sid: ServiceId, kind: RequestKind) {
    let id = env
        .store
        .record_request(sid, kind, RequestedBy::Module)
        .await
        .unwrap();
    until(Duration::from_secs(10), "the request to be applied", || {
        applied(env, id)
    })
    .await;
}

/// (action, state) of the service's latest job.
async fn latest(env: &Env, sid: ServiceId) -> (String, String) {
    sqlx::query_as(
        "SELECT action, state FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(sid)
    .fetch_one(&env.db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn terminate_then_create_while_a_provision_runs_ends_provisioned(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "cross1.example", "admin", "premium")
        .await;
    let state = env.sandbox.state();
    state.script(
        "cross1.example",
        vec![ScriptedReply::Slow(Duration::from_millis(1500))],
    );
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let running = start(&env.worker());
    until(Duration::from_secs(10), "the provision call", || async {
        state.in_flight_acting_calls("cross1.example") == 1
    })
    .await;
    ask(&env, sid, RequestKind::Terminate).await;
    ask(&env, sid, RequestKind::Provision).await;
    until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
    running.stop().await;

    assert!(state.plan("cross1.example").is_some(), "the plan is live");
    assert_eq!(
        state.calls("cross1.example").cancel,
        0,
        "nothing was cancelled"
    );
    assert_eq!(env.status(sid).await, "Active");
    assert_eq!(latest(&env, sid).await, ("provision".into(), "done".into()));
    assert!(state.overlapping_acting_calls().is_empty());
}

/// A Create asked while a terminate runs: WHMCS sets the service Active for the Create, the
/// terminate's end writes Terminated, and the provision that follows makes it Active again
/// (found by the model-based test: it stayed Terminated with a live plan).
#[sqlx::test]
async fn create_while_a_terminate_runs_ends_active_with_the_plan(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let site = "cross5.example";
    let sid = env.service(pid, "Active", site, "admin", "premium").await;
    let state = env.sandbox.state();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    state.script(site, vec![ScriptedReply::Slow(Duration::from_millis(1500))]);
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    let running = start(&env.worker());
    until(Duration::from_secs(10), "the cancel call", || async {
        state.in_flight_acting_calls(site) == 1
    })
    .await;
    env.exec(&format!(
        "UPDATE tblhosting SET domainstatus = 'Active' WHERE id = {sid}"
    ))
    .await;
    ask(&env, sid, RequestKind::Provision).await;
    until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
    running.stop().await;

    assert!(state.plan(site).is_some(), "the plan is live");
    assert_eq!(latest(&env, sid).await, ("provision".into(), "done".into()));
    assert_eq!(env.status(sid).await, "Active");
}

#[sqlx::test]
async fn create_then_terminate_while_a_terminate_runs_ends_terminated(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "cross2.example", "admin", "premium")
        .await;
    let state = env.sandbox.state();
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert!(state.plan("cross2.example").is_some());

    state.script(
        "cross2.example",
        vec![ScriptedReply::Slow(Duration::from_millis(1500))],
    );
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    let running = start(&env.worker());
    until(Duration::from_secs(10), "the cancel call", || async {
        state.in_flight_acting_calls("cross2.example") == 1
    })
    .await;
    ask(&env, sid, RequestKind::Provision).await;
    ask(&env, sid, RequestKind::Terminate).await;
    until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
    running.stop().await;

    assert!(
        state.plan("cross2.example").is_none(),
        "no plan is left live"
    );
    assert_eq!(
        state.calls("cross2.example").provision,
        1,
        "no second provision"
    );
    assert_eq!(env.status(sid).await, "Terminated");
    assert_eq!(latest(&env, sid).await, ("terminate".into(), "done".into()));
}

#[sqlx::test]
async fn crossed_requests_in_every_order_end_as_the_last_one_asks(pool: MySqlPool) {
    use RequestKind::{Provision as P, Terminate as T};
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let state = env.sandbox.state();
    let running = start(&env.worker());
    let orders: [&[RequestKind]; 6] = [&[T], &[P], &[T, P], &[P, T], &[T, P, T], &[P, T, P]];
    for (first, name) in [(Action::Provision, "p"), (Action::Terminate, "t")] {
        for (i, after) in orders.iter().enumerate() {
            let site = format!("cross-{name}{i}.example");
            let sid = env.service(pid, "Active", &site, "admin", "premium").await;
            if first == Action::Terminate {
                env.store
                    .enqueue(sid, Action::Provision, RequestedBy::Cli)
                    .await
                    .unwrap();
                until(Duration::from_secs(10), "provisioned", || {
                    quiescent(&env.db)
                })
                .await;
            }
            state.script(&site, vec![ScriptedReply::Slow(Duration::from_millis(600))]);
            env.store
                .enqueue(sid, first, RequestedBy::Cli)
                .await
                .unwrap();
            until(Duration::from_secs(10), "the first call", || async {
                state.in_flight_acting_calls(&site) == 1
            })
            .await;
            for kind in after.iter() {
                ask(&env, sid, *kind).await;
            }
            until(Duration::from_secs(20), "quiescence", || quiescent(&env.db)).await;
            let last = after.last().copied().unwrap_or(first.into());
            let live = state.plan(&site).is_some();
            match last {
                RequestKind::Provision => {
                    assert!(live, "{name} {after:?}: the plan is live");
                    assert_eq!(latest(&env, sid).await.0, "provision", "{name} {after:?}");
                }
                _ => {
                    assert!(!live, "{name} {after:?}: no plan is left");
                    assert_eq!(env.status(sid).await, "Terminated", "{name} {after:?}");
                }
            }
        }
    }
    running.stop().await;
    assert!(state.overlapping_acting_calls().is_empty());
}

/// On a multi-primary Galera cluster ids interleave by node (`auto_increment_offset`): a
/// Terminate made on one node after a Create made on another can get the lower id. The latest
/// intent is the request made last (`created_at`, the database's clock), not the highest id.
#[sqlx::test]
async fn the_request_made_last_wins_even_with_the_lower_id(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "interleaved.example", "admin", "premium")
        .await;
    // Node 1 records the Create as id 20; a second later node 2 records the Terminate as id 10.
    env.exec(&format!(
        "INSERT INTO mod_jetpack_requests (id, service_id, action, requested_by, created_at) VALUES
           (20, {sid}, 'provision', 'module', UTC_TIMESTAMP(6) - INTERVAL 2 SECOND),
           (10, {sid}, 'terminate', 'module', UTC_TIMESTAMP(6) - INTERVAL 1 SECOND)"
    ))
    .await;
    let applied = env.store.apply_requests().await.unwrap();
    let order: Vec<u64> = applied.iter().map(|a| a.request.0).collect();
    assert_eq!(order, [20, 10], "applied in the order they were made");
    let jobs: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, state FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id",
    )
    .bind(sid)
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(
        jobs,
        [
            ("provision".to_owned(), "cancelled".to_owned()),
            ("terminate".to_owned(), "queued".to_owned())
        ],
        "the Terminate, made last, is the intent that stands"
    );
    env.worker().run_once().await.unwrap();
    let state = env.sandbox.state();
    assert_eq!(state.calls("interleaved.example").provision, 0);
    assert!(state.plan("interleaved.example").is_none());
}

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

#[sqlx::test]
async fn an_oversized_answer_fits_its_columns_and_fails_bounded(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
        .await;
    let pid = env.product("").await;
    let html = format!(
        "<html><body>{}</body></html>",
        "Bad gateway. ".repeat(25_000)
    );
    let huge = "x".repeat(300_000);
    let mut settings = fast_settings(2);
    settings.retry.max_attempts = 2;
    settings.retry.base = Duration::from_millis(10);
    let worker = env.worker_with(env.store.clone(), settings);
    let state = env.sandbox.state();
    for (site, reply) in [
        (
            "html502.example",
            ScriptedReply::Raw {
                code: 502,
                content_type: "text/html".into(),
                body: html.clone(),
            },
        ),
        (
            "json502.example",
            ScriptedReply::Status {
                code: 502,
                body: serde_json::json!({"error": "bad_gateway", "message": huge}).to_string(),
                retry_after: None,
            },
        ),
    ] {
        let sid = env.service(pid, "Active", site, "admin", "premium").await;
        state.script(site, vec![reply.clone(), reply]);
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
        for _ in 0..4 {
            worker.run_once().await.unwrap();
            env.make_due().await;
        }
        let job = env.job(sid).await;
        assert_eq!(job.state, "failed", "{site}");
        let error = job.last_error.unwrap();
        assert!(
            error.contains("HTTP 502") && error.len() < 2_000,
            "{site}: {} bytes",
            error.len()
        );
        assert_eq!(
            state.calls(site).provision,
            2,
            "{site}: the budget bounds the calls"
        );
        let queue = env.module_queue().await;
        assert!(
            queue
                .iter()
                .any(|q| q.0 == sid.0 && q.2.contains("HTTP 502")),
            "{queue:?}"
        );
    }
    let longest: i64 = sqlx::query_scalar("SELECT MAX(LENGTH(response)) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(longest > 0 && longest <= 8 * 1024, "bounded: {longest}");
}

#[sqlx::test]
async fn a_refused_outcome_write_fails_the_job_once_with_the_real_cause(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "trigger.example", "admin", "premium")
        .await;
    for when in ["UPDATE", "INSERT"] {
        env.exec(&format!(
            "CREATE TRIGGER refuse_details_{when} BEFORE {when} ON tblcustomfieldsvalues
             FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'details locked by test'"
        ))
        .await;
    }
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    let worker = env.worker();
    worker.run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, "failed");
    let error = job.last_error.unwrap();
    assert!(error.starts_with("JETPACK MODULE: Service ID: "), "{error}");
    assert!(error.contains("details locked by test"), "{error}");
    let activity = env.activity(sid).await;
    assert!(
        activity
            .iter()
            .any(|a| a.contains("details locked by test")),
        "{activity:?}"
    );
    assert!(env.module_queue().await.iter().any(|q| q.0 == sid.0));
    // Nothing calls the partner again for it without an admin's Retry.
    for _ in 0..3 {
        env.make_due().await;
        worker.run_once().await.unwrap();
    }
    let calls = env.sandbox.state().calls("trigger.example");
    assert_eq!((calls.provision, calls.provision_ok), (1, 1), "{calls:?}");
}

// ---------------------------------------------------------------------------------------------
// The model-based test.

/// The workers of the model: two connected directly, one through a proxy that can cut its
/// database connections.
struct Fleet {
    direct: [Worker; 2],
    proxied: Worker,
    proxy: crate::proxy::Proxy,
    /// Builds a worker like the others on a store of its own (for a crash).
    make: Box<dyn Fn(Store) -> Worker + Send + Sync>,
}

impl Fleet {
    /// A worker on `store`, to be killed.
    fn crashing(&self, store: Store) -> Worker {
        (self.make)(store)
    }
}

fn model_settings() -> jetpack_worker::worker::WorkerSettings {
    let mut s = fast_settings(4);
    s.lease = Duration::from_millis(900);
    s.lease_margin = Duration::from_millis(100);
    s.poll_interval = Duration::from_millis(20);
    s.write_patience = Duration::from_millis(300);
    s.retry.base = Duration::from_millis(20);
    s.adopt = false;
    s.retention = None;
    // The reconciler converges to the latest intent, a vanished plan included; a drift is
    // confirmed by a second look later than the status may lag.
    s.reconcile.reprovision = true;
    s.reconcile.confirm = Duration::from_millis(250);
    s.reconcile.settle = Duration::ZERO;
    s
}

async fn fleet(env: &Env) -> Fleet {
    let state = env.sandbox.state();
    let sandbox_base = env.sandbox.base_url();
    let make = move |store: jetpack_worker::store::Store| {
        let api = jetpack_worker::jetpack::JetpackClient::new(
            &sandbox_base,
            jetpack_worker::jetpack::Timeouts {
                connect: Duration::from_millis(300),
                request: Duration::from_millis(300),
            },
        )
        .unwrap();
        let state = state.clone();
        let resolver = jetpack_worker::dns::FnResolver(move |h: &str| state.is_resolvable(h));
        Worker::new(
            store,
            std::sync::Arc::new(api),
            std::sync::Arc::new(resolver),
            jetpack_worker::worker::WorkerSettings {
                owner: jetpack_worker::worker::default_owner(),
                ..model_settings()
            },
        )
    };
    let opts = (*env.db.connect_options()).clone();
    let proxy = crate::proxy::Proxy::start(crate::proxy::server_addr(&opts).await).await;
    let via = jetpack_worker::store::Store::connect_with(proxy.options_via(&opts), 4)
        .await
        .unwrap();
    let proxied = jetpack_worker::store::Store::open(via, None)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    Fleet {
        direct: [
            make(env.store.clone()),
            make(
                env.store_with(jetpack_worker::store::ClaimPath::Update)
                    .await,
            ),
        ],
        proxied: make(proxied),
        proxy,
        make: Box::new(make),
    }
}

/// A watch row as a failure report shows it: site, plan, expect, seen, drifts, updated, the
/// ledger's job@since.
type WatchDump = (String, String, String, String, u16, String, Option<String>);

/// One step of a sequence, for the failure report.
#[derive(Debug)]
enum Step {
    Ask(usize, RequestKind, bool),
    Script(usize, &'static str),
    Dns(usize, bool),
    /// The partner portal changes a site behind our back: cancels its plan, or adds one.
    Portal(usize, bool),
    /// The status endpoint answers in this spelling and lags this many ms.
    Partner(usize, u64),
    Run(usize),
    Kill(u64),
    Cut(u64),
    TimeTravel,
}

struct Sequence<'a> {
    env: &'a Env,
    fleet: &'a Fleet,
    sites: Vec<String>,
    sids: Vec<ServiceId>,
    last: Vec<Option<Action>>,
    steps: Vec<Step>,
    seed: u64,
    /// The partner changed behind our back, or answered late: the reconciler must converge.
    drifted: bool,
}

impl Sequence<'_> {
    fn fail(&self, what: String) -> String {
        format!("seed {}: {what}\nsteps: {:#?}", self.seed, self.steps)
    }

    async fn step(&mut self, rng: &mut Rng) {
        let t = rng.below(self.sids.len() as u64) as usize;
        let step = match rng.below(10) {
            0..=2 => {
                let kind = match rng.below(6) {
                    0 | 1 => RequestKind::Provision,
                    2 | 3 => RequestKind::Terminate,
                    4 => RequestKind::Change,
                    _ => RequestKind::Retry,
                };
                Step::Ask(t, kind, rng.below(2) == 0)
            }
            3 => Step::Script(
                t,
                [
                    "transient",
                    "permanent",
                    "unknown",
                    "slow",
                    "too slow",
                    "late",
                ][rng.below(6) as usize],
            ),
            4 => match rng.below(5) {
                0 => Step::Portal(t, rng.below(2) == 0),
                1 => Step::Partner(rng.below(4) as usize, [0, 0, 150][rng.below(3) as usize]),
                _ => Step::Dns(t, rng.below(3) != 0),
            },
            5 | 6 => Step::Run(1 + rng.below(3) as usize),
            7 => Step::Kill(rng.below(200)),
            8 => Step::Cut(rng.below(200)),
            _ => Step::TimeTravel,
        };
        self.apply(&step).await;
        self.steps.push(step);
    }

    async fn apply(&mut self, step: &Step) {
        let state = self.env.sandbox.state();
        match *step {
            Step::Ask(t, kind, from_php) => {
                let sid = self.sids[t];
                if kind == RequestKind::Provision {
                    // WHMCS sets a service Active when its Create succeeds (the module's
                    // Create only queues), as it would after a Terminate too.
                    self.env
                        .exec(&format!(
                            "UPDATE tblhosting SET domainstatus = 'Active' WHERE id = {sid}"
                        ))
                        .await;
                }
                if from_php {
                    self.env
                        .store
                        .record_request(sid, kind, RequestedBy::Module)
                        .await
                        .unwrap();
                } else {
                    self.env
                        .store
                        .enqueue(sid, kind, RequestedBy::Cli)
                        .await
                        .unwrap();
                }
                // A change of plan counts as a provision, except after a terminate (it never
                // revives a plan: the terminate wins).
                match kind.action() {
                    Some(Action::Change) if self.last[t] == Some(Action::Terminate) => {}
                    Some(Action::Change) => self.last[t] = Some(Action::Provision),
                    Some(a) => self.last[t] = Some(a),
                    None => {}
                }
            }
            Step::Script(t, what) => {
                let reply = match what {
                    "transient" => ScriptedReply::Status {
                        code: 503,
                        body: r#"{"error":"unavailable","message":"try later"}"#.into(),
                        retry_after: None,
                    },
                    "permanent" => ScriptedReply::Status {
                        code: 400,
                        body: r#"{"error":"invalid_site","message":"refused by the model"}"#.into(),
                        retry_after: None,
                    },
                    "unknown" => ScriptedReply::ActThenReset,
                    "slow" => ScriptedReply::Slow(Duration::from_millis(150)),
                    "late" => {
                        // The effect lands after the client (300 ms) gave up.
                        self.drifted = true;
                        ScriptedReply::LandsLate(Duration::from_millis(400))
                    }
                    _ => ScriptedReply::Slow(Duration::from_millis(600)),
                };
                state.script(&self.sites[t], vec![reply]);
            }
            Step::Dns(t, resolvable) => state.set_resolvable(&self.sites[t], resolvable),
            Step::Portal(t, add) => {
                self.drifted = true;
                // A plan added to a site nobody here ever held is not ours to watch.
                let watched = self
                    .count(&format!(
                        "SELECT COUNT(*) FROM mod_jetpack_watch WHERE service_id IN ({{ids}})
                         AND site = '{}' AND plan <> ''",
                        self.sites[t]
                    ))
                    .await
                    > 0;
                if add && watched {
                    state.portal_add(&self.sites[t], "premium", true);
                } else {
                    state.portal_cancel(&self.sites[t], None);
                }
            }
            Step::Partner(spelling, lag) => {
                // Shared by the sequences running together: every spelling is read the same.
                state.set_spelling(jetpack_sandbox::Spelling::ALL[spelling]);
                state.set_status_lag(Duration::from_millis(lag));
                self.drifted |= lag > 0;
            }
            Step::Run(n) => {
                let [a, b] = &self.fleet.direct;
                let c = &self.fleet.proxied;
                match n {
                    1 => drop(a.run_once().await),
                    2 => drop(tokio::join!(a.run_once(), b.run_once())),
                    _ => drop(tokio::join!(a.run_once(), b.run_once(), c.run_once())),
                }
            }
            Step::Kill(ms) => {
                // A crash: the worker stops wherever it is, and its connections close (as a
                // dead process's do), so the server rolls back what it had open. An aborted
                // task alone would leave its open transactions' locks in the pool until the
                // connection's next use.
                let store = Store::open(crate::helpers::worker_pool(&self.env.db, 4).await, None)
                    .await
                    .unwrap();
                let w = self.fleet.crashing(store.clone());
                let task = tokio::spawn(async move { w.run_once().await });
                tokio::time::sleep(Duration::from_millis(ms)).await;
                task.abort();
                let _ = task.await;
                // Bounded: a connection still held by a task the abort is tearing down is
                // closed when it comes back; the idle ones close now.
                if tokio::time::timeout(Duration::from_secs(5), store.pool().close())
                    .await
                    .is_err()
                {
                    eprintln!("model: the killed worker's pool did not close within 5 s");
                }
            }
            Step::Cut(ms) => {
                let w = self.fleet.proxied.clone();
                let task = tokio::spawn(async move { w.run_once().await });
                tokio::time::sleep(Duration::from_millis(ms)).await;
                self.fleet.proxy.cut();
                let _ = task.await;
            }
            Step::TimeTravel => self.make_due().await,
        }
    }

    fn ids(&self) -> String {
        self.sids
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Time travel: the sequence's waiting jobs become due now. The test's own UPDATE runs
    /// at REPEATABLE READ beside the workers, so a deadlock is simply tried again.
    async fn make_due(&self) {
        let sql = format!(
            "UPDATE mod_jetpack_jobs SET run_at = UTC_TIMESTAMP(6)
             WHERE service_id IN ({}) AND state IN ('queued', 'waiting_dns')",
            self.ids()
        );
        for _ in 0..20 {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&self.env.db)
                .await
            {
                Ok(_) => return,
                Err(sqlx::Error::Database(e))
                    if matches!(e.code().as_deref(), Some("40001" | "HY000")) =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("{}", self.fail(e.to_string())),
            }
        }
        panic!("{}", self.fail("time travel kept deadlocking".into()));
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.replace("{ids}", &self.ids())))
            .fetch_one(&self.env.db)
            .await
            .unwrap()
    }

    /// After every step: one unfinished job per service at most, no two acting calls for
    /// one site at once.
    async fn check_always(&self) -> Result<(), String> {
        let doubled = self
            .count(
                "SELECT COUNT(*) FROM (SELECT service_id FROM mod_jetpack_jobs
                 WHERE state IN ('queued','running','waiting_dns') AND service_id IN ({ids})
                 GROUP BY service_id HAVING COUNT(*) > 1) d",
            )
            .await;
        if doubled > 0 {
            return Err(self.fail("two unfinished jobs for one service".into()));
        }
        let state = self.env.sandbox.state();
        // A site two services share may see both services' calls at once; one service's
        // calls never overlap (its site is its own here).
        let overlaps: Vec<_> = self
            .sites
            .iter()
            .filter(|s| self.sites.iter().filter(|o| o == s).count() == 1)
            .flat_map(|s| state.overlapping_acting_calls_for(s))
            .collect();
        if !overlaps.is_empty() {
            return Err(self.fail(format!("overlapping acting calls: {overlaps:#?}")));
        }
        Ok(())
    }

    /// Runs the fleet until nothing is left to do (DNS resolves, retries are due now); after
    /// a drift (a late effect, a portal change, a lagging status), the reconciler looks at the
    /// sequence's sites, confirms and converges, and the jobs it asks for settle too.
    async fn settle(&self) -> Result<(), String> {
        for site in &self.sites {
            self.env.sandbox.state().set_resolvable(site, true);
        }
        self.settle_jobs().await?;
        // Late effects land (400 ms after their call) before the first look; without a
        // drift, the looks after the shared site's cancels (a terminate racing the other
        // service's provision on it) still converge.
        // A status that lags (another sequence may have set 150 ms) shows what is there now
        // only after the lag.
        let lag = if self.drifted { 450 } else { 200 };
        tokio::time::sleep(Duration::from_millis(lag)).await;
        // Faults scripted for the jobs' calls and left over would hit the status calls.
        for site in &self.sites {
            self.env.sandbox.state().clear_scripts(site);
        }
        let reconciler = &self.fleet.direct[0];
        for _ in 0..if self.drifted { 4 } else { 1 } {
            let due = format!(
                "UPDATE mod_jetpack_watch SET next_check_at = UTC_TIMESTAMP(6), check_token = NULL
                 WHERE service_id IN ({})",
                self.ids()
            );
            let _ = sqlx::query(sqlx::AssertSqlSafe(due))
                .execute(&self.env.db)
                .await;
            for _ in 0..2 {
                loop {
                    match reconciler.reconcile_once().await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("model: a reconciler round failed: {e:?}");
                            break;
                        }
                    }
                }
                // The second look, after the confirmation wait (longer than any lag).
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            self.settle_jobs().await?;
        }
        Ok(())
    }

    /// Runs the fleet until no job or request of the sequence is open.
    async fn settle_jobs(&self) -> Result<(), String> {
        for _ in 0..200 {
            let open = self
                .count(
                    "SELECT (SELECT COUNT(*) FROM mod_jetpack_jobs WHERE service_id IN ({ids})
                               AND state IN ('queued','running','waiting_dns'))
                          + (SELECT COUNT(*) FROM mod_jetpack_requests WHERE service_id IN ({ids})
                               AND applied_at IS NULL)",
                )
                .await;
            if open == 0 {
                return Ok(());
            }
            self.make_due().await;
            let _ = self.fleet.direct[0].run_once().await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        Err(self.fail("the jobs did not settle".into()))
    }

    /// The service's requests, jobs and drifts, for a failure report.
    async fn history(&self, sid: ServiceId) -> String {
        let requests: Vec<(u64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, action, requested_by, CAST(created_at AS CHAR), decision
             FROM mod_jetpack_requests WHERE service_id = ? ORDER BY created_at, id",
        )
        .bind(sid)
        .fetch_all(&self.env.db)
        .await
        .unwrap();
        let jobs: Vec<(u64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, action, state, requested_by, COALESCE(result, last_error)
             FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id",
        )
        .bind(sid)
        .fetch_all(&self.env.db)
        .await
        .unwrap();
        let drifts: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT expected, found, done FROM mod_jetpack_drift WHERE service_id = ? ORDER BY id",
        )
        .bind(sid)
        .fetch_all(&self.env.db)
        .await
        .unwrap();
        let watch: Vec<WatchDump> = sqlx::query_as(
            "SELECT site, plan, expect, seen, drifts, CAST(updated_at AS CHAR),
                    (SELECT GROUP_CONCAT(CONCAT(l.job_id, '@', l.since)) FROM mod_jetpack_ledger l
                     WHERE l.service_id = w.service_id)
             FROM mod_jetpack_watch w WHERE service_id = ?",
        )
        .bind(sid)
        .fetch_all(&self.env.db)
        .await
        .unwrap();
        let ledger = self.env.store.ledger(sid).await.unwrap();
        format!(
            "requests: {requests:#?}\njobs: {jobs:#?}\ndrifts: {drifts:#?}\nwatch: {watch:#?}\nledger: {ledger:#?}"
        )
    }

    /// Whether another service on target `t`'s site holds a plan there (so a terminate of `t`
    /// leaves the site's plan in place).
    async fn others_hold(&self, t: usize) -> bool {
        for (u, sid) in self.sids.iter().enumerate() {
            // Whatever it asked last: a terminate that failed still holds its plan.
            if u != t
                && self.sites[u] == self.sites[t]
                && !self.env.store.ledger(*sid).await.unwrap().is_empty()
            {
                return true;
            }
        }
        false
    }

    /// Whether the reconciler gave up on a service of `t`'s site (it kept drifting).
    async fn left_for_an_admin(&self, t: usize) -> bool {
        let on_site: Vec<String> = self
            .sids
            .iter()
            .enumerate()
            .filter(|(u, _)| self.sites[*u] == self.sites[t])
            .map(|(_, sid)| sid.to_string())
            .collect();
        let sql = format!(
            "SELECT COUNT(*) FROM mod_jetpack_drift WHERE service_id IN ({})
             AND done LIKE 'left for an admin%'",
            on_site.join(",")
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.env.db)
            .await
            .unwrap();
        n > 0
    }

    /// At quiescence: each service is as its last request asks, or its job failed with a
    /// reason in the job row, the details, the activity log and the Module Queue.
    async fn check_end(&self) -> Result<(), String> {
        let state = self.env.sandbox.state();
        for (t, sid) in self.sids.iter().enumerate() {
            let Some(intent) = self.last[t] else { continue };
            let (action, job_state, error): (String, String, Option<String>) = sqlx::query_as(
                "SELECT action, state, last_error FROM mod_jetpack_jobs WHERE service_id = ?
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(sid)
            .fetch_one(&self.env.db)
            .await
            .unwrap();
            let family = if action == "change" {
                "provision"
            } else {
                action.as_str()
            };
            if family != intent.as_str() {
                return Err(self.fail(format!(
                    "service {sid}: last asked {intent:?}, latest job {action}\n{}",
                    self.history(*sid).await
                )));
            }
            let live = state.plan(&self.sites[t]).is_some();
            let ledger = self.env.store.ledger(*sid).await.unwrap();
            if self.left_for_an_admin(t).await {
                // The site kept drifting after the reconciler's last remedy: an admin's now.
                continue;
            }
            let others_hold = self.others_hold(t).await;
            match (intent, job_state.as_str()) {
                (Action::Provision, "done") if live && !ledger.is_empty() => {}
                (Action::Terminate, "done")
                    if live == others_hold
                        && ledger.is_empty()
                        && self.env.status(*sid).await == "Terminated" => {}
                (_, "failed") => {
                    let error = error.unwrap_or_default();
                    let (queued, logged): (i64, i64) = sqlx::query_as(
                        "SELECT (SELECT COUNT(*) FROM tblmodulequeue WHERE service_id = ?
                                   AND completed = 0 AND module_action = ? AND last_attempt_error = ?),
                                (SELECT COUNT(*) FROM tblactivitylog WHERE userid = 5 AND description = ?)",
                    )
                    .bind(sid)
                    .bind(Action::parse(&action).unwrap_or(intent).module_function())
                    .bind(&error)
                    .bind(&error)
                    .fetch_one(&self.env.db)
                    .await
                    .unwrap();
                    if !(error.starts_with("JETPACK MODULE") && queued == 1 && logged > 0) {
                        return Err(self.fail(format!(
                            "service {sid}: failed without its reason everywhere ({error:?}, queue {queued}, activity {logged})"
                        )));
                    }
                }
                (_, other) => {
                    let mut site = String::new();
                    for (u, other) in self.sids.iter().enumerate() {
                        if self.sites[u] == self.sites[t] {
                            site.push_str(&format!(
                                "--- service {other}:\n{}\n",
                                self.history(*other).await
                            ));
                        }
                    }
                    return Err(self.fail(format!(
                        "service {sid}: last asked {intent:?}, job {other}, plan live {live}, others hold {others_hold}\n{site}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Seeded random sequences of requests (PHP and CLI), requeues, workers claiming together,
/// killed workers, cut database connections, DNS flips and every API outcome. A failure
/// prints its seed; `JETPACK_MODEL_SEED=<seed> JETPACK_MODEL_SEQUENCES=1` replays it, and
/// `JETPACK_MODEL_SEQUENCES=5000` runs many more.
#[sqlx::test]
async fn model_latest_intent_wins_and_nothing_runs_twice(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let fleet = fleet(&env).await;
    let count: u64 = std::env::var("JETPACK_MODEL_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let base: u64 = std::env::var("JETPACK_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(1..u64::MAX / 2));
    println!("model: {count} sequences from seed {base} (JETPACK_MODEL_SEED={base})");
    let mut n = 0;
    while n < count {
        let round: Vec<u64> = (n..(n + 4).min(count)).map(|i| base + i).collect();
        n += round.len() as u64;
        let mut runs = Vec::new();
        for seed in &round {
            runs.push(run_sequence(&env, &fleet, pid, *seed));
        }
        let results = join_all(runs).await;
        for r in results {
            if let Err(e) = r {
                panic!("{e}");
            }
        }
    }
}

async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
    // Poll all together: a simple join without another dependency.
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().flatten());
    out
}

async fn run_sequence(env: &Env, fleet: &Fleet, pid: u32, seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut seq = Sequence {
        env,
        fleet,
        sites: Vec::new(),
        sids: Vec::new(),
        last: Vec::new(),
        steps: Vec::new(),
        seed,
        drifted: false,
    };
    // Two sites; the first is shared by a second service (an upgrade bought twice).
    for t in 0..3 {
        let site = format!("m{seed}-{}.example", t % 2);
        let sid = env.service(pid, "Active", &site, "admin", "premium").await;
        seq.sites.push(site);
        seq.sids.push(sid);
        seq.last.push(None);
    }
    let steps = 8 + rng.below(10);
    for _ in 0..steps {
        seq.step(&mut rng).await;
        seq.check_always().await?;
    }
    seq.settle().await?;
    seq.check_always().await?;
    seq.check_end().await
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
