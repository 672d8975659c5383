//! Compensation: the undo of completed steps, run in reverse order when a run fails.
//!
//! The step that failed is not compensated: it did not complete, so there is nothing of its
//! own to undo (if it did partial work, it should clean up before returning its error).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::Instrument;

use super::commit::{Failed, commit};
use crate::context::{BorrowedStepContext, Compensation, WorkflowContext, Writer};
use crate::journal::{EventKind, Retry};
use crate::types::{CatchUnwind, FailedCompensation, RecordedJson};

/// Which compensations to run.
#[derive(Clone, Copy)]
pub(crate) enum Scope {
    /// Everything on the stack: the run failed.
    All,
    /// The steps of one nested workflow that failed.
    Frame(u32),
}

/// Runs the compensations in `scope`, last pushed first. A failing or panicking compensation
/// is retried by its policy, then recorded (in the journal and the run's compensation
/// failures), and the others still run. Returns the failures of this call.
pub(crate) async fn compensate(
    ctx: &WorkflowContext,
    scope: Scope,
) -> Result<Vec<FailedCompensation>, Failed> {
    let run = ctx.shared();
    let mut failures = Vec::new();
    // Without its data to record (serialized outside the lock: user code), a compensation's
    // start is recorded under the lock it is taken off the stack under.
    let started_at_once = !run.records_data();
    loop {
        let next = {
            let mut state = run.state.lock();
            let index = match scope {
                Scope::All => state.compensations.len().checked_sub(1),
                Scope::Frame(frame) => state.compensations.iter().rposition(|c| c.frame == frame),
            };
            index.map(|i| {
                let entry = state.compensations.remove(i);
                if started_at_once {
                    run.push(&mut state, started(&entry, None));
                }
                entry
            })
        };
        let Some(entry) = next else { break };
        if let Some(failure) = compensate_one(ctx, entry, started_at_once).await {
            failures.push(failure);
        }
        // Committed before the next compensation starts: a resumed run goes on from here.
        commit(run, None).await?;
    }
    if !failures.is_empty() {
        run.state
            .lock()
            .extra()
            .compensation_failures
            .extend(failures.iter().cloned());
    }
    Ok(failures)
}

/// The `CompensationStarted` of `entry`, with its data if it is recorded.
fn started(entry: &Compensation, data: Option<Box<RecordedJson>>) -> EventKind {
    EventKind::CompensationStarted {
        step: entry.meta.name().into(),
        position: entry.position,
        data,
    }
}

/// Compensation data as the journal records it.
#[cold]
#[inline(never)]
fn recorded(data: Option<serde_json::Value>) -> Option<Box<RecordedJson>> {
    data.map(|data| Box::new(RecordedJson::from(data)))
}

/// Runs one compensation; its start is recorded here unless `started` (it was, as it was
/// taken off the stack).
async fn compensate_one(
    ctx: &WorkflowContext,
    entry: Compensation,
    started: bool,
) -> Option<FailedCompensation> {
    let run = ctx.shared();
    if !started {
        let data = if run.records_data() {
            recorded(entry.action.data_json())
        } else {
            None
        };
        run.record(self::started(&entry, data));
    }
    let Compensation {
        meta,
        position,
        key,
        action,
        ..
    } = entry;
    let (step, retry) = (meta.name(), meta.compensate_retry().copied());
    let sctx = BorrowedStepContext::new(
        ctx,
        Writer::Compensation { position, key },
        step,
        position,
        true,
    );
    let span = tracing::info_span!(
        "compensate",
        step,
        position,
        attempt = tracing::field::Empty
    );
    let max_attempts = retry.map_or(1, |p| p.max_attempts());
    let mut original = Some(action);
    let mut attempt = 1;
    loop {
        sctx.attempt.store(attempt, Ordering::Relaxed);
        span.record("attempt", attempt);
        // Every attempt but the last runs on a copy of the data, so that one is left.
        let action = match original.as_ref().and_then(|a| {
            if attempt < max_attempts {
                a.replica()
            } else {
                None
            }
        }) {
            Some(replica) => replica,
            None => match original.take() {
                Some(action) => action,
                None => break None,
            },
        };
        let outcome = match run.env.faults.compensation(step, attempt) {
            Some(fault) if fault.is_panic() => Err(fault.message()),
            Some(fault) => Ok(Err(fault.message())),
            None => CatchUnwind::new({ action }.run(&sctx))
                .instrument(span.clone())
                .await
                .map_err(|panic| panic.message()),
        };
        let (error, panicked) = match outcome {
            Ok(Ok(())) => {
                run.record(EventKind::CompensationCompleted {
                    step: step.into(),
                    position,
                });
                break None;
            }
            Ok(Err(error)) => (error, false),
            Err(message) => (message, true),
        };
        if attempt < max_attempts && original.is_some() {
            let delay = retry.map_or(Duration::ZERO, |p| p.jittered_delay(attempt));
            run.record(EventKind::CompensationRetrying {
                step: step.into(),
                position,
                attempt,
                retry: Box::new(Retry {
                    error,
                    delay_micros: u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
                }),
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
            continue;
        }
        tracing::error!(step, %error, attempt, "hookflow: compensation failed");
        run.record(EventKind::CompensationFailed {
            step: step.into(),
            position,
            error: error.clone(),
            panicked,
        });
        break Some(FailedCompensation {
            step: step.to_owned(),
            position,
            error,
            panicked,
        });
    }
}
