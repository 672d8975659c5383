//! The run's compensation stack: what a completed step leaves to undo it, and the shape of a
//! compensation function ([`CompensateFn`]). Running them is the `run` layer's.

use std::fmt::Display;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StepContext;
use crate::types::{Key, StepMeta, to_json};

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
    /// The step: its name, and its compensation's retry policy.
    pub(crate) meta: &'static StepMeta,
    pub(crate) position: u32,
    /// The step's key, for the compensation's idempotency key.
    pub(crate) key: Key,
    /// The workflow (the run's own, or a nested one) whose step it undoes.
    pub(crate) frame: u32,
    pub(crate) action: Action,
}

/// A run's compensation stack: its first [`INLINE_COMPENSATIONS`] entries are stored in the
/// run's state itself (no allocation for a run of that many compensable steps), the others
/// spill to the heap.
pub(crate) type CompensationStack = smallvec::SmallVec<[Compensation; INLINE_COMPENSATIONS]>;

/// How many compensations a run holds without allocating: six, 432 bytes of every run's
/// state (each entry is 72 bytes; a run with more compensable steps moves its stack to the
/// heap once, at the seventh).
pub(crate) const INLINE_COMPENSATIONS: usize = 6;

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

/// A running compensation, type-erased: stored inline when it fits in 128 bytes (with the
/// compensation's own future, inline too), so that undoing a step allocates nothing.
pub(crate) type CompensationFuture<'a> =
    smallbox::SmallBox<dyn Future<Output = Result<(), String>> + Send + 'a, smallbox::space::S16>;

pub(crate) trait CompensateAction: Send {
    fn data_json(&self) -> Option<serde_json::Value>;
    /// Starts the compensation with the data, which it takes: an action runs once.
    fn run<'a>(&mut self, ctx: &'a StepContext) -> CompensationFuture<'a>;
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
        self.data.as_ref().and_then(to_json)
    }

    fn run<'a>(&mut self, ctx: &'a StepContext) -> CompensationFuture<'a> {
        let data = self.data.take();
        let compensate = self.compensate.clone();
        // The call is inside the future, so that a panic while making the compensation's
        // future is caught with the rest.
        smallbox::smallbox!(async move {
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
