//! Reaching a run from outside: sending it an event ([`Engine::send`], [`Engine::fail`]) and
//! cancelling it ([`Engine::cancel`]), from any process with an engine on the same store.
//!
//! Both go through the store, so that the run gets them wherever it is: running here or in
//! another process, or suspended with nothing of it in memory anywhere. A suspended run they
//! wake is resumed here at once when this engine knows its workflow (in a task of its own),
//! and otherwise by whichever worker claims it first.

use serde::Serialize;

use super::Engine;
use crate::store::{Cancelling, Delivery, Message};
use crate::types::{
    Actor, CancelRequest, NoStore, RecordError, RunId, StoreError, StoredStatus, now_micros,
    to_record,
};
use crate::workflow::{EventPoint, Workflow};

/// What [`Engine::send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The event is kept for the run. `woke`: the run was waiting for it and goes on now.
    Delivered {
        /// Whether the run was suspended waiting for this event.
        woke: bool,
    },
    /// An event with the same delivery key was sent to the run before: it is taken once.
    Duplicate,
}

/// What [`Engine::cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// The run is asked to cancel: a running run stops at its next step boundary, a waiting
    /// or sleeping one at once (`woke`); its completed steps are then undone and it ends
    /// [`RunStatus::Cancelled`](crate::RunStatus::Cancelled).
    Requested {
        /// Whether the run was suspended, and is woken to be cancelled.
        woke: bool,
    },
    /// The run was asked to cancel before: that request stands.
    AlreadyRequested(CancelRequest),
}

/// Why [`Engine::send`] or [`Engine::fail`] did not deliver an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The engine has no store: events are delivered through one.
    #[error(transparent)]
    NoStore(#[from] NoStore),
    /// No run has this id.
    #[error("no run {run_id}: the event `{event}` was not kept")]
    UnknownRun {
        /// The run.
        run_id: RunId,
        /// The event.
        event: &'static str,
    },
    /// The run is over: nothing waits for the event.
    #[error("run {run_id} has ended ({status}): the event `{event}` was not kept")]
    Ended {
        /// The run.
        run_id: RunId,
        /// The event.
        event: &'static str,
        /// How it ended.
        status: StoredStatus,
    },
    /// The run is of another workflow than the event's.
    #[error(
        "run {run_id} is a run of `{workflow}`, not of `{expected}`: it has no event `{event}`"
    )]
    OtherWorkflow {
        /// The run.
        run_id: RunId,
        /// The event.
        event: &'static str,
        /// The workflow the event is declared on.
        expected: &'static str,
        /// The run's workflow.
        workflow: String,
    },
    /// The payload cannot be recorded (too large, nested too deep, not serializable).
    #[error(transparent)]
    Payload(#[from] RecordError),
    /// The store failed: the event may not have been kept; sending it again with the same
    /// delivery key is safe.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`Engine::cancel`] did not ask a run to cancel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// The engine has no store: cancellation goes through one.
    #[error(transparent)]
    NoStore(#[from] NoStore),
    /// No run has this id.
    #[error("no run {0} to cancel")]
    UnknownRun(RunId),
    /// The run is over.
    #[error("run {run_id} has ended ({status}): there is nothing to cancel")]
    Ended {
        /// The run.
        run_id: RunId,
        /// How it ended.
        status: StoredStatus,
    },
    /// The store failed: the request may not have been kept; asking again is safe.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Engine {
    /// Sends `event` with `payload` to run `run_id`: the run's `ctx.wait(event)` returns it.
    ///
    /// The event is kept in the store until the run takes it: sent before the run waits, it
    /// is taken when it does. A run suspended waiting for it is woken.
    ///
    /// # Errors
    /// [`SendError`]: no store, no such run, a run that has ended or is of another workflow,
    /// a payload that cannot be recorded, or the store failing.
    pub async fn send<W: Workflow, T: Serialize>(
        &self,
        run_id: RunId,
        event: EventPoint<W, T>,
        payload: T,
    ) -> Result<Sent, SendError> {
        let payload = to_record(&payload, self.env().max_record_bytes, || {
            format!("the payload of event `{}`", event.name())
        })?;
        self.deliver::<W>(run_id, event.name(), payload, None, None)
            .await
    }

    /// Sends `event` as [`Engine::send`] does, taken once per `delivery_key`: a webhook
    /// delivered twice (the provider retries) is kept once, and the second call answers
    /// [`Sent::Duplicate`].
    ///
    /// # Errors
    /// As [`Engine::send`].
    pub async fn send_once<W: Workflow, T: Serialize>(
        &self,
        run_id: RunId,
        event: EventPoint<W, T>,
        payload: T,
        delivery_key: impl Into<String>,
    ) -> Result<Sent, SendError> {
        let payload = to_record(&payload, self.env().max_record_bytes, || {
            format!("the payload of event `{}`", event.name())
        })?;
        self.deliver::<W>(
            run_id,
            event.name(),
            payload,
            None,
            Some(delivery_key.into()),
        )
        .await
    }

    /// Sends `event` to run `run_id` as a failure (Medusa's `setStepFailure`): the run's
    /// `ctx.wait(event)` returns [`WaitError::Failed`](crate::WaitError::Failed) with
    /// `error`, and a `?` there fails the run, which compensates.
    ///
    /// # Errors
    /// As [`Engine::send`].
    pub async fn fail<W: Workflow, T>(
        &self,
        run_id: RunId,
        event: EventPoint<W, T>,
        error: impl std::fmt::Display,
    ) -> Result<Sent, SendError> {
        self.deliver::<W>(
            run_id,
            event.name(),
            serde_json::Value::Null,
            Some(error.to_string()),
            None,
        )
        .await
    }

    async fn deliver<W: Workflow>(
        &self,
        run_id: RunId,
        event: &'static str,
        payload: serde_json::Value,
        failure: Option<String>,
        delivery_key: Option<String>,
    ) -> Result<Sent, SendError> {
        let store = self.store().ok_or(NoStore)?;
        let message = Message {
            event: event.to_owned(),
            payload,
            failure,
            delivery_key,
            at_micros: now_micros(),
        };
        match store.deliver(run_id, W::META.name(), &message).await? {
            Delivery::Accepted { woke } => {
                if woke {
                    self.wake(run_id);
                }
                Ok(Sent::Delivered { woke })
            }
            Delivery::Duplicate => Ok(Sent::Duplicate),
            Delivery::UnknownRun => Err(SendError::UnknownRun { run_id, event }),
            Delivery::Ended(status) => Err(SendError::Ended {
                run_id,
                event,
                status,
            }),
            Delivery::OtherWorkflow(workflow) => Err(SendError::OtherWorkflow {
                run_id,
                event,
                expected: W::META.name(),
                workflow,
            }),
        }
    }

    /// Asks run `run_id` to cancel, for `reason`: a running run stops at its next step
    /// boundary (here or in another process: engines look for requests every second), a
    /// waiting or sleeping one at once; its completed steps are compensated, nested workflows
    /// with it, and it ends [`RunStatus::Cancelled`](crate::RunStatus::Cancelled) with the
    /// reason (or `CompensationFailed` if an undo fails).
    ///
    /// # Errors
    /// [`CancelError`]: no store, no such run, a run that has ended, or the store failing.
    pub async fn cancel(
        &self,
        run_id: RunId,
        reason: impl Into<String>,
    ) -> Result<Cancel, CancelError> {
        self.cancel_as(run_id, reason, None).await
    }

    /// Asks run `run_id` to cancel as [`Engine::cancel`] does, recording who asked.
    ///
    /// # Errors
    /// As [`Engine::cancel`].
    pub async fn cancel_as(
        &self,
        run_id: RunId,
        reason: impl Into<String>,
        by: Option<Actor>,
    ) -> Result<Cancel, CancelError> {
        let store = self.store().ok_or(NoStore)?;
        let request = CancelRequest::new(reason, by);
        match store.cancel(run_id, &request).await? {
            Cancelling::Requested { woke } => {
                self.inner.in_flight.cancel(run_id, &request);
                if woke {
                    self.wake(run_id);
                }
                Ok(Cancel::Requested { woke })
            }
            Cancelling::AlreadyRequested(earlier) => Ok(Cancel::AlreadyRequested(earlier)),
            Cancelling::UnknownRun => Err(CancelError::UnknownRun(run_id)),
            Cancelling::Ended(status) => Err(CancelError::Ended { run_id, status }),
        }
    }

    /// Resumes a run just woken, in a task of its own, if this engine knows its workflow (a
    /// worker claims it otherwise, or first).
    fn wake(&self, run_id: RunId) {
        if self.inner.resumers.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let engine = self.clone();
        runtime.spawn(async move {
            if let Err(error) = engine.resume(run_id).await {
                tracing::debug!(%run_id, %error, "hookflow: a woken run is left to the workers");
            }
        });
    }
}
