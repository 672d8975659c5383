//! The events a run records: what happened, one [`Event`] at a time.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::detail::{
    BagChange, FiringDetail, HandlerFailure, Retry, StepFailure, WaitFor, firing_detail,
    present_boxed, present_recorded,
};
pub use super::name::Name;
use crate::types::{Actor, Job, RecordedJson, RunId, RunStatus, Slot};

/// One journal entry: 64 bytes (an `EventKind` of 48), so that a run's journal stays small.
/// The larger or rarer parts of the kinds are boxed; their JSON is as if they were not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the run's journal, from 0.
    pub seq: u32,
    /// Wall-clock time, in microseconds since the Unix epoch.
    pub at_micros: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What a journal [`Event`] records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The run began.
    RunStarted {
        /// The workflow's name.
        workflow: Name,
        /// The run's id.
        run_id: RunId,
    },
    /// A step began. `position` counts the steps of the run from 0, in start order.
    StepStarted {
        /// The step's name.
        step: Name,
        /// The step's position in the run.
        position: u32,
        /// Where the step is in the run's code, when that is not its position: a step inside
        /// a `parallel!` branch (`"p0.1/0"`: group 0, branch 1, its first step), or one after
        /// such a group. A resumed run matches its steps to the journal by this key, whatever
        /// order its branches start their steps in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Box<str>>,
    },
    /// A step completed; its compensation (if any) is now on the run's stack.
    StepCompleted {
        /// The step's name.
        step: Name,
        /// The step's position in the run.
        position: u32,
        /// Whether the step has a compensation (now on the run's stack).
        #[serde(default)]
        compensable: bool,
        /// The step's output as JSON, when the engine records data (boxed, as `compensation`: most
        /// runs record none, and every event is as large as the largest kind).
        #[serde(
            default,
            deserialize_with = "present_recorded",
            skip_serializing_if = "Option::is_none"
        )]
        output: Option<Box<RecordedJson>>,
        /// The compensation data, when the step has a compensation and the engine records data.
        #[serde(
            default,
            deserialize_with = "present_recorded",
            skip_serializing_if = "Option::is_none"
        )]
        compensation: Option<Box<RecordedJson>>,
    },
    /// A step failed (returned an error or panicked). It is not compensated.
    StepFailed {
        /// The step's name.
        step: Name,
        /// The step's position in the run.
        position: u32,
        /// The failure: its message, whether it panicked, the attempts made, ... (boxed: every
        /// event is as large as the largest kind; its fields are the event's own in JSON).
        #[serde(flatten)]
        failure: Box<StepFailure>,
    },
    /// An attempt of a step with `retry(...)` failed with a transient error; the step runs
    /// again after `delay_micros`.
    StepRetrying {
        /// The step's name.
        step: Name,
        /// The step's position in the run.
        position: u32,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Its error and the delay before the next attempt (boxed; the event's own fields in
        /// JSON).
        #[serde(flatten)]
        retry: Box<Retry>,
    },
    /// A nested workflow began, as one step of its parent.
    NestedStarted {
        /// The nested workflow.
        workflow: Name,
        /// Its compensation frame.
        frame: u32,
    },
    /// A nested workflow ended. If it failed, its completed steps were compensated first.
    NestedEnded {
        /// The nested workflow.
        workflow: Name,
        /// Its compensation frame.
        frame: u32,
        /// Whether it completed.
        completed: bool,
    },
    /// A hook point with at least one handler fired. (A hook with no handler records nothing.)
    HookFired {
        /// The hook's name.
        hook: Name,
        /// How many handlers it has.
        handlers: u32,
        /// Which firing of the run's hooks this is, from 0, in the order the body fired them.
        #[serde(default)]
        firing: u32,
        /// The handlers' names (recorded when the run records data) and the firing's key (in
        /// a `parallel!` branch, or after one), when either is there: `None` for a firing of
        /// a run that records no data, outside any branch. Boxed; the event's own fields in
        /// JSON.
        #[serde(flatten, deserialize_with = "firing_detail")]
        detail: Option<Box<FiringDetail>>,
    },
    /// A `before` or `after` handler returned successfully.
    HookHandlerCompleted {
        /// The hook's name.
        hook: Name,
        /// The handler's slot.
        slot: Slot,
        /// The handler's name.
        handler: Name,
        /// The firing it belongs to.
        #[serde(default)]
        firing: u32,
        /// What a `before` handler returned, as JSON, when the run records data: a resumed
        /// run gets it back without calling the handler again (boxed: most runs record none).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present_boxed"
        )]
        data: Option<Box<Value>>,
    },
    /// A hook handler failed (returned an error or panicked).
    HookHandlerFailed {
        /// The hook's name.
        hook: Name,
        /// The handler's slot.
        slot: Slot,
        /// The handler's name.
        handler: Name,
        /// Its error, whether it panicked and its firing (boxed; the event's own fields in
        /// JSON).
        #[serde(flatten)]
        failure: Box<HandlerFailure>,
    },
    /// A compensation began.
    CompensationStarted {
        /// The compensated step's name.
        step: Name,
        /// The compensated step's position.
        position: u32,
        /// The compensation data, when the engine records data (boxed: most runs record none).
        #[serde(
            default,
            deserialize_with = "present_recorded",
            skip_serializing_if = "Option::is_none"
        )]
        data: Option<Box<RecordedJson>>,
    },
    /// An attempt of a compensation with `compensate_retry(...)` failed; it runs again
    /// after `delay_micros`.
    CompensationRetrying {
        /// The compensated step's name.
        step: Name,
        /// The compensated step's position.
        position: u32,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Its error and the delay before the next attempt (boxed; the event's own fields in
        /// JSON).
        #[serde(flatten)]
        retry: Box<Retry>,
    },
    /// A compensation completed.
    CompensationCompleted {
        /// The compensated step's name.
        step: Name,
        /// The compensated step's position.
        position: u32,
    },
    /// A compensation failed (returned an error or panicked). The others still run.
    CompensationFailed {
        /// The compensated step's name.
        step: Name,
        /// The compensated step's position.
        position: u32,
        /// The error's message.
        error: String,
        /// Whether the compensation panicked.
        panicked: bool,
    },
    /// A step, a hook handler or a compensation of a run that records data put a value in the
    /// bag, or took one out: a resumed run that replays it restores the bag from this.
    BagWritten {
        /// The value's type (`std::any::type_name`).
        key: Name,
        /// The value and who wrote it (boxed; the event's own fields in JSON).
        #[serde(flatten)]
        change: Box<BagChange>,
    },
    /// A step or a hook handler of a run that records data enqueued a job: a resumed run that
    /// replays it has the job back (with the same id).
    JobEnqueued {
        /// The job (boxed: every event is as large as the largest kind).
        job: Box<Job>,
        /// The position of the step that enqueued it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<u32>,
        /// The hook firing and the handler's place in it, for a handler's job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handler: Option<(u32, u32)>,
    },
    /// The jobs enqueued by a completed run were handed to the engine's dispatcher (or, if it
    /// has none, listed in the outcome for the application to dispatch).
    JobsDispatched {
        /// How many.
        count: u32,
    },
    /// The jobs enqueued by a failed run were dropped.
    JobsDiscarded {
        /// How many.
        count: u32,
    },
    /// The workflow body failed: compensation begins. A run resumed after this goes on
    /// compensating.
    RunFailed {
        /// Why.
        error: String,
    },
    /// The run was resumed from its journal after an interruption.
    RunResumed,
    /// A worker took the run's lease: the events after this one, up to the next `Claimed`,
    /// were committed under lease generation `fence` (the store refuses the writes of an
    /// older one). Recorded when a durable run starts or resumes.
    Claimed {
        /// The worker (an engine's worker id).
        worker: String,
        /// The lease generation, the fencing token.
        fence: u64,
    },
    /// The run was parked: its journal cannot be replayed (see `ReplayError`).
    RunParked {
        /// Why.
        reason: String,
    },
    /// The run ended.
    RunEnded {
        /// How it ended.
        status: RunStatus,
    },
    /// The body began to wait: for an event (`ctx.wait`, `event` set), until a time
    /// (`ctx.sleep`, `until_micros` set), or both (a wait with a timeout). A wait takes a step
    /// position: a resumed run matches it to the journal like a step.
    WaitStarted {
        /// Its position in the run (counted with the steps).
        position: u32,
        /// Its key, when it is not its position (see `StepStarted`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Box<str>>,
        /// The event waited for and until when (boxed; the event's own fields in JSON).
        #[serde(flatten)]
        wait: Box<WaitFor>,
    },
    /// A wait ended: with the event, its failure, its timeout, or the timer's due time.
    WaitEnded {
        /// The wait's position.
        position: u32,
        /// How it ended (boxed: every event is as large as the largest kind).
        outcome: Box<WaitOutcome>,
    },
    /// The run was cancelled: it stopped where it was, and compensation begins. A resumed run
    /// after this goes on compensating.
    RunCancelled {
        /// Why.
        reason: String,
        /// Who asked, if known (boxed, as `actor` below: every event is as large as the
        /// largest kind, and an `Actor` is large).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Box<Actor>>,
    },
    /// An operator asked to run again the compensations that failed
    /// ([`Engine::retry`](crate::Engine::retry), `hookflow retry`): the run, which had ended
    /// `CompensationFailed`, is running again. On replay, every compensation that failed
    /// before this event runs again; one recorded completed never does.
    RetryRequested {
        /// Who asked.
        actor: Box<Actor>,
    },
    /// The run is a fork of run `from` ([`Engine::fork`](crate::Engine::fork), `hookflow
    /// fork`): its journal began as a copy of `from`'s up to the start of step `at_step`, so
    /// that the steps before it replay what `from` recorded and the steps from it run again.
    Forked {
        /// The run it was forked from.
        from: RunId,
        /// The position of the first step that runs again.
        at_step: u32,
        /// Who asked.
        actor: Box<Actor>,
    },
}

/// How a wait ended ([`EventKind::WaitEnded`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaitOutcome {
    /// The event arrived: its payload is what the body got.
    Received {
        /// Which message of the event it was in the run's inbox (from 0).
        message: u32,
        /// The payload, as JSON.
        payload: Value,
        /// The sender's delivery key, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_key: Option<String>,
    },
    /// The event was sent as a failure: the body got a `WaitError::Failed`.
    Failed {
        /// Which message of the event it was in the run's inbox (from 0).
        message: u32,
        /// What the sender said.
        error: String,
        /// The sender's delivery key, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_key: Option<String>,
    },
    /// The wait's timeout passed before the event arrived.
    TimedOut,
    /// The timer is due.
    Elapsed,
}

/// One line per event, as in a trace: `step reserve_inventory #2 completed`.
impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::RunStarted { workflow, run_id } => {
                write!(f, "run started: {workflow} ({run_id})")
            }
            EventKind::StepStarted { step, position, .. } => {
                write!(f, "step {step} #{position} started")
            }
            EventKind::StepCompleted {
                step,
                position,
                compensation,
                ..
            } => {
                write!(f, "step {step} #{position} completed")?;
                if let Some(data) = compensation {
                    write!(f, ", undo data {data}")?;
                }
                Ok(())
            }
            EventKind::StepFailed {
                step,
                position,
                failure,
            } => {
                let StepFailure {
                    error,
                    panicked,
                    attempts,
                    best_effort,
                    ..
                } = &**failure;
                write!(f, "step {step} #{position} FAILED{}", panic_tag(*panicked))?;
                if *attempts > 1 {
                    write!(f, " after {attempts} attempts")?;
                }
                write!(f, ": {error}")?;
                if *best_effort {
                    write!(f, " (best effort: the workflow goes on)")?;
                }
                Ok(())
            }
            EventKind::StepRetrying {
                step,
                position,
                attempt,
                retry,
            } => write!(
                f,
                "step {step} #{position} attempt {attempt} failed: {}; retrying in {:.1}ms",
                retry.error,
                retry.delay_micros as f64 / 1000.0
            ),
            EventKind::NestedStarted { workflow, frame } => {
                write!(f, "nested workflow {workflow} (frame {frame}) started")
            }
            EventKind::NestedEnded {
                workflow,
                frame,
                completed,
            } => {
                let how = if *completed {
                    "completed"
                } else {
                    "failed, its steps undone"
                };
                write!(f, "nested workflow {workflow} (frame {frame}) {how}")
            }
            EventKind::HookFired { hook, handlers, .. } => {
                let s = if *handlers == 1 { "" } else { "s" };
                write!(f, "hook {hook} fired ({handlers} handler{s})")
            }
            EventKind::HookHandlerCompleted {
                hook,
                slot,
                handler,
                ..
            } => write!(f, "  {hook} <- {handler} [{slot}] ok"),
            EventKind::HookHandlerFailed {
                hook,
                slot,
                handler,
                failure,
            } => write!(
                f,
                "  {hook} <- {handler} [{slot}] FAILED{}: {}",
                panic_tag(failure.panicked),
                failure.error
            ),
            EventKind::CompensationStarted {
                step,
                position,
                data,
            } => {
                write!(f, "compensate {step} #{position}")?;
                if let Some(data) = data {
                    write!(f, " with {data}")?;
                }
                Ok(())
            }
            EventKind::CompensationRetrying {
                step,
                position,
                attempt,
                retry,
            } => write!(
                f,
                "compensate {step} #{position} attempt {attempt} failed: {}; retrying in {:.1}ms",
                retry.error,
                retry.delay_micros as f64 / 1000.0
            ),
            EventKind::CompensationCompleted { step, position } => {
                write!(f, "compensate {step} #{position} done")
            }
            EventKind::CompensationFailed {
                step,
                position,
                error,
                panicked,
            } => write!(
                f,
                "compensate {step} #{position} FAILED{}: {error}",
                panic_tag(*panicked)
            ),
            EventKind::BagWritten { key, change } => match &change.value {
                Some(value) => write!(f, "bag: {key} = {value}"),
                None => write!(f, "bag: {key} taken"),
            },
            EventKind::JobEnqueued { job, .. } => {
                write!(f, "job {} enqueued ({})", job.name(), job.id())
            }
            EventKind::JobsDispatched { count } => write!(f, "{count} job(s) dispatched"),
            EventKind::JobsDiscarded { count } => {
                write!(f, "{count} job(s) discarded (the run failed)")
            }
            EventKind::RunFailed { error } => write!(f, "run failed: {error}; compensating"),
            EventKind::RunResumed => write!(f, "run resumed from its journal"),
            EventKind::Claimed { worker, fence } => {
                write!(f, "claimed by worker {worker} (lease generation {fence})")
            }
            EventKind::RunParked { reason } => write!(f, "run PARKED: {reason}"),
            EventKind::RunEnded { status } => write!(f, "run ended: {status}"),
            EventKind::WaitStarted { position, wait, .. } => match (&wait.event, wait.until_micros)
            {
                (Some(event), None) => write!(f, "wait #{position} for event {event}"),
                (Some(event), Some(until)) => {
                    write!(f, "wait #{position} for event {event} until {until}")
                }
                (None, until) => write!(f, "sleep #{position} until {}", until.unwrap_or(0)),
            },
            EventKind::WaitEnded { position, outcome } => match &**outcome {
                WaitOutcome::Received { .. } => write!(f, "wait #{position}: event received"),
                WaitOutcome::Failed { error, .. } => {
                    write!(f, "wait #{position}: event FAILED: {error}")
                }
                WaitOutcome::TimedOut => write!(f, "wait #{position}: timed out"),
                WaitOutcome::Elapsed => write!(f, "sleep #{position}: due"),
            },
            EventKind::RunCancelled { reason, .. } => write!(f, "run CANCELLED: {reason}"),
            EventKind::RetryRequested { actor } => {
                write!(
                    f,
                    "retry of the failed compensations asked by {}",
                    actor.id()
                )
            }
            EventKind::Forked {
                from,
                at_step,
                actor,
            } => write!(
                f,
                "forked from run {from} at step #{at_step} by {}",
                actor.id()
            ),
        }
    }
}

fn panic_tag(panicked: bool) -> &'static str {
    if panicked { " (panic)" } else { "" }
}
