//! What an operator asks of a stored run without its workflow's code: a retry of the
//! compensations that failed ([`request_retry`]), and a fork from a step into a new run
//! ([`fork_run`]). Each is recorded in the store, the run made claimable; an engine or a worker
//! that knows the workflow carries it out by replay.

use super::{Created, Lease, RunRecord, RunUpdate, Store, StoreError, StoredStatus};
use crate::journal::{Event, EventKind};
use crate::types::{Actor, KeyText, NoStore, RunId, now_micros};

/// Why a retry of a run's failed compensations was refused. Nothing was recorded, but where
/// [`RetryError::Resume`] says otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetryError {
    /// The engine has no store.
    #[error(transparent)]
    NoStore(#[from] NoStore),
    /// No such run in the store.
    #[error("no run {0} in the store")]
    UnknownRun(RunId),
    /// The run did not end `compensation_failed`: there is no failed compensation to retry.
    #[error(
        "run {run_id} is {status}, not compensation_failed: only the failed compensations of a run that ended so can be retried"
    )]
    NotCompensationFailed {
        /// The run.
        run_id: RunId,
        /// Where it is.
        status: StoredStatus,
    },
    /// The store failed (or the run's record or journal cannot be read).
    #[error("cannot retry run {run_id}: {source}")]
    Store {
        /// The run.
        run_id: RunId,
        /// Why.
        #[source]
        source: StoreError,
    },
}

/// Why a fork was refused. Nothing was recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The engine has no store.
    #[error(transparent)]
    NoStore(#[from] NoStore),
    /// No such run in the store.
    #[error("no run {0} in the store")]
    UnknownRun(RunId),
    /// The run never started a step at that position.
    #[error(
        "run {run_id} has no step #{step}: it started {started} step(s), from #0 (`hookflow show` lists them)"
    )]
    NoSuchStep {
        /// The run.
        run_id: RunId,
        /// The position asked for.
        step: u32,
        /// How many steps the run started.
        started: u32,
    },
    /// The step is inside a `parallel!` group: the group's branches started their steps in
    /// an order of their own, so no step inside it splits the run in a before and an after.
    #[error(
        "step #{step} of run {run_id} is inside a parallel! group (at {key}): fork from the step before the group, or from a step after it"
    )]
    InParallel {
        /// The run.
        run_id: RunId,
        /// The position asked for.
        step: u32,
        /// Where the step is in the run's code.
        key: String,
    },
    /// The store failed (or the run's record or journal cannot be read).
    #[error("cannot fork run {run_id}: {source}")]
    Store {
        /// The run.
        run_id: RunId,
        /// Why.
        #[source]
        source: StoreError,
    },
}

/// Asks for the failed compensations of run `run_id`, which ended `compensation_failed`, to
/// run again: records a [`EventKind::RetryRequested`] naming `actor` and puts the run back to
/// `running`, free for any worker to claim ([`Store::claim_next`]) or an engine to resume.
/// Replayed, the run runs again each compensation that had failed, in the saga's order (never
/// one recorded completed), and ends `compensated` if they all succeed,
/// `compensation_failed` again otherwise. Returns the run's record as it was.
///
/// # Errors
/// [`RetryError::UnknownRun`], [`RetryError::NotCompensationFailed`] (nothing recorded), or
/// [`RetryError::Store`] when the store fails or refuses the write (a read-only store).
pub async fn request_retry(
    store: &dyn Store,
    run_id: RunId,
    actor: Actor,
) -> Result<RunRecord, RetryError> {
    let failed = |source| match source {
        StoreError::NotFound(id) => RetryError::UnknownRun(id),
        source => RetryError::Store { run_id, source },
    };
    let (record, events) = store.load(run_id).await.map_err(failed)?;
    if record.status != StoredStatus::CompensationFailed {
        return Err(RetryError::NotCompensationFailed {
            run_id,
            status: record.status,
        });
    }
    let event = Event {
        seq: next_seq(&events),
        at_micros: now_micros(),
        kind: EventKind::RetryRequested {
            actor: Box::new(actor),
        },
    };
    // Under the generation the run ended with: a worker that claimed it since (after another
    // retry) fences this write out.
    let update = RunUpdate {
        status: StoredStatus::Running,
        output: None,
        error: None,
    };
    store
        .commit(run_id, record.fence, &[event], Some(update))
        .await
        .map_err(failed)?;
    Ok(record)
}

/// Forks run `run_id` from its step at position `from_step` into a new run: the same
/// workflow, version, input, request id, actor, origin and additional data (no idempotency
/// key), and a journal that begins with a copy of the original's up to the start of step
/// `from_step` (its steps before it, their outputs, bag writes and jobs, and the hook
/// firings before it), after a [`EventKind::Forked`] event naming `actor`. Replayed, the new
/// run's steps before `from_step` return what the original recorded and the steps from it
/// run again, with idempotency keys of the new run. The original is left as it was.
///
/// The new run is created parked and held under `lease` while its journal is written, then
/// made `running` and released, free for any worker to claim ([`Store::claim_next`]) or an
/// engine to resume: a process that stops half-way leaves a parked run, never a run that
/// would start over. Returns the new run's record.
///
/// # Errors
/// [`ForkError::UnknownRun`]; [`ForkError::NoSuchStep`] when the run never started step
/// `from_step`; [`ForkError::InParallel`] when the step is in a `parallel!` group;
/// [`ForkError::Store`] when the store fails or refuses the writes (a read-only store).
pub async fn fork_run(
    store: &dyn Store,
    run_id: RunId,
    from_step: u32,
    actor: Actor,
    lease: &Lease,
) -> Result<RunRecord, ForkError> {
    let (original, events) = store.load(run_id).await.map_err(|source| match source {
        StoreError::NotFound(id) => ForkError::UnknownRun(id),
        source => ForkError::Store { run_id, source },
    })?;
    let cut = cut_before(run_id, &events, from_step)?;
    let new_id = RunId::new();
    let now = now_micros();
    let record = RunRecord {
        run_id: new_id,
        status: StoredStatus::Parked,
        idempotency_key: None,
        output: None,
        error: Some(format!(
            "being forked from run {run_id} at step #{from_step}"
        )),
        created_at_micros: now,
        updated_at_micros: now,
        owner: None,
        fence: 0,
        lease_until_micros: None,
        // Nothing of the original's waits, cancellation or deadline: the fork starts afresh.
        wake_at_micros: None,
        waiting_for: None,
        cancel: None,
        deadline_micros: None,
        ..original
    };
    let mut journal = vec![
        EventKind::RunStarted {
            workflow: record.workflow.clone().into(),
            run_id: new_id,
        },
        EventKind::Forked {
            from: run_id,
            at_step: from_step,
            actor: Box::new(actor),
        },
    ]
    .into_iter()
    .map(|kind| (now, kind))
    .chain(
        events[..cut]
            .iter()
            .filter(|e| copied(&e.kind))
            .map(|e| (e.at_micros, e.kind.clone())),
    )
    .zip(0u32..)
    .map(|((at_micros, kind), seq)| Event {
        seq,
        at_micros,
        kind,
    })
    .collect::<Vec<_>>();
    journal.shrink_to_fit();
    let store_failed = |source| ForkError::Store {
        run_id: new_id,
        source,
    };
    match store
        .create(&record, Some(lease))
        .await
        .map_err(store_failed)?
    {
        Created::New => {}
        // A fresh id is taken: never in practice; nothing was written.
        _ => {
            return Err(store_failed(StoreError::Unavailable {
                context: format!("fork run {run_id}"),
                message: format!("run id {new_id} is taken: try again"),
            }));
        }
    }
    let update = RunUpdate {
        status: StoredStatus::Running,
        output: None,
        error: None,
    };
    store
        .commit(new_id, 1, &journal, Some(update))
        .await
        .map_err(store_failed)?;
    store.release(new_id, 1).await.map_err(store_failed)?;
    Ok(RunRecord {
        status: StoredStatus::Running,
        error: None,
        ..record
    })
}

/// Where the journal is cut for a fork from `from_step`: the index of that step's
/// `StepStarted` event, everything before which the fork copies.
fn cut_before(run_id: RunId, events: &[Event], from_step: u32) -> Result<usize, ForkError> {
    let mut started = 0u32;
    for (index, event) in events.iter().enumerate() {
        let EventKind::StepStarted { position, key, .. } = &event.kind else {
            continue;
        };
        started = started.max(position.saturating_add(1));
        if *position != from_step {
            continue;
        }
        if let Some(KeyText::Path(path)) = key.as_deref().map(KeyText::parse) {
            return Err(ForkError::InParallel {
                run_id,
                step: from_step,
                key: path.to_owned(),
            });
        }
        return Ok(index);
    }
    Err(ForkError::NoSuchStep {
        run_id,
        step: from_step,
        started,
    })
}

/// Whether a fork copies an event of the original's journal before the cut: everything the
/// run observed, but the original's own life (its start, resumptions, leases and forks).
fn copied(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::RunStarted { .. }
            | EventKind::RunResumed
            | EventKind::Claimed { .. }
            | EventKind::Forked { .. }
    )
}

/// The sequence number of the event after `events`.
fn next_seq(events: &[Event]) -> u32 {
    events
        .last()
        .map_or(0, |e| e.seq.saturating_add(1))
        .max(u32::try_from(events.len()).unwrap_or(u32::MAX))
}
