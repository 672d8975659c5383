// Waiting, in the checkout's body, for an event that the refund workflow declares.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ShopError(#[from] WaitError);

#[workflow(events(approved: bool))]
async fn refund(ctx: &WorkflowContext, amount: u32) -> Result<u32, ShopError> {
    let approved = ctx.wait(Refund::APPROVED).await?;
    Ok(if approved { amount } else { 0 })
}

#[workflow(events(payment_captured: u32))]
async fn checkout(ctx: &WorkflowContext, total: u32) -> Result<u32, ShopError> {
    let approved = ctx.wait(Refund::APPROVED).await?;
    Ok(if approved { total } else { 0 })
}

fn main() {}
