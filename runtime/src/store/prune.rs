//! Retention of ended runs: pruning them, in batches, once they are old enough.

use std::time::Duration;

use super::{Store, StoreError};
use crate::types::now_micros;

/// How many runs one [`Store::prune`] call of [`prune_older_than`] deletes at most: one
/// transaction each, so that a store with many ended runs is never locked for long.
pub const PRUNE_BATCH: usize = 500;

/// Deletes every ended run (completed, compensated, or compensation failed) that last changed
/// more than `older_than` ago, with its journal, in batches of [`PRUNE_BATCH`] (one
/// transaction each) until none is left; returns how many. Runs that are running (started,
/// interrupted, or enqueued and not started yet) or parked are never deleted, however old.
///
/// # Errors
/// The store's error ([`StoreError::ReadOnly`] for a store opened read-only); the batches
/// deleted before it stay deleted.
pub async fn prune_older_than(
    store: &(impl Store + ?Sized),
    older_than: Duration,
) -> Result<usize, StoreError> {
    let age = u64::try_from(older_than.as_micros()).unwrap_or(u64::MAX);
    let cutoff = now_micros().saturating_sub(age);
    let mut pruned = 0;
    loop {
        let batch = store.prune(cutoff, PRUNE_BATCH).await?;
        pruned += batch;
        if batch == 0 {
            return Ok(pruned);
        }
    }
}

/// Prunes the ended runs older than `older_than` now and then every `every`, for as long as
/// it is polled (a worker drops it as it stops), as [`prune_older_than`] does: in batches of
/// [`PRUNE_BATCH`], one transaction each. Each round's result goes to `done`: how many runs
/// it deleted, or the store's error (the next round tries again).
pub(crate) async fn prune_periodically(
    store: std::sync::Arc<dyn Store>,
    older_than: Duration,
    every: Duration,
    mut done: impl FnMut(Result<usize, StoreError>) + Send,
) {
    let mut rounds = tokio::time::interval(every.max(Duration::from_millis(1)));
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        rounds.tick().await;
        done(prune_older_than(&*store, older_than).await);
    }
}
