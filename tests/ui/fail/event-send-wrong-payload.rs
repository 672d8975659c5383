// Sending a `payment_captured: Payment` event with a `u32` payload.
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
    let payment = ctx.wait(Checkout::PAYMENT_CAPTURED).await?;
    Ok(total + payment.amount)
}

async fn webhook(engine: &Engine, run_id: hookflow::RunId) {
    let _ = engine.send(run_id, Checkout::PAYMENT_CAPTURED, 42u32).await;
}

fn main() {}
