//! `parallel!`: branches run concurrently, a failing branch lets its siblings finish, and
//! every completed step of every branch is compensated.

use std::sync::Mutex;
use std::time::Duration;

use hookflow::prelude::*;
use hookflow::{EventKind, RunError};

#[derive(Default)]
struct Ledger(Mutex<Vec<String>>);

impl Ledger {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Debug, thiserror::Error)]
enum StockError {
    #[error("warehouse {0} has no stock")]
    NoStock(String),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

/// Reserves in `warehouse` after `delay_ms`; fails for the warehouse named "empty", panics
/// for "broken".
#[step(compensate = release)]
async fn reserve(
    ctx: &StepContext,
    warehouse: String,
    delay_ms: u64,
) -> Result<StepResponse<String, String>, StockError> {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    match warehouse.as_str() {
        "empty" => return Err(StockError::NoStock(warehouse)),
        "broken" => panic!("warehouse {warehouse} crashed"),
        _ => {}
    }
    ctx.service::<Ledger>()?
        .push(format!("reserve {warehouse}"));
    Ok(StepResponse::new(format!("res-{warehouse}"), warehouse))
}

async fn release(ctx: &StepContext, warehouse: String) -> Result<(), StockError> {
    ctx.service::<Ledger>()?
        .push(format!("release {warehouse}"));
    Ok(())
}

#[workflow]
async fn split_reservation(
    ctx: &WorkflowContext,
    warehouses: Vec<(String, u64)>,
) -> Result<Vec<String>, StockError> {
    let first = reserve(ctx, "central".into(), 0).await?;
    let [(a, da), (b, db), (c, dc)] = <[(String, u64); 3]>::try_from(warehouses).unwrap();
    let (ra, rb, rc) = hookflow::parallel!(
        reserve(ctx, a, da),
        reserve(ctx, b, db),
        reserve(ctx, c, dc),
    )?;
    Ok(vec![first, ra, rb, rc])
}

fn engine() -> Engine {
    Engine::builder().service(Ledger::default()).build()
}

fn input(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(w, d)| ((*w).to_owned(), *d)).collect()
}

#[tokio::test(start_paused = true)]
async fn branches_run_concurrently_and_return_in_branch_order() {
    let engine = engine();
    let started = tokio::time::Instant::now();
    let outcome =
        SplitReservation::run(&engine, input(&[("east", 30), ("west", 10), ("north", 20)])).await;
    assert_eq!(
        outcome.output().unwrap(),
        &["res-central", "res-east", "res-west", "res-north"]
    );
    // Concurrent: the slowest branch's delay, not the sum.
    assert_eq!(started.elapsed(), Duration::from_millis(30));
    // Completion order is the delays' order.
    assert_eq!(
        engine.service::<Ledger>().unwrap().entries(),
        [
            "reserve central",
            "reserve west",
            "reserve north",
            "reserve east"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_branch_lets_siblings_finish_then_everything_is_compensated() {
    let engine = engine();
    // "empty" fails first (at 5 ms); "east" (20 ms) and "west" (10 ms) are still running.
    let outcome =
        SplitReservation::run(&engine, input(&[("east", 20), ("empty", 5), ("west", 10)])).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(StockError::NoStock(w))) if w == "empty"
    ));
    // The siblings finished after the failure, and all completed reservations were released
    // in reverse order of completion; the failed one was never compensated.
    assert_eq!(
        engine.service::<Ledger>().unwrap().entries(),
        [
            "reserve central",
            "reserve west",
            "reserve east",
            "release east",
            "release west",
            "release central",
        ]
    );
    let failed_at = outcome
        .journal()
        .kinds()
        .position(|k| matches!(k, EventKind::StepFailed { .. }))
        .unwrap();
    let completed_after = outcome
        .journal()
        .kinds()
        .skip(failed_at)
        .filter(|k| matches!(k, EventKind::StepCompleted { .. }))
        .count();
    assert_eq!(
        completed_after, 2,
        "east and west completed after empty failed"
    );
    hookflow::testing::check_saga(outcome.journal()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panicking_branch_lets_siblings_finish_then_fails_the_run() {
    let engine = engine();
    let outcome =
        SplitReservation::run(&engine, input(&[("broken", 1), ("east", 10), ("west", 5)])).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    match outcome.error() {
        Some(RunError::Panicked { step, message }) => {
            assert_eq!(step.as_deref(), Some("reserve"));
            assert_eq!(message, "warehouse broken crashed");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(
        engine.service::<Ledger>().unwrap().entries(),
        [
            "reserve central",
            "reserve west",
            "reserve east",
            "release east",
            "release west",
            "release central",
        ]
    );
    // The engine is not poisoned: the next run completes.
    let next = SplitReservation::run(&engine, input(&[("a", 1), ("b", 1), ("c", 1)])).await;
    assert!(next.is_completed());
}
