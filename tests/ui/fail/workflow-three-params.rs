// A #[workflow] fn with two inputs: a workflow takes one input (a struct or a tuple).
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow]
async fn checkout(_ctx: &WorkflowContext, total: u64, currency: String) -> Result<u64, CheckoutError> {
    println!("{currency}");
    Ok(total)
}

fn main() {}
