// #[workflow] on a function that is not `async`.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow]
fn checkout(_ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(total)
}

fn main() {}
