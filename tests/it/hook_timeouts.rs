//! Hook handler time limits: the engine's default (`EngineBuilder::hook_timeout`) and a
//! handler's own (`.timeout(..)` after its registration). A `before` handler past its limit
//! aborts the run (completed steps are compensated) with a `HandlerTimeout` naming the
//! handler, the hook and the limit; an `after` handler past its limit is recorded in the
//! outcome's hook errors and nothing is rolled back. A limit applies to the handler
//! registered just before it only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hookflow::prelude::*;
use hookflow::{HandlerTimeout, RunError};

#[derive(Default)]
struct Shop {
    released: AtomicUsize,
    finished: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
enum ShopError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[step(compensate = release)]
async fn hold_stock(ctx: &StepContext, cents: u64) -> Result<StepResponse<u64, u64>, ShopError> {
    let _ = ctx.service::<Arc<Shop>>()?;
    Ok(StepResponse::new(cents, cents))
}

async fn release(ctx: &StepContext, _cents: u64) -> Result<(), ShopError> {
    ctx.service::<Arc<Shop>>()?
        .released
        .fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[workflow(hooks(validate: before<u64>, placed: after<u64>))]
async fn place(ctx: &WorkflowContext, cents: u64) -> Result<u64, ShopError> {
    let cents = hold_stock(ctx, cents).await?;
    let cents = ctx.hook(Place::VALIDATE, cents).await?;
    ctx.hook(Place::PLACED, &cents).await;
    Ok(cents)
}

/// A fraud check whose service never answers.
async fn fraud_check_hangs(_ctx: &HookContext, cents: u64) -> Result<u64, std::io::Error> {
    std::future::pending::<()>().await;
    Ok(cents)
}

async fn crm_hangs(_ctx: &HookContext, _cents: &u64) -> Result<(), std::io::Error> {
    std::future::pending::<()>().await;
    Ok(())
}

/// Takes a while (200 ms), then finishes.
async fn slow_crm(ctx: &HookContext, _cents: &u64) -> Result<(), std::io::Error> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    ctx.service::<Arc<Shop>>()
        .map_err(std::io::Error::other)?
        .finished
        .fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Runs `place`, failing the test if the run does not end within 10 s (a handler's time
/// limit did not apply).
async fn run(engine: &Engine) -> Outcome<Place> {
    tokio::time::timeout(Duration::from_secs(10), engine.run::<Place>(4_200))
        .await
        .expect("the run hung: the handler's time limit did not apply")
}

fn engine(shop: &Arc<Shop>, hooks: Hooks, default: Option<Duration>) -> Engine {
    let builder = Engine::builder().hooks(hooks).service(Arc::clone(shop));
    match default {
        Some(limit) => builder.hook_timeout(limit).build(),
        None => builder.build(),
    }
}

#[tokio::test]
async fn a_before_handler_past_the_engine_limit_aborts_the_run_and_compensates() {
    let shop = Arc::new(Shop::default());
    let mut hooks = Hooks::new();
    Place::hooks(&mut hooks).validate(fraud_check_hangs);
    let engine = engine(&shop, hooks, Some(Duration::from_millis(50)));

    let outcome = run(&engine).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(
        shop.released.load(Ordering::SeqCst),
        1,
        "the hold was not released"
    );
    let Some(RunError::Failed(ShopError::Hook(error))) = outcome.error() else {
        panic!("expected a hook error, got {:?}", outcome.error());
    };
    assert!(error.is_timeout());
    assert_eq!(error.handler(), "fraud_check_hangs");
    let timeout = error
        .source_error()
        .downcast_ref::<HandlerTimeout>()
        .unwrap();
    assert_eq!(
        (timeout.hook(), timeout.handler(), timeout.limit()),
        ("validate", "fraud_check_hangs", Duration::from_millis(50))
    );
    assert_eq!(
        error.to_string(),
        "hook `place.validate`: handler `fraud_check_hangs` (configured slot) failed: \
         handler `fraud_check_hangs` of hook `validate` did not finish within its time limit of 50ms"
    );
}

#[tokio::test]
async fn an_after_handler_past_its_own_limit_is_recorded_and_nothing_is_rolled_back() {
    let shop = Arc::new(Shop::default());
    let mut hooks = Hooks::new();
    Place::hooks(&mut hooks)
        .placed(crm_hangs)
        .timeout(Duration::from_millis(50));
    // No engine default: the handler's own limit is the one that applies.
    let engine = engine(&shop, hooks, None);

    let outcome = run(&engine).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(outcome.output(), Some(&4_200));
    assert_eq!(
        shop.released.load(Ordering::SeqCst),
        0,
        "a step was compensated"
    );
    let errors = outcome.hook_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].hook, errors[0].handler), ("placed", "crm_hangs"));
    assert_eq!(
        errors[0].error,
        "handler `crm_hangs` of hook `placed` did not finish within its time limit of 50ms"
    );
}

#[tokio::test]
async fn a_handler_limit_overrides_the_engine_default_and_applies_to_that_handler_only() {
    let shop = Arc::new(Shop::default());
    let mut hooks = Hooks::new();
    Place::hooks(&mut hooks)
        // Its own limit (10 s) instead of the engine's (50 ms): it finishes.
        .placed(slow_crm)
        .timeout(Duration::from_secs(10))
        // Registered after: the engine's limit applies to it, not the one above.
        .placed(crm_hangs);
    let engine = engine(&shop, hooks, Some(Duration::from_millis(50)));

    let outcome = run(&engine).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        shop.finished.load(Ordering::SeqCst),
        1,
        "slow_crm was stopped"
    );
    let errors = outcome.hook_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].handler, "crm_hangs");
    assert!(
        errors[0].error.contains("time limit of 50ms"),
        "{}",
        errors[0].error
    );
}
