//! `after<I, O>` hooks: each handler observes the operation's input and its result, by
//! reference; a failing handler is recorded in the outcome's hook errors and nothing is rolled
//! back, as for `after<T>`; a handler that completed before a crash does not run again when
//! the run resumes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hookflow::RunId;
use hookflow::prelude::*;
use hookflow::store::{MemoryStore, Store, StoredStatus};
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct World {
    /// What the webhook handler saw, one entry per call.
    webhooks: Mutex<Vec<String>>,
    refunds: AtomicUsize,
    receipts: AtomicUsize,
    hang: AtomicBool,
    hung: tokio::sync::Notify,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CheckoutData {
    cart_id: String,
    cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: String,
    cents: u64,
}

#[derive(Debug, thiserror::Error)]
enum ShopError {
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[derive(Debug, thiserror::Error)]
#[error("webhook endpoint answered 503 for order {0}")]
struct WebhookDown(String);

#[step(compensate = refund)]
async fn create_order(
    ctx: &StepContext,
    data: CheckoutData,
) -> Result<StepResponse<Order, u64>, ShopError> {
    let _ = ctx.service::<Arc<World>>()?;
    let order = Order {
        id: format!("ord_{}", data.cart_id),
        cents: data.cents,
    };
    Ok(StepResponse::new(order, data.cents))
}

async fn refund(ctx: &StepContext, _cents: u64) -> Result<(), ShopError> {
    ctx.service::<Arc<World>>()?
        .refunds
        .fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[step]
async fn send_receipt(ctx: &StepContext, order: Order) -> Result<String, ShopError> {
    let world = ctx.service::<Arc<World>>()?;
    world.receipts.fetch_add(1, Ordering::SeqCst);
    if world.hang.load(Ordering::SeqCst) {
        world.hung.notify_one();
        std::future::pending::<()>().await;
    }
    Ok(format!("receipt for {}", order.id))
}

#[workflow(hooks(order_created: after<CheckoutData, Order>))]
async fn checkout(ctx: &WorkflowContext, data: CheckoutData) -> Result<String, ShopError> {
    let order = create_order(ctx, data.clone()).await?;
    ctx.hook(Checkout::ORDER_CREATED, (&data, &order)).await;
    send_receipt(ctx, order).await
}

async fn webhook(ctx: &HookContext, data: &CheckoutData, order: &Order) -> Result<(), WebhookDown> {
    if let Ok(world) = ctx.service::<Arc<World>>() {
        world.webhooks.lock().unwrap().push(format!(
            "cart {} -> {} ({})",
            data.cart_id, order.id, order.cents
        ));
    }
    Ok(())
}

async fn webhook_down(
    _ctx: &HookContext,
    _data: &CheckoutData,
    order: &Order,
) -> Result<(), WebhookDown> {
    Err(WebhookDown(order.id.clone()))
}

fn data() -> CheckoutData {
    CheckoutData {
        cart_id: "c9".into(),
        cents: 4_200,
    }
}

fn engine(world: &Arc<World>, store: Option<&Arc<MemoryStore>>, failing: bool) -> Engine {
    let mut hooks = Hooks::new();
    let registrar = Checkout::hooks(&mut hooks).order_created(webhook);
    if failing {
        registrar.order_created(webhook_down);
    }
    let builder = Engine::builder()
        .worker_id("shop")
        .hooks(hooks)
        .service(Arc::clone(world))
        .workflow::<Checkout>();
    match store {
        Some(store) => builder.store(Arc::clone(store)).build(),
        None => builder.build(),
    }
}

#[tokio::test]
async fn each_handler_observes_the_input_and_the_result() {
    let world = Arc::new(World::default());
    let outcome = engine(&world, None, false).run::<Checkout>(data()).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        outcome.output().map(String::as_str),
        Some("receipt for ord_c9")
    );
    assert_eq!(
        *world.webhooks.lock().unwrap(),
        ["cart c9 -> ord_c9 (4200)"]
    );
    assert!(outcome.hook_errors().is_empty());
}

#[tokio::test]
async fn a_failing_handler_is_recorded_and_nothing_is_rolled_back() {
    let world = Arc::new(World::default());
    let outcome = engine(&world, None, true).run::<Checkout>(data()).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        world.refunds.load(Ordering::SeqCst),
        0,
        "a step was compensated"
    );
    assert_eq!(world.receipts.load(Ordering::SeqCst), 1);
    let errors = outcome.hook_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].hook, "order_created");
    assert_eq!(errors[0].handler, "webhook_down");
    assert_eq!(
        errors[0].error,
        "webhook endpoint answered 503 for order ord_c9"
    );
    assert!(!errors[0].panicked);
}

#[tokio::test]
async fn a_handler_that_completed_before_a_crash_does_not_run_again() {
    let world = Arc::new(World::default());
    let store = Arc::new(MemoryStore::default());
    world.hang.store(true, Ordering::SeqCst);
    let run_id = RunId::generate();
    let first = engine(&world, Some(&store), false);
    let run = first.run_with::<Checkout>(data(), RunOptions::new().run_id(run_id));
    tokio::select! {
        _ = run => panic!("the run should hang in send_receipt"),
        () = world.hung.notified() => {}
    }
    world.hang.store(false, Ordering::SeqCst);
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Running);

    let second = engine(&world, Some(&store), false);
    assert_eq!(second.resume(run_id).await.unwrap(), RunStatus::Completed);
    assert_eq!(
        world.webhooks.lock().unwrap().len(),
        1,
        "the after<I, O> handler ran again on resume"
    );
    assert_eq!(world.receipts.load(Ordering::SeqCst), 2);
}
