//! The completer: attempts' outcomes written in batches, as River's batch completer does.
//! Each job's run hands its (job, outcome) over and awaits its own answer; one task takes
//! whatever is waiting (up to [`BATCH_CAP`]), waits at most [`LINGER`] for more while other
//! jobs are still in their partner-API calls, and writes them all with one call to `Store::finish_batch` (one
//! transaction), up to [`WRITERS`] batches at once. Its lifetime is one run of the engine: the engine starts it, every job's
//! task holds a handle, and it ends once the engine has closed it and every handle is gone,
//! after writing what it was handed. An answer that never comes (the completer gone) or an
//! error sends the job back to writing on its own, with its patience and its fallbacks.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::health::InFlight;
use crate::store::{ClaimedJob, Finish, Store, StoreError};

/// The most outcomes written in one transaction.
pub(super) const BATCH_CAP: usize = 128;
/// Batches written at once.
pub(super) const WRITERS: usize = 4;
/// The longest a batch waits for more outcomes while other jobs are still in their calls (a lone
/// job is never held back). 8 ms makes a batch of ~10 outcomes at 1,280 calls/s: 0.9 statements
/// per job instead of 1.3 at 2 ms, and less MariaDB CPU per job (BENCHMARKS.md, "the linger");
/// a job's slot is given back before its outcome is written, so the wait costs no call.
pub(super) const LINGER: Duration = Duration::from_millis(8);

/// One outcome waiting to be written, with where its answer goes.
struct Pending {
    job: ClaimedJob,
    finish: Finish,
    answer: oneshot::Sender<Result<bool, StoreError>>,
}

/// A job's way to the completer. Cheap to clone.
#[derive(Clone)]
pub(super) struct Completions(mpsc::UnboundedSender<Pending>);

impl Completions {
    /// Hands the outcome over and waits for its answer: written (true), lease lost
    /// (false), or the error of writing it on its own. None when the completer is gone:
    /// the caller writes it itself.
    pub(super) async fn finish(
        &self,
        job: &ClaimedJob,
        finish: &Finish,
    ) -> Option<Result<bool, StoreError>> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            job: job.clone(),
            finish: finish.clone(),
            answer,
        };
        self.0.send(pending).ok()?;
        answered.await.ok()
    }
}

/// The running completer, owned by one run of the engine.
pub(super) struct Completer {
    handle: Completions,
    task: JoinHandle<()>,
}

impl Completer {
    /// Starts the completer's task on `store`; `in_flight` tells it whether other jobs are
    /// still in their calls (worth waiting a moment for).
    pub(super) fn start(store: Store, in_flight: InFlight) -> Completer {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(complete(store, in_flight, rx));
        Completer {
            handle: Completions(tx),
            task,
        }
    }

    /// A handle for one job's task.
    pub(super) fn handle(&self) -> Completions {
        self.handle.clone()
    }

    /// Stops taking outcomes and waits until every outcome already handed over (by this
    /// handle's clones, which must be gone or going) is written.
    pub(super) async fn close(self) {
        drop(self.handle);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the completer stopped unexpectedly; unanswered jobs were written on their own");
        }
    }
}

/// The completer's loop: until every handle is gone and nothing is waiting. Up to
/// [`WRITERS`] batches are written at once (their jobs are distinct rows), so one batch's
/// round trips never hold up the outcomes arriving meanwhile.
async fn complete(store: Store, in_flight: InFlight, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut writing = JoinSet::new();
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    loop {
        if writing.len() >= WRITERS {
            let _ = writing.join_next().await;
            continue;
        }
        let first = match waiting.pop_front() {
            Some(first) => Some(first),
            None => tokio::select! {
                first = rx.recv() => first,
                Some(_) = writing.join_next(), if !writing.is_empty() => continue,
            },
        };
        let Some(first) = first else { break };
        let mut batch = Vec::with_capacity(BATCH_CAP);
        batch.push(first);
        while batch.len() < BATCH_CAP
            && let Some(next) = waiting.pop_front()
        {
            batch.push(next);
        }
        gather(&mut rx, &mut batch, &in_flight).await;
        // A power-of-two batch: its statements' texts are among a few, which every pooled
        // connection keeps prepared (evicting one costs a round trip the server answers
        // only after its delayed ACK, about 40 ms). The rest go first in the next batch.
        let keep = 1usize << batch.len().ilog2();
        waiting.extend(batch.drain(keep..));
        let store = store.clone();
        writing.spawn(async move { write(&store, batch).await });
    }
    while writing.join_next().await.is_some() {}
}

/// Adds what is waiting to `batch`, up to [`BATCH_CAP`]; while more jobs are in their calls than
/// the batch holds, waits up to [`LINGER`] for them.
async fn gather(
    rx: &mut mpsc::UnboundedReceiver<Pending>,
    batch: &mut Vec<Pending>,
    in_flight: &InFlight,
) {
    let until = Instant::now() + LINGER;
    while batch.len() < BATCH_CAP {
        match rx.try_recv() {
            Ok(p) => {
                batch.push(p);
                continue;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        if in_flight.count() <= batch.len() {
            return;
        }
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(p)) => batch.push(p),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Writes the batch in one call and answers each job.
async fn write(store: &Store, batch: Vec<Pending>) {
    let (pairs, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|p| ((p.job, p.finish), p.answer))
        .unzip();
    let written = store.finish_batch(&pairs).await;
    for (answer, result) in answers.into_iter().zip(written) {
        // A job whose task was aborted (the drain's deadline) no longer listens: its outcome
        // is written all the same, and the fence keeps the release that follows honest.
        let _ = answer.send(result);
    }
}
