// Waiting for a `payment_captured: Payment` event and using its payload as a `u32`.
use hookflow::prelude::*;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Payment {
    amount: u32,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CheckoutError(#[from] WaitError);

#[workflow(events(payment_captured: Payment))]
async fn checkout(ctx: &WorkflowContext, total: u32) -> Result<u32, CheckoutError> {
    let paid: u32 = ctx.wait(Checkout::PAYMENT_CAPTURED).await?;
    Ok(total + paid)
}

fn main() {}
