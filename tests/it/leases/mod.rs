//! Leases, fencing tokens, the queue and workers, on every store (memory, SQLite,
//! PostgreSQL). Leases are timed by real clocks, so these tests run on a real-time runtime
//! with short leases.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookflow::prelude::*;
use hookflow::store::{Claim, Created, Lease, RunRecord, RunUpdate, Store, StoreError, StoredRun};
use hookflow::{EventKind, RunId, StoredStatus, Worker, WorkerError};
use serde::{Deserialize, Serialize};

mod no_heartbeat;
use no_heartbeat::NoHeartbeat;

/// The world the steps act on: every call, in order.
#[derive(Default)]
struct Ledger {
    calls: Mutex<Vec<String>>,
    /// While set, `ship` waits until it is cleared.
    stall: AtomicBool,
    resumed: tokio::sync::Notify,
}

impl Ledger {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn count(&self, prefix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Parcel {
    id: u32,
}

#[step(compensate = unpack)]
async fn pack(ctx: &StepContext, p: Parcel) -> Result<StepResponse<u32, u32>, ShipError> {
    let ledger = ctx.service::<Arc<Ledger>>()?;
    ledger.calls.lock().unwrap().push(format!(
        "pack {} {} fence {:?}",
        p.id,
        ctx.idempotency_key(),
        ctx.fence()
    ));
    Ok(StepResponse::new(p.id, p.id))
}

async fn unpack(ctx: &StepContext, id: u32) -> Result<(), ShipError> {
    let ledger = ctx.service::<Arc<Ledger>>()?;
    ledger.calls.lock().unwrap().push(format!("unpack {id}"));
    Ok(())
}

#[step]
async fn ship(ctx: &StepContext, id: u32) -> Result<String, ShipError> {
    let ledger = ctx.service::<Arc<Ledger>>()?;
    ledger.calls.lock().unwrap().push(format!(
        "ship {id} {} fence {:?}",
        ctx.idempotency_key(),
        ctx.fence()
    ));
    while ledger.stall.load(Ordering::SeqCst) {
        tokio::select! {
            () = ledger.resumed.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    Ok(format!("shipped {id}"))
}

#[workflow(name = "parcel")]
async fn deliver(ctx: &WorkflowContext, p: Parcel) -> Result<String, ShipError> {
    let id = pack(ctx, p).await?;
    ship(ctx, id).await
}

fn engine(store: Arc<dyn Store>, worker: &str, lease_ms: u64, ledger: &Arc<Ledger>) -> Engine {
    Engine::builder()
        .worker_id(worker)
        .lease(Duration::from_millis(lease_ms))
        .store(store)
        .service(Arc::clone(ledger))
        .workflow::<Deliver>()
        .build()
}

fn lease(owner: &str, ms: u64) -> Lease {
    Lease {
        owner: owner.into(),
        duration: Duration::from_millis(ms),
    }
}

/// A running record of `workflow`, its id and times numbered `n` (claims take the oldest first).
fn record(n: u64, workflow: &str) -> RunRecord {
    let run_id = RunId::parse(&format!("01900000-0000-7000-8000-{n:012}")).unwrap();
    RunRecord {
        input: serde_json::json!({ "id": n }),
        created_at_micros: n,
        updated_at_micros: n,
        ..crate::support::records::running(run_id, workflow)
    }
}

fn event(seq: u32) -> hookflow::Event {
    serde_json::from_value(serde_json::json!({
        "seq": seq, "at_micros": 1, "event": "jobs_dispatched", "count": seq
    }))
    .unwrap()
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

// Scenarios: each runs on every store.

async fn a_stale_fence_is_refused_and_records_nothing(store: Arc<dyn Store>) {
    let run = record(1, "parcel");
    let a = lease("a", 50);
    assert!(matches!(
        store.create(&run, Some(&a)).await.unwrap(),
        Created::New
    ));
    assert!(matches!(
        store.claim(run.run_id, &lease("b", 10_000)).await.unwrap(),
        Claim::Held { owner, .. } if owner == "a"
    ));
    tokio::time::sleep(Duration::from_millis(120)).await;
    // A's lease lapsed: B takes the run over, generation 2.
    let Claim::Acquired(taken, _) = store.claim(run.run_id, &lease("b", 10_000)).await.unwrap()
    else {
        panic!("the lapsed lease is free");
    };
    assert_eq!((taken.owner.as_deref(), taken.fence), (Some("b"), 2));
    // A wakes up and writes under generation 1: refused, nothing recorded.
    let err = store
        .commit(run.run_id, 1, &[event(0)], None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Fenced {
                fence: 1,
                current: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        store.release(run.run_id, 1).await,
        Err(StoreError::Fenced { .. })
    ));
    let update = RunUpdate {
        status: StoredStatus::Completed,
        output: None,
        error: None,
    };
    assert!(
        store
            .commit(run.run_id, 1, &[], Some(update.clone()))
            .await
            .is_err()
    );
    let (stored, events) = store.load(run.run_id).await.unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(stored.status, StoredStatus::Running);
    // B writes under generation 2.
    store
        .commit(run.run_id, 2, &[event(0)], Some(update))
        .await
        .unwrap();
    let (stored, events) = store.load(run.run_id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(stored.status, StoredStatus::Completed);
    assert_eq!(stored.owner, None, "finishing releases the lease");
    assert!(matches!(
        store.claim(run.run_id, &lease("c", 1000)).await.unwrap(),
        Claim::Finished(..)
    ));
}

async fn claim_next_takes_free_runs_oldest_first_and_once(store: Arc<dyn Store>) {
    for n in 1..=5 {
        store.create(&record(n, "parcel"), None).await.unwrap();
    }
    store.create(&record(6, "other"), None).await.unwrap();
    // A run created by a live engine is not free.
    store
        .create(&record(7, "parcel"), Some(&lease("z", 10_000)))
        .await
        .unwrap();
    let known = vec![("parcel".to_owned(), 1)];
    let ids = |runs: &[StoredRun]| -> Vec<u64> {
        runs.iter()
            .map(|(r, _)| r.input["id"].as_u64().unwrap())
            .collect()
    };
    let first = store
        .claim_next(&lease("b", 10_000), &known, &[], 3)
        .await
        .unwrap()
        .runs;
    assert_eq!(ids(&first), [1, 2, 3]);
    assert!(
        first
            .iter()
            .all(|(r, _)| r.fence == 1 && r.owner.as_deref() == Some("b"))
    );
    let second = store
        .claim_next(&lease("c", 10_000), &known, &[], 10)
        .await
        .unwrap()
        .runs;
    assert_eq!(ids(&second), [4, 5]);
    assert!(
        store
            .claim_next(&lease("d", 10_000), &known, &[], 10)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    // Released: free again at once, at the next generation.
    store.release(second[0].0.run_id, 1).await.unwrap();
    let again = store
        .claim_next(&lease("d", 10_000), &known, &[], 10)
        .await
        .unwrap()
        .runs;
    assert_eq!(ids(&again), [4]);
    assert_eq!(again[0].0.fence, 2);
}

async fn renewing_keeps_only_the_owners_leases(store: Arc<dyn Store>) {
    let run = record(1, "parcel");
    store.create(&run, Some(&lease("a", 100))).await.unwrap();
    assert_eq!(
        store
            .renew(&lease("b", 10_000), &[run.run_id])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .renew(&lease("a", 10_000), &[run.run_id])
            .await
            .unwrap(),
        1
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        store.claim(run.run_id, &lease("b", 1000)).await.unwrap(),
        Claim::Held { .. }
    ));
    let known = vec![("parcel".to_owned(), 1)];
    assert!(
        store
            .claim_next(&lease("b", 1000), &known, &[], 10)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
}

async fn workers_run_what_is_enqueued(store: Arc<dyn Store>) {
    let ledger = Arc::new(Ledger::default());
    let producer = engine(Arc::clone(&store), "producer", 5_000, &ledger);
    let mut ids = Vec::new();
    for id in 0..20 {
        ids.push(producer.enqueue::<Deliver>(Parcel { id }).await.unwrap());
    }
    // The same idempotency key enqueues once.
    let keyed = RunOptions::new().idempotency_key("parcel-100");
    let first = producer
        .enqueue_with::<Deliver>(Parcel { id: 100 }, keyed.clone())
        .await
        .unwrap();
    let again = producer
        .enqueue_with::<Deliver>(Parcel { id: 100 }, keyed)
        .await
        .unwrap();
    assert_eq!(first, again);
    ids.push(first);

    let w1 = Worker::new(&engine(Arc::clone(&store), "w1", 5_000, &ledger))
        .concurrency(4)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    let w2 = Worker::new(&engine(Arc::clone(&store), "w2", 5_000, &ledger))
        .concurrency(4)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    wait_until("every run completed", async || {
        let done = store
            .list(Some(StoredStatus::Completed), None, 1000)
            .await
            .unwrap()
            .runs;
        done.len() == ids.len()
    })
    .await;
    let (r1, r2) = (
        w1.shutdown(Duration::ZERO).await,
        w2.shutdown(Duration::ZERO).await,
    );
    assert_eq!(
        r1.completed + r2.completed,
        ids.len() as u64,
        "{r1:?} {r2:?}"
    );
    assert_eq!(r1.claimed + r2.claimed, ids.len() as u64);
    assert_eq!(ledger.count("pack "), ids.len(), "each run packed once");
    assert_eq!(ledger.count("ship "), ids.len(), "each run shipped once");
    for id in ids {
        let (stored, events) = store.load(id).await.unwrap();
        assert_eq!(stored.owner, None);
        let claims: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Claimed { worker, fence } => Some((worker.clone(), *fence)),
                _ => None,
            })
            .collect();
        assert_eq!(claims.len(), 1, "{claims:?}");
        assert_eq!(claims[0].1, 1);
        assert!(["w1", "w2"].contains(&claims[0].0.as_str()));
    }
}

async fn a_handed_back_run_is_resumed_by_replay_at_once(store: Arc<dyn Store>) {
    let ledger = Arc::new(Ledger::default());
    ledger.stall.store(true, Ordering::SeqCst);
    // A one-minute lease: the heir does not wait for it to lapse.
    let doomed = engine(Arc::clone(&store), "doomed", 60_000, &ledger);
    let run_id = doomed.enqueue::<Deliver>(Parcel { id: 7 }).await.unwrap();
    let worker = Worker::new(&doomed)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    wait_until("the run stalls in `ship`", async || {
        ledger.count("ship ") == 1
    })
    .await;
    // The worker stops at once: the run in flight is dropped mid-step and handed back.
    let report = worker.shutdown(Duration::ZERO).await;
    assert_eq!(report.handed_back, 1);
    drop(doomed);
    ledger.stall.store(false, Ordering::SeqCst);
    ledger.resumed.notify_waiters();

    let heir = engine(Arc::clone(&store), "heir", 5_000, &ledger);
    let worker = Worker::new(&heir)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    wait_until("the heir completes the run", async || {
        store.load(run_id).await.unwrap().0.status == StoredStatus::Completed
    })
    .await;
    worker.shutdown(Duration::ZERO).await;
    // Replay: `pack` is not executed again; `ship` (in flight when the worker died) is, with
    // the same idempotency key, under the next fence.
    assert_eq!(ledger.count("pack "), 1, "{:?}", ledger.calls());
    let ships: Vec<String> = ledger
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("ship "))
        .collect();
    assert_eq!(ships.len(), 2, "{ships:?}");
    assert!(ships[0].ends_with("fence Some(1)"), "{ships:?}");
    assert!(ships[1].ends_with("fence Some(2)"), "{ships:?}");
    assert_eq!(
        ships[0].split(' ').nth(2),
        ships[1].split(' ').nth(2),
        "same idempotency key"
    );
    let (_, events) = store.load(run_id).await.unwrap();
    let claims: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Claimed { worker, fence } => Some((worker.as_str(), *fence)),
            _ => None,
        })
        .collect();
    assert_eq!(claims, [("doomed", 1), ("heir", 2)]);
}

async fn a_worker_whose_lease_lapsed_cannot_write(store: Arc<dyn Store>) {
    let ledger = Arc::new(Ledger::default());
    ledger.stall.store(true, Ordering::SeqCst);
    // A worker whose heartbeats never arrive (a long pause, a partition).
    let silent: Arc<dyn Store> = Arc::new(NoHeartbeat(Arc::clone(&store)));
    let paused = engine(silent, "paused", 200, &ledger);
    let run_id = paused.enqueue::<Deliver>(Parcel { id: 9 }).await.unwrap();
    let old = Worker::new(&paused)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    wait_until("the run stalls in `ship`", async || {
        ledger.count("ship ") == 1
    })
    .await;
    // Its lease lapses; another worker takes the run over and finishes it (`ship` does not
    // stall for it).
    let heir_ledger = Arc::new(Ledger::default());
    let heir = engine(Arc::clone(&store), "heir", 5_000, &heir_ledger);
    let new = Worker::new(&heir)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    wait_until("the heir completes the run", async || {
        store.load(run_id).await.unwrap().0.status == StoredStatus::Completed
    })
    .await;
    let (_, finished) = store.load(run_id).await.unwrap();
    // The paused worker wakes up and finishes `ship`: its commit is refused.
    ledger.stall.store(false, Ordering::SeqCst);
    ledger.resumed.notify_waiters();
    wait_until("the paused worker gives the run up", async || {
        old.report().interrupted == 1
    })
    .await;
    assert_eq!(old.shutdown(Duration::ZERO).await.completed, 0);
    assert_eq!(new.shutdown(Duration::ZERO).await.completed, 1);
    let (stored, events) = store.load(run_id).await.unwrap();
    assert_eq!(stored.status, StoredStatus::Completed);
    assert_eq!(
        events, finished,
        "nothing of the paused worker was recorded"
    );
    // `pack` completed under the paused worker's lease, `ship` under the heir's only (the
    // paused worker may have claimed and handed back the lapsed run meanwhile, so the heir's
    // generation is 2 or more).
    let completed: Vec<(String, String, u64)> = events
        .iter()
        .scan((String::new(), 0), |claim, e| {
            Some(match &e.kind {
                EventKind::Claimed { worker, fence } => {
                    *claim = (worker.clone(), *fence);
                    None
                }
                EventKind::StepCompleted { step, .. } => {
                    Some((step.to_string(), claim.0.clone(), claim.1))
                }
                _ => None,
            })
        })
        .flatten()
        .collect();
    assert_eq!(completed.len(), 2, "{events:#?}");
    assert_eq!(completed[0], ("pack".into(), "paused".into(), 1));
    assert_eq!((&*completed[1].0, &*completed[1].1), ("ship", "heir"));
    assert!(completed[1].2 >= 2, "{completed:?}");
}

async fn shutdown_hands_back_what_is_in_flight(store: Arc<dyn Store>) {
    let ledger = Arc::new(Ledger::default());
    ledger.stall.store(true, Ordering::SeqCst);
    let first = engine(Arc::clone(&store), "first", 60_000, &ledger);
    for id in 0..3 {
        first.enqueue::<Deliver>(Parcel { id }).await.unwrap();
    }
    let worker = Worker::new(&first)
        .concurrency(2)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    wait_until("two runs stall", async || ledger.count("ship ") == 2).await;
    let report = worker.shutdown(Duration::from_millis(50)).await;
    assert_eq!((report.claimed, report.handed_back), (2, 2), "{report:?}");
    ledger.stall.store(false, Ordering::SeqCst);
    // Handed back, not left to lapse: with a one-minute lease, a second worker takes all
    // three at once.
    let second = Worker::new(&engine(Arc::clone(&store), "second", 60_000, &ledger))
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    wait_until("every run completed", async || {
        store
            .list(Some(StoredStatus::Completed), None, 10)
            .await
            .unwrap()
            .runs
            .len()
            == 3
    })
    .await;
    assert_eq!(second.shutdown(Duration::from_secs(5)).await.completed, 3);
}

async fn resume_leaves_runs_held_by_a_live_worker(store: Arc<dyn Store>) {
    let ledger = Arc::new(Ledger::default());
    ledger.stall.store(true, Ordering::SeqCst);
    let busy = engine(Arc::clone(&store), "busy", 60_000, &ledger);
    let run = {
        let busy = busy.clone();
        tokio::spawn(async move { busy.run::<Deliver>(Parcel { id: 3 }).await })
    };
    wait_until("the run stalls", async || ledger.count("ship ") == 1).await;
    let other = engine(Arc::clone(&store), "other", 60_000, &ledger);
    let report = other.resume_pending().await.unwrap();
    assert!(report.resumed.is_empty());
    assert_eq!(report.held.len(), 1);
    assert_eq!(report.held[0].1, "busy");
    let run_id = report.held[0].0;
    let err = other.resume(run_id).await.unwrap_err();
    assert!(
        matches!(&err, hookflow::ResumeError::Held { owner, .. } if owner == "busy"),
        "{err}"
    );
    ledger.stall.store(false, Ordering::SeqCst);
    assert_eq!(run.await.unwrap().status(), RunStatus::Completed);
}

#[tokio::test]
async fn a_worker_needs_a_store_and_workflows() {
    let err = Worker::new(&Engine::new()).start().unwrap_err();
    assert!(matches!(err, WorkerError::NoStore(_)), "{err}");
    let bare = Engine::builder()
        .store(hookflow::store::MemoryStore::new())
        .build();
    let err = Worker::new(&bare).start().unwrap_err();
    assert!(matches!(err, WorkerError::NoWorkflows), "{err}");
    assert_eq!(
        err.to_string(),
        "a worker needs the workflows it may run: `Engine::builder().workflow::<Checkout>()`"
    );
    let err = Engine::new()
        .enqueue::<Deliver>(Parcel { id: 1 })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the engine has no store"), "{err}");
}

#[test]
fn a_worker_starts_on_a_runtime() {
    let engine = Engine::builder()
        .store(hookflow::store::MemoryStore::new())
        .workflow::<Deliver>()
        .build();
    let err = Worker::new(&engine).start().unwrap_err();
    assert!(matches!(err, WorkerError::NoRuntime), "{err}");
}

on_every_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_stale_fence_is_refused_and_records_nothing,
    claim_next_takes_free_runs_oldest_first_and_once,
    renewing_keeps_only_the_owners_leases,
    workers_run_what_is_enqueued,
    a_handed_back_run_is_resumed_by_replay_at_once,
    a_worker_whose_lease_lapsed_cannot_write,
    shutdown_hands_back_what_is_in_flight,
    resume_leaves_runs_held_by_a_live_worker,
);
