// Several mistakes in one step, all reported in one build: a misspelt option, a duplicate
// option, a missing `async` and a context taken by value.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[step(name = "charge", best_efort, name = "charge_card")]
fn charge(ctx: StepContext, amount: u64) -> Result<u64, PaymentError> {
    println!("{}", ctx.step());
    Ok(amount)
}

fn main() {}
