//! [`TypedContext`]: a workflow body's context, typed by its workflow.

use std::marker::PhantomData;
use std::ops::Deref;

use super::{HookRefusal, WorkflowContext};
use crate::hook::{Fire, HookPoint};
use crate::workflow::Workflow;

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
