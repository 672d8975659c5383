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
}

impl Replay {
    pub(crate) fn from_journal(events: &[Event]) -> Self {
        let mut replay = Replay::default();
        for event in events {
            match &event.kind {
                EventKind::StepStarted { step, position } => {
                    replay.steps.insert(
                        *position,
                        Recorded {
                            step: step.to_string(),
                            completed: false,
                            output: None,
                            compensation: None,
                            compensated: false,
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
