//! The runtime of [hookflow](https://docs.rs/hookflow): it executes the code that the
//! `#[workflow]` and `#[step]` macros generate. Depend on the `hookflow` crate, which
//! re-exports this one with the macros.
//!
//! A run goes one way: the [`Engine`] takes the input, the workflow body calls steps and
//! fires hooks ([`hook`]), each completed step pushes its compensation, and the run ends as an
//! [`Outcome`] with its [`Journal`]: completed, or failed with the completed steps undone in
//! reverse order ([`compensation`]).

#![warn(missing_docs, unreachable_pub)]

mod actor;
mod bag;
pub mod compensation;
mod context;
mod diagram;
mod durable;
mod engine;
mod error;
pub mod hook;
mod jobs;
pub mod journal;
mod lease;
mod nested;
mod outcome;
mod panic;
mod parallel;
mod policy;
mod run;
mod services;
mod step;
pub mod store;
mod subscribe;
pub mod testing;
mod worker;
mod workflow;

#[doc(hidden)]
pub mod __private;

pub use actor::{Actor, ActorKind, Origin};
pub use bag::Bag;
pub use compensation::{CompensateFn, CompensationFailure, FailedCompensation};
pub use context::{HookContext, RunContext, RunId, StepContext, WorkflowContext};
pub use durable::ReplayError;
pub use engine::{
    Engine, EngineBuilder, EnqueueError, ResumeError, ResumeReport, RunOptions, SpawnError,
};
pub use error::{AdditionalDataError, BoxError, HookError, MissingService, PanicError, RunError};
pub use hook::{After, Before, HookPoint, Hooks, Plugin, Registrar, Slot, StepHook};
pub use jobs::{Job, JobDispatcher, Jobs};
pub use journal::{Event, EventKind, Journal};
pub use lease::DEFAULT_LEASE;
pub use outcome::{HookFailure, Outcome, RunStatus};
pub use policy::{RetryPolicy, StepTimeout};
pub use step::{BestEffortFailure, StepData, StepFuture, StepMeta, StepResponse};
pub use store::{Claim, Lease, MemoryStore, RunRecord, Store, StoreError, StoredRun, StoredStatus};
pub use subscribe::RunEvents;
pub use worker::{Worker, WorkerError, WorkerHandle, WorkerReport};
pub use workflow::{BodyCall, HookKind, HookMeta, Workflow, WorkflowMeta};

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A boxed, `Send` future.
pub(crate) use store::BoxFuture;

/// Locks a mutex of the runtime. No lock is held while user code runs, so a poisoned lock
/// only means a panic elsewhere was caught; the data is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
