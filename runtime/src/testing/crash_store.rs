//! The store under a crash check: a [`MemoryStore`] that counts a run's commits, says what
//! each recorded, and at the crash point stops writing, as a process that dies there would.

use std::sync::Mutex;

use super::crash::Moment;
use crate::journal::{Event, EventKind};
use crate::store::{
    BoxFuture, Cancelling, Claim, Created, Delivery, Found, Lease, MemoryStore, Message, RunRecord,
    RunUpdate, Store, StoreError, StoredRun, StoredStatus, Suspension, Wake,
};
use crate::types::{CancelRequest, RunId, lock};

/// A [`MemoryStore`] that crashes at one commit: before it (nothing of it is written) or
/// after it (written, but the run is told the store failed). From then on it refuses every
/// write, and the run halts as it does on a store failure: still `running` in the store,
/// until [`CrashStore::recover`] lets a restarted engine resume it.
pub(super) struct CrashStore {
    inner: MemoryStore,
    state: Mutex<CrashState>,
}

#[derive(Default)]
struct CrashState {
    /// Where to crash: at which commit (from 1), before or after it. `None`: never.
    crash: Option<(Moment, usize)>,
    /// What each commit made so far recorded, in words.
    commits: Vec<String>,
    crashed: bool,
}

impl CrashStore {
    pub(super) fn new(crash: Option<(Moment, usize)>) -> Self {
        CrashStore {
            inner: MemoryStore::new(),
            state: Mutex::new(CrashState {
                crash,
                ..CrashState::default()
            }),
        }
    }

    /// The process that crashed is gone: what the store kept is read and written again, and
    /// it crashes no more.
    pub(super) fn recover(&self) {
        let mut state = lock(&self.state);
        state.crash = None;
        state.crashed = false;
    }

    /// What each commit recorded, in words ("step `reserve` completed"), in commit order.
    pub(super) fn commits(&self) -> Vec<String> {
        lock(&self.state).commits.clone()
    }

    /// Whether the crash happened.
    pub(super) fn crashed(&self) -> bool {
        lock(&self.state).crashed
    }

    fn refuse_if_crashed(&self, what: &str) -> Result<(), StoreError> {
        if lock(&self.state).crashed {
            return Err(crashed(what));
        }
        Ok(())
    }

    /// A commit point (a commit, a suspension), described as `what`: `write` is made unless
    /// the crash falls before it, and the store crashes before or after it when its number is
    /// the crash point's. `after_crash` says what a write after the crash was.
    async fn commit_point<T>(
        &self,
        after_crash: &str,
        what: String,
        write: BoxFuture<'_, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let (number, crash) = {
            let mut state = lock(&self.state);
            if state.crashed {
                return Err(crashed(after_crash));
            }
            state.commits.push(what);
            (state.commits.len(), state.crash)
        };
        let context = format!("commit {number}");
        match crash {
            Some((Moment::Before, at)) if at == number => {
                lock(&self.state).crashed = true;
                Err(crashed(&context))
            }
            Some((Moment::After, at)) if at == number => {
                let written = write.await;
                lock(&self.state).crashed = true;
                written?;
                Err(crashed(&context))
            }
            _ => write.await,
        }
    }
}

/// The error a write gets at and after the crash.
fn crashed(what: &str) -> StoreError {
    StoreError::Unavailable {
        context: what.to_owned(),
        message: "the process crashed here (a crash point of hookflow::testing)".to_owned(),
    }
}

impl Store for CrashStore {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(async move {
            self.refuse_if_crashed("creating the run")?;
            self.inner.create(run, lease).await
        })
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let what = describe(events, update.as_ref());
        Box::pin(self.commit_point(
            "a commit after the crash",
            what,
            self.inner.commit(run_id, fence, events, update),
        ))
    }

    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(async move {
            self.refuse_if_crashed("claiming the run")?;
            self.inner.claim(run_id, lease).await
        })
    }

    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<StoredRun>, StoreError>> {
        Box::pin(async move {
            self.refuse_if_crashed("claiming runs")?;
            self.inner.claim_next(lease, workflows, skip, limit).await
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            self.refuse_if_crashed("renewing leases")?;
            self.inner.renew(lease, runs).await
        })
    }

    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.refuse_if_crashed("releasing the run")?;
            self.inner.release(run_id, fence).await
        })
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        self.inner.load(run_id)
    }

    fn pending(&self) -> BoxFuture<'_, Result<Found<RunRecord>, StoreError>> {
        self.inner.pending()
    }

    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<RunRecord>, StoreError>> {
        self.inner.list(status, workflow, limit)
    }

    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            self.refuse_if_crashed("pruning ended runs")?;
            self.inner.prune(ended_before_micros, limit).await
        })
    }

    fn suspend<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        suspension: &'a Suspension,
    ) -> BoxFuture<'a, Result<Option<Wake>, StoreError>> {
        // A suspension is a commit point: its events are written with it.
        let mut what = describe(events, None);
        what.push_str(", the run suspended");
        Box::pin(self.commit_point(
            "a suspension after the crash",
            what,
            self.inner.suspend(run_id, fence, events, suspension),
        ))
    }

    fn deliver<'a>(
        &'a self,
        run_id: RunId,
        workflow: &'a str,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivery, StoreError>> {
        self.inner.deliver(run_id, workflow, message)
    }

    fn message<'a>(
        &'a self,
        run_id: RunId,
        event: &'a str,
        index: u32,
    ) -> BoxFuture<'a, Result<Option<Message>, StoreError>> {
        Box::pin(async move {
            self.refuse_if_crashed("reading the run's inbox")?;
            self.inner.message(run_id, event, index).await
        })
    }

    fn cancel<'a>(
        &'a self,
        run_id: RunId,
        request: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancelling, StoreError>> {
        self.inner.cancel(run_id, request)
    }

    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<Vec<(RunId, CancelRequest)>, StoreError>> {
        self.inner.cancel_requests(runs)
    }

    fn list_page<'a>(
        &'a self,
        filter: &'a crate::store::RunFilter,
    ) -> BoxFuture<'a, Result<crate::store::RunPage, StoreError>> {
        // Reading, as `list`: what an operator sees of a crashed process's store.
        self.inner.list_page(filter)
    }
}

/// What a commit records, in words a user knows: "step `reserve` completed, handler `review`
/// of hook `review` completed".
fn describe(events: &[Event], update: Option<&RunUpdate>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for event in events {
        let part = match &event.kind {
            EventKind::StepCompleted { step, .. } => format!("step `{step}` completed"),
            EventKind::StepFailed { step, .. } => format!("step `{step}` failed"),
            EventKind::HookHandlerCompleted { hook, handler, .. } => {
                format!("handler `{}` of hook `{hook}` completed", short(handler))
            }
            EventKind::HookHandlerFailed { hook, handler, .. } => {
                format!("handler `{}` of hook `{hook}` failed", short(handler))
            }
            EventKind::CompensationCompleted { step, .. } => {
                format!("compensation of step `{step}` completed")
            }
            EventKind::CompensationFailed { step, .. } => {
                format!("compensation of step `{step}` failed")
            }
            EventKind::NestedEnded {
                workflow,
                completed,
                ..
            } => format!(
                "nested workflow `{workflow}` {}",
                if *completed { "completed" } else { "failed" }
            ),
            EventKind::RunFailed { .. } => "the run failed".to_owned(),
            EventKind::JobsDispatched { count } => {
                format!(
                    "{count} job{} dispatched",
                    if *count == 1 { "" } else { "s" }
                )
            }
            EventKind::RunParked { .. } => "the run parked".to_owned(),
            EventKind::RunEnded { status } => format!("the run ended {status}"),
            _ => continue,
        };
        parts.push(part);
    }
    if parts.is_empty() {
        return match update {
            Some(update) => format!("the run's status set to {}", update.status.as_str()),
            None => format!("{} journal events", events.len()),
        };
    }
    parts.join(", ")
}

/// A handler's name without its module path.
fn short(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}
