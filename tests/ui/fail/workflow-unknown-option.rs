// An option #[workflow] does not know.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow(retries = 3)]
async fn checkout(_ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(total)
}

fn main() {}
