// A step that returns compensation data (`StepResponse`) but names no compensation.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[step]
async fn charge(_ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, String>, PaymentError> {
    Ok(StepResponse::new(amount, "charge_1".to_owned()))
}

fn main() {}
