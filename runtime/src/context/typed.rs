//! [`TypedContext`]: a workflow body's context, typed by its workflow.

use std::marker::PhantomData;
use std::ops::Deref;

use super::WorkflowContext;

/// The context of a workflow body, typed by its workflow `W`: `#[workflow]` gives the body
/// this (it derefs to [`WorkflowContext`], so it goes wherever a `&WorkflowContext` does),
/// and its [`wait`](TypedContext::wait) takes only `W`'s own events: waiting for another
/// workflow's event does not compile.
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
