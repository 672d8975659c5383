//! Layer 4, run execution: the run's state machine. A run's body calls steps ([`step`]),
//! fires hooks ([`hooks`]), runs branches in parallel ([`parallel`]) and nested workflows
//! ([`nested`]); each step's completion is committed ([`commit`]) before the body goes on; a
//! resumed run replays its journal; a failed run is compensated ([`compensate`]); the run
//! ends as an [`Outcome`]. A run that must stop halts ([`halt`]) instead of unwinding.
//!
//! It sees the [`RunEnv`] it is given (registry, services, job dispatcher, event bus, store,
//! fault injector), never the engine.

mod begin;
mod commit;
mod compensate;
mod failed_at;
mod firing;
mod halt;
mod hooks;
mod in_span;
pub(crate) mod nested;
pub(crate) mod outcome;
pub(crate) mod parallel;
pub(crate) mod scope;
pub(crate) mod step;
mod transaction;
mod wait;

use std::future::Future;
use std::sync::Arc;

use crate::context::{
    Durable, Halt, RunContext, RunEnv, RunShared, WorkflowContext, Writer, append,
};
use crate::hook::{After, Fire, HookPoint};
use crate::journal::{BagWrite, Event, EventKind, Journal};
use crate::store::RunUpdate;
use crate::types::{
    CatchUnwind, CompensationFailure, RecordError, ReplayError, RunError, RunId, RunOptions,
    RunStatus, message, message_of, now_micros, to_record,
};
use crate::workflow::Workflow;

pub(crate) use self::begin::{Begin, Started};
use self::commit::{Failed, commit};
use self::compensate::{Scope, compensate};
pub use self::failed_at::FailedAt;
use self::halt::UntilHalted;
use self::in_span::{InRunSpan, span_of};
use self::outcome::Leftovers;
pub use self::outcome::Outcome;
pub use self::transaction::TxContext;

/// Sets up a run of workflow `W` with `input` in `env` (its shared state, its start in the
/// journal) and returns the future that runs it to its end. `durable` carries the store side
/// of the run and, for a resumed run, its recorded journal. `started_at` is the clock reading
/// the run's id was made with, when it was made just before (a run started in place): its
/// start is recorded at that time, without reading the clock again.
///
/// Not an `async fn`: the set-up's values (the options, the store side) go into the run's
/// shared state here, and the future holds only the run's context and its input.
#[inline(always)]
pub(crate) fn execute<W: Workflow>(
    env: &Arc<RunEnv>,
    run_id: RunId,
    input: W::Input,
    options: RunOptions,
    durable: Option<(Durable, Vec<Event>)>,
    started_at: Option<u64>,
) -> impl Future<Output = Outcome<W>> + use<W> {
    let span = W::__run_span(&run_id);
    #[cfg(feature = "metrics")]
    let in_flight = crate::metrics::InFlight::enter(W::META.name());
    // The room for what a completed run of `W` records, from what its body calls.
    let room = const { W::META.journal_estimate() };
    let (durable, recorded) = match durable {
        Some((durable, recorded)) => (Some(durable), recorded),
        // Made with the room `reserve` asks for below: cheaper than growing an empty one.
        None => (None, Vec::with_capacity(room)),
    };
    let resumed = !recorded.is_empty();
    let mut journal = Journal::from_events(recorded);
    journal.reserve(room);
    let fence = durable.as_ref().map(|d| d.fence);
    // The run's start (and its claim), recorded in the journal before the run's state is
    // made around it: no lock taken for them.
    let started = if resumed {
        EventKind::RunResumed
    } else {
        EventKind::RunStarted {
            workflow: W::META.name().into(),
            run_id,
        }
    };
    let at = started_at.unwrap_or_else(now_micros);
    append(env, run_id, &mut journal, started, at);
    if let Some(fence) = fence {
        let claimed = EventKind::Claimed {
            worker: env.worker_id.clone(),
            fence,
        };
        append(env, run_id, &mut journal, claimed, now_micros());
    }
    let shared = Arc::new(RunShared::new(
        Arc::clone(env),
        run_id,
        options,
        journal,
        span,
        durable,
    ));
    let in_span = span_of(&shared);
    let rc = RunContext {
        run: shared,
        workflow: W::META.name(),
        writer: Writer::Body,
    };
    let ctx = WorkflowContext::for_workflow::<W>(rc, 0);
    InRunSpan::new(in_span, async move {
        #[cfg(feature = "metrics")]
        let _in_flight = in_flight;
        drive::<W>(&ctx, input).await
    })
}

/// Runs the body, then compensates or dispatches, and gathers the outcome.
async fn drive<W: Workflow>(ctx: &WorkflowContext, input: W::Input) -> Outcome<W> {
    let body = UntilHalted::new(ctx.shared(), CatchUnwind::new(W::execute(ctx, input))).await;
    // A future of its own, in the place the body's took: what the end holds across its
    // awaits does not sit beside the body's future.
    end::<W>(ctx, body).await
}

/// What the body of a run of `W` ended with: its output or error, a panic, or a halt.
type BodyEnded<W> = Result<
    Result<Result<<W as Workflow>::Output, <W as Workflow>::Error>, crate::types::Panic>,
    Halt,
>;

/// The end of a run whose body ended: compensated or dispatched, recorded, its outcome.
async fn end<W: Workflow>(ctx: &WorkflowContext, body: BodyEnded<W>) -> Outcome<W> {
    let run = ctx.shared();
    let recorded_failure = run.replay().and_then(|r| r.failure.clone());
    // The cancellation the run carries out now, if it is cancelled here.
    let mut cancelled = None;
    let result = match body {
        // A run resumed while compensating failed before; its body only replayed.
        Ok(Ok(Ok(_))) if recorded_failure.is_some() => Err(RunError::Recorded {
            message: recorded_failure.clone().unwrap_or_default(),
        }),
        Ok(Ok(Ok(output))) => Ok(output),
        Ok(Ok(Err(err))) => Err(RunError::Failed(err)),
        Ok(Err(panic)) => {
            let step = run.state.lock().panicked_step.take();
            let payload = panic.into_payload();
            let message = message_of(&*payload);
            // Let the payload go now: dropping it later could itself panic.
            drop(payload);
            tracing::error!(step, %message, "hookflow: workflow panicked");
            Err(RunError::Panicked {
                step: step.map(str::to_owned),
                message,
            })
        }
        Err(Halt::Store(err)) => return stopped(run, RunStatus::Interrupted, err.into()),
        Err(Halt::Suspended { what }) => {
            return stopped(run, RunStatus::Waiting, RunError::Waiting { what });
        }
        Err(Halt::Cancelled(request)) => {
            let reason = request.reason.clone();
            cancelled = Some(request);
            Err(RunError::Cancelled { reason })
        }
        Err(Halt::Replay(err)) => return Box::pin(park(run, err.into())).await,
        Err(Halt::Unrecordable(err)) => return Box::pin(park(run, err.into())).await,
        Err(Halt::Failed(message)) => Err(RunError::Recorded { message }),
        Err(Halt::Panicked { step, message }) => Err(RunError::Panicked {
            step: Some(step.to_owned()),
            message,
        }),
        #[cfg(feature = "testing")]
        Err(Halt::Injected { step, message }) => Err(RunError::Injected {
            step: step.to_owned(),
            message,
        }),
    };

    // A durable run's output is recorded with its end: one that cannot be (too deep, too
    // large) parks the run before it dispatches anything.
    let output_json = match (&run.durable, &result) {
        (Some(_), Ok(output)) => {
            match to_record(output, run.env.max_record_bytes, || {
                "the workflow's output".to_owned()
            }) {
                Ok(json) => Some(json),
                Err(err) => return Box::pin(park(run, err.into())).await,
            }
        }
        _ => None,
    };

    // The cause is rendered now: the error itself must not be held across an await (it
    // need not be `Sync`).
    let cause = result.as_ref().err().map(|err| message(err));
    let status = match cause {
        None => RunStatus::Completed,
        // Boxed: only failed runs compensate, and their futures need not make every run's
        // future larger.
        Some(cause) => {
            let failed = failed::<W>(ctx, cause, cancelled, recorded_failure.is_none());
            match Box::pin(failed).await {
                Ok(status) => status,
                Err(outcome) => return outcome,
            }
        }
    };

    let jobs = {
        let mut state = run.state.lock();
        let jobs = std::mem::take(&mut state.jobs);
        if jobs.is_empty() && run.durable.is_none() {
            // A run with no jobs and no store: its end recorded and what it leaves taken
            // under the lock its jobs were taken under.
            run.push(&mut state, EventKind::RunEnded { status });
            let leftovers = Leftovers::take_from(run, &mut state, jobs);
            drop(state);
            return Outcome::new(run.run_id, status, result, leftovers);
        }
        jobs
    };
    let count = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
    let jobs = if status == RunStatus::Completed {
        if !jobs.is_empty() {
            // The last step's completion, left to ride on the run's end, is committed before
            // the jobs leave the run.
            if let Some(durable) = &run.durable {
                if durable
                    .deferred
                    .swap(false, std::sync::atomic::Ordering::AcqRel)
                {
                    if let Err(failed) = commit(run, None).await {
                        return ended_by(run, failed).await;
                    }
                }
            }
            run.record(EventKind::JobsDispatched { count });
            if let Some(dispatcher) = &run.env.dispatcher {
                for job in &jobs {
                    dispatcher.dispatch(job.clone());
                }
            }
        }
        jobs
    } else {
        if !jobs.is_empty() {
            run.record(EventKind::JobsDiscarded { count });
        }
        Vec::new()
    };

    run.record(EventKind::RunEnded { status });
    if run.durable.is_some() {
        let update = RunUpdate {
            status: status.stored(),
            output: output_json,
            error: result.as_ref().err().map(ToString::to_string),
        };
        if let Err(failed) = commit(run, Some(update)).await {
            return ended_by(run, failed).await;
        }
    }
    let leftovers = Leftovers::take(run, jobs);
    Outcome::new(run.run_id, status, result, leftovers)
}

/// The failure of a run whose body failed (`cause`), cancelled (`cancelled`) or halted:
/// recorded (unless `record` is false: a resumed run recorded it before), then compensated;
/// `on_compensation_failed` fired if some compensation failed. Its status, or the outcome of
/// a run whose commit failed meanwhile.
async fn failed<W: Workflow>(
    ctx: &WorkflowContext,
    cause: String,
    cancelled: Option<Box<crate::types::CancelRequest>>,
    record: bool,
) -> Result<RunStatus, Outcome<W>> {
    let run = ctx.shared();
    let cancelled_now = cancelled.is_some();
    // Moved into the journal's `RunFailed`, and read back from it in the rare case that a
    // compensation fails: not copied for every failed run.
    let mut cause = Some(cause);
    if record {
        run.record(match cancelled {
            Some(request) => {
                let request = *request;
                EventKind::RunCancelled {
                    reason: request.reason,
                    by: request.by.map(Box::new),
                }
            }
            None => EventKind::RunFailed {
                error: cause.take().unwrap_or_default(),
            },
        });
        if let Err(failed) = commit(run, None).await {
            return Err(ended_by(run, failed).await);
        }
    }
    // A run resumed while compensating: what the compensations that ran put in the bag.
    if let Some(replay) = run.replay() {
        restore_effects(run, Some(&replay.bag_by_compensation), None);
    }
    if let Err(failed) = compensate(ctx, Scope::All).await {
        return Err(ended_by(run, failed).await);
    }
    let failed = run
        .state
        .lock()
        .extra
        .as_ref()
        .map_or_else(Vec::new, |extra| extra.compensation_failures.clone());
    let was_cancelled = cancelled_now || run.replay().is_some_and(|replay| replay.cancelled);
    if failed.is_empty() {
        return Ok(if was_cancelled {
            RunStatus::Cancelled
        } else {
            RunStatus::Compensated
        });
    }
    let cause = cause.unwrap_or_else(|| {
        run.state
            .lock()
            .journal
            .kinds()
            .rev()
            .find_map(|kind| match kind {
                EventKind::RunFailed { error } => Some(error.clone()),
                _ => None,
            })
            .unwrap_or_default()
    });
    let failure = CompensationFailure {
        workflow: W::META.name().to_owned(),
        run_id: run.run_id,
        cause,
        failed,
    };
    let index = u16::try_from(W::META.hooks().len()).unwrap_or(u16::MAX);
    let point = HookPoint::<W, After<CompensationFailure>>::__new(index, "on_compensation_failed");
    <After<CompensationFailure> as Fire<W>>::fire(point, ctx, &failure).await;
    Ok(RunStatus::CompensationFailed)
}

/// Puts back what a step, a hook handler or the compensations did before the run was
/// resumed, as the journal recorded it: their bag writes, in order, and the jobs they
/// enqueued.
pub(crate) fn restore_effects(
    run: &RunShared,
    bag: Option<&Vec<BagWrite>>,
    jobs: Option<&Vec<crate::types::Job>>,
) {
    for (key, value) in bag.into_iter().flatten() {
        run.bag.restore(key, value.clone());
    }
    if let Some(jobs) = jobs {
        run.state.lock().jobs.extend(jobs.iter().cloned());
    }
}

/// The outcome of a run that stopped without finishing: interrupted by its store, or parked.
fn stopped<W: Workflow>(
    run: &RunShared,
    status: RunStatus,
    error: RunError<W::Error>,
) -> Outcome<W> {
    let leftovers = Leftovers::take(run, Vec::new());
    Outcome::new(run.run_id, status, Err(error), leftovers)
}

/// The end of a run whose commit failed: interrupted by a store failure (still running in
/// the store, to be resumed), or parked (the store refused its data: trying again would
/// fail again).
async fn ended_by<W: Workflow>(run: &RunShared, failed: Failed) -> Outcome<W> {
    match failed {
        Failed::Store(err) => stopped(run, RunStatus::Interrupted, err.into()),
        Failed::Refused(err) => Box::pin(park(run, err.into())).await,
    }
}

/// Parks a run whose journal cannot be replayed, or a value of which cannot be recorded:
/// recorded, not compensated, not corrupted. When the store refused a commit, the events it
/// refused are dropped from the journal (what was committed stays), so that the park's own
/// commit does not write them again.
async fn park<W: Workflow>(run: &RunShared, error: RunError<W::Error>) -> Outcome<W> {
    tracing::error!(%error, "hookflow: run parked");
    if let (Some(durable), RunError::Record(RecordError::Refused { .. })) = (&run.durable, &error) {
        let persisted = *durable.persisted.lock().await;
        run.state.lock().journal.truncate(persisted);
    }
    run.record(EventKind::RunParked {
        reason: error.to_string(),
    });
    let update = RunUpdate {
        status: RunStatus::Parked.stored(),
        output: None,
        error: Some(error.to_string()),
    };
    if let Err(failed) = commit(run, Some(update)).await {
        let error = match failed {
            Failed::Store(err) => err.into(),
            // The park itself was refused: the run stays where it was in the store.
            Failed::Refused(_) => error,
        };
        return stopped(run, RunStatus::Interrupted, error);
    }
    stopped(run, RunStatus::Parked, error)
}

/// Parks a resumed run whose recorded input no longer fits the workflow's input type, before
/// it starts: recorded in the store under `fence`.
pub(crate) async fn park_input<W: Workflow>(
    durable: &Durable,
    run_id: RunId,
    message: String,
) -> Outcome<W> {
    let error = ReplayError::Input(message);
    let update = RunUpdate {
        status: RunStatus::Parked.stored(),
        output: None,
        error: Some(error.to_string()),
    };
    if let Err(err) = durable
        .store
        .commit(run_id, durable.fence, &[], Some(update))
        .await
    {
        return Outcome::stopped(run_id, RunStatus::Interrupted, err.into());
    }
    Outcome::stopped(run_id, RunStatus::Parked, error.into())
}
