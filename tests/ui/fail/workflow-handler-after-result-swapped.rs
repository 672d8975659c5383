// An `after<CheckoutData, Order>` handler that takes the result before the input: the error
// is on the handler and shows the order the hook passes them in.
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
    _order: &Order,
    _data: &CheckoutData,
) -> Result<(), CheckoutError> {
    Ok(())
}

fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).order_created(send_webhook);
}
