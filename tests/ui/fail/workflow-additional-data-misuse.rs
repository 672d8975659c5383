// `additional_data` takes a type, once.
use hookflow::prelude::*;

#[derive(serde::Deserialize)]
struct BrandData {
    brand_id: String,
}

#[workflow(additional_data = "BrandData")]
async fn quoted(_ctx: &WorkflowContext, total: u64) -> Result<u64, HookError> {
    Ok(total)
}

#[workflow(additional_data = BrandData, additional_data = BrandData)]
async fn twice(_ctx: &WorkflowContext, total: u64) -> Result<u64, HookError> {
    Ok(total)
}

fn main() {}
