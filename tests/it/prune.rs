//! Retention: pruning ended runs. Only runs that ended (completed, compensated, compensation
//! failed) before the cutoff are deleted, with their journals; runs that are running
//! (started, interrupted, or enqueued and not started yet) or parked are never deleted,
//! however old; pruning goes in batches of at most the limit. On every store: in memory, a
//! SQLite file, a PostgreSQL database.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookflow::store::{Created, Lease, RunRecord, RunUpdate, Store, StoreError};
use hookflow::{Engine, PruneError, RunId, StoredStatus};

fn lease() -> Lease {
    Lease {
        owner: "pruner-test".into(),
        duration: Duration::from_secs(3600),
    }
}

/// Run `n`, created (and last changed) `n` µs after the epoch: old by any cutoff.
fn record(n: u64) -> RunRecord {
    RunRecord {
        run_id: RunId::parse(&format!("01900000-0000-7000-8000-{n:012}")).unwrap(),
        workflow: "parcel".into(),
        version: 1,
        input: serde_json::json!({ "id": n }),
        status: StoredStatus::Running,
        idempotency_key: None,
        request_id: None,
        actor: None,
        origin: Default::default(),
        additional_data: None,
        output: None,
        error: None,
        created_at_micros: n,
        updated_at_micros: n,
        owner: None,
        fence: 0,
        lease_until_micros: None,
        wake_at_micros: None,
        waiting_for: None,
        cancel: None,
        deadline_micros: None,
    }
}

fn event(seq: u32) -> hookflow::Event {
    serde_json::from_value(serde_json::json!({
        "seq": seq, "at_micros": 1, "event": "jobs_dispatched", "count": seq
    }))
    .unwrap()
}

fn now_micros() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// Returns once the wall clock (the one the stores stamp `updated_at` with) has passed
/// `micros`: a microsecond or so, so that what is written next is strictly newer.
fn clock_past(micros: u64) {
    while now_micros() <= micros {
        std::hint::spin_loop();
    }
}

/// Run `n`, claimed, with two events in its journal, and then in `status`: ended
/// (committed at the store's clock, now), parked, or still running (left held by its lease).
async fn run_in(store: &dyn Store, n: u64, status: StoredStatus) -> RunId {
    let run = record(n);
    assert_eq!(
        store.create(&run, Some(&lease())).await.unwrap(),
        Created::New
    );
    let update = (status != StoredStatus::Running).then(|| RunUpdate {
        status,
        output: (status == StoredStatus::Completed).then(|| serde_json::json!("shipped")),
        error: (status != StoredStatus::Completed).then(|| format!("ended {status}")),
    });
    store
        .commit(run.run_id, 1, &[event(0), event(1)], update)
        .await
        .unwrap();
    assert_eq!(store.load(run.run_id).await.unwrap().0.status, status);
    run.run_id
}

/// An interrupted run: running, with a journal, its lease released (its worker stopped).
async fn interrupted(store: &dyn Store, n: u64) -> RunId {
    let run_id = run_in(store, n, StoredStatus::Running).await;
    store.release(run_id, 1).await.unwrap();
    run_id
}

/// An enqueued run no worker has taken: no lease, no journal, last changed in 1970.
async fn enqueued(store: &dyn Store, n: u64) -> RunId {
    let run = record(n);
    assert_eq!(store.create(&run, None).await.unwrap(), Created::New);
    run.run_id
}

const ENDED: [StoredStatus; 3] = [
    StoredStatus::Completed,
    StoredStatus::Compensated,
    StoredStatus::CompensationFailed,
];

fn gone(result: Result<impl std::fmt::Debug, StoreError>, run_id: RunId) {
    assert!(
        matches!(result, Err(StoreError::NotFound(id)) if id == run_id),
        "run {run_id} should be pruned: {result:?}"
    );
}

/// A pruned run's journal went with it: a run created again under its id starts with an
/// empty journal.
async fn journal_gone(store: &dyn Store, run_id: RunId, n: u64) {
    let run = record(n);
    assert_eq!(run.run_id, run_id);
    assert_eq!(store.create(&run, None).await.unwrap(), Created::New);
    let (_, events) = store.load(run_id).await.unwrap();
    assert!(
        events.is_empty(),
        "run {run_id} kept its journal: {events:?}"
    );
}

// Scenarios: each runs on every store.

async fn only_ended_runs_older_than_the_cutoff_are_pruned_with_their_journals(
    store: Arc<dyn Store>,
) {
    let store = &*store;
    // Old: one run of every status.
    let mut old_ended = Vec::new();
    for (n, status) in (1..).zip(ENDED) {
        old_ended.push((n, run_in(store, n, status).await));
    }
    let never = [
        run_in(store, 10, StoredStatus::Parked).await,
        run_in(store, 11, StoredStatus::Running).await,
        interrupted(store, 12).await,
        enqueued(store, 13).await,
    ];
    let mut boundary = 0;
    for (_, run_id) in &old_ended {
        boundary = boundary.max(store.load(*run_id).await.unwrap().0.updated_at_micros);
    }
    clock_past(boundary);
    // New: ended after the cutoff.
    let mut new_ended = Vec::new();
    for (n, status) in (20..).zip(ENDED) {
        new_ended.push(run_in(store, n, status).await);
    }
    let mut kept = Vec::new();
    for run_id in never.iter().chain(&new_ended) {
        kept.push(store.load(*run_id).await.unwrap());
    }
    let cutoff = boundary + 1;

    assert_eq!(store.prune(cutoff, 100).await.unwrap(), old_ended.len());
    for (_, run_id) in &old_ended {
        gone(store.load(*run_id).await, *run_id);
    }
    for (run_id, before) in never.iter().chain(&new_ended).zip(&kept) {
        assert_eq!(&store.load(*run_id).await.unwrap(), before, "run {run_id}");
    }
    assert_eq!(store.prune(cutoff, 100).await.unwrap(), 0);

    // With a cutoff in the future, every ended run is old: the new ones go too, and the
    // running, interrupted, enqueued and parked runs still stay.
    assert_eq!(store.prune(u64::MAX, 100).await.unwrap(), new_ended.len());
    for run_id in &new_ended {
        gone(store.load(*run_id).await, *run_id);
    }
    for (run_id, before) in never.iter().zip(&kept) {
        assert_eq!(&store.load(*run_id).await.unwrap(), before, "run {run_id}");
    }
    assert_eq!(store.prune(u64::MAX, 100).await.unwrap(), 0);
    let listed = store.list(None, None, 100).await.unwrap();
    assert_eq!(listed.runs.len(), never.len());

    for (n, run_id) in old_ended {
        journal_gone(store, run_id, n).await;
    }
}

async fn pruning_goes_in_batches_of_at_most_the_limit(store: Arc<dyn Store>) {
    let store = &*store;
    for n in 1..=7 {
        run_in(store, n, ENDED[usize::try_from(n).unwrap() % 3]).await;
    }
    let parked = run_in(store, 8, StoredStatus::Parked).await;
    let running = run_in(store, 9, StoredStatus::Running).await;
    let mut batches = Vec::new();
    loop {
        let pruned = store.prune(u64::MAX, 3).await.unwrap();
        batches.push(pruned);
        if pruned == 0 {
            break;
        }
    }
    assert_eq!(batches, [3, 3, 1, 0]);
    let left: Vec<RunId> = store
        .list(None, None, 100)
        .await
        .unwrap()
        .runs
        .iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(left, [running, parked]);
}

async fn the_engine_prunes_runs_older_than_a_duration(store: Arc<dyn Store>) {
    let engine = Engine::builder().store(Arc::clone(&store)).build();
    let mut ended = Vec::new();
    for n in 1..=4 {
        ended.push(run_in(&*store, n, ENDED[usize::try_from(n).unwrap() % 3]).await);
    }
    let parked = run_in(&*store, 5, StoredStatus::Parked).await;
    let waiting = enqueued(&*store, 6).await;
    // They ended just now: not older than an hour.
    assert_eq!(engine.prune(Duration::from_secs(3600)).await.unwrap(), 0);
    let mut last = 0;
    for run_id in &ended {
        last = last.max(store.load(*run_id).await.unwrap().0.updated_at_micros);
    }
    clock_past(last);
    // Older than nothing: every ended run goes, never the parked or the enqueued one.
    assert_eq!(engine.prune(Duration::ZERO).await.unwrap(), ended.len());
    for run_id in ended {
        gone(store.load(run_id).await, run_id);
    }
    store.load(parked).await.unwrap();
    store.load(waiting).await.unwrap();
    assert_eq!(engine.prune(Duration::ZERO).await.unwrap(), 0);
}

on_every_store!(
    #[tokio::test]
    only_ended_runs_older_than_the_cutoff_are_pruned_with_their_journals,
    pruning_goes_in_batches_of_at_most_the_limit,
    the_engine_prunes_runs_older_than_a_duration,
);

#[tokio::test]
async fn an_engine_without_a_store_has_nothing_to_prune() {
    let err = Engine::new().prune(Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, PruneError::NoStore(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("cannot prune ended runs"),
        "{err}"
    );
}

#[tokio::test]
async fn a_read_only_sqlite_store_refuses_to_prune_and_keeps_its_runs() {
    let dir = std::env::temp_dir().join(format!("hookflow-prune-ro-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    let writer = hookflow::store::sqlite::SqliteStore::open(&path).unwrap();
    let run_id = run_in(&writer, 1, StoredStatus::Completed).await;
    drop(writer);
    let reader = hookflow::store::sqlite::SqliteStore::open_read_only(&path).unwrap();
    let err = reader.prune(u64::MAX, 100).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert_eq!(reader.load(run_id).await.unwrap().0.run_id, run_id);
    drop(reader);
    let _ = std::fs::remove_dir_all(dir);
}
