// `compensate = release` where `release` takes a `String` but the step's compensation data
// (the second type of `StepResponse`) is a `u64`.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("inventory error")]
struct InventoryError;

#[step(compensate = release)]
async fn reserve(_ctx: &StepContext, qty: u32) -> Result<StepResponse<u32, u64>, InventoryError> {
    Ok(StepResponse::new(qty, 7))
}

async fn release(_ctx: &StepContext, reservation: String) -> Result<(), InventoryError> {
    println!("{reservation}");
    Ok(())
}

fn main() {}
