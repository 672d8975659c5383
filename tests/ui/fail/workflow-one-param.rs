// A #[workflow] fn with its context but no input.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow]
async fn checkout(_ctx: &WorkflowContext) -> Result<u64, CheckoutError> {
    Ok(0)
}

fn main() {}
