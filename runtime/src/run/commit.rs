//! Committing a durable run's journal to its store: each step's completion is committed
//! before the workflow goes on, and a run's end with its final status.
//!
//! A commit that fails stops the run ([`Halt`]): for a store that failed (down, locked, a
//! lease lost), the run stops `Interrupted`, still running in the store, to be resumed; for
//! data the store refused for good ([`StoreError::Refused`]: too large for it, not valid for
//! it), the run is parked with the reason, as trying again would fail again.

use super::halt::halted;
use crate::context::{Durable, Halt, RunShared};
use crate::journal::{Event, EventKind};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use crate::store::{RunUpdate, StoreTransaction};
use crate::types::{BoxFuture, RecordError, StoreError, StoredStatus};

/// Why a commit failed, and so how the run stops.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The store failed, or refused the fence: the run stops `Interrupted`, to be resumed.
    Store(StoreError),
    /// The store refused the data for good: the run is parked.
    Refused(RecordError),
}

impl From<Failed> for Halt {
    fn from(failed: Failed) -> Halt {
        match failed {
            Failed::Store(err) => Halt::Store(err),
            Failed::Refused(err) => Halt::Unrecordable(err),
        }
    }
}

/// Commits the journal's new events, with `update`. Without a store, it is ready at once,
/// and its future is one pointer wide (the in-memory path carries no store state).
pub(crate) fn commit(run: &RunShared, update: Option<RunUpdate>) -> Commit<'_> {
    match &run.durable {
        None => Commit(None),
        Some(durable) => Commit(Some(Box::pin(commit_to(run, durable, update)))),
    }
}

/// The future of [`commit`].
pub(crate) struct Commit<'a>(Option<BoxFuture<'a, Result<(), Failed>>>);

impl std::future::Future for Commit<'_> {
    type Output = Result<(), Failed>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            None => std::task::Poll::Ready(Ok(())),
            Some(future) => future.as_mut().poll(cx),
        }
    }
}

async fn commit_to(
    run: &RunShared,
    durable: &Durable,
    update: Option<RunUpdate>,
) -> Result<(), Failed> {
    // A transactional step's transaction is open: what the run recorded meanwhile rides on
    // its commit (the store's connection is the transaction's until then).
    if update.is_none() && durable.in_transaction.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut persisted = durable.persisted.lock().await;
    let ends = update.as_ref().map(|u| u.status);
    // A store that encodes the events at once is lent them from the journal: no copy.
    let lent = {
        let state = run.state.lock();
        let events = state.journal.events().get(*persisted..).unwrap_or_default();
        if events.is_empty() && update.is_none() {
            return Ok(());
        }
        durable
            .store
            .commit_encoded(run.run_id, durable.fence, events, update.as_ref())
            .map(|commit| (commit, events.len()))
    };
    if let Some((commit, count)) = lent {
        let committed = commit.await;
        let from = *persisted;
        return settle(committed, &mut persisted, count, ends, || {
            let mut events = unpersisted(run, from);
            events.truncate(count);
            events
        });
    }
    let events = unpersisted(run, *persisted);
    let count = events.len();
    let committed = durable
        .store
        .commit(run.run_id, durable.fence, &events, update)
        .await;
    settle(committed, &mut persisted, count, ends, || events)
}

/// The journal's events from `persisted` on.
fn unpersisted(run: &RunShared, persisted: usize) -> Vec<Event> {
    let state = run.state.lock();
    state
        .journal
        .events()
        .get(persisted..)
        .map(<[Event]>::to_vec)
        .unwrap_or_default()
}

/// Counts the `count` events committed persisted if they were; otherwise, why not (the
/// `events` were what the commit held).
fn settle(
    committed: Result<(), StoreError>,
    persisted: &mut usize,
    count: usize,
    ends: Option<StoredStatus>,
    events: impl FnOnce() -> Vec<Event>,
) -> Result<(), Failed> {
    #[cfg(feature = "metrics")]
    crate::metrics::store_error_of("commit", &committed);
    match committed {
        Ok(()) => {
            *persisted += count;
            Ok(())
        }
        Err(StoreError::Refused { message, .. }) => Err(Failed::Refused(RecordError::Refused {
            what: refused_what(&events(), ends),
            message,
        })),
        Err(err) => Err(Failed::Store(err)),
    }
}

/// Commits a transactional step's transaction with the journal's new events (the step's
/// completion among them): the step's writes and its record are committed together, or
/// neither is. The run's other commits go on normally afterwards.
pub(crate) async fn commit_transaction(
    run: &RunShared,
    tx: Box<dyn StoreTransaction>,
) -> Result<(), Failed> {
    let Some(durable) = &run.durable else {
        // No store, no transaction: nothing to commit it with.
        return Ok(());
    };
    let mut persisted = durable.persisted.lock().await;
    let events = unpersisted(run, *persisted);
    let committed = tx.commit(run.run_id, durable.fence, &events).await;
    durable.in_transaction.store(false, Ordering::Release);
    settle(committed, &mut persisted, events.len(), None, || events)
}

/// What a refused commit held, in words: "the output of step `charge` #1".
fn refused_what(events: &[Event], ends: Option<StoredStatus>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::StepCompleted { step, position, .. } => {
                parts.push(format!("the output of step `{step}` #{position}"));
            }
            EventKind::StepFailed { step, position, .. } => {
                parts.push(format!("the failure of step `{step}` #{position}"));
            }
            EventKind::HookHandlerCompleted { hook, handler, .. } => {
                parts.push(format!("the end of handler `{handler}` of hook `{hook}`"));
            }
            EventKind::BagWritten { key, .. } => parts.push(format!("a bag value `{key}`")),
            EventKind::JobEnqueued { .. } => parts.push("a job".to_owned()),
            EventKind::RunFailed { .. } => parts.push("the run's failure".to_owned()),
            _ => {}
        }
    }
    match ends {
        Some(StoredStatus::Completed) => parts.push("the workflow's output".to_owned()),
        Some(status) => parts.push(format!("the run's end ({status})")),
        None => {}
    }
    parts.dedup();
    if parts.is_empty() {
        parts.push("the run's journal".to_owned());
    }
    let count = events.len();
    format!(
        "{} (a commit of {count} journal event{})",
        parts.join(", "),
        if count == 1 { "" } else { "s" }
    )
}

/// Commits what the run recorded so far before it goes on (a step's end, a hook handler's
/// end); if the commit fails, the run halts here: to be resumed (the store failed or refused
/// the fence), or parked (the store refused the data).
pub(crate) async fn commit_or_halt(run: &RunShared) {
    if let Err(failed) = commit(run, None).await {
        run.halt(failed.into());
        halted::<()>().await;
    }
}

/// Leaves the completion of a step of the body's own sequence (not in a `parallel!` branch),
/// just recorded, to ride on the run's next commit instead of committing it now: the next
/// commit is made before anything with effects runs
/// ([`commit_deferred`]: a step's body, a hook handler, the run's jobs), or is the run's end.
/// So the last step's completion is committed together with the run's end, one commit fewer
/// per run. Until then only the body's own code runs, which a resumed run runs again
/// anyway; a crash meanwhile runs the step again on resume, as a crash before its commit
/// always did. Without a store, it does nothing.
#[inline]
pub(crate) fn defer_commit(run: &RunShared) {
    if let Some(durable) = &run.durable {
        durable.deferred.store(true, Ordering::Release);
    }
}

/// Commits a step's completion left by [`defer_commit`], if any, before something with
/// effects runs; if the commit fails, the run halts here, as [`commit_or_halt`] does. Awaited
/// at once where it is called. Without a store, or with nothing left to commit, it is ready
/// at once (not an `async fn`: its callers poll nothing out of line for it).
#[inline]
pub(crate) fn commit_deferred(run: &RunShared) -> Deferred<impl Future<Output = ()> + '_> {
    match &run.durable {
        Some(durable) if durable.deferred.swap(false, Ordering::AcqRel) => Deferred::Commit {
            commit: commit_or_halt(run),
        },
        _ => Deferred::Nothing,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`commit_deferred`].
    #[project = DeferredProj]
    pub(crate) enum Deferred<F> {
        Nothing,
        Commit { #[pin] commit: F },
    }
}

impl<F: Future<Output = ()>> Future for Deferred<F> {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project() {
            DeferredProj::Nothing => Poll::Ready(()),
            DeferredProj::Commit { commit } => commit.poll(cx),
        }
    }
}
