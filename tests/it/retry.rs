//! Retrying the failed compensations of a `CompensationFailed` run (`Engine::retry`): the
//! request is recorded with who asked, the run runs again each compensation that had failed
//! (never one that completed), in the saga's order, with the same idempotency keys, and ends
//! `Compensated` once they all succeed; a run that did not end `CompensationFailed` is
//! refused. An engine that does not know the workflow records the request and a worker that
//! does carries it out. On every store; and the checkout example's stuck run, retried once
//! the west warehouse is back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookflow::compensation::CompensationFailure;
use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::{Actor, EventKind, Retried, RetryError, RunId, StoredStatus, Worker};

/// The outside world: what the steps and compensations did, in order.
#[derive(Default)]
pub(crate) struct Agency {
    log: Mutex<Vec<String>>,
    /// The bookings whose cancellation fails (the partner is down).
    down: Mutex<Vec<String>>,
    /// Whether the payment is declined.
    decline: Mutex<bool>,
    /// The booking whose cancellation hangs (its process is to be "killed" there), after
    /// saying so on `hung`.
    hang: Mutex<Option<String>>,
    hung: tokio::sync::Notify,
}

impl Agency {
    fn push(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    /// How many lines of the log start with `prefix`.
    pub(crate) fn count(&self, prefix: &str) -> usize {
        self.log().iter().filter(|l| l.starts_with(prefix)).count()
    }
    fn set_down(&self, what: &[&str]) {
        *self.down.lock().unwrap() = what.iter().map(|w| (*w).to_owned()).collect();
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TripError {
    #[error("{0} is down")]
    Down(String),
    #[error("payment declined")]
    Declined,
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[step(compensate = cancel)]
pub(crate) async fn book(
    ctx: &StepContext,
    what: String,
) -> Result<StepResponse<String, String>, TripError> {
    let agency = ctx.service::<Arc<Agency>>()?;
    agency.push(format!("book {what} {}", ctx.idempotency_key()));
    Ok(StepResponse::new(format!("booked {what}"), what))
}

async fn cancel(ctx: &StepContext, what: String) -> Result<(), TripError> {
    let agency = ctx.service::<Arc<Agency>>()?;
    if agency.down.lock().unwrap().contains(&what) {
        agency.push(format!("cancel {what} refused"));
        return Err(TripError::Down(what));
    }
    if agency.hang.lock().unwrap().as_ref() == Some(&what) {
        agency.hung.notify_one();
        std::future::pending::<()>().await;
    }
    agency.push(format!("cancelled {what} {}", ctx.idempotency_key()));
    Ok(())
}

#[step]
pub(crate) async fn pay(ctx: &StepContext, total: u32) -> Result<u32, TripError> {
    let agency = ctx.service::<Arc<Agency>>()?;
    if *agency.decline.lock().unwrap() {
        return Err(TripError::Declined);
    }
    agency.push(format!("pay {total} {}", ctx.idempotency_key()));
    Ok(total)
}

#[workflow]
pub(crate) async fn trip(ctx: &WorkflowContext, who: String) -> Result<u32, TripError> {
    book(ctx, "flight".into()).await?;
    book(ctx, "hotel".into()).await?;
    book(ctx, "car".into()).await?;
    pay(ctx, u32::try_from(who.len()).unwrap_or(0)).await
}

async fn flag(ctx: &HookContext, failure: &CompensationFailure) -> Result<(), TripError> {
    let steps: Vec<String> = failure
        .failed
        .iter()
        .map(|f| f.position.to_string())
        .collect();
    ctx.service::<Arc<Agency>>()?
        .push(format!("flagged {}", steps.join(",")));
    Ok(())
}

fn hooks() -> Hooks {
    let mut hooks = Hooks::new();
    Trip::hooks(&mut hooks).on_compensation_failed(flag);
    hooks
}

fn engine<S: Store>(store: &Arc<S>, agency: &Arc<Agency>, knows_trip: bool) -> Engine {
    let builder = Engine::builder()
        .store(Arc::clone(store))
        .hooks(hooks())
        .service(Arc::clone(agency));
    if knows_trip {
        builder.workflow::<Trip>().build()
    } else {
        builder.build()
    }
}

/// The retry requests in run `run_id`'s journal: who asked, in order.
async fn retry_requests<S: Store>(store: &Arc<S>, run_id: RunId) -> Vec<String> {
    let (_, events) = store.load(run_id).await.unwrap();
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryRequested { actor } => Some(actor.id().to_owned()),
            _ => None,
        })
        .collect()
}

/// A trip whose payment is declined while the hotel and the flight partners are down: the car
/// is cancelled, the hotel and the flight are not.
async fn stuck_trip(engine: &Engine, agency: &Agency) -> RunId {
    *agency.decline.lock().unwrap() = true;
    agency.set_down(&["hotel", "flight"]);
    let outcome = engine.run::<Trip>("ada".into()).await;
    assert_eq!(outcome.status(), RunStatus::CompensationFailed);
    assert_eq!(agency.count("cancelled car "), 1);
    assert_eq!(agency.count("cancel hotel refused"), 1);
    assert_eq!(agency.count("cancel flight refused"), 1);
    assert_eq!(agency.count("flagged 1,0"), 1, "{:?}", agency.log());
    outcome.run_id()
}

async fn a_retry_runs_again_only_the_failed_compensations_until_they_succeed<S: Store>(
    store: Arc<S>,
) {
    let agency = Arc::new(Agency::default());
    let engine = engine(&store, &agency, true);
    let run_id = stuck_trip(&engine, &agency).await;

    // Still down: both fail again, the car is not cancelled twice, the hook fires again.
    let retried = engine.retry(run_id, Actor::user("ops-1")).await.unwrap();
    assert!(
        matches!(retried, Retried::Ran(RunStatus::CompensationFailed)),
        "{retried:?}"
    );
    assert_eq!(agency.count("cancelled car "), 1);
    assert_eq!(agency.count("cancel hotel refused"), 2);
    assert_eq!(agency.count("cancel flight refused"), 2);
    assert_eq!(agency.count("flagged 1,0"), 2, "{:?}", agency.log());

    // The hotel is back, not the flight: the hotel is cancelled, the flight fails again.
    agency.set_down(&["flight"]);
    let retried = engine.retry(run_id, Actor::user("ops-2")).await.unwrap();
    assert!(matches!(
        retried,
        Retried::Ran(RunStatus::CompensationFailed)
    ));
    assert_eq!(agency.count("cancelled hotel "), 1);
    assert_eq!(agency.count("cancel flight refused"), 3);
    assert_eq!(agency.count("flagged 0"), 1, "{:?}", agency.log());

    // Everything is back: the flight is cancelled, once, and the run is compensated.
    agency.set_down(&[]);
    let retried = engine.retry(run_id, Actor::user("ops-3")).await.unwrap();
    assert!(matches!(retried, Retried::Ran(RunStatus::Compensated)));
    for what in ["car", "hotel", "flight"] {
        let key = |n: u32| format!("cancelled {what} {run_id}:{n}:book:undo");
        let position = ["flight", "hotel", "car"]
            .iter()
            .position(|w| *w == what)
            .unwrap();
        let line = key(u32::try_from(position).unwrap());
        assert_eq!(
            agency.log().iter().filter(|l| **l == line).count(),
            1,
            "{line}: {:?}",
            agency.log()
        );
    }
    let summary = engine.status(run_id).await.unwrap();
    assert_eq!(summary.status, StoredStatus::Compensated);
    assert_eq!(
        retry_requests(&store, run_id).await,
        ["ops-1", "ops-2", "ops-3"]
    );

    // Nothing left to retry.
    let refused = engine
        .retry(run_id, Actor::user("ops-4"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            RetryError::NotCompensationFailed {
                status: StoredStatus::Compensated,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(retry_requests(&store, run_id).await.len(), 3);
}

async fn the_failed_compensations_run_again_in_the_saga_order<S: Store>(store: Arc<S>) {
    let agency = Arc::new(Agency::default());
    let engine = engine(&store, &agency, true);
    let run_id = stuck_trip(&engine, &agency).await;
    agency.set_down(&[]);
    let before = agency.log().len();
    let retried = engine.retry(run_id, Actor::user("ops")).await.unwrap();
    assert!(matches!(retried, Retried::Ran(RunStatus::Compensated)));
    let undone: Vec<String> = agency.log()[before..]
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(undone, ["cancelled hotel", "cancelled flight"]);
}

async fn a_run_that_did_not_end_compensation_failed_is_not_retried<S: Store>(store: Arc<S>) {
    let agency = Arc::new(Agency::default());
    let engine = engine(&store, &agency, true);
    let completed = engine.run::<Trip>("bo".into()).await;
    assert_eq!(completed.status(), RunStatus::Completed);
    let refused = engine
        .retry(completed.run_id(), Actor::user("ops"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            RetryError::NotCompensationFailed {
                status: StoredStatus::Completed,
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(retry_requests(&store, completed.run_id()).await.is_empty());
    let unknown = RunId::generate();
    assert!(matches!(
        engine.retry(unknown, Actor::user("ops")).await,
        Err(RetryError::UnknownRun(id)) if id == unknown
    ));
}

async fn an_engine_without_the_workflow_records_the_retry_for_a_worker<S: Store>(store: Arc<S>) {
    let agency = Arc::new(Agency::default());
    let blind = engine(&store, &agency, false);
    let run_id = stuck_trip(&blind, &agency).await;
    agency.set_down(&[]);
    let retried = blind.retry(run_id, Actor::user("ops")).await.unwrap();
    assert!(matches!(retried, Retried::Requested(None)), "{retried:?}");
    assert_eq!(
        blind.status(run_id).await.unwrap().status,
        StoredStatus::Running
    );
    assert_eq!(agency.count("cancelled hotel "), 0);

    // A worker that knows the workflow claims it and carries the retry out.
    let worker_engine = engine(&store, &agency, true);
    let worker = Worker::new(&worker_engine)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while blind.status(run_id).await.unwrap().status != StoredStatus::Compensated {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", agency.log());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(agency.count("cancelled hotel "), 1);
    assert_eq!(agency.count("cancelled flight "), 1);
    assert_eq!(agency.count("cancelled car "), 1);
}

// ---- the checkout example's fourth checkout -------------------------------------------------

async fn the_stuck_checkout_is_compensated_once_the_west_warehouse_is_back<S: Store>(
    store: Arc<S>,
) {
    use crate::workflow::{Checkout, CheckoutInput, Shop, hooks, shop};
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .hooks(hooks())
        .service(shop())
        .workflow::<Checkout>()
        .build();
    let shop = engine.service::<Shop>().unwrap();
    shop.lock().warehouse_down_on_release = Some("west".into());
    let input = CheckoutInput {
        cart_id: "cart_stuck".into(),
    };
    let stuck = Checkout::run(&engine, input).await;
    assert_eq!(stuck.status(), RunStatus::CompensationFailed);
    let run_id = stuck.run_id();
    let mug = || shop.lock().warehouse_stock[&("west".into(), "mug".into())];
    assert_eq!(mug(), 4, "the west reservation is stuck");

    // Asked while the warehouse is still down: nothing changes but the journal.
    let retried = engine.retry(run_id, Actor::user("support")).await.unwrap();
    assert!(matches!(
        retried,
        Retried::Ran(RunStatus::CompensationFailed)
    ));
    assert_eq!(mug(), 4);

    shop.lock().warehouse_down_on_release = None;
    let retried = engine.retry(run_id, Actor::user("support")).await.unwrap();
    assert!(
        matches!(retried, Retried::Ran(RunStatus::Compensated)),
        "{retried:?}"
    );
    {
        let state = shop.lock();
        assert_eq!(state.warehouse_stock[&("west".into(), "mug".into())], 5);
        assert_eq!(state.warehouse_stock[&("east".into(), "tshirt".into())], 10);
        // Each undo applied once: the authorization voided once (a second void would read
        // `voided (voided (...))`), the order cancelled once (a second `cancel_order` would
        // overwrite the note `on_compensation_failed` left).
        let voided: Vec<&String> = state.payments.values().collect();
        assert_eq!(voided.len(), 1);
        assert!(
            voided[0].starts_with("voided (authorized") && voided[0].matches("voided").count() == 1,
            "{voided:?}"
        );
        let orders: Vec<&String> = state.orders.values().collect();
        assert_eq!(orders.len(), 1);
        assert!(
            orders[0].starts_with("cancelled, NEEDS ATTENTION"),
            "{orders:?}"
        );
    }
    // In the journal: every compensation completed exactly once, the west release after
    // two failed attempts.
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Compensated);
    let mut completed = std::collections::BTreeMap::new();
    let mut failed = 0;
    for event in &events {
        match &event.kind {
            EventKind::CompensationCompleted { step, position } => {
                *completed.entry((step.to_string(), *position)).or_insert(0) += 1;
            }
            EventKind::CompensationFailed { step, .. } => {
                assert_eq!(step, "reserve_inventory");
                failed += 1;
            }
            _ => {}
        }
    }
    assert_eq!(failed, 2);
    assert_eq!(completed.len(), 4, "{completed:?}");
    assert!(completed.values().all(|n| *n == 1), "{completed:?}");
}

async fn a_retry_interrupted_half_way_goes_on_where_it_stopped<S: Store>(store: Arc<S>) {
    let agency = Arc::new(Agency::default());
    let blind = engine(&store, &agency, false);
    let run_id = stuck_trip(&blind, &agency).await;
    assert!(matches!(
        blind.retry(run_id, Actor::user("ops")).await.unwrap(),
        Retried::Requested(None)
    ));
    // The partners are back; the process dies while cancelling the flight, after the hotel.
    agency.set_down(&[]);
    *agency.hang.lock().unwrap() = Some("flight".into());
    let engine = engine(&store, &agency, true);
    let retrying = tokio::spawn({
        let engine = engine.clone();
        async move { engine.resume(run_id).await }
    });
    agency.hung.notified().await;
    retrying.abort();
    assert!(retrying.await.unwrap_err().is_cancelled());
    assert_eq!(agency.count("cancelled hotel "), 1);

    // Resumed: the hotel's cancellation, recorded completed, does not run again.
    *agency.hang.lock().unwrap() = None;
    assert_eq!(engine.resume(run_id).await.unwrap(), RunStatus::Compensated);
    assert_eq!(agency.count("cancelled hotel "), 1, "{:?}", agency.log());
    assert_eq!(agency.count("cancelled flight "), 1);
    assert_eq!(agency.count("cancelled car "), 1);
}

on_every_store!(
    #[tokio::test]
    a_retry_interrupted_half_way_goes_on_where_it_stopped,
    the_stuck_checkout_is_compensated_once_the_west_warehouse_is_back,
    a_retry_runs_again_only_the_failed_compensations_until_they_succeed,
    the_failed_compensations_run_again_in_the_saga_order,
    a_run_that_did_not_end_compensation_failed_is_not_retried,
    an_engine_without_the_workflow_records_the_retry_for_a_worker,
);

#[tokio::test]
async fn an_engine_without_a_store_has_nothing_to_retry() {
    let engine = Engine::new();
    assert!(matches!(
        engine.retry(RunId::generate(), Actor::user("ops")).await,
        Err(RetryError::NoStore(_))
    ));
}
