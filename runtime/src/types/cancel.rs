//! Cancellation as data: [`CancelRequest`] (who asked, why, when), and the in-process
//! signal that tells a run in flight here that it is asked to stop.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::types::Actor;

/// A request to cancel a run ([`Engine::cancel`](crate::Engine::cancel), `hookflow cancel`,
/// or its deadline passing): kept with the run in the store until the run carries it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Why, as the caller said it (or "the deadline passed").
    pub reason: String,
    /// Who asked, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
    /// When, in microseconds since the Unix epoch.
    pub at_micros: u64,
}

impl CancelRequest {
    /// A request made now.
    pub fn new(reason: impl Into<String>, by: Option<Actor>) -> Self {
        CancelRequest {
            reason: reason.into(),
            by,
            at_micros: crate::types::now_micros(),
        }
    }
}

/// Set once a run in flight in this process is asked to stop; the run reads it at its next
/// step boundary (and at every wait).
#[derive(Debug, Default)]
pub(crate) struct CancelSignal(OnceLock<CancelRequest>);

impl CancelSignal {
    /// Asks the run to stop; the first request stands.
    pub(crate) fn request(&self, request: CancelRequest) {
        let _ = self.0.set(request);
    }

    /// The request, once there is one.
    #[inline]
    pub(crate) fn get(&self) -> Option<&CancelRequest> {
        self.0.get()
    }
}
