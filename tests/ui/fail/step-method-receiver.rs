// A step method takes `&self`: not `&mut self`, not `self`.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("declined")]
struct PaymentError;

struct Payments {
    captured: u64,
}

impl Payments {
    #[step]
    async fn capture(&mut self, _ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> {
        self.captured += amount;
        Ok(amount)
    }

    #[step]
    async fn refund(self, _ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> {
        Ok(amount)
    }
}

fn main() {}
