//! Where a run is, as its journal says: the step in flight, or the last one that ended.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Event, EventKind};

/// The step a run is at, read from its journal ([`CurrentStep::of`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentStep {
    /// The step's name.
    pub name: String,
    /// The step's position in the run (from 0, in start order).
    pub position: u32,
    /// Whether the step started and has not ended (completed or failed) in the journal: it is
    /// running now, or was when the run stopped. `false`: it is the last step that ended.
    pub in_flight: bool,
}

impl CurrentStep {
    /// The step in flight (started, not ended; the one started last if `parallel!` branches
    /// run several), or else the step that ended last; `None` for a journal without steps.
    /// Never fails: events that are not about steps are skipped.
    pub fn of(events: &[Event]) -> Option<CurrentStep> {
        // position -> (name, when it started, when it ended)
        let mut steps: HashMap<u32, (&str, u32, Option<u32>)> = HashMap::new();
        for event in events {
            match &event.kind {
                EventKind::StepStarted { step, position, .. } => {
                    steps.insert(*position, (step, event.seq, None));
                }
                EventKind::StepCompleted { position, .. }
                | EventKind::StepFailed { position, .. } => {
                    if let Some(entry) = steps.get_mut(position) {
                        entry.2 = Some(event.seq);
                    }
                }
                _ => {}
            }
        }
        let in_flight = steps
            .iter()
            .filter(|(_, (_, _, ended))| ended.is_none())
            .max_by_key(|(_, (_, started, _))| *started);
        let (position, (name, _, ended)) = match in_flight {
            Some(found) => found,
            None => steps
                .iter()
                .max_by_key(|(_, (_, _, ended))| ended.unwrap_or(0))?,
        };
        Some(CurrentStep {
            name: (*name).to_owned(),
            position: *position,
            in_flight: ended.is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;

    fn journal(kinds: Vec<EventKind>) -> Vec<Event> {
        let mut journal = Journal::default();
        for kind in kinds {
            journal.push_at(kind, crate::types::now_micros());
        }
        journal.events().to_vec()
    }

    fn started(step: &'static str, position: u32) -> EventKind {
        EventKind::StepStarted {
            step: step.into(),
            position,
            key: None,
        }
    }

    fn completed(step: &'static str, position: u32) -> EventKind {
        EventKind::StepCompleted {
            step: step.into(),
            position,
            compensable: false,
            output: None,
            compensation: None,
        }
    }

    #[test]
    fn the_current_step_is_the_one_in_flight_or_else_the_last_that_ended() {
        assert_eq!(CurrentStep::of(&[]), None);
        let two_done = vec![
            started("a", 0),
            completed("a", 0),
            started("b", 1),
            completed("b", 1),
        ];
        assert_eq!(
            CurrentStep::of(&journal(two_done.clone())),
            Some(CurrentStep {
                name: "b".into(),
                position: 1,
                in_flight: false
            })
        );
        let mut third = two_done;
        third.push(started("c", 2));
        assert_eq!(
            CurrentStep::of(&journal(third)),
            Some(CurrentStep {
                name: "c".into(),
                position: 2,
                in_flight: true
            })
        );
        // Two branches: the first ends after the second started; the second is in flight.
        let branches = vec![
            started("a", 0),
            started("b", 1),
            completed("a", 0),
            EventKind::RunResumed,
        ];
        assert_eq!(
            CurrentStep::of(&journal(branches)),
            Some(CurrentStep {
                name: "b".into(),
                position: 1,
                in_flight: true
            })
        );
    }
}
