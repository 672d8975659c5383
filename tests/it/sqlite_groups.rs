//! The SQLite store's grouped writes: the commits of concurrent runs share write
//! transactions (counted with `SqliteStore::write_stats`), and a write refused in a group
//! fails alone, the others in the group written.

use std::path::PathBuf;
use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Lease, Store, StoreError, StoredStatus};
use hookflow::{Event, EventKind, RunId};

use crate::support::records;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// Each step waits for a permit: the test lets the runs' steps end together, once it holds
/// the connection (`the_commits_of_concurrent_runs_share_write_transactions`).
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

async fn gate() {
    GATE.acquire().await.unwrap().forget();
}

#[step]
async fn pick(_ctx: &StepContext, order: u64) -> Result<u64, Never> {
    gate().await;
    Ok(order + 1)
}

#[step]
async fn pack(_ctx: &StepContext, order: u64) -> Result<u64, Never> {
    gate().await;
    Ok(order * 2)
}

#[step]
async fn post(_ctx: &StepContext, order: u64) -> Result<u64, Never> {
    gate().await;
    Ok(order + 3)
}

#[workflow]
async fn fulfil(ctx: &WorkflowContext, order: u64) -> Result<u64, Never> {
    let order = pick(ctx, order).await?;
    let order = pack(ctx, order).await?;
    post(ctx, order).await
}

fn tempdir(name: &str) -> PathBuf {
    crate::support::dirs::fresh("groups", name)
}

/// Waits until `count` writes wait for the writer thread (a minute at most).
async fn queued(store: &SqliteStore, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while store.queued_writes() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "{} writes queued, {count} expected",
            store.queued_writes()
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Waits until the writer thread has written and answered every write sent to it: so that the
/// next [`queued`] counts only the writes that come after.
async fn drained(store: &SqliteStore) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while store.queued_writes() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} writes still queued",
            store.queued_writes()
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// 64 runs in flight on two runtime threads, their writes arriving together: each write
/// (the create, then a commit per step, the last with the run's end) finds the connection
/// held by the test until the 64 of them wait for the writer thread, which then writes them
/// in one transaction. Each run completes with its own output and its whole journal in the
/// store, and the writes shared transactions: at least four writes a transaction on average
/// (64 here whatever the load; with no grouping at all it would be 1). The steps wait at a
/// gate, so that the test holds the connection before their commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commits_of_concurrent_runs_share_write_transactions() {
    const RUNS: usize = 64;
    const ROUNDS: u64 = 2;
    let dir = tempdir("share");
    let store = Arc::new(SqliteStore::open(dir.join("runs.db")).unwrap());
    let engine = Arc::new(
        Engine::builder()
            .store(Arc::clone(&store))
            .workflow::<Fulfil>()
            .build(),
    );
    let mut runs = Vec::new();
    for round in 0..ROUNDS {
        let held = store.begin().await.unwrap();
        let tasks: Vec<_> = (0..RUNS as u64)
            .map(|order| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    let input = order * 100 + round;
                    let outcome = engine.run::<Fulfil>(input).await;
                    assert_eq!(outcome.output().copied(), Some((input + 1) * 2 + 3));
                    outcome.run_id()
                })
            })
            .collect();
        queued(&store, RUNS).await;
        held.rollback().await.unwrap();
        drained(&store).await;
        for _step in 0..3 {
            // Once the group before is written (the writer thread holds the connection
            // meanwhile), the steps end and their commits queue.
            let held = store.begin().await.unwrap();
            GATE.add_permits(RUNS);
            queued(&store, RUNS).await;
            held.rollback().await.unwrap();
            drained(&store).await;
        }
        for task in tasks {
            runs.push(task.await.unwrap());
        }
    }
    for run_id in &runs {
        let (record, events) = store.load(*run_id).await.unwrap();
        assert_eq!(record.status, StoredStatus::Completed);
        let completed = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::StepCompleted { .. }))
            .count();
        assert_eq!(completed, 3, "run {run_id}: {events:?}");
    }
    let stats = store.write_stats();
    // The create and one commit a step, the last with the run's end.
    assert!(stats.writes() >= (RUNS as u64) * ROUNDS * 4, "{stats:?}");
    assert!(
        stats.transactions() * 4 <= stats.writes(),
        "the writes of concurrent runs were not grouped: {stats:?}"
    );
    // Each time, the 64 writes waiting were one group.
    assert_eq!(stats.groups, ROUNDS * 4, "{stats:?}");
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
}

/// Four commits wait for the writer thread together (a transaction holds the connection
/// meanwhile) and are written in one group: the one over the store's length limit is
/// refused alone, and the three others are in the store.
#[tokio::test]
async fn a_write_refused_in_a_group_fails_alone() {
    let dir = tempdir("refused");
    let store = SqliteStore::builder()
        .max_length(10_000)
        .open(dir.join("runs.db"))
        .unwrap();
    let lease = Lease {
        owner: "groups".into(),
        duration: std::time::Duration::from_secs(60),
    };
    let ids: Vec<RunId> = (0..4).map(|_| RunId::generate()).collect();
    for run_id in &ids {
        store
            .create(&records::running(*run_id, "fulfil"), Some(&lease))
            .await
            .unwrap();
    }
    let event = |bytes: usize| {
        vec![Event {
            seq: 0,
            at_micros: 1,
            kind: EventKind::RunFailed {
                error: "e".repeat(bytes),
            },
        }]
    };
    let (small, big) = (event(10), event(30_000));
    let before = store.write_stats();
    let held = store.begin().await.unwrap();
    let commits: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, run_id)| {
            let events = if i == 2 { &big } else { &small };
            store.commit(*run_id, 1, events, None)
        })
        .collect();
    held.rollback().await.unwrap();
    let mut results = Vec::new();
    for commit in commits {
        results.push(commit.await);
    }
    for (i, result) in results.iter().enumerate() {
        if i == 2 {
            assert!(
                matches!(result, Err(StoreError::Refused { .. })),
                "{result:?}"
            );
        } else {
            assert!(result.is_ok(), "commit {i}: {result:?}");
        }
    }
    let after = store.write_stats();
    assert_eq!(after.groups - before.groups, 1, "{before:?} {after:?}");
    assert_eq!(after.grouped_writes - before.grouped_writes, 4);
    for (i, run_id) in ids.iter().enumerate() {
        let (_, events) = store.load(*run_id).await.unwrap();
        assert_eq!(events.len(), usize::from(i != 2), "run {i}: {events:?}");
    }
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
