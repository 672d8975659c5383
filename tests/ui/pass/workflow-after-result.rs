// An `after<I, O>` hook: fired with the input and the result by reference, its handlers
// observe both; a handler may be named and given a time limit.
use std::time::Duration;

use hookflow::prelude::*;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CheckoutData {
    cents: u64,
}

#[derive(Debug, Clone)]
struct Order {
    id: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow(hooks(order_created: after<CheckoutData, Order>))]
async fn checkout(ctx: &WorkflowContext, data: CheckoutData) -> Result<u64, CheckoutError> {
    let order = Order { id: data.cents };
    ctx.hook(Checkout::ORDER_CREATED, (&data, &order)).await;
    Ok(order.id)
}

async fn send_webhook(
    _ctx: &HookContext,
    data: &CheckoutData,
    order: &Order,
) -> Result<(), CheckoutError> {
    assert_eq!(data.cents, order.id);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .order_created(send_webhook)
        .named("order-webhook")
        .timeout(Duration::from_secs(20));
    let engine = Engine::builder().hooks(hooks).build();
    let outcome = Checkout::run(&engine, CheckoutData { cents: 7 }).await;
    assert_eq!(outcome.output(), Some(&7));
    assert_eq!(
        engine.handlers_of::<Checkout>("order_created"),
        [(hookflow::Slot::Configured, "order-webhook", None)]
    );
}
