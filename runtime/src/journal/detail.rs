//! The boxed parts of the larger [`EventKind`](super::EventKind)s: an event is as large as
//! its largest kind, so what only some events carry, or carry rarely, lives behind a pointer.
//! In JSON each part's fields are the event's own (`#[serde(flatten)]`): a journal reads and
//! writes as it did when they were inline.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Name;
use crate::types::RecordedJson;

/// How a step failed ([`EventKind::StepFailed`](super::EventKind::StepFailed)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailure {
    /// The error's message.
    pub error: String,
    /// Whether the step panicked.
    pub panicked: bool,
    /// How many attempts were made.
    #[serde(default = "one")]
    pub attempts: u32,
    /// Whether the step was best-effort: the workflow went on without it.
    #[serde(default)]
    pub best_effort: bool,
    /// The error's value, when the engine records data and the step's error type is
    /// `Serialize + Deserialize`: a resumed run gives it back to a body that handled the
    /// failure, without running the step again.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_data: Option<Value>,
}

/// A failed attempt that will be tried again ([`EventKind::StepRetrying`](super::EventKind::StepRetrying),
/// [`EventKind::CompensationRetrying`](super::EventKind::CompensationRetrying)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// The attempt's error.
    pub error: String,
    /// The delay before the next attempt, in microseconds.
    pub delay_micros: u64,
}

/// What a hook firing records besides its hook and counts
/// ([`EventKind::HookFired`](super::EventKind::HookFired)), when there is any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FiringDetail {
    /// The handlers' names, in the order they run, when the run records data (it has a
    /// store): a resumed run checks that it replays the same handlers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<Name>,
    /// Where the firing is in the run's code, when that is not its index (a firing inside
    /// a `parallel!` branch, or after one): what a resumed run matches it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Box<str>>,
}

impl FiringDetail {
    /// The detail of a firing with these `names` and `key`: `None` when both are empty.
    pub fn of(names: Vec<Name>, key: Option<Box<str>>) -> Option<Box<Self>> {
        (!names.is_empty() || key.is_some()).then(|| Box::new(FiringDetail { names, key }))
    }
}

/// How a hook handler failed ([`EventKind::HookHandlerFailed`](super::EventKind::HookHandlerFailed)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerFailure {
    /// The error's message.
    pub error: String,
    /// Whether the handler panicked.
    pub panicked: bool,
    /// The firing it belongs to.
    #[serde(default)]
    pub firing: u32,
}

/// A bag write ([`EventKind::BagWritten`](super::EventKind::BagWritten)): the value and who
/// wrote it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BagChange {
    /// The value it was set to, as JSON; absent when it was taken out.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub value: Option<Value>,
    /// The position of the step that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// The hook firing and the handler's place in it, for a handler's write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<(u32, u32)>,
    /// The position of the step whose compensation wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<u32>,
}

/// What a wait waits for ([`EventKind::WaitStarted`](super::EventKind::WaitStarted)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitFor {
    /// The event waited for (`"awaited"` in the journal's JSON, where `"event"` names the
    /// journal event).
    #[serde(default, rename = "awaited", skip_serializing_if = "Option::is_none")]
    pub event: Option<Name>,
    /// Until when, in microseconds since the Unix epoch: the timer's due time, or the wait's
    /// timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_micros: Option<u64>,
}

/// A recorded value, `null` included: only an absent field means "not recorded".
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// [`present`], boxed.
pub(super) fn present_boxed<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Box<Value>>, D::Error> {
    Value::deserialize(deserializer).map(|value| Some(Box::new(value)))
}

/// [`present`], as the recorded JSON text, boxed.
pub(super) fn present_recorded<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Box<RecordedJson>>, D::Error> {
    RecordedJson::deserialize(deserializer).map(|json| Some(Box::new(json)))
}

/// A firing's detail, read from the event's own fields: `None` when they hold neither names
/// nor a key (as the run that recorded it had).
pub(super) fn firing_detail<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Box<FiringDetail>>, D::Error> {
    let FiringDetail { names, key } = FiringDetail::deserialize(deserializer)?;
    Ok(FiringDetail::of(names, key))
}

fn one() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::super::{Event, EventKind};

    #[test]
    fn an_event_is_64_bytes() {
        // A run's journal holds its events inline: every event is as large as the largest
        // kind. 120 bytes before the larger kinds' parts were boxed.
        assert_eq!(size_of::<EventKind>(), 48);
        assert_eq!(size_of::<Event>(), 64);
    }
}
