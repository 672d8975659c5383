//! Committing a durable run's journal to its store: each step's completion is committed
//! before the workflow goes on, and a run's end with its final status.

use super::halt::halted;
use crate::context::{Durable, Halt, RunShared};
use crate::journal::Event;
use crate::store::RunUpdate;
use crate::types::{BoxFuture, StoreError, lock};

/// Commits the journal's new events, with `update`. Without a store, it is ready at once,
/// and its future is one pointer wide (the in-memory path carries no store state).
pub(crate) fn commit(run: &RunShared, update: Option<RunUpdate>) -> Commit<'_> {
    match &run.durable {
        None => Commit(None),
        Some(durable) => Commit(Some(Box::pin(commit_to(run, durable, update)))),
    }
}

/// The future of [`commit`].
pub(crate) struct Commit<'a>(Option<BoxFuture<'a, Result<(), StoreError>>>);

impl std::future::Future for Commit<'_> {
    type Output = Result<(), StoreError>;
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
) -> Result<(), StoreError> {
    let mut persisted = durable.persisted.lock().await;
    let events: Vec<Event> = {
        let state = lock(&run.state);
        state
            .journal
            .events()
            .get(*persisted..)
            .map(<[Event]>::to_vec)
            .unwrap_or_default()
    };
    if events.is_empty() && update.is_none() {
        return Ok(());
    }
    durable
        .store
        .commit(run.run_id, durable.fence, &events, update)
        .await?;
    *persisted += events.len();
    Ok(())
}

/// Commits what the run recorded so far before it goes on (a step's end, a hook handler's
/// end); if the store fails or refuses the fence, the run halts here, to be resumed.
pub(crate) async fn commit_or_halt(run: &RunShared) {
    if let Err(err) = commit(run, None).await {
        run.halt(Halt::Store(err));
        halted::<()>().await;
    }
}
