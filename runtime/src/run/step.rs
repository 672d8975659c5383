//! Steps: what `#[step]` generates runs its body through [`StepRun`], which journals it,
//! traces it, captures a panic and pushes its compensation on the run's stack. A step that
//! finds its run must stop (a replay mismatch, a commit the store refused) halts the run
//! ([`super::halt`]) rather than return.
//!
//! The step's pieces: the values an attempt ends with ([`attempt`]), the retry loop
//! ([`retry`]), the transactional attempt ([`transactional`]) and how a step finishes and is
//! journaled ([`finish`]).

mod attempt;
mod finish;
mod retry;
mod transactional;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tracing::Instrument;

use super::commit::commit_deferred;
use super::transaction::TxContext;
use crate::context::{
    BorrowedStepContext, Count, Halt, RunShared, StepContext, WorkflowContext, Writer,
};
use crate::journal::{EventKind, Recorded, RecordedFailure};
use crate::types::{
    BestEffortFailure, CatchUnwind, Key, Panic, ReplayError, StepMeta, StepTimeout,
};

use self::attempt::RecordedError;
pub use self::attempt::{Attempt, JournalError, RebuildFn};

/// One execution of a step, from start to finish. Used by the code `#[step]` generates.
#[doc(hidden)]
pub struct StepRun<'w> {
    /// Its run borrowed from the workflow context it was started with (`'w`).
    ctx: BorrowedStepContext<'w>,
    meta: &'static StepMeta,
    frame: u32,
    span: tracing::Span,
    /// Whether the step replays a recorded completion, runs, or never runs.
    mode: Mode,
}

enum Mode {
    Run,
    /// The step ended before the run was resumed: it does not run again. (One box for every
    /// way it ended: the mode stays one word.)
    Ended(Box<Ended>),
    /// The run stopped at (or before) this step.
    Halted,
}

/// How a step ended before its run was resumed.
enum Ended {
    /// It completed: its recorded output stands.
    Completed(Replayed),
    /// It failed, and the body went on (or may have): its error is given back.
    Failed(RecordedError),
    /// The best-effort step failed: it returns `None` again.
    BestEffortFailed(BestEffortFailure),
}

impl Ended {
    /// What the step reports instead of an attempt.
    #[cold]
    fn attempt<T, E>(&self) -> Attempt<T, E> {
        match self {
            Ended::Completed(_) | Ended::BestEffortFailed(_) => Attempt::Replayed,
            Ended::Failed(recorded) => Attempt::Failed(Box::new(recorded.clone()), None),
        }
    }
}

struct Replayed {
    output: Option<crate::types::RecordedJson>,
    compensation: Option<crate::types::RecordedJson>,
    compensated: bool,
}

impl<'w> StepRun<'w> {
    /// Journals the step's start and makes its context. A step of a resumed run looks in the
    /// journal first: a completed step replays its output; a failed step replays its failure
    /// ([`failed_mode`]); a step that does not match the journal, or that a run resumed
    /// while compensating never got past, halts the run.
    pub fn start(wf: &'w WorkflowContext, meta: &'static StepMeta) -> Self {
        let run = wf.shared();
        let name = meta.name();
        let (key, position, mode) = if run.replay().is_none() {
            fresh(run, name)
        } else {
            replayed(run, meta)
        };
        if matches!(mode, Mode::Ended(_)) {
            restore_step_effects(run, position);
        }
        let ctx =
            BorrowedStepContext::new(wf, Writer::Step { position, key }, name, position, false);
        StepRun {
            mode,
            ctx,
            meta,
            frame: wf.frame,
            // DEBUG: a run's per-step detail costs an INFO subscriber nothing.
            span: tracing::debug_span!("step", step = name, position, attempt = 1u32),
        }
    }

    /// The context to hand to the step's body.
    pub fn context(&self) -> &StepContext {
        &self.ctx
    }

    /// The context to hand to a transactional step's body (`#[step(transaction)]`): the
    /// generated code keeps it beside the step, runs the body with
    /// [`execute_in_transaction`](Self::execute_in_transaction), and commits it with
    /// [`TxContext::settle`] once the step finished.
    pub fn transaction_context(&self, wf: &WorkflowContext) -> TxContext {
        let step = StepContext {
            rc: self.ctx.rc.clone(),
            step: self.ctx.step,
            position: self.ctx.position,
            attempt: AtomicU32::new(1),
            compensating: false,
        };
        TxContext::new(wf, step)
    }

    fn run(&self) -> &RunShared {
        &self.ctx.rc.run
    }

    /// What a step that does not run reports instead of an attempt.
    #[inline]
    fn skipped<T, E>(&self) -> Option<Attempt<T, E>> {
        match &self.mode {
            Mode::Run => None,
            Mode::Ended(ended) => Some(ended.attempt()),
            Mode::Halted => Some(Attempt::Halted),
        }
    }

    /// Runs one attempt of the body: in the step's span, with its timeout, catching a panic.
    /// `body` makes the body's future when the attempt starts, so that the step's future
    /// holds the arguments (in `body`) and the body's future (which takes them) one at a
    /// time, not side by side.
    pub async fn execute<T, E, Fut, F>(
        &self,
        body: F,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(skipped) = self.skipped() {
            return skipped;
        }
        commit_deferred(self.run()).await;
        self.attempt(1, body, on_timeout).await
    }

    /// The step's key (its place in the run's code).
    fn key(&self) -> Key {
        self.ctx
            .rc
            .writer
            .key()
            .unwrap_or(Key::Top(self.ctx.position))
    }

    async fn attempt<T, E, Fut, F>(
        &self,
        attempt: u32,
        body: F,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.ctx.attempt.store(attempt, Ordering::Relaxed);
        if attempt > 1 {
            self.span.record("attempt", attempt);
        }
        let timeout = self.meta.timeout();
        let timed_out = |after: Duration| StepTimeout {
            step: self.meta.name(),
            after,
        };
        if let Some(fault) = self.run().env.faults.step(self.meta.name(), attempt) {
            return match (timeout, on_timeout) {
                (Some(after), Some(make)) if fault.is_timeout() => {
                    Attempt::Err(make(timed_out(after)))
                }
                _ if fault.is_panic() => Attempt::Panicked(Panic::new(fault.message())),
                _ => Attempt::Injected(fault),
            };
        }
        let body = CatchUnwind::new(body()).instrument(self.span.clone());
        let result = match (timeout, on_timeout) {
            // Boxed: only steps with a timeout carry a timer, not every step's future.
            (Some(after), Some(make)) => match Box::pin(tokio::time::timeout(after, body)).await {
                Ok(result) => result,
                Err(_elapsed) => Ok(Err(make(timed_out(after)))),
            },
            _ => body.await,
        };
        match result {
            Ok(Ok(value)) => Attempt::Ok(value),
            Ok(Err(err)) => Attempt::Err(err),
            Err(panic) => Attempt::Panicked(panic),
        }
    }
}

/// The start of a step of a run that replays its journal: its key, its position and its mode
/// (see [`StepRun::start`]).
#[inline(never)]
fn replayed(run: &RunShared, meta: &'static StepMeta) -> (Key, u32, Mode) {
    let name = meta.name();
    let key = super::scope::step_key(run);
    let position = run.position_at(key);
    let mode = if run.is_halted() {
        Mode::Halted
    } else {
        match run.replay().map(|r| (r.steps.get(&position), &r.failure)) {
            // Whatever the journal says happened at this position (completed, failed, in
            // flight), it happened to this step, or the run is parked.
            Some((Some(recorded), _)) if recorded.step != name => {
                run.halt(Halt::Replay(ReplayError::Mismatch {
                    position,
                    recorded: recorded.step.clone(),
                    called: name.to_owned(),
                }));
                Mode::Halted
            }
            Some((Some(recorded), _)) if recorded.completed => {
                Mode::Ended(Box::new(Ended::Completed(Replayed {
                    output: recorded.output.clone(),
                    compensation: recorded.compensation.clone(),
                    compensated: recorded.compensated,
                })))
            }
            Some((
                Some(Recorded {
                    failed: Some(failed),
                    ..
                }),
                run_failure,
            )) => failed_mode(run, meta, position, failed, run_failure.as_deref()),
            // A run that was compensating has replayed up to where it failed: this step
            // was never reached (or was in flight when the run failed).
            Some((_, Some(failure))) => {
                run.halt(Halt::Failed(failure.clone()));
                Mode::Halted
            }
            // The step was in flight: it runs again (its start is in the journal already),
            // to its end, even when the run is to be cancelled: then it is undone too.
            Some((Some(_), None)) => Mode::Run,
            // A step boundary: a run asked to cancel stops here.
            Some((None, None)) | None if run.durable.is_some() && cancelled(run) => Mode::Halted,
            Some((None, None)) | None => {
                run.record(EventKind::StepStarted {
                    step: name.into(),
                    position,
                    key: run.with_key(key, |k| k.unless_position(position)),
                });
                Mode::Run
            }
        }
    };
    (key, position, mode)
}

/// The start of a step of a run that replays nothing: its key, its position and its mode.
/// Unless the run stops here, its `StepStarted` is recorded under the lock that counts its
/// key and position.
#[inline]
fn fresh(run: &RunShared, name: &'static str) -> (Key, u32, Mode) {
    let branch = super::scope::in_branch(run, Count::Step);
    // A step boundary: a run asked to cancel stops here.
    if run.is_halted() || (run.durable.is_some() && cancelled(run)) {
        let key = branch.unwrap_or_else(|| Key::Top(run.top(Count::Step)));
        return (key, run.position_at(key), Mode::Halted);
    }
    let (key, position) = run.start_step(branch, |position, key| EventKind::StepStarted {
        step: name.into(),
        position,
        key: key.unless_position(position),
    });
    (key, position, Mode::Run)
}

/// What a step whose position the journal recorded as failed does on replay. It never runs
/// again, and records nothing:
/// - a best-effort step returns `None` again;
/// - a step that panicked fails the run again (a panic is never handled);
/// - a step whose failure ended the run (the run failed, and no step started after the
///   failure), with no recorded value, fails the run there with the run's recorded error:
///   nothing after it needs the body to go on;
/// - any other step gives its recorded error back to the body, rebuilt from its JSON (the
///   error type is serde); when it cannot be rebuilt, the run is parked
///   (`ReplayError::UnreplayableFailure`).
fn failed_mode(
    run: &RunShared,
    meta: &'static StepMeta,
    position: u32,
    failed: &RecordedFailure,
    run_failure: Option<&str>,
) -> Mode {
    if meta.is_best_effort() {
        return Mode::Ended(Box::new(Ended::BestEffortFailed(BestEffortFailure {
            step: meta.name().to_owned(),
            position,
            error: failed.error.clone(),
            panicked: failed.panicked,
        })));
    }
    let ended_run = !failed.best_effort && !failed.went_on;
    match run_failure {
        Some(failure) if failed.panicked || (ended_run && failed.data.is_none()) => {
            run.halt(Halt::Failed(failure.to_owned()));
            Mode::Halted
        }
        None if failed.panicked => {
            run.halt(Halt::Panicked {
                step: meta.name(),
                message: failed.error.clone(),
            });
            Mode::Halted
        }
        _ => Mode::Ended(Box::new(Ended::Failed(RecordedError {
            error: failed.error.clone(),
            data: failed.data.clone(),
            problem: None,
        }))),
    }
}

/// A step that ended before the run was resumed does not run again: the bag gets back what it
/// put there, and the run the jobs it enqueued, from the journal.
#[inline(never)]
/// Whether the run must stop at this step boundary to be cancelled: if so, it is halted.
#[cold]
fn cancelled(run: &RunShared) -> bool {
    match run.cancel_now() {
        Some(request) => {
            run.halt(Halt::Cancelled(Box::new(request)));
            true
        }
        None => false,
    }
}

fn restore_step_effects(run: &RunShared, position: u32) {
    if let Some(replay) = run.replay() {
        let bag = replay.bag_by_step.get(&position);
        super::restore_effects(run, bag, replay.jobs_by_step.get(&position));
    }
}
