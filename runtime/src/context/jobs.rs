//! The jobs handle a context gives: `ctx.jobs().enqueue(...)`.

use std::borrow::Cow;

use serde::Serialize;

use super::RunShared;
use crate::types::{Job, lock};

/// The handle that `ctx.jobs()` returns.
#[derive(Debug)]
pub struct Jobs<'a> {
    pub(crate) run: &'a RunShared,
}

impl Jobs<'_> {
    /// Enqueues a job; it is dispatched when the run completes, and dropped if it fails.
    ///
    /// # Errors
    /// When `payload` cannot be serialized to JSON.
    pub fn enqueue(
        &self,
        name: impl Into<Cow<'static, str>>,
        payload: &impl Serialize,
    ) -> Result<(), serde_json::Error> {
        let job = Job::new(name, serde_json::to_value(payload)?);
        lock(&self.run.state).jobs.push(job);
        Ok(())
    }

    /// The number of jobs this run has enqueued so far.
    pub fn pending(&self) -> usize {
        lock(&self.run.state).jobs.len()
    }
}
