//! A hook point of another workflow, fired in this workflow's body: refused, never run.
//!
//! A body's `ctx` (a [`TypedContext`](super::TypedContext)) takes only its own workflow's
//! hook points, so this is a compile error there; through a plain `&WorkflowContext` (deref,
//! nested helpers) it compiles, and [`WorkflowContext::hook`] refuses it at run time.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::WorkflowContext;
use crate::types::{HookError, HookFailed, HookFailure, Slot};

/// What the handler of a refused firing is called in its [`HookError`] or [`HookFailure`]:
/// no handler ran.
pub(crate) const NO_HANDLER: &str = "(none: hook of another workflow)";

/// Why a firing was refused: the hook belongs to another workflow than the body firing it.
#[derive(Debug, thiserror::Error)]
#[error(
    "fired in the body of workflow `{fired_in}`, which does not declare it; no handler ran (fire a workflow's hooks from its own body only)"
)]
pub(crate) struct ForeignHook {
    fired_in: &'static str,
}

/// What firing a hook returns, when the hook belongs to another workflow than the body firing
/// it ([`WorkflowContext::hook`]): a `before` or `step` hook returns a [`HookError`] (its
/// source says which workflow fired it), an `after` hook records a [`HookFailure`] in
/// [`Outcome::hook_errors`](crate::Outcome::hook_errors). Implemented for the outputs of the
/// three hook kinds only; you never implement it.
pub trait HookRefusal: Send + Sized + sealed::Sealed {
    #[doc(hidden)]
    fn refused(ctx: &WorkflowContext, workflow: &'static str, hook: &'static str) -> Self;
}

mod sealed {
    // Public in a private module: nameable by `HookRefusal`'s bound, by nobody outside.
    #[allow(unreachable_pub)]
    pub trait Sealed {}
    impl<T> Sealed for Result<T, crate::types::HookError> {}
    impl Sealed for () {}
}

impl<T: Send> HookRefusal for Result<T, HookError> {
    fn refused(ctx: &WorkflowContext, workflow: &'static str, hook: &'static str) -> Self {
        Err(HookFailed {
            workflow,
            hook,
            slot: Slot::Configured,
            handler: NO_HANDLER,
            source: Box::new(ForeignHook {
                fired_in: ctx.rc.workflow,
            }),
        }
        .into())
    }
}

impl HookRefusal for () {
    fn refused(ctx: &WorkflowContext, workflow: &'static str, hook: &'static str) {
        let error = ForeignHook {
            fired_in: ctx.rc.workflow,
        };
        tracing::warn!(hook, workflow, "{error}");
        ctx.rc
            .run
            .state
            .lock()
            .extra()
            .hook_errors
            .push(HookFailure {
                hook,
                slot: Slot::Configured,
                handler: NO_HANDLER,
                plugin: None,
                error: format!("hook of workflow `{workflow}` {error}"),
                panicked: false,
            });
    }
}

pin_project_lite::pin_project! {
    /// A firing: the hook kind's own, or an output ready at once (a refusal, or the output of a
    /// point without handlers), then done once that output is taken (so that dropping the
    /// firing drops nothing).
    #[project = FiringProj]
    #[project_replace = FiringReplace]
    pub(crate) enum Firing<F, O> {
        Fire { #[pin] fire: F },
        Ready { output: O },
        Done,
    }
}

impl<F: Future<Output = O>, O> Future for Firing<F, O> {
    type Output = O;
    // Inlined: a ready output (a point without handlers) costs its caller a few instructions;
    // the kind's own future is polled out of line.
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        match self.as_mut().project() {
            FiringProj::Fire { fire } => poll_fire(fire, cx),
            // Polled once: a firing is awaited once, and its ready output is ready at once.
            FiringProj::Ready { .. } => match self.project_replace(Firing::Done) {
                FiringReplace::Ready { output } => Poll::Ready(output),
                _ => Poll::Pending,
            },
            FiringProj::Done => Poll::Pending,
        }
    }
}

#[inline(never)]
fn poll_fire<F: Future>(fire: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    fire.poll(cx)
}
