//! Starts a store refuses because they conflict with a run it holds: a run id that a run
//! already has, and an idempotency key held by a run started with another input. Each ends
//! `Rejected` with a typed error (`EnqueueError::Rejected` for `enqueue`), records nothing,
//! and leaves the existing run as it was; the same key with the same input still gives back
//! the first run. On every store: in memory, a SQLite file, a PostgreSQL database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookflow::prelude::*;
use hookflow::store::{Store, StoredStatus};
use hookflow::{EnqueueError, Rejection, RunError, RunId};
use serde::{Deserialize, Serialize};

/// How many times `pack` ran.
#[derive(Default)]
struct Packed(AtomicUsize);

impl Packed {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ShipError(#[from] hookflow::MissingService);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Parcel {
    to: String,
    /// A float that need not read back from JSON text bit for bit: the same input still
    /// compares equal once stored.
    kilos: f64,
}

fn parcel(to: &str) -> Parcel {
    Parcel {
        to: to.to_owned(),
        kilos: 2.0 / 3.0 + 1e-9,
    }
}

#[step]
async fn pack(ctx: &StepContext, parcel: Parcel) -> Result<String, ShipError> {
    ctx.service::<Arc<Packed>>()?
        .0
        .fetch_add(1, Ordering::SeqCst);
    Ok(format!("box for {}", parcel.to))
}

#[workflow]
async fn ship(ctx: &WorkflowContext, parcel: Parcel) -> Result<String, ShipError> {
    pack(ctx, parcel).await
}

fn engine(store: Arc<dyn Store>, packed: &Arc<Packed>) -> Engine {
    Engine::builder()
        .worker_id("rejects")
        .store(store)
        .service(Arc::clone(packed))
        .workflow::<Ship>()
        .build()
}

async fn a_run_id_that_exists_is_rejected_and_the_existing_run_is_untouched(store: Arc<dyn Store>) {
    let packed = Arc::new(Packed::default());
    let engine = engine(store.clone(), &packed);
    let id = RunId::generate();
    let first = Ship::run_with(&engine, parcel("alice"), RunOptions::new().run_id(id)).await;
    assert_eq!(first.status(), RunStatus::Completed, "{:?}", first.error());
    let before = store.load(id).await.unwrap();

    let again = Ship::run_with(&engine, parcel("bob"), RunOptions::new().run_id(id)).await;
    assert_eq!(again.status(), RunStatus::Rejected, "{:?}", again.error());
    match again.error() {
        Some(RunError::Rejected(Rejection::RunIdTaken { run_id })) => assert_eq!(*run_id, id),
        other => panic!("expected RunIdTaken, got {other:?}"),
    }
    let message = again.error().unwrap().to_string();
    assert!(message.contains(&id.to_string()), "{message}");
    assert!(!message.contains("unavailable"), "{message}");
    assert_eq!(packed.count(), 1, "nothing of the second run ran");
    assert_eq!(
        store.load(id).await.unwrap(),
        before,
        "the first run is untouched"
    );

    let enqueued = engine
        .enqueue_with::<Ship>(parcel("carol"), RunOptions::new().run_id(id))
        .await;
    assert!(
        matches!(enqueued, Err(EnqueueError::Rejected(Rejection::RunIdTaken { run_id })) if run_id == id),
        "{enqueued:?}"
    );
    assert_eq!(store.load(id).await.unwrap(), before);

    // A run that is not over (enqueued, claimed by nobody) is left as it was too.
    let waiting = RunId::generate();
    let enqueued = engine
        .enqueue_with::<Ship>(parcel("dan"), RunOptions::new().run_id(waiting))
        .await;
    assert_eq!(enqueued.unwrap(), waiting);
    let queued = store.load(waiting).await.unwrap();
    let taken = Ship::run_with(&engine, parcel("erin"), RunOptions::new().run_id(waiting)).await;
    assert_eq!(taken.status(), RunStatus::Rejected, "{:?}", taken.error());
    let (record, events) = store.load(waiting).await.unwrap();
    assert_eq!(
        (record.status, record.fence, record.owner.as_deref()),
        (StoredStatus::Running, 0, None)
    );
    assert_eq!(record.input, queued.0.input);
    assert!(events.is_empty());
    assert_eq!(packed.count(), 1);
    assert_eq!(store.list(None, None, 100).await.unwrap().runs.len(), 2);
}

async fn an_idempotency_key_reused_with_another_input_is_rejected(store: Arc<dyn Store>) {
    let packed = Arc::new(Packed::default());
    let engine = engine(store.clone(), &packed);
    let keyed = || RunOptions::new().idempotency_key("order-7");
    let first = Ship::run_with(&engine, parcel("alice"), keyed()).await;
    assert_eq!(first.status(), RunStatus::Completed, "{:?}", first.error());
    let before = store.load(first.run_id()).await.unwrap();

    let other = Ship::run_with(&engine, parcel("bob"), keyed()).await;
    assert_eq!(other.status(), RunStatus::Rejected, "{:?}", other.error());
    assert_ne!(other.run_id(), first.run_id());
    match other.error() {
        Some(RunError::Rejected(Rejection::IdempotencyConflict { key, run_id })) => {
            assert_eq!((key.as_str(), *run_id), ("order-7", first.run_id()));
        }
        err => panic!("expected IdempotencyConflict, got {err:?}"),
    }
    let message = other.error().unwrap().to_string();
    assert!(
        message.contains("`order-7`") && message.contains(&first.run_id().to_string()),
        "the message names the key and the run that holds it: {message}"
    );
    assert_eq!(packed.count(), 1, "nothing of the second run ran");
    assert_eq!(
        store.list(None, None, 100).await.unwrap().runs.len(),
        1,
        "nothing recorded"
    );
    assert!(store.load(other.run_id()).await.is_err());
    assert_eq!(store.load(first.run_id()).await.unwrap(), before);

    let enqueued = engine.enqueue_with::<Ship>(parcel("bob"), keyed()).await;
    assert!(
        matches!(&enqueued, Err(EnqueueError::Rejected(Rejection::IdempotencyConflict { run_id, .. })) if *run_id == first.run_id()),
        "{enqueued:?}"
    );

    // The same key with the same input is the same request: the first run's outcome.
    let same = Ship::run_with(&engine, parcel("alice"), keyed()).await;
    assert_eq!(same.status(), RunStatus::Completed, "{:?}", same.error());
    assert_eq!(same.run_id(), first.run_id());
    assert_eq!(same.output(), Some(&"box for alice".to_owned()));
    let enqueued = engine.enqueue_with::<Ship>(parcel("alice"), keyed()).await;
    assert_eq!(enqueued.unwrap(), first.run_id());
    assert_eq!(packed.count(), 1);
    assert_eq!(store.list(None, None, 100).await.unwrap().runs.len(), 1);
    assert_eq!(store.load(first.run_id()).await.unwrap(), before);
}

on_every_store!(
    #[tokio::test]
    a_run_id_that_exists_is_rejected_and_the_existing_run_is_untouched,
    an_idempotency_key_reused_with_another_input_is_rejected,
);
