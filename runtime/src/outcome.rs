//! How a run ended: its status, its output or error, its hook errors and its journal.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::compensation::FailedCompensation;
use crate::context::RunId;
use crate::durable::ReplayError;
use crate::error::RunError;
use crate::hook::Slot;
use crate::jobs::Job;
use crate::journal::{Event, EventKind, Journal};
use crate::step::BestEffortFailure;
use crate::store::{RunRecord, StoredStatus};
use crate::workflow::Workflow;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// The workflow returned its output.
    Completed,
    /// The workflow failed and every completed step was undone.
    Compensated,
    /// The workflow failed and some compensation failed too: needs attention.
    CompensationFailed,
    /// The run's journal could not be replayed (see `RunError::Replay`): parked in the store,
    /// resumable after a fix.
    Parked,
    /// The store failed mid-run: the run stopped, is still `running` in the store, and the
    /// next resume goes on with it.
    Interrupted,
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunStatus::Completed => "completed",
            RunStatus::Compensated => "compensated",
            RunStatus::CompensationFailed => "compensation failed",
            RunStatus::Parked => "parked",
            RunStatus::Interrupted => "interrupted",
        })
    }
}

/// An `after` hook handler (or an `on_compensation_failed` handler) that failed. Recorded,
/// never rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    /// The hook.
    pub hook: &'static str,
    /// The handler's slot.
    pub slot: Slot,
    /// The handler's name.
    pub handler: &'static str,
    /// The plugin that registered the handler, if one did.
    pub plugin: Option<String>,
    /// The error or panic message.
    pub error: String,
    /// Whether the handler panicked.
    pub panicked: bool,
}

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hook `{}`: handler `{}` ({} slot",
            self.hook, self.handler, self.slot
        )?;
        if let Some(plugin) = &self.plugin {
            write!(f, ", plugin `{plugin}`")?;
        }
        write!(f, ") failed: {}", self.error)
    }
}

/// The end of a run of workflow `W`.
pub struct Outcome<W: Workflow> {
    pub(crate) run_id: RunId,
    pub(crate) status: RunStatus,
    pub(crate) result: Result<W::Output, RunError<W::Error>>,
    pub(crate) hook_errors: Vec<HookFailure>,
    pub(crate) compensation_failures: Vec<FailedCompensation>,
    pub(crate) best_effort_failures: Vec<BestEffortFailure>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) journal: Journal,
}

impl<W: Workflow> Outcome<W> {
    /// A run that stopped before its end.
    pub(crate) fn stopped(run_id: RunId, status: RunStatus, error: RunError<W::Error>) -> Self {
        Outcome {
            run_id,
            status,
            result: Err(error),
            hook_errors: Vec::new(),
            compensation_failures: Vec::new(),
            best_effort_failures: Vec::new(),
            jobs: Vec::new(),
            journal: Journal::default(),
        }
    }

    /// The outcome of a finished (or parked) run, as its store recorded it.
    pub(crate) fn from_record(record: RunRecord, events: Vec<Event>) -> Self {
        let status = match record.status {
            StoredStatus::Completed => RunStatus::Completed,
            StoredStatus::Compensated => RunStatus::Compensated,
            StoredStatus::CompensationFailed => RunStatus::CompensationFailed,
            StoredStatus::Parked => RunStatus::Parked,
            _ => RunStatus::Interrupted,
        };
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
        Outcome {
            run_id: record.run_id,
            status,
            result,
            hook_errors: Vec::new(),
            compensation_failures,
            best_effort_failures: Vec::new(),
            jobs: Vec::new(),
            journal: Journal::from_events(events),
        }
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
            crate::journal::EventKind::StepFailed {
                step,
                best_effort: false,
                ..
            } => Some(step.as_ref()),
            _ => None,
        })
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
            .finish()
    }
}
