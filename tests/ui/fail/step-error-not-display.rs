// A step whose error type does not implement `Display`: the journal records errors as text.
use hookflow::prelude::*;

#[derive(Debug)]
enum PaymentError {
    Declined,
}

#[step]
async fn charge(_ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> {
    if amount > 100 { Err(PaymentError::Declined) } else { Ok(amount) }
}

fn main() {}
