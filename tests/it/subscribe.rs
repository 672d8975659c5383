//! `engine.subscribe(run_id)`: an application follows a long run, event by event.

use std::time::Duration;

use hookflow::prelude::*;
use hookflow::{EventKind, RunId};

#[derive(Debug, thiserror::Error)]
#[error("import failed")]
struct ImportError;

#[step(compensate = drop_batch)]
async fn import_batch(
    _ctx: &StepContext,
    batch: u32,
) -> Result<StepResponse<u32, u32>, ImportError> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    if batch == 99 {
        return Err(ImportError);
    }
    Ok(StepResponse::new(batch, batch))
}

async fn drop_batch(_ctx: &StepContext, _batch: u32) -> Result<(), ImportError> {
    Ok(())
}

#[workflow]
async fn import(ctx: &WorkflowContext, batches: Vec<u32>) -> Result<u32, ImportError> {
    let mut done = 0;
    for batch in batches {
        done += import_batch(ctx, batch).await?;
    }
    Ok(done)
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_sees_every_event_of_its_run_and_only_those() {
    let engine = Engine::new();
    let run_id = RunId::generate();
    let mut events = engine.subscribe(run_id);
    let handle = engine
        .spawn::<Import>(vec![1, 2, 3], RunOptions::new().run_id(run_id))
        .unwrap();
    // Another run at the same time: not ours.
    let other = engine.spawn::<Import>(vec![7], RunOptions::new()).unwrap();

    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        seen.push(event);
    }
    let outcome = handle.await.unwrap();
    other.await.unwrap();
    assert_eq!(outcome.run_id(), run_id);
    assert_eq!(
        &seen,
        outcome.journal().events(),
        "the same events, in order"
    );
    assert!(matches!(
        seen.last().map(|e| &e.kind),
        Some(EventKind::RunEnded {
            status: RunStatus::Completed
        })
    ));
    assert_eq!(events.missed(), 0);
    assert!(events.next().await.is_none(), "nothing after the end");
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_follows_a_failing_run_through_its_compensation() {
    let engine = Engine::new();
    let run_id = RunId::generate();
    let mut events = engine.subscribe(run_id);
    let handle = engine
        .spawn::<Import>(vec![1, 99], RunOptions::new().run_id(run_id))
        .unwrap();
    let mut kinds = Vec::new();
    while let Some(event) = events.next().await {
        kinds.push(event.kind);
    }
    handle.await.unwrap();
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EventKind::CompensationCompleted { .. }))
    );
    assert!(matches!(
        kinds.last(),
        Some(EventKind::RunEnded {
            status: RunStatus::Compensated
        })
    ));
}
