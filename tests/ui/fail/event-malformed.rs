// Events declared without a payload type, and twice.
use hookflow::prelude::*;

#[workflow(events(payment_captured, shipped: u32, shipped: u32))]
async fn checkout(_ctx: &WorkflowContext, total: u32) -> Result<u32, std::io::Error> {
    Ok(total)
}

fn main() {}
