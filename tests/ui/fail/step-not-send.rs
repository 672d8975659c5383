// A step whose future is not `Send`: it holds an `Rc` across an `.await`.
use std::rc::Rc;

use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[step]
async fn charge(_ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> {
    let shared = Rc::new(amount);
    tokio::task::yield_now().await;
    Ok(*shared)
}

fn main() {}
