// Registering on a hook that does not exist (a typo): the registrar has one method per
// declared hook, so rustc points at the misspelt name and suggests the right one.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CheckoutError(#[from] HookError);

#[workflow(hooks(validate: before<u64>))]
async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(ctx.hook(Checkout::VALIDATE, total).await?)
}

async fn check_minimum(_ctx: &HookContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(total)
}

fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).validat(check_minimum);
}
