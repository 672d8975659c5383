//! The journal: every run records what happened, in order, as serde-serializable events.
//!
//! The in-memory engine keeps the journal in the run's [`Outcome`](crate::Outcome); a store
//! persists the same events. Step outputs and compensation data are recorded as JSON only
//! when the engine asks for it ([`EngineBuilder::record_data`](crate::EngineBuilder::record_data))
//! or has a store: the default path never serializes them. A resumed run reads its recorded
//! journal back (`replay`) to replay its body.

mod current;
mod detail;
mod event;
mod name;
mod replay;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use current::CurrentStep;
pub use detail::{BagChange, FiringDetail, HandlerFailure, Retry, StepFailure, WaitFor};
pub use event::{Event, EventKind, Name, WaitOutcome};
pub(crate) use replay::{BagWrite, Recorded, RecordedFailure, RecordedFiring, Replay};

/// A run's events, in the order they happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Journal {
    events: Vec<Event>,
}

impl Journal {
    /// The events, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Iterates over the events' kinds, in order.
    pub fn kinds(&self) -> impl DoubleEndedIterator<Item = &EventKind> + ExactSizeIterator {
        self.events.iter().map(|e| &e.kind)
    }

    /// The number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the journal is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// A journal holding `events`, as a store returns them.
    pub fn from_events(events: Vec<Event>) -> Self {
        Journal { events }
    }

    /// Keeps the first `len` events (what a store committed), dropping the rest.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.events.truncate(len);
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.events.reserve(additional);
    }

    /// Appends an event that happened at `at_micros`, a reading of the clock just taken.
    #[inline]
    pub(crate) fn push_at(&mut self, kind: EventKind, at_micros: u64) -> &Event {
        let seq = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
        self.events.push(Event {
            seq,
            at_micros,
            kind,
        });
        &self.events[self.events.len() - 1]
    }
}

impl<'a> IntoIterator for &'a Journal {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.events.iter()
    }
}

/// The journal as a trace, one event a line, with the time since the run started.
///
/// ```text
///   +0.000ms  run started: checkout (0193f1c2-...)
///   +0.004ms  step load_cart #0 started
///   +0.006ms  step load_cart #0 completed
/// ```
impl fmt::Display for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = self.events.first().map_or(0, |e| e.at_micros);
        for event in &self.events {
            let micros = event.at_micros.saturating_sub(start);
            writeln!(
                f,
                "  +{}.{:03}ms  {}",
                micros / 1000,
                micros % 1000,
                event.kind
            )?;
        }
        Ok(())
    }
}
