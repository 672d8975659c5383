//! Background jobs: steps and hooks enqueue them with `ctx.jobs().enqueue(name, &payload)`;
//! the engine hands them to its dispatcher only when the run completes. A failed run
//! dispatches nothing, so a compensated checkout never sends its confirmation email.

use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::{EventKind, Job, MissingService, RunError};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Where the dispatcher puts jobs (standing in for a queue). Also registered as a service, so
/// that a step can check that nothing was dispatched while the run is still going.
#[derive(Clone, Default)]
struct Queue {
    jobs: Arc<Mutex<Vec<Job>>>,
}

impl Queue {
    fn jobs(&self) -> Vec<Job> {
        self.jobs.lock().unwrap().clone()
    }
}

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("card declined")]
    Declined,
    #[error("could not enqueue: {0}")]
    Enqueue(#[from] hookflow::RecordError),
    #[error(transparent)]
    MissingService(#[from] MissingService),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct OrderInput {
    email: String,
    cents: u64,
    card_ok: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Placed {
    order_id: String,
    email: String,
    /// What the dispatcher had received when the last step ran, and what was pending.
    dispatched_during_run: usize,
    pending_during_run: usize,
}

/// A job payload.
#[derive(Debug, Serialize)]
struct ConfirmationEmail<'a> {
    order_id: &'a str,
    to: &'a str,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderRecord {
    id: String,
}

#[step(compensate = delete_order)]
async fn create_order(
    ctx: &StepContext,
    input: OrderInput,
) -> Result<StepResponse<String, OrderRecord>, OrderError> {
    let id = "ord_11".to_owned();
    ctx.jobs().enqueue(
        "send_confirmation",
        &ConfirmationEmail {
            order_id: &id,
            to: &input.email,
        },
    )?;
    Ok(StepResponse::new(id.clone(), OrderRecord { id }))
}

/// Enqueues a job while compensating (e.g. "tell the customer it was cancelled").
async fn delete_order(ctx: &StepContext, record: OrderRecord) -> Result<(), OrderError> {
    ctx.jobs()
        .enqueue("send_cancellation", &json!({ "order_id": record.id }))?;
    Ok(())
}

#[step]
async fn charge(_ctx: &StepContext, input: OrderInput) -> Result<u64, OrderError> {
    if input.card_ok {
        Ok(input.cents)
    } else {
        Err(OrderError::Declined)
    }
}

/// Reports what the queue and the run's job list hold at this point.
#[step]
async fn inspect_queue(ctx: &StepContext) -> Result<(usize, usize), OrderError> {
    let dispatched = ctx.service::<Queue>().map_or(0, |q| q.jobs().len());
    Ok((dispatched, ctx.jobs().pending()))
}

#[workflow(hooks(order_placed: after<Placed>))]
async fn place_order(ctx: &WorkflowContext, input: OrderInput) -> Result<Placed, OrderError> {
    let order_id = create_order(ctx, input.clone()).await?;
    charge(ctx, input.clone()).await?;
    let (dispatched_during_run, pending_during_run) = inspect_queue(ctx).await?;
    let placed = Placed {
        order_id,
        email: input.email,
        dispatched_during_run,
        pending_during_run,
    };
    ctx.hook(PlaceOrder::ORDER_PLACED, &placed).await;
    Ok(placed)
}

/// An `after` handler enqueues a job too.
async fn sync_crm(ctx: &HookContext, placed: &Placed) -> Result<(), OrderError> {
    ctx.jobs().enqueue(
        "sync_crm",
        &json!({ "order_id": placed.order_id, "email": placed.email }),
    )?;
    Ok(())
}

fn engine(queue: &Queue) -> Engine {
    let mut hooks = Hooks::new();
    PlaceOrder::hooks(&mut hooks).order_placed(sync_crm);
    let sink = Arc::clone(&queue.jobs);
    Engine::builder()
        .hooks(hooks)
        .service(queue.clone())
        .jobs(move |job: Job| sink.lock().unwrap().push(job))
        .build()
}

fn order(card_ok: bool) -> OrderInput {
    OrderInput {
        email: "ada@example.com".into(),
        cents: 3_000,
        card_ok,
    }
}

#[tokio::test]
async fn the_jobs_of_a_completed_run_are_dispatched_in_enqueue_order_after_it_ends() {
    let queue = Queue::default();

    let outcome = engine(&queue).run::<PlaceOrder>(order(true)).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    // While the run went on, the job waited in the run.
    let placed = outcome.output().expect("completed");
    assert_eq!(placed.dispatched_during_run, 0);
    assert_eq!(placed.pending_during_run, 1);
    // Once it completed, both jobs went to the dispatcher, in the order they were enqueued.
    let expected = [
        Job::new(
            "send_confirmation",
            json!({ "order_id": "ord_11", "to": "ada@example.com" }),
        ),
        Job::new(
            "sync_crm",
            json!({ "order_id": "ord_11", "email": "ada@example.com" }),
        ),
    ];
    // Each with a stable id: the run, who enqueued it (step #0, handler 0 of hook firing 0),
    // and its number there.
    let run = outcome.run_id();
    let expected: Vec<Job> = expected
        .into_iter()
        .zip([format!("{run}/step0/0"), format!("{run}/hook0.0/0")])
        .map(|(job, id)| with_id(job, &id))
        .collect();
    assert_eq!(queue.jobs(), expected);
    assert_eq!(outcome.jobs(), expected);
    assert_eq!(outcome.jobs()[0].name(), "send_confirmation");
    assert_eq!(outcome.jobs()[0].payload()["to"], "ada@example.com");
    assert!(
        outcome
            .journal()
            .kinds()
            .any(|k| matches!(k, EventKind::JobsDispatched { count: 2 }))
    );
}

#[tokio::test]
async fn a_compensated_run_dispatches_nothing() {
    let queue = Queue::default();

    let outcome = engine(&queue).run::<PlaceOrder>(order(false)).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(OrderError::Declined))
    ));
    assert!(queue.jobs().is_empty(), "dispatched: {:?}", queue.jobs());
    assert!(outcome.jobs().is_empty());
    let kinds: Vec<&EventKind> = outcome.journal().kinds().collect();
    // The confirmation, and the cancellation enqueued by the compensation: both dropped (a
    // compensation cannot enqueue a job that outlives the failed run).
    assert!(
        kinds.contains(&&EventKind::JobsDiscarded { count: 2 }),
        "{kinds:?}"
    );
    assert!(
        !kinds
            .iter()
            .any(|k| matches!(k, EventKind::JobsDispatched { .. }))
    );
    // Discarded after compensating, before the run ends.
    let discarded = kinds
        .iter()
        .position(|k| matches!(k, EventKind::JobsDiscarded { .. }))
        .unwrap();
    assert!(matches!(
        kinds[discarded - 1],
        EventKind::CompensationCompleted { .. }
    ));
    assert!(matches!(kinds[discarded + 1], EventKind::RunEnded { .. }));
}

#[tokio::test]
async fn without_a_dispatcher_the_jobs_are_listed_in_the_outcome() {
    let outcome = Engine::new().run::<PlaceOrder>(order(true)).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        outcome.jobs(),
        [with_id(
            Job::new(
                "send_confirmation",
                json!({ "order_id": "ord_11", "to": "ada@example.com" }),
            ),
            &format!("{}/step0/0", outcome.run_id()),
        )]
    );
}

#[workflow]
async fn quote(_ctx: &WorkflowContext, cents: u64) -> Result<u64, OrderError> {
    Ok(cents)
}

#[tokio::test]
async fn a_run_without_jobs_records_no_job_event() {
    let queue = Queue::default();
    let outcome = engine(&queue).run::<Quote>(10).await;

    assert_eq!(outcome.output(), Some(&10));
    assert!(outcome.jobs().is_empty());
    assert!(!outcome.journal().kinds().any(|k| matches!(
        k,
        EventKind::JobsDispatched { .. } | EventKind::JobsDiscarded { .. }
    )));
    assert!(queue.jobs().is_empty());
}

/// `job` as the run gives it id `id` (through serde: ids are made by runs only).
fn with_id(job: Job, id: &str) -> Job {
    let mut json = serde_json::to_value(job).unwrap();
    json["id"] = id.into();
    serde_json::from_value(json).unwrap()
}
