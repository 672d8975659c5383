//! Durable runs: committing the journal to a [`Store`], and resuming by replay.
//!
//! The replay model (as Temporal, Restate and DBOS do it): the workflow body is plain Rust
//! and is executed again on resume. Each step call first looks in the journal: a step that
//! completed returns its recorded output without running, and its compensation goes back on
//! the stack with its recorded data (unless it was already compensated). The step that was in
//! flight runs again, with the same `ctx.idempotency_key()`. A run that was compensating
//! re-executes its body only up to where it failed, then goes on compensating what is left.
//! If the body calls another step than the journal recorded at a position, the run is parked
//! with a [`ReplayError`], not corrupted.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::context::RunId;
use crate::journal::{Event, EventKind};
use crate::run::RunShared;
use crate::store::{RunUpdate, Store, StoreError};

/// Why a resumed run could not be replayed. The run is parked, with this error, and can be
/// resumed after a fix ([`Engine::resume`](crate::Engine::resume)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The body called another step than the journal recorded at this position: the
    /// workflow's code changed, or it is not deterministic.
    #[error(
        "replay mismatch at step #{position}: the journal recorded `{recorded}`, the workflow now calls `{called}`"
    )]
    Mismatch {
        /// The step's position.
        position: u32,
        /// The step the journal recorded there.
        recorded: String,
        /// The step the body called.
        called: String,
    },
    /// A recorded output or compensation data no longer deserializes as the step's type.
    #[error("the recorded data of step `{step}` #{position} does not match its type: {message}")]
    Corrupt {
        /// The step.
        step: String,
        /// Its position.
        position: u32,
        /// The deserialization error.
        message: String,
    },
    /// The recorded input no longer deserializes as the workflow's input type.
    #[error("the recorded input does not match the workflow's input type: {0}")]
    Input(String),
}

/// The durable side of a run: its store, how much of its journal is committed, and what a
/// resumed run replays.
pub(crate) struct Durable {
    pub(crate) store: Arc<dyn Store>,
    /// How many events of the journal are in the store. Its lock also orders the commits of
    /// concurrent branches.
    pub(crate) persisted: tokio::sync::Mutex<usize>,
    pub(crate) replay: Option<Replay>,
    /// The lease generation this process holds the run under: every commit carries it.
    pub(crate) fence: u64,
}

/// What a resumed run's journal says about each step position.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) steps: HashMap<u32, Recorded>,
    /// The recorded failure, if the run had failed and was compensating.
    pub(crate) failure: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) step: String,
    pub(crate) completed: bool,
    pub(crate) output: Option<Value>,
    pub(crate) compensation: Option<Value>,
    pub(crate) compensated: bool,
}

impl Replay {
    pub(crate) fn from_journal(events: &[Event]) -> Self {
        let mut replay = Replay::default();
        for event in events {
            match &event.kind {
                EventKind::StepStarted { step, position } => {
                    replay.steps.insert(
                        *position,
                        Recorded {
                            step: step.to_string(),
                            completed: false,
                            output: None,
                            compensation: None,
                            compensated: false,
                        },
                    );
                }
                EventKind::StepCompleted {
                    position,
                    output,
                    compensation,
                    ..
                } => {
                    if let Some(r) = replay.steps.get_mut(position) {
                        r.completed = true;
                        r.output.clone_from(output);
                        r.compensation.clone_from(compensation);
                    }
                }
                EventKind::CompensationCompleted { position, .. }
                | EventKind::CompensationFailed { position, .. } => {
                    if let Some(r) = replay.steps.get_mut(position) {
                        r.compensated = true;
                    }
                }
                EventKind::RunFailed { error } => replay.failure = Some(error.clone()),
                _ => {}
            }
        }
        replay
    }
}

/// What unwinds a workflow body when its run must stop without running further user code.
pub(crate) enum Halt {
    /// A step's completion could not be committed: the run stops, still `running` in the
    /// store, and the next resume picks it up.
    Store(StoreError),
    /// The body does not match its journal, or the journal cannot be read: park the run.
    Replay(ReplayError),
    /// A run resumed while compensating reached the point where it had failed.
    Failed(String),
}

/// Commits the journal's new events, with `update`. Without a store, it is ready at once,
/// and its future is one pointer wide (the in-memory path carries no store state).
pub(crate) fn commit(run: &RunShared, update: Option<RunUpdate>) -> Commit<'_> {
    match &run.durable {
        None => Commit(None),
        Some(durable) => Commit(Some(Box::pin(commit_to(run, durable, update)))),
    }
}

/// The future of [`commit`].
pub(crate) struct Commit<'a>(Option<crate::BoxFuture<'a, Result<(), StoreError>>>);

impl std::future::Future for Commit<'_> {
    type Output = Result<(), StoreError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            None => std::task::Poll::Ready(Ok(())),
            Some(future) => future.as_mut().poll(cx),
        }
    }
}

async fn commit_to(
    run: &RunShared,
    durable: &Durable,
    update: Option<RunUpdate>,
) -> Result<(), StoreError> {
    let mut persisted = durable.persisted.lock().await;
    let events: Vec<Event> = {
        let state = crate::lock(&run.state);
        state
            .journal
            .events()
            .get(*persisted..)
            .map(<[Event]>::to_vec)
            .unwrap_or_default()
    };
    if events.is_empty() && update.is_none() {
        return Ok(());
    }
    durable
        .store
        .commit(run.run_id, durable.fence, &events, update)
        .await?;
    *persisted += events.len();
    Ok(())
}

/// Unwinds the workflow body with `halt`.
pub(crate) fn halt(halt: Halt) -> ! {
    std::panic::resume_unwind(Box::new(halt))
}

/// The run ids in flight in this process, so that an idempotent start of a run that is not
/// in flight anywhere here resumes it instead of waiting forever.
#[derive(Default)]
pub(crate) struct InFlight {
    runs: std::sync::Mutex<std::collections::HashSet<RunId>>,
}

impl InFlight {
    pub(crate) fn enter(self: &Arc<Self>, run_id: RunId) -> Option<InFlightGuard> {
        crate::lock(&self.runs)
            .insert(run_id)
            .then(|| InFlightGuard {
                set: Arc::clone(self),
                run_id,
            })
    }
    pub(crate) fn contains(&self, run_id: RunId) -> bool {
        crate::lock(&self.runs).contains(&run_id)
    }
    pub(crate) fn ids(&self) -> Vec<RunId> {
        crate::lock(&self.runs).iter().copied().collect()
    }
}

pub(crate) struct InFlightGuard {
    set: Arc<InFlight>,
    run_id: RunId,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        crate::lock(&self.set.runs).remove(&self.run_id);
    }
}
