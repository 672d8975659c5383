//! Compensation: the undo of completed steps, run in reverse order when a run fails.
//!
//! The step that failed is not compensated: it did not complete, so there is nothing of its
//! own to undo (if it did partial work, it should clean up before returning its error).

use std::fmt::Display;
use std::future::Future;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::BoxFuture;
use crate::context::{RunId, StepContext, WorkflowContext};
use crate::journal::EventKind;
use crate::panic::CatchUnwind;

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
pub fn compensation<C, F: for<'a> CompensateFn<'a, C>>(f: F) -> F {
    f
}

/// A completed step's compensation, waiting on the run's stack.
pub(crate) struct Compensation {
    pub(crate) step: &'static str,
    pub(crate) position: u32,
    pub(crate) action: Box<dyn CompensateAction>,
}

pub(crate) trait CompensateAction: Send {
    fn data_json(&self) -> Option<serde_json::Value>;
    fn run<'a>(self: Box<Self>, ctx: &'a StepContext) -> BoxFuture<'a, Result<(), String>>;
}

pub(crate) struct Pending<C, F> {
    pub(crate) data: C,
    pub(crate) compensate: F,
}

impl<C, F> CompensateAction for Pending<C, F>
where
    C: Serialize + Send + 'static,
    F: for<'a> CompensateFn<'a, C>,
{
    fn data_json(&self) -> Option<serde_json::Value> {
        crate::step::to_json(&self.data)
    }

    fn run<'a>(self: Box<Self>, ctx: &'a StepContext) -> BoxFuture<'a, Result<(), String>> {
        let Pending { data, compensate } = *self;
        let fut = compensate(ctx, data);
        Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
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

/// Runs every compensation on the run's stack, last pushed first. A failing or panicking
/// compensation is recorded and the others still run.
pub(crate) async fn compensate_all(ctx: &WorkflowContext) -> Vec<FailedCompensation> {
    let run = ctx.shared();
    let mut failures = Vec::new();
    loop {
        let next = crate::lock(&run.state).compensations.pop();
        let Some(Compensation {
            step,
            position,
            action,
        }) = next
        else {
            break;
        };
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
            compensating: true,
        };
        let span = tracing::info_span!("compensate", step, position);
        let (error, panicked) = match CatchUnwind::new(action.run(&sctx)).instrument(span).await {
            Ok(Ok(())) => {
                run.record(EventKind::CompensationCompleted {
                    step: step.into(),
                    position,
                });
                continue;
            }
            Ok(Err(error)) => (error, false),
            Err(panic) => (panic.message(), true),
        };
        tracing::error!(step, %error, "hookflow: compensation failed");
        run.record(EventKind::CompensationFailed {
            step: step.into(),
            position,
            error: error.clone(),
            panicked,
        });
        failures.push(FailedCompensation {
            step: step.to_owned(),
            position,
            error,
            panicked,
        });
    }
    failures
}
