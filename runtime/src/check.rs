//! What `#[workflow]` and `#[step]` check of your code, and how.
//!
//! The code the macros generate asks each of your types and functions, where you wrote it,
//! for what the runtime needs of it: a step's output is checked with
//! [`step_data::<Receipt>()`](step_data) at `Receipt`, its compensation with
//! [`compensate`] at the path in `compensate = ...`, a hook handler by the registrar
//! method's bound ([`HandlesBefore`], [`HandlesAfter`], ...). When one does not hold, the
//! compiler's error names the trait or function here, with what to write instead. You never
//! call these yourself; they are documented so that the errors that name them can be read.
//!
//! The top of the layers, beside `__private` (which re-exports them for the generated code).

use std::fmt;
use std::marker::PhantomData;

use crate::context::{CompensateFn, StepContext};
use crate::hook::{
    After, AfterHandler, AfterResult, AfterResultHandler, Before, BeforeHandler, HookPoint,
    Registrar, StepHook, StepHookHandler,
};
use crate::types::{RecordError, RecordedJson, StepData, StepResponse, StepTimeout};
use crate::workflow::Workflow;

// Return types spelled through an alias.

/// The `Ok` and `Err` types of a `Result`, for return types spelled through an alias.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result`",
    label = "workflows and steps return `Result<Output, Error>`"
)]
pub trait ResultParts: Sized {
    /// `T` of `Result<T, E>`.
    type Ok;
    /// `E` of `Result<T, E>`.
    type Err;
    /// The value as a `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
    /// The value from a `Result`.
    fn from_result(result: Result<Self::Ok, Self::Err>) -> Self;
}
impl<T, E> ResultParts for ::core::result::Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Self {
        self
    }
    fn from_result(result: Self) -> Self {
        result
    }
}

/// The output and data types of a `StepResponse`, for `Ok` types spelled through an alias.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `StepResponse<Output, Data>`",
    label = "a step with `compensate` returns `Result<StepResponse<Output, Data>, Error>`"
)]
pub trait StepResponseParts {
    /// The step's output.
    type Output;
    /// The compensation data.
    type Data;
}
impl<O, C> StepResponseParts for StepResponse<O, C> {
    type Output = O;
    type Data = C;
}

/// How the journal writes and reads a step's output or compensation data `T`.
pub struct DataOps<T> {
    pub(crate) to_json: fn(&T) -> Result<Box<serde_json::value::RawValue>, serde_json::Error>,
    pub(crate) from_json: fn(serde_json::Value) -> Result<T, serde_json::Error>,
    pub(crate) to_record: ToRecordFn<T>,
}

/// Writes a `T` as a record of at most so many bytes, or says why it cannot be one.
type ToRecordFn<T> = fn(&T, usize, &dyn Fn() -> String) -> Result<RecordedJson, RecordError>;

/// Checks at compile time that `T` may be a step's output or compensation data.
pub const fn step_data<T: StepData>() -> DataOps<T> {
    DataOps {
        to_json: to_json::<T>,
        from_json: serde_json::from_value::<T>,
        to_record: to_record::<T>,
    }
}

fn to_record<T: serde::Serialize>(
    value: &T,
    max_bytes: usize,
    what: &dyn Fn() -> String,
) -> Result<RecordedJson, RecordError> {
    crate::types::to_recorded_json(value, max_bytes, what)
}

fn to_json<T: serde::Serialize>(
    value: &T,
) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
    // Written once, as text, never recursing past what a record may hold (a value too deep
    // is an error, not a stack overflow).
    crate::types::to_json_text(value)
}

/// What a step's error must be: the journal records it as text.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a step's error: it must implement `Display`",
    label = "the journal records a failed step's error as text",
    note = "derive it with thiserror: #[derive(Debug, thiserror::Error)] and #[error(\"...\")]"
)]
pub trait StepError: fmt::Display {}
impl<E: fmt::Display> StepError for E {}

/// A step's error type `E`, checked by [`step_error`] at the user's type.
pub struct ErrorKind<E>(PhantomData<fn() -> E>);

/// Checks at compile time that `E` may be a step's error.
pub const fn step_error<E: StepError>() -> ErrorKind<E> {
    ErrorKind(PhantomData)
}

/// The future of a compensation, type-erased: stored inline when it fits in 64 bytes (a
/// compensation that awaits nothing much), boxed beyond.
pub type UndoFuture<'a> =
    smallbox::SmallBox<dyn Future<Output = Result<(), String>> + Send + 'a, smallbox::space::S8>;

/// The compensation named in `#[step(compensate = f)]`, checked (`compensate::<C, _>(f)` is
/// spanned at `f`, so that a compensation of the wrong shape is reported there) and
/// type-erased, so that calling it raises no second error.
pub struct Undo<C> {
    call: Box<UndoFn<C>>,
}

type UndoFn<C> = dyn for<'a> Fn(&'a StepContext, C) -> UndoFuture<'a> + Send + Sync;

/// Checks that `f` compensates data `C`.
pub fn compensate<C: Send + 'static, F>(f: F) -> Undo<C>
where
    F: for<'a> CompensateFn<'a, C>,
{
    // `f` is a function item: the box holds nothing and does not allocate.
    Undo {
        call: Box::new(move |ctx, data| {
            let fut = f(ctx, data);
            smallbox::smallbox!(async move { fut.await.map_err(|err| err.to_string()) })
        }),
    }
}

impl<C> Undo<C> {
    /// Runs the compensation.
    pub fn call(self, ctx: &StepContext, data: C) -> UndoFuture<'_> {
        (self.call)(ctx, data)
    }
}

/// The compensation of a step method, `#[step(compensate = Self::void)]`: an associated
/// function `async fn(&StepContext, Data)`, or a method `async fn(&self, &StepContext, Data)`,
/// which is called on a clone of the service (so the service is `Clone + Send + Sync +
/// 'static`, as services holding a client or a pool behind an `Arc` are).
pub fn method_compensate<C, S, F, M>(f: F, receiver: &S) -> SharedUndo<C>
where
    C: Send + 'static,
    F: MethodCompensation<S, C, M>,
{
    f.bind(receiver)
}

/// A compensation bound to what it needs (for a method, a clone of its service), shared by
/// the run's compensation stack and its replicas.
pub struct SharedUndo<C> {
    call: std::sync::Arc<UndoFn<C>>,
}

impl<C> Clone for SharedUndo<C> {
    fn clone(&self) -> Self {
        SharedUndo {
            call: std::sync::Arc::clone(&self.call),
        }
    }
}

impl<C> SharedUndo<C> {
    /// Runs the compensation.
    pub fn call<'a>(&self, ctx: &'a StepContext, data: C) -> UndoFuture<'a> {
        (self.call)(ctx, data)
    }
}

/// What a step method's `compensate = ...` names: an associated function or a method.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot compensate this step method",
    label = "expected `async fn(&StepContext, {C})`, or a method `async fn(&self, &StepContext, {C})` of a `Clone` service",
    note = "a step method's compensation is an associated function taking the context and the step's compensation data, or a method taking `&self` first (called on a clone of the service, which must be `Clone + Send + Sync + 'static`)"
)]
pub trait MethodCompensation<S, C, M> {
    /// Binds the compensation to (a clone of) the service.
    fn bind(self, receiver: &S) -> SharedUndo<C>;
}

/// [`MethodCompensation`]'s marker for an associated function.
pub enum Associated {}
/// [`MethodCompensation`]'s marker for a method taking `&self`.
pub enum OnService {}

impl<S, C: Send + 'static, F> MethodCompensation<S, C, Associated> for F
where
    F: for<'a> CompensateFn<'a, C>,
{
    fn bind(self, _: &S) -> SharedUndo<C> {
        SharedUndo {
            call: std::sync::Arc::new(move |ctx, data| {
                let fut = self(ctx, data);
                smallbox::smallbox!(async move { fut.await.map_err(|err| err.to_string()) })
            }),
        }
    }
}

/// A method compensating data `C` on service `S`.
pub trait ServiceCompensateFn<'a, S: 'a, C>:
    Fn(&'a S, &'a StepContext, C) -> Self::Fut + Clone + Send + Sync + 'static
{
    /// The compensation's error.
    type Err: std::fmt::Display;
    /// The compensation's future.
    type Fut: Future<Output = Result<(), Self::Err>> + Send + 'a;
}

impl<'a, S: 'a, C, F, Fut, E> ServiceCompensateFn<'a, S, C> for F
where
    F: Fn(&'a S, &'a StepContext, C) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'a,
    E: std::fmt::Display,
{
    type Err = E;
    type Fut = Fut;
}

impl<S, C, F> MethodCompensation<S, C, OnService> for F
where
    S: Clone + Send + Sync + 'static,
    C: Send + 'static,
    F: for<'a> ServiceCompensateFn<'a, S, C>,
{
    fn bind(self, receiver: &S) -> SharedUndo<C> {
        let service = receiver.clone();
        SharedUndo {
            call: std::sync::Arc::new(move |ctx, data| {
                let service = service.clone();
                let f = self.clone();
                smallbox::smallbox!(async move {
                    f(&service, ctx, data).await.map_err(|err| err.to_string())
                })
            }),
        }
    }
}

// Step options.

/// The error constructor of a step with `timeout = ...`: its error type must say how it
/// represents a timeout.
pub fn on_timeout<E: TimeoutError>() -> fn(StepTimeout) -> E {
    E::from
}

/// The error of a step with `timeout = ...`: a timed-out attempt fails with it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of a step with `timeout`",
    label = "a timed-out attempt fails with this error, made from a `StepTimeout`",
    note = "give it a variant for timeouts, e.g. `#[error(transparent)] Timeout(#[from] hookflow::StepTimeout)`"
)]
pub trait TimeoutError: From<StepTimeout> {}
impl<E: From<StepTimeout>> TimeoutError for E {}

/// The transient-error test of a step with `retry(when = f)`.
pub fn transient<E>(f: fn(&E) -> bool) -> fn(&E) -> bool {
    f
}

/// Checks at compile time that an input of a step with `retry` can be cloned for each attempt,
/// and hands the generated code the clone (so that cloning raises no second error).
pub const fn assert_retry_input<T: RetryInput>() -> fn(&T) -> T {
    <T as Clone>::clone
}

/// An input of a step with `retry(...)`: each attempt gets its own clone.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is an input of a step with `retry`, so it must be `Clone`",
    label = "each attempt gets its own clone of this input",
    note = "derive or implement `Clone` for it, or remove `retry`"
)]
pub trait RetryInput: Clone {}
impl<T: Clone> RetryInput for T {}

// Registration. Each registrar method generated by `#[workflow]` takes its handler through
// one of these traits, which has two impls: one for the handlers of its kind, and one that
// never applies. With two candidate impls, rustc reports a handler of the wrong kind or
// payload with the trait's own message (what to write) instead of a type mismatch found deep
// inside the handler trait (with its suggestion to wrap the function in a closure).

mod sealed {
    pub trait Sealed {}
}

/// Implemented by nothing (its supertrait is private): the second impl of each `*Arg`
/// trait requires it.
pub trait Unimplementable: sealed::Sealed {}

/// The marker of the impl that applies.
#[derive(Debug)]
pub enum Fits {}
/// The marker of the impl that never applies.
#[derive(Debug)]
pub enum NeverFits {}

/// A handler for a `before<T>` hook of workflow `W`.
#[diagnostic::on_unimplemented(
    message = "this is not a `before` hook handler for `{T}`",
    label = "expected `async fn(&HookContext, {T}) -> Result<{T}, E>`",
    note = "a `before` handler receives the data and returns it, changed or not:\n  async fn handler(ctx: &HookContext, data: {T}) -> Result<{T}, MyError>",
    note = "an `after` handler (`&{T}` in, `Result<(), E>` out) goes on an `after` hook"
)]
pub trait HandlesBefore<W, T, M> {
    /// Registers the handler on `point`.
    fn register(self, registrar: &mut Registrar<'_, W>, point: HookPoint<W, Before<T>>);
}

impl<W: Workflow, T: Send + 'static, F> HandlesBefore<W, T, Fits> for F
where
    F: for<'a> BeforeHandler<'a, T>,
{
    fn register(self, registrar: &mut Registrar<'_, W>, point: HookPoint<W, Before<T>>) {
        registrar.before(point, self);
    }
}

impl<W, T, F: Unimplementable> HandlesBefore<W, T, NeverFits> for F {
    fn register(self, _: &mut Registrar<'_, W>, _: HookPoint<W, Before<T>>) {
        unreachable!("`Unimplementable` has no impl")
    }
}

/// A handler for an `after<T>` hook of workflow `W`.
#[diagnostic::on_unimplemented(
    message = "this is not an `after` hook handler for `{T}`",
    label = "expected `async fn(&HookContext, &{T}) -> Result<(), E>`",
    note = "an `after` handler observes the value and cannot change it:\n  async fn handler(ctx: &HookContext, value: &{T}) -> Result<(), MyError>",
    note = "a `before` handler (`{T}` in, `Result<{T}, E>` out) goes on a `before` hook"
)]
pub trait HandlesAfter<W, T, M> {
    /// Registers the handler on `point`.
    fn register(self, registrar: &mut Registrar<'_, W>, point: HookPoint<W, After<T>>);
}

impl<W: Workflow, T: Sync + 'static, F> HandlesAfter<W, T, Fits> for F
where
    F: for<'a> AfterHandler<'a, T>,
{
    fn register(self, registrar: &mut Registrar<'_, W>, point: HookPoint<W, After<T>>) {
        registrar.after(point, self);
    }
}

impl<W, T, F: Unimplementable> HandlesAfter<W, T, NeverFits> for F {
    fn register(self, _: &mut Registrar<'_, W>, _: HookPoint<W, After<T>>) {
        unreachable!("`Unimplementable` has no impl")
    }
}

/// A handler for a `step<T, R>` hook of workflow `W`: a `#[step]` fn.
#[diagnostic::on_unimplemented(
    message = "this is not a step handler for a `step<{T}, {R}>` hook",
    label = "expected a `#[step]` fn taking `{T}` and returning `{R}`",
    note = "a step hook's handler is a step, with its own compensation if it has one:\n  #[step]\n  async fn handler(ctx: &StepContext, payload: {T}) -> Result<{R}, MyError>",
    note = "a plain `async fn` is not a step yet: put `#[step]` (or `#[step(compensate = undo)]`) on it, which makes it a step the run journals and compensates"
)]
pub trait HandlesStepHook<W, T, R, M> {
    /// Registers the handler on `point`.
    fn register(self, registrar: &mut Registrar<'_, W>, point: HookPoint<W, StepHook<T, R>>);
}

impl<W: Workflow, T: Send + 'static, R: Send + 'static, F> HandlesStepHook<W, T, R, Fits> for F
where
    F: for<'a> StepHookHandler<'a, T, R>,
{
    fn register(self, registrar: &mut Registrar<'_, W>, point: HookPoint<W, StepHook<T, R>>) {
        registrar.step(point, self);
    }
}

impl<W, T, R, F: Unimplementable> HandlesStepHook<W, T, R, NeverFits> for F {
    fn register(self, _: &mut Registrar<'_, W>, _: HookPoint<W, StepHook<T, R>>) {
        unreachable!("`Unimplementable` has no impl")
    }
}

/// A handler for an `after<I, O>` hook of workflow `W`.
#[diagnostic::on_unimplemented(
    message = "this is not an `after` hook handler for input `{I}` and result `{O}`",
    label = "expected `async fn(&HookContext, &{I}, &{O}) -> Result<(), E>`",
    note = "an `after<{I}, {O}>` handler observes the input first, then the result, by reference, and cannot change them:\n  async fn handler(ctx: &HookContext, input: &{I}, result: &{O}) -> Result<(), MyError>"
)]
pub trait HandlesAfterResult<W, I, O, M> {
    /// Registers the handler on `point`.
    fn register(self, registrar: &mut Registrar<'_, W>, point: HookPoint<W, AfterResult<I, O>>);
}

impl<W: Workflow, I: Sync + 'static, O: Sync + 'static, F> HandlesAfterResult<W, I, O, Fits> for F
where
    F: for<'a> AfterResultHandler<'a, I, O>,
{
    fn register(self, registrar: &mut Registrar<'_, W>, point: HookPoint<W, AfterResult<I, O>>) {
        registrar.after_result(point, self);
    }
}

impl<W, I, O, F: Unimplementable> HandlesAfterResult<W, I, O, NeverFits> for F {
    fn register(self, _: &mut Registrar<'_, W>, _: HookPoint<W, AfterResult<I, O>>) {
        unreachable!("`Unimplementable` has no impl")
    }
}

/// What the first parameter of a transactional step must be: checked at the user's type.
#[diagnostic::on_unimplemented(
    message = "a `#[step(transaction)]` takes its transaction's context first: `ctx: &TxContext`, not `{Self}`",
    label = "expected `&TxContext`",
    note = "the transactional step's context carries its database transaction:\n  #[step(transaction)]\n  async fn create_order(ctx: &TxContext, cart: Cart) -> Result<Order, ShopError>"
)]
pub trait TransactionalContext {}
impl TransactionalContext for &crate::run::TxContext {}

/// Checks, at the user's type, that a transactional step takes a `&TxContext`.
pub const fn transactional_context<T: TransactionalContext>() {}
