//! `MemoryStore`'s retention and its idempotency-key index: a plain store keeps every run;
//! with a `Retention`, a run without an idempotency key is forgotten as it ends (never while
//! it runs), a keyed one answers retries with its recorded outcome until its time is up and
//! is forgotten then, its key free for a new run. (The index itself is checked by a unit test
//! in the store's module.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hookflow::StoredStatus;
use hookflow::prelude::*;
use hookflow::store::{MemoryStore, Retention, Store, StoreError};

/// Counts the charges, and holds a charge until told to go on when `hold` is set.
#[derive(Default)]
struct Till {
    charges: AtomicU32,
    hold: std::sync::atomic::AtomicBool,
    held: tokio::sync::Notify,
    go_on: tokio::sync::Notify,
}

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error("declined")]
    Declined,
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[step]
async fn charge(ctx: &StepContext, amount: u64) -> Result<u64, PayError> {
    let till = ctx.service::<Till>()?;
    till.charges.fetch_add(1, Ordering::SeqCst);
    if till.hold.load(Ordering::SeqCst) {
        till.held.notify_one();
        till.go_on.notified().await;
    }
    if amount > 1_000 {
        return Err(PayError::Declined);
    }
    Ok(amount)
}

#[workflow]
async fn pay(ctx: &WorkflowContext, amount: u64) -> Result<u64, PayError> {
    charge(ctx, amount).await
}

fn engine(store: &Arc<MemoryStore>) -> Engine {
    Engine::builder()
        .store(Arc::clone(store))
        .service(Till::default())
        .workflow::<Pay>()
        .build()
}

fn charges(engine: &Engine) -> u32 {
    engine
        .service::<Till>()
        .unwrap()
        .charges
        .load(Ordering::SeqCst)
}

fn keyed(key: &str) -> RunOptions {
    RunOptions::new().idempotency_key(key)
}

#[tokio::test]
async fn a_plain_memory_store_keeps_every_run() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store);
    let done = Pay::run(&engine, 10).await;
    let declined = Pay::run(&engine, 5_000).await;
    let with_key = Pay::run_with(&engine, 20, keyed("k")).await;
    assert_eq!(declined.status(), RunStatus::Compensated);
    assert_eq!(store.len(), 3);
    for outcome in [done.run_id(), declined.run_id(), with_key.run_id()] {
        let (record, events) = store.load(outcome).await.unwrap();
        assert!(record.status.is_finished());
        assert!(!events.is_empty());
    }
}

#[tokio::test]
async fn runs_without_a_key_are_forgotten_as_they_end_and_kept_while_they_run() {
    let store = Arc::new(MemoryStore::new().retention(Retention::new().unkeyed(Duration::ZERO)));
    let engine = engine(&store);
    let completed = Pay::run(&engine, 10).await;
    let compensated = Pay::run(&engine, 5_000).await;
    assert_eq!(completed.status(), RunStatus::Completed);
    assert_eq!(compensated.status(), RunStatus::Compensated);
    assert!(store.is_empty(), "{:?}", store.list(None, None, 10).await);
    assert!(matches!(
        store.load(completed.run_id()).await,
        Err(StoreError::NotFound(_))
    ));

    // A run in flight is in the store until it ends.
    let till = engine.service::<Till>().unwrap();
    till.hold.store(true, Ordering::SeqCst);
    let held = till.held.notified();
    let run = engine.spawn::<Pay>(30, RunOptions::new()).unwrap();
    held.await;
    let running = store.list(None, None, 10).await.unwrap().runs;
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].status, StoredStatus::Running);
    till.hold.store(false, Ordering::SeqCst);
    till.go_on.notify_one();
    assert_eq!(run.await.unwrap().status(), RunStatus::Completed);
    assert!(store.is_empty());

    // Keyed runs are kept (no time set for them: for the store's lifetime).
    let first = Pay::run_with(&engine, 40, keyed("k")).await;
    assert_eq!(store.len(), 1);
    let again = Pay::run_with(&engine, 40, keyed("k")).await;
    assert_eq!(again.run_id(), first.run_id());
    assert_eq!(charges(&engine), 4, "the retry ran nothing");
}

#[tokio::test]
async fn a_keyed_run_answers_retries_until_its_time_is_up_then_its_key_is_free() {
    let keep = Duration::from_millis(500);
    let store = Arc::new(
        MemoryStore::new().retention(Retention::new().unkeyed(Duration::ZERO).keyed(keep)),
    );
    let engine = engine(&store);
    let started = Instant::now();
    let first = Pay::run_with(&engine, 10, keyed("order-1")).await;
    let declined = Pay::run_with(&engine, 5_000, keyed("order-2")).await;
    Pay::run(&engine, 10).await; // forgotten at once
    let again = Pay::run_with(&engine, 10, keyed("order-1")).await;
    let declined_again = Pay::run_with(&engine, 5_000, keyed("order-2")).await;
    assert!(
        started.elapsed() < keep,
        "the machine is too slow for this test: {:?}",
        started.elapsed()
    );
    assert_eq!(again.run_id(), first.run_id());
    assert_eq!(again.output(), Some(&10));
    assert_eq!(declined_again.run_id(), declined.run_id());
    assert_eq!(declined_again.status(), RunStatus::Compensated);
    assert_eq!(charges(&engine), 3);
    assert_eq!(store.len(), 2);

    tokio::time::sleep(keep + Duration::from_millis(50)).await;
    assert_eq!(store.len(), 0, "both keyed runs expired");
    assert!(matches!(
        store.load(first.run_id()).await,
        Err(StoreError::NotFound(_))
    ));
    // The key starts a new run now.
    let later = Pay::run_with(&engine, 10, keyed("order-1")).await;
    assert_ne!(later.run_id(), first.run_id());
    assert_eq!(later.status(), RunStatus::Completed);
    assert_eq!(charges(&engine), 4);
    assert_eq!(store.len(), 1);
}
