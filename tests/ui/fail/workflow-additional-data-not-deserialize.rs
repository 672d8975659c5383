// The declared additional data must be deserializable: the engine checks it at start.
use hookflow::prelude::*;

struct BrandData {
    brand_id: String,
}

#[workflow(additional_data = BrandData)]
async fn branded(ctx: &WorkflowContext, total: u64) -> Result<u64, HookError> {
    let data = ctx.additional_data();
    Ok(total + data.brand_id.len() as u64)
}

fn main() {}
