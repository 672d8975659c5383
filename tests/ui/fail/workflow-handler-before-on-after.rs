// A before-style handler (`T` in, `Result<T, E>` out) registered on an `after` hook.
use hookflow::prelude::*;

#[derive(Debug, Clone)]
struct Order {
    id: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow(hooks(order_created: after<Order>))]
async fn checkout(ctx: &WorkflowContext, id: u64) -> Result<u64, CheckoutError> {
    let order = Order { id };
    ctx.hook(Checkout::ORDER_CREATED, &order).await;
    Ok(order.id)
}

async fn stamp_order(_ctx: &HookContext, order: Order) -> Result<Order, CheckoutError> {
    Ok(order)
}

fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).order_created(stamp_order);
}
