// A workflow body that is not `Send`: it holds an `Rc` across an `.await`.
use std::rc::Rc;

use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

#[workflow]
async fn checkout(_ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    let shared = Rc::new(total);
    tokio::task::yield_now().await;
    Ok(*shared)
}

fn main() {}
