// The same hook name declared twice.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow(hooks(validate: before<u64>, validate: after<u64>))]
async fn checkout(_ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(total)
}

fn main() {}
