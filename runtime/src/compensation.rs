//! Compensation: the undo of completed steps, run in reverse order when a run fails.
//!
//! The step that failed is not compensated: it did not complete, so there is nothing of its
//! own to undo (if it did partial work, it should clean up before returning its error).

use std::fmt::Display;
use std::future::Future;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::BoxFuture;
use crate::context::{RunId, StepContext, WorkflowContext};
use crate::durable;
use crate::journal::EventKind;
use crate::panic::CatchUnwind;
use crate::policy::RetryPolicy;
use crate::store::StoreError;
use crate::testing::Fault;

/// A compensation for a step whose compensation data is `C`:
/// `async fn(&StepContext, C) -> Result<(), E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot compensate a step whose compensation data is `{C}`",
    label = "expected `async fn(&StepContext, {C}) -> Result<(), E>`",
    note = "a compensation receives the data its step returned in `StepResponse::new(output, data)`:\n  async fn undo(ctx: &StepContext, data: {C}) -> Result<(), MyError>"
)]
pub trait CompensateFn<'a, C>: Fn(&'a StepContext, C) -> Self::Fut + Send + Sync + 'static {
    /// The compensation's error.
    type Err: Display;
    /// The compensation's future.
    type Fut: Future<Output = Result<(), Self::Err>> + Send + 'a;
}

impl<'a, C, F, Fut, E> CompensateFn<'a, C> for F
where
    F: Fn(&'a StepContext, C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'a,
    E: Display,
{
    type Err = E;
    type Fut = Fut;
}

/// Checks, where `#[step(compensate = f)]` names `f`, that `f` compensates data `C`.
#[doc(hidden)]
pub fn compensation<C, F: for<'a> CompensateFn<'a, C> + Clone>(f: F) -> F {
    f
}

/// A completed step's compensation, waiting on the run's stack.
pub(crate) struct Compensation {
    pub(crate) step: &'static str,
    pub(crate) position: u32,
    /// The workflow (the run's own, or a nested one) whose step it undoes.
    pub(crate) frame: u32,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) action: Action,
}

/// A compensation and its data, type-erased. Stored inline when it fits in four words (the
/// compensation is a function item, so that is the size of its data): most steps' undo
/// costs no allocation.
pub(crate) type Action = smallbox::SmallBox<dyn CompensateAction, smallbox::space::S4>;

/// Erases a compensation and its data.
pub(crate) fn action<C, F>(data: C, compensate: F) -> Action
where
    C: Serialize + DeserializeOwned + Send + 'static,
    F: for<'a> CompensateFn<'a, C> + Clone,
{
    smallbox::smallbox!(Pending {
        data: Some(data),
        compensate,
    })
}

pub(crate) trait CompensateAction: Send {
    fn data_json(&self) -> Option<serde_json::Value>;
    /// Starts the compensation with the data, which it takes: an action runs once.
    fn run<'a>(&mut self, ctx: &'a StepContext) -> BoxFuture<'a, Result<(), String>>;
    /// The same action with a copy of its data (made through serde), for one more attempt.
    fn replica(&self) -> Option<Action>;
}

pub(crate) struct Pending<C, F> {
    data: Option<C>,
    compensate: F,
}

impl<C, F> CompensateAction for Pending<C, F>
where
    C: Serialize + DeserializeOwned + Send + 'static,
    F: for<'a> CompensateFn<'a, C> + Clone,
{
    fn data_json(&self) -> Option<serde_json::Value> {
        self.data.as_ref().and_then(crate::step::to_json)
    }

    fn run<'a>(&mut self, ctx: &'a StepContext) -> BoxFuture<'a, Result<(), String>> {
        let data = self.data.take();
        let compensate = self.compensate.clone();
        // The call is inside the future, so that a panic while making the compensation's
        // future is caught with the rest.
        Box::pin(async move {
            match data {
                Some(data) => compensate(ctx, data).await.map_err(|e| e.to_string()),
                None => Err("internal: a compensation ran twice".to_owned()),
            }
        })
    }

    fn replica(&self) -> Option<Action> {
        let json = serde_json::to_value(self.data.as_ref()?).ok()?;
        let data: C = serde_json::from_value(json).ok()?;
        Some(action(data, self.compensate.clone()))
    }
}

/// A compensation that failed (returned an error or panicked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCompensation {
    /// The step it should have undone.
    pub step: String,
    /// That step's position in the run.
    pub position: u32,
    /// The compensation's error or panic message.
    pub error: String,
    /// Whether it panicked.
    pub panicked: bool,
}

/// What an `on_compensation_failed` handler receives: a run failed and some of its undo
/// failed too, so it needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationFailure {
    /// The workflow.
    pub workflow: String,
    /// The run.
    pub run_id: RunId,
    /// Why the run failed.
    pub cause: String,
    /// The compensations that failed, in the order they ran.
    pub failed: Vec<FailedCompensation>,
}

/// Which compensations to run.
#[derive(Clone, Copy)]
pub(crate) enum Scope {
    /// Everything on the stack: the run failed.
    All,
    /// The steps of one nested workflow that failed.
    Frame(u32),
}

/// Runs the compensations in `scope`, last pushed first. A failing or panicking compensation
/// is retried by its policy, then recorded (in the journal and the run's compensation
/// failures), and the others still run. Returns the failures of this call.
pub(crate) async fn compensate(
    ctx: &WorkflowContext,
    scope: Scope,
) -> Result<Vec<FailedCompensation>, StoreError> {
    let run = ctx.shared();
    let mut failures = Vec::new();
    loop {
        let next = {
            let mut state = crate::lock(&run.state);
            let index = match scope {
                Scope::All => state.compensations.len().checked_sub(1),
                Scope::Frame(frame) => state.compensations.iter().rposition(|c| c.frame == frame),
            };
            index.map(|i| state.compensations.remove(i))
        };
        let Some(entry) = next else { break };
        if let Some(failure) = compensate_one(ctx, entry).await {
            failures.push(failure);
        }
        // Committed before the next compensation starts: a resumed run goes on from here.
        durable::commit(run, None).await?;
    }
    if !failures.is_empty() {
        crate::lock(&run.state)
            .compensation_failures
            .extend(failures.iter().cloned());
    }
    Ok(failures)
}

async fn compensate_one(ctx: &WorkflowContext, entry: Compensation) -> Option<FailedCompensation> {
    let run = ctx.shared();
    let Compensation {
        step,
        position,
        retry,
        action,
        ..
    } = entry;
    let data = if run.records_data() {
        action.data_json()
    } else {
        None
    };
    run.record(EventKind::CompensationStarted {
        step: step.into(),
        position,
        data,
    });
    let sctx = StepContext {
        rc: ctx.rc.clone(),
        step,
        position,
        attempt: AtomicU32::new(1),
        compensating: true,
    };
    let span = tracing::info_span!(
        "compensate",
        step,
        position,
        attempt = tracing::field::Empty
    );
    let max_attempts = retry.map_or(1, |p| p.max_attempts());
    let mut original = Some(action);
    let mut attempt = 1;
    loop {
        sctx.attempt.store(attempt, Ordering::Relaxed);
        span.record("attempt", attempt);
        // Every attempt but the last runs on a copy of the data, so that one is left.
        let action = match original.as_ref().and_then(|a| {
            if attempt < max_attempts {
                a.replica()
            } else {
                None
            }
        }) {
            Some(replica) => replica,
            None => match original.take() {
                Some(action) => action,
                None => break None,
            },
        };
        let fault = run
            .engine
            .faults
            .as_ref()
            .and_then(|f| f.for_compensation(step, attempt));
        let outcome = match fault {
            Some(Fault::Panic) => Err(crate::testing::injected(Fault::Panic)),
            Some(fault) => Ok(Err(crate::testing::injected(fault))),
            None => CatchUnwind::new({ action }.run(&sctx))
                .instrument(span.clone())
                .await
                .map_err(|panic| panic.message()),
        };
        let (error, panicked) = match outcome {
            Ok(Ok(())) => {
                run.record(EventKind::CompensationCompleted {
                    step: step.into(),
                    position,
                });
                break None;
            }
            Ok(Err(error)) => (error, false),
            Err(message) => (message, true),
        };
        if attempt < max_attempts && original.is_some() {
            let delay = retry.map_or(Duration::ZERO, |p| p.jittered_delay(attempt));
            run.record(EventKind::CompensationRetrying {
                step: step.into(),
                position,
                attempt,
                error,
                delay_micros: u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
            continue;
        }
        tracing::error!(step, %error, attempt, "hookflow: compensation failed");
        run.record(EventKind::CompensationFailed {
            step: step.into(),
            position,
            error: error.clone(),
            panicked,
        });
        break Some(FailedCompensation {
            step: step.to_owned(),
            position,
            error,
            panicked,
        });
    }
}
