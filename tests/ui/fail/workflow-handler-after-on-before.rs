// An after-style handler (`&T` in, `Result<(), E>` out) registered on a `before` hook.
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

async fn log_cart(_ctx: &HookContext, cart: &Cart) -> Result<(), CheckoutError> {
    println!("{}", cart.total);
    Ok(())
}

fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).validate(log_cart);
}
