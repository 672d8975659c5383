//! Workers: processes that take enqueued (and abandoned) runs from a shared store and run them.
//!
//! ```no_run
//! # use hookflow_runtime::{Engine, Worker};
//! # use std::time::Duration;
//! # async fn demo(engine: Engine) -> Result<(), hookflow_runtime::WorkerError> {
//! // An engine with a store and the workflows it may run (`.workflow::<Checkout>()`).
//! let worker = Worker::new(&engine).concurrency(16).start()?;
//! // ... until the process is asked to stop:
//! let report = worker.shutdown(Duration::from_secs(10)).await;
//! println!("{} runs finished, {} handed back", report.finished(), report.handed_back);
//! # Ok(()) }
//! ```
//!
//! A worker claims runs with [`Store::claim_next`](crate::store::Store::claim_next) (in
//! PostgreSQL, `FOR UPDATE SKIP LOCKED`: workers never wait for one another), under its
//! engine's lease; the engine's heartbeat renews the leases while the runs are in flight. A
//! run whose worker died is claimed by another once its lease lapses, and resumed by replay.
//! When the store is unreachable, the worker reports a [`WorkerError`] and keeps trying, with
//! exponential backoff; runs stay in the store, none is lost.
//!
//! An idle worker looks again when its poll interval is up or as soon as its store says a run
//! became claimable ([`Store::wakeups`](crate::store::Store::wakeups)), whichever comes
//! first. With a [`Worker::retention`], it also prunes the store's old ended runs, in a task
//! of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::engine::{ClaimedRun, Engine, WorkReadiness};
use crate::store::{Wakeups, prune_periodically};
use crate::types::{NoStore, RunId, RunStatus, StoreError};

/// What [`Worker::on_error`] calls.
type ErrorReport = Arc<dyn Fn(&WorkerError) + Send + Sync>;

/// Takes runs from its engine's store and runs them, `concurrency` at a time.
pub struct Worker {
    engine: Engine,
    concurrency: usize,
    poll_interval: Duration,
    max_backoff: Duration,
    on_error: Option<ErrorReport>,
    /// Whether the worker awaits its store's wake-ups beside its poll interval.
    wake_ups: bool,
    /// Ended runs older than this are pruned, every `prune_every`.
    retention: Option<Duration>,
    prune_every: Duration,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("worker_id", &self.engine.worker_id())
            .field("concurrency", &self.concurrency)
            .field("poll_interval", &self.poll_interval)
            .field("max_backoff", &self.max_backoff)
            .field("wake_ups", &self.wake_ups)
            .field("retention", &self.retention)
            .field("prune_every", &self.prune_every)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker for `engine`, which needs a store and the workflows it may run
    /// ([`EngineBuilder::workflow`](crate::EngineBuilder::workflow)). Defaults: 16 runs in
    /// flight, polling every 100 ms when there is nothing to do, backoff up to 5 s when the
    /// store fails.
    pub fn new(engine: &Engine) -> Self {
        Worker {
            engine: engine.clone(),
            concurrency: 16,
            poll_interval: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            on_error: None,
            wake_ups: true,
            retention: None,
            prune_every: DEFAULT_PRUNE_EVERY,
        }
    }

    /// How many runs this worker advances at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, runs: usize) -> Self {
        self.concurrency = runs.max(1);
        self
    }

    /// How long the worker waits before looking again when it found no run to claim.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The longest wait between two attempts while the store fails (the wait doubles from
    /// the poll interval up to this).
    #[must_use]
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Called with every error the worker meets and goes on from (the store unreachable, a
    /// run it could not hand back, a run quarantined because it cannot be read). They are
    /// also logged at `warn`.
    #[must_use]
    pub fn on_error(mut self, report: impl Fn(&WorkerError) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(report));
        self
    }

    /// Whether the worker wakes up as soon as its store says a run became claimable
    /// ([`Store::wakeups`](crate::store::Store::wakeups)), or only finds runs at its polls.
    /// On by default; the poll interval stays the safety net either way (a wake-up lost with
    /// its connection, a run made claimable by another process sharing a SQLite file).
    #[must_use]
    pub fn wake_ups(mut self, enabled: bool) -> Self {
        self.wake_ups = enabled;
        self
    }

    /// Keeps ended runs ([`StoredStatus::is_finished`](crate::StoredStatus::is_finished):
    /// completed, compensated, compensation failed, cancelled) for `older_than` after they
    /// last changed: while it runs, the worker prunes those older, with their
    /// journals, when it starts and then every [`Worker::prune_every`] (a minute by
    /// default), as [`Engine::prune`] does (batches of
    /// [`PRUNE_BATCH`](crate::store::PRUNE_BATCH), one transaction each), in a task of its
    /// own that never holds up claiming. Runs that are running, enqueued, waiting or parked are
    /// never pruned. A failed round is reported as [`WorkerError::Prune`] and tried again at the
    /// next. Off by default: ended runs are kept until pruned.
    #[must_use]
    pub fn retention(mut self, older_than: Duration) -> Self {
        self.retention = Some(older_than);
        self
    }

    /// How often a worker with a [`Worker::retention`] prunes (a minute by default).
    #[must_use]
    pub fn prune_every(mut self, interval: Duration) -> Self {
        self.prune_every = interval;
        self
    }

    /// Starts the worker on the current tokio runtime.
    ///
    /// # Errors
    /// [`WorkerError::NoStore`], [`WorkerError::NoWorkflows`], or
    /// [`WorkerError::NoRuntime`] when called outside a tokio runtime.
    pub fn start(self) -> Result<WorkerHandle, WorkerError> {
        match self.engine.can_work() {
            Ok(()) => {}
            Err(WorkReadiness::NoStore) => return Err(WorkerError::NoStore(NoStore)),
            Err(WorkReadiness::NoWorkflows) => return Err(WorkerError::NoWorkflows),
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WorkerError::NoRuntime)?;
        let (stop, stopping) = watch::channel(None);
        let stats = Arc::new(Mutex::new(WorkerReport::default()));
        // The scheduler fires the store's schedules beside the claims (`engine::scheduler`).
        let (worker_id, on_error) = (self.engine.worker_id().to_owned(), self.on_error.clone());
        let scheduler = crate::engine::run_scheduler(
            self.engine.clone(),
            self.poll_interval,
            stopping.clone(),
            move |source| {
                let error = WorkerError::Schedule(source);
                tracing::warn!(worker = worker_id, %error, "hookflow: worker");
                on_error.as_ref().inspect(|report| report(&error));
            },
        );
        runtime.spawn(scheduler);
        let task = runtime.spawn(self.run(stopping, Arc::clone(&stats)));
        Ok(WorkerHandle { stop, task, stats })
    }

    async fn run(
        self,
        mut stopping: watch::Receiver<Option<Duration>>,
        stats: Arc<Mutex<WorkerReport>>,
    ) -> WorkerReport {
        let mut runs: JoinSet<(RunId, u64, RunStatus)> = JoinSet::new();
        let mut fences: HashMap<tokio::task::Id, (RunId, u64)> = HashMap::new();
        let mut backoff = self.poll_interval;
        let mut wakeups = self.wakeups();
        let _pruner = self
            .retention
            .and_then(|older_than| self.start_pruner(older_than, &stats));
        loop {
            while let Some(done) = runs.try_join_next_with_id() {
                self.finished(done, &mut fences, &stats).await;
            }
            if stopping.borrow().is_some() {
                break;
            }
            let free = self.concurrency.saturating_sub(runs.len());
            // Claim in batches: while most slots are busy, wait for a quarter of them to
            // free up (one claim statement for several runs rather than one per run).
            if free == 0 || (free < self.concurrency.div_ceil(4) && !runs.is_empty()) {
                // `Ok(())` only: once the handle is dropped (a worker left running in the
                // background), `changed()` fails at once, and that branch must not wake the
                // loop.
                tokio::select! {
                    Some(done) = runs.join_next_with_id() => {
                        self.finished(done, &mut fences, &stats).await;
                    }
                    Ok(()) = stopping.changed() => {}
                }
                continue;
            }
            // Signals from here on wake the wait below: a run made claimable while claiming
            // is not left for the next poll.
            wakeups.mark_seen();
            let mut idle = false;
            let wait = match self.engine.claim_next(free).await {
                Ok(claimed) if claimed.is_empty() => {
                    backoff = self.poll_interval;
                    idle = true;
                    self.poll_interval
                }
                Ok(claimed) => {
                    backoff = self.poll_interval;
                    for unreadable in claimed.unreadable {
                        lock(&stats).quarantined += 1;
                        self.report(&WorkerError::Quarantined {
                            run_id: unreadable.run_id,
                            reason: unreadable.reason,
                        });
                    }
                    for ClaimedRun { run_id, fence, run } in claimed.runs {
                        let Some(run) = run else {
                            // Not this engine's to run: hand the lease back rather than sit
                            // on it.
                            self.hand_back(run_id, fence).await;
                            continue;
                        };
                        let handle = runs.spawn(async move { (run_id, fence, run.await) });
                        fences.insert(handle.id(), (run_id, fence));
                        lock(&stats).claimed += 1;
                    }
                    continue;
                }
                Err(err) => {
                    #[cfg(feature = "metrics")]
                    crate::metrics::store_error("claim", &err);
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.max_backoff);
                    self.report(&WorkerError::Claim {
                        source: err,
                        retry_in: wait,
                    });
                    lock(&stats).store_errors += 1;
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wakeups.changed(), if idle => {}
                Some(done) = runs.join_next_with_id() => {
                    self.finished(done, &mut fences, &stats).await;
                }
                Ok(()) = stopping.changed() => {}
            }
        }

        // Shutting down: let the runs in flight finish within the grace period, then hand
        // the others back (their leases released: another worker resumes them at once).
        let grace = stopping.borrow().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + grace;
        while !runs.is_empty() {
            match tokio::time::timeout_at(deadline, runs.join_next_with_id()).await {
                Ok(Some(done)) => self.finished(done, &mut fences, &stats).await,
                Ok(None) | Err(_) => break,
            }
        }
        runs.abort_all();
        while let Some(done) = runs.join_next_with_id().await {
            match done {
                Err(err) if err.is_cancelled() => {
                    if let Some((run_id, fence)) = fences.remove(&err.id()) {
                        self.hand_back(run_id, fence).await;
                        lock(&stats).handed_back += 1;
                    }
                }
                done => self.finished(done, &mut fences, &stats).await,
            }
        }
        lock(&stats).clone()
    }

    /// Counts a finished run task; an interrupted run is handed back for another attempt.
    async fn finished(
        &self,
        done: Result<(tokio::task::Id, (RunId, u64, RunStatus)), tokio::task::JoinError>,
        fences: &mut HashMap<tokio::task::Id, (RunId, u64)>,
        stats: &Mutex<WorkerReport>,
    ) {
        match done {
            Ok((id, (run_id, fence, status))) => {
                fences.remove(&id);
                let interrupted = {
                    let mut stats = lock(stats);
                    match status {
                        RunStatus::Completed => stats.completed += 1,
                        RunStatus::Compensated => stats.compensated += 1,
                        RunStatus::CompensationFailed => stats.compensation_failed += 1,
                        RunStatus::Parked => stats.parked += 1,
                        RunStatus::Interrupted => stats.interrupted += 1,
                        RunStatus::Waiting => stats.suspended += 1,
                        RunStatus::Cancelled => stats.cancelled += 1,
                        // Only a start is rejected; a worker resumes runs that started.
                        RunStatus::Rejected => {}
                    }
                    status == RunStatus::Interrupted
                };
                if interrupted {
                    // The store failed under it, or its lease was lost: let any worker (this
                    // one included) take it again. If the store is still down, the lease
                    // lapses instead.
                    self.hand_back(run_id, fence).await;
                }
            }
            Err(err) => {
                // A run task does not panic (panics in user code fail the run); if one
                // did, its lease lapses and another worker resumes it.
                fences.remove(&err.id());
                lock(stats).interrupted += 1;
            }
        }
    }

    /// The wake-ups of the engine's store, unless turned off ([`Worker::wake_ups`]).
    fn wakeups(&self) -> Wakeups {
        match self.engine.store() {
            Some(store) if self.wake_ups => store.wakeups(),
            _ => Wakeups::never(),
        }
    }

    /// Starts pruning the store's ended runs older than `older_than`, every `prune_every`,
    /// until the returned guard is dropped.
    fn start_pruner(
        &self,
        older_than: Duration,
        stats: &Arc<Mutex<WorkerReport>>,
    ) -> Option<AbortOnDrop> {
        let store = Arc::clone(self.engine.store()?);
        let stats = Arc::clone(stats);
        let worker = self.engine.worker_id().to_owned();
        let on_error = self.on_error.clone();
        let round = move |result: Result<usize, StoreError>| match result {
            Ok(pruned) => lock(&stats).pruned += u64::try_from(pruned).unwrap_or(u64::MAX),
            Err(source) => {
                #[cfg(feature = "metrics")]
                crate::metrics::store_error("prune", &source);
                let error = WorkerError::Prune { source };
                tracing::warn!(worker, %error, "hookflow: worker");
                if let Some(on_error) = &on_error {
                    on_error(&error);
                }
            }
        };
        let task = tokio::spawn(prune_periodically(
            store,
            older_than,
            self.prune_every,
            round,
        ));
        Some(AbortOnDrop(task))
    }

    async fn hand_back(&self, run_id: RunId, fence: u64) {
        match self.engine.release(run_id, fence).await {
            Ok(()) | Err(StoreError::Fenced { .. } | StoreError::NotFound(_)) => {}
            Err(source) => {
                #[cfg(feature = "metrics")]
                crate::metrics::store_error("release", &source);
                self.report(&WorkerError::Release { run_id, source });
            }
        }
    }

    fn report(&self, error: &WorkerError) {
        tracing::warn!(worker = self.engine.worker_id(), %error, "hookflow: worker");
        if let Some(on_error) = &self.on_error {
            on_error(error);
        }
    }
}

/// How often a worker with a retention prunes, unless [`Worker::prune_every`] says otherwise.
const DEFAULT_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Aborts its task when dropped: the pruner stops with its worker.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock(stats: &Mutex<WorkerReport>) -> std::sync::MutexGuard<'_, WorkerReport> {
    crate::types::lock(stats)
}

/// A running [`Worker`]. Dropping the handle leaves the worker running in the background
/// (until its runtime shuts down); [`WorkerHandle::shutdown`] stops it.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<Option<Duration>>,
    task: tokio::task::JoinHandle<WorkerReport>,
    stats: Arc<Mutex<WorkerReport>>,
}

impl WorkerHandle {
    /// What the worker has done so far.
    pub fn report(&self) -> WorkerReport {
        lock(&self.stats).clone()
    }

    /// Stops claiming runs, lets the runs in flight finish for up to `grace`, then hands the
    /// others back to the store (their leases released, so that another worker resumes them
    /// at once by replay), and returns what the worker did. `Duration::ZERO` hands everything
    /// in flight back at once.
    pub async fn shutdown(self, grace: Duration) -> WorkerReport {
        let _ = self.stop.send(Some(grace));
        match self.task.await {
            Ok(report) => report,
            Err(_) => lock(&self.stats).clone(),
        }
    }
}

/// What a worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// Runs it claimed.
    pub claimed: u64,
    /// Runs it completed.
    pub completed: u64,
    /// Runs that failed and were compensated.
    pub compensated: u64,
    /// Runs that failed and whose compensation failed too.
    pub compensation_failed: u64,
    /// Runs it parked (their journal cannot be replayed).
    pub parked: u64,
    /// Runs interrupted under it (the store failed, or the lease was lost), left for another
    /// attempt.
    pub interrupted: u64,
    /// Runs in flight at shutdown that it handed back.
    pub handed_back: u64,
    /// Failed attempts to claim runs (the store unreachable).
    pub store_errors: u64,
    /// Runs the store quarantined as this worker claimed: their record or journal cannot be
    /// read, so they were parked instead of run (each also reported to
    /// [`Worker::on_error`] as [`WorkerError::Quarantined`]).
    pub quarantined: u64,
    /// Runs that suspended under it, waiting for an event or a timer (each is claimed again,
    /// by any worker, once it is woken).
    pub suspended: u64,
    /// Runs it cancelled (their completed steps undone).
    pub cancelled: u64,
    /// Ended runs it pruned ([`Worker::retention`]).
    pub pruned: u64,
}

impl WorkerReport {
    /// Runs that reached their end (completed, compensated, compensation failed, or
    /// cancelled).
    pub fn finished(&self) -> u64 {
        self.completed + self.compensated + self.compensation_failed + self.cancelled
    }
}

/// What goes wrong with a worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// A worker takes runs from a store, and the engine has none.
    #[error("a worker needs a store: {0}")]
    NoStore(NoStore),
    /// The engine knows no workflow to run.
    #[error("a worker needs the workflows it may run: `Engine::builder().workflow::<Checkout>()`")]
    NoWorkflows,
    /// [`Worker::start`] was called outside a tokio runtime.
    #[error("a worker starts on a tokio runtime: call `start` inside one")]
    NoRuntime,
    /// The worker could not claim runs (the store is unreachable); it tries again after
    /// `retry_in`.
    #[error("cannot claim runs (trying again in {retry_in:?}): {source}")]
    Claim {
        /// The store's error.
        #[source]
        source: StoreError,
        /// When the worker tries again.
        retry_in: Duration,
    },
    /// The worker could not hand a run back; its lease lapses instead.
    #[error("cannot hand run {run_id} back (its lease will lapse instead): {source}")]
    Release {
        /// The run.
        run_id: RunId,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A run the worker would have claimed cannot be read (its record or journal is corrupt,
    /// or written by a hookflow whose records this one cannot read): the store quarantined
    /// it, parked with the reason in its `error`, and the worker goes on with the others.
    /// Repair the row, then resume the run (`engine.resume(run_id)`, `hookflow resume`).
    #[error("run {run_id} cannot be read and was quarantined (parked): {reason}")]
    Quarantined {
        /// The run's id as stored (it may itself be what cannot be read).
        run_id: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// A round of pruning ended runs ([`Worker::retention`]) failed; the next round tries
    /// again. The batches deleted before the error stay deleted.
    #[error("cannot prune ended runs (trying again at the next round): {source}")]
    Prune {
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The worker's scheduler could not fire a schedule (the store failing, a schedule that
    /// cannot be read or whose stored spec does not parse); it goes on with the others and
    /// tries again at its next pass.
    #[error("cannot fire schedules: {0}")]
    Schedule(#[source] crate::engine::ScheduleError),
}
