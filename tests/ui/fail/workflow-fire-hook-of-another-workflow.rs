// Firing, in the checkout's body, a hook that the refund workflow declares.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ShopError(#[from] HookError);

#[workflow(hooks(before_refund: before<u64>))]
async fn refund(ctx: &WorkflowContext, amount: u64) -> Result<u64, ShopError> {
    let amount = ctx.hook(Refund::BEFORE_REFUND, amount).await?;
    Ok(amount)
}

#[workflow(hooks(validate: before<u64>))]
async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, ShopError> {
    let total = ctx.hook(Refund::BEFORE_REFUND, total).await?;
    Ok(total)
}

fn main() {}
