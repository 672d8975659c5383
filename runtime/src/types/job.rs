//! Background jobs enqueued by a run, dispatched only if the run completes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A background job enqueued by a run with `ctx.jobs().enqueue(...)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    name: Cow<'static, str>,
    payload: Value,
}

impl Job {
    /// A job named `name` carrying `payload`.
    pub fn new(name: impl Into<Cow<'static, str>>, payload: Value) -> Self {
        Job {
            name: name.into(),
            payload,
        }
    }
    /// The job's name (what kind of work it is).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The job's payload.
    pub fn payload(&self) -> &Value {
        &self.payload
    }
}

/// Receives the jobs of completed runs: put them on your queue.
///
/// Jobs enqueued by a run that fails are dropped, so a compensated checkout never sends its
/// confirmation email. Any `Fn(Job) + Send + Sync + 'static` closure is a dispatcher.
pub trait JobDispatcher: Send + Sync + 'static {
    /// Takes one job of a completed run.
    fn dispatch(&self, job: Job);
}

impl<F: Fn(Job) + Send + Sync + 'static> JobDispatcher for F {
    fn dispatch(&self, job: Job) {
        self(job)
    }
}
