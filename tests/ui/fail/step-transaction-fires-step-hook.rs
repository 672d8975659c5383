// A transactional step firing a `step` hook: its handlers are steps, which commit on their
// own, so they cannot run inside the transaction.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("shop error")]
enum ShopError {
    Hook(#[from] HookError),
}

#[step(transaction)]
async fn create_order(ctx: &TxContext, total: u64) -> Result<u64, ShopError> {
    let notified = ctx.hook(Checkout::NOTIFY, total).await?;
    Ok(total + notified.len() as u64)
}

#[workflow(hooks(notify: step<u64, u64>))]
async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, ShopError> {
    create_order(ctx, total).await
}

fn main() {}
