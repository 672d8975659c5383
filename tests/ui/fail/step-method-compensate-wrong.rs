// A step method's compensation of the wrong shape: its data is not the step's, or its service
// cannot be cloned for it.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("declined")]
struct PaymentError;

// Not `Clone`: a compensation that takes `&self` runs on a clone of the service.
struct Payments;

impl Payments {
    #[step(compensate = Self::void)]
    async fn capture(&self, _ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PaymentError> {
        Ok(StepResponse::new(amount, amount))
    }

    async fn void(&self, _ctx: &StepContext, _amount: u64) -> Result<(), PaymentError> {
        Ok(())
    }

    #[step(compensate = Self::release)]
    async fn authorize(&self, _ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PaymentError> {
        Ok(StepResponse::new(amount, amount))
    }

    // Takes a `String`, but the step's compensation data is a `u64`.
    async fn release(_ctx: &StepContext, _authorization: String) -> Result<(), PaymentError> {
        Ok(())
    }
}

fn main() {}
