//! The seeded model-based test of licence targets: Creates, Terminates and Retries from PHP
//! and the CLI, several workers, killed workers and every fault of the issue call (5xx, 429,
//! an answer lost after the licence was issued, a licence that lands after the client gave
//! up). After every step: never two live licences for one target, and every licence the
//! Licensing API issued is one the ledger records (or one of its rows in doubt); at quiescence
//! each target is as its last request asks (or its job failed with its reason), and the
//! licences issued are exactly those recorded.

use std::collections::HashSet;
use std::time::Duration;

use jetpack_sandbox::{LicenceToken, SandboxConfig, ScriptedReply};
use jetpack_worker::domain::{Action, RequestedBy, ServiceId, Target};
use jetpack_worker::lifecycle::RequestKind;
use jetpack_worker::store::Store;
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, Layout, Rng};
use crate::model::{Fleet, fleet_settling, join_all};

/// Sequences run three at a time, each with its own token and its own two products, so their
/// lookups and their scripted faults never meet.
const TOKENS: usize = 3;
const PER_SEQUENCE: usize = 2;
const SLUGS: [&str; TOKENS * PER_SEQUENCE] = [
    "jetpack-backup-daily",
    "jetpack-scan",
    "jetpack-anti-spam",
    "jetpack-backup-realtime",
    "jetpack-security-daily",
    "jetpack-complete",
];

fn token(i: usize) -> String {
    format!("sbxlic_model_{i}")
}

#[derive(Debug)]
enum Step {
    Ask(usize, RequestKind, bool),
    Fault(usize, &'static str),
    Run(usize),
    Kill(u64),
    TimeTravel,
}

struct Sequence<'a> {
    env: &'a Env,
    fleet: &'a Fleet,
    token: String,
    /// Its products, one per target.
    slugs: &'a [&'static str],
    /// Licences of this token issued before the sequence (earlier rounds).
    before: HashSet<String>,
    sids: Vec<ServiceId>,
    last: Vec<Option<Action>>,
    steps: Vec<Step>,
    seed: u64,
}

impl Sequence<'_> {
    fn fail(&self, what: String) -> String {
        format!("seed {}: {what}\nsteps: {:#?}", self.seed, self.steps)
    }

    async fn step(&mut self, rng: &mut Rng) {
        let t = rng.below(self.sids.len() as u64) as usize;
        let step = match rng.below(9) {
            0..=2 => {
                let kind = match rng.below(5) {
                    0 | 1 => RequestKind::Provision,
                    2 | 3 => RequestKind::Terminate,
                    _ => RequestKind::Retry,
                };
                Step::Ask(t, kind, rng.below(2) == 0)
            }
            3 => {
                let faults = ["503", "429", "lost", "late", "slow"];
                Step::Fault(t, faults[rng.below(5) as usize])
            }
            4..=5 => Step::Run(1 + rng.below(3) as usize),
            6 => Step::Kill(rng.below(200)),
            _ => Step::TimeTravel,
        };
        self.apply(&step).await;
        self.steps.push(step);
    }

    async fn apply(&mut self, step: &Step) {
        match *step {
            Step::Ask(t, kind, from_php) => {
                let sid = self.sids[t];
                if kind == RequestKind::Provision {
                    let sql =
                        format!("UPDATE tblhosting SET domainstatus = 'Active' WHERE id = {sid}");
                    self.env.exec(&sql).await;
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
                if let Some(a) = kind.action() {
                    self.last[t] = Some(a);
                }
            }
            Step::Fault(t, what) => {
                let reply = match what {
                    "503" => ScriptedReply::Status {
                        code: 503,
                        body: "{}".into(),
                        retry_after: None,
                    },
                    "429" => ScriptedReply::Status {
                        code: 429,
                        body: r#"{"code":"rate_limited"}"#.into(),
                        retry_after: Some("0".into()),
                    },
                    "lost" => ScriptedReply::ActThenReset,
                    // Lands after the client (300 ms) gave up, before the settle (600 ms).
                    "late" => ScriptedReply::LandsLate(Duration::from_millis(400)),
                    _ => ScriptedReply::Slow(Duration::from_millis(150)),
                };
                let key = format!("licence:{}", self.slug(t));
                self.env.sandbox.state().script(&key, vec![reply]);
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
                let store = Store::open(crate::helpers::worker_pool(&self.env.db, 4).await, None)
                    .await
                    .unwrap();
                let w = self.fleet.crashing(store.clone());
                let task = tokio::spawn(async move { w.run_once().await });
                tokio::time::sleep(Duration::from_millis(ms)).await;
                task.abort();
                let _ = task.await;
                let _ = tokio::time::timeout(Duration::from_secs(5), store.pool().close()).await;
            }
            Step::TimeTravel => self.make_due().await,
        }
    }

    fn slug(&self, t: usize) -> &'static str {
        self.slugs[t]
    }

    fn ids(&self) -> String {
        let ids: Vec<String> = self.sids.iter().map(|s| s.to_string()).collect();
        ids.join(",")
    }

    async fn make_due(&self) {
        let sql = format!(
            "UPDATE mod_jetpack_jobs SET run_at = UTC_TIMESTAMP(6)
             WHERE service_id IN ({}) AND state IN ('queued', 'waiting_dns')",
            self.ids()
        );
        for _ in 0..20 {
            if sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&self.env.db)
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The sequence's licence rows: (service, state, key).
    async fn rows(&self) -> Vec<(u32, String, Option<String>)> {
        let sql = format!(
            "SELECT service_id, state, license_key FROM mod_jetpack_licences
             WHERE service_id IN ({}) ORDER BY id",
            self.ids()
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.env.db)
            .await
            .unwrap()
    }

    /// The licences the sandbox issued to this sequence's token since it began.
    fn issued(&self) -> Vec<jetpack_sandbox::IssuedLicence> {
        let tokens = self.env.sandbox.state().licence_tokens();
        let index = tokens.iter().position(|t| t.token == self.token);
        self.env
            .sandbox
            .state()
            .licences()
            .into_iter()
            .filter(|l| Some(l.token) == index && !self.before.contains(&l.key))
            .collect()
    }

    /// After every step: one live licence per target at most; every licence issued is
    /// recorded, or one of the rows in doubt stands for it.
    async fn check_always(&self) -> Result<(), String> {
        let rows = self.rows().await;
        for sid in &self.sids {
            let live = rows
                .iter()
                .filter(|(s, st, _)| *s == sid.0 && (st == "issued" || st == "attached"))
                .count();
            if live > 1 {
                return Err(self.fail(format!("service {sid}: {live} live licences: {rows:?}")));
            }
        }
        let issued = self.issued();
        // Each target sells its own product: the licences of it are the target's. Never two
        // in force at once (no admin chose to issue another here).
        for (t, sid) in self.sids.iter().enumerate() {
            let in_force: Vec<&str> = issued
                .iter()
                .filter(|l| l.product == self.slug(t) && l.revoked_at.is_none())
                .map(|l| l.key.as_str())
                .collect();
            if in_force.len() > 1 {
                return Err(self.fail(format!(
                    "service {sid}: {} licences in force at the API: {in_force:?}\nrows: {rows:?}",
                    in_force.len()
                )));
            }
        }
        let keyed: HashSet<&str> = rows.iter().filter_map(|(_, _, k)| k.as_deref()).collect();
        let doubt = rows
            .iter()
            .filter(|(_, st, _)| st == "issuing" || st == "unknown")
            .count();
        let issued = self.issued();
        let unrecorded = issued
            .iter()
            .filter(|l| !keyed.contains(l.key.as_str()))
            .count();
        if unrecorded > doubt {
            return Err(self.fail(format!(
                "{unrecorded} licence(s) issued that no row records, {doubt} row(s) in doubt\nrows: {rows:?}\nissued: {issued:#?}"
            )));
        }
        if let Some(k) = keyed.iter().find(|k| !issued.iter().any(|l| l.key == **k)) {
            return Err(self.fail(format!("a recorded key {k} was never issued")));
        }
        Ok(())
    }

    async fn settle(&self) -> Result<(), String> {
        // Faults scripted and left over would hit the jobs until their budget is spent.
        for slug in self.slugs {
            self.env
                .sandbox
                .state()
                .clear_scripts(&format!("licence:{slug}"));
        }
        // A late licence lands (400 ms) and the settle (600 ms) passes before the last looks.
        for _ in 0..400 {
            let sql = format!(
                "SELECT (SELECT COUNT(*) FROM mod_jetpack_jobs WHERE service_id IN ({ids})
                           AND state IN ('queued','running','waiting_dns'))
                      + (SELECT COUNT(*) FROM mod_jetpack_requests WHERE service_id IN ({ids})
                           AND applied_at IS NULL)",
                ids = self.ids()
            );
            let open: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&self.env.db)
                .await
                .unwrap();
            if open == 0 {
                return Ok(());
            }
            self.make_due().await;
            let _ = self.fleet.direct[0].run_once().await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let sql = format!(
            "SELECT id, service_id, action, state, attempts, COALESCE(last_error, result, ''),
                    CAST(run_at AS CHAR), COALESCE(follow_up, '')
             FROM mod_jetpack_jobs WHERE service_id IN ({}) ORDER BY id",
            self.ids()
        );
        type JobDump = (u64, u32, String, String, u32, String, String, String);
        let jobs: Vec<JobDump> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.env.db)
            .await
            .unwrap();
        let rows = self.rows().await;
        Err(self.fail(format!(
            "the jobs did not settle\njobs: {jobs:#?}\nlicences: {rows:?}"
        )))
    }

    /// At quiescence: each target as its last request asks, or failed with its reason; no
    /// row in doubt is left by a job that ended done.
    async fn check_end(&self) -> Result<(), String> {
        let rows = self.rows().await;
        let issued = self.issued();
        for (t, sid) in self.sids.iter().enumerate() {
            let Some(intent) = self.last[t] else { continue };
            let (action, state, error): (String, String, Option<String>) = sqlx::query_as(
                "SELECT action, state, last_error FROM mod_jetpack_jobs WHERE service_id = ?
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(sid)
            .fetch_one(&self.env.db)
            .await
            .unwrap();
            let mine: Vec<_> = rows.iter().filter(|(s, _, _)| *s == sid.0).collect();
            let live: Vec<&str> = mine
                .iter()
                .filter(|(_, st, _)| st == "issued" || st == "attached")
                .filter_map(|(_, _, k)| k.as_deref())
                .collect();
            let revoked_at_api =
                |k: &str| issued.iter().any(|l| l.key == k && l.revoked_at.is_some());
            let ok = match (intent, state.as_str()) {
                (_, "failed") => error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("JETPACK MODULE")),
                (Action::Provision, "done") => live.len() == 1 && !revoked_at_api(live[0]),
                (Action::Terminate, "done") => {
                    live.is_empty()
                        && mine
                            .iter()
                            .filter_map(|(_, _, k)| k.as_deref())
                            .all(revoked_at_api)
                }
                _ => false,
            };
            if !ok || action != intent.as_str() {
                let target = Target::Service(*sid);
                let ledger = self.env.store.licences_of(target).await.unwrap();
                return Err(self.fail(format!(
                    "service {sid}: last asked {intent:?}, latest job {action} {state} ({error:?})\nledger: {ledger:#?}\nissued: {issued:#?}"
                )));
            }
        }
        Ok(())
    }
}

/// Seeded sequences over licence targets; a failure prints its seed
/// (`JETPACK_MODEL_SEED=<seed> JETPACK_MODEL_SEQUENCES=1` replays it).
#[sqlx::test]
async fn model_licences_are_issued_once_per_intent(pool: MySqlPool) {
    let config = SandboxConfig {
        licence_tokens: (0..TOKENS)
            .map(|i| LicenceToken {
                token: token(i),
                may_list: true,
                may_attach: true,
            })
            .collect(),
        ..SandboxConfig::default()
    };
    let env = Env::with(pool, Layout::V8, config).await;
    let fleet = fleet_settling(&env, Duration::from_millis(600)).await;
    let count: u64 = std::env::var("JETPACK_MODEL_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let base: u64 = std::env::var("JETPACK_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(1..u64::MAX / 2));
    println!("licence model: {count} sequences from seed {base} (JETPACK_MODEL_SEED={base})");
    let mut n = 0;
    while n < count {
        let round: Vec<u64> = (n..(n + TOKENS as u64).min(count))
            .map(|i| base + i)
            .collect();
        let mut runs = Vec::new();
        for (i, seed) in round.iter().enumerate() {
            runs.push(run_sequence(&env, &fleet, i, *seed));
        }
        n += round.len() as u64;
        for r in join_all(runs).await {
            if let Err(e) = r {
                panic!("{e}");
            }
        }
    }
}

async fn run_sequence(env: &Env, fleet: &Fleet, slot: usize, seed: u64) -> Result<(), String> {
    let token = token(slot);
    let slugs = &SLUGS[slot * PER_SEQUENCE..(slot + 1) * PER_SEQUENCE];
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let index = env
        .sandbox
        .state()
        .licence_tokens()
        .iter()
        .position(|t| t.token == token);
    let before = env
        .sandbox
        .state()
        .licences()
        .into_iter()
        .filter(|l| Some(l.token) == index)
        .map(|l| l.key)
        .collect();
    let mut seq = Sequence {
        env,
        fleet,
        token: token.clone(),
        slugs,
        before,
        sids: Vec::new(),
        last: Vec::new(),
        steps: Vec::new(),
        seed,
    };
    for (t, slug) in slugs.iter().enumerate() {
        let pid = crate::licences::licence_product(env, &token, slug, "").await;
        let sid = env
            .service(pid, "Pending", &format!("l{seed}-{t}.example"), "", "")
            .await;
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
