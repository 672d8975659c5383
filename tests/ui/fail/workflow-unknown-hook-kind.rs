// A hook of an unknown kind (`befor`, a typo of `before`).
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow(hooks(validate: befor<u64>))]
async fn checkout(_ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(total)
}

fn main() {}
