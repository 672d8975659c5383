//! `Outcome::failed_at`: where a failed run failed (a step, a `before` hook's handler, a
//! nested workflow, a cancellation, the body), read from the journal, so that the recorded
//! outcome of a run that failed after a resume says the same.

use std::sync::Arc;
use std::time::Duration;

use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::{FailedAt, Slot, StoredStatus};

#[derive(Debug, thiserror::Error)]
enum ShopError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error("card declined")]
    Declined,
    #[error("the body gave up")]
    GaveUp,
}

#[step(compensate = release)]
async fn reserve(_ctx: &StepContext, total: u64) -> Result<StepResponse<u64, u64>, ShopError> {
    Ok(StepResponse::new(total, total))
}

async fn release(_ctx: &StepContext, _total: u64) -> Result<(), ShopError> {
    Ok(())
}

#[step]
async fn charge(_ctx: &StepContext, total: u64) -> Result<u64, ShopError> {
    if total > 100 {
        return Err(ShopError::Declined);
    }
    Ok(total)
}

#[workflow(hooks(approve: before<u64>, charged: after<u64>), events(go: u64))]
async fn order(ctx: &WorkflowContext, total: u64) -> Result<u64, ShopError> {
    let total = reserve(ctx, total).await?;
    if total == 7 {
        // Waits, so that a durable run is suspended and resumed before it fails.
        ctx.wait(Order::GO).await?;
    }
    let total = ctx.hook(Order::APPROVE, total).await?;
    let total = charge(ctx, total).await?;
    ctx.hook(Order::CHARGED, &total).await;
    if total == 13 {
        return Err(ShopError::GaveUp);
    }
    Ok(total)
}

#[workflow]
async fn parent(ctx: &WorkflowContext, total: u64) -> Result<u64, ShopError> {
    let total = reserve(ctx, total).await?;
    Order::call(ctx, total).await
}

async fn refuse_seven(_ctx: &HookContext, total: u64) -> Result<u64, ShopError> {
    if total == 7 {
        return Err(ShopError::Declined);
    }
    Ok(total)
}

async fn failing_observer(_ctx: &HookContext, _total: &u64) -> Result<(), ShopError> {
    Err(ShopError::Declined)
}

fn hooks() -> Hooks {
    let mut hooks = Hooks::new();
    Order::hooks(&mut hooks)
        .approve(refuse_seven)
        .charged(failing_observer);
    hooks
}

fn is_refuse_seven(at: Option<&FailedAt>) -> bool {
    matches!(
        at,
        Some(FailedAt::Hook { hook, handler, slot: Slot::Configured, firing: 0 })
            if hook == "approve" && handler.ends_with("refuse_seven")
    )
}

#[tokio::test]
async fn a_failed_step_is_where_the_run_failed() {
    let engine = Engine::builder().hooks(hooks()).build();
    let outcome = engine.run::<Order>(500).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(
        outcome.failed_at(),
        Some(&FailedAt::Step {
            name: "charge".into(),
            position: 1
        })
    );
}

#[tokio::test]
async fn a_nested_workflow_whose_body_failed_is_where_its_parent_failed() {
    let engine = Engine::builder().hooks(hooks()).build();
    // Without a store, the nested workflow's wait fails at once and its body returns it.
    let outcome = engine.run::<Parent>(7).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.failed_step(), None, "no step failed");
    assert_eq!(
        outcome.failed_at(),
        Some(&FailedAt::Nested {
            workflow: "order".into(),
            at: Box::new(FailedAt::Body),
        })
    );
}

#[workflow(hooks(approve: before<u64>))]
async fn quick(ctx: &WorkflowContext, total: u64) -> Result<u64, ShopError> {
    let total = reserve(ctx, total).await?;
    let total = ctx.hook(Quick::APPROVE, total).await?;
    Ok(total)
}

#[tokio::test]
async fn a_before_hook_abort_names_the_hook_and_handler() {
    let mut hooks = Hooks::new();
    Quick::hooks(&mut hooks).approve(refuse_seven);
    let engine = Engine::builder().hooks(hooks).build();
    let outcome = engine.run::<Quick>(7).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.failed_step(), None);
    assert!(
        is_refuse_seven(outcome.failed_at()),
        "{:?}",
        outcome.failed_at()
    );
}

#[tokio::test]
async fn a_failed_after_handler_is_not_where_the_run_failed() {
    let engine = Engine::builder().hooks(hooks()).build();
    let outcome = engine.run::<Order>(13).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.hook_errors().len(), 1);
    assert_eq!(outcome.failed_at(), Some(&FailedAt::Body));
}

#[tokio::test]
async fn a_nested_workflows_step_is_where_its_parent_failed() {
    let engine = Engine::builder().hooks(hooks()).build();
    let outcome = engine.run::<Parent>(500).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(
        outcome.failed_at(),
        Some(&FailedAt::Nested {
            workflow: "order".into(),
            at: Box::new(FailedAt::Step {
                name: "charge".into(),
                position: 2
            }),
        })
    );
}

#[tokio::test]
async fn a_completed_run_failed_nowhere() {
    let engine = Engine::builder().hooks(hooks()).build();
    let outcome = engine.run::<Order>(5).await;
    assert!(outcome.is_completed());
    assert_eq!(outcome.failed_at(), None);
}

/// A run suspended at its wait, resumed by the event, aborted by the hook after the resume:
/// the engine's recorded outcome (an idempotent start) reads the same place from the store.
async fn a_resumed_run_reports_where_it_failed(store: Arc<impl Store>) {
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Order>()
        .hooks(hooks())
        .build();
    let options = || RunOptions::new().idempotency_key("order-7");
    let outcome = engine.run_with::<Order>(7, options()).await;
    assert_eq!(
        outcome.status(),
        RunStatus::Waiting,
        "{:?}",
        outcome.error()
    );
    let run_id = outcome.run_id();
    engine.send(run_id, Order::GO, 1).await.unwrap();
    crate::waits::until_status(
        &store,
        run_id,
        StoredStatus::Compensated,
        Duration::from_secs(10),
    )
    .await;

    let recorded = engine.run_with::<Order>(7, options()).await;
    assert_eq!(recorded.run_id(), run_id);
    assert_eq!(recorded.status(), RunStatus::Compensated);
    assert!(
        is_refuse_seven(recorded.failed_at()),
        "{:?}",
        recorded.failed_at()
    );
}

on_every_store!(
    #[tokio::test]
    a_resumed_run_reports_where_it_failed
);
