//! The seeded model-based test of a job's life: requests from PHP and the CLI, requeues,
//! several workers, killed workers, cut database connections and every API outcome, with the
//! invariants checked after each step and at quiescence.

use std::time::Duration;

use jetpack_sandbox::ScriptedReply;
use jetpack_worker::domain::{Action, RequestedBy, ServiceId};
use jetpack_worker::lifecycle::RequestKind;
use jetpack_worker::store::Store;
use jetpack_worker::worker::Worker;
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, Rng, fast_settings};

/// The workers of the model: two connected directly, one through a proxy that can cut its
/// database connections.
pub(crate) struct Fleet {
    pub(crate) direct: [Worker; 2],
    pub(crate) proxied: Worker,
    proxy: crate::proxy::Proxy,
    /// Builds a worker like the others on a store of its own (for a crash).
    make: Box<dyn Fn(Store) -> Worker + Send + Sync>,
}

impl Fleet {
    /// A worker on `store`, to be killed.
    pub(crate) fn crashing(&self, store: Store) -> Worker {
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
    fleet_settling(env, Duration::ZERO).await
}

/// The fleet, a lost answer settling for `settle` before it is looked at again.
pub(crate) async fn fleet_settling(env: &Env, settle: Duration) -> Fleet {
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
                reconcile: jetpack_worker::worker::ReconcileSettings {
                    settle,
                    ..model_settings().reconcile
                },
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
                let kind = match rng.below(8) {
                    0 | 1 => RequestKind::Provision,
                    2 | 3 => RequestKind::Terminate,
                    4 => RequestKind::Change,
                    5 => RequestKind::Suspend,
                    6 => RequestKind::Unsuspend,
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
                // WHMCS sets a service Active when its Create or Unsuspend succeeds (the
                // module only queues), as it would after a Terminate too; Suspended on Suspend.
                let status = match kind {
                    RequestKind::Provision | RequestKind::Unsuspend => Some("Active"),
                    RequestKind::Suspend => Some("Suspended"),
                    _ => None,
                };
                if let Some(status) = status {
                    self.env
                        .exec(&format!(
                            "UPDATE tblhosting SET domainstatus = '{status}' WHERE id = {sid}"
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
                // A change of plan counts as a provision, except after a terminate or a
                // suspend (it never revives a plan: it waits for a Create or the unsuspend). The
                // products cancel the plan on suspend, so an unsuspend provisions it again.
                match kind.action() {
                    Some(Action::Change) if self.last[t].is_some_and(Action::withdraws) => {}
                    Some(a) if a.may_provide() => self.last[t] = Some(Action::Provision),
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
            let family = match Action::parse(&action) {
                Some(a) if a.may_provide() => "provision",
                _ => action.as_str(),
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
                // The product cancels on suspend: no plan of its own, and still Suspended.
                (Action::Suspend, "done")
                    if live == others_hold
                        && ledger.is_empty()
                        && self.env.status(*sid).await == "Suspended" => {}
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
    // WHMCS's Suspend cancels the plan and Unsuspend provisions it again (the model draws both).
    env.exec(&format!(
        "UPDATE tblproducts SET configoption7 = 'cancel' WHERE id = {pid}"
    ))
    .await;
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

pub(crate) async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
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
