//! Cancellation on every store: a run cancelled while it runs stops at its next step boundary
//! (the step in flight completes, and is undone with the others), one that waits or sleeps
//! stops at once, a nested workflow is cancelled with its parent, and a run whose deadline
//! passes is cancelled. Every case ends `Cancelled` with each completed step compensated
//! once, and its journal keeps the saga invariant (`check_saga`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hookflow::store::Store;
use hookflow::testing::check_saga;
use hookflow::{
    Cancel, CancelError, Engine, Journal, RunId, RunOptions, RunStatus, StepContext, StepResponse,
    StoredStatus, WaitError, Workflow, WorkflowContext, step, workflow,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::waits::until_status;

#[derive(Debug, thiserror::Error)]
pub enum TripError {
    #[error("step failed: {0}")]
    Step(String),
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// What the steps did, and a gate the `slow` step waits at.
#[derive(Default)]
pub struct Trip {
    pub booked: AtomicU32,
    pub unbooked: AtomicU32,
    pub after_cancel: AtomicU32,
    pub entered: Notify,
    pub gate: Notify,
}

fn trip(ctx: &StepContext) -> Result<&Arc<Trip>, TripError> {
    ctx.service::<Arc<Trip>>()
        .map_err(|e| TripError::Step(e.to_string()))
}

#[step(compensate = unbook)]
async fn book(ctx: &StepContext, what: String) -> Result<StepResponse<String, String>, TripError> {
    trip(ctx)?.booked.fetch_add(1, Ordering::SeqCst);
    Ok(StepResponse::new(what.clone(), what))
}

async fn unbook(ctx: &StepContext, _what: String) -> Result<(), TripError> {
    trip(ctx)?.unbooked.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Books, then waits at the gate (the test cancels meanwhile).
#[step(compensate = unbook)]
async fn slow(ctx: &StepContext, what: String) -> Result<StepResponse<String, String>, TripError> {
    let trip = trip(ctx)?;
    trip.booked.fetch_add(1, Ordering::SeqCst);
    trip.entered.notify_one();
    trip.gate.notified().await;
    Ok(StepResponse::new(what.clone(), what))
}

#[step]
async fn never(ctx: &StepContext, _x: u32) -> Result<u32, TripError> {
    trip(ctx)?.after_cancel.fetch_add(1, Ordering::SeqCst);
    Ok(0)
}

#[workflow]
async fn running(ctx: &WorkflowContext, _x: u32) -> Result<u32, TripError> {
    book(ctx, "flight".into()).await?;
    slow(ctx, "hotel".into()).await?;
    never(ctx, 0).await
}

#[workflow(events(confirmed: u32))]
async fn waiting(ctx: &WorkflowContext, _x: u32) -> Result<u32, TripError> {
    book(ctx, "flight".into()).await?;
    let n = ctx.wait(Waiting::CONFIRMED).await?;
    never(ctx, n).await
}

#[workflow]
async fn sleeping(ctx: &WorkflowContext, secs: u64) -> Result<u32, TripError> {
    book(ctx, "flight".into()).await?;
    ctx.sleep(Duration::from_secs(secs)).await;
    never(ctx, 0).await
}

#[workflow]
async fn child(ctx: &WorkflowContext, _x: u32) -> Result<u32, TripError> {
    book(ctx, "car".into()).await?;
    slow(ctx, "boat".into()).await?;
    never(ctx, 1).await
}

#[workflow]
async fn parent(ctx: &WorkflowContext, x: u32) -> Result<u32, TripError> {
    book(ctx, "flight".into()).await?;
    Child::call(ctx, x).await?;
    never(ctx, 2).await
}

fn engine(store: Arc<impl Store>, trip: &Arc<Trip>) -> Engine {
    Engine::builder()
        .store(store)
        .workflow::<Running>()
        .workflow::<Waiting>()
        .workflow::<Sleeping>()
        .workflow::<Parent>()
        .service(Arc::clone(trip))
        .build()
}

/// The run ended cancelled, with every booking undone once and its journal a sound saga.
async fn assert_cancelled(store: &Arc<impl Store>, run_id: RunId, trip: &Trip, reason: &str) {
    let record = until_status(
        store,
        run_id,
        StoredStatus::Cancelled,
        Duration::from_secs(15),
    )
    .await;
    let error = record.error.unwrap_or_default();
    assert!(error.contains(reason), "{error}");
    let booked = trip.booked.load(Ordering::SeqCst);
    assert!(booked > 0);
    assert_eq!(
        trip.unbooked.load(Ordering::SeqCst),
        booked,
        "each booking undone once"
    );
    assert_eq!(
        trip.after_cancel.load(Ordering::SeqCst),
        0,
        "nothing ran after the cancel"
    );
    let (_, events) = store.load(run_id).await.unwrap();
    check_saga(&Journal::from_events(events)).unwrap();
}

/// Starts a run of `W` (input 0) in a task of its own: its id, and its status once it ends.
fn spawn<W: Workflow<Input = u32>>(engine: &Engine) -> (RunId, JoinHandle<RunStatus>) {
    let run_id = RunId::generate();
    let engine = engine.clone();
    let run = tokio::spawn(async move {
        engine
            .run_with::<W>(0, RunOptions::new().run_id(run_id))
            .await
            .status()
    });
    (run_id, run)
}

async fn cancelled_while_running_stops_at_the_next_step_boundary(store: Arc<impl Store>) {
    let trip = Arc::new(Trip::default());
    let engine = engine(Arc::clone(&store), &trip);
    let (run_id, run) = spawn::<Running>(&engine);
    trip.entered.notified().await;
    let cancel = engine
        .cancel(run_id, "the customer changed their mind")
        .await;
    assert_eq!(cancel.unwrap(), Cancel::Requested { woke: false });
    trip.gate.notify_one();
    assert_eq!(run.await.unwrap(), RunStatus::Cancelled);
    assert_cancelled(&store, run_id, &trip, "changed their mind").await;
    // The step in flight completed, and was undone with the first.
    assert_eq!(trip.booked.load(Ordering::SeqCst), 2);
    let again = engine.cancel(run_id, "again").await;
    assert!(
        matches!(
            again,
            Err(CancelError::Ended {
                status: StoredStatus::Cancelled,
                ..
            })
        ),
        "{again:?}"
    );
}

async fn cancelled_from_another_engine_while_running(store: Arc<impl Store>) {
    let trip = Arc::new(Trip::default());
    let engine = engine(Arc::clone(&store), &trip);
    let other = self::engine(Arc::clone(&store), &trip);
    let (run_id, run) = spawn::<Running>(&engine);
    trip.entered.notified().await;
    other.cancel(run_id, "from elsewhere").await.unwrap();
    // The running engine sees the request within its poll (a second), then the step ends.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    trip.gate.notify_one();
    assert_eq!(run.await.unwrap(), RunStatus::Cancelled);
    assert_cancelled(&store, run_id, &trip, "from elsewhere").await;
}

async fn cancelled_while_waiting_stops_at_once(store: Arc<impl Store>) {
    let trip = Arc::new(Trip::default());
    let engine = engine(Arc::clone(&store), &trip);
    let outcome = engine.run::<Waiting>(0).await;
    assert_eq!(outcome.status(), RunStatus::Waiting);
    let cancel = engine.cancel(outcome.run_id(), "no confirmation").await;
    assert_eq!(cancel.unwrap(), Cancel::Requested { woke: true });
    assert_cancelled(&store, outcome.run_id(), &trip, "no confirmation").await;
}

async fn cancelled_while_sleeping_stops_at_once(store: Arc<impl Store>) {
    let trip = Arc::new(Trip::default());
    let engine = engine(Arc::clone(&store), &trip);
    let outcome = engine.run::<Sleeping>(3600).await;
    assert_eq!(outcome.status(), RunStatus::Waiting);
    engine
        .cancel(outcome.run_id(), "not worth the wait")
        .await
        .unwrap();
    assert_cancelled(&store, outcome.run_id(), &trip, "not worth the wait").await;
}

async fn nested_workflow_is_cancelled_with_its_parent(store: Arc<impl Store>) {
    let trip = Arc::new(Trip::default());
    let engine = engine(Arc::clone(&store), &trip);
    let (run_id, run) = spawn::<Parent>(&engine);
    trip.entered.notified().await;
    engine.cancel(run_id, "trip called off").await.unwrap();
    trip.gate.notify_one();
    assert_eq!(run.await.unwrap(), RunStatus::Cancelled);
    // flight (parent), car and boat (child): all three undone.
    assert_eq!(trip.booked.load(Ordering::SeqCst), 3);
    assert_cancelled(&store, run_id, &trip, "trip called off").await;
}

async fn run_past_its_deadline_is_cancelled(store: Arc<impl Store>) {
    let trip = Arc::new(Trip::default());
    let engine = engine(Arc::clone(&store), &trip);
    let options = RunOptions::new().deadline_after(Duration::from_millis(300));
    let outcome = engine.run_with::<Sleeping>(3600, options).await;
    assert_eq!(outcome.status(), RunStatus::Waiting);
    let (record, _) = store.load(outcome.run_id()).await.unwrap();
    assert!(record.wake_at_micros.is_some(), "it wakes at its deadline");
    let worker = hookflow::Worker::new(&engine)
        .poll_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    assert_cancelled(&store, outcome.run_id(), &trip, "the deadline passed").await;
    worker.shutdown(Duration::from_secs(5)).await;
}

on_every_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    cancelled_while_running_stops_at_the_next_step_boundary,
    cancelled_from_another_engine_while_running,
    cancelled_while_waiting_stops_at_once,
    cancelled_while_sleeping_stops_at_once,
    nested_workflow_is_cancelled_with_its_parent,
    run_past_its_deadline_is_cancelled,
);

#[test]
fn workflows_declare_their_events() {
    assert_eq!(Waiting::CONFIRMED.name(), "confirmed");
    assert_eq!(<Waiting as Workflow>::META.name(), "waiting");
}
