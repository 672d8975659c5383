// Waiting for an event the workflow does not declare.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CheckoutError(#[from] WaitError);

#[workflow(events(payment_captured: u32))]
async fn checkout(ctx: &WorkflowContext, total: u32) -> Result<u32, CheckoutError> {
    let refunded = ctx.wait(Checkout::PAYMENT_REFUNDED).await?;
    Ok(total - refunded)
}

fn main() {}
