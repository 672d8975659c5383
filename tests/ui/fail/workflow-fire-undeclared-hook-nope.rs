// Firing a hook point that no workflow declares (`Checkout::NOPE`).
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CheckoutError(#[from] HookError);

#[workflow(hooks(validate: before<u64>))]
async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    let total = ctx.hook(Checkout::NOPE, total).await?;
    Ok(total)
}

fn main() {}
