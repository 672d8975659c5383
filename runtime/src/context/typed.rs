//! [`TypedContext`]: a workflow body's context, typed by its workflow.

use std::marker::PhantomData;
use std::ops::Deref;

use super::{HookRefusal, WorkflowContext};
use crate::hook::{Fire, HookPoint};
use crate::workflow::{DeclaredData, Workflow};

/// The context of a workflow body, typed by its workflow `W`: `#[workflow]` gives the body
/// this (it derefs to [`WorkflowContext`], so it goes wherever a `&WorkflowContext` does),
/// its [`hook`](TypedContext::hook) takes only `W`'s own hook points and its
/// [`wait`](TypedContext::wait) only `W`'s own events: firing another workflow's hook or
/// waiting for another workflow's event does not compile.
pub struct TypedContext<'a, W> {
    ctx: &'a WorkflowContext,
    _workflow: PhantomData<fn() -> W>,
}

impl<'a, W> TypedContext<'a, W> {
    #[doc(hidden)]
    pub fn new(ctx: &'a WorkflowContext) -> Self {
        TypedContext {
            ctx,
            _workflow: PhantomData,
        }
    }
}

impl<'a, W: Workflow> TypedContext<'a, W> {
    /// Fires `point`, one of this workflow's own hook points ([`WorkflowContext::hook`]): a
    /// hook point of another workflow does not compile here.
    #[inline(always)]
    pub fn hook<'b, K>(
        &'b self,
        point: HookPoint<W, K>,
        payload: K::Payload<'b>,
    ) -> impl Future<Output = K::Output> + Send + 'b
    where
        K: Fire<W>,
        K::Output: HookRefusal,
    {
        WorkflowContext::hook(self.ctx, point, payload)
    }
}

impl<W: DeclaredData> TypedContext<'_, W> {
    /// The run's additional data, as the type the workflow declares
    /// (`#[workflow(additional_data = T)]`): the engine checked it before the run started, so
    /// there is no `Result` to handle. (To read it as another type, as handlers do:
    /// `RunContext::additional_data::<T>(&ctx)`.)
    ///
    /// # Panics
    /// Only where the start's check did not apply: in a nested workflow whose parent's run
    /// carries another type, or in a run recorded before its workflow declared this type. A
    /// panic in a body fails the run, which is compensated; a declaration on a nested
    /// workflow must match its parents'.
    pub fn additional_data(&self) -> W::Data {
        match self.ctx.additional_data::<W::Data>() {
            Ok(data) => data,
            Err(err) => panic!(
                "workflow `{}`: its declared additional data was not checked at this run's start: {err}",
                W::META.name()
            ),
        }
    }
}

impl<W> Deref for TypedContext<'_, W> {
    type Target = WorkflowContext;
    fn deref(&self) -> &WorkflowContext {
        self.ctx
    }
}

impl<W> std::fmt::Debug for TypedContext<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.ctx, f)
    }
}
