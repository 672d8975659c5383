//! How a run starts: [`RunOptions`] (request id, actor, origin, additional data, idempotency
//! key, run id).

use serde::Serialize;

use crate::types::{Actor, Origin, RunId};

/// Who, where from and with what additional data a run starts.
///
/// ```
/// # use hookflow_runtime::{Actor, Origin, RunOptions};
/// let options = RunOptions::new()
///     .request_id("req_123")
///     .actor(Actor::user("usr_1"))
///     .origin(Origin::Api)
///     .additional_data(serde_json::json!({ "loyalty": { "points": 120 } }));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub(crate) request_id: Option<String>,
    pub(crate) actor: Option<Actor>,
    pub(crate) origin: Origin,
    pub(crate) additional_data: Option<serde_json::Value>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) run_id: Option<RunId>,
    /// When the run is cancelled if it has not ended, in microseconds since the Unix epoch.
    pub(crate) deadline_micros: Option<u64>,
}

impl RunOptions {
    /// Defaults: no request id, no actor, [`Origin::Local`], no additional data.
    pub fn new() -> Self {
        Self::default()
    }
    /// The request id (e.g. an HTTP request's `x-request-id`).
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
    /// Who starts the run.
    #[must_use]
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }
    /// Where the run starts from.
    #[must_use]
    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }
    /// Extra data for hooks and steps, read with `ctx.additional_data::<T>()`.
    #[must_use]
    pub fn additional_data(mut self, data: serde_json::Value) -> Self {
        self.additional_data = Some(data);
        self
    }
    /// The run's id, made beforehand with [`RunId::generate`] (by default, a new one). With a
    /// store, a start whose id a run already has is rejected
    /// ([`Rejection::RunIdTaken`](crate::Rejection::RunIdTaken)), and that run is left as it
    /// was.
    #[must_use]
    pub fn run_id(mut self, run_id: RunId) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// A deadline: a run that has not ended by then is cancelled (at its next step boundary,
    /// or at once if it waits or sleeps), its completed steps undone, and it ends
    /// [`RunStatus::Cancelled`](crate::RunStatus::Cancelled) with the reason "the deadline
    /// passed". It needs a store (the deadline is kept with the run); without one it is
    /// ignored.
    #[must_use]
    pub fn deadline(mut self, at: std::time::SystemTime) -> Self {
        let micros = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.deadline_micros = Some(micros);
        self
    }

    /// A deadline `after` from now ([`RunOptions::deadline`]).
    #[must_use]
    pub fn deadline_after(self, after: std::time::Duration) -> Self {
        self.deadline(std::time::SystemTime::now() + after)
    }

    /// A key that makes the start idempotent: with a store, a second start with the same key
    /// and the same input returns the first run's outcome instead of running again; one with
    /// another input (or of another workflow) is rejected
    /// ([`Rejection::IdempotencyConflict`](crate::Rejection::IdempotencyConflict)).
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Extra data from any serializable value.
    ///
    /// # Errors
    /// When `data` cannot be serialized to JSON.
    pub fn additional_data_from(self, data: &impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(self.additional_data(serde_json::to_value(data)?))
    }
}
