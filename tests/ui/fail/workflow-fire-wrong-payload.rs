// Firing a `before<Cart>` hook with a `u32`.
use hookflow::prelude::*;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Cart {
    total: u64,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CheckoutError(#[from] HookError);

#[workflow(hooks(validate: before<Cart>))]
async fn checkout(ctx: &WorkflowContext, cart: Cart) -> Result<u64, CheckoutError> {
    ctx.hook(Checkout::VALIDATE, 42u32).await?;
    Ok(cart.total)
}

fn main() {}
