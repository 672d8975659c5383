//! What a step gives back: its [`StepResponse`] (output and compensation data), the bound on
//! that data ([`StepData`]), and the [`StepFuture`] a `#[step]` call returns.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a step with a compensation returns: its output, for the workflow, and the data its
/// compensation needs to undo it.
///
/// ```
/// # use hookflow_runtime::StepResponse;
/// let response = StepResponse::new("order_1", 4200_u64);
/// assert_eq!(response.into_parts(), ("order_1", 4200));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResponse<O, C> {
    output: O,
    compensation: C,
}

impl<O, C> StepResponse<O, C> {
    /// A response with `output` for the workflow and `compensation` for the undo.
    pub fn new(output: O, compensation: C) -> Self {
        StepResponse {
            output,
            compensation,
        }
    }

    /// The output and the compensation data.
    pub fn into_parts(self) -> (O, C) {
        (self.output, self.compensation)
    }
}

/// What the workflow can record of a step's output or compensation data: a serde type, so
/// that a durable store can journal it. `#[step]` checks it at compile time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a step's output or compensation data",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "the run's journal records it; derive them: #[derive(serde::Serialize, serde::Deserialize)]"
)]
pub trait StepData: Serialize + DeserializeOwned + Send + 'static {}
// Not recommended: a type that is not step data is reported with `StepData`'s message, once,
// rather than once per missing trait.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> StepData for T {}

pin_project_lite::pin_project! {
    /// The future of a `#[step]` call. Await it in the workflow body.
    ///
    /// It is a distinct type so that a `step` hook accepts only `#[step]` functions.
    #[must_use = "a step does nothing unless awaited"]
    pub struct StepFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> StepFuture<F> {
    #[doc(hidden)]
    pub fn __new(inner: F) -> Self {
        StepFuture { inner }
    }
}

impl<F: Future> Future for StepFuture<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// A step's output or data as JSON for the journal; `None`, with a warning, when it cannot be
/// serialized.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Option<serde_json::Value> {
    match super::to_json_value(value) {
        Ok(v) => Some(v),
        Err(err) => {
            tracing::warn!(%err, "hookflow: step data could not be serialized for the journal");
            None
        }
    }
}
