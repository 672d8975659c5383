// A workflow that takes a step's context instead of its own: reported once, at the type.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow]
async fn checkout(_ctx: &StepContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(total)
}

fn main() {}
