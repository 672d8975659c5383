// A value that is not a function at all, registered as a hook handler: the
// handler trait's own message explains what a handler looks like.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CheckoutError(#[from] HookError);

#[workflow(hooks(validate: before<u64>))]
async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(ctx.hook(Checkout::VALIDATE, total).await?)
}

fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).validate("check_minimum");
}
