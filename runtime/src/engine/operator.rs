//! What an operator does to a stored run: retry the compensations that failed
//! ([`Engine::retry`]) and fork it from a step into a new run ([`Engine::fork`]). Both are
//! recorded in the store first ([`request_retry`], [`fork_run`]), so that a worker that knows
//! the workflow can carry them out; this engine carries them out itself when it knows it.

use super::Engine;
use super::error::ResumeError;
use crate::store::{ForkError, RetryError, fork_run, request_retry};
use crate::types::{Actor, NoStore, RunId, RunStatus};

/// What [`Engine::retry`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Retried {
    /// This engine knows the workflow and ran the retry: how the run ended
    /// (`Compensated` if every failed compensation succeeded this time).
    Ran(RunStatus),
    /// The retry is recorded and the run is free: a worker (or engine) that knows the
    /// workflow carries it out. This engine did not, because it does not know the workflow
    /// (`None`), or could not resume it (why: e.g. another worker claimed it first).
    Requested(Option<ResumeError>),
}

impl Engine {
    /// Runs again the failed compensations of run `run_id`, which ended
    /// `CompensationFailed`, once their cause is fixed (Medusa's `retryStep`): records who
    /// asked (`actor`) in the run's journal, puts the run back to running (free for any
    /// worker), and, when this engine knows the workflow, resumes it here by replay. Each
    /// compensation that had failed runs again, in the saga's order, with the same data and
    /// idempotency key; one recorded completed never runs again. The run ends `Compensated`
    /// if they all succeed, `CompensationFailed` again (its `on_compensation_failed` hook
    /// fired again) otherwise.
    ///
    /// # Errors
    /// [`RetryError::NotCompensationFailed`] for a run that did not end so (nothing is
    /// recorded), [`RetryError::UnknownRun`], [`RetryError::NoStore`], or
    /// [`RetryError::Store`] when the store fails.
    pub async fn retry(&self, run_id: RunId, actor: Actor) -> Result<Retried, RetryError> {
        let store = self.store().cloned().ok_or(NoStore)?;
        let record = request_retry(&*store, run_id, actor).await?;
        tracing::info!(%run_id, workflow = %record.workflow, "hookflow: retry of failed compensations requested");
        if !self.knows(&record.workflow, record.version) {
            return Ok(Retried::Requested(None));
        }
        Ok(match self.resume(run_id).await {
            Ok(status) => Retried::Ran(status),
            Err(err) => Retried::Requested(Some(err)),
        })
    }

    /// Forks run `run_id` from its step at position `from_step` (DBOS's fork): a new run of
    /// the same workflow, version and input, whose journal begins with the original's up to
    /// the start of that step (and an `EventKind::Forked` naming `actor`); replayed, its
    /// steps before `from_step` return what the original recorded and the steps from it run
    /// again. The new run is created free for any worker; when this engine knows the
    /// workflow, it also starts resuming it here, on the current tokio runtime. Returns the
    /// new run's id ([`Engine::status`] follows it). The original is left as it was.
    ///
    /// # Errors
    /// [`ForkError::NoSuchStep`] when the run never started that step,
    /// [`ForkError::InParallel`] for a step inside a `parallel!` group,
    /// [`ForkError::UnknownRun`], [`ForkError::NoStore`], or [`ForkError::Store`] when the
    /// store fails. Nothing is recorded then.
    pub async fn fork(
        &self,
        run_id: RunId,
        from_step: u32,
        actor: Actor,
    ) -> Result<RunId, ForkError> {
        let store = self.store().cloned().ok_or(NoStore)?;
        let record = fork_run(&*store, run_id, from_step, actor, &self.inner.lease).await?;
        let new_id = record.run_id;
        tracing::info!(from = %run_id, %new_id, from_step, "hookflow: run forked");
        if self.knows(&record.workflow, record.version) {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let engine = self.clone();
                handle.spawn(async move {
                    if let Err(err) = engine.resume(new_id).await {
                        tracing::warn!(run_id = %new_id, %err, "hookflow: forked run left to the workers");
                    }
                });
            }
        }
        Ok(new_id)
    }

    /// Whether this engine can resume runs of `workflow` at `version`.
    fn knows(&self, workflow: &str, version: u32) -> bool {
        self.inner
            .resumers
            .contains_key(&(workflow.to_owned(), version))
    }
}
