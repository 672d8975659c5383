//! Waiting inside a run: for an event ([`WorkflowContext::wait`]), until a time
//! ([`WorkflowContext::sleep`]), or both ([`WorkflowContext::wait_timeout`]).
//!
//! A wait takes a step position (its key is counted with the steps), and its start is
//! journaled with what it waits for and until when (the due time is observed once, then
//! replayed). It ends when its event is in the run's inbox (the journal records which message
//! it took), or its time has come. Until then a durable run **suspends**: the store marks it
//! waiting and releases its lease ([`Store::suspend`](crate::Store::suspend)), and the run
//! stops here without unwinding ([`Halt::Suspended`]); the process keeps nothing of it. Once
//! woken (the event is sent, the timer is due, it is cancelled) it is claimed again and its
//! body replayed up to this wait, which then finds what woke it.
//!
//! Without a store, `sleep` sleeps in the process (the run keeps its task) and `wait` fails
//! with [`WaitError::NoStore`]: an event is delivered through a store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use super::commit::commit_or_halt;
use super::halt::stop;
use super::scope::step_key;
use crate::context::{Halt, RunShared, TypedContext, WorkflowContext};
use crate::journal::{Event, EventKind, WaitFor, WaitOutcome};
use crate::store::{Suspension, Wake};
use crate::types::{ReplayError, WaitError, now_micros};
use crate::workflow::EventPoint;

impl WorkflowContext {
    /// Waits for `event`, sent to this run by [`Engine::send`](crate::Engine::send) (or as a
    /// failure by [`Engine::fail`](crate::Engine::fail)), and returns its payload.
    ///
    /// An event sent before the run waits for it is kept and taken here at once; the n-th
    /// wait for an event takes the n-th message of it. With a store, a run that waits
    /// suspends: it holds no task and no memory until the event arrives, then a worker (or the
    /// engine that sends it) resumes it by replay.
    ///
    /// # Errors
    /// [`WaitError::Failed`] if the event was sent as a failure (a `?` then fails the run,
    /// which compensates), [`WaitError::Payload`] if its payload is not a `T`,
    /// [`WaitError::NoStore`] if the engine has no store.
    pub async fn wait<W, T: DeserializeOwned>(
        &self,
        event: EventPoint<W, T>,
    ) -> Result<T, WaitError> {
        let outcome = self.wait_until(Some(event.name()), None).await;
        // A wait without timeout ends with its event, unless its journal says otherwise.
        taken(event.name(), outcome)?.ok_or_else(|| WaitError::Payload {
            event: event.name().to_owned(),
            message: "the journal records no event for this wait".to_owned(),
        })
    }

    /// Waits for `event` as [`WorkflowContext::wait`] does, at most `timeout`: `Ok(None)` if
    /// it has not come by then. The deadline is recorded when the wait starts, so a resumed
    /// run keeps it.
    ///
    /// # Errors
    /// As [`WorkflowContext::wait`].
    pub async fn wait_timeout<W, T: DeserializeOwned>(
        &self,
        event: EventPoint<W, T>,
        timeout: Duration,
    ) -> Result<Option<T>, WaitError> {
        let outcome = self
            .wait_until(Some(event.name()), Some(Until::After(timeout)))
            .await;
        taken(event.name(), outcome)
    }

    /// Sleeps for `duration`: a durable timer. The due time is recorded when the sleep starts;
    /// the run suspends, survives restarts, and is woken on time by whichever worker is
    /// alive. Without a store, it sleeps in this process.
    pub async fn sleep(&self, duration: Duration) {
        self.wait_until(None, Some(Until::After(duration))).await;
    }

    /// Sleeps until `at` ([`WorkflowContext::sleep`]); a time in the past returns at once.
    pub async fn sleep_until(&self, at: SystemTime) {
        let micros = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.wait_until(None, Some(Until::At(micros))).await;
    }

    /// The one wait: for `event`, until `until`, or both.
    async fn wait_until(&self, event: Option<&'static str>, until: Option<Until>) -> Outcome {
        let run = self.shared();
        let key = step_key(run);
        let position = run.position_at(key);
        if run.is_halted() {
            return super::halt::halted().await;
        }
        let recorded = match recorded(run, position, event) {
            Ok(recorded) => recorded,
            Err(err) => return stop(run, Halt::Replay(err)).await,
        };
        if let Some((_, Some(outcome))) = &recorded {
            return Outcome::Ended(outcome.clone());
        }
        // A run resumed while compensating never got past this wait.
        if let Some(failure) = run.replay().and_then(|r| r.failure.clone()) {
            return stop(run, Halt::Failed(failure)).await;
        }
        if run.durable.is_none() {
            return in_memory(run, position, event, until).await;
        }
        let until = match &recorded {
            Some((until, _)) => *until,
            None => {
                if let Some(request) = run.cancel_now() {
                    return stop(run, Halt::Cancelled(Box::new(request))).await;
                }
                let until = until.map(|u| u.micros());
                run.record(EventKind::WaitStarted {
                    position,
                    key: run.with_key(key, |k| k.unless_position(position)),
                    wait: Box::new(WaitFor {
                        event: event.map(Into::into),
                        until_micros: until,
                    }),
                });
                until
            }
        };
        let index = event.map(|event| reserve(run, event));
        durable_wait(run, position, event.zip(index), until).await
    }
}

impl<W> TypedContext<'_, W> {
    /// Waits for `event`, one of this workflow's own ([`WorkflowContext::wait`]): an event of
    /// another workflow does not compile here.
    ///
    /// # Errors
    /// As [`WorkflowContext::wait`].
    pub async fn wait<T: DeserializeOwned>(&self, event: EventPoint<W, T>) -> Result<T, WaitError> {
        WorkflowContext::wait(self, event).await
    }

    /// Waits for `event`, one of this workflow's own, at most `timeout`
    /// ([`WorkflowContext::wait_timeout`]).
    ///
    /// # Errors
    /// As [`WorkflowContext::wait`].
    pub async fn wait_timeout<T: DeserializeOwned>(
        &self,
        event: EventPoint<W, T>,
        timeout: Duration,
    ) -> Result<Option<T>, WaitError> {
        WorkflowContext::wait_timeout(self, event, timeout).await
    }
}

/// When a wait ends by itself.
#[derive(Clone, Copy)]
enum Until {
    After(Duration),
    At(u64),
}

impl Until {
    fn micros(self) -> u64 {
        match self {
            Until::After(d) => {
                now_micros().saturating_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            }
            Until::At(at) => at,
        }
    }
}

/// How a wait ended, for the body.
enum Outcome {
    Ended(WaitOutcome),
    /// No store: an event cannot come.
    NoStore,
}

/// The body's side of a wait's end: its payload (`None`: timed out), or its error.
fn taken<T: DeserializeOwned>(event: &str, outcome: Outcome) -> Result<Option<T>, WaitError> {
    match outcome {
        Outcome::NoStore => Err(WaitError::NoStore {
            event: event.to_owned(),
        }),
        Outcome::Ended(WaitOutcome::Received { payload, .. }) => serde_json::from_value(payload)
            .map(Some)
            .map_err(|e| WaitError::Payload {
                event: event.to_owned(),
                message: e.to_string(),
            }),
        Outcome::Ended(WaitOutcome::Failed { error, .. }) => Err(WaitError::Failed {
            event: event.to_owned(),
            error,
        }),
        Outcome::Ended(WaitOutcome::TimedOut | WaitOutcome::Elapsed) => Ok(None),
    }
}

/// A wait the journal records: its due time, and how it ended if it did.
type Started = (Option<u64>, Option<WaitOutcome>);

/// What the journal says of the wait at `position`: its due time and how it ended, if it
/// started before; a step or another wait there does not match the body.
fn recorded(
    run: &RunShared,
    position: u32,
    event: Option<&str>,
) -> Result<Option<Started>, ReplayError> {
    let Some(replay) = run.replay() else {
        return Ok(None);
    };
    let called = || match event {
        Some(event) => format!("wait for event `{event}`"),
        None => "sleep".to_owned(),
    };
    if let Some(step) = replay.steps.get(&position) {
        return Err(ReplayError::Mismatch {
            position,
            recorded: step.step.clone(),
            called: called(),
        });
    }
    match replay.waits.get(&position) {
        None => Ok(None),
        Some(wait) if wait.event.as_deref() != event => Err(ReplayError::Mismatch {
            position,
            recorded: match &wait.event {
                Some(event) => format!("wait for event `{event}`"),
                None => "sleep".to_owned(),
            },
            called: called(),
        }),
        Some(wait) => Ok(Some((wait.until_micros, wait.ended.clone()))),
    }
}

/// Reserves the first message of `event` no wait of this run took or holds: its index.
fn reserve(run: &RunShared, event: &str) -> u32 {
    let mut state = run.state.lock();
    let all = state.taken.get_or_insert_with(Box::default);
    if !all.contains_key(event) {
        let recorded = run
            .replay()
            .and_then(|r| r.taken.get(event).cloned())
            .unwrap_or_default();
        all.insert(event.to_owned(), recorded);
    }
    let taken = all.entry(event.to_owned()).or_default();
    let index = (0..).find(|i| !taken.contains(i)).unwrap_or(u32::MAX);
    taken.insert(index);
    index
}

/// A wait without a store: a sleep sleeps here; an event cannot come.
async fn in_memory(
    run: &RunShared,
    position: u32,
    event: Option<&'static str>,
    until: Option<Until>,
) -> Outcome {
    if event.is_some() {
        return Outcome::NoStore;
    }
    let until = until.map_or(0, Until::micros);
    run.record(EventKind::WaitStarted {
        position,
        key: None,
        wait: Box::new(WaitFor {
            event: None,
            until_micros: Some(until),
        }),
    });
    let left = until.saturating_sub(now_micros());
    if left > 0 {
        tokio::time::sleep(Duration::from_micros(left)).await;
    }
    run.record(EventKind::WaitEnded {
        position,
        outcome: Box::new(WaitOutcome::Elapsed),
    });
    Outcome::Ended(WaitOutcome::Elapsed)
}

/// A durable wait: takes its message or its due time if they are there, and suspends the run
/// otherwise.
async fn durable_wait(
    run: &RunShared,
    position: u32,
    event: Option<(&'static str, u32)>,
    until: Option<u64>,
) -> Outcome {
    let Some(durable) = &run.durable else {
        return Outcome::NoStore;
    };
    loop {
        if let Some(request) = run.cancel_now() {
            return stop(run, Halt::Cancelled(Box::new(request))).await;
        }
        if let Some((name, index)) = event {
            match durable.store.message(run.run_id, name, index).await {
                Err(err) => return stop(run, Halt::Store(err)).await,
                Ok(Some(message)) => {
                    let outcome = match message.failure {
                        Some(error) => WaitOutcome::Failed {
                            message: index,
                            error,
                            delivery_key: message.delivery_key,
                        },
                        None => WaitOutcome::Received {
                            message: index,
                            payload: message.payload,
                            delivery_key: message.delivery_key,
                        },
                    };
                    return ended(run, position, outcome).await;
                }
                Ok(None) => {}
            }
        }
        if until.is_some_and(|at| now_micros() >= at) {
            let outcome = if event.is_some() {
                WaitOutcome::TimedOut
            } else {
                WaitOutcome::Elapsed
            };
            return ended(run, position, outcome).await;
        }
        let wake_at = match (until, durable.deadline_micros) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let suspension = Suspension {
            event: event.map(|(name, index)| (name.to_owned(), index)),
            wake_at_micros: wake_at,
        };
        let suspended = {
            let mut persisted = durable.persisted.lock().await;
            let events: Vec<Event> = run
                .state
                .lock()
                .journal
                .events()
                .get(*persisted..)
                .map(<[Event]>::to_vec)
                .unwrap_or_default();
            let suspended = durable
                .store
                .suspend(run.run_id, durable.fence, &events, &suspension)
                .await;
            if suspended.is_ok() {
                *persisted += events.len();
            }
            suspended
        };
        match suspended {
            Err(err) => return stop(run, Halt::Store(err)).await,
            Ok(None) => {
                let what = match (event, wake_at) {
                    (Some((name, _)), _) => format!("waits for event `{name}`"),
                    (None, Some(at)) => format!("sleeps until {at} (microseconds since the epoch)"),
                    (None, None) => "waits".to_owned(),
                };
                tracing::debug!(what, "hookflow: run suspended");
                return stop(run, Halt::Suspended { what }).await;
            }
            // Something came as the run was suspending: look again.
            Ok(Some(Wake::Cancel(request))) => durable.cancel.request(request),
            Ok(Some(Wake::Message | Wake::Due)) => {}
        }
    }
}

/// Records the wait's end, commits it, and gives it to the body.
async fn ended(run: &RunShared, position: u32, outcome: WaitOutcome) -> Outcome {
    run.record(EventKind::WaitEnded {
        position,
        outcome: Box::new(outcome.clone()),
    });
    commit_or_halt(run).await;
    Outcome::Ended(outcome)
}
