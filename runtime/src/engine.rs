//! The engine: holds hooks, services and the job dispatcher, and runs workflows.

use std::any::Any;
use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tracing::Instrument;

use crate::actor::{Actor, Origin};
use crate::bag::Bag;
use std::collections::HashMap;
use std::time::Duration;

use crate::compensation::{CompensationFailure, Scope, compensate};
use crate::context::{RunContext, RunId, WorkflowContext};
use crate::durable::{self, Durable, Halt, InFlight, InFlightGuard, Replay, ReplayError};
use crate::error::RunError;
use crate::hook::registry::Registry;
use crate::hook::{After, Fire, HookPoint, Hooks, Slot};
use crate::jobs::JobDispatcher;
use crate::journal::Event;
use crate::journal::{EventKind, Journal};
use crate::lease::Heartbeat;
use crate::outcome::{Outcome, RunStatus};
use crate::panic::CatchUnwind;
use crate::run::{RunShared, RunState};
use crate::services::Services;
use crate::step::InjectedFault;
use crate::store::{Claim, Created, Lease, RunRecord, RunUpdate, Store, StoreError, StoredStatus};
use crate::subscribe::{Bus, RunEvents};
use crate::testing::FaultPlan;
use crate::workflow::Workflow;

/// Runs workflows with the hooks, services and job dispatcher it was built with.
///
/// Cheap to clone (an `Arc`); share one per application.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) registry: Registry,
    pub(crate) services: Services,
    pub(crate) dispatcher: Option<Box<dyn JobDispatcher>>,
    pub(crate) record_data: bool,
    pub(crate) faults: Option<FaultPlan>,
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) resumers: HashMap<(String, u32), Resumer>,
    pub(crate) in_flight: Arc<InFlight>,
    pub(crate) bus: Bus,
    /// The lease this engine's runs are advanced under (its worker id and duration).
    pub(crate) lease: Lease,
    /// Started with the first durable run.
    pub(crate) heartbeat: std::sync::OnceLock<Option<Heartbeat>>,
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
    /// data, idempotency key), to its end: completed, or failed and compensated.
    ///
    /// With a store, the run is recorded before it starts and each step's completion is
    /// committed before the next step starts. A start with an idempotency key that the store
    /// knows returns that run's outcome instead of running again (waiting for it if it is in
    /// flight here, resuming it if it was interrupted).
    pub async fn run_with<W: Workflow>(
        &self,
        input: W::Input,
        mut options: RunOptions,
    ) -> Outcome<W> {
        let run_id = options.run_id.take().unwrap_or_else(RunId::new);
        let mut _in_flight = None;
        // One call to `execute` below, whatever the path: its future is inlined once in this
        // one, and the rare paths are boxed, so that a run's future stays small.
        let durable = match self.inner.store.clone() {
            None => None,
            Some(store) => {
                let record = match new_record::<W>(run_id, &input, &options) {
                    Ok(record) => record,
                    Err(err) => {
                        return Outcome::stopped(run_id, RunStatus::Interrupted, err.into());
                    }
                };
                _in_flight = self.inner.in_flight.enter(run_id);
                self.keep_leases(&store);
                match store.create(&record, Some(&self.inner.lease)).await {
                    Err(err) => {
                        return Outcome::stopped(run_id, RunStatus::Interrupted, err.into());
                    }
                    Ok(Created::Existing(existing)) => {
                        _in_flight = None;
                        return Box::pin(self.existing::<W>(*existing)).await;
                    }
                    Ok(Created::New) => Some((
                        Durable {
                            store,
                            persisted: tokio::sync::Mutex::new(0),
                            replay: None,
                            fence: 1,
                        },
                        Vec::new(),
                    )),
                }
            }
        };
        self.execute::<W>(run_id, input, options, durable).await
    }

    /// The outcome of a run that exists with the same idempotency key: recorded if it is
    /// over, awaited if it runs here or under another worker's lease, resumed here if it was
    /// interrupted.
    async fn existing<W: Workflow>(&self, record: RunRecord) -> Outcome<W> {
        let run_id = record.run_id;
        let Some(store) = self.inner.store.clone() else {
            return no_store(run_id);
        };
        let mut wait = Duration::from_millis(5);
        loop {
            if let Some(guard) = self.inner.in_flight.enter(run_id) {
                self.keep_leases(&store);
                match store.claim(run_id, &self.inner.lease).await {
                    Err(err) => {
                        return Outcome::stopped(run_id, RunStatus::Interrupted, err.into());
                    }
                    Ok(Claim::Finished(record, events)) => {
                        return Outcome::from_record(*record, events);
                    }
                    Ok(Claim::Acquired(record, events)) => {
                        if record.status == StoredStatus::Parked {
                            drop(guard);
                            // Parked runs are resumed by hand only: hand the lease back.
                            let _ = store.release(run_id, record.fence).await;
                            return Outcome::from_record(*record, events);
                        }
                        // Nobody was running it: it was interrupted. Go on with it.
                        return self.resume_claimed::<W>(*record, events, guard).await;
                    }
                    // Another worker runs it: wait for it.
                    Ok(Claim::Held { .. }) => {}
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(200));
        }
    }

    /// Starts the heartbeat that renews the leases of the runs in flight here, once.
    fn keep_leases(&self, store: &Arc<dyn Store>) {
        self.inner.heartbeat.get_or_init(|| {
            Heartbeat::start(
                Arc::clone(store),
                self.inner.lease.clone(),
                Arc::clone(&self.inner.in_flight),
            )
        });
    }

    /// Resumes a stored run of `W` by replaying its journal, under the lease this engine
    /// claimed (`record.fence`), while `guard` marks it in flight here.
    pub(crate) async fn resume_claimed<W: Workflow>(
        &self,
        record: RunRecord,
        events: Vec<Event>,
        _guard: InFlightGuard,
    ) -> Outcome<W> {
        let run_id = record.run_id;
        let Some(store) = self.inner.store.clone() else {
            return no_store(run_id);
        };
        let persisted = events.len();
        let input: W::Input = match serde_json::from_value(record.input.clone()) {
            Ok(input) => input,
            Err(err) => {
                let error = ReplayError::Input(err.to_string());
                let update = RunUpdate {
                    status: StoredStatus::Parked,
                    output: None,
                    error: Some(error.to_string()),
                };
                if let Err(err) = store.commit(run_id, record.fence, &[], Some(update)).await {
                    return Outcome::stopped(run_id, RunStatus::Interrupted, err.into());
                }
                return Outcome::stopped(run_id, RunStatus::Parked, error.into());
            }
        };
        let options = RunOptions {
            request_id: record.request_id,
            actor: record.actor,
            origin: record.origin,
            additional_data: record.additional_data,
            idempotency_key: record.idempotency_key,
            run_id: None,
        };
        let durable = Durable {
            store,
            persisted: tokio::sync::Mutex::new(persisted),
            replay: Some(Replay::from_journal(&events)),
            fence: record.fence,
        };
        self.execute::<W>(run_id, input, options, Some((durable, events)))
            .await
    }

    /// Resumes every unfinished run in the store (not parked ones), each to its end, one after
    /// the other. A run of a workflow this engine does not know (see
    /// [`EngineBuilder::workflow`]), or of another version, is reported and left in the store.
    ///
    /// # Errors
    /// When the store cannot list its runs.
    pub async fn resume_pending(&self) -> Result<ResumeReport, StoreError> {
        let Some(store) = self.inner.store.clone() else {
            return Ok(ResumeReport::default());
        };
        let mut report = ResumeReport::default();
        for record in store.pending().await? {
            if self.inner.in_flight.contains(record.run_id) {
                continue;
            }
            match self.resume_one(record.run_id).await {
                Ok(status) => report.resumed.push((record.run_id, status)),
                Err(ResumeError::Held { owner, .. } | ResumeError::InFlight { owner, .. }) => {
                    report.held.push((record.run_id, owner));
                }
                Err(ResumeError::UnknownWorkflow { workflow, version }) => {
                    report.unknown.push((record.run_id, workflow, version));
                }
                Err(ResumeError::Store(err)) => report.failed.push((record.run_id, err)),
            }
        }
        Ok(report)
    }

    /// Resumes one stored run, parked ones included (after a fix of the workflow's code).
    ///
    /// # Errors
    /// [`ResumeError`] when the store fails or the run's workflow is unknown here.
    pub async fn resume(&self, run_id: RunId) -> Result<RunStatus, ResumeError> {
        self.resume_one(run_id).await
    }

    async fn resume_one(&self, run_id: RunId) -> Result<RunStatus, ResumeError> {
        let store = self
            .inner
            .store
            .clone()
            .ok_or(ResumeError::Store(StoreError::NotFound(run_id)))?;
        let (record, _) = store.load(run_id).await.map_err(ResumeError::Store)?;
        if let Some(status) = finished_status(record.status) {
            return Ok(status);
        }
        let resumer = self
            .inner
            .resumers
            .get(&(record.workflow.clone(), record.version))
            .ok_or_else(|| ResumeError::UnknownWorkflow {
                workflow: record.workflow.clone(),
                version: record.version,
            })?;
        let guard = self
            .inner
            .in_flight
            .enter(run_id)
            .ok_or_else(|| ResumeError::InFlight {
                run_id,
                owner: self.inner.lease.owner.clone(),
            })?;
        self.keep_leases(&store);
        match store
            .claim(run_id, &self.inner.lease)
            .await
            .map_err(ResumeError::Store)?
        {
            Claim::Finished(record, _) => {
                Ok(finished_status(record.status).unwrap_or(RunStatus::Completed))
            }
            Claim::Held {
                owner,
                until_micros,
            } => Err(ResumeError::Held {
                run_id,
                owner,
                until_micros,
            }),
            Claim::Acquired(record, events) => {
                Ok(resumer(self.clone(), *record, events, guard).await)
            }
        }
    }

    /// Records a run of `W` with `input` for any worker to run ([`Worker`](crate::Worker)),
    /// and returns its id at once. With an idempotency key the store already knows, returns
    /// that run's id instead.
    ///
    /// # Errors
    /// [`EnqueueError`] when the engine has no store, the input cannot be serialized, or the
    /// store fails.
    pub async fn enqueue<W: Workflow>(&self, input: W::Input) -> Result<RunId, EnqueueError> {
        self.enqueue_with::<W>(input, RunOptions::default()).await
    }

    /// [`Engine::enqueue`] with [`RunOptions`] (request id, actor, additional data,
    /// idempotency key, run id).
    ///
    /// # Errors
    /// As [`Engine::enqueue`].
    pub async fn enqueue_with<W: Workflow>(
        &self,
        input: W::Input,
        mut options: RunOptions,
    ) -> Result<RunId, EnqueueError> {
        let store = self.inner.store.as_ref().ok_or(EnqueueError::NoStore {
            workflow: W::META.name(),
        })?;
        let run_id = options.run_id.take().unwrap_or_else(RunId::new);
        let record = new_record::<W>(run_id, &input, &options)?;
        match store.create(&record, None).await? {
            Created::New => Ok(run_id),
            Created::Existing(existing) => Ok(existing.run_id),
        }
    }

    /// This engine's worker id: the owner of the leases of the runs it advances.
    pub fn worker_id(&self) -> &str {
        &self.inner.lease.owner
    }

    /// How long a lease of this engine holds without a heartbeat.
    pub fn lease_duration(&self) -> Duration {
        self.inner.lease.duration
    }

    /// Builds the run's state and drives it; `durable` carries the store and, for a resumed
    /// run, its recorded journal.
    async fn execute<W: Workflow>(
        &self,
        run_id: RunId,
        input: W::Input,
        options: RunOptions,
        durable: Option<(Durable, Vec<Event>)>,
    ) -> Outcome<W> {
        let span = tracing::info_span!("workflow", workflow = W::META.name(), %run_id);
        let (durable, recorded) = match durable {
            Some((durable, recorded)) => (Some(durable), recorded),
            None => (None, Vec::new()),
        };
        let resumed = !recorded.is_empty();
        let mut journal = Journal::from_events(recorded);
        journal.reserve(16);
        let shared = Arc::new(RunShared {
            engine: Arc::clone(&self.inner),
            run_id,
            options,
            state: Mutex::new(RunState {
                journal,
                // One slot per step call and hook the macro saw, so that W5-sized workflows
                // never grow the stack.
                compensations: Vec::with_capacity(W::META.body().len() + 1),
                ..RunState::default()
            }),
            bag: Bag::default(),
            next_position: AtomicU32::new(0),
            last_frame: AtomicU32::new(0),
            span: span.clone(),
            durable,
        });
        let rc = RunContext {
            run: shared,
            workflow: W::META.name(),
        };
        let ctx = WorkflowContext::for_workflow::<W>(rc, 0);
        ctx.shared().record(if resumed {
            EventKind::RunResumed
        } else {
            EventKind::RunStarted {
                workflow: W::META.name().into(),
                run_id,
            }
        });
        if let Some(durable) = &ctx.shared().durable {
            ctx.shared().record(EventKind::Claimed {
                worker: self.inner.lease.owner.clone(),
                fence: durable.fence,
            });
        }
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

    /// Follows run `run_id`: its journal events as they happen, until it ends. Subscribe
    /// before starting the run (with [`Engine::spawn`], whose run id is in the outcome, or by
    /// an idempotency key) or while it runs; earlier events are in its journal.
    pub fn subscribe(&self, run_id: RunId) -> RunEvents {
        self.inner.bus.subscribe(run_id)
    }

    /// The engine's service of type `T`, as steps and hooks get it with `ctx.service::<T>()`.
    ///
    /// # Errors
    /// [`MissingService`](crate::MissingService), naming `T`, when there is none.
    pub fn service<T: Any + Send + Sync>(&self) -> Result<&T, crate::error::MissingService> {
        self.inner.services.get::<T>()
    }

    /// The registered handlers of workflow `W`'s hook `hook`, in the order they run:
    /// `(slot, handler name, plugin name)`.
    pub fn handlers_of<W: Workflow>(&self, hook: &str) -> Vec<(Slot, &'static str, Option<&str>)> {
        self.inner.registry.handlers_of::<W>(hook)
    }

    /// Workflow `W` as a Mermaid flowchart: the steps, hook firings and nested workflows its
    /// body calls, in source order, each hook with its kind and payload type and the handlers
    /// this engine has registered on it, by slot.
    pub fn diagram<W: Workflow>(&self) -> String {
        crate::diagram::flowchart::<W>(self)
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
    let recorded_failure = run.replay().and_then(|r| r.failure.clone());
    let result = match body {
        // A run resumed while compensating failed before; its body only replayed.
        Ok(Ok(_)) if recorded_failure.is_some() => Err(RunError::Recorded {
            message: recorded_failure.clone().unwrap_or_default(),
        }),
        Ok(Ok(output)) => Ok(output),
        Ok(Err(err)) => Err(RunError::Failed(err)),
        Err(panic) if panic.is::<Halt>() => {
            let halt = panic.into_payload().downcast::<Halt>().map(|h| *h);
            match halt {
                Ok(Halt::Store(err)) => return stopped(run, RunStatus::Interrupted, err.into()),
                Ok(Halt::Replay(err)) => return Box::pin(park(run, err)).await,
                Ok(Halt::Failed(message)) => Err(RunError::Recorded { message }),
                Err(_) => unreachable!("checked by `is`"),
            }
        }
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
            if recorded_failure.is_none() {
                run.record(EventKind::RunFailed {
                    error: cause.clone(),
                });
                if let Err(err) = durable::commit(run, None).await {
                    return stopped(run, RunStatus::Interrupted, err.into());
                }
            }
            // Boxed: only failed runs compensate, and their futures need not make every
            // run's future larger.
            if let Err(err) = Box::pin(compensate(ctx, Scope::All)).await {
                return stopped(run, RunStatus::Interrupted, err.into());
            }
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
                Box::pin(<After<CompensationFailure> as Fire<W>>::fire(
                    point, ctx, &failure,
                ))
                .await;
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

    run.record(EventKind::RunEnded { status });
    if run.durable.is_some() {
        let update = RunUpdate {
            status: match status {
                RunStatus::Completed => StoredStatus::Completed,
                RunStatus::Compensated => StoredStatus::Compensated,
                _ => StoredStatus::CompensationFailed,
            },
            output: result.as_ref().ok().and_then(crate::step::to_json),
            error: result.as_ref().err().map(ToString::to_string),
        };
        if let Err(err) = durable::commit(run, Some(update)).await {
            return stopped(run, RunStatus::Interrupted, err.into());
        }
    }
    let mut state = crate::lock(&run.state);
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

/// The outcome of a run that stopped without finishing: interrupted by its store, or parked.
fn stopped<W: Workflow>(
    run: &RunShared,
    status: RunStatus,
    error: RunError<W::Error>,
) -> Outcome<W> {
    let mut state = crate::lock(&run.state);
    Outcome {
        run_id: run.run_id,
        status,
        result: Err(error),
        hook_errors: std::mem::take(&mut state.hook_errors),
        compensation_failures: std::mem::take(&mut state.compensation_failures),
        best_effort_failures: std::mem::take(&mut state.best_effort_failures),
        jobs: Vec::new(),
        journal: std::mem::take(&mut state.journal),
    }
}

/// Parks a run whose journal cannot be replayed: recorded, not compensated, not corrupted.
async fn park<W: Workflow>(run: &RunShared, error: ReplayError) -> Outcome<W> {
    tracing::error!(%error, "hookflow: run parked");
    run.record(EventKind::RunParked {
        reason: error.to_string(),
    });
    let update = RunUpdate {
        status: StoredStatus::Parked,
        output: None,
        error: Some(error.to_string()),
    };
    if let Err(err) = durable::commit(run, Some(update)).await {
        return stopped(run, RunStatus::Interrupted, err.into());
    }
    stopped(run, RunStatus::Parked, error.into())
}

fn new_record<W: Workflow>(
    run_id: RunId,
    input: &W::Input,
    options: &RunOptions,
) -> Result<RunRecord, StoreError> {
    let input = serde_json::to_value(input).map_err(|err| StoreError::Corrupt {
        run_id: run_id.to_string(),
        message: format!("the input cannot be serialized: {err}"),
    })?;
    let now = crate::journal::now_micros();
    Ok(RunRecord {
        run_id,
        workflow: W::META.name().to_owned(),
        version: W::VERSION,
        input,
        status: StoredStatus::Running,
        idempotency_key: options.idempotency_key.clone(),
        request_id: options.request_id.clone(),
        actor: options.actor.clone(),
        origin: options.origin,
        additional_data: options.additional_data.clone(),
        output: None,
        error: None,
        created_at_micros: now,
        updated_at_micros: now,
        owner: None,
        fence: 0,
        lease_until_micros: None,
    })
}

/// What [`Engine::resume_pending`] did.
#[derive(Debug, Default)]
pub struct ResumeReport {
    /// The runs resumed, and how each ended.
    pub resumed: Vec<(RunId, RunStatus)>,
    /// The runs of workflows (or versions) this engine does not know: left in the store.
    pub unknown: Vec<(RunId, String, u32)>,
    /// The runs the store failed to load.
    pub failed: Vec<(RunId, StoreError)>,
    /// The runs another worker (named) holds a live lease on: left to it.
    pub held: Vec<(RunId, String)>,
}

/// Why [`Engine::resume`] could not resume a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The run's workflow, at its version, is not registered on this engine
    /// ([`EngineBuilder::workflow`]).
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
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Why [`Engine::enqueue`] could not record a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueError {
    /// Enqueued runs live in a store, and the engine has none.
    #[error(
        "cannot enqueue a run of `{workflow}`: the engine has no store (build it with `Engine::builder().store(...)`)"
    )]
    NoStore {
        /// The workflow.
        workflow: &'static str,
    },
    /// The store failed, or the input cannot be serialized.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The status of a finished stored run, `None` if it is not finished.
fn finished_status(status: StoredStatus) -> Option<RunStatus> {
    match status {
        StoredStatus::Completed => Some(RunStatus::Completed),
        StoredStatus::Compensated => Some(RunStatus::Compensated),
        StoredStatus::CompensationFailed => Some(RunStatus::CompensationFailed),
        _ => None,
    }
}

/// The outcome of a run that needs a store when the engine has none.
fn no_store<W: Workflow>(run_id: RunId) -> Outcome<W> {
    Outcome::stopped(
        run_id,
        RunStatus::Interrupted,
        RunError::Recorded {
            message: "no store".into(),
        },
    )
}

/// Resumes a claimed stored run of one workflow type.
pub(crate) type Resumer = Box<
    dyn Fn(Engine, RunRecord, Vec<Event>, InFlightGuard) -> crate::BoxFuture<'static, RunStatus>
        + Send
        + Sync,
>;

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
    store: Option<Arc<dyn Store>>,
    resumers: HashMap<(String, u32), Resumer>,
    worker_id: Option<String>,
    lease: Option<Duration>,
}

impl EngineBuilder {
    /// The worker id this engine's leases are held under (by default, the process id and
    /// random bits). It must be unique among the live processes sharing the store: a store
    /// lets an engine take back at once the runs its worker id holds (a worker restarted
    /// under the same id resumes its runs without waiting for their leases to lapse).
    #[must_use]
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// How long a lease on a run holds without renewal (default 30 s). A heartbeat renews
    /// the leases of the runs in flight every third of it; if the process dies, its runs are
    /// taken over by other workers once their leases lapse, so the duration bounds how long
    /// a dead worker's runs wait.
    #[must_use]
    pub fn lease(mut self, duration: Duration) -> Self {
        self.lease = Some(duration);
        self
    }

    /// Makes runs durable: recorded in `store`, committed step by step, resumable. Register
    /// the workflows to resume with [`EngineBuilder::workflow`].
    #[must_use]
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Lets this engine resume stored runs of `W` ([`Engine::resume_pending`]).
    #[must_use]
    pub fn workflow<W: Workflow>(mut self) -> Self {
        let resumer: Resumer = Box::new(|engine: Engine, record, events, guard| {
            Box::pin(async move {
                engine
                    .resume_claimed::<W>(record, events, guard)
                    .await
                    .status()
            })
        });
        self.resumers
            .insert((W::META.name().to_owned(), W::VERSION), resumer);
        self
    }
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
                store: self.store,
                resumers: self.resumers,
                in_flight: Arc::default(),
                bus: Bus::default(),
                lease: Lease {
                    owner: self
                        .worker_id
                        .unwrap_or_else(crate::lease::default_worker_id),
                    duration: self.lease.unwrap_or(crate::lease::DEFAULT_LEASE),
                },
                heartbeat: std::sync::OnceLock::new(),
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
    pub(crate) idempotency_key: Option<String>,
    pub(crate) run_id: Option<RunId>,
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
    /// The run's id, made beforehand with [`RunId::generate`] (by default, a new one).
    #[must_use]
    pub fn run_id(mut self, run_id: RunId) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// A key that makes the start idempotent: with a store, a second start with the same key
    /// returns the first run's outcome instead of running again.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
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
