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
//! - [`StepHook<T, R>`]: each handler is a `#[step]` (with its own compensation, if any); the
//!   workflow gets one `R` per handler; if a later step fails, the handlers' compensations run
//!   like any step's.
//!
//! Handlers run by [`Slot`] (prepended, configured, appended); within a slot, the
//! application's handlers first, then plugins', each in registration order.

mod fire;
mod handler;
pub(crate) mod registry;

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

pub use fire::Fire;
pub use handler::{AfterHandler, BeforeHandler, StepHookHandler};
pub use registry::{Hooks, Plugin, Registrar};

/// A `before` hook kind with payload `T`.
pub struct Before<T>(PhantomData<fn(T) -> T>);
/// An `after` hook kind with payload `T`.
pub struct After<T>(PhantomData<fn(&T)>);
/// A `step` hook kind: handlers are steps taking `T` and returning `R`.
pub struct StepHook<T, R = ()>(PhantomData<fn(T) -> R>);

/// A typed hook point of workflow `W`, of kind `K` ([`Before`], [`After`] or [`StepHook`]).
///
/// The `#[workflow]` macro generates one constant per declared hook (`Checkout::VALIDATE`).
pub struct HookPoint<W, K> {
    index: u16,
    name: &'static str,
    _marker: PhantomData<fn() -> (W, K)>,
}

impl<W, K> HookPoint<W, K> {
    #[doc(hidden)]
    pub const fn __new(index: u16, name: &'static str) -> Self {
        HookPoint {
            index,
            name,
            _marker: PhantomData,
        }
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

/// Where a handler runs among the handlers of its hook point: every prepended handler runs
/// before every configured one, and every configured one before every appended one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// Runs first.
    Prepended,
    /// The default slot.
    Configured,
    /// Runs last.
    Appended,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::Prepended => "prepended",
            Slot::Configured => "configured",
            Slot::Appended => "appended",
        })
    }
}
