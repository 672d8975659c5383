// #[step] on a function that is not `async`.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[step]
fn charge(_ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> {
    Ok(amount)
}

fn main() {}
