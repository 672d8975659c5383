//! Background jobs enqueued by a run, dispatched only if the run completes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A background job enqueued by a run with `ctx.jobs().enqueue(...)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Stable across a crash and a resume: a receiver drops a job whose id it has seen.
    #[serde(default)]
    id: String,
    name: Cow<'static, str>,
    payload: Value,
}

impl Job {
    /// A job named `name` carrying `payload` (with no id; a run gives the jobs it enqueues
    /// theirs).
    pub fn new(name: impl Into<Cow<'static, str>>, payload: Value) -> Self {
        Job {
            id: String::new(),
            name: name.into(),
            payload,
        }
    }

    /// The job with id `id`.
    pub(crate) fn with_id(mut self, id: String) -> Self {
        self.id = id;
        self
    }

    /// The job's id: `{run_id}/{origin}/{n}`, where the origin is the workflow body, a step
    /// (`step3`), a hook handler (`hook1.0`) or a compensation (`undo3`), and `n` counts the
    /// origin's jobs. The same every time the run executes, also after a crash and a resume,
    /// so that a receiver can drop a job delivered twice (a dispatch that was not recorded is
    /// made again). Empty for a job made with [`Job::new`].
    pub fn id(&self) -> &str {
        &self.id
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
