// `compensate = release` where no function `release` exists.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("inventory error")]
struct InventoryError;

#[step(compensate = release)]
async fn reserve(_ctx: &StepContext, qty: u32) -> Result<StepResponse<u32, u64>, InventoryError> {
    Ok(StepResponse::new(qty, 7))
}

async fn release_reservation(_ctx: &StepContext, _id: u64) -> Result<(), InventoryError> {
    Ok(())
}

fn main() {}
