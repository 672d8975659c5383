// The lints the user sets apply to a step's body as written: no lint attribute of the
// macro's covers it. Every kind of step expansion (plain, aliased return type, retried,
// compensated) is below; only the user's `(1)` is reported.
#![deny(unused_parens, unused_braces)]
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

type PaymentResult<T> = Result<T, PaymentError>;

#[step(retry(max = 2))]
async fn charge(_ctx: &StepContext, amount: u64) -> PaymentResult<u64> {
    let fee = (1);
    Ok(amount + fee)
}

#[step(compensate = undo_reserve)]
async fn reserve(_ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PaymentError> {
    Ok(StepResponse::new(amount, amount))
}

async fn undo_reserve(_ctx: &StepContext, _amount: u64) -> Result<(), PaymentError> {
    Ok(())
}

#[workflow]
async fn checkout(ctx: &WorkflowContext, amount: u64) -> Result<u64, PaymentError> {
    let amount = reserve(ctx, amount).await?;
    charge(ctx, amount).await
}

fn main() {}
