//! The handler traits: what a function must look like to be registered on a hook of each kind.
//!
//! Each trait has a blanket implementation for the matching `async fn`; user code never
//! implements them by hand. They exist so that the registrar's bounds read as one line and
//! so that the future is known to be `Send` on stable Rust.

use std::future::Future;

use crate::context::{HookContext, WorkflowContext};
use crate::types::{BoxError, BoxFuture, StepFuture};

/// A handler for a `before<T>` hook: `async fn(&HookContext, T) -> Result<T, E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `before` hook handler for `{T}`",
    label = "expected `async fn(&HookContext, {T}) -> Result<{T}, E>`",
    note = "a `before` handler receives the data and returns it, changed or not:\n  async fn handler(ctx: &HookContext, data: {T}) -> Result<{T}, MyError>",
    note = "an `after` handler (which returns `Result<(), E>`) goes on an `after` hook"
)]
pub trait BeforeHandler<'a, T>:
    Fn(&'a HookContext, T) -> Self::Fut + Send + Sync + 'static
{
    /// The handler's error.
    type Err: Into<BoxError>;
    /// The handler's future.
    type Fut: Future<Output = Result<T, Self::Err>> + Send + 'a;
}

impl<'a, T, F, Fut, E> BeforeHandler<'a, T> for F
where
    F: Fn(&'a HookContext, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'a,
    E: Into<BoxError>,
{
    type Err = E;
    type Fut = Fut;
}

/// A handler for an `after<T>` hook: `async fn(&HookContext, &T) -> Result<(), E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an `after` hook handler for `{T}`",
    label = "expected `async fn(&HookContext, &{T}) -> Result<(), E>`",
    note = "an `after` handler observes the value and cannot change it:\n  async fn handler(ctx: &HookContext, value: &{T}) -> Result<(), MyError>"
)]
pub trait AfterHandler<'a, T: 'a>:
    Fn(&'a HookContext, &'a T) -> Self::Fut + Send + Sync + 'static
{
    /// The handler's error.
    type Err: Into<BoxError>;
    /// The handler's future.
    type Fut: Future<Output = Result<(), Self::Err>> + Send + 'a;
}

impl<'a, T: 'a, F, Fut, E> AfterHandler<'a, T> for F
where
    F: Fn(&'a HookContext, &'a T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'a,
    E: Into<BoxError>,
{
    type Err = E;
    type Fut = Fut;
}

/// A handler for an `after<I, O>` hook:
/// `async fn(&HookContext, &I, &O) -> Result<(), E>`, the input first, then the result.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an `after` hook handler for input `{I}` and result `{O}`",
    label = "expected `async fn(&HookContext, &{I}, &{O}) -> Result<(), E>`",
    note = "an `after<{I}, {O}>` handler observes the input, then the result, and cannot change them:\n  async fn handler(ctx: &HookContext, input: &{I}, result: &{O}) -> Result<(), MyError>"
)]
pub trait AfterResultHandler<'a, I: 'a, O: 'a>:
    Fn(&'a HookContext, &'a I, &'a O) -> Self::Fut + Send + Sync + 'static
{
    /// The handler's error.
    type Err: Into<BoxError>;
    /// The handler's future.
    type Fut: Future<Output = Result<(), Self::Err>> + Send + 'a;
}

impl<'a, I: 'a, O: 'a, F, Fut, E> AfterResultHandler<'a, I, O> for F
where
    F: Fn(&'a HookContext, &'a I, &'a O) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'a,
    E: Into<BoxError>,
{
    type Err = E;
    type Fut = Fut;
}

/// A handler for a `step<T, R>` hook: a `#[step]` function taking `T` and returning `R`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a step handler for a `step<{T}, {R}>` hook",
    label = "expected a `#[step]` fn taking `{T}` and returning `{R}`",
    note = "a step hook's handler is a step, with its own compensation if it has one:\n  #[step(compensate = undo)]\n  async fn handler(ctx: &StepContext, payload: {T}) -> Result<StepResponse<{R}, Data>, MyError>"
)]
pub trait StepHookHandler<'a, T, R>:
    Fn(&'a WorkflowContext, T) -> StepFuture<Self::Fut> + Send + Sync + 'static
{
    /// The step's error.
    type Err: Into<BoxError>;
    /// The step's future.
    type Fut: Future<Output = Result<R, Self::Err>> + Send + 'a;
}

impl<'a, T, R, F, Fut, E> StepHookHandler<'a, T, R> for F
where
    F: Fn(&'a WorkflowContext, T) -> StepFuture<Fut> + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'a,
    E: Into<BoxError>,
{
    type Err = E;
    type Fut = Fut;
}

// Type-erased forms, stored in the registry.

pub(crate) trait ErasedBefore<T>: Send + Sync {
    fn call<'a>(&'a self, ctx: &'a HookContext, data: T) -> BoxFuture<'a, Result<T, BoxError>>;
}

pub(crate) trait ErasedAfter<T>: Send + Sync {
    fn call<'a>(
        &'a self,
        ctx: &'a HookContext,
        value: &'a T,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

pub(crate) trait ErasedAfterResult<I, O>: Send + Sync {
    fn call<'a>(
        &'a self,
        ctx: &'a HookContext,
        input: &'a I,
        result: &'a O,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

pub(crate) trait ErasedStepHook<T, R>: Send + Sync {
    fn call<'a>(&'a self, ctx: &'a WorkflowContext, payload: T) -> StepHookFuture<'a, R>;
}

/// The future of a step hook's handler (a step's), type-erased: stored inline when it fits
/// in 512 bytes (a step's future usually does), so that a firing costs no allocation for it.
pub(crate) type StepHookFuture<'a, R> =
    smallbox::SmallBox<dyn Future<Output = Result<R, BoxError>> + Send + 'a, smallbox::space::S64>;

/// Wraps a handler function so that it can be stored type-erased.
pub(crate) struct Erased<F>(pub(crate) F);

impl<T: Send + 'static, F> ErasedBefore<T> for Erased<F>
where
    F: for<'a> BeforeHandler<'a, T>,
{
    fn call<'a>(&'a self, ctx: &'a HookContext, data: T) -> BoxFuture<'a, Result<T, BoxError>> {
        // The call is inside the future: a panic while making the handler's future is
        // caught with the rest.
        Box::pin(async move { (self.0)(ctx, data).await.map_err(Into::into) })
    }
}

impl<T: Sync + 'static, F> ErasedAfter<T> for Erased<F>
where
    F: for<'a> AfterHandler<'a, T>,
{
    fn call<'a>(
        &'a self,
        ctx: &'a HookContext,
        value: &'a T,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        // The call is inside the future: a panic while making the handler's future is
        // caught with the rest.
        Box::pin(async move { (self.0)(ctx, value).await.map_err(Into::into) })
    }
}

impl<I: Sync + 'static, O: Sync + 'static, F> ErasedAfterResult<I, O> for Erased<F>
where
    F: for<'a> AfterResultHandler<'a, I, O>,
{
    fn call<'a>(
        &'a self,
        ctx: &'a HookContext,
        input: &'a I,
        result: &'a O,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        // The call is inside the future: a panic while making the handler's future is
        // caught with the rest.
        Box::pin(async move { (self.0)(ctx, input, result).await.map_err(Into::into) })
    }
}

impl<T: Send + 'static, R: Send + 'static, F> ErasedStepHook<T, R> for Erased<F>
where
    F: for<'a> StepHookHandler<'a, T, R>,
{
    fn call<'a>(&'a self, ctx: &'a WorkflowContext, payload: T) -> StepHookFuture<'a, R> {
        // The call is inside the future: a panic while making the handler's future is
        // caught with the rest.
        smallbox::smallbox!(async move { (self.0)(ctx, payload).await.map_err(Into::into) })
    }
}
