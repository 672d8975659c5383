//! Firing a hook point from the workflow body: run its handlers in order, per kind (the
//! [`Fire`] impls of [`Before`], [`After`] and [`StepHook`]).

use std::any::TypeId;
use std::future::Future;

use tracing::Instrument;

use crate::context::{HookContext, RunShared, WorkflowContext};
use crate::hook::{
    After, Before, ErasedAfter, ErasedBefore, ErasedStepHook, Fire, HandlerEntry, HandlerList,
    HookPoint, StepHook,
};
use crate::journal::EventKind;
use crate::types::{BoxError, CatchUnwind, HookError, HookFailure, PanicError, lock};
use crate::workflow::Workflow;

fn handlers<W: Workflow, H: ?Sized + 'static>(
    ctx: &WorkflowContext,
    index: usize,
) -> Option<&HandlerList<H>> {
    ctx.table_for(TypeId::of::<W>())?.list::<H>(index)
}

fn hook_context<H: ?Sized>(
    ctx: &WorkflowContext,
    hook: &'static str,
    entry: &HandlerEntry<H>,
) -> HookContext {
    HookContext {
        rc: ctx.rc.clone(),
        hook,
        slot: entry.slot,
        handler: entry.name,
    }
}

fn handler_span<H: ?Sized>(hook: &'static str, entry: &HandlerEntry<H>) -> tracing::Span {
    tracing::info_span!("hook", hook, slot = %entry.slot, handler = entry.name)
}

/// Calls a before/after handler, unless the run's fault injector makes it fail or panic.
async fn call_handler<T, Fut>(
    run: &RunShared,
    entry_name: &'static str,
    call: impl FnOnce() -> Fut,
) -> Result<Result<T, BoxError>, PanicError>
where
    Fut: Future<Output = Result<T, BoxError>>,
{
    match run.env.faults.handler(entry_name) {
        Some(fault) if fault.is_panic() => Err(PanicError {
            message: fault.message(),
        }),
        Some(fault) => Ok(Err(fault.message().into())),
        None => CatchUnwind::new(call()).await.map_err(|panic| PanicError {
            message: panic.message(),
        }),
    }
}

fn fired(run: &RunShared, hook: &'static str, handlers: usize) {
    run.record(EventKind::HookFired {
        hook: hook.into(),
        handlers: u32::try_from(handlers).unwrap_or(u32::MAX),
    });
}

fn completed<H: ?Sized>(run: &RunShared, hook: &'static str, entry: &HandlerEntry<H>) {
    run.record(EventKind::HookHandlerCompleted {
        hook: hook.into(),
        slot: entry.slot,
        handler: entry.name.into(),
    });
}

/// Records a failed handler and makes the error that reports it.
fn failed<H: ?Sized>(
    run: &RunShared,
    workflow: &'static str,
    hook: &'static str,
    entry: &HandlerEntry<H>,
    outcome: Result<BoxError, PanicError>,
) -> HookError {
    let (source, panicked): (BoxError, bool) = match outcome {
        Ok(err) => (err, false),
        Err(panic) => (Box::new(panic), true),
    };
    run.record(EventKind::HookHandlerFailed {
        hook: hook.into(),
        slot: entry.slot,
        handler: entry.name.into(),
        error: source.to_string(),
        panicked,
    });
    HookError {
        workflow,
        hook,
        slot: entry.slot,
        handler: entry.name,
        source,
    }
}

impl<W: Workflow, T: Send + 'static> Fire<W> for Before<T> {
    type Payload<'p> = T;
    type Output = Result<T, HookError>;

    async fn fire(point: HookPoint<W, Self>, ctx: &WorkflowContext, payload: T) -> Self::Output {
        let run = ctx.shared();
        let Some(list) = handlers::<W, dyn ErasedBefore<T>>(ctx, point.index()) else {
            return Ok(payload);
        };
        let hook = point.name();
        fired(run, hook, list.entries().len());
        let mut data = payload;
        for entry in list.entries() {
            let hctx = hook_context(ctx, hook, entry);
            let call = call_handler(run, entry.name, || entry.handler.call(&hctx, data));
            match call.instrument(handler_span(hook, entry)).await {
                Ok(Ok(next)) => {
                    data = next;
                    completed(run, hook, entry);
                }
                Ok(Err(err)) => return Err(failed(run, W::META.name(), hook, entry, Ok(err))),
                Err(panic) => return Err(failed(run, W::META.name(), hook, entry, Err(panic))),
            }
        }
        Ok(data)
    }
}

impl<W: Workflow, T: Sync + 'static> Fire<W> for After<T> {
    type Payload<'p> = &'p T;
    type Output = ();

    async fn fire<'a>(point: HookPoint<W, Self>, ctx: &'a WorkflowContext, value: &'a T) {
        let run = ctx.shared();
        let Some(list) = handlers::<W, dyn ErasedAfter<T>>(ctx, point.index()) else {
            return;
        };
        let hook = point.name();
        fired(run, hook, list.entries().len());
        for entry in list.entries() {
            let hctx = hook_context(ctx, hook, entry);
            let call = call_handler(run, entry.name, || entry.handler.call(&hctx, value));
            let outcome = match call.instrument(handler_span(hook, entry)).await {
                Ok(Ok(())) => {
                    completed(run, hook, entry);
                    continue;
                }
                Ok(Err(err)) => Ok(err),
                Err(panic) => Err(panic),
            };
            let error = failed(run, W::META.name(), hook, entry, outcome);
            tracing::warn!(%error, "hookflow: after-hook handler failed; recorded, nothing rolled back");
            lock(&run.state).hook_errors.push(HookFailure {
                hook,
                slot: entry.slot,
                handler: entry.name,
                plugin: entry.plugin.as_deref().map(str::to_owned),
                panicked: error.is_panic(),
                error: error.source.to_string(),
            });
        }
    }
}

impl<W: Workflow, T: Clone + Send + Sync + 'static, R: Send + 'static> Fire<W> for StepHook<T, R> {
    type Payload<'p> = T;
    type Output = Result<Vec<R>, HookError>;

    async fn fire(point: HookPoint<W, Self>, ctx: &WorkflowContext, payload: T) -> Self::Output {
        let run = ctx.shared();
        let Some(list) = handlers::<W, dyn ErasedStepHook<T, R>>(ctx, point.index()) else {
            return Ok(Vec::new());
        };
        let hook = point.name();
        let entries = list.entries();
        fired(run, hook, entries.len());
        let mut results = Vec::with_capacity(entries.len());
        let mut payload = Some(payload);
        for (i, entry) in entries.iter().enumerate() {
            // The last handler takes the payload itself; the others a clone.
            let input = if i + 1 == entries.len() {
                payload.take()
            } else {
                payload.clone()
            };
            let Some(input) = input else { break };
            let call = CatchUnwind::new(entry.handler.call(ctx, input));
            match call.await {
                Ok(Ok(result)) => {
                    results.push(result);
                    completed(run, hook, entry);
                }
                Ok(Err(err)) => return Err(failed(run, W::META.name(), hook, entry, Ok(err))),
                Err(panic) => {
                    // The step recorded its panic; it is this hook's error now, not the body's.
                    lock(&run.state).panicked_step = None;
                    let panic = PanicError {
                        message: panic.message(),
                    };
                    return Err(failed(run, W::META.name(), hook, entry, Err(panic)));
                }
            }
        }
        Ok(results)
    }
}
