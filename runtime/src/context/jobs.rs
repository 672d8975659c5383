//! The jobs handle a context gives: `ctx.jobs().enqueue(...)`.

use std::borrow::Cow;

use serde::Serialize;

use super::{RunShared, Writer};
use crate::journal::EventKind;
use crate::types::{Job, RecordError, to_record};

/// The handle that `ctx.jobs()` returns.
#[derive(Debug)]
pub struct Jobs<'a> {
    pub(crate) run: &'a RunShared,
    pub(crate) writer: Writer,
}

impl Jobs<'_> {
    /// Enqueues a job; it is dispatched when the run completes, and dropped if it fails.
    /// It gets a stable id ([`Job::id`]).
    ///
    /// With a store, a job a step or a hook handler enqueues is journaled with it, and a
    /// resumed run that replays the step has it back; the body's own jobs are enqueued again
    /// by the body, with the same ids.
    ///
    /// # Errors
    /// [`RecordError`] when `payload` cannot be serialized to JSON, is nested deeper than
    /// [`MAX_DEPTH`](crate::MAX_DEPTH) or is larger than the engine's
    /// [`max_record_bytes`](crate::EngineBuilder::max_record_bytes); nothing is enqueued.
    pub fn enqueue(
        &self,
        name: impl Into<Cow<'static, str>>,
        payload: &impl Serialize,
    ) -> Result<(), RecordError> {
        let name = name.into();
        let payload = to_record(payload, self.run.env.max_record_bytes, || {
            format!("the payload of job `{name}`")
        })?;
        let origin = match self.writer {
            Writer::Body => "body".to_owned(),
            Writer::Step { key, .. } => self.run.with_key(key, |k| format!("step{k}")),
            Writer::Handler { key, index, .. } => {
                self.run.with_key(key, |k| format!("hook{k}.{index}"))
            }
            Writer::Compensation { position, .. } => format!("undo{position}"),
        };
        let prefix = format!("{}/{origin}/", self.run.run_id);
        let mut state = self.run.state.lock();
        let n = state
            .jobs
            .iter()
            .filter(|j| j.id().starts_with(&prefix))
            .count();
        let job = Job::new(name, payload).with_id(format!("{prefix}{n}"));
        // A compensation's jobs are discarded with its failed run: not journaled.
        let (step, handler, _) = self.writer.journal_fields();
        if (step.is_some() || handler.is_some()) && self.run.records_data() {
            self.run.push(
                &mut state,
                EventKind::JobEnqueued {
                    job: Box::new(job.clone()),
                    step,
                    handler,
                },
            );
        }
        state.jobs.push(job);
        Ok(())
    }

    /// The number of jobs this run has enqueued so far.
    pub fn pending(&self) -> usize {
        self.run.state.lock().jobs.len()
    }
}
