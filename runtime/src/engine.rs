//! The engine: holds hooks, services and the job dispatcher, and runs workflows.

use std::any::Any;
use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tracing::Instrument;

use crate::actor::{Actor, Origin};
use crate::bag::Bag;
use crate::compensation::{CompensationFailure, Scope, compensate};
use crate::context::{RunContext, RunId, WorkflowContext};
use crate::error::RunError;
use crate::hook::registry::Registry;
use crate::hook::{After, Fire, HookPoint, Hooks};
use crate::jobs::JobDispatcher;
use crate::journal::{EventKind, Journal};
use crate::outcome::{Outcome, RunStatus};
use crate::panic::CatchUnwind;
use crate::run::{RunShared, RunState};
use crate::services::Services;
use crate::step::InjectedFault;
use crate::testing::FaultPlan;
use crate::workflow::Workflow;

/// Runs workflows with the hooks, services and job dispatcher it was built with.
///
/// Cheap to clone (an `Arc`); share one per application.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) registry: Registry,
    pub(crate) services: Services,
    pub(crate) dispatcher: Option<Box<dyn JobDispatcher>>,
    pub(crate) record_data: bool,
    pub(crate) faults: Option<FaultPlan>,
}

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// An engine with no hooks, no services and no job dispatcher.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Runs workflow `W` with `input` and default [`RunOptions`], to its end.
    pub async fn run<W: Workflow>(&self, input: W::Input) -> Outcome<W> {
        self.run_with::<W>(input, RunOptions::default()).await
    }

    /// Runs workflow `W` with `input` and `options` (request id, actor, origin, additional
    /// data), to its end: completed, or failed and compensated.
    pub async fn run_with<W: Workflow>(&self, input: W::Input, options: RunOptions) -> Outcome<W> {
        let run_id = RunId::new();
        let span = tracing::info_span!("workflow", workflow = W::META.name(), %run_id);
        let shared = Arc::new(RunShared {
            engine: Arc::clone(&self.inner),
            run_id,
            options,
            state: Mutex::new(RunState {
                journal: Journal::with_capacity(16),
                ..RunState::default()
            }),
            bag: Bag::default(),
            next_position: AtomicU32::new(0),
            last_frame: AtomicU32::new(0),
            span: span.clone(),
        });
        let rc = RunContext {
            run: shared,
            workflow: W::META.name(),
        };
        let ctx = WorkflowContext::for_workflow::<W>(rc, 0);
        ctx.shared().record(EventKind::RunStarted {
            workflow: W::META.name().into(),
            run_id,
        });
        drive::<W>(&ctx, input).instrument(span).await
    }

    /// Starts a run of `W` on the current tokio runtime and returns its handle. The run goes
    /// on to its end (completed, or failed and compensated) even if the handle is dropped.
    ///
    /// # Errors
    /// [`SpawnError`] when called outside a tokio runtime.
    pub fn spawn<W: Workflow>(
        &self,
        input: W::Input,
        options: RunOptions,
    ) -> Result<tokio::task::JoinHandle<Outcome<W>>, SpawnError>
    where
        W::Output: Send,
        W::Error: Send,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| SpawnError {
            workflow: W::META.name(),
        })?;
        let engine = self.clone();
        Ok(handle.spawn(async move { engine.run_with::<W>(input, options).await }))
    }

    /// The engine's service of type `T`, as steps and hooks get it with `ctx.service::<T>()`.
    ///
    /// # Errors
    /// [`MissingService`](crate::MissingService), naming `T`, when there is none.
    pub fn service<T: Any + Send + Sync>(&self) -> Result<&T, crate::error::MissingService> {
        self.inner.services.get::<T>()
    }

    /// How many hook handlers the engine holds, on all workflows.
    pub fn handler_count(&self) -> usize {
        self.inner.registry.handler_count()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plugins: Vec<&str> = self.inner.registry.plugins().iter().map(|p| &**p).collect();
        f.debug_struct("Engine")
            .field("handlers", &self.inner.registry.handler_count())
            .field("plugins", &plugins)
            .field("services", &self.inner.services.len())
            .field("record_data", &self.inner.record_data)
            .finish()
    }
}

/// Runs the body, then compensates or dispatches, and gathers the outcome.
async fn drive<W: Workflow>(ctx: &WorkflowContext, input: W::Input) -> Outcome<W> {
    let run = ctx.shared();
    let body = CatchUnwind::new(W::execute(ctx, input)).await;
    let result = match body {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(err)) => Err(RunError::Failed(err)),
        Err(panic) => {
            let step = crate::lock(&run.state).panicked_step.take();
            let payload = panic.into_payload();
            let error = match payload.downcast::<InjectedFault>() {
                Ok(fault) => RunError::Injected {
                    step: step.unwrap_or_default().to_owned(),
                    message: fault.message,
                },
                Err(payload) => {
                    let message = crate::panic::message_of(&*payload);
                    // Let the payload go now: dropping it later could itself panic.
                    drop(payload);
                    tracing::error!(step, %message, "hookflow: workflow panicked");
                    RunError::Panicked {
                        step: step.map(str::to_owned),
                        message,
                    }
                }
            };
            Err(error)
        }
    };

    // The cause is rendered now: the error itself must not be held across an await (it
    // need not be `Sync`).
    let cause = result.as_ref().err().map(ToString::to_string);
    let status = match cause {
        None => RunStatus::Completed,
        Some(cause) => {
            compensate(ctx, Scope::All).await;
            let failed = crate::lock(&run.state).compensation_failures.clone();
            if failed.is_empty() {
                RunStatus::Compensated
            } else {
                let failure = CompensationFailure {
                    workflow: W::META.name().to_owned(),
                    run_id: run.run_id,
                    cause,
                    failed,
                };
                let index = u16::try_from(W::META.hooks().len()).unwrap_or(u16::MAX);
                let point = HookPoint::<W, After<CompensationFailure>>::__new(
                    index,
                    "on_compensation_failed",
                );
                <After<CompensationFailure> as Fire<W>>::fire(point, ctx, &failure).await;
                RunStatus::CompensationFailed
            }
        }
    };

    let jobs = std::mem::take(&mut crate::lock(&run.state).jobs);
    let count = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
    let jobs = if status == RunStatus::Completed {
        if !jobs.is_empty() {
            run.record(EventKind::JobsDispatched { count });
            if let Some(dispatcher) = &run.engine.dispatcher {
                for job in &jobs {
                    dispatcher.dispatch(job.clone());
                }
            }
        }
        jobs
    } else {
        if !jobs.is_empty() {
            run.record(EventKind::JobsDiscarded { count });
        }
        Vec::new()
    };

    let mut state = crate::lock(&run.state);
    state.journal.push(EventKind::RunEnded { status });
    Outcome {
        run_id: run.run_id,
        status,
        result,
        hook_errors: std::mem::take(&mut state.hook_errors),
        compensation_failures: std::mem::take(&mut state.compensation_failures),
        best_effort_failures: std::mem::take(&mut state.best_effort_failures),
        jobs,
        journal: std::mem::take(&mut state.journal),
    }
}

/// Builds an [`Engine`].
///
/// ```
/// # use hookflow_runtime::{Engine, Hooks};
/// struct Db;
/// let engine = Engine::builder()
///     .hooks(Hooks::new())
///     .service(Db)
///     .jobs(|job: hookflow_runtime::Job| println!("enqueue {}", job.name()))
///     .build();
/// # let _ = engine;
/// ```
#[derive(Default)]
pub struct EngineBuilder {
    hooks: Hooks,
    services: Services,
    dispatcher: Option<Box<dyn JobDispatcher>>,
    record_data: bool,
    faults: Option<FaultPlan>,
}

impl EngineBuilder {
    /// The hook handlers (the application's and its plugins'). Replaces any set before.
    #[must_use]
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Adds a service, resolved in steps and hooks with `ctx.service::<T>()`. One per type: a
    /// second service of the same type replaces the first.
    #[must_use]
    pub fn service<T: Any + Send + Sync>(mut self, service: T) -> Self {
        self.services.insert(service);
        self
    }

    /// Where the jobs of completed runs go. Without one, they are only listed in the
    /// outcome ([`Outcome::jobs`]).
    #[must_use]
    pub fn jobs(mut self, dispatcher: impl JobDispatcher) -> Self {
        self.dispatcher = Some(Box::new(dispatcher));
        self
    }

    /// Whether the journal records step outputs and compensation data as JSON (off by
    /// default: the in-memory path never serializes them).
    #[must_use]
    pub fn record_data(mut self, record: bool) -> Self {
        self.record_data = record;
        self
    }

    /// Injects faults into steps, hook handlers and compensations: for tests (see
    /// [`testing`](crate::testing)).
    #[must_use]
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.faults = (!plan.is_empty()).then_some(plan);
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                registry: self.hooks.freeze(),
                services: self.services,
                dispatcher: self.dispatcher,
                record_data: self.record_data,
                faults: self.faults,
            }),
        }
    }
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("hooks", &self.hooks)
            .field("services", &self.services.len())
            .field("record_data", &self.record_data)
            .finish_non_exhaustive()
    }
}

/// [`Engine::spawn`] was called outside a tokio runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot spawn a run of `{workflow}`: not inside a tokio runtime")]
pub struct SpawnError {
    workflow: &'static str,
}

/// Who, where from and with what additional data a run starts.
///
/// ```
/// # use hookflow_runtime::{Actor, Origin, RunOptions};
/// let options = RunOptions::new()
///     .request_id("req_123")
///     .actor(Actor::user("usr_1"))
///     .origin(Origin::Api)
///     .additional_data(serde_json::json!({ "loyalty": { "points": 120 } }));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub(crate) request_id: Option<String>,
    pub(crate) actor: Option<Actor>,
    pub(crate) origin: Origin,
    pub(crate) additional_data: Option<serde_json::Value>,
}

impl RunOptions {
    /// Defaults: no request id, no actor, [`Origin::Local`], no additional data.
    pub fn new() -> Self {
        Self::default()
    }
    /// The request id (e.g. an HTTP request's `x-request-id`).
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
    /// Who starts the run.
    #[must_use]
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }
    /// Where the run starts from.
    #[must_use]
    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }
    /// Extra data for hooks and steps, read with `ctx.additional_data::<T>()`.
    #[must_use]
    pub fn additional_data(mut self, data: serde_json::Value) -> Self {
        self.additional_data = Some(data);
        self
    }
    /// Extra data from any serializable value.
    ///
    /// # Errors
    /// When `data` cannot be serialized to JSON.
    pub fn additional_data_from(self, data: &impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(self.additional_data(serde_json::to_value(data)?))
    }
}
