// A `before<Cart>` hook given a handler that takes a `u32`: the error is on the handler
// and shows the signature the hook expects.
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
    let cart = ctx.hook(Checkout::VALIDATE, cart).await?;
    Ok(cart.total)
}

async fn check_minimum(_ctx: &HookContext, total: u32) -> Result<u32, CheckoutError> {
    Ok(total)
}

fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).validate(check_minimum);
}
