// #[step] on a function without its context parameter.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[step]
async fn charge(amount: u64) -> Result<u64, PaymentError> {
    Ok(amount)
}

fn main() {}
