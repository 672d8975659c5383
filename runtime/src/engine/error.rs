//! Why an engine could not start, enqueue or resume a run.

use crate::types::{NoStore, Rejection, RunId, StoreError};

/// Why [`Engine::resume`](crate::Engine::resume) could not resume a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The run's workflow, at its version, is not registered on this engine
    /// ([`EngineBuilder::workflow`](crate::EngineBuilder::workflow)).
    #[error(
        "unknown workflow `{workflow}` version {version}: register it with `Engine::builder().workflow::<W>()`"
    )]
    UnknownWorkflow {
        /// The stored workflow name.
        workflow: String,
        /// The stored version.
        version: u32,
    },
    /// Another worker holds the run's lease, and it has not lapsed: that worker is running
    /// it (resume it after the lease lapses, if that worker died).
    #[error("run {run_id} is held by worker `{owner}` until {until_micros} µs since the epoch")]
    Held {
        /// The run.
        run_id: RunId,
        /// The worker holding it.
        owner: String,
        /// Until when its lease holds, in microseconds since the Unix epoch.
        until_micros: u64,
    },
    /// The run is already running in this engine.
    #[error("run {run_id} is already running here (worker `{owner}`)")]
    InFlight {
        /// The run.
        run_id: RunId,
        /// This engine's worker id.
        owner: String,
    },
    /// The engine has no store to resume from.
    #[error(transparent)]
    NoStore(#[from] NoStore),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The run's record or journal cannot be read (corrupt, or written by a hookflow whose
    /// records this one cannot read): it was quarantined, parked in the store with the
    /// reason in its `error`. Repair the row, then resume it again.
    #[error("run {run_id} cannot be read and was quarantined (parked): {reason}")]
    Quarantined {
        /// The run.
        run_id: RunId,
        /// Why it cannot be read.
        reason: String,
    },
}

/// Why [`Engine::enqueue`](crate::Engine::enqueue) could not record a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueError {
    /// Enqueued runs live in a store, and the engine has none.
    #[error("cannot enqueue a run of `{workflow}`: {source}")]
    NoStore {
        /// The workflow.
        workflow: &'static str,
        /// That the engine has no store.
        source: NoStore,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run was refused, and nothing was recorded: its input or additional data cannot be
    /// recorded, its idempotency key is held by a run with another input, or its run id is
    /// taken.
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

/// [`Engine::spawn`](crate::Engine::spawn) was called outside a tokio runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot spawn a run of `{workflow}`: not inside a tokio runtime")]
pub struct SpawnError {
    pub(super) workflow: &'static str,
}

/// Why [`Engine::prune`](crate::Engine::prune) could not prune.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// The engine has no store: its runs are not kept, there is nothing to prune.
    #[error("cannot prune ended runs: {0}")]
    NoStore(#[from] NoStore),
    /// The store failed (the batches pruned before stay pruned).
    #[error(transparent)]
    Store(#[from] StoreError),
}
