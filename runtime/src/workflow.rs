//! The [`Workflow`] trait that `#[workflow]` implements.

use std::fmt::{Debug, Display};
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::WorkflowContext;
use crate::types::{AdditionalDataError, RunId, WorkflowMeta};

/// A workflow: a typed async function with hooks, run by an [`Engine`](crate::Engine).
///
/// `#[workflow]` implements it on a type named after the function (`checkout` -> `Checkout`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow",
    note = "put #[workflow] on an `async fn name(ctx: &WorkflowContext, input: Input) -> Result<Output, Error>` and use the type it generates (`name` in PascalCase)"
)]
pub trait Workflow: Sized + Send + Sync + 'static {
    /// What a run takes. A serde type, so that a store can record it and a resumed run
    /// can have it back.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// What a completed run returns. A serde type, so that an idempotent start can return a
    /// recorded output.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// What a failed run returns.
    type Error: Display + Debug + Send + 'static;

    /// The workflow's static description.
    const META: &'static WorkflowMeta;

    /// The workflow's version (`#[workflow(version = N)]`, 1 by default). A store records
    /// it with each run; an engine resumes only runs of the versions it knows.
    const VERSION: u32 = 1;

    /// Runs the workflow body. Call it through an engine, which sets up the run around it.
    fn execute(
        ctx: &WorkflowContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send + '_;

    /// Runs this workflow inside another's run, as one step of it:
    /// `Refund::call(ctx, input).await?` in the parent's body.
    ///
    /// The child shares the parent's run (journal, bag, services, actor, additional data) and
    /// fires its own hooks. If it fails, its completed steps are compensated at once, as a
    /// unit, and its error is returned; if it completes and the parent fails later, its steps
    /// are compensated with the parent's, in reverse order.
    fn call(
        ctx: &WorkflowContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send + '_;

    /// Checks a run's additional data before the run starts: `Ok` unless the workflow
    /// declares its type (`#[workflow(additional_data = T)]`, [`DeclaredData`]) and the data is
    /// missing or not a `T`. `#[workflow]` implements it; never called on user code.
    ///
    /// # Errors
    /// [`AdditionalDataError`], naming the bad field's path.
    #[doc(hidden)]
    fn __check_additional_data(
        data: Option<&serde_json::Value>,
    ) -> Result<(), AdditionalDataError> {
        let _ = data;
        Ok(())
    }

    /// The span of a run of this workflow, at INFO: named after the workflow (`checkout`),
    /// with the run's id (`checkout{run_id=…}`). `#[workflow]` implements it with a span of
    /// its own for each workflow (a span's name is fixed where it is made); this default
    /// names the workflow in a field instead.
    #[doc(hidden)]
    fn __run_span(run_id: &RunId) -> tracing::Span {
        tracing::info_span!(target: "hookflow_runtime::run", "workflow", workflow = Self::META.name(), %run_id)
    }

    /// The span of this workflow run inside another's run (`Workflow::call`), at INFO: named
    /// after the workflow, with `nested = true` and its compensation frame.
    #[doc(hidden)]
    fn __nested_span(frame: u32) -> tracing::Span {
        tracing::info_span!(target: "hookflow_runtime::run::nested", "workflow", workflow = Self::META.name(), nested = true, frame)
    }
}

/// A workflow that declares the type of its runs' additional data,
/// `#[workflow(additional_data = BrandData)]`: the engine refuses a run whose additional data
/// is missing or not a `BrandData` before it starts (before it is recorded in a store;
/// [`Rejection::AdditionalData`](crate::Rejection::AdditionalData)), and the body's
/// `ctx.additional_data()` returns a `BrandData`, without a `Result`
/// ([`TypedContext::additional_data`](crate::TypedContext::additional_data)).
#[diagnostic::on_unimplemented(
    message = "workflow `{Self}` does not declare the type of its additional data",
    note = "declare it with `#[workflow(additional_data = YourType)]`, or read it with `RunContext::additional_data::<YourType>(&ctx)`"
)]
pub trait DeclaredData: Workflow {
    /// The additional data's type.
    type Data: DeserializeOwned + Send + 'static;
}

/// An event a workflow waits for, declared with `#[workflow(events(payment_captured:
/// Payment))]`: `Checkout::PAYMENT_CAPTURED` is an `EventPoint<Checkout, Payment>`. The body
/// waits for it with `ctx.wait(Checkout::PAYMENT_CAPTURED)`, and any process with an engine on
/// the same store sends it with `engine.send(run_id, Checkout::PAYMENT_CAPTURED, payment)`:
/// both sides are checked against `Payment` at compile time.
pub struct EventPoint<W, T> {
    name: &'static str,
    _types: std::marker::PhantomData<fn() -> (W, T)>,
}

impl<W, T> EventPoint<W, T> {
    #[doc(hidden)]
    pub const fn __new(name: &'static str) -> Self {
        EventPoint {
            name,
            _types: std::marker::PhantomData,
        }
    }

    /// The event's name, as declared (`payment_captured`).
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<W, T> Clone for EventPoint<W, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W, T> Copy for EventPoint<W, T> {}

impl<W: Workflow, T> Debug for EventPoint<W, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", W::META.name(), self.name)
    }
}
