//! The contexts user code receives: [`WorkflowContext`] in the workflow body,
//! [`StepContext`] in steps and compensations, [`HookContext`] in `before`/`after` handlers.
//! All three dereference to [`RunContext`], the run's shared view.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, Origin};
use crate::bag::Bag;
use crate::error::{AdditionalDataError, MissingService};
use crate::hook::{Fire, HookPoint, Slot};
use crate::jobs::Jobs;
use crate::run::RunShared;
use crate::workflow::Workflow;

/// A run's unique id (a UUID v7: ordered by start time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(uuid::Uuid);

impl RunId {
    pub(crate) fn new() -> Self {
        RunId(uuid::Uuid::now_v7())
    }
    /// The id as a UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What every context of a run can reach: ids, actor, origin, additional data, the bag,
/// services, jobs and the run's tracing span.
#[derive(Clone)]
pub struct RunContext {
    pub(crate) run: Arc<RunShared>,
}

impl RunContext {
    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.run.run_id
    }

    /// The workflow's name.
    pub fn workflow(&self) -> &'static str {
        self.run.workflow
    }

    /// The request id the run was started with, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.run.options.request_id.as_deref()
    }

    /// Who started the run, if known.
    pub fn actor(&self) -> Option<&Actor> {
        self.run.options.actor.as_ref()
    }

    /// Where the run was started from.
    pub fn origin(&self) -> Origin {
        self.run.options.origin
    }

    /// The additional data as given at start (JSON), if any.
    pub fn raw_additional_data(&self) -> Option<&serde_json::Value> {
        self.run.options.additional_data.as_ref()
    }

    /// The additional data, deserialized as `T`.
    ///
    /// # Errors
    /// [`AdditionalDataError::Missing`] when the run has none, and
    /// [`AdditionalDataError::Invalid`] naming the bad field's path (`items[1].qty`) when it does
    /// not match `T`.
    pub fn additional_data<T: DeserializeOwned>(&self) -> Result<T, AdditionalDataError> {
        let type_name = std::any::type_name::<T>();
        let value = self
            .raw_additional_data()
            .ok_or(AdditionalDataError::Missing { type_name })?;
        serde_path_to_error::deserialize(value).map_err(|err| AdditionalDataError::Invalid {
            type_name,
            path: err.path().to_string(),
            message: err.into_inner().to_string(),
        })
    }

    /// The bag of typed values shared by this run's steps and hooks.
    pub fn bag(&self) -> &Bag {
        &self.run.bag
    }

    /// The engine's service of type `T`.
    ///
    /// # Errors
    /// [`MissingService`], naming `T`, when the engine has no such service.
    pub fn service<T: Any + Send + Sync>(&self) -> Result<&T, MissingService> {
        self.run.engine.services.get::<T>()
    }

    /// The run's background jobs: dispatched only if the run completes.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs { run: &self.run }
    }

    /// The run's tracing span.
    pub fn span(&self) -> &tracing::Span {
        &self.run.span
    }
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("workflow", &self.run.workflow)
            .field("run_id", &self.run.run_id)
            .finish_non_exhaustive()
    }
}

/// The context of a workflow body: call steps with it and fire the workflow's hooks.
#[derive(Debug)]
pub struct WorkflowContext {
    pub(crate) rc: RunContext,
}

impl WorkflowContext {
    /// Fires a hook point of the workflow, such as `Checkout::VALIDATE`.
    ///
    /// What it takes and returns depends on the hook's kind:
    ///
    /// | kind | payload | returns |
    /// |---|---|---|
    /// | `before<T>` | `T` | `Result<T, HookError>`: the data after every handler |
    /// | `after<T>` | `&T` | `()`: handler errors are recorded, never returned |
    /// | `step<T, R>` | `T` (cloned per handler) | `Result<Vec<R>, HookError>`: one result per handler |
    ///
    /// A hook point with no handler returns at once without allocating.
    pub fn hook<'a, W, K>(
        &'a self,
        point: HookPoint<W, K>,
        payload: K::Payload<'a>,
    ) -> impl Future<Output = K::Output> + Send + 'a
    where
        W: Workflow,
        K: Fire<W>,
    {
        K::fire(point, self, payload)
    }

    pub(crate) fn shared(&self) -> &RunShared {
        &self.rc.run
    }
}

impl Deref for WorkflowContext {
    type Target = RunContext;
    fn deref(&self) -> &RunContext {
        &self.rc
    }
}

/// The context of a step or a compensation.
#[derive(Debug)]
pub struct StepContext {
    pub(crate) rc: RunContext,
    pub(crate) step: &'static str,
    pub(crate) position: u32,
    pub(crate) compensating: bool,
}

impl StepContext {
    /// The step's name.
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// The step's position in the run (0 for the first step started).
    pub fn position(&self) -> u32 {
        self.position
    }

    /// Whether this context is a compensation's (undoing the step) rather than the step's.
    pub fn is_compensating(&self) -> bool {
        self.compensating
    }

    /// A key that is the same every time this step of this run executes: `"{run_id}:{position}"`.
    /// Hand it to external systems (a payment provider) so that a retried call is applied once.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.rc.run.run_id, self.position)
    }
}

impl Deref for StepContext {
    type Target = RunContext;
    fn deref(&self) -> &RunContext {
        &self.rc
    }
}

/// The context of a `before` or `after` hook handler.
#[derive(Debug)]
pub struct HookContext {
    pub(crate) rc: RunContext,
    pub(crate) hook: &'static str,
    pub(crate) slot: Slot,
    pub(crate) handler: &'static str,
}

impl HookContext {
    /// The hook's name.
    pub fn hook(&self) -> &'static str {
        self.hook
    }
    /// The slot this handler was registered in.
    pub fn slot(&self) -> Slot {
        self.slot
    }
    /// This handler's name.
    pub fn handler(&self) -> &'static str {
        self.handler
    }
}

impl Deref for HookContext {
    type Target = RunContext;
    fn deref(&self) -> &RunContext {
        &self.rc
    }
}
