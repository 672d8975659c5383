//! Automatic retention: a worker with `Worker::retention(age)` prunes, round after round, the
//! ended runs (completed, compensated, compensation failed, cancelled) that last changed more
//! than `age` ago, and never a run that is running (started, interrupted, or enqueued and
//! never claimed), waiting (suspended for an event) or parked, however old. On every store: in memory, a SQLite file, a PostgreSQL
//! database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::prelude::*;
use hookflow::store::{Store, StoreError, Suspension};
use hookflow::{RunId, StoredStatus, Worker, WorkerError};

use crate::prune::{ENDED, enqueued, event, gone, interrupted, now_micros, run_in};

/// The retention of the worker under test.
const RETENTION: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
struct Never;

#[step]
async fn noop(_ctx: &StepContext, n: u32) -> Result<u32, Never> {
    Ok(n)
}

/// The worker's workflow: not the one of the runs under test (`parcel`), which it therefore
/// never claims; only its pruner touches them.
#[workflow(name = "retention_noop")]
async fn idle(ctx: &WorkflowContext, n: u32) -> Result<u32, Never> {
    noop(ctx, n).await
}

async fn exists(store: &dyn Store, run_id: RunId) -> bool {
    match store.load(run_id).await {
        Ok(_) => true,
        Err(StoreError::NotFound(_)) => false,
        Err(err) => panic!("cannot load run {run_id}: {err}"),
    }
}

/// Waits until none of `runs` exists, or panics after `within`.
async fn until_pruned(store: &dyn Store, runs: &[RunId], within: Duration) {
    let start = Instant::now();
    loop {
        let mut left = Vec::new();
        for &run_id in runs {
            if exists(store, run_id).await {
                left.push(run_id);
            }
        }
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < within,
            "runs {left:?} are still there after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the wall clock is `age` past `micros` (the runs written at `micros` age).
async fn aged(micros: u64, age: Duration) {
    let at = micros + u64::try_from(age.as_micros()).unwrap();
    while now_micros() <= at {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every ended status: the stores' own and a cancelled run's.
fn ended() -> impl Iterator<Item = StoredStatus> {
    ENDED.into_iter().chain([StoredStatus::Cancelled])
}

/// A run suspended waiting for an event that never comes (no timer).
async fn waiting(store: &dyn Store, n: u64) -> RunId {
    let run_id = run_in(store, n, StoredStatus::Running).await;
    let suspension = Suspension {
        event: Some(("never_sent".into(), 0)),
        wake_at_micros: None,
    };
    let woken = store.suspend(run_id, 1, &[event(2)], &suspension).await;
    assert_eq!(woken.unwrap(), None);
    assert_eq!(
        store.load(run_id).await.unwrap().0.status,
        StoredStatus::Waiting
    );
    run_id
}

async fn last_change(store: &dyn Store, runs: &[RunId]) -> u64 {
    let mut last = 0;
    for &run_id in runs {
        last = last.max(store.load(run_id).await.unwrap().0.updated_at_micros);
    }
    last
}

async fn a_worker_prunes_only_ended_runs_older_than_its_retention(store: Arc<dyn Store>) {
    let s = &*store;
    // Never pruned: parked and waiting (just now), and running, interrupted and enqueued
    // runs that last changed in 1970.
    let never = [
        run_in(s, 10, StoredStatus::Parked).await,
        run_in(s, 11, StoredStatus::Running).await,
        interrupted(s, 12).await,
        enqueued(s, 13).await,
        waiting(s, 14).await,
    ];
    let mut old = Vec::new();
    for (n, status) in (1..).zip(ended()) {
        old.push(run_in(s, n, status).await);
    }
    aged(last_change(s, &old).await, RETENTION).await;
    let mut new = Vec::new();
    for (n, status) in (20..).zip(ended()) {
        new.push(run_in(s, n, status).await);
    }
    let new_since = Instant::now();
    let mut never_before = Vec::new();
    for &run_id in &never {
        never_before.push(store.load(run_id).await.unwrap());
    }

    let engine = Engine::builder()
        .worker_id("pruning")
        .store(Arc::clone(&store))
        .workflow::<Idle>()
        .build();
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let worker = Worker::new(&engine)
        .retention(RETENTION)
        .prune_every(Duration::from_millis(100))
        .on_error(move |e: &WorkerError| seen.lock().unwrap().push(e.to_string()))
        .start()
        .unwrap();

    // The old ended runs go at the first round.
    until_pruned(s, &old, Duration::from_secs(5)).await;
    for &run_id in &old {
        gone(store.load(run_id).await, run_id);
    }
    // Running, interrupted, enqueued, waiting and parked runs stay, untouched, however old.
    for (run_id, before) in never.iter().zip(&never_before) {
        assert_eq!(&store.load(*run_id).await.unwrap(), before, "run {run_id}");
    }
    // The new ones are younger than the retention: still there.
    for &run_id in &new {
        assert!(exists(s, run_id).await, "run {run_id} pruned too early");
    }
    assert!(
        new_since.elapsed() < RETENTION,
        "too slow to tell: the new runs aged past the retention before they were checked"
    );
    // ... until they age past it: a later round prunes them.
    until_pruned(s, &new, RETENTION + Duration::from_secs(5)).await;

    // ... and the others still stay.
    for (run_id, before) in never.iter().zip(&never_before) {
        assert_eq!(&store.load(*run_id).await.unwrap(), before, "run {run_id}");
    }
    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.pruned, 8);
    assert_eq!(report.claimed, 0);
    assert!(errors.lock().unwrap().is_empty(), "{:?}", errors.lock());
}

on_every_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_worker_prunes_only_ended_runs_older_than_its_retention,
);

#[tokio::test]
async fn a_worker_without_retention_prunes_nothing() {
    let store: Arc<dyn Store> = Arc::new(hookflow::store::MemoryStore::new());
    let run_id = run_in(&*store, 1, StoredStatus::Completed).await;
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Idle>()
        .build();
    let worker = Worker::new(&engine)
        .prune_every(Duration::from_millis(10))
        .start()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(exists(&*store, run_id).await);
    assert_eq!(worker.shutdown(Duration::ZERO).await.pruned, 0);
}
