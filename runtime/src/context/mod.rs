//! The contexts user code receives: [`WorkflowContext`] in the workflow body,
//! [`StepContext`] in steps and compensations, [`HookContext`] in `before`/`after` handlers.
//! All three dereference to [`RunContext`], the run's shared view.
//!
//! Layer 3, with the hooks: the contexts, the run state behind them ([`RunShared`]), the
//! environment a run is given ([`RunEnv`]) and its compensation stack. Their types are what
//! handlers and steps are written against; the `run` layer above executes them.

mod bag;
mod borrowed;
mod compensation;
mod env;
mod foreign;
mod jobs;
mod run;
mod state_lock;
mod typed;

pub use bag::Bag;
pub(crate) use bag::Writer;
pub(crate) use borrowed::BorrowedStepContext;
pub use compensation::CompensateFn;
pub use compensation::compensation;
pub(crate) use compensation::{Compensation, action};
pub(crate) use env::RunEnv;
pub use foreign::HookRefusal;
pub use jobs::Jobs;
pub(crate) use run::{
    Count, Counters, Durable, Halt, RunShared, RunState, TRANSACTION_KEY, append,
};
pub use typed::TypedContext;

use std::any::{Any, TypeId};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::de::DeserializeOwned;

use crate::hook::{Fire, HookPoint, WorkflowHookTable};
use crate::store::{Transaction, TransactionError};
use crate::types::{Actor, AdditionalDataError, Key, MissingService, Origin, RunId, Slot};
use crate::workflow::Workflow;

/// What every context of a run can reach: ids, actor, origin, additional data, the bag,
/// services, jobs and the run's tracing span.
#[derive(Clone)]
pub struct RunContext {
    pub(crate) run: Arc<RunShared>,
    /// The workflow this context belongs to: the run's, or a nested workflow's.
    pub(crate) workflow: &'static str,
    /// Who writes to the bag through this context.
    pub(crate) writer: Writer,
}

impl RunContext {
    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.run.run_id
    }

    /// The workflow's name (a nested workflow's own name inside it).
    pub fn workflow(&self) -> &'static str {
        self.workflow
    }

    /// The fencing token of the lease under which this process advances the run, for a
    /// durable run: it grows every time a worker takes the run over. Hand it to an external
    /// system that can refuse writes carrying an older token than one it has seen, so that a
    /// worker whose lease lapsed (paused, partitioned) cannot overwrite its successor's work.
    pub fn fence(&self) -> Option<u64> {
        self.run.durable.as_ref().map(|d| d.fence)
    }

    /// The request id the run was started with, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.run.options.as_ref()?.request_id.as_deref()
    }

    /// Who started the run, if known.
    pub fn actor(&self) -> Option<&Actor> {
        self.run.options.as_ref()?.actor.as_ref()
    }

    /// Where the run was started from.
    pub fn origin(&self) -> Origin {
        self.run
            .options
            .as_ref()
            .map_or_else(Origin::default, |o| o.origin)
    }

    /// The additional data as given at start (JSON), if any.
    pub fn raw_additional_data(&self) -> Option<&serde_json::Value> {
        self.run.options.as_ref()?.additional_data.as_ref()
    }

    /// The additional data, deserialized as `T`.
    ///
    /// # Errors
    /// [`AdditionalDataError::Missing`] when the run has none, and
    /// [`AdditionalDataError::Invalid`] naming the bad field's path (`items[1].qty`) when it does
    /// not match `T`.
    pub fn additional_data<T: DeserializeOwned>(&self) -> Result<T, AdditionalDataError> {
        parse_additional_data(self.raw_additional_data())
    }

    /// The bag of typed values shared by this run's steps and hooks.
    pub fn bag(&self) -> Bag<'_> {
        Bag {
            run: &self.run,
            writer: self.writer,
        }
    }

    /// This context for `writer`.
    pub(crate) fn writing_as(&self, writer: Writer) -> RunContext {
        RunContext {
            run: std::sync::Arc::clone(&self.run),
            workflow: self.workflow,
            writer,
        }
    }

    /// The engine's service of type `T`.
    ///
    /// # Errors
    /// [`MissingService`], naming `T`, when the engine has no such service.
    pub fn service<T: Any + Send + Sync>(&self) -> Result<&T, MissingService> {
        self.run.env.services.get::<T>()
    }

    /// The run's background jobs: dispatched only if the run completes.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs {
            run: &self.run,
            writer: self.writer,
        }
    }

    /// The run's tracing span, at INFO, named after its workflow (`checkout{run_id=…}`): the
    /// body, its steps and its hooks run in it.
    pub fn span(&self) -> &tracing::Span {
        &self.run.span
    }
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("workflow", &self.workflow)
            .field("run_id", &self.run.run_id)
            .finish_non_exhaustive()
    }
}

/// Additional data `data` as `T` (what [`RunContext::additional_data`] does, and the start of
/// a run whose workflow declares `T`).
///
/// # Errors
/// [`AdditionalDataError::Missing`] without data, [`AdditionalDataError::Invalid`] naming the
/// bad field's path when it is not a `T`.
pub(crate) fn parse_additional_data<T: DeserializeOwned>(
    data: Option<&serde_json::Value>,
) -> Result<T, AdditionalDataError> {
    let type_name = std::any::type_name::<T>();
    let value = data.ok_or(AdditionalDataError::Missing { type_name })?;
    serde_path_to_error::deserialize(value).map_err(|err| AdditionalDataError::Invalid {
        type_name,
        path: err.path().to_string(),
        message: err.into_inner().to_string(),
    })
}

/// The context of a workflow body: call steps with it and fire the workflow's hooks.
pub struct WorkflowContext {
    pub(crate) rc: RunContext,
    pub(crate) workflow_type: TypeId,
    /// This workflow's hook handlers, if it has any.
    pub(crate) table: Option<Arc<WorkflowHookTable>>,
    /// The compensation frame of this workflow: a nested workflow has its own, so that its
    /// steps are compensated as a unit.
    pub(crate) frame: u32,
    /// The transaction of the transactional step this context fires hooks for, if it is one's
    /// (`TxContext::hook`): its handlers see it.
    pub(crate) transaction: Option<Arc<TransactionSlot>>,
}

/// A transactional step's current transaction (each attempt opens its own), shared with
/// the hook handlers it fires.
#[derive(Default)]
pub(crate) struct TransactionSlot(std::sync::Mutex<Option<Transaction>>);

impl TransactionSlot {
    /// The open transaction.
    pub(crate) fn get(&self) -> Option<Transaction> {
        crate::types::lock(&self.0).clone()
    }

    /// Sets (or, `None`, clears) the open transaction.
    pub(crate) fn set(&self, transaction: Option<Transaction>) {
        *crate::types::lock(&self.0) = transaction;
    }
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
    /// | `after<I, O>` | `(&I, &O)`: the input and the result | `()`: as `after<T>` |
    /// | `step<T, R>` | `T` (cloned per handler) | `Result<Vec<R>, HookError>`: one result per handler |
    ///
    /// A hook point with no handler returns at once without allocating.
    ///
    /// A hook point of another workflow than the one whose body holds this context (possible
    /// through a plain `&WorkflowContext`; a body's own `ctx` does not compile with one) is
    /// refused: none of its handlers runs, a `before` or `step` hook returns a [`HookError`]
    /// naming both workflows, an `after` hook records it in
    /// [`Outcome::hook_errors`](crate::Outcome::hook_errors) ([`HookRefusal`]).
    ///
    /// [`HookError`]: crate::HookError
    // Inlined always: a point without handlers costs its caller the table's look-up and the
    // kind's `unhandled` output, nothing more.
    #[inline(always)]
    pub fn hook<'a, W, K>(
        &'a self,
        point: HookPoint<W, K>,
        payload: K::Payload<'a>,
    ) -> impl Future<Output = K::Output> + Send + 'a
    where
        W: Workflow,
        K: Fire<W>,
        K::Output: HookRefusal,
    {
        if TypeId::of::<W>() == self.workflow_type {
            // The fast path: a point without handlers neither records a firing nor builds the
            // kind's future (as `K::fire` would find, after building it).
            if !self
                .table
                .as_deref()
                .is_some_and(|table| table.has_handlers(point.index()))
            {
                return foreign::Firing::Ready {
                    output: K::unhandled(payload),
                };
            }
            foreign::Firing::Fire {
                fire: K::fire(point, self, payload),
            }
        } else {
            foreign::Firing::Ready {
                output: K::Output::refused(self, W::META.name(), point.name()),
            }
        }
    }

    pub(crate) fn shared(&self) -> &RunShared {
        &self.rc.run
    }

    /// The hook table of workflow `workflow`: this one's own, or another's.
    pub(crate) fn table_for(&self, workflow: TypeId) -> Option<&WorkflowHookTable> {
        if workflow == self.workflow_type {
            self.table.as_deref()
        } else {
            self.rc.run.env.registry.table(workflow).map(|t| &**t)
        }
    }

    /// The context of workflow `W` in this run: the run's own (`frame` 0) or a nested one.
    pub(crate) fn for_workflow<W: Workflow>(rc: RunContext, frame: u32) -> Self {
        let workflow_type = TypeId::of::<W>();
        let table = rc.run.env.registry.table(workflow_type).cloned();
        WorkflowContext {
            rc: RunContext {
                run: rc.run,
                workflow: W::META.name(),
                writer: Writer::Body,
            },
            workflow_type,
            table,
            frame,
            transaction: None,
        }
    }
}

impl fmt::Debug for WorkflowContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowContext")
            .field("workflow", &self.rc.workflow)
            .field("run_id", &self.rc.run.run_id)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
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
    pub(crate) attempt: AtomicU32,
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

    /// The attempt being made, from 1 (a step with `retry(...)` or a compensation with
    /// `compensate_retry(...)` may run several times).
    pub fn attempt(&self) -> u32 {
        self.attempt.load(Ordering::Relaxed)
    }

    /// Whether this context is a compensation's (undoing the step) rather than the step's.
    pub fn is_compensating(&self) -> bool {
        self.compensating
    }

    /// A key that is the same every time this step of this run executes, also when a resumed
    /// run executes it again: `"{run_id}:{place}:{step}"`, where `place` is the step's position
    /// (or its place in a `parallel!` branch, `p0.1/0`). A compensation has the key of its
    /// step followed by `:undo`. Hand it to external systems (a payment provider) so that a
    /// retried call is applied once.
    ///
    /// The step's name is part of it: if the code changed between a crash and the resume so
    /// that another step is called where one was in flight, that step does not reuse the
    /// first one's key.
    pub fn idempotency_key(&self) -> String {
        let undo = if self.compensating { ":undo" } else { "" };
        let run = self.rc.run.run_id;
        let key = self.rc.writer.key().unwrap_or(Key::Top(self.position));
        self.rc
            .run
            .with_key(key, |key| format!("{run}:{key}:{}{undo}", self.step))
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
    /// Where the firing this handler runs in is in the run's code.
    pub(crate) firing: Key,
    /// The handler's place among the firing's handlers.
    pub(crate) index: u32,
    /// The transaction of the transactional step that fired the hook, if one did.
    pub(crate) transaction: Option<Transaction>,
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
    /// The database transaction of the transactional step (`#[step(transaction)]`) that fired
    /// this hook: write with it, and the writes commit with the step, or roll back with it
    /// (an error of this handler rolls the whole step back).
    ///
    /// # Errors
    /// [`TransactionError::NotInTransaction`] when the hook was fired elsewhere (from the
    /// workflow body, or a step that is not transactional).
    pub fn transaction(&self) -> Result<&Transaction, TransactionError> {
        self.transaction
            .as_ref()
            .ok_or(TransactionError::NotInTransaction)
    }

    /// A key that is the same every time this handler runs in this firing of this run,
    /// `"{run_id}:hook{firing}:{index}:{handler}"` (`firing` counts the run's hook firings, or
    /// is the firing's place in a `parallel!` branch): a handler that was in flight when its
    /// process died runs again with the same key (hand it to external systems so that the
    /// effect is applied once). Another handler at the same place after a change of plugins
    /// gets another key.
    pub fn idempotency_key(&self) -> String {
        let run = self.rc.run.run_id;
        self.rc.run.with_key(self.firing, |firing| {
            format!("{run}:hook{firing}:{}:{}", self.index, self.handler)
        })
    }
}

impl Deref for HookContext {
    type Target = RunContext;
    fn deref(&self) -> &RunContext {
        &self.rc
    }
}
