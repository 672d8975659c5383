//! Reading a recorded journal back: what it says of each step position, for a resumed run
//! that replays its body.

use std::collections::HashMap;

use serde_json::Value;

use super::{Event, EventKind};

/// What a resumed run's journal says about each step position.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) steps: HashMap<u32, Recorded>,
    /// The recorded failure, if the run had failed and was compensating.
    pub(crate) failure: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) step: String,
    pub(crate) completed: bool,
    pub(crate) output: Option<Value>,
    pub(crate) compensation: Option<Value>,
    pub(crate) compensated: bool,
    /// How the step failed, if it did.
    pub(crate) failed: Option<Box<RecordedFailure>>,
}

/// A step's recorded failure (its `StepFailed` event).
#[derive(Debug)]
pub(crate) struct RecordedFailure {
    /// The error's message.
    pub(crate) error: String,
    /// The error's value, if its type is serde and the run recorded it.
    pub(crate) data: Option<Value>,
    pub(crate) panicked: bool,
    pub(crate) best_effort: bool,
    /// A step started after the failure was recorded: the body went on past it.
    pub(crate) went_on: bool,
}

impl Replay {
    pub(crate) fn from_journal(events: &[Event]) -> Self {
        let mut replay = Replay::default();
        // The failures no step has started after yet.
        let mut last_failures: Vec<u32> = Vec::new();
        for event in events {
            match &event.kind {
                EventKind::StepStarted { step, position } => {
                    for failed in last_failures.drain(..) {
                        if let Some(f) = replay
                            .steps
                            .get_mut(&failed)
                            .and_then(|r| r.failed.as_mut())
                        {
                            f.went_on = true;
                        }
                    }
                    replay.steps.insert(
                        *position,
                        Recorded {
                            step: step.to_string(),
                            completed: false,
                            output: None,
                            compensation: None,
                            compensated: false,
                            failed: None,
                        },
                    );
                }
                EventKind::StepCompleted {
                    position,
                    output,
                    compensation,
                    ..
                } => {
                    if let Some(r) = replay.steps.get_mut(position) {
                        r.completed = true;
                        r.output.clone_from(output);
                        r.compensation.clone_from(compensation);
                    }
                }
                EventKind::StepFailed {
                    position,
                    error,
                    panicked,
                    best_effort,
                    error_data,
                    ..
                } => {
                    if let Some(r) = replay.steps.get_mut(position) {
                        r.failed = Some(Box::new(RecordedFailure {
                            error: error.clone(),
                            data: error_data.clone(),
                            panicked: *panicked,
                            best_effort: *best_effort,
                            went_on: false,
                        }));
                        last_failures.push(*position);
                    }
                }
                EventKind::CompensationCompleted { position, .. }
                | EventKind::CompensationFailed { position, .. } => {
                    if let Some(r) = replay.steps.get_mut(position) {
                        r.compensated = true;
                    }
                }
                EventKind::RunFailed { error } => replay.failure = Some(error.clone()),
                _ => {}
            }
        }
        replay
    }
}
