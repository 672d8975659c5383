// A step with `compensate` that returns its output alone, without the compensation data.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[step(compensate = refund)]
async fn charge(_ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> {
    Ok(amount)
}

async fn refund(_ctx: &StepContext, amount: u64) -> Result<(), PaymentError> {
    println!("{amount}");
    Ok(())
}

fn main() {}
