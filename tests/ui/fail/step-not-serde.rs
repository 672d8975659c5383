// A step output, and another step's compensation data, that are not `Serialize` and
// `Deserialize`: the run's journal could not record them. One error for each, at the type.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[derive(Debug)]
struct Receipt {
    amount: u64,
}

#[derive(Debug)]
struct ChargeId(String);

#[step]
async fn charge(_ctx: &StepContext, amount: u64) -> Result<Receipt, PaymentError> {
    Ok(Receipt { amount })
}

#[step(compensate = refund)]
async fn capture(_ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, ChargeId>, PaymentError> {
    Ok(StepResponse::new(amount, ChargeId("ch_1".to_owned())))
}

async fn refund(_ctx: &StepContext, id: ChargeId) -> Result<(), PaymentError> {
    println!("{id:?}");
    Ok(())
}

fn main() {}
