// A step that takes the workflow's context instead of its own: reported once, at the type.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[step]
async fn charge(_ctx: &WorkflowContext, amount: u64) -> Result<u64, PaymentError> {
    Ok(amount)
}

fn main() {}
