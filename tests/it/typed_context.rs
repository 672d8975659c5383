//! The body's typed context: it fires only its own workflow's hooks (another workflow's is a
//! compile error, `tests/ui/fail/workflow-fire-hook-of-another-workflow.rs`, and refused at
//! run time through a plain `&WorkflowContext`), and it reads the additional data its workflow
//! declares (`#[workflow(additional_data = T)]`) without a `Result`, the engine having refused
//! a run whose data is missing or bad before it started.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use hookflow::MemoryStore;
use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::{
    AdditionalDataError, BodyCall, EnqueueError, FailedAt, LookupError, Rejection, RunError,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
enum ShopError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    AdditionalData(#[from] AdditionalDataError),
    #[error(transparent)]
    MissingService(#[from] MissingService),
}

/// How many times each side effect ran.
#[derive(Default)]
struct Effects {
    reserved: AtomicU32,
    released: AtomicU32,
    refund_handlers: AtomicU32,
}

fn effects(ctx: &RunContext) -> Result<&Arc<Effects>, MissingService> {
    ctx.service::<Arc<Effects>>()
}

#[step(compensate = release)]
async fn reserve(ctx: &StepContext, total: u64) -> Result<StepResponse<u64, u64>, ShopError> {
    effects(ctx)?.reserved.fetch_add(1, Ordering::SeqCst);
    Ok(StepResponse::new(total, total))
}

async fn release(ctx: &StepContext, _total: u64) -> Result<(), ShopError> {
    effects(ctx)?.released.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

// =============================================================================================
// Another workflow's hook, at run time
// =============================================================================================

#[workflow(hooks(before_refund: before<u64>, refunded: after<u64>))]
async fn refund(ctx: &WorkflowContext, amount: u64) -> Result<u64, ShopError> {
    let amount = ctx.hook(Refund::BEFORE_REFUND, amount).await?;
    ctx.hook(Refund::REFUNDED, &amount).await;
    Ok(amount)
}

/// Code that takes a plain `&WorkflowContext` (as a helper shared by bodies would): the
/// typed context's check does not reach it, the run-time refusal does.
async fn refund_hook_from_a_helper(ctx: &WorkflowContext, total: u64) -> Result<u64, HookError> {
    ctx.hook(Refund::BEFORE_REFUND, total).await
}

async fn refunded_hook_from_a_helper(ctx: &WorkflowContext, total: u64) {
    ctx.hook(Refund::REFUNDED, &total).await;
}

#[workflow(hooks(validate: before<u64>))]
async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, ShopError> {
    let total = reserve(ctx, total).await?;
    let total = ctx.hook(Checkout::VALIDATE, total).await?;
    let total = refund_hook_from_a_helper(ctx, total).await?;
    Ok(total)
}

#[workflow(hooks(shipped: after<u64>))]
async fn ship(ctx: &WorkflowContext, total: u64) -> Result<u64, ShopError> {
    refunded_hook_from_a_helper(ctx, total).await;
    ctx.hook(Ship::SHIPPED, &total).await;
    Ok(total)
}

async fn halve_refund(ctx: &HookContext, amount: u64) -> Result<u64, ShopError> {
    effects(ctx)?.refund_handlers.fetch_add(1, Ordering::SeqCst);
    Ok(amount / 2)
}

async fn note_refund(ctx: &HookContext, _amount: &u64) -> Result<(), ShopError> {
    effects(ctx)?.refund_handlers.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn refund_engine(effects: &Arc<Effects>) -> Engine {
    let mut hooks = Hooks::new();
    Refund::hooks(&mut hooks)
        .before_refund(halve_refund)
        .refunded(note_refund);
    Engine::builder()
        .hooks(hooks)
        .service(Arc::clone(effects))
        .build()
}

#[tokio::test]
async fn another_workflows_before_hook_is_refused_and_runs_none_of_its_handlers() {
    let effects = Arc::new(Effects::default());
    let engine = refund_engine(&effects);

    let outcome = engine.run::<Checkout>(100).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    let Some(RunError::Failed(ShopError::Hook(error))) = outcome.error() else {
        panic!("expected a hook error, got {:?}", outcome.error());
    };
    assert_eq!(error.workflow(), "refund");
    assert_eq!(error.hook(), "before_refund");
    assert!(
        error
            .to_string()
            .contains("fired in the body of workflow `checkout`, which does not declare it"),
        "{error}"
    );
    assert_eq!(
        effects.refund_handlers.load(Ordering::SeqCst),
        0,
        "refund's handlers never run in a checkout run"
    );
    assert_eq!(effects.released.load(Ordering::SeqCst), 1);
    // The refund workflow's own run still fires them.
    let outcome = engine.run::<Refund>(100).await;
    assert_eq!(outcome.output(), Some(&50));
    assert_eq!(effects.refund_handlers.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn another_workflows_after_hook_is_recorded_as_a_hook_error_and_runs_nothing() {
    let effects = Arc::new(Effects::default());
    let engine = refund_engine(&effects);

    let outcome = engine.run::<Ship>(7).await;

    assert_eq!(
        outcome.output(),
        Some(&7),
        "an after hook never fails a run"
    );
    assert_eq!(effects.refund_handlers.load(Ordering::SeqCst), 0);
    let [failure] = outcome.hook_errors() else {
        panic!("expected one hook error, got {:?}", outcome.hook_errors());
    };
    assert_eq!(failure.hook, "refunded");
    assert!(
        failure
            .error
            .contains("hook of workflow `refund` fired in the body of workflow `ship`"),
        "{}",
        failure.error
    );
}

#[test]
fn the_metadata_still_sees_the_bodys_calls() {
    assert_eq!(
        Checkout::META.body(),
        &[
            BodyCall::Step("reserve"),
            BodyCall::Hook("validate"),
            BodyCall::Step("refund_hook_from_a_helper"),
        ]
    );
    assert_eq!(
        Refund::META.body(),
        &[BodyCall::Hook("before_refund"), BodyCall::Hook("refunded")]
    );
}

// =============================================================================================
// Declared additional data
// =============================================================================================

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
}

/// What the storefront sends with every order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BrandData {
    brand_id: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BrandOnly {
    brand_id: String,
}

#[workflow(hooks(priced: before<u64>), additional_data = BrandData)]
async fn branded(ctx: &WorkflowContext, total: u64) -> Result<String, ShopError> {
    let total = reserve(ctx, total).await?;
    let total = ctx.hook(Branded::PRICED, total).await?;
    // Typed, and no `Result`: the engine checked it before the run started.
    let data: BrandData = ctx.additional_data();
    Ok(format!("{}:{}:{total}", data.brand_id, data.items.len()))
}

/// A handler reads its own view of the data, as before.
async fn brand_surcharge(ctx: &HookContext, total: u64) -> Result<u64, ShopError> {
    let brand: BrandOnly = ctx.additional_data()?;
    Ok(total + brand.brand_id.len() as u64)
}

fn branded_engine<S: Store>(store: Option<Arc<S>>, effects: &Arc<Effects>) -> Engine {
    let mut hooks = Hooks::new();
    Branded::hooks(&mut hooks).priced(brand_surcharge);
    let builder = Engine::builder()
        .hooks(hooks)
        .workflow::<Branded>()
        .service(Arc::clone(effects));
    match store {
        Some(store) => builder.store(store).build(),
        None => builder.build(),
    }
}

fn good_data() -> serde_json::Value {
    json!({ "brand_id": "acme", "items": [{ "sku": "mug", "qty": 1 }, { "sku": "tee", "qty": 2 }] })
}

#[tokio::test]
async fn declared_additional_data_is_typed_in_the_body_and_handlers_read_their_own() {
    let effects = Arc::new(Effects::default());
    let engine = branded_engine(None::<Arc<MemoryStore>>, &effects);
    let options = RunOptions::new().additional_data(good_data());

    let outcome = engine.run_with::<Branded>(10, options).await;

    assert_eq!(outcome.output().map(String::as_str), Some("acme:2:14"));
}

/// Asserts that `outcome` was refused for its additional data at `path` (`None`: missing),
/// before any step ran, and that the store (if any) has no such run.
async fn assert_refused<W: Workflow>(
    engine: &Engine,
    effects: &Effects,
    outcome: &Outcome<W>,
    path: Option<&str>,
    durable: bool,
) where
    W::Error: std::fmt::Debug,
{
    assert_eq!(outcome.status(), RunStatus::Rejected);
    assert_eq!(outcome.failed_at(), Some(&FailedAt::Start));
    let Some(RunError::Rejected(Rejection::AdditionalData(error))) = outcome.error() else {
        panic!(
            "expected an additional-data rejection, got {:?}",
            outcome.error()
        );
    };
    assert_eq!(error.path(), path, "{error}");
    if path.is_none() {
        assert!(
            matches!(error, AdditionalDataError::Missing { .. }),
            "{error:?}"
        );
    }
    assert_eq!(effects.reserved.load(Ordering::SeqCst), 0, "no step ran");
    assert_eq!(
        effects.released.load(Ordering::SeqCst),
        0,
        "nothing compensated"
    );
    assert!(outcome.journal().is_empty(), "{:?}", outcome.journal());
    if durable {
        assert!(
            matches!(
                engine.status(outcome.run_id()).await,
                Err(LookupError::UnknownRun(_))
            ),
            "a refused run is not recorded"
        );
    }
}

async fn bad_additional_data_is_refused_before_the_run_is_recorded(store: Arc<impl Store>) {
    let effects = Arc::new(Effects::default());
    let engine = branded_engine(Some(store), &effects);

    let options = RunOptions::new().additional_data(json!({ "brand_id": 42, "items": [] }));
    let outcome = engine.run_with::<Branded>(10, options).await;
    assert_refused(&engine, &effects, &outcome, Some("brand_id"), true).await;

    // A missing field is named in the message, at the path of the object that lacks it.
    let options = RunOptions::new().additional_data(json!({ "items": [] }));
    let outcome = engine.run_with::<Branded>(10, options).await;
    assert_refused(&engine, &effects, &outcome, Some("."), true).await;
    let message = outcome.error().map(ToString::to_string).unwrap_or_default();
    assert!(message.contains("missing field `brand_id`"), "{message}");

    let options = RunOptions::new().additional_data(json!({
        "brand_id": "acme",
        "items": [{ "sku": "mug", "qty": 1 }, { "sku": "tee", "qty": "two" }],
    }));
    let outcome = engine.run_with::<Branded>(10, options).await;
    assert_refused(&engine, &effects, &outcome, Some("items[1].qty"), true).await;

    let outcome = engine.run::<Branded>(10).await;
    assert_refused(&engine, &effects, &outcome, None, true).await;

    // Enqueueing refuses it too: no worker ever gets the run.
    let options = RunOptions::new().additional_data(json!({ "brand_id": 5, "items": [] }));
    match engine.enqueue_with::<Branded>(10, options).await {
        Err(EnqueueError::Rejected(Rejection::AdditionalData(error))) => {
            assert_eq!(error.path(), Some("brand_id"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    // A good one runs, on this store.
    let options = RunOptions::new().additional_data(good_data());
    let outcome = engine.run_with::<Branded>(10, options).await;
    assert_eq!(outcome.output().map(String::as_str), Some("acme:2:14"));
}

on_every_store!(
    #[tokio::test]
    bad_additional_data_is_refused_before_the_run_is_recorded
);

#[tokio::test]
async fn bad_additional_data_is_refused_without_a_store_too() {
    let effects = Arc::new(Effects::default());
    let engine = branded_engine(None::<Arc<MemoryStore>>, &effects);
    let options = RunOptions::new()
        .additional_data(json!({ "brand_id": "acme", "items": [{ "sku": "mug" }] }));
    let outcome = engine.run_with::<Branded>(10, options).await;
    assert_refused(&engine, &effects, &outcome, Some("items[0]"), false).await;
}
