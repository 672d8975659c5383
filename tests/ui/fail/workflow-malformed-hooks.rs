// A `hooks(...)` entry without its `:` between the name and the kind.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow(hooks(validate before<u64>))]
async fn checkout(_ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(total)
}

fn main() {}
