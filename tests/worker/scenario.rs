//! Scenario builders the tests of a job's life share: a `run` in the background, a request
//! recorded as the PHP module does and waited on until applied, the latest job of a service,
//! and quiescence (nothing unfinished, nothing pending).

use std::time::Duration;

use jetpack_worker::domain::{RequestedBy, ServiceId};
use jetpack_worker::lifecycle::RequestKind;
use jetpack_worker::store::RequestId;
use jetpack_worker::worker::Worker;
use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Env, until};

/// A `run` (service loop) in the background; stopped with [`Running::stop`].
pub struct Running {
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

pub fn start(worker: &Worker) -> Running {
    let stop = CancellationToken::new();
    let (w, t) = (worker.clone(), stop.clone());
    let task = tokio::spawn(async move { w.run(t).await.unwrap() });
    Running { stop, task }
}

impl Running {
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// No unfinished job and no request waiting.
pub async fn quiescent(db: &MySqlPool) -> bool {
    let (jobs, requests): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state IN ('queued','running','waiting_dns')),
                (SELECT COUNT(*) FROM mod_jetpack_requests WHERE applied_at IS NULL)",
    )
    .fetch_one(db)
    .await
    .unwrap();
    jobs == 0 && requests == 0
}

pub async fn applied(env: &Env, id: RequestId) -> bool {
    env.store
        .request(id)
        .await
        .unwrap()
        .is_some_and(|r| r.applied)
}

/// Records a request the way the PHP module does and waits until a worker applied it.
pub async fn ask(env: &Env, sid: ServiceId, kind: RequestKind) {
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
pub async fn latest(env: &Env, sid: ServiceId) -> (String, String) {
    sqlx::query_as(
        "SELECT action, state FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(sid)
    .fetch_one(&env.db)
    .await
    .unwrap()
}
