// Firing a hook that the workflow does not declare.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CheckoutError(#[from] HookError);

#[workflow(hooks(validate: before<u64>))]
async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    let total = ctx.hook(Checkout::VALIDATE, total).await?;
    ctx.hook(Checkout::ORDER_CREATED, &total).await;
    Ok(total)
}

fn main() {}
