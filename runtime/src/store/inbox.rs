//! What the store keeps for long-running runs: the events sent to a run (its inbox), how a
//! run suspends, and what wakes it.
//!
//! A run that waits for an event looks in its inbox first: messages are kept from the moment
//! they are sent, before or while the run waits, and the run takes those of one event in the
//! order they arrived (the n-th wait for `payment_captured` takes the n-th such message; the
//! journal records which). Nothing is lost when the message comes before the wait, and a
//! message sent twice under the same delivery key is kept once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::{CancelRequest, StoredStatus};

/// An event sent to a run ([`Store::deliver`](super::Store::deliver)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The event's name, as the workflow declares it (`payment_captured`).
    pub event: String,
    /// The payload, as JSON (`null` for a failure).
    pub payload: Value,
    /// Set when the event is sent as a failure: what the waiting body gets as its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The sender's key: a second message with the same key to the same run is not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_key: Option<String>,
    /// When it was sent, in microseconds since the Unix epoch.
    pub at_micros: u64,
}

/// What [`Store::deliver`](super::Store::deliver) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Kept in the run's inbox. `woke`: the run was suspended waiting for this event, and is
    /// now due to be claimed.
    Accepted {
        /// Whether the run was woken.
        woke: bool,
    },
    /// A message with the same delivery key was kept before: nothing changed.
    Duplicate,
    /// No run has this id.
    UnknownRun,
    /// The run is over (its status): nothing was kept.
    Ended(StoredStatus),
    /// The run is of another workflow (named): nothing was kept.
    OtherWorkflow(String),
}

/// A run that suspends ([`Store::suspend`](super::Store::suspend)): what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    /// The event it waits for, if any, and the index (from 0) of the message of that event
    /// it waits for: once the inbox holds more messages of the event than that, it wakes.
    pub event: Option<(String, u32)>,
    /// When it wakes by itself, if it does (a timer, a wait's timeout, the run's deadline), in
    /// microseconds since the Unix epoch.
    pub wake_at_micros: Option<u64>,
}

/// Why [`Store::suspend`](super::Store::suspend) did not suspend a run: what it would have
/// been woken by at once. Nothing was changed but the events appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A message of the event it waits for is in its inbox.
    Message,
    /// It is asked to cancel.
    Cancel(CancelRequest),
    /// Its wake-up time has passed.
    Due,
}

/// What [`Store::cancel`](super::Store::cancel) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelling {
    /// The request is kept with the run. `woke`: the run was suspended and is now due to be
    /// claimed, to be cancelled by whoever claims it.
    Requested {
        /// Whether the run was woken.
        woke: bool,
    },
    /// The run was asked to cancel before: that request stands.
    AlreadyRequested(CancelRequest),
    /// No run has this id.
    UnknownRun,
    /// The run is over (its status): nothing was changed.
    Ended(StoredStatus),
}
