//! The runtime of [hookflow](https://docs.rs/hookflow): it executes the code that the
//! `#[workflow]` and `#[step]` macros generate. Depend on the `hookflow` crate, which
//! re-exports this one with the macros.
//!
//! A run goes one way: the [`Engine`] takes the input, the workflow body calls steps and
//! fires hooks ([`hook`]), each completed step pushes its compensation, and the run ends as an
//! [`Outcome`] with its [`Journal`]: completed, or failed with the completed steps undone in
//! reverse order.
//!
//! # Layers
//!
//! Each module imports only from its own layer or the layers below (`tests/layers.rs`
//! checks it, with this map):
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 1 | `types` | ids, the clock, statuses, slots, options, metadata, errors and failures as data, bag, services, jobs, panic capture, the fault seam |
//! | 2 | `journal`, `store`, `bus`, `metrics` | events and journals; the `Store` contract and its implementations; the event channel; the metrics read from events (feature `metrics`) |
//! | 3 | `hook`, `context`, `workflow` | hook registration (points, handler traits, registry, plugins); the contexts handlers and steps receive, the run state behind them and the environment a run is given; the `Workflow` trait |
//! | 4 | `run` | run execution: body, steps, hook firing, compensation, parallel branches, nested workflows, replay, commits, halting, the outcome |
//! | 5 | `engine`, `worker` | the engine (handle, builder, starts, resume, enqueue, leases) and the worker |
//! | 6 | `view`, `testing` | diagrams, Mermaid rendering, subscriptions; test tools (feature `testing`) |
//! | 7 | `check`, `__private` | what the macros check of user code (public, so that compile errors name documented items); what generated code names |
//! | 8 | `lib` | the crate root: declares the modules, re-exports the public API |

#![warn(missing_docs, unreachable_pub)]

// Layer 1
mod types;
// Layer 2
mod bus;
pub mod journal;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod store;
// Layer 3
mod context;
pub mod hook;
mod workflow;
// Layer 4
mod run;
// Layer 5
mod engine;
mod worker;
// Layer 6
#[cfg(feature = "testing")]
pub mod testing;
mod view;
// Layer 7
#[doc(hidden)]
pub mod __private;
pub mod check;

pub use context::{
    Bag, CompensateFn, HookContext, Jobs, RunContext, StepContext, TypedContext, WorkflowContext,
};
pub use engine::{
    Cancel, CancelError, DEFAULT_LEASE, Engine, EngineBuilder, EnqueueError, PruneError,
    ResumeError, ResumeReport, SendError, Sent, SpawnError,
};
pub use engine::{
    FireReport, MAX_SCHEDULE_NAME, ScheduleError, ScheduleOptions, Tick, TickAction, schedule_key,
};
pub use hook::{After, Before, HookPoint, Hooks, Plugin, Registrar, Slot, StepHook};
pub use journal::{Event, EventKind, Journal, WaitOutcome};
pub use run::{Outcome, TxContext};
pub use store::{
    Claim, Found, Lease, MemoryStore, Retention, RunRecord, Store, StoreError, StoredRun,
    StoredStatus, Unreadable,
};
pub use store::{Transaction, TransactionError};
pub use types::{
    Actor, ActorKind, AdditionalDataError, BagValue, BestEffortFailure, BodyCall, BoxError,
    CancelRequest, CompensationFailure, FailedCompensation, HookError, HookFailure, HookKind,
    HookMeta, Job, JobDispatcher, MissingService, NoStore, Origin, PanicError, ReplayError,
    RetryPolicy, RunError, RunId, RunOptions, RunStatus, StepData, StepFuture, StepMeta,
    StepResponse, StepTimeout, WaitError, WorkflowMeta,
};
pub use types::{CatchUp, Overlap, Spec, SpecError};
pub use types::{DEFAULT_MAX_RECORD_BYTES, MAX_DEPTH, RecordError, RecordedJson, Rejection};
pub use view::RunEvents;
pub use worker::{Worker, WorkerError, WorkerHandle, WorkerReport};
pub use workflow::{EventPoint, Workflow};
// Operator actions and run lookups.
pub use engine::{LookupError, Retried, RunSummary};
pub use journal::CurrentStep;
pub use store::{ForkError, RetryError, RunCursor, RunFilter, RunPage};
// `after<I, O>` hooks and handler time limits.
pub use hook::AfterResult;
pub use types::HandlerTimeout;
// Typed hook firing, declared additional data, where a run failed.
pub use context::HookRefusal;
pub use run::FailedAt;
pub use workflow::DeclaredData;

/// Compensations: the shape of a compensation function, and what a run reports of failed
/// ones.
pub mod compensation {
    pub use crate::context::CompensateFn;
    pub use crate::types::{CompensationFailure, FailedCompensation};
}
