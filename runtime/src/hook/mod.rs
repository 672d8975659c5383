//! Hooks: typed extension points that a workflow declares and other code attaches to.
//!
//! A workflow declares its hook points in `#[workflow(hooks(...))]`; each is a constant such
//! as `Checkout::VALIDATE` of type [`HookPoint<Checkout, Before<CheckoutData>>`](HookPoint).
//! The workflow body fires it with `ctx.hook(Checkout::VALIDATE, data)`; the application and
//! plugins register handlers through the generated registrar
//! (`Checkout::hooks(&mut hooks).validate(handler)`), whose methods accept only handlers of
//! the hook's kind and payload.
//!
//! Three kinds:
//! - [`Before<T>`]: each handler receives the data and returns it, changed or not; handlers
//!   chain; an error aborts the run (completed steps are compensated).
//! - [`After<T>`]: each handler observes `&T`; an error is recorded in the run's hook errors
//!   and nothing is rolled back.
//! - [`AfterResult<I, O>`] (declared `after<I, O>`): as `after<T>`, but each handler observes
//!   both the operation's input `&I` and its result `&O`.
//! - [`StepHook<T, R>`]: each handler is a `#[step]` (with its own compensation, if any); the
//!   workflow gets one `R` per handler; if a later step fails, the handlers' compensations run
//!   like any step's.
//!
//! Handlers run by [`Slot`] (prepended, configured, appended); within a slot, the
//! application's handlers first, then plugins', each in registration order.
//!
//! Each handler has a name, recorded in the run's journal (a resumed run checks that it has
//! the same handlers), shown by the CLI and the diagrams: the one given at registration
//! (`.named("check-minimum")`), or by default the function's own identifier (see
//! [`Registrar::named`]). A `before`/`after` handler may have a time limit: the engine's
//! ([`EngineBuilder::hook_timeout`](crate::EngineBuilder::hook_timeout)) or its own
//! ([`Registrar::timeout`]); one that runs past it fails with a [`HandlerTimeout`](crate::HandlerTimeout).

//!
//! Layer 3: registration knows the contexts handlers receive, never the engine or how a run
//! executes (firing, in the `run` layer, implements [`Fire`]).

mod handler;
mod name;
mod registry;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::WorkflowContext;
use crate::types::RecordError;

pub use crate::types::Slot;
pub use handler::{AfterHandler, AfterResultHandler, BeforeHandler, StepHookHandler};
pub(crate) use handler::{ErasedAfter, ErasedAfterResult, ErasedBefore, ErasedStepHook};
pub(crate) use name::same_handler;
pub(crate) use registry::{HandlerEntry, HandlerList, Registry, WorkflowHookTable};
pub use registry::{Hooks, Plugin, Registrar};

/// A `before` hook kind with payload `T`.
pub struct Before<T>(PhantomData<fn(T) -> T>);
/// An `after` hook kind with payload `T`.
pub struct After<T>(PhantomData<fn(&T)>);
/// A `step` hook kind: handlers are steps taking `T` and returning `R`.
pub struct StepHook<T, R = ()>(PhantomData<fn(T) -> R>);
/// An `after` hook kind whose handlers observe an input `I` and a result `O` (declared
/// `after<I, O>`; the one-value `after<T>` is [`After<T>`]).
pub struct AfterResult<I, O>(PhantomData<fn(&I, &O)>);

/// A typed hook point of workflow `W`, of kind `K` ([`Before`], [`After`], [`AfterResult`] or
/// [`StepHook`]).
///
/// The `#[workflow]` macro generates one constant per declared hook (`Checkout::VALIDATE`).
pub struct HookPoint<W, K> {
    index: u16,
    name: &'static str,
    /// How the journal writes and reads a `before` hook's data (checked at the declaration).
    data: Option<HookDataOps>,
    _marker: PhantomData<fn() -> (W, K)>,
}

/// A `before` hook's payload as JSON, within the record limits (its largest size given), or
/// why not; the function names the payload in the error.
type PayloadToJson =
    fn(&dyn Any, usize, &dyn Fn() -> String) -> Result<serde_json::Value, RecordError>;

/// How the journal writes and reads a `before` hook's payload, type-erased: made by
/// `#[workflow]` where the hook is declared, with the payload's serde impls.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct HookDataOps {
    pub(crate) to_json: PayloadToJson,
    pub(crate) from_json: fn(serde_json::Value) -> Result<Box<dyn Any + Send>, serde_json::Error>,
}

impl HookDataOps {
    /// The operations of payload `T`.
    pub(crate) const fn of<T: HookData>() -> Self {
        HookDataOps {
            to_json: |value, max_bytes, what| match value.downcast_ref::<T>() {
                Some(value) => crate::types::to_record(value, max_bytes, what),
                None => Err(RecordError::Unserializable {
                    what: what(),
                    message: "not the hook's payload type".to_owned(),
                }),
            },
            from_json: |json| {
                serde_json::from_value::<T>(json).map(|t| Box::new(t) as Box<dyn Any + Send>)
            },
        }
    }
}

impl<W, K> HookPoint<W, K> {
    #[doc(hidden)]
    pub const fn __new(index: u16, name: &'static str) -> Self {
        HookPoint {
            index,
            name,
            data: None,
            _marker: PhantomData,
        }
    }

    #[doc(hidden)]
    pub const fn __journaled(mut self, ops: HookDataOps) -> Self {
        self.data = Some(ops);
        self
    }

    /// How the journal writes and reads the hook's data, if it is journaled.
    pub(crate) fn data_ops(&self) -> Option<HookDataOps> {
        self.data
    }

    /// The hook's name, as declared.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn index(&self) -> usize {
        usize::from(self.index)
    }
}

impl<W, K> Clone for HookPoint<W, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W, K> Copy for HookPoint<W, K> {}

impl<W, K> fmt::Debug for HookPoint<W, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookPoint")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish()
    }
}

/// How a hook kind fires: what `ctx.hook(point, payload)` takes and returns for it.
///
/// Implemented for [`Before<T>`], [`After<T>`], [`AfterResult<I, O>`] and [`StepHook<T, R>`]; see
/// [`WorkflowContext::hook`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a hook kind of workflow `{W}`",
    note = "fire one of the workflow's own hook points, such as `Checkout::VALIDATE`"
)]
pub trait Fire<W>: Sized + 'static {
    /// What the hook takes.
    type Payload<'p>;
    /// What firing it returns.
    type Output;

    #[doc(hidden)]
    fn fire<'a>(
        point: HookPoint<W, Self>,
        ctx: &'a WorkflowContext,
        payload: Self::Payload<'a>,
    ) -> impl Future<Output = Self::Output> + Send + 'a;

    /// What firing returns when the hook point has no handler: the payload back (`before`),
    /// nothing (`after`), no results (`step`). Called instead of [`Fire::fire`], without
    /// building its future, when the workflow's hook table has nothing at the point.
    #[doc(hidden)]
    fn unhandled(payload: Self::Payload<'_>) -> Self::Output;
}

/// What a `before` hook's payload must be: a serde type, because the run's journal records
/// what each handler returns, so that a resumed run gets it back without calling the handler
/// again. `#[workflow]` checks it where the hook is declared (and only there).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the payload of a `before` hook",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "the run's journal records what each `before` handler returns, so that a resumed run gets it back without calling the handler again; derive them: #[derive(serde::Serialize, serde::Deserialize)]"
)]
pub trait HookData: Serialize + DeserializeOwned + Send + 'static {}
// Not recommended: a type that is not hook data is reported with `HookData`'s message, once.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> HookData for T {}

/// The hook kinds a transactional step (`#[step(transaction)]`) can fire with
/// `TxContext::hook`: `before` and `after`, whose handlers run inside its transaction.
#[diagnostic::on_unimplemented(
    message = "a `{Self}` hook cannot be fired inside a transactional step",
    label = "not a `before` or `after` hook",
    note = "a transactional step fires `before` and `after` hooks, whose handlers run inside its transaction; a `step` hook's handlers are steps, which commit on their own: fire it from the workflow body"
)]
pub trait TransactionalHook {}
impl<T> TransactionalHook for Before<T> {}
impl<T> TransactionalHook for After<T> {}
impl<I, O> TransactionalHook for AfterResult<I, O> {}
