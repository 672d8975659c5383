// A transactional step that takes the plain step context: it could not reach its
// transaction. Reported once, at the type.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("shop error")]
struct ShopError;

#[step(transaction)]
async fn create_order(_ctx: &StepContext, total: u64) -> Result<u64, ShopError> {
    Ok(total)
}

fn main() {}
