//! `engine.spawn(...)`: a run goes on to its end even if its handle is dropped.

use std::sync::Mutex;
use std::time::Duration;

use hookflow::prelude::*;
use tokio::sync::Notify;

#[derive(Default)]
struct Probe {
    log: Mutex<Vec<String>>,
    done: Notify,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ShipError(String);

impl From<hookflow::MissingService> for ShipError {
    fn from(e: hookflow::MissingService) -> Self {
        ShipError(e.to_string())
    }
}

#[step(compensate = cancel_label)]
async fn print_label(
    ctx: &StepContext,
    order: String,
) -> Result<StepResponse<(), String>, ShipError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    ctx.service::<Probe>()?
        .log
        .lock()
        .unwrap()
        .push(format!("label {order}"));
    Ok(StepResponse::new((), order))
}

async fn cancel_label(ctx: &StepContext, order: String) -> Result<(), ShipError> {
    let probe = ctx.service::<Probe>()?;
    probe.log.lock().unwrap().push(format!("cancel {order}"));
    probe.done.notify_one();
    Ok(())
}

#[step]
async fn hand_to_carrier(ctx: &StepContext, order: String) -> Result<(), ShipError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    if order.starts_with("bad") {
        return Err(ShipError("carrier refused".into()));
    }
    let probe = ctx.service::<Probe>()?;
    probe.log.lock().unwrap().push(format!("shipped {order}"));
    probe.done.notify_one();
    Ok(())
}

#[workflow]
async fn ship(ctx: &WorkflowContext, order: String) -> Result<(), ShipError> {
    print_label(ctx, order.clone()).await?;
    hand_to_carrier(ctx, order).await
}

#[tokio::test(start_paused = true)]
async fn a_spawned_run_completes_after_its_handle_is_dropped() {
    let engine = Engine::builder().service(Probe::default()).build();
    let probe = engine.service::<Probe>().unwrap();
    drop(
        engine
            .spawn::<Ship>("o1".into(), RunOptions::new())
            .unwrap(),
    );
    probe.done.notified().await;
    assert_eq!(*probe.log.lock().unwrap(), ["label o1", "shipped o1"]);
}

#[tokio::test(start_paused = true)]
async fn a_spawned_run_compensates_after_its_handle_is_dropped() {
    let engine = Engine::builder().service(Probe::default()).build();
    let probe = engine.service::<Probe>().unwrap();
    drop(
        engine
            .spawn::<Ship>("bad-o2".into(), RunOptions::new())
            .unwrap(),
    );
    probe.done.notified().await;
    assert_eq!(
        *probe.log.lock().unwrap(),
        ["label bad-o2", "cancel bad-o2"]
    );
}

#[tokio::test]
async fn a_spawned_run_can_be_awaited() {
    let engine = Engine::builder().service(Probe::default()).build();
    let outcome = engine
        .spawn::<Ship>("o3".into(), RunOptions::new())
        .unwrap()
        .await
        .unwrap();
    assert!(outcome.is_completed());
}

#[test]
fn spawning_outside_a_runtime_is_an_error_not_a_panic() {
    let engine = Engine::new();
    let err = engine
        .spawn::<Ship>("o4".into(), RunOptions::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot spawn a run of `ship`: not inside a tokio runtime"
    );
}
