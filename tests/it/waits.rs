//! Long-running runs on every store: waiting for an event (sent before or after the wait,
//! twice under one delivery key, as a failure), durable timers, waits with a timeout, and the
//! errors of sending to a run that cannot take the event. A waiting run is suspended in the
//! store (status `waiting`, no lease), and is resumed by replay when the event arrives or
//! the timer is due: each step's effect happens once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hookflow::store::Store;
use hookflow::{
    Engine, RunId, RunStatus, SendError, Sent, StepContext, StepResponse, StoredStatus, WaitError,
    WorkflowContext, step, workflow,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("step failed: {0}")]
    Step(String),
    #[error(transparent)]
    Wait(#[from] WaitError),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Payment {
    pub amount: u32,
}

/// Counts each step's effects, by name: a replayed step does not count again.
#[derive(Default)]
pub struct Effects {
    pub authorized: AtomicU32,
    pub voided: AtomicU32,
    pub fulfilled: AtomicU32,
}

#[step(compensate = void)]
async fn authorize(ctx: &StepContext, amount: u32) -> Result<StepResponse<u32, u32>, OrderError> {
    ctx.service::<Arc<Effects>>()
        .map_err(|e| OrderError::Step(e.to_string()))?
        .authorized
        .fetch_add(1, Ordering::SeqCst);
    Ok(StepResponse::new(amount, amount))
}

async fn void(ctx: &StepContext, _amount: u32) -> Result<(), OrderError> {
    ctx.service::<Arc<Effects>>()
        .map_err(|e| OrderError::Step(e.to_string()))?
        .voided
        .fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[step]
async fn fulfil(ctx: &StepContext, amount: u32) -> Result<u32, OrderError> {
    ctx.service::<Arc<Effects>>()
        .map_err(|e| OrderError::Step(e.to_string()))?
        .fulfilled
        .fetch_add(1, Ordering::SeqCst);
    Ok(amount)
}

#[workflow(events(payment_captured: Payment))]
async fn order(ctx: &WorkflowContext, amount: u32) -> Result<u32, OrderError> {
    let authorized = authorize(ctx, amount).await?;
    let payment = ctx.wait(Order::PAYMENT_CAPTURED).await?;
    fulfil(ctx, authorized + payment.amount).await
}

#[workflow]
async fn nap(ctx: &WorkflowContext, millis: u64) -> Result<u32, OrderError> {
    let authorized = authorize(ctx, 1).await?;
    ctx.sleep(Duration::from_millis(millis)).await;
    fulfil(ctx, authorized).await
}

#[workflow(events(payment_captured: Payment))]
async fn patient(ctx: &WorkflowContext, millis: u64) -> Result<u32, OrderError> {
    match ctx
        .wait_timeout(Patient::PAYMENT_CAPTURED, Duration::from_millis(millis))
        .await?
    {
        Some(payment) => Ok(payment.amount),
        None => Ok(0),
    }
}

fn engine(store: Arc<impl Store>, effects: &Arc<Effects>) -> Engine {
    Engine::builder()
        .store(store)
        .workflow::<Order>()
        .workflow::<Nap>()
        .workflow::<Patient>()
        .service(Arc::clone(effects))
        .build()
}

/// Polls the store until run `run_id` has `status`, for up to `within`.
pub async fn until_status(
    store: &Arc<impl Store>,
    run_id: RunId,
    status: StoredStatus,
    within: Duration,
) -> hookflow::store::RunRecord {
    let deadline = Instant::now() + within;
    loop {
        let (record, _) = store.load(run_id).await.unwrap();
        if record.status == status {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id} is {} after {within:?}, not {status}",
            record.status
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn waiting_run_resumes_when_its_event_arrives(store: Arc<impl Store>) {
    let effects = Arc::new(Effects::default());
    let engine = engine(Arc::clone(&store), &effects);
    let outcome = engine.run::<Order>(10).await;
    assert_eq!(
        outcome.status(),
        RunStatus::Waiting,
        "{:?}",
        outcome.error()
    );
    let run_id = outcome.run_id();
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Waiting);
    assert_eq!(record.owner, None, "a suspended run holds no lease");
    assert_eq!(record.waiting_for.as_deref(), Some("payment_captured"));
    let status = engine.status(run_id).await.unwrap();
    assert_eq!(status.status, StoredStatus::Waiting);
    assert_eq!(status.waiting_for.as_deref(), Some("payment_captured"));
    assert_eq!(
        status.current_step.map(|s| s.name),
        Some("authorize".to_owned())
    );

    // Another engine on the same store (another process) sends the event.
    let sender = self::engine(Arc::clone(&store), &effects);
    let sent = sender
        .send_once(
            run_id,
            Order::PAYMENT_CAPTURED,
            Payment { amount: 5 },
            "pay_1",
        )
        .await
        .unwrap();
    assert_eq!(sent, Sent::Delivered { woke: true });
    let duplicate = sender
        .send_once(
            run_id,
            Order::PAYMENT_CAPTURED,
            Payment { amount: 500 },
            "pay_1",
        )
        .await
        .unwrap();
    assert_eq!(duplicate, Sent::Duplicate);

    let record = until_status(
        &store,
        run_id,
        StoredStatus::Completed,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(record.output, Some(serde_json::json!(15)));
    assert_eq!(
        effects.authorized.load(Ordering::SeqCst),
        1,
        "authorize ran once"
    );
    assert_eq!(
        effects.fulfilled.load(Ordering::SeqCst),
        1,
        "fulfil ran once"
    );
    assert_eq!(effects.voided.load(Ordering::SeqCst), 0);

    // Sending to a run that has ended, or to none, is a typed error.
    let ended = sender
        .send(run_id, Order::PAYMENT_CAPTURED, Payment { amount: 1 })
        .await;
    assert!(
        matches!(
            ended,
            Err(SendError::Ended {
                status: StoredStatus::Completed,
                ..
            })
        ),
        "{ended:?}"
    );
    let unknown = sender
        .send(
            RunId::generate(),
            Order::PAYMENT_CAPTURED,
            Payment { amount: 1 },
        )
        .await;
    assert!(
        matches!(unknown, Err(SendError::UnknownRun { .. })),
        "{unknown:?}"
    );
}

async fn event_sent_before_the_wait_is_kept(store: Arc<impl Store>) {
    let effects = Arc::new(Effects::default());
    let engine = engine(Arc::clone(&store), &effects);
    // Enqueued, not started: the event comes first.
    let run_id = engine.enqueue::<Order>(1).await.unwrap();
    let sent = engine
        .send(run_id, Order::PAYMENT_CAPTURED, Payment { amount: 2 })
        .await
        .unwrap();
    assert_eq!(sent, Sent::Delivered { woke: false });
    // A run of another workflow has no such event.
    let other = engine.enqueue::<Nap>(1).await.unwrap();
    let wrong = engine
        .send(other, Order::PAYMENT_CAPTURED, Payment { amount: 2 })
        .await;
    assert!(
        matches!(wrong, Err(SendError::OtherWorkflow { .. })),
        "{wrong:?}"
    );

    assert_eq!(engine.resume(run_id).await.unwrap(), RunStatus::Completed);
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.output, Some(serde_json::json!(3)));
}

async fn failed_event_fails_and_compensates_the_run(store: Arc<impl Store>) {
    let effects = Arc::new(Effects::default());
    let engine = engine(Arc::clone(&store), &effects);
    let outcome = engine.run::<Order>(10).await;
    assert_eq!(outcome.status(), RunStatus::Waiting);
    let run_id = outcome.run_id();
    engine
        .fail(run_id, Order::PAYMENT_CAPTURED, "card declined")
        .await
        .unwrap();
    let record = until_status(
        &store,
        run_id,
        StoredStatus::Compensated,
        Duration::from_secs(10),
    )
    .await;
    let error = record.error.unwrap_or_default();
    assert!(error.contains("card declined"), "{error}");
    assert_eq!(
        effects.voided.load(Ordering::SeqCst),
        1,
        "the authorization was voided"
    );
    assert_eq!(effects.fulfilled.load(Ordering::SeqCst), 0);
    let (_, events) = store.load(run_id).await.unwrap();
    hookflow::testing::check_saga(&hookflow::Journal::from_events(events)).unwrap();
}

async fn sleeping_run_wakes_when_due(store: Arc<impl Store>) {
    let effects = Arc::new(Effects::default());
    let engine = engine(Arc::clone(&store), &effects);
    let started = Instant::now();
    let outcome = engine.run::<Nap>(300).await;
    assert_eq!(outcome.status(), RunStatus::Waiting);
    let run_id = outcome.run_id();
    let (record, _) = store.load(run_id).await.unwrap();
    assert!(
        record.wake_at_micros.is_some(),
        "a sleeping run wakes by itself"
    );
    let worker = hookflow::Worker::new(&engine)
        .poll_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    until_status(
        &store,
        run_id,
        StoredStatus::Completed,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "woke before its time"
    );
    worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(effects.authorized.load(Ordering::SeqCst), 1);
    assert_eq!(effects.fulfilled.load(Ordering::SeqCst), 1);
}

async fn wait_with_timeout_times_out(store: Arc<impl Store>) {
    let effects = Arc::new(Effects::default());
    let engine = engine(Arc::clone(&store), &effects);
    let outcome = engine.run::<Patient>(100).await;
    assert_eq!(outcome.status(), RunStatus::Waiting);
    let run_id = outcome.run_id();
    let worker = hookflow::Worker::new(&engine)
        .poll_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    let record = until_status(
        &store,
        run_id,
        StoredStatus::Completed,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        record.output,
        Some(serde_json::json!(0)),
        "timed out: no payment"
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

on_every_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    waiting_run_resumes_when_its_event_arrives,
    event_sent_before_the_wait_is_kept,
    failed_event_fails_and_compensates_the_run,
    sleeping_run_wakes_when_due,
    wait_with_timeout_times_out,
);

#[tokio::test]
async fn without_a_store_wait_fails_and_sleep_sleeps_here() {
    let effects = Arc::new(Effects::default());
    let engine = Engine::builder().service(Arc::clone(&effects)).build();
    let outcome = engine.run::<Order>(1).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert!(
        matches!(
            outcome.error().and_then(|e| e.as_failed()),
            Some(OrderError::Wait(WaitError::NoStore { .. }))
        ),
        "{:?}",
        outcome.error()
    );
    let started = Instant::now();
    let outcome = engine.run::<Nap>(50).await;
    assert_eq!(outcome.status(), RunStatus::Completed);
    assert!(started.elapsed() >= Duration::from_millis(50));
}
