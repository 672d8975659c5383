//! Firing a hook point from the workflow body: run its handlers in order, per kind (the
//! [`Fire`] impls of [`Before`], [`After`], [`AfterResult`] and [`StepHook`]).

use std::any::TypeId;
use std::future::Future;

use tracing::Instrument;

use super::commit::commit_deferred;
use super::firing::Firing;
use super::halt::{halted, stop};
use crate::context::{Halt, HookContext, RunShared, WorkflowContext, Writer};
use crate::hook::{
    After, AfterResult, Before, ErasedAfter, ErasedAfterResult, ErasedBefore, ErasedStepHook, Fire,
    HandlerEntry, HandlerList, HookPoint, StepHook,
};
use crate::types::{
    BoxError, BoxFuture, CatchUnwind, HandlerTimeout, HookError, HookFailure, PanicError,
};
use crate::workflow::Workflow;

fn handlers<W: Workflow, H: ?Sized + 'static>(
    ctx: &WorkflowContext,
    index: usize,
) -> Option<&HandlerList<H>> {
    ctx.table_for(TypeId::of::<W>())?.list::<H>(index)
}

fn hook_context<H: ?Sized>(
    ctx: &WorkflowContext,
    firing: &Firing<'_>,
    index: usize,
    entry: &HandlerEntry<H>,
) -> HookContext {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    HookContext {
        rc: ctx.rc.writing_as(Writer::Handler {
            firing: firing.index,
            index,
            key: firing.key,
        }),
        hook: firing.hook,
        slot: entry.slot,
        handler: entry.name,
        firing: firing.key,
        index,
        transaction: ctx.transaction.as_ref().and_then(|slot| slot.get()),
    }
}

fn handler_span<H: ?Sized>(hook: &'static str, entry: &HandlerEntry<H>) -> tracing::Span {
    // DEBUG, like a step's span: per-handler detail.
    tracing::debug_span!("hook", hook, slot = %entry.slot, handler = entry.name)
}

/// Calls a before/after handler of hook `hook`, within its time limit if it has one, unless
/// the run's fault injector makes it fail or panic. A handler past its limit is dropped and
/// fails with a [`HandlerTimeout`].
async fn call_handler<T, Fut, H: ?Sized>(
    run: &RunShared,
    hook: &'static str,
    entry: &HandlerEntry<H>,
    call: impl FnOnce() -> Fut,
) -> Result<Result<T, BoxError>, PanicError>
where
    Fut: Future<Output = Result<T, BoxError>>,
{
    // A step's completion left to ride on the next commit is committed before the handler
    // has effects.
    commit_deferred(run).await;
    if let Some(fault) = run.env.faults.handler(entry.name) {
        return if fault.is_panic() {
            Err(PanicError {
                message: fault.message(),
            })
        } else {
            Ok(Err(fault.message().into()))
        };
    }
    let call = CatchUnwind::new(call());
    let ended = match entry.timeout {
        None => call.await,
        // Boxed: only handlers with a time limit carry a timer, not every handler's future.
        Some(limit) => match Box::pin(tokio::time::timeout(limit, call)).await {
            Ok(ended) => ended,
            Err(_elapsed) => {
                return Ok(Err(Box::new(HandlerTimeout {
                    hook,
                    handler: entry.name,
                    limit,
                })));
            }
        },
    };
    ended.map_err(|panic| PanicError {
        message: panic.message(),
    })
}

impl<W: Workflow, T: Send + 'static> Fire<W> for Before<T> {
    type Payload<'p> = T;
    type Output = Result<T, HookError>;

    fn unhandled(payload: T) -> Self::Output {
        Ok(payload)
    }

    async fn fire(point: HookPoint<W, Self>, ctx: &WorkflowContext, payload: T) -> Self::Output {
        let run = ctx.shared();
        let Some(list) = handlers::<W, dyn ErasedBefore<T>>(ctx, point.index()) else {
            return Ok(payload);
        };
        let entries = list.entries();
        let Some(firing) = Firing::start(run, W::META.name(), point.name(), entries) else {
            return halted().await;
        };
        let ops = point.data_ops();
        let mut data = payload;
        for (i, entry) in entries.iter().enumerate() {
            // A handler whose end the journal recorded does not run again.
            match (firing.recorded(i), ops) {
                (Some(Ok(Some(recorded))), Some(ops)) => {
                    let read = (ops.from_json)(recorded.clone());
                    match read.map(|b| b.downcast::<T>().map(|t| *t)) {
                        Ok(Ok(recorded)) => {
                            data = recorded;
                            firing.restore_bag(i);
                            continue;
                        }
                        Ok(Err(_)) => unreachable_type(),
                        Err(err) => {
                            let message = err.to_string();
                            return firing.corrupt(entry, message).await;
                        }
                    }
                }
                (Some(Err((error, panicked))), _) => {
                    firing.restore_bag(i);
                    return Err(firing.replayed_failure(entry, error, *panicked));
                }
                // Completed without its data (a journal of a run that did not record data),
                // or never ended: it runs again.
                _ => {}
            }
            let hctx = hook_context(ctx, &firing, i, entry);
            let call = call_handler(run, firing.hook, entry, || entry.handler.call(&hctx, data));
            match call.instrument(handler_span(firing.hook, entry)).await {
                Ok(Ok(next)) => {
                    let recorded = match ops {
                        Some(ops) if run.records_data() => {
                            let what = || {
                                format!(
                                    "the data handler `{}` of hook `{}` returned",
                                    entry.name, firing.hook
                                )
                            };
                            match (ops.to_json)(&next, run.env.max_record_bytes, &what) {
                                Ok(json) => Some(json),
                                // Not recorded: the run parks here, the handler in flight.
                                Err(err) => return stop(run, Halt::Unrecordable(err)).await,
                            }
                        }
                        _ => None,
                    };
                    data = next;
                    firing.completed(i, entry, recorded);
                    firing.commit().await;
                }
                Ok(Err(err)) => return Err(firing.failed(i, entry, Ok(err))),
                Err(panic) => return Err(firing.failed(i, entry, Err(panic))),
            }
        }
        Ok(data)
    }
}

impl<W: Workflow, T: Sync + 'static> Fire<W> for After<T> {
    type Payload<'p> = &'p T;
    type Output = ();

    fn unhandled(_value: &T) {}

    async fn fire<'a>(point: HookPoint<W, Self>, ctx: &'a WorkflowContext, value: &'a T) {
        fire_after::<W, dyn ErasedAfter<T>, _>(ctx, point.index(), point.name(), Value(value))
            .await;
    }
}

impl<W: Workflow, I: Sync + 'static, O: Sync + 'static> Fire<W> for AfterResult<I, O> {
    type Payload<'p> = (&'p I, &'p O);
    type Output = ();

    fn unhandled(_pair: (&I, &O)) {}

    async fn fire<'a>(
        point: HookPoint<W, Self>,
        ctx: &'a WorkflowContext,
        (input, result): (&'a I, &'a O),
    ) {
        let pair = Pair(input, result);
        fire_after::<W, dyn ErasedAfterResult<I, O>, _>(ctx, point.index(), point.name(), pair)
            .await;
    }
}

/// What an `after` hook's handlers observe, and how one is called with it.
trait Observed<H: ?Sized>: Sync {
    fn call<'c>(
        &'c self,
        handler: &'c H,
        ctx: &'c HookContext,
    ) -> BoxFuture<'c, Result<(), BoxError>>;
}

/// The value of an `after<T>` hook.
struct Value<'a, T>(&'a T);

impl<T: Sync + 'static> Observed<dyn ErasedAfter<T>> for Value<'_, T> {
    fn call<'c>(
        &'c self,
        handler: &'c dyn ErasedAfter<T>,
        ctx: &'c HookContext,
    ) -> BoxFuture<'c, Result<(), BoxError>> {
        handler.call(ctx, self.0)
    }
}

/// The input and the result of an `after<I, O>` hook.
struct Pair<'a, I, O>(&'a I, &'a O);

impl<I: Sync + 'static, O: Sync + 'static> Observed<dyn ErasedAfterResult<I, O>>
    for Pair<'_, I, O>
{
    fn call<'c>(
        &'c self,
        handler: &'c dyn ErasedAfterResult<I, O>,
        ctx: &'c HookContext,
    ) -> BoxFuture<'c, Result<(), BoxError>> {
        handler.call(ctx, self.0, self.1)
    }
}

/// Fires an `after` hook (of either form): each handler observes, and an error (or a time
/// out) is recorded in the run's hook errors; nothing is rolled back.
async fn fire_after<W: Workflow, H: ?Sized + 'static, V: Observed<H>>(
    ctx: &WorkflowContext,
    index: usize,
    hook: &'static str,
    observed: V,
) {
    let run = ctx.shared();
    let Some(list) = handlers::<W, H>(ctx, index) else {
        return;
    };
    let entries = list.entries();
    let Some(firing) = Firing::start(run, W::META.name(), hook, entries) else {
        return halted().await;
    };
    for (i, entry) in entries.iter().enumerate() {
        let error = match firing.recorded(i) {
            // Completed before the run was resumed: it does not run again.
            Some(Ok(_)) => {
                firing.restore_bag(i);
                continue;
            }
            // Failed before: its failure is the run's again, without running it.
            Some(Err((error, panicked))) => {
                firing.restore_bag(i);
                firing.replayed_failure(entry, error, *panicked)
            }
            None => {
                let hctx = hook_context(ctx, &firing, i, entry);
                let call = call_handler(run, firing.hook, entry, || {
                    observed.call(&entry.handler, &hctx)
                });
                let outcome = match call.instrument(handler_span(firing.hook, entry)).await {
                    Ok(Ok(())) => {
                        firing.completed(i, entry, None);
                        firing.commit().await;
                        continue;
                    }
                    Ok(Err(err)) => Ok(err),
                    Err(panic) => Err(panic),
                };
                let error = firing.failed(i, entry, outcome);
                firing.commit().await;
                error
            }
        };
        tracing::warn!(%error, "hookflow: after-hook handler failed; recorded, nothing rolled back");
        run.state.lock().extra().hook_errors.push(HookFailure {
            hook: firing.hook,
            slot: entry.slot,
            handler: entry.name,
            plugin: entry.plugin.as_deref().map(str::to_owned),
            panicked: error.is_panic(),
            error: error.source_error().to_string(),
        });
    }
}

impl<W: Workflow, T: Clone + Send + Sync + 'static, R: Send + 'static> Fire<W> for StepHook<T, R> {
    type Payload<'p> = T;
    type Output = Result<Vec<R>, HookError>;

    fn unhandled(_payload: T) -> Self::Output {
        Ok(Vec::new())
    }

    async fn fire(point: HookPoint<W, Self>, ctx: &WorkflowContext, payload: T) -> Self::Output {
        let run = ctx.shared();
        let Some(list) = handlers::<W, dyn ErasedStepHook<T, R>>(ctx, point.index()) else {
            return Ok(Vec::new());
        };
        let entries = list.entries();
        let Some(firing) = Firing::start(run, W::META.name(), point.name(), entries) else {
            return halted().await;
        };
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
            // The handlers are steps: a resumed run replays them from their own records.
            let call = CatchUnwind::new(entry.handler.call(ctx, input));
            match call.await {
                Ok(Ok(result)) => {
                    results.push(result);
                    firing.completed_step(i, entry);
                }
                Ok(Err(err)) => return Err(firing.failed(i, entry, Ok(err))),
                Err(panic) => {
                    // The step recorded its panic; it is this hook's error now, not the body's.
                    run.state.lock().panicked_step = None;
                    let panic = PanicError {
                        message: panic.message(),
                    };
                    return Err(firing.failed(i, entry, Err(panic)));
                }
            }
        }
        Ok(results)
    }
}

/// The journal's data of a `before` hook is written and read by the same hook point, for the
/// same payload type.
fn unreachable_type<T>() -> T {
    unreachable!("a hook point's data operations read its own payload type")
}
