// Step options that contradict each other or cannot work, all reported in one build: a
// best-effort step with a compensation, `retry` written as `retry = 3`, a zero timeout,
// `retry(max = 0)` and `compensate_retry` without a compensation.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[step(best_effort, compensate = refund)]
async fn charge(_ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PaymentError> {
    Ok(StepResponse::new(amount, amount))
}

async fn refund(_ctx: &StepContext, _amount: u64) -> Result<(), PaymentError> {
    Ok(())
}

#[step(retry = 3, timeout = "0s")]
async fn reserve(_ctx: &StepContext, qty: u32) -> Result<u32, PaymentError> {
    Ok(qty)
}

#[step(retry(max = 0), compensate_retry(max = 2))]
async fn notify(_ctx: &StepContext, id: u64) -> Result<u64, PaymentError> {
    Ok(id)
}

fn main() {}
