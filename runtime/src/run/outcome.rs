//! How a run ended: its status, its output or error, its hook errors and its journal.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use super::failed_at::{FailedAt, locate};
use crate::context::{RunShared, RunState};
use crate::journal::{Event, EventKind, Journal};
use crate::store::RunRecord;
use crate::types::{
    BagStore, BestEffortFailure, FailedCompensation, HookFailure, Job, ReplayError, RunError,
    RunId, RunStatus,
};
use crate::workflow::Workflow;

/// The end of a run of workflow `W`.
pub struct Outcome<W: Workflow> {
    run_id: RunId,
    status: RunStatus,
    result: Result<W::Output, RunError<W::Error>>,
    hook_errors: Vec<HookFailure>,
    compensation_failures: Vec<FailedCompensation>,
    best_effort_failures: Vec<BestEffortFailure>,
    jobs: Vec<Job>,
    journal: Journal,
    /// The run's bag, if it held anything (boxed: most runs leave none, and an outcome is
    /// moved several times on its way out).
    bag: Option<Box<BagStore>>,
    /// Where the failed run failed: read from the journal when first asked (most runs
    /// complete, and most failed runs are not asked), boxed.
    failed_at: OnceLock<Box<FailedAt>>,
}

/// What a run leaves besides its status and result: its journal, its recorded failures, the
/// jobs it dispatched and its bag.
#[derive(Default)]
pub(crate) struct Leftovers {
    pub(crate) journal: Journal,
    pub(crate) hook_errors: Vec<HookFailure>,
    pub(crate) compensation_failures: Vec<FailedCompensation>,
    pub(crate) best_effort_failures: Vec<BestEffortFailure>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) bag: Option<Box<BagStore>>,
}

impl Leftovers {
    /// Takes them out of a run (the jobs are the ones dispatched, given apart).
    pub(crate) fn take(run: &RunShared, jobs: Vec<Job>) -> Self {
        Self::take_from(run, &mut run.state.lock(), jobs)
    }

    /// [`Leftovers::take`] from the run's state, locked by the caller.
    #[inline]
    pub(crate) fn take_from(run: &RunShared, state: &mut RunState, jobs: Vec<Job>) -> Self {
        let extra = state.extra.take().map(|extra| *extra).unwrap_or_default();
        Leftovers {
            journal: std::mem::take(&mut state.journal),
            hook_errors: extra.hook_errors,
            compensation_failures: extra.compensation_failures,
            best_effort_failures: extra.best_effort_failures,
            jobs,
            bag: run.bag.take_all(),
        }
    }
}

impl<W: Workflow> Outcome<W> {
    /// The one place an outcome is made.
    pub(crate) fn new(
        run_id: RunId,
        status: RunStatus,
        result: Result<W::Output, RunError<W::Error>>,
        leftovers: Leftovers,
    ) -> Self {
        let Leftovers {
            journal,
            hook_errors,
            compensation_failures,
            best_effort_failures,
            jobs,
            bag,
        } = leftovers;
        Outcome {
            run_id,
            status,
            result,
            hook_errors,
            compensation_failures,
            best_effort_failures,
            jobs,
            journal,
            bag,
            failed_at: OnceLock::new(),
        }
    }

    /// A run that stopped before it began (its record could not be made or stored).
    pub(crate) fn stopped(run_id: RunId, status: RunStatus, error: RunError<W::Error>) -> Self {
        Self::new(run_id, status, Err(error), Leftovers::default())
    }

    /// The outcome of a finished (or parked) run, as its store recorded it.
    pub(crate) fn from_record(record: RunRecord, events: Vec<Event>) -> Self {
        let status = record.status.run_status();
        let message = record.error.clone().unwrap_or_default();
        let result = match (status, record.output) {
            (RunStatus::Completed, output) => serde_json::from_value(output.unwrap_or_default())
                .map_err(|err| {
                    RunError::Replay(ReplayError::Corrupt {
                        step: "(output)".to_owned(),
                        position: 0,
                        message: err.to_string(),
                    })
                }),
            _ => Err(RunError::Recorded { message }),
        };
        let compensation_failures = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::CompensationFailed {
                    step,
                    position,
                    error,
                    panicked,
                } => Some(FailedCompensation {
                    step: step.to_string(),
                    position: *position,
                    error: error.clone(),
                    panicked: *panicked,
                }),
                _ => None,
            })
            .collect();
        let leftovers = Leftovers {
            journal: Journal::from_events(events),
            compensation_failures,
            ..Leftovers::default()
        };
        Self::new(record.run_id, status, result, leftovers)
    }

    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// How the run ended.
    pub fn status(&self) -> RunStatus {
        self.status
    }

    /// Whether the run completed.
    pub fn is_completed(&self) -> bool {
        self.status == RunStatus::Completed
    }

    /// The output, if the run completed.
    pub fn output(&self) -> Option<&W::Output> {
        self.result.as_ref().ok()
    }

    /// The error, if the run failed.
    pub fn error(&self) -> Option<&RunError<W::Error>> {
        self.result.as_ref().err()
    }

    /// The output or the error.
    pub fn result(&self) -> Result<&W::Output, &RunError<W::Error>> {
        self.result.as_ref()
    }

    /// The output or the error, by value.
    ///
    /// # Errors
    /// The run's error when it failed.
    pub fn into_result(self) -> Result<W::Output, RunError<W::Error>> {
        self.result
    }

    /// The failures of `after` hook handlers, which did not change the outcome.
    pub fn hook_errors(&self) -> &[HookFailure] {
        &self.hook_errors
    }

    /// The compensations that failed (empty unless the status is
    /// [`RunStatus::CompensationFailed`]).
    pub fn compensation_failures(&self) -> &[FailedCompensation] {
        &self.compensation_failures
    }

    /// The best-effort steps that failed; the workflow went on without them.
    pub fn best_effort_failures(&self) -> &[BestEffortFailure] {
        &self.best_effort_failures
    }

    /// The jobs the run enqueued and the engine dispatched (empty unless it completed).
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// What the run's bag held when it ended: each value as JSON, by the name of its type
    /// (`std::any::type_name`). Empty for the recorded outcome of a run that had ended (an
    /// idempotent start): stores keep the bag's writes in the journal, not the bag.
    pub fn bag_json(&self) -> BTreeMap<String, Value> {
        self.bag
            .as_ref()
            .map(|bag| bag.to_json())
            .unwrap_or_default()
    }

    /// Everything that happened, in order.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The step whose failure ended the run, if a step failed (the last `StepFailed` event
    /// of a step that was not best-effort).
    pub fn failed_step(&self) -> Option<&str> {
        if self.is_completed() {
            return None;
        }
        self.journal.kinds().rev().find_map(|k| match k {
            EventKind::StepFailed { step, failure, .. } if !failure.best_effort => {
                Some(step.as_ref())
            }
            _ => None,
        })
    }
}

impl<W: Workflow> Outcome<W> {
    /// Where the run failed: a step, a `before` hook's handler, a wait, a nested workflow,
    /// a cancellation, the body itself, or before it started ([`FailedAt`]). `None` unless
    /// the run failed (compensated, compensation failed, cancelled or rejected). Read from the
    /// journal: a resumed run, and the recorded outcome of an ended one, say the same.
    pub fn failed_at(&self) -> Option<&FailedAt> {
        static START: FailedAt = FailedAt::Start;
        match self.status {
            // Read from the journal, so that a resumed or replayed run says what the first
            // said.
            RunStatus::Compensated | RunStatus::CompensationFailed | RunStatus::Cancelled => {
                Some(self.failed_at.get_or_init(|| {
                    Box::new(locate(self.journal.events(), W::META).unwrap_or(FailedAt::Body))
                }))
            }
            RunStatus::Rejected => Some(&START),
            _ => None,
        }
    }
}

impl<W: Workflow> fmt::Debug for Outcome<W>
where
    W::Output: fmt::Debug,
    W::Error: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("workflow", &W::META.name())
            .field("run_id", &self.run_id)
            .field("status", &self.status)
            .field("result", &self.result)
            .field("hook_errors", &self.hook_errors)
            .field("compensation_failures", &self.compensation_failures)
            .field("best_effort_failures", &self.best_effort_failures)
            .field("jobs", &self.jobs)
            .field("events", &self.journal.len())
            .field("failed_at", &self.failed_at())
            .finish()
    }
}
